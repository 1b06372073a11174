"""Benchmark the simulator: episodes per second and the physics fraction, per arm.

The physics fraction is the share of episode wall time spent inside PyBullet's
``stepSimulation``; everything else (IK, observations, outcome checks, Python
glue, resets) is overhead. One process, one core; the env is reused between
episodes as a sweep worker reuses it.

As a baseline in the same run, each seed is also run on an env whose solver
takes PyBullet's default 50 iterations per step; episodes alternate between the
two, so the speed-up ratio holds even when the machine's load changes.

    python scripts/bench_sim.py --episodes 200
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass

import gymnasium as gym

import robogate
from flags import parse
from robogate.envs.simulator import SOLVER_ITERATIONS
from robogate.policies import ScriptedPolicy

BASELINE_ITERATIONS = 50
"""PyBullet's default solver iterations per physics step."""


@dataclass
class Args:
    episodes: int = 200
    """Episodes per arm (seeds 0..episodes-1, nominal parameters)."""
    warmup: int = 3
    """Episodes run first and not timed."""


class Tally:
    """Wall time, physics time, steps and outcomes of one env's timed episodes."""

    def __init__(self) -> None:
        self.wall = self.physics = 0.0
        self.steps = 0
        self.outcomes: collections.Counter = collections.Counter()

    def run(self, env: gym.Env, policy: ScriptedPolicy, seed: int) -> None:
        start = time.perf_counter()
        record = robogate.run_episode(env, policy, seed=seed)
        self.wall += time.perf_counter() - start
        self.physics += record["physics_time"]
        self.steps += record["steps"]
        self.outcomes[record["outcome"]] += 1


def bench(env_id: str, args: Args) -> dict:
    env, baseline = gym.make(env_id), gym.make(env_id)
    baseline.unwrapped.sim.client.setPhysicsEngineParameter(numSolverIterations=BASELINE_ITERATIONS)
    policy = ScriptedPolicy()
    for seed in range(args.warmup):
        robogate.run_episode(env, policy, seed=10_000 + seed)
        robogate.run_episode(baseline, policy, seed=10_000 + seed)
    ours, base = Tally(), Tally()
    for seed in range(args.episodes):
        ours.run(env, policy, seed)
        base.run(baseline, policy, seed)
    env.close()
    baseline.close()
    n = args.episodes
    return {
        "env": env_id,
        "episodes/s": n / ours.wall,
        "physics fraction": ours.physics / ours.wall,
        "mean steps": ours.steps / n,
        "success rate": ours.outcomes["success"] / n,
        "speed-up": base.wall / ours.wall,
        "baseline success rate": base.outcomes["success"] / n,
    }


def main() -> None:
    args = parse(Args, __doc__)
    print(f"solver: {SOLVER_ITERATIONS} iterations per step; baseline: {BASELINE_ITERATIONS}")
    print(f"{'env':30s} {'episodes/s':>10s} {'physics':>8s} {'steps':>6s} {'success':>8s} "
          f"{'speed-up':>9s} {'base success':>12s}")
    for env_id in robogate.ENV_IDS:
        r = bench(env_id, args)
        print(f"{r['env']:30s} {r['episodes/s']:10.2f} {r['physics fraction']:8.2f} "
              f"{r['mean steps']:6.1f} {r['success rate']:8.2f} {r['speed-up']:8.2f}x "
              f"{r['baseline success rate']:12.2f}", flush=True)


if __name__ == "__main__":
    main()
