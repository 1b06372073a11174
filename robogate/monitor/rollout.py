"""One recorded rollout of a policy: what the runtime monitor reads, step by step."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robogate.execution.episode import EpisodeRecording

__all__ = ["SIGNALS", "Rollout"]

SIGNALS = ("observations", "embeddings", "action_chunks", "actions")
"""The per-step signals a rollout may carry and a failure score may read (a live monitor gets the
action of the step before: what moved the world to the current observation)."""


def _steps_array(value: Any, name: str, ndim: int, steps: int | None) -> np.ndarray:
    array = np.asarray(value, dtype=np.float32)
    shape = "(T, d)" if ndim == 2 else "(T, B, H, A)"
    if array.ndim != ndim or array.shape[0] == 0:
        raise ValueError(f"Rollout.{name} must have shape {shape} with T >= 1, got {array.shape}")
    if steps is not None and array.shape[0] != steps:
        raise ValueError(f"Rollout.{name} has {array.shape[0]} steps, the rollout's other signals {steps}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"Rollout.{name} holds NaN or infinite values")
    return array


@dataclass(frozen=True, eq=False)
class Rollout:
    """The per-step signals of one episode, as the monitor sees them.

    Every signal given has one row per control step T; at least the embeddings or the
    observations are needed.

    Parameters
    ----------
    embeddings : array of shape (T, d), optional
        The policy's observation embedding at each step (None for a policy with no encoder).
    action_chunks : array of shape (T, B, H, A), optional
        The B action chunks of horizon H the policy sampled at each step
        (None for a policy with no sampler).
    success : bool
        Whether the episode ended in ``success``.
    outcome : str, optional
        The episode's outcome (default ``"success"`` or ``"unknown"``).
    params : dict
        The scenario parameters the episode ran with.
    failure_step : int, optional
        The control step of the failure event (first drop, first collision
        contact, the step a missed grasp closed, ...); None for a success, and for a
        failure without an event (a timeout): no alarm counts as early for it.
    observations : array of shape (T, o), optional
        The observation the policy acted on at each step.
    actions : array of shape (T, A), optional
        The action it took.
    control_hz : float, optional
        Control steps per second of the env it ran in (None when the env declares none):
        what turns steps into seconds (lead times).
    """

    embeddings: np.ndarray | None = None
    action_chunks: np.ndarray | None = None
    success: bool = True
    outcome: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    failure_step: int | None = None
    observations: np.ndarray | None = None
    actions: np.ndarray | None = None
    control_hz: float | None = None

    def __post_init__(self) -> None:
        if self.embeddings is None and self.observations is None:
            raise ValueError("a Rollout needs its embeddings or its observations (arrays of shape (T, d))")
        steps = None
        for name, ndim in (("observations", 2), ("embeddings", 2), ("action_chunks", 4), ("actions", 2)):
            value = getattr(self, name)
            if value is not None:
                array = _steps_array(value, name, ndim, steps)
                steps = array.shape[0]
                object.__setattr__(self, name, array)
        object.__setattr__(self, "success", bool(self.success))
        if self.outcome is None:
            object.__setattr__(self, "outcome", "success" if self.success else "unknown")
        if self.failure_step is not None:
            step = int(self.failure_step)
            if not 0 <= step < steps:
                raise ValueError(f"Rollout.failure_step {step} is outside the rollout's {steps} steps")
            object.__setattr__(self, "failure_step", step)

    @property
    def steps(self) -> int:
        """Number of control steps T."""
        first = self.observations if self.observations is not None else self.embeddings
        return int(first.shape[0])

    def has(self, signal: str) -> bool:
        """Whether the rollout carries ``signal`` (one of :data:`SIGNALS`)."""
        return getattr(self, signal) is not None

    @classmethod
    def from_recording(cls, recording: EpisodeRecording, control_hz: float | None = None) -> Rollout:
        """The rollout of a recorded episode (see :func:`robogate.execution.episode.record_episode`), at ``control_hz``."""
        return cls(
            embeddings=recording.embeddings, action_chunks=recording.action_chunks, success=recording.success,
            outcome=recording.outcome, params=dict(recording.params), failure_step=recording.failure_step,
            observations=recording.observations, actions=recording.actions, control_hz=control_hz,
        )
