"""A safe fallback for a monitored control loop: back away upwards, then wait."""

from __future__ import annotations

import numpy as np

from robogate.envs.pick_place_env import ACTION_NAMES, MAX_STEP, OBS_SLICES

__all__ = ["RetreatPolicy"]

_DZ, _GRIP = ACTION_NAMES.index("dz"), ACTION_NAMES.index("grip")
"""Where the vertical motion and the gripper command sit in the action."""


class RetreatPolicy:
    """Rise straight up to a safe height and wait there, optionally letting go at the top.

    The gripper keeps what it holds while rising (closed when a pad touches the object,
    open otherwise), so nothing is dropped near the scene; with ``release=True`` it opens
    once at the safe height (in robogate's env, a release ends the episode).

    Parameters
    ----------
    height : float
        Tool height (m above the table) to retreat to.
    release : bool
        Open the gripper once the safe height is reached.
    """

    def __init__(self, height: float = 0.30, release: bool = False) -> None:
        if not 0.0 < float(height) <= 1.0:
            raise ValueError(f"height must be in (0, 1] m, got {height!r}")
        self.height = float(height)
        self.release = bool(release)
        self.reset()

    def reset(self) -> None:
        self._grip: float | None = None

    def act(self, obs: np.ndarray) -> np.ndarray:
        if self._grip is None:  # decided once, at the hand-over
            self._grip = -1.0 if np.any(obs[OBS_SLICES["pad_contacts"]] > 0.5) else 1.0
        tcp_z = float(obs[OBS_SLICES["tcp_position"]][2])
        action = np.zeros(len(ACTION_NAMES), dtype=np.float32)
        action[_DZ] = np.clip((self.height - tcp_z) / MAX_STEP, -1.0, 1.0)
        at_top = abs(self.height - tcp_z) < 0.01
        action[_GRIP] = 1.0 if (self.release and at_top) else self._grip
        return action
