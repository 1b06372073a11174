"""Benchmark a sweep on all cores against the single-process episode rate, measured in the same run.

Both runs execute the same Latin Hypercube experiments of the 8-D default space
with the scripted controller. Prints episodes per second, the parallel speed-up
(target: at least 0.9 x the number of cores) and the projected time of
ROBOGATE's 30,000-experiment sweep on this machine (target: 30 minutes or less).

    python scripts/bench_sweep.py --episodes 300
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass

from flags import parse
from robogate._utils.seeding import trial_seed
from robogate.envs.scene import default_space
from robogate.execution.executors import LocalExecutor
from robogate.execution.trial import Trial, run_trial
from robogate.sweep.run import run_sweep
from robogate.sweep.sampler import TwoStageSampler

ROBOGATE_EXPERIMENTS = 30_000


@dataclass
class Args:
    env: str = "robogate/PickPlace-Panda-v0"
    """Env id."""
    episodes: int = 300
    """Experiments of the sweep; the same experiments also run in one process."""
    workers: int = os.cpu_count() or 1
    """Worker processes of the sweep."""
    seed: int = 0
    """Sweep seed."""


def single_process_rate(args: Args) -> float:
    """Episodes/s of one process running the sweep's experiments (simulator already loaded)."""
    sampler = TwoStageSampler(default_space(), n_lhs=args.episodes, n_boundary=0, seed=args.seed)
    points = sampler.ask(args.episodes)
    trials = [Trial(i, args.env, "scripted", p, trial_seed(args.seed, i), 1, 0) for i, p in enumerate(points)]
    run_trial(trials[0])  # load the simulator, as a sweep worker does once
    start = time.perf_counter()
    for trial in trials:
        run_trial(trial)
    return len(trials) / (time.perf_counter() - start)


def main() -> None:
    args = parse(Args, __doc__)
    single = single_process_rate(args)
    with tempfile.TemporaryDirectory() as out, LocalExecutor(args.workers) as pool:
        # Start the workers and load their simulators before timing, as a long sweep amortises it.
        list(pool.imap_unordered([Trial(-1 - i, args.env, "scripted", {}, 0, 1, 0) for i in range(args.workers)]))
        start = time.perf_counter()
        df = run_sweep(args.env, "scripted", out, n_lhs=args.episodes, n_boundary=0, seed=args.seed,
                       executor=pool, progress=False)
        elapsed = time.perf_counter() - start
    parallel = len(df) / elapsed
    print(f"env: {args.env}, {len(df)} experiments, {args.workers} workers")
    print(f"single process: {single:.2f} episodes/s")
    print(f"sweep:          {parallel:.2f} episodes/s")
    print(f"speed-up:       {parallel / single:.2f}x on {args.workers} cores "
          f"({parallel / single / args.workers:.2f} of linear; target 0.90)")
    print(f"projected {ROBOGATE_EXPERIMENTS:,} experiments: {ROBOGATE_EXPERIMENTS / parallel / 60:.1f} min "
          "(target 30 min)")


if __name__ == "__main__":
    main()
