"""lab_pendulum: a third-party env (Gymnasium's Pendulum) given a scenario space three ways a lab would.

The lab's controller swings the pendulum up by pumping energy with its limited torque, then
balances it; it fails when the pendulum is too heavy or too long for the torque to lift in time,
or when noise and latency upset the balance. Success is the pendulum upright and nearly still
at the end of the episode.

* ``ScenarioPendulum-v0``: :class:`robogate.ScenarioWrapper`, with observation and action noise
  and latency built in, and the observation as a dict (``DictPendulum``) flattened in a
  declared order;
* ``DictPendulum-v0``: the same with the dict observation left as it is;
* ``WrappedPendulum-v0``: the lab's own ``gym.Wrapper`` declaring ``parameter_space`` itself;
* ``HoldingPendulum-v0``: the lab's own ``gym.Env`` holding a Pendulum inside.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import register

from robogate import Continuous, ParameterSpace, ScenarioWrapper

SPACE = ParameterSpace([Continuous("mass", 0.5, 4.0, log=True, nominal=1.0, unit="kg"),
                        Continuous("length", 0.6, 1.6, nominal=1.0, unit="m")])
CONTROL_HZ = 20  # Pendulum's dt is 0.05 s; its metadata's render_fps (30) is not its control rate


def upright(pendulum: gym.Env) -> bool:
    theta, speed = pendulum.unwrapped.state
    return abs(math.remainder(theta, 2 * math.pi)) < 0.3 and abs(speed) < 1.0


def set_pendulum(env: gym.Env, params: dict, rng: np.random.Generator) -> None:
    env.unwrapped.m, env.unwrapped.l = params["mass"], params["length"]


class DictPendulum(gym.ObservationWrapper):
    """Pendulum observed as a dict, as robotics envs observe: ``{"velocity": [w], "angle": [cos, sin]}``."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        box = env.observation_space
        self.observation_space = gym.spaces.Dict({"velocity": gym.spaces.Box(box.low[2:], box.high[2:]),
                                                  "angle": gym.spaces.Box(box.low[:2], box.high[:2])})

    def observation(self, obs):
        return {"velocity": obs[2:].astype(np.float32), "angle": obs[:2].astype(np.float32)}


def scenario_pendulum(render_mode: str | None = None) -> gym.Env:
    return ScenarioWrapper(DictPendulum(gym.make("Pendulum-v1", render_mode=render_mode)), SPACE, apply=set_pendulum,
                           success=lambda env, obs, info: upright(env), observation_keys=("angle", "velocity"),
                           obs_noise=0.2, action_noise=1.0, latency=3, control_hz=CONTROL_HZ)


def dict_pendulum() -> gym.Env:
    """The dict observation left as it is: robogate records it flattened in the space's (sorted) order."""
    return ScenarioWrapper(DictPendulum(gym.make("Pendulum-v1")), SPACE, apply=set_pendulum,
                           success=lambda env, obs, info: upright(env), control_hz=CONTROL_HZ)


class DictSwingUpPolicy:
    """The swing-up controller reading the dict observation."""

    def __init__(self) -> None:
        self.flat = SwingUpPolicy()

    def reset(self) -> None:
        pass

    def act(self, obs: dict) -> np.ndarray:
        return self.flat.act(np.concatenate([obs["angle"], obs["velocity"]]))


class WrappedPendulum(gym.Wrapper):
    """A lab's own wrapper: it declares the space, applies it at reset and reports success at the end."""

    metadata = {"render_modes": [], "render_fps": CONTROL_HZ}

    def __init__(self) -> None:
        super().__init__(gym.make("Pendulum-v1"))
        self.parameter_space = SPACE

    def reset(self, *, seed=None, options=None):
        params = SPACE.validate((options or {}).get("params") or {})
        set_pendulum(self.env, params, np.random.default_rng(seed))
        return self.env.reset(seed=seed)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            info = {**info, "success": upright(self.env)}
        return obs, reward, terminated, truncated, info


class HoldingPendulum(gym.Env):
    """A lab's own env holding a Pendulum inside, with a space of its own."""

    metadata = {"render_modes": [], "render_fps": CONTROL_HZ}

    def __init__(self) -> None:
        self.inner = gym.make("Pendulum-v1")
        self.observation_space, self.action_space = self.inner.observation_space, self.inner.action_space
        self.parameter_space = SPACE

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        set_pendulum(self.inner, SPACE.validate((options or {}).get("params") or {}), self.np_random)
        return self.inner.reset(seed=seed)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.inner.step(action)
        return obs, reward, terminated, truncated, ({"success": upright(self.inner)} if truncated else info)


class SwingUpPolicy:
    """Pump energy with full torque until near the top, then balance with a PD law.

    Reads ``[cos, sin, speed]`` (the flat observation of all three envs).
    """

    def reset(self) -> None:
        pass

    def act(self, obs: np.ndarray) -> np.ndarray:
        cos, sin, speed = (float(v) for v in np.asarray(obs).reshape(-1)[:3])
        theta = math.atan2(sin, cos)
        if cos > 0.85:
            torque = -10.0 * theta - 2.0 * speed
        else:
            energy = 0.5 * speed**2 + 10.0 * (cos - 1.0)
            torque = 2.0 * math.copysign(1.0, speed) if energy < 0 else 0.0
        return np.array([np.clip(torque, -2.0, 2.0)], dtype=np.float32)


register(id="ScenarioPendulum-v0", entry_point="lab_pendulum:scenario_pendulum", max_episode_steps=200)
register(id="DictPendulum-v0", entry_point="lab_pendulum:dict_pendulum", max_episode_steps=200)
register(id="WrappedPendulum-v0", entry_point="lab_pendulum:WrappedPendulum")
register(id="HoldingPendulum-v0", entry_point="lab_pendulum:HoldingPendulum", max_episode_steps=200)
