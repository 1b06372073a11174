"""Measure the examples a lab copies (examples/): how their controllers do, and how a sweep of them goes.

For each example: the scripted controller's success at the nominal scene over ``--nominal`` seeds;
the wall time of a two-stage sweep (``--n-lhs`` + ``--n-boundary`` on ``--workers`` workers, pool
start included, as a user runs it); its stage-1 and stage-2 success rates; and the sampler's figure
of merit, the share of points whose *true* success probability lies in the 30-70 % band, estimated
by running ``--points`` stage-2 points and as many stage-1 (uniform) points ``--repeats`` times each.

    python scripts/bench_examples.py
    python scripts/bench_examples.py --examples fetch_push --n-lhs 100 --n-boundary 50 --points 0
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from flags import parse
from robogate import load_sweep
from robogate._utils.seeding import trial_seed
from robogate.execution.executors import LocalExecutor
from robogate.execution.trial import Trial
from robogate.sweep.run import run_sweep
from robogate.sweep.sampler import BAND

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
EXAMPLES = {
    "panda_pick_place": ("panda_pick_place:PickPlace-v0", "panda_pick_place:PickPlacePolicy"),
    "fetch_push": ("fetch_push:Push-v0", "fetch_push:PushPolicy"),
}


@dataclass
class Args:
    examples: tuple[str, ...] = tuple(EXAMPLES)
    """Which examples (module names in examples/)."""
    nominal: int = 50
    """Seeds of the nominal scene."""
    n_lhs: int = 200
    """Stage-1 (Latin Hypercube) experiments of the sweep."""
    n_boundary: int = 100
    """Stage-2 (boundary) experiments of the sweep."""
    workers: int = 2
    """Worker processes."""
    points: int = 40
    """Stage-2 points, and as many stage-1 points, whose success probability is estimated (0: none)."""
    repeats: int = 10
    """Seeds per point for that estimate."""
    seed: int = 0
    """Sweep seed (the nominal seeds are 0..nominal-1; the repeats' follow from it)."""
    out: Path | None = None
    """Keep the sweeps in OUT/<example> (default: a temporary folder)."""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.examples) - set(EXAMPLES))
        if unknown:
            raise ValueError(f"unknown examples {unknown}; choose from {list(EXAMPLES)}")


def success_rates(pool: LocalExecutor, env_id: str, policy: str, points: list[dict], repeats: int,
                  seed: int) -> np.ndarray:
    """Each point's success rate over ``repeats`` seeded episodes."""
    trials = [Trial(id=i * repeats + r, env_id=env_id, policy=policy, params=params,
                    seed=trial_seed(seed, i * repeats + r), stage=1, batch=i)
              for i, params in enumerate(points) for r in range(repeats)]
    wins = np.zeros(len(points))
    for record in pool.imap_unordered(trials):
        if record["error"] is not None:
            raise RuntimeError(f"an episode errored: {record['error']}")
        wins[record["id"] // repeats] += record["success"]
    return wins / repeats


def sample_points(df: pd.DataFrame, names: list[str], count: int, seed: int) -> list[dict]:
    rows = df.sample(n=min(count, len(df)), random_state=seed) if count else df.iloc[:0]
    return rows[names].astype(object).to_dict("records")


def measure(name: str, args: Args, out: Path) -> None:
    env_id, policy = EXAMPLES[name]
    with LocalExecutor(args.workers) as pool:
        nominal = success_rates(pool, env_id, policy, [{}], args.nominal, args.seed)[0]
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the sampler's band warnings
        df = run_sweep(env_id, policy, out / name, n_lhs=args.n_lhs, n_boundary=args.n_boundary, seed=args.seed,
                       workers=args.workers, progress=False)
    elapsed = time.perf_counter() - start
    names = load_sweep(out / name).attrs["settings"]["space"].names
    stage = {s: df[df["stage"] == s] for s in (1, 2)}
    print(f"{name} ({env_id}), parameters {', '.join(names)}")
    print(f"  nominal success: {nominal:.0%} of {args.nominal} seeds")
    print(f"  sweep {args.n_lhs} + {args.n_boundary} on {args.workers} workers: {elapsed:.0f} s "
          f"({len(df) / elapsed:.1f} episodes/s)")
    for s, rows in stage.items():
        print(f"  stage {s}: success {rows['success'].mean():.1%} of {len(rows)}")
    if args.points:
        with LocalExecutor(args.workers) as pool:
            for s, rows in stage.items():
                rates = success_rates(pool, env_id, policy, sample_points(rows, names, args.points, args.seed),
                                      args.repeats, args.seed + s)
                inside = np.mean((rates >= BAND[0]) & (rates <= BAND[1]))
                print(f"  stage {s}: {inside:.0%} of {len(rates)} points in the {BAND[0]:.0%}-{BAND[1]:.0%} band "
                      f"(success estimated from {args.repeats} seeds each)")


def main() -> None:
    args = parse(Args, __doc__)
    sys.path.insert(0, str(EXAMPLES_DIR))  # the examples import as a lab's own modules would
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(EXAMPLES_DIR), os.environ.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory() as temporary:
        out = args.out or Path(temporary)
        print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start")
        for name in args.examples:
            measure(name, args, out)


if __name__ == "__main__":
    main()
