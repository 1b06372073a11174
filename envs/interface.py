"""The interface of robogate's pick-and-place envs, free of the simulator: rates, limits and layouts.

What a policy, a recorder or a monitor needs to know of robogate's envs without loading PyBullet:
the control rate, the action's and the observation's layout (each element named), the episode's
time limit, and the action that holds the arm still. The env itself (:mod:`.pick_place_env`)
reads them from here.
"""

from __future__ import annotations

import numpy as np

from .scene import SHAPES

CONTROL_HZ = 10
"""Control steps per second (24 physics steps of 1/240 s each)."""
MAX_STEP = 0.05
"""Largest tool displacement per control step and axis (m), at action +-1."""
MAX_YAW_STEP = 0.3
"""Largest tool rotation about the vertical per control step (rad), at action +-1."""
MAX_EPISODE_STEPS = 120
"""Default time limit in control steps (12 s), set per env with ``gym.make(id, max_steps=N)``."""
MAX_OBSTACLES = 4
"""Obstacle slots in the scene and in the observation."""

ACTION_NAMES: tuple[str, ...] = ("dx", "dy", "dz", "dyaw", "grip")
"""The name of each element of the action."""
GRIP_INDEX = ACTION_NAMES.index("grip")
GRIP_OPEN = 1.0
"""The grip command that opens the fingers fully (-1 closes them)."""

_XYZ = ("x", "y", "z")
OBS_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("tcp_position", _XYZ),
    ("tcp_yaw", ("sin", "cos")),
    ("gripper_opening", ("",)),
    ("pad_contacts", ("left", "right")),
    ("object_position", _XYZ),
    ("object_orientation", ("qx", "qy", "qz", "qw")),
    ("object_velocity", _XYZ),
    ("object_size", ("",)),
    ("object_shape", tuple(SHAPES)),  # one-hot, in the order of SHAPES
    ("target_position", _XYZ),
    ("obstacles", tuple(f"{i}.{c}" for i in range(MAX_OBSTACLES) for c in ("x", "y", "height", "present"))),
)
"""The observation's fields in order, each with the labels of its elements ("" for a scalar)."""


def _slices() -> dict[str, slice]:
    out, start = {}, 0
    for name, labels in OBS_FIELDS:
        out[name] = slice(start, start + len(labels))
        start += len(labels)
    return out


OBS_SLICES: dict[str, slice] = _slices()
"""Where each field lies in the flat observation vector."""
OBS_NAMES: tuple[str, ...] = tuple(f"{name}.{label}" if label else name
                                   for name, labels in OBS_FIELDS for label in labels)
"""The name of each element of the observation, e.g. ``object_position.z``."""
OBS_SIZE = len(OBS_NAMES)
OBS_BOUND = 10.0
"""Observations are clipped to +-10 (metres, m/s): far beyond anything a settled scene produces."""


def hold_action(last_action: np.ndarray | None) -> np.ndarray:
    """The action that keeps the arm still, the gripper as ``last_action`` commanded it (open if none)."""
    action = np.zeros(len(ACTION_NAMES), dtype=np.float32)
    action[GRIP_INDEX] = GRIP_OPEN if last_action is None else np.asarray(last_action).reshape(-1)[GRIP_INDEX]
    return action
