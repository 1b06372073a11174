"""One recorded rollout of a policy: what the runtime monitor reads, step by step."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Rollout"]


@dataclass(frozen=True, eq=False)
class Rollout:
    """The per-step signals of one episode, as the monitor sees them.

    Parameters
    ----------
    embeddings : array of shape (T, d)
        The policy's observation embedding at each of the T control steps.
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
        contact, ...); None for a success.
    """

    embeddings: np.ndarray
    action_chunks: np.ndarray | None = None
    success: bool = True
    outcome: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    failure_step: int | None = None

    def __post_init__(self) -> None:
        emb = np.asarray(self.embeddings, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] == 0:
            raise ValueError(f"Rollout.embeddings must have shape (T, d) with T >= 1, got {emb.shape}")
        if not np.all(np.isfinite(emb)):
            raise ValueError("Rollout.embeddings holds NaN or infinite values")
        object.__setattr__(self, "embeddings", emb)
        if self.action_chunks is not None:
            chunks = np.asarray(self.action_chunks, dtype=np.float32)
            if chunks.ndim != 4 or chunks.shape[0] != emb.shape[0]:
                raise ValueError(
                    f"Rollout.action_chunks must have shape (T, B, H, A) with T = {emb.shape[0]}, "
                    f"got {chunks.shape}"
                )
            if not np.all(np.isfinite(chunks)):
                raise ValueError("Rollout.action_chunks holds NaN or infinite values")
            object.__setattr__(self, "action_chunks", chunks)
        object.__setattr__(self, "success", bool(self.success))
        if self.outcome is None:
            object.__setattr__(self, "outcome", "success" if self.success else "unknown")
        if self.failure_step is not None:
            step = int(self.failure_step)
            if not 0 <= step < emb.shape[0]:
                raise ValueError(f"Rollout.failure_step {step} is outside the rollout's {emb.shape[0]} steps")
            object.__setattr__(self, "failure_step", step)

    @property
    def steps(self) -> int:
        """Number of control steps T."""
        return int(self.embeddings.shape[0])
