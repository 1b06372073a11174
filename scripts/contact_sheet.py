"""Save a PNG contact sheet of the scene: the five shapes and a few placements.

    python scripts/contact_sheet.py --out docs/contact_sheet.png
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import robogate  # noqa: E402,F401  (registers the envs)
from flags import parse  # noqa: E402

SCENES = [
    ("Panda", {"shape": "box"}),
    ("Panda", {"shape": "cylinder"}),
    ("Panda", {"shape": "sphere"}),
    ("Panda", {"shape": "capsule", "size": 0.08}),
    ("Panda", {"shape": "plate", "size": 0.09}),
    ("UR5e", {"placement": "raised_high", "obstacles": 2}),
    ("UR5e", {"placement": "edge", "obstacles": 4}),
    ("XArm6", {"placement": "reach_limit_raised", "obstacles": 3}),
    ("XArm6", {"placement": "left_far", "size": 0.11}),
]


@dataclass
class Args:
    out: Path = Path("docs/contact_sheet.png")
    """PNG to write."""
    seed: int = 3
    """Seed of every scene."""


def main() -> None:
    args = parse(Args, __doc__)
    fig, axes = plt.subplots(3, 3, figsize=(12, 7.5))
    envs = {}
    for ax, (robot, params) in zip(axes.flat, SCENES):
        if robot not in envs:
            envs[robot] = gym.make(f"robogate/PickPlace-{robot}-v0", render_mode="rgb_array")
        env = envs[robot]
        env.reset(seed=args.seed, options={"params": params})
        ax.imshow(env.unwrapped.sim.render(width=480, height=320))
        ax.set_title(f"{robot}: " + ", ".join(f"{k}={v}" for k, v in params.items()), fontsize=9)
        ax.axis("off")
    for env in envs.values():
        env.close()
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
