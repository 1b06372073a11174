"""Run one episode of a policy in an env and return its flat record (one row of a sweep)."""

from __future__ import annotations

import inspect
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym

from robogate.policies import Policy


def run_episode(
    env: str | gym.Env,
    policy: Policy | str,
    params: Mapping[str, Any] | None = None,
    seed: int | None = None,
    *,
    on_step: Callable[[Any, Any, dict], None] | None = None,
) -> dict[str, Any]:
    """Run ``policy`` for one episode and return a flat record.

    Parameters
    ----------
    env : str or gymnasium.Env
        A registered env id (a fresh env is made and closed) or an env to reuse.
    policy : Policy or str
        Anything with ``reset()`` and ``act(obs)``, or a policy spec as for
        :func:`robogate.sweep.run_sweep` (``"scripted"``, ``"flow"``,
        ``"flow:PATH"``, ``"package.module:Factory"``). A policy whose ``reset``
        takes a ``seed`` keyword gets the episode seed, so a policy that samples
        (e.g. :class:`~robogate.policies.FlowPolicy`) reproduces a seeded episode.
    params : mapping, optional
        Scenario parameters; omitted ones take their nominal values.
    seed : int, optional
        Seed of the episode's nuisance variation (and of the policy's sampling).
    on_step : callable, optional
        Called after every step as ``on_step(obs, action, info)`` with the
        observation the policy acted on, its action and the step's ``info``;
        an exception it raises ends the episode as a policy error.

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
        For invalid parameters, a bad policy spec, or an object that is not
        a policy (before anything runs).
    """
    policy = as_policy(policy)
    own_env = isinstance(env, str)
    env_obj = gym.make(env) if own_env else env
    try:
        return _run(env_obj, policy, dict(params or {}), seed, on_step)
    finally:
        if own_env:
            env_obj.close()


def missing_policy_methods(obj: Any) -> list[str]:
    """Which of ``reset()`` and ``act()`` ``obj`` lacks (an empty list for a policy)."""
    return [f"{m}()" for m in ("reset", "act") if not callable(getattr(obj, m, None))]


def as_policy(policy: Any) -> Policy:
    """``policy`` itself if it has callable ``reset()`` and ``act(obs)``; a spec string built into one.

    Raises
    ------
    ValueError
        For a bad spec, or an object without ``reset()`` or ``act(obs)``.
    """
    if isinstance(policy, str):
        from robogate.runner import make_policy  # runner runs episodes: imported here, not at the top

        return make_policy(policy)
    missing = missing_policy_methods(policy)
    if missing:
        raise ValueError(f"not a policy: a {type(policy).__name__} without {' and '.join(missing)} "
                         "(a policy has reset() and act(obs); or pass a spec such as 'scripted')")
    return policy


def reset_policy(policy: Policy, seed: int | None) -> None:
    """``policy.reset(seed=seed)`` when its ``reset`` takes a seed, else ``policy.reset()``."""
    try:
        takes_seed = "seed" in inspect.signature(policy.reset).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        takes_seed = False
    if takes_seed:
        policy.reset(seed=seed)
    else:
        policy.reset()


def _run(env: gym.Env, policy: Policy, params: dict, seed: int | None, on_step: Callable | None) -> dict[str, Any]:
    base = env.unwrapped
    env_id = env.spec.id if env.spec is not None else type(base).__name__
    start = time.perf_counter()
    obs, info = env.reset(seed=seed, options={"params": params})
    record: dict[str, Any] = dict(info["params"])
    steps, error, outcome = 0, None, None
    try:
        reset_policy(policy, seed)
        while outcome is None:
            action = policy.act(obs)
            next_obs, _, terminated, truncated, info = env.step(action)
            steps += 1
            if on_step is not None:
                on_step(obs, action, info)
            obs = next_obs
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


__all__ = ["as_policy", "missing_policy_methods", "reset_policy", "run_episode"]
