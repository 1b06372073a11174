"""Record rollouts of the shipped flow policy given as an object and as the ``"flow"`` spec, side by side.

A policy object (``FlowPolicy.pretrained(...)`` handed to ``record_rollouts``, as the quickstart and
the demo's monitor do) must run as fast as the spec the CLI uses: both run torch on one thread in
every worker and in this process (``robogate._utils.threads``). For each worker count, the same episodes
are recorded through both paths, alternating which goes first, and the median wall time of each is
printed with their ratio (goal: the object path within 1.3x of the spec path). With
``--all-threads``, the object path also runs with ``ROBOGATE_TORCH_THREADS`` set to every core,
torch's own default, to show what one thread buys on this machine.

    python scripts/bench_policy_threads.py [--episodes 20] [--rounds 2] [--workers 1 2]
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field

from flags import parse
from robogate._utils.threads import THREADS_VARIABLE, policy_threads
from robogate.monitor import record_rollouts
from robogate.policies import FlowPolicy

GOAL = 1.3


@dataclass
class Args:
    env: str = "robogate/PickPlace-Panda-v0"
    """Env id (one with a shipped flow checkpoint)."""
    episodes: int = 20
    """Rollouts recorded per path and round."""
    rounds: int = 2
    """Rounds per worker count; the path that goes first alternates."""
    workers: list[int] = field(default_factory=lambda: [1, os.cpu_count() or 1])
    """Worker counts to time (1: in this process)."""
    chunks: int = 0
    """Chunks sampled per step (0: what the default monitor reads)."""
    all_threads: bool = True
    """Also time the object path with torch on every core."""


def seconds(args: Args, policy, workers: int, threads: int | None = None) -> float:
    """Wall time of one ``record_rollouts`` call (``threads``: ROBOGATE_TORCH_THREADS for it)."""
    before = os.environ.get(THREADS_VARIABLE)
    if threads is not None:
        os.environ[THREADS_VARIABLE] = str(threads)
    try:
        start = time.perf_counter()
        record_rollouts(args.env, policy, args.episodes, None, 0, args.chunks, workers=workers, progress=False)
        return time.perf_counter() - start
    finally:
        if before is None:
            os.environ.pop(THREADS_VARIABLE, None)
        else:
            os.environ[THREADS_VARIABLE] = before


def main() -> None:
    args = parse(Args, __doc__)
    flow = FlowPolicy.pretrained(args.env)
    cores = os.cpu_count() or 1
    print(f"{args.env}: record_rollouts of {args.episodes} episodes, {args.chunks} chunks per step, "
          f"{args.rounds} rounds; torch threads per policy {policy_threads()} ({cores} cores)")
    header = f"{'workers':>7} {'spec s':>8} {'object s':>9} {'object / spec':>14}"
    print(header + (f" {'object, ' + str(cores) + ' threads':>18}" if args.all_threads else ""))
    for workers in args.workers:
        times: dict[str, list[float]] = {"spec": [], "object": [], "all": []}
        for r in range(args.rounds):
            paths = [("spec", "flow"), ("object", flow)]
            for name, policy in paths if r % 2 == 0 else paths[::-1]:
                times[name].append(seconds(args, policy, workers))
            if args.all_threads:
                times["all"].append(seconds(args, flow, workers, threads=cores))
        spec, obj = statistics.median(times["spec"]), statistics.median(times["object"])
        line = f"{workers:>7} {spec:8.1f} {obj:9.1f} {obj / spec:13.2f}x"
        if args.all_threads:
            line += f" {statistics.median(times['all']):17.1f}s"
        print(line, flush=True)
    print(f"goal: object / spec <= {GOAL}")


if __name__ == "__main__":
    main()
