"""One episode of a policy in an env: its flat record (one row of a sweep) and, when asked, every step.

:func:`run_episode` returns the flat record. :func:`record_episode` runs the same episode and
also keeps what a runtime monitor and behaviour cloning read of each step (observation,
action, and optionally the policy's embedding and sampled action chunks), as an
:class:`EpisodeRecording`; :class:`Capture` says which of those to keep.
"""

from __future__ import annotations

import inspect
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from robogate._utils.checks import check_int
from robogate._utils.threads import torch_threads
from robogate.execution.specs import as_policy
from robogate.policies import Policy
from robogate.scenarios.env_contract import control_hz, declared, flat_observation

SUCCESS, FAILURE = "success", "failure"
"""The outcomes of an episode whose env names none (``info["success"]`` alone)."""

RECORD_FIELDS = ("env_id", "seed", "outcome", "success", "steps", "sim_time", "wall_time", "physics_time", "error")
"""The keys :func:`run_episode` adds after the scenario parameters."""


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
        :func:`robogate.sweep.run.run_sweep` (``"scripted"``, ``"flow"``,
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
        ``success``, ``steps``, ``sim_time`` (simulated seconds, from the env's
        control rate: NaN when it declares none, see :mod:`robogate.scenarios.env_contract`),
        ``wall_time``, ``physics_time`` (seconds inside the physics engine, from
        ``info["physics_time"]``; NaN when the env reports none) and ``error``
        (None, or what broke the harness: ``"the policy raised ..."``, ``"the env
        raised ..."`` or the env's own message, e.g. a diverged simulation).
        A policy or an env step that raises ends the episode as ``error``; it
        never propagates.

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


def episode_outcome(info: Mapping[str, Any], truncated: bool) -> tuple[str, str | None]:
    """How an episode ended, from the ``info`` of its last step: ``(outcome, error message or None)``.

    ``info["success"]`` decides: a success is :data:`SUCCESS`; a failure is ``info["outcome"]``
    when the env names one (the taxonomy is the env's), else :data:`FAILURE`. A time limit
    without ``info["success"]`` (Gymnasium's ``max_episode_steps``) is a ``"timeout"``; any other
    end without it, an ``"error"``.
    """
    success = info.get("success")
    if success is None:
        if truncated:
            return "timeout", None
        return "error", "the env ended the episode without info['success']"
    named = info.get("outcome")
    if not success:
        return (FAILURE if named in (None, SUCCESS) else str(named)), info.get("error")
    return SUCCESS, info.get("error")


class _HarnessFault(Exception):
    """An exception raised by the policy or by the env during an episode, with who raised it."""

    def __init__(self, source: str, exc: Exception) -> None:
        super().__init__(source)
        self.source, self.exc = source, exc

    def message(self) -> str:
        trace = "".join(traceback.format_exception(self.exc, limit=3)).strip()
        return f"the {self.source} raised {type(self.exc).__name__}: {self.exc}\n{trace}".strip()


def _blame(source: str, call: Callable[..., Any], *args: Any) -> Any:
    try:
        return call(*args)
    except Exception as exc:
        raise _HarnessFault(source, exc) from exc


def _run(env: gym.Env, policy: Policy, params: dict, seed: int | None, on_step: Callable | None) -> dict[str, Any]:
    base = env.unwrapped
    env_id = env.spec.id if env.spec is not None else type(base).__name__
    seed = None if seed is None else check_int(seed, "seed")  # a numpy integer too (a sweep row's seed)
    start = time.perf_counter()
    obs, info = env.reset(seed=seed, options={"params": params})
    space = declared(env, "parameter_space")
    record: dict[str, Any] = dict(info["params"] if "params" in info or space is None else space.validate(params))
    steps, error, outcome = 0, None, None
    with torch_threads():
        try:
            _blame("policy", reset_policy, policy, seed)
            while outcome is None:
                action = _blame("policy", policy.act, obs)
                next_obs, _, terminated, truncated, info = _blame("env", env.step, action)
                steps += 1
                if on_step is not None:
                    _blame("policy", on_step, obs, action, info)
                obs = next_obs
                if terminated or truncated:
                    outcome, error = episode_outcome(info, truncated)
        except _HarnessFault as fault:  # a broken harness is a result, not a crash
            outcome, error = "error", fault.message()
    rate = control_hz(env)
    record.update(
        env_id=env_id,
        seed=seed,
        outcome=outcome,
        success=outcome == SUCCESS,
        steps=steps,
        sim_time=steps / rate if rate else float("nan"),
        wall_time=time.perf_counter() - start,
        physics_time=float(info.get("physics_time", float("nan"))),
        error=error,
    )
    return record


@dataclass(frozen=True)
class Capture:
    """What :func:`record_episode` keeps of each step beyond the observation and the action.

    Parameters
    ----------
    embed : bool
        The policy's ``embed(obs)``.
    n_chunks : int
        ``policy.sample_chunks(obs, n_chunks)`` (0: none).
    """

    embed: bool = False
    n_chunks: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "embed", bool(self.embed))
        object.__setattr__(self, "n_chunks", check_int(self.n_chunks, "n_chunks"))

    def check(self, policy: Any) -> None:
        """Raise ``ValueError`` when ``policy`` lacks a method this capture calls."""
        needed = (["embed"] if self.embed else []) + (["sample_chunks"] if self.n_chunks else [])
        missing = [m for m in needed if not callable(getattr(policy, m, None))]
        if missing:
            raise ValueError(f"policy {type(policy).__name__} has no {' or '.join(m + '()' for m in missing)}; "
                             "record it without embeddings or with n_chunks=0")


@dataclass(frozen=True, eq=False)
class EpisodeRecording:
    """Everything recorded about one episode.

    Parameters
    ----------
    observations : array (T, obs_size)
        The observation the policy acted on at each control step (a dict observation
        flattened in its space's order).
    actions : array (T, A)
        The action it took.
    outcome : str
        How the episode ended.
    params : dict
        Its scenario parameters.
    seed : int or None
        Its seed.
    failure_step : int or None
        The control step of the failure event; None for a success, and for a failure whose
        env says it has none (robogate's timeouts).
    embeddings : array (T, d), optional
        The policy's observation embedding at each step.
    action_chunks : array (T, B, H, A), optional
        The B chunks the policy sampled at each step.
    error : str or None
        The message of a policy that raised or a diverged simulation.
    """

    observations: np.ndarray
    actions: np.ndarray
    outcome: str
    params: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    failure_step: int | None = None
    embeddings: np.ndarray | None = None
    action_chunks: np.ndarray | None = None
    error: str | None = None

    @property
    def success(self) -> bool:
        return self.outcome == "success"

    @property
    def steps(self) -> int:
        return int(self.observations.shape[0])


def record_episode(
    env: str | gym.Env, policy: Policy, params: Mapping[str, Any] | None = None, seed: int | None = None,
    capture: Capture = Capture(),
) -> tuple[dict[str, Any], EpisodeRecording]:
    """Run one episode with :func:`run_episode` and record every step.

    Parameters
    ----------
    env : str or gymnasium.Env
    policy : Policy
        With ``embed(obs)`` if ``capture.embed``, with ``sample_chunks(obs, n)`` if ``capture.n_chunks``.
    params, seed
        The scenario and the episode seed.
    capture : Capture
        What to keep of each step beyond the observation and the action.

    Returns
    -------
    (dict, EpisodeRecording)
        The flat record of :func:`run_episode` and the recording. ``failure_step`` is the
        env's (``info["failure_step"]``, None when the env says the failure has no event, as for a
        timeout); for a policy error, or an env that names no event, the last recorded step.
    """
    capture.check(policy)
    own_env = isinstance(env, str)
    env = gym.make(env) if own_env else env
    space = env.observation_space
    gym.spaces.flatdim(space)  # a space robogate cannot flatten is refused before the episode
    obs, actions, embeddings, chunks = [], [], [], []
    last_info: dict[str, Any] = {}

    def on_step(o: Any, action: np.ndarray, info: dict) -> None:
        if capture.embed:
            embeddings.append(policy.embed(o))
        if capture.n_chunks:
            chunks.append(policy.sample_chunks(o, capture.n_chunks))
        obs.append(flat_observation(space, o))
        actions.append(np.asarray(action, dtype=np.float32).reshape(-1))
        last_info.update(info)

    try:
        record = run_episode(env, policy, params, seed, on_step=on_step)
    finally:
        if own_env:
            env.close()
    steps = len(obs)
    failure_step = last_info.get("failure_step")
    if record["outcome"] != "success" and "failure_step" not in last_info and steps:
        failure_step = steps - 1  # an env that names no event (a None it names stays None: a timeout)
    params_out = {k: v for k, v in record.items() if k not in RECORD_FIELDS}
    def rows(values: list) -> np.ndarray:  # (steps, n); (0, 0) for an episode that never stepped
        return np.array(values, dtype=np.float32).reshape(steps, -1) if steps else np.zeros((0, 0), np.float32)

    recording = EpisodeRecording(
        observations=rows(obs),
        actions=rows(actions),
        outcome=record["outcome"],
        params=params_out,
        seed=seed,
        failure_step=None if failure_step is None else int(failure_step),
        embeddings=rows(embeddings) if capture.embed else None,
        action_chunks=np.array(chunks, dtype=np.float32) if capture.n_chunks and steps else None,
        error=record.get("error"),
    )
    return record, recording


__all__ = ["FAILURE", "RECORD_FIELDS", "SUCCESS", "Capture", "EpisodeRecording", "episode_outcome", "record_episode",
           "reset_policy", "run_episode"]
