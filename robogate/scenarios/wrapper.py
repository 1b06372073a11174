"""Give an existing Gymnasium env a scenario space, without rewriting it.

:class:`ScenarioWrapper` turns any env into one robogate sweeps, gates, records and monitors: it
declares the space, applies each episode's parameters at reset through a hook of the lab's own,
reports ``info["success"]`` from the env's own success signal, and adds the nuisance parameters
every lab wants on any Box-action env: observation noise, action noise and action latency.

Example, panda-gym's pick-and-place with the object's mass and friction swept::

    import gymnasium as gym, panda_gym
    from robogate import Continuous, ParameterSpace, ScenarioWrapper
    from robogate.physics import pybullet as pb

    space = ParameterSpace([Continuous("mass", 0.1, 2.0, log=True, nominal=1.0, unit="kg"),
                            Continuous("friction", 0.1, 1.5, log=True, nominal=1.0)])

    def apply(env, params, rng):
        sim = env.unwrapped.sim
        pb.set_mass(sim.physics_client, sim._bodies_idx["object"], params["mass"])
        pb.set_lateral_friction(sim.physics_client, sim._bodies_idx["object"], params["friction"])

    env = ScenarioWrapper(gym.make("PandaPickAndPlace-v3"), space, apply=apply, success="is_success",
                          observation_keys=("observation", "desired_goal"), obs_noise=0.01, latency=3)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from robogate.scenarios.env_contract import hold_action as declared_hold_action
from robogate.scenarios.space import Continuous, Integer, ParameterSpace

__all__ = ["NUISANCE", "ScenarioWrapper"]

NUISANCE = {
    "obs_noise": "standard deviation of Gaussian noise on every observation element, in its own units",
    "action_noise": "standard deviation of Gaussian noise on every action element, in its own units",
    "latency": "control steps an action waits before it runs (the first ones hold the robot still)",
}
"""The nuisance parameters :class:`ScenarioWrapper` can add to a space, and what each does."""

Apply = Callable[[gym.Env, dict[str, Any], np.random.Generator], None]
Success = Callable[[gym.Env, Any, dict[str, Any]], Any]


def _success_value(value: Any, where: str) -> bool:
    """A success flag given as a bool, a number or a 0-d (or one-element) array, as a bool."""
    array = np.asarray(value)
    if array.size != 1 or array.dtype.kind not in "biuf":
        raise ValueError(f"{where} must be a bool, a number or a 0-d array, got {type(value).__name__} {value!r}")
    return bool(array.reshape(-1)[0])


class ScenarioWrapper(gym.Wrapper):
    """An env with a scenario space: parameters applied at reset, success reported, nuisance built in.

    Parameters
    ----------
    env : gymnasium.Env
        The env to wrap, as the lab made it.
    space : ParameterSpace
        The scenario parameters ``apply`` sets. The nuisance parameters asked for below are
        added to it (``parameter_space`` holds both).
    apply : callable, optional
        ``apply(env, params, rng)``, called at every reset *before* the wrapped env resets, with
        the wrapped env, the episode's complete parameters and a generator seeded by the
        episode's seed (for what the parameters leave to chance). Set model properties here
        (masses, frictions, sizes: :mod:`robogate.physics` has setters for MuJoCo and
        PyBullet); they hold through the env's own reset, so its first observation sees them.
    success : str or callable, default "is_success"
        The key of ``info`` holding the env's success flag (a bool, a number or a 0-d array),
        or ``success(env, obs, info)`` returning one. Read when an episode ends and written to
        ``info["success"]``.
    end_on_success : bool, default False
        End the episode (``terminated``) at the first step that succeeds, for envs that run on
        to their time limit.
    observation_keys : sequence of str, optional
        For a dict observation: the keys to keep, flattened into one vector in this order.
        Left out, a dict observation stays a dict (robogate records it flattened in the
        space's order).
    obs_noise, action_noise : float, optional
        Add ``obs_noise`` / ``action_noise`` to the space, from 0 (nominal) to this largest
        standard deviation.
    latency : int, optional
        Add ``latency`` to the space, from 0 (nominal) to this many control steps.
    hold_action : array or callable, optional
        The action that keeps the robot still (a function of the last action, or None before
        the first): what the first steps of a latency run, and what a monitor's ``"hold"``
        sends. Default zeros clipped into the action space.
    control_hz : float, optional
        Control steps per second, when the env's ``metadata["render_fps"]`` is not that rate.
    training_envelope : mapping, optional
        Limits of the scenes demonstrations and rollouts are drawn from by default (the rest
        nominal).

    Raises
    ------
    ValueError
        For a nuisance parameter whose name the space already uses, noise on a non-Box space,
        observation keys the observation does not have, or a success key of the wrong kind.
    """

    def __init__(
        self,
        env: gym.Env,
        space: ParameterSpace,
        *,
        apply: Apply | None = None,
        success: str | Success = "is_success",
        end_on_success: bool = False,
        observation_keys: Sequence[str] | None = None,
        obs_noise: float | None = None,
        action_noise: float | None = None,
        latency: int | None = None,
        hold_action: np.ndarray | Callable[[np.ndarray | None], np.ndarray] | None = None,
        control_hz: float | None = None,
        training_envelope: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(env)
        if not isinstance(space, ParameterSpace):
            raise ValueError(f"space must be a robogate.ParameterSpace, got {type(space).__name__}")
        if apply is not None and not callable(apply):
            raise ValueError(f"apply must be a function apply(env, params, rng), got {type(apply).__name__}")
        if not (isinstance(success, str) or callable(success)):
            raise ValueError(f"success must be an info key or a function success(env, obs, info), got {success!r}")
        self.parameter_space = self._with_nuisance(space, obs_noise, action_noise, latency)
        self._apply, self._success, self.end_on_success = apply, success, bool(end_on_success)
        self._keys = self._check_keys(observation_keys)
        if self._keys is not None:
            parts = [gym.spaces.flatten_space(env.observation_space[k]) for k in self._keys]
            # float32 bounds for the float32 vector it returns (float64 ones make Gymnasium warn of lost precision)
            low, high = (np.concatenate([getattr(p, side) for p in parts]).astype(np.float32) for side in ("low", "high"))
            self.observation_space = gym.spaces.Box(low, high, dtype=np.float32)
        if self._noisy("obs_noise") and not isinstance(self.observation_space, (gym.spaces.Box, gym.spaces.Dict)):
            raise ValueError(f"obs_noise needs a Box or Dict observation space, got {self.observation_space}")
        if self._noisy("action_noise") and not isinstance(env.action_space, gym.spaces.Box):
            raise ValueError(f"action_noise needs a Box action space, got {env.action_space}")
        if hold_action is not None:
            self.hold_action = hold_action
        if control_hz is not None:
            self.control_hz = float(control_hz)
        if training_envelope is not None:
            self.training_envelope = dict(training_envelope)
        self.params: dict[str, Any] = self.parameter_space.nominal()
        self._rng = np.random.default_rng()
        self._pending: deque = deque()

    # -- construction ------------------------------------------------------------------------

    @staticmethod
    def _with_nuisance(space: ParameterSpace, obs_noise: Any, action_noise: Any, latency: Any) -> ParameterSpace:
        extra = []
        for name, largest in (("obs_noise", obs_noise), ("action_noise", action_noise)):
            if largest is not None:
                extra.append(Continuous(name, 0.0, float(largest), nominal=0.0, unit="std"))
        if latency is not None:
            extra.append(Integer("latency", 0, int(latency), nominal=0, unit="control steps"))
        clash = [d.name for d in extra if d.name in space]
        if clash:
            raise ValueError(f"the space already has a parameter named {clash[0]!r}; rename it, or leave out the "
                             f"wrapper's own {clash[0]} ({NUISANCE[clash[0]]})")
        return ParameterSpace([*space, *extra])

    def _check_keys(self, keys: Sequence[str] | None) -> tuple[str, ...] | None:
        if keys is None:
            return None
        space = self.env.observation_space
        if not isinstance(space, gym.spaces.Dict):
            raise ValueError(f"observation_keys is for a dict observation; this env's observation space is {space}")
        keys = tuple(keys)
        unknown = [k for k in keys if k not in space.spaces]
        if unknown or not keys:
            raise ValueError(f"observation_keys {list(keys)}: the observation has the keys {list(space.spaces)}")
        return keys

    def _noisy(self, name: str) -> bool:
        return name in self.parameter_space

    # -- gymnasium API -----------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        options = dict(options or {})
        self.params = self.parameter_space.validate(options.pop("params", None) or {})
        scene, self._rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
        if self._apply is not None:
            self._apply(self.env, dict(self.params), scene)
        obs, info = self.env.reset(seed=seed, options=options or None)
        hold = declared_hold_action(self, None)
        self._pending = deque([hold] * int(self.params.get("latency", 0)))
        info = dict(info)
        info["params"] = dict(self.params)
        return self._observe(obs), info

    def step(self, action):
        action = self._perturb(action)
        self._pending.append(action)
        executed = self._pending.popleft()
        obs, reward, terminated, truncated, info = self.env.step(executed)
        info = dict(info)
        succeeded = None
        if terminated or truncated or self.end_on_success:
            succeeded = self._succeeded(obs, info)
            if succeeded and self.end_on_success:
                terminated = True
        if terminated or truncated:
            info["success"] = succeeded
            info["params"] = dict(self.params)
        return self._observe(obs), reward, terminated, truncated, info

    # -- internals ---------------------------------------------------------------------------

    def _succeeded(self, obs: Any, info: dict[str, Any]) -> bool:
        if callable(self._success):
            return _success_value(self._success(self.env, obs, info), "success(env, obs, info)")
        if self._success not in info:
            raise KeyError(f"the env's info has no {self._success!r} (success='{self._success}'); its keys are "
                           f"{sorted(info)}: pass the key that holds its success flag, or a function")
        return _success_value(info[self._success], f"info[{self._success!r}]")

    def _perturb(self, action: Any) -> Any:
        std = self.params.get("action_noise", 0.0)
        if not std:
            return action
        space = self.env.action_space
        noisy = np.asarray(action, dtype=np.float64) + self._rng.normal(0.0, std, size=space.shape)
        return np.clip(noisy, space.low, space.high).astype(space.dtype)

    def _observe(self, obs: Any) -> Any:
        if self._keys is not None:
            obs = np.concatenate([np.asarray(obs[k], dtype=np.float32).reshape(-1) for k in self._keys])
        std = self.params.get("obs_noise", 0.0)
        if not std:
            return obs
        space = self.observation_space
        flat = gym.spaces.flatten(space, obs).astype(np.float64)
        flat = flat + self._rng.normal(0.0, std, size=flat.shape)
        bounds = gym.spaces.flatten_space(space)
        return gym.spaces.unflatten(space, np.clip(flat, bounds.low, bounds.high).astype(bounds.dtype))
