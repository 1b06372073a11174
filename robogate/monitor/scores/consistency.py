"""Temporal consistency of sampled action chunks (Sentinel's STAC, ActProbe's overlap error).

A chunk sampled at step t plans the actions of steps t .. t+H-1; the chunk sampled one step
later plans t+1 .. t+H. Where the policy knows what it is doing, the overlapping H-1 actions
agree from one step to the next; where it is lost, successive plans contradict each other.
The score at step t is the energy distance between the B overlapping segments planned at
t-1 and the B planned at t (0 at the first step). It needs no fitting and reads nothing beyond
the sampled chunks; one step costs O(B^2 H A).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.spatial.distance import cdist

from robogate._utils.checks import check_int
from robogate.monitor.rollout import Rollout
from robogate.monitor.scores.base import Step

__all__ = ["ChunkConsistency"]


class ChunkConsistency:
    """Energy distance between the overlapping parts of successive steps' sampled chunks.

    Parameters
    ----------
    dims : sequence of int
        Action components compared (robogate: the motion ``dx, dy, dz, dyaw``, not the grip).

    Examples
    --------
    >>> import numpy as np
    >>> from robogate.monitor import Rollout
    >>> steady = np.zeros((3, 16, 8, 5))              # every plan the same at every step
    >>> ChunkConsistency().score(Rollout(embeddings=np.zeros((3, 2)), action_chunks=steady)).tolist()
    [0.0, 0.0, 0.0]
    """

    signals = ("action_chunks",)

    def __init__(self, *, dims: Sequence[int] = (0, 1, 2, 3)) -> None:
        dims = tuple(check_int(d, "dims entry") for d in dims)
        if not dims or len(set(dims)) != len(dims):
            raise ValueError(f"dims must name distinct action components, got {dims}")
        self.dims = dims

    def get_config(self) -> dict:
        return {"dims": list(self.dims)}

    def fit(self, rollouts: Sequence[Rollout]) -> ChunkConsistency:
        """Nothing to fit."""
        return self

    def get_state(self) -> dict[str, np.ndarray]:
        return {}

    def set_state(self, state) -> None:
        pass

    def _segments(self, chunks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The part of one step's chunks (B, H, A) a later plan overlaps, and the part overlapping an earlier one."""
        chunks = np.asarray(chunks, dtype=np.float64)
        if chunks.ndim != 3 or chunks.shape[1] < 2 or chunks.shape[2] <= max(self.dims):
            raise ValueError(f"action chunks must have shape (B, H, A) with H >= 2 and A > {max(self.dims)}, "
                             f"got {chunks.shape}")
        picked = chunks[:, :, list(self.dims)]
        return picked[:, 1:].reshape(len(chunks), -1), picked[:, :-1].reshape(len(chunks), -1)

    @staticmethod
    def _energy(x: np.ndarray, y: np.ndarray) -> float:
        return float(max(2.0 * cdist(x, y).mean() - cdist(x, x).mean() - cdist(y, y).mean(), 0.0))

    def score(self, rollout: Rollout) -> np.ndarray:
        stream = self.stream()
        return np.array([stream.update(Step(t, action_chunks=c)) for t, c in enumerate(rollout.action_chunks)])

    def stream(self) -> _ConsistencyStream:
        return _ConsistencyStream(self)


class _ConsistencyStream:
    def __init__(self, score: ChunkConsistency) -> None:
        self._score = score
        self._previous: np.ndarray | None = None

    def update(self, step: Step) -> float:
        later, earlier = self._score._segments(step.action_chunks)
        value = 0.0 if self._previous is None else ChunkConsistency._energy(self._previous, earlier)
        self._previous = later
        return value
