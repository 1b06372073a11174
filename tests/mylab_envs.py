"""mylab_envs: a lab's own Gymnasium env, written outside robogate, that robogate sweeps.

A pusher slides a puck along a table to a target line. It can only push (never pull), with
at most ``MAX_FORCE``; the puck slides under Coulomb friction and stops where friction stops
it. The lab's controller, :class:`SlidePolicy`, assumes the friction it was tuned on: on a
slipperier surface the coasting puck overshoots, on a heavy, grippy one the pusher cannot
move it, and sensor latency makes it push too long. Those failures come from the dynamics;
the seed draws what varies from episode to episode (the surface's patchiness, the puck's
start, the pusher's gain).

Importing this module registers ``Slide-v0`` with Gymnasium, so robogate sweeps it as
``mylab_envs:Slide-v0`` (``gymnasium.make`` imports the module first, in every worker).
"""

from __future__ import annotations

import math
from collections import deque

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import register

from robogate import Categorical, Continuous, Integer, ParameterSpace

G = 9.81
CONTROL_HZ = 50
SUBSTEPS = 10
"""Physics steps per control step."""
MAX_FORCE = 20.0
"""Largest push (N)."""
TOLERANCE = 0.03
"""Largest distance (m) from the target line at which the puck may come to rest."""
TABLE_END = 1.8
"""Where the table ends (m from the start line): a puck beyond it falls off."""
WAXED = 0.5
"""A waxed surface's friction, as a fraction of the dry one's."""
PATCHINESS = 0.08
"""Log-std of the friction a puck meets in one episode about the surface's coefficient."""
MAX_STEPS = 300


class SlideEnv(gym.Env):
    """Slide a puck to a target line.

    Observation ``[position, velocity, target]`` (m, m/s), ``latency`` control steps old.
    Action ``[push]`` in [-1, 1]; pushes of 0 and below do nothing. ``info["success"]`` at the
    end; a puck that left the table ends with ``info["outcome"] = "fell_off"``.
    """

    metadata = {"render_modes": [], "render_fps": CONTROL_HZ}

    def __init__(self) -> None:
        self.parameter_space = ParameterSpace([
            Continuous("friction", 0.15, 1.0, log=True, nominal=0.4, unit="coefficient"),
            Continuous("mass", 0.2, 5.0, log=True, nominal=1.0, unit="kg"),
            Continuous("distance", 0.4, 1.5, nominal=0.8, unit="m"),
            Integer("latency", 0, 3, nominal=0, unit="control steps"),
            Categorical("surface", ("dry", "waxed")),
        ])
        self.observation_space = gym.spaces.Box(np.array([-1.0, -10.0, 0.0], np.float32),
                                                np.array([3.0, 10.0, 2.0], np.float32))
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.params = self.parameter_space.validate((options or {}).get("params") or {})
        surface = self.params["friction"] * (WAXED if self.params["surface"] == "waxed" else 1.0)
        self.mu = surface * math.exp(self.np_random.normal(0.0, PATCHINESS))
        self.gain = 1.0 + self.np_random.normal(0.0, 0.05)
        self.x, self.v = self.np_random.uniform(-0.02, 0.02), 0.0
        self.seen = deque([self._sense()] * (self.params["latency"] + 1), maxlen=self.params["latency"] + 1)
        return self.seen[0].copy(), {}

    def step(self, action):
        force = MAX_FORCE * self.gain * float(np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[0], 0.0, 1.0))
        m, dt = self.params["mass"], 1.0 / (CONTROL_HZ * SUBSTEPS)
        grip = self.mu * m * G
        for _ in range(SUBSTEPS):
            if self.v == 0.0 and force <= grip:
                continue  # static friction holds the puck
            v = self.v + (force - grip) / m * dt
            self.v = max(v, 0.0)  # friction stops a sliding puck; it never drives it backwards
            self.x += self.v * dt
        self.seen.append(self._sense())
        target = self.params["distance"]
        info, done = {}, False
        if self.x > TABLE_END:
            info, done = {"success": False, "outcome": "fell_off"}, True
        elif self.v == 0.0 and self.x >= target - TOLERANCE:  # at rest, and the pusher cannot pull it back
            info, done = {"success": self.x <= target + TOLERANCE}, True
        return self.seen[0].copy(), float(info.get("success", 0.0)), done, False, info

    def _sense(self) -> np.ndarray:
        return np.clip([self.x, self.v, self.params["distance"]], self.observation_space.low,
                       self.observation_space.high).astype(np.float32)


class SlidePolicy:
    """The lab's controller: push while slower than what coasts to the target at the friction it was tuned on."""

    TUNED_FRICTION = 0.4
    CRUISE = 1.2
    """Fastest approach (m/s)."""

    def reset(self) -> None:
        pass

    def act(self, obs: np.ndarray) -> np.ndarray:
        x, v, target = (float(o) for o in obs)
        wanted = min(self.CRUISE, math.sqrt(2.0 * self.TUNED_FRICTION * G * max(target - x, 0.0)))
        return np.array([np.clip(2.0 * (wanted - v), -1.0, 1.0)], dtype=np.float32)


register(id="Slide-v0", entry_point="mylab_envs:SlideEnv", max_episode_steps=MAX_STEPS)
