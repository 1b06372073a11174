"""The unit of work of a sweep: one trial, run by a pure, picklable function.

A :class:`Trial` says everything a worker needs (env id, policy spec or packed policy,
parameters, seed); :func:`run_trial` runs it and returns a flat record. Each worker process keeps
the envs it has made (and the policies, see :mod:`robogate.execution.specs`) in module-level caches, so the
simulator is loaded once per process and reused (its saved state is restored on every reset),
never reloaded per episode. Whichever way a policy comes, its episodes run torch on one thread
(see :mod:`robogate._utils.threads`).
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from robogate.envs import ENV_IDS
from robogate.execution.episode import Capture, record_episode, run_episode
from robogate.execution.specs import PolicyPayload, cached_policy, policy_label
from robogate.scenarios.env_contract import control_hz, no_rate_warning, scenario_space
from robogate.scenarios.space import ParameterSpace

__all__ = ["Trial", "cached_env", "check_clock", "env_space", "run_trial", "validate_env_id"]

_ENVS: dict[str, Any] = {}
"""Per-process cache: a worker makes each env once and reuses it."""


@dataclass(frozen=True)
class Trial:
    """One experiment of a sweep.

    Parameters
    ----------
    id : int
        Sequential experiment id, unique within the sweep.
    env_id : str
        A Gymnasium env id (see :func:`validate_env_id`), e.g. one of ``robogate.ENV_IDS``.
    policy : str or PolicyPayload
        A policy spec (``"scripted"``, ``"flow"``, ``"package.module:Factory"``) or a packed object.
    params : dict
        Scenario parameters; omitted ones take their nominal values.
    seed : int
        Seed of the episode's nuisance variation.
    stage : int
        Sampler stage (1 = Latin Hypercube, 2 = boundary-focused).
    batch : int
        Index of the sampler batch the trial belongs to.
    capture : Capture, optional
        Record every step too (see :func:`robogate.execution.episode.record_episode`): the record then
        carries the :class:`~robogate.execution.episode.EpisodeRecording` under ``"recording"``.
    episode : callable, optional
        Runs the episode instead of :func:`robogate.run_episode`: a picklable
        ``episode(env, policy, params, seed)`` returning its flat record (e.g. an attempt
        watched by a failure monitor, :mod:`robogate.monitor.production`).
    """

    id: int
    env_id: str
    policy: str | PolicyPayload
    params: dict = field(hash=False)
    seed: int
    stage: int
    batch: int
    capture: Capture | None = None
    episode: Any = None

    def plan_row(self) -> dict[str, Any]:
        """The trial as a flat row of a sweep plan (``id``, ``stage``, ``batch``, ``seed``, params)."""
        return {"id": self.id, "stage": self.stage, "batch": self.batch, "seed": self.seed, **self.params}


def validate_env_id(env_id: Any) -> str:
    """Return ``env_id`` if Gymnasium knows it.

    Any registered id, or ``module:EnvId``: as :func:`gymnasium.make` does, the module is
    imported first (it registers ``EnvId``), so every worker process finds the env too.

    Raises
    ------
    ValueError
        Naming the id and why it is unknown.
    """
    if not isinstance(env_id, str) or not env_id.strip():
        raise ValueError(f"env id must be a non-empty string such as {ENV_IDS[0]!r}, got {env_id!r}")
    module, sep, name = env_id.rpartition(":")
    if sep:
        try:
            importlib.import_module(module)
        except Exception as exc:
            raise ValueError(f"unknown env id {env_id!r}: cannot import module {module!r} "
                             f"({type(exc).__name__}: {exc})") from None
    try:
        gym.spec(name)
    except gym.error.Error:
        raise ValueError(f"unknown env id {env_id!r}: Gymnasium has no env {name!r} registered; robogate's are "
                         f"{', '.join(ENV_IDS)}, and an env of your own is named 'module:EnvId' "
                         "(the module registers EnvId)") from None
    return env_id


def env_space(env_id: str) -> ParameterSpace:
    """The scenario space the env declares (see :func:`robogate.scenarios.env_contract.scenario_space`).

    The env is made once per process and kept for the trials run here.

    Raises
    ------
    ValueError
        For an unknown env id, or an env that declares no :class:`~robogate.scenarios.space.ParameterSpace`.
    """
    return scenario_space(cached_env(env_id), env_id)


def check_clock(env_id: str) -> float | None:
    """The env's control rate; when it declares none, one warning saying what to declare."""
    rate = control_hz(cached_env(env_id))
    if rate is None:
        warnings.warn(no_rate_warning(env_id), RuntimeWarning, stacklevel=3)
    return rate


def cached_env(env_id: str) -> gym.Env:
    """The env of ``env_id``, made once per process and reused (its scenario space checked once).

    Raises
    ------
    ValueError
        For an unknown env id, or an env that declares no scenario space.
    """
    env = _ENVS.get(env_id)
    if env is None:
        validate_env_id(env_id)
        env = gym.make(env_id)
        try:
            scenario_space(env, env_id)
        except ValueError:
            env.close()
            raise
        _ENVS[env_id] = env
    return env


def run_trial(trial: Trial) -> dict[str, Any]:
    """Run one trial in this process, reusing its cached env and policy.

    Parameters
    ----------
    trial : Trial
        What to run.

    Returns
    -------
    dict
        ``id``, ``stage``, ``batch``, then the :func:`robogate.run_episode`
        record (parameters, ``env_id``, ``seed``, ``outcome``, ``success``,
        ``steps``, ``sim_time``, ``wall_time``, ``physics_time``, ``error``)
        and ``policy``, plus ``recording`` when the trial captures its steps.  A
        policy that raises gives an ``outcome == "error"`` record with the
        message in ``error``.

    Raises
    ------
    ValueError
        For an unknown env id, a bad policy spec or invalid parameters.
    """
    env = cached_env(trial.env_id)
    policy = cached_policy(trial.policy)
    recording = None
    try:
        if trial.episode is not None:
            record = trial.episode(env, policy, trial.params, trial.seed)
        elif trial.capture is None:
            record = run_episode(env, policy, trial.params, trial.seed)
        else:
            record, recording = record_episode(env, policy, trial.params, trial.seed, trial.capture)
    except ValueError:
        raise
    except BaseException:
        # The env may be left mid-reset: make a fresh one next time.
        broken = _ENVS.pop(trial.env_id, None)
        if broken is not None:
            try:
                broken.close()
            except Exception:  # pragma: no cover - best effort
                pass
        raise
    out = {"id": int(trial.id), "stage": int(trial.stage), "batch": int(trial.batch)}
    for key, value in record.items():
        out[key] = trial.env_id if key == "env_id" else value  # the id as given, "module:EnvId" included
        if key == "env_id":
            out["policy"] = policy_label(trial.policy)
    if recording is not None:
        out["recording"] = recording
    return out

