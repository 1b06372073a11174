"""Per-step cost of the failure monitor in a live control loop, on one core, against the simulation step.

Fits every registered score on recorded rollouts of the learned policy, then runs fresh
episodes and times, at every control step and in the same loop: the policy's own signals
(``embed(obs)`` and ``sample_chunks(obs, B)``, which belong to the policy), each score's
``update`` alone, ``monitor.update`` of the default monitor, of the default monitor with the
dynamics score added and of the monitor with every score (the monitor's own work: target
<= 1 ms), and ``env.step`` (the baseline: one 0.1 s
control step of simulation). Interleaving keeps the ratios fair when the machine's load changes.

    python scripts/bench_monitor.py [--episodes 30] [--chunks 32]
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

import robogate  # noqa: F401  (registers the envs)
from flags import parse
from robogate.execution.specs import make_policy
from robogate.monitor import FailureMonitor, record_rollouts, scores
from robogate.monitor.scores import Step

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


def clock(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def describe(name: str, seconds: list[float] | np.ndarray) -> str:
    us = np.asarray(seconds) * 1e6
    return f"{name:<48} median {np.median(us):8.0f} us   p95 {np.percentile(us, 95):8.0f} us   (n={us.size})"


def main() -> None:
    args = parse(Args, __doc__)
    torch.set_num_threads(1)
    policy = make_policy(args.policy)
    calibration = record_rollouts(ENV_ID, policy, args.calibration, None, 0, args.chunks, workers=1)
    everything = FailureMonitor(scores=scores.usable([r for r in calibration if r.success])).fit(calibration)
    default = everything.as_default()
    with_dynamics = everything.recalibrate(scores=(*default.scores_, "dynamics"))
    print(f"scores {list(everything.score_objects_)} fitted on {everything.n_fit_} + {everything.n_calibration_} "
          f"successes; default monitor: {default.describe()}")

    env = gym.make(ENV_ID)
    names = list(everything.score_objects_)
    times: dict[str, list[float]] = {k: [] for k in ("signals", "default", "with dynamics", "all", "step", *names)}
    for episode in range(args.episodes):
        seed = 10_000 + episode
        obs, _ = env.reset(seed=seed)
        policy.reset(seed=seed)
        default.reset()
        with_dynamics.reset()
        everything.reset()
        streams = {name: everything.score_objects_[name].stream() for name in names}
        done, step, last = False, 0, None
        while not done:
            start = time.perf_counter()
            embedding = policy.embed(obs)
            chunks = policy.sample_chunks(obs, args.chunks)
            times["signals"].append(time.perf_counter() - start)
            _, spent = clock(default.update, embedding, observation=obs)
            times["default"].append(spent)
            _, spent = clock(with_dynamics.update, embedding, observation=obs, last_action=last)
            times["with dynamics"].append(spent)
            _, spent = clock(everything.update, embedding, chunks, observation=obs, last_action=last)
            times["all"].append(spent)
            signals = Step(step, observations=obs, embeddings=embedding, action_chunks=chunks, actions=last)
            for name in names:
                _, spent = clock(streams[name].update, signals)
                times[name].append(spent)
            action = last = policy.act(obs)
            (obs, _, terminated, truncated, _), spent = clock(env.step, action)
            times["step"].append(spent)
            done, step = terminated or truncated, step + 1
    env.close()

    print(describe(f"monitor.update, default ({' + '.join(default.scores_)})", times["default"]))
    print(describe(f"monitor.update, {' + '.join(with_dynamics.scores_)}", times["with dynamics"]))
    print(describe(f"monitor.update, all {len(names)} scores", times["all"]))
    for name in names:
        print(describe(f"  score {name} alone", times[name]))
    print(describe(f"policy.embed + sample_chunks(obs, {args.chunks})", times["signals"]))
    print(describe("env.step (baseline: one 0.1 s control step)", times["step"]))
    update, step, signals = (float(np.median(times[k])) for k in ("default", "step", "signals"))
    print(f"default monitor.update / env.step: {update / step:.3f}; / policy signals: {update / signals:.3f}; "
          f"target <= 1 ms: {'met' if update <= 1e-3 else 'NOT met'}")
    dynamic = float(np.median(times["with dynamics"]))
    print(f"with the dynamics score: {dynamic * 1e6:.0f} us, {dynamic / step:.3f} x env.step; target <= 1 ms: "
          f"{'met' if dynamic <= 1e-3 else 'NOT met'}")


if __name__ == "__main__":
    main()
