"""Run one episode of a policy in an env and return its flat record (one row of a sweep)."""

from __future__ import annotations

import time
import traceback
from collections.abc import Mapping
from typing import Any

import gymnasium as gym

from robogate.policies import Policy


def run_episode(
    env: str | gym.Env,
    policy: Policy,
    params: Mapping[str, Any] | None = None,
    seed: int | None = None,
) -> dict[str, Any]:
    """Run ``policy`` for one episode and return a flat record.

    Parameters
    ----------
    env : str or gymnasium.Env
        A registered env id (a fresh env is made and closed) or an env to reuse.
    policy : Policy
        Anything with ``reset()`` and ``act(obs)``.
    params : mapping, optional
        Scenario parameters; omitted ones take their nominal values.
    seed : int, optional
        Seed of the episode's nuisance variation.

    Returns
    -------
    dict
        The parameters (one key each), ``env_id``, ``seed``, ``outcome``,
        ``success``, ``steps``, ``sim_time`` (simulated seconds), ``wall_time``,
        ``physics_time`` (seconds inside the physics engine) and ``error``
        (the message of a policy exception or a diverged simulation, else None).
        A policy that raises ends the episode as ``error``; it never propagates.

    Raises
    ------
    ValueError
        For invalid parameters (before anything runs).
    """
    own_env = isinstance(env, str)
    env_obj = gym.make(env) if own_env else env
    try:
        return _run(env_obj, policy, dict(params or {}), seed)
    finally:
        if own_env:
            env_obj.close()


def _run(env: gym.Env, policy: Policy, params: dict, seed: int | None) -> dict[str, Any]:
    base = env.unwrapped
    env_id = env.spec.id if env.spec is not None else type(base).__name__
    start = time.perf_counter()
    obs, info = env.reset(seed=seed, options={"params": params})
    record: dict[str, Any] = dict(info["params"])
    steps, error, outcome = 0, None, None
    try:
        policy.reset()
        while outcome is None:
            action = policy.act(obs)
            obs, _, terminated, truncated, info = env.step(action)
            steps += 1
            if terminated or truncated:
                outcome = info["outcome"]
                error = info.get("error")
    except Exception as exc:  # the policy's failure is a result, not a crash
        outcome = "error"
        error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}".strip()
    sim = getattr(base, "sim", None)
    record.update(
        env_id=env_id,
        seed=seed,
        outcome=outcome,
        success=outcome == "success",
        steps=steps,
        sim_time=steps / env.metadata.get("render_fps", 10),
        wall_time=time.perf_counter() - start,
        physics_time=float(sim.physics_seconds) if sim is not None else float("nan"),
        error=error,
    )
    return record


__all__ = ["run_episode"]
