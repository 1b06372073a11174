"""Per-call cost of the learned policy and its episode rate against the scripted controller, on one core.

Measures, with one torch thread: ``act()`` averaged over every call of real
episodes (most calls pop a queued action; one in ``n_action_steps`` samples a
chunk), ``sample_chunks(obs, 1)`` (the cost of a replanning call),
``embed(obs)`` and ``sample_chunks(obs, 32)``, all on observations from real
episodes; then
episodes per second of the flow policy and of the scripted controller on the
same seeded scenarios, and their ratio.

    python scripts/bench_flow.py [--policy flow] [--episodes 20]
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

import robogate
from flags import parse
from robogate.execution.specs import make_policy
from robogate.policies import ScriptedPolicy

ENV_ID = "robogate/PickPlace-Panda-v0"


@dataclass
class Args:
    policy: str = "flow"
    """Policy spec with sample_chunks() and embed(): 'flow' (the shipped checkpoint) or 'flow:PATH'."""
    episodes: int = 20
    """Seeded nominal episodes each policy runs for the episode rate."""


def timed_act(policy, env, seeds):
    """Per-call seconds of every act() over whole episodes, and the observations seen."""
    every, observations = [], []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        policy.reset(seed=seed)
        done = False
        while not done:
            start = time.perf_counter()
            action = policy.act(obs)
            every.append(time.perf_counter() - start)
            observations.append(obs)
            obs, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
    return np.array(every), observations


def per_call(fn, observations, repeats=1):
    start = time.perf_counter()
    for _ in range(repeats):
        for obs in observations:
            fn(obs)
    return (time.perf_counter() - start) / (repeats * len(observations))


def rates(policy, env, seeds):
    """Episodes and control steps per second over the seeded nominal episodes."""
    start = time.perf_counter()
    steps = sum(robogate.run_episode(env, policy, seed=seed)["steps"] for seed in seeds)
    seconds = time.perf_counter() - start
    return len(seeds) / seconds, steps / seconds


def main() -> None:
    args = parse(Args, __doc__)
    torch.set_num_threads(1)
    flow = make_policy(args.policy)
    env = gym.make(ENV_ID)
    seeds = list(range(args.episodes))

    every, observations = timed_act(flow, env, seeds[:5])
    obs = observations[: min(len(observations), 200)]
    one = per_call(lambda o: flow.sample_chunks(o, 1), obs)
    embed = per_call(flow.embed, obs)
    chunks = per_call(lambda o: flow.sample_chunks(o, 32), obs)
    print(f"{args.policy}: H={flow.config.horizon}, executes {flow.config.n_action_steps}, "
          f"{flow.config.flow_steps} Euler steps, torch threads {torch.get_num_threads()}")
    print(f"act()                     {1e3 * every.mean():7.3f} ms per call (mean over {len(every)} calls)")
    print(f"act() p95                 {1e3 * np.percentile(every, 95):7.3f} ms per call")
    print(f"sample_chunks(obs, 1)     {1e3 * one:7.3f} ms per call (what act() costs when it replans)")
    print(f"embed(obs)                {1e3 * embed:7.3f} ms per call")
    print(f"sample_chunks(obs, 32)    {1e3 * chunks:7.3f} ms per call")

    (scripted_eps, scripted_steps), (flow_eps, flow_steps) = rates(ScriptedPolicy(), env, seeds), rates(flow, env, seeds)
    print(f"scripted                  {scripted_eps:7.2f} episodes/s  {scripted_steps:6.0f} steps/s")
    print(f"flow                      {flow_eps:7.2f} episodes/s  {flow_steps:6.0f} steps/s   "
          f"(flow / scripted: {flow_eps / scripted_eps:.2f} episodes/s, {flow_steps / scripted_steps:.2f} steps/s)")


if __name__ == "__main__":
    main()
