"""What robogate reads of any Gymnasium env, and where: the one owner of that contract.

An env is swept, gated, recorded and monitored like robogate's own when it declares, on the
env itself or on any wrapper around it (read through Gymnasium's ``get_wrapper_attr``, so a
lab's plain ``gym.Wrapper`` works as well as a ``gym.Env`` of its own):

``parameter_space``    its scenario space, a :class:`~robogate.scenarios.space.ParameterSpace` (required);
``control_hz``         control steps per second; else ``metadata["render_fps"]``;
``hold_action``        the action that keeps the robot still: an array, or a function of the
                       last action taken (None before the first); else zeros, clipped into the
                       action space (no motion, for delta actions);
``training_envelope``  where its demonstrations and rollouts are drawn by default (an
                       :class:`~robogate.scenarios.envelope.Envelope` or a mapping of limits, the rest
                       held nominal); else its whole space;
``observation_names``, ``action_names``, ``robot_type``, ``task_description``
                       what recordings and LeRobot datasets name its features, robot and task.

It takes its scenario at ``reset(options={"params": {...}})`` and reports ``info["success"]``
when an episode ends (optionally ``info["outcome"]``, ``info["failure_step"]`` and
``info["physics_time"]``, the seconds spent in its physics engine). Observations may be
arrays or dicts of arrays: robogate records them flat (:func:`flat_observation`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from robogate.scenarios.envelope import Envelope
from robogate.scenarios.space import ParameterSpace

__all__ = ["control_hz", "declared", "flat_observation", "hold_action", "no_rate_warning",
           "observation_names", "recording_facts", "scenario_space", "training_envelope"]


def declared(env: gym.Env, name: str, default: Any = None) -> Any:
    """``name`` as the env or a wrapper around it declares it (``get_wrapper_attr``), else ``default``."""
    try:
        value = env.get_wrapper_attr(name)
    except AttributeError:
        return default
    return default if value is None else value


def scenario_space(env: gym.Env, env_id: str | None = None) -> ParameterSpace:
    """The scenario space ``env`` declares (``parameter_space``).

    Raises
    ------
    ValueError
        When it declares none, saying how to give it one.
    """
    space = declared(env, "parameter_space")
    if not isinstance(space, ParameterSpace):
        name = env_id or (env.spec.id if env.spec is not None else type(env.unwrapped).__name__)
        raise ValueError(f"env {name!r} declares no scenario space: give it a parameter_space (a "
                         f"robogate.ParameterSpace), e.g. by wrapping it in robogate.ScenarioWrapper "
                         f"(got {type(space).__name__})")
    return space


def control_hz(env: gym.Env) -> float | None:
    """Control steps per second the env declares (``control_hz``, else ``metadata["render_fps"]``); None if neither."""
    rate = declared(env, "control_hz")
    if rate is None:
        rate = (getattr(env, "metadata", None) or {}).get("render_fps")
    if rate is None:
        return None
    rate = float(rate)
    if not np.isfinite(rate) or rate <= 0:
        raise ValueError(f"the env declares a control rate of {rate!r} Hz; it must be a positive number")
    return rate


def no_rate_warning(env_id: str) -> str:
    """The one warning line for an env that declares no control rate."""
    return (f"env {env_id} declares no control rate: times are left unknown (sim_time NaN, lead times in steps only); "
            "declare metadata['render_fps'] or a control_hz attribute (control steps per second)")


def hold_action(env: gym.Env, last_action: np.ndarray | None) -> np.ndarray:
    """The action that keeps the robot still, as the env declares it (see the module docstring)."""
    declared_hold = declared(env, "hold_action")
    if callable(declared_hold):
        return np.asarray(declared_hold(last_action), dtype=np.float32)
    if declared_hold is not None:
        return np.asarray(declared_hold, dtype=np.float32)
    space = env.action_space
    if not isinstance(space, gym.spaces.Box):
        raise ValueError(f"holding needs a Box action space or a declared hold_action; this env's action space is "
                         f"{space}: declare hold_action on the env (or ScenarioWrapper(hold_action=...))")
    return np.clip(np.zeros(space.shape, dtype=np.float32), space.low, space.high)


def training_envelope(env: gym.Env, space: ParameterSpace | None = None) -> Envelope:
    """The env's declared training envelope (limits given as a mapping hold the rest nominal), else its whole space."""
    space = space if space is not None else scenario_space(env)
    envelope = declared(env, "training_envelope")
    if envelope is None:
        return Envelope(space, {}, rest="free")
    if isinstance(envelope, Envelope):
        return envelope
    if isinstance(envelope, Mapping):
        return Envelope(space, envelope, rest="nominal")
    raise ValueError(f"the env's training_envelope must be an Envelope or a mapping of limits, got "
                     f"{type(envelope).__name__}")


def flat_observation(space: gym.Space | None, obs: Any) -> np.ndarray:
    """``obs`` as one float32 vector: an array as it is, a dict (or tuple) flattened in ``space``'s order.

    Without a space, a dict is flattened by sorted key, as Gymnasium orders a ``Dict`` space.
    """
    if space is None and isinstance(obs, Mapping):
        return np.concatenate([flat_observation(None, obs[k]) for k in sorted(obs)])
    if space is None or isinstance(space, gym.spaces.Box):
        return np.asarray(obs, dtype=np.float32).reshape(-1)
    try:
        return np.asarray(gym.spaces.flatten(space, obs), dtype=np.float32)
    except Exception as exc:
        raise ValueError(f"cannot flatten an observation of space {space} ({type(exc).__name__}: {exc}); robogate "
                         "records Box observations and dicts of them") from None


def observation_names(env: gym.Env) -> list[str] | None:
    """A name per element of the flat observation: the env's ``observation_names``, else, for a dict
    observation, ``key.i`` in the flattening order; None when neither is known."""
    names = declared(env, "observation_names")
    if names is not None:
        return [str(n) for n in names]
    space = env.observation_space
    if isinstance(space, gym.spaces.Dict):
        return [f"{key}.{i}" for key, sub in space.spaces.items() for i in range(gym.spaces.flatdim(sub))]
    return None


def recording_facts(env: gym.Env, env_id: str) -> dict[str, Any]:
    """What a recording of ``env`` says of it: ``env_id``, ``fps`` (its control rate, None if
    undeclared), ``robot_type``, ``observation_names``, ``action_names`` (None where unknown) and
    ``task`` (its ``task_description``, else the env id)."""
    actions = declared(env, "action_names")
    return {
        "env_id": env_id,
        "fps": control_hz(env),
        "robot_type": declared(env, "robot_type"),
        "observation_names": observation_names(env),
        "action_names": None if actions is None else [str(a) for a in actions],
        "task": declared(env, "task_description") or env_id,
    }
