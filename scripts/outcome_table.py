"""Outcome mix of the scripted controller per arm, at nominal settings and at extreme corners.

    python scripts/outcome_table.py --seeds 100
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

import robogate
from flags import parse
from robogate.execution.executors import LocalExecutor
from robogate.execution.trial import Trial

CORNERS = {
    "nominal": {},
    "friction 0.05, mass 2.0": {"friction": 0.05, "mass": 2.0},
    "friction 0.2, mass 1.5": {"friction": 0.2, "mass": 1.5},
    "size 0.12": {"size": 0.12},
    "size 0.02": {"size": 0.02},
    "4 obstacles, reach_limit": {"obstacles": 4, "placement": "reach_limit"},
    "ik_noise 0.04": {"ik_noise": 0.04},
    "com_offset 0.4, mass 1.0": {"com_offset": 0.4, "mass": 1.0},
    "sphere": {"shape": "sphere"},
}


@dataclass
class Args:
    seeds: int = 100
    """Episodes per arm and corner."""
    workers: int | None = None
    """Parallel episodes (default: all cores)."""


def main() -> None:
    args = parse(Args, __doc__)
    trials, keys = [], {}
    for env_id in robogate.ENV_IDS:
        for name, params in CORNERS.items():
            for seed in range(args.seeds):
                keys[len(trials)] = (env_id.split("-")[1], name)
                trials.append(Trial(len(trials), env_id, "scripted", params, seed, 1, 0))
    counts: dict = collections.defaultdict(collections.Counter)
    with LocalExecutor(args.workers) as pool:
        for record in pool.imap_unordered(trials):
            counts[keys[record["id"]]][record["outcome"]] += 1
    print(f"| arm | scenario | success | outcome mix ({args.seeds} seeds) |")
    print("|---|---|---|---|")
    for (arm, name), c in counts.items():
        mix = ", ".join(f"{o} {n}" for o, n in c.most_common())
        print(f"| {arm} | {name} | {c['success'] / args.seeds:.2f} | {mix} |")


if __name__ == "__main__":
    main()
