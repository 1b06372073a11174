"""A safe fallback for a monitored control loop: back away upwards, then wait."""

from __future__ import annotations

from typing import Any

import numpy as np

from robogate.envs.interface import ACTION_NAMES, MAX_STEP, OBS_NAMES
from robogate.scenarios.env_contract import declared

__all__ = ["RetreatPolicy"]

TOOL_HEIGHT = "tcp_position.z"
PAD_CONTACTS = ("pad_contacts.left", "pad_contacts.right")
"""The observation elements a retreat reads, by name."""
RISE, GRIP = "dz", "grip"
"""The action elements a retreat sets, by name."""


class RetreatPolicy:
    """Rise straight up to a safe height and wait there, optionally letting go at the top.

    The gripper keeps what it holds while rising (closed when a pad touches the object,
    open otherwise), so nothing is dropped near the scene; with ``release=True`` it opens
    once at the safe height (in robogate's env, a release ends the episode).

    It drives any env that names, in its ``observation_names``, the tool height
    (``tcp_position.z``) and the pads' contacts (``pad_contacts.left``/``right``), and in its
    ``action_names`` a vertical motion (``dz``, scaled by ``max_step`` metres per step) and a
    grip command (``grip``, +1 open, -1 closed): robogate's envs do. :meth:`check_env` reads
    where they lie, and refuses an env that does not name them.

    Parameters
    ----------
    height : float
        Tool height (m above the table) to retreat to.
    release : bool
        Open the gripper once the safe height is reached.
    max_step : float
        Metres the tool rises per step at ``dz`` = 1.
    """

    def __init__(self, height: float = 0.30, release: bool = False, max_step: float = MAX_STEP) -> None:
        if not 0.0 < float(height) <= 1.0:
            raise ValueError(f"height must be in (0, 1] m, got {height!r}")
        self.height = float(height)
        self.release = bool(release)
        self.max_step = float(max_step)
        self._bind(OBS_NAMES, ACTION_NAMES)
        self.reset()

    def _bind(self, observation_names: Any, action_names: Any) -> None:
        obs, act = list(observation_names), list(action_names)
        self._z, self._pads = obs.index(TOOL_HEIGHT), [obs.index(n) for n in PAD_CONTACTS]
        self._rise, self._grip_at, self._size = act.index(RISE), act.index(GRIP), len(act)

    def check_env(self, env: Any) -> None:
        """Bind to ``env``'s observation and action layout.

        Raises
        ------
        ValueError
            When the env does not name what a retreat reads and sets.
        """
        obs, act = declared(env, "observation_names"), declared(env, "action_names")
        missing = [n for n in (TOOL_HEIGHT, *PAD_CONTACTS) if obs is None or n not in obs]
        missing += [n for n in (RISE, GRIP) if act is None or n not in act]
        if missing:
            raise ValueError(f"RetreatPolicy cannot drive this env: it does not name {', '.join(missing)} in its "
                             "observation_names / action_names; pass a fallback policy of your own")
        self._bind(obs, act)

    def reset(self) -> None:
        self._grip: float | None = None

    def act(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs).reshape(-1)
        if self._grip is None:  # decided once, at the hand-over
            self._grip = -1.0 if np.any(obs[self._pads] > 0.5) else 1.0
        tcp_z = float(obs[self._z])
        action = np.zeros(self._size, dtype=np.float32)
        action[self._rise] = np.clip((self.height - tcp_z) / self.max_step, -1.0, 1.0)
        at_top = abs(self.height - tcp_z) < 0.01
        action[self._grip_at] = 1.0 if (self.release and at_top) else self._grip
        return action
