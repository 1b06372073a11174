"""Action-chunk entropy (ACE): how spread out the action chunks a policy samples are.

At each control step a generative policy samples B action chunks of horizon H. The xyz
part of each chunk is integrated over the horizon (the tool displacement it plans), and at
every horizon step the B planned points are binned in a 3-D histogram whose cells are a
fixed fraction of the calibration range per axis. The score is the Shannon entropy of that
histogram (nats, between 0 and log B), averaged over the horizon: low when the samples
agree, high when the policy is unsure where to go.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from robogate._utils.checks import check_int
from robogate.monitor.rollout import Rollout
from robogate.monitor.scores.base import PerStepScore

__all__ = ["ActionChunkEntropy"]

_CELL_LIMIT = 1 << 20
"""Cell indices are clipped to +-2**20 per axis, so three of them pack into one int64 key."""
_STEPS_PER_BATCH = 2048


class ActionChunkEntropy(PerStepScore):
    """Entropy of the planned end points of sampled action chunks.

    Parameters
    ----------
    bin_fraction : float in (0, 1]
        Histogram cell size per axis as a fraction of that axis' calibration range.
    dims : sequence of 3 int
        Which action components are the xyz displacement (robogate: the first three).

    Attributes
    ----------
    widths_ : array of shape (3,)
        Cell size per axis, set by :meth:`fit`.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ace = ActionChunkEntropy().fit_chunks(rng.normal(size=(50, 32, 8, 5)))
    >>> agree = np.zeros((32, 8, 5)); spread = rng.normal(size=(32, 8, 5))
    >>> float(ace.entropy(agree)), bool(ace.entropy(spread) > 1.0)
    (0.0, True)
    """

    signals = ("action_chunks",)

    def __init__(self, *, bin_fraction: float = 0.1, dims: Sequence[int] = (0, 1, 2)) -> None:
        if not 0.0 < float(bin_fraction) <= 1.0:
            raise ValueError(f"bin_fraction must be a number in (0, 1], got {bin_fraction!r}")
        dims = tuple(check_int(d, "dims entry") for d in dims)
        if len(dims) != 3 or len(set(dims)) != 3:
            raise ValueError(f"dims must name 3 distinct action components (x, y, z), got {dims}")
        self.bin_fraction = float(bin_fraction)
        self.dims = dims

    def get_config(self) -> dict:
        """The constructor arguments, JSON-ready."""
        return {"bin_fraction": self.bin_fraction, "dims": list(self.dims)}

    def _check(self, chunks: np.ndarray) -> np.ndarray:
        chunks = np.asarray(chunks, dtype=np.float64)
        if chunks.ndim < 3 or chunks.shape[-1] <= max(self.dims):
            raise ValueError(
                f"action chunks must have shape (..., B, H, A) with A > {max(self.dims)}, got {chunks.shape}"
            )
        return chunks

    def _points(self, chunks: np.ndarray) -> np.ndarray:
        """Integrated xyz displacements, shape (..., B, H, 3)."""
        return np.cumsum(chunks[..., list(self.dims)], axis=-2)

    def fit(self, rollouts: Sequence[Rollout]) -> ActionChunkEntropy:
        """Set the cell sizes from the action chunks of successful rollouts."""
        return self.fit_chunks([r.action_chunks for r in rollouts])

    def fit_chunks(self, chunks: np.ndarray | Sequence[np.ndarray]) -> ActionChunkEntropy:
        """Set the cell sizes from chunks: arrays of shape (..., B, H, A)."""
        parts = [chunks] if isinstance(chunks, np.ndarray) else list(chunks)
        if not parts:
            raise ValueError("ACE needs calibration action chunks, got none")
        low, high = np.full(3, np.inf), np.full(3, -np.inf)
        for part in parts:
            points = self._points(self._check(part)).reshape(-1, 3)
            low, high = np.minimum(low, points.min(axis=0)), np.maximum(high, points.max(axis=0))
        span = high - low
        # An axis the calibration chunks never move along gets the cell size of the widest one.
        span = np.where(span > 0, span, max(float(span.max()), 1e-9))
        self.widths_ = self.bin_fraction * span
        return self

    def score_steps(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        return np.asarray(self.entropy(arrays["action_chunks"]), dtype=float).reshape(-1)

    def get_state(self) -> dict[str, np.ndarray]:
        return {"widths": self.widths_}

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        self.widths_ = np.asarray(state["widths"], dtype=float)

    def entropy(self, chunks: np.ndarray) -> np.ndarray | float:
        """ACE of one step's chunks (B, H, A) as a float, or of many steps (N, B, H, A) as shape (N,)."""
        chunks = self._check(chunks)
        if chunks.ndim == 3:
            return float(self._entropy(chunks[None])[0])
        flat = chunks.reshape(-1, *chunks.shape[-3:])
        out = np.concatenate([self._entropy(flat[i:i + _STEPS_PER_BATCH])
                              for i in range(0, len(flat), _STEPS_PER_BATCH)])
        return out.reshape(chunks.shape[:-3])

    def _entropy(self, chunks: np.ndarray) -> np.ndarray:
        """Horizon-averaged histogram entropy for chunks of shape (N, B, H, A)."""
        n, b, h = chunks.shape[:3]
        cells = np.floor(self._points(chunks) / self.widths_)
        cells = np.clip(cells, -_CELL_LIMIT, _CELL_LIMIT - 1).astype(np.int64) + _CELL_LIMIT
        keys = (cells[..., 0] << 42) | (cells[..., 1] << 21) | cells[..., 2]  # (N, B, H)
        keys = np.sort(keys.transpose(0, 2, 1).reshape(n * h, b), axis=1)  # one row per (step, horizon)
        starts = np.ones_like(keys, dtype=bool)
        starts[:, 1:] = keys[:, 1:] != keys[:, :-1]
        flat_starts = np.flatnonzero(starts)
        counts = np.diff(np.append(flat_starts, keys.size)).astype(float)
        rows = flat_starts // b
        sum_c_log_c = np.bincount(rows, weights=counts * np.log(counts), minlength=n * h)
        entropy = np.log(b) - sum_c_log_c / b  # -sum p log p with p = c / b
        return np.maximum(entropy, 0.0).reshape(n, h).mean(axis=1)
