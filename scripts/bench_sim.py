"""Benchmark the simulator: episodes per second and the physics fraction, per arm.

The physics fraction is the share of episode wall time spent inside PyBullet's
``stepSimulation``; everything else (IK, observations, outcome checks, Python
glue, resets) is overhead. One process, one core; the env is reused between
episodes as a sweep worker reuses it.

    python scripts/bench_sim.py --episodes 200
"""

from __future__ import annotations

import argparse
import collections
import time
from dataclasses import dataclass, fields

import gymnasium as gym
from robogate.policies import ScriptedPolicy

import robogate


@dataclass
class Args:
    episodes: int = 200
    """Episodes per arm (seeds 0..episodes-1, nominal parameters)."""
    warmup: int = 3
    """Episodes run first and not timed."""


def parse_args() -> Args:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for f in fields(Args):
        parser.add_argument(f"--{f.name}", type=f.type if callable(f.type) else int, default=f.default)
    return Args(**vars(parser.parse_args()))


def bench(env_id: str, args: Args) -> dict:
    env = gym.make(env_id)
    policy = ScriptedPolicy()
    for seed in range(args.warmup):
        robogate.run_episode(env, policy, seed=10_000 + seed)
    outcomes: collections.Counter = collections.Counter()
    physics = steps = 0.0
    start = time.perf_counter()
    for seed in range(args.episodes):
        record = robogate.run_episode(env, policy, seed=seed)
        outcomes[record["outcome"]] += 1
        physics += record["physics_time"]
        steps += record["steps"]
    elapsed = time.perf_counter() - start
    env.close()
    return {
        "env": env_id,
        "episodes/s": args.episodes / elapsed,
        "physics fraction": physics / elapsed,
        "mean steps": steps / args.episodes,
        "success rate": outcomes["success"] / args.episodes,
    }


def main() -> None:
    args = parse_args()
    print(f"{'env':34s} {'episodes/s':>10s} {'physics':>8s} {'steps':>6s} {'success':>8s}")
    for env_id in robogate.ENV_IDS:
        r = bench(env_id, args)
        print(f"{r['env']:34s} {r['episodes/s']:10.2f} {r['physics fraction']:8.2f} "
              f"{r['mean steps']:6.1f} {r['success rate']:8.2f}", flush=True)


if __name__ == "__main__":
    main()
