"""Sensor noise on robogate's pick-and-place observation, at the magnitude of real sensors.

robogate's envs observe the scene exactly. A real cell reads the arm's pose from joint encoders
(forward kinematics good to about a millimetre) and the object, the target and the obstacles
from a camera (pose estimates good to a few millimetres and a degree or two, velocities from
differences of those). :class:`SensorNoise` adds independent Gaussian noise of that size to each
element of the observation, drawn afresh at every step from the episode's seed; contacts, the
shape's one-hot code and the empty obstacle slots (nothing there to see) are read exactly. The scenario parameters are untouched: the wrapped env has
robogate's space, so its sweeps and rollouts mean what robogate's do.

Importing this module registers one noisy env per arm, ``robogate/PickPlace-<Arm>-SensorNoise-v0``;
name it ``"robogate.envs.sensor_noise:robogate/PickPlace-Panda-SensorNoise-v0"`` so that every
worker process imports it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import register, registry

from .interface import MAX_OBSTACLES, OBS_FIELDS, OBS_SIZE, OBS_SLICES

__all__ = ["SENSOR_NOISE", "SENSOR_NOISE_ENV_IDS", "SensorNoise", "noise_scale"]

SENSOR_NOISE: dict[str, float | tuple[float, ...]] = {
    "tcp_position": 0.001,           # m: joint encoders through forward kinematics
    "tcp_yaw": 0.005,                # sin and cos of the tool's yaw (about 0.3 degrees)
    "gripper_opening": 0.0005,       # m: finger encoder
    "pad_contacts": 0.0,             # tactile switches read exactly
    "object_position": 0.004,        # m: a camera's pose estimate
    "object_orientation": 0.015,     # quaternion elements (about 2 degrees)
    "object_velocity": 0.03,         # m/s: differences of 4 mm estimates at 10 Hz, smoothed
    "object_size": 0.002,            # m: the object's extent from the camera
    "object_shape": 0.0,             # the shape's class, read exactly
    "target_position": 0.004,        # m: the place target's pose from the camera
    "obstacles": (0.004, 0.004, 0.004, 0.0),  # x, y, height from the camera; present read exactly
}
"""Standard deviation of the noise on each field of the observation, in the field's units (a tuple:
per element of each repeated group, e.g. each obstacle's x, y, height and present)."""


def noise_scale(table: Mapping[str, Any] = SENSOR_NOISE) -> np.ndarray:
    """The noise's standard deviation for each element of the flat observation, shape (OBS_SIZE,)."""
    scale = np.zeros(OBS_SIZE)
    for name, labels in OBS_FIELDS:
        value = np.asarray(table.get(name, 0.0), dtype=float).reshape(-1)
        part = OBS_SLICES[name]
        scale[part] = np.resize(value, len(labels))
    return scale


class SensorNoise(gym.ObservationWrapper):
    """Gaussian noise of :data:`SENSOR_NOISE` (or ``table``) on every observation, seeded by ``reset(seed=...)``.

    Parameters
    ----------
    env : gymnasium.Env
        One of robogate's pick-and-place envs (its observation has :data:`OBS_SIZE` elements).
    table : mapping, optional
        Field name -> standard deviation, as :data:`SENSOR_NOISE` (the default).
    scale : float
        Multiplies every standard deviation.
    """

    def __init__(self, env: gym.Env, table: Mapping[str, Any] | None = None, scale: float = 1.0) -> None:
        super().__init__(env)
        if env.observation_space.shape != (OBS_SIZE,):
            raise ValueError(f"SensorNoise wraps robogate's pick-and-place envs (observations of {OBS_SIZE} "
                             f"elements), got an observation space of shape {env.observation_space.shape}")
        if not float(scale) >= 0.0:
            raise ValueError(f"scale must be a non-negative number, got {scale!r}")
        self.std = float(scale) * noise_scale(SENSOR_NOISE if table is None else table)
        self._rng = np.random.default_rng()
        start = OBS_SLICES["obstacles"].start
        self._slots = start + 4 * np.arange(MAX_OBSTACLES)  # each slot: x, y, height, present

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._rng = np.random.default_rng([int(seed), 0x5E115])
        return super().reset(seed=seed, options=options)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        clean = np.asarray(observation, dtype=np.float64)
        noise = self._rng.normal(size=self.std.shape) * self.std
        for slot in self._slots[clean[self._slots + 3] < 0.5]:  # an empty slot: no obstacle to misread
            noise[slot:slot + 3] = 0.0
        noisy = clean + noise
        space = self.observation_space
        return np.clip(noisy, space.low, space.high).astype(space.dtype)


def _make(robot: str, **kwargs: Any) -> gym.Env:
    return SensorNoise(gym.make(f"robogate/PickPlace-{robot}-v0", **kwargs))


SENSOR_NOISE_ENV_IDS: list[str] = []
for _robot in ("Panda", "UR5e", "XArm6"):
    _env_id = f"robogate/PickPlace-{_robot}-SensorNoise-v0"
    if _env_id not in registry:
        register(id=_env_id, entry_point=_make, kwargs={"robot": _robot})
    SENSOR_NOISE_ENV_IDS.append(_env_id)
