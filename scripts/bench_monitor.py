"""Per-step cost of the failure monitor in a live control loop, on one core, against the simulation step.

Fits a monitor (RND + ACE, default settings) on recorded rollouts of the learned policy, then
runs fresh episodes and times, at every control step and in the same loop: the policy's own
signals (``embed(obs)`` and ``sample_chunks(obs, B)``, measured separately: they belong to
the policy), ``monitor.update(embedding, chunks)`` (the monitor's own work: target <= 1 ms),
and ``env.step`` (the baseline: one 0.1 s control step of simulation). Interleaving keeps the
ratios fair when the machine's load changes. The RND and ACE parts of an update and an
RND-only monitor on the raw observation (a policy with no sampler) are timed too.

    python scripts/bench_monitor.py [--episodes 30] [--chunks 32]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, fields

import gymnasium as gym
import numpy as np
import torch

import robogate  # noqa: F401  (registers the envs)
from robogate.monitor import FailureMonitor, Rollout
from robogate.monitor.recording import record_episodes, rollout_scenarios
from robogate.runner import make_policy

ENV_ID = "robogate/PickPlace-Panda-v0"


@dataclass
class Args:
    policy: str = "flow"
    """Policy spec with embed() and sample_chunks()."""
    calibration: int = 60
    """Envelope episodes recorded to fit the monitor."""
    episodes: int = 30
    """Timed episodes."""
    chunks: int = 32
    """Chunks sampled per step (B)."""


def parse_args() -> Args:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for f in fields(Args):
        parser.add_argument(f"--{f.name}", type=type(f.default), default=f.default)
    return Args(**vars(parser.parse_args()))


def clock(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def describe(name: str, seconds: list[float] | np.ndarray) -> str:
    us = np.asarray(seconds) * 1e6
    return f"{name:<44} median {np.median(us):8.0f} us   p95 {np.percentile(us, 95):8.0f} us   (n={us.size})"


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    policy = make_policy(args.policy)
    scenarios = rollout_scenarios(args.calibration, None, 0, getattr(policy, "envelope", None))
    recorded = record_episodes(ENV_ID, policy, scenarios, embed=True, n_chunks=args.chunks, progress=True)
    monitor = FailureMonitor().fit([e.to_rollout() for e in recorded])
    plain = FailureMonitor(scores=("rnd",)).fit([Rollout(embeddings=e.observations, success=e.success)
                                                 for e in recorded])
    print(f"{monitor!r} fitted on {monitor.n_fit_} + {monitor.n_calibration_} successes; chunks {monitor.chunk_shape_}")

    env = gym.make(ENV_ID)
    times: dict[str, list[float]] = {k: [] for k in ("signals", "update", "update_obs", "step", "rnd", "ace")}
    for episode in range(args.episodes):
        seed = 10_000 + episode
        obs, _ = env.reset(seed=seed)
        policy.reset(seed=seed)
        monitor.reset()
        plain.reset()
        done = False
        while not done:
            start = time.perf_counter()
            embedding = policy.embed(obs)
            chunks = policy.sample_chunks(obs, args.chunks)
            times["signals"].append(time.perf_counter() - start)
            _, spent = clock(monitor.update, embedding, chunks)
            times["update"].append(spent)
            _, spent = clock(plain.update, obs)
            times["update_obs"].append(spent)
            _, spent = clock(monitor.rnd.score, embedding[None])
            times["rnd"].append(spent)
            _, spent = clock(monitor.ace.score, chunks)
            times["ace"].append(spent)
            action = policy.act(obs)
            (obs, _, terminated, truncated, _), spent = clock(env.step, action)
            times["step"].append(spent)
            done = terminated or truncated
    env.close()

    print(describe("monitor.update, RND + ACE (the monitor's work)", times["update"]))
    print(describe("  of which RND score (embedding)", times["rnd"]))
    print(describe(f"  of which ACE score ({args.chunks} chunks)", times["ace"]))
    print(describe("monitor.update, RND on the observation only", times["update_obs"]))
    print(describe(f"policy.embed + sample_chunks(obs, {args.chunks})", times["signals"]))
    print(describe("env.step (baseline: one 0.1 s control step)", times["step"]))
    update, step, signals = (float(np.median(times[k])) for k in ("update", "step", "signals"))
    print(f"monitor.update / env.step: {update / step:.3f}; monitor.update / policy signals: {update / signals:.3f}; "
          f"target <= 1 ms: {'met' if np.median(times['update']) <= 1e-3 else 'NOT met'}")


if __name__ == "__main__":
    main()
