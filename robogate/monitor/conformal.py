"""Split-conformal alarm thresholds on windowed score streams, calibrated on successes only.

A score stream is one episode's per-step failure score. It is summed over a trailing window
of ``w`` steps, and a threshold is calibrated so that a new successful episode, exchangeable
with the calibration episodes, crosses it *at any step* with probability at most ``alpha``.

Three threshold styles, all with that episode-level guarantee:

``"constant"``
    One value: the conformal quantile of the calibration episodes' maxima.
``"time_varying"``
    A per-step profile ``q_t`` (the per-step ``1 - alpha`` quantile of the fitting
    episodes) scaled by ``h``, the conformal quantile of ``max_t y_j(t) / q_t`` over the
    calibration episodes: per-step quantiles, inflated for the many steps of an episode.
``"functional"``
    A band ``mu_t + h * rho_t`` (per-step mean and standard deviation of the fitting
    episodes), ``h`` the conformal quantile of ``R_j = max_t (y_j(t) - mu_t) / rho_t``.
    A score *above* the mean is the dangerous side.

The per-step profiles come from the *fitting* episodes and the conformal quantile from the
separate *calibration* episodes, so the guarantee is exact in finite samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from robogate.checks import check_int
from robogate.checks import check_level

__all__ = [
    "THRESHOLD_STYLES",
    "Threshold",
    "calibrate_threshold",
    "check_style",
    "conformal_quantile",
    "conformal_rank",
    "window_sums",
]

THRESHOLD_STYLES = ("constant", "time_varying", "functional")
"""The threshold styles :func:`calibrate_threshold` knows."""

_MIN_SHARE_ALIVE = 0.25
"""Per-step profiles cover the steps at least this share of fitting episodes reach (at least 2)."""
_FLOOR = 1e-3
"""Profile values are floored at this fraction of their largest value, so no step divides by ~0."""
_TINY = 1e-12


def check_style(style: str) -> str:
    """``style`` if it is one of :data:`THRESHOLD_STYLES`, else a ValueError listing them."""
    if style not in THRESHOLD_STYLES:
        raise ValueError(f"threshold must be one of {list(THRESHOLD_STYLES)}, got {style!r}")
    return style


def conformal_rank(n: int, alpha: float) -> int:
    """The rank ``k = ceil((n + 1)(1 - alpha))`` of the split-conformal quantile among n values.

    Raises
    ------
    ValueError
        When ``k > n``: n calibration episodes are too few for this alpha (the
        smallest usable n is ``ceil(1 / alpha) - 1``).
    """
    alpha = check_level(alpha, "alpha")
    n = check_int(n, "number of calibration rollouts")
    # Rounding guard: (n + 1)(1 - alpha) may land a hair above an integer in floating point.
    k = math.ceil((n + 1) * (1.0 - alpha) - 1e-9)
    if k > n:
        needed = math.ceil(1.0 / alpha - 1e-9) - 1
        raise ValueError(
            f"{n} calibration rollouts are too few for alpha={alpha:g}: the conformal quantile is the "
            f"ceil((n+1)(1-alpha)) = {k}-th smallest of n values; use at least {needed} successful "
            f"calibration rollouts or a larger alpha"
        )
    return max(k, 1)


def conformal_quantile(values: Sequence[float] | np.ndarray, alpha: float) -> float:
    """The ``ceil((n + 1)(1 - alpha))``-th smallest of ``values``.

    For a new value exchangeable with ``values``, ``P(new > quantile) <= alpha``.
    """
    values = np.sort(np.asarray(values, dtype=float).reshape(-1))
    return float(values[conformal_rank(values.size, alpha) - 1])


def window_sums(scores: np.ndarray, window: int) -> np.ndarray:
    """Trailing sums over ``window`` steps: ``y(t) = sum of scores[max(0, t - window + 1) .. t]``.

    The first ``window - 1`` steps sum what has been seen so far, exactly as a
    running monitor does.
    """
    window = check_int(window, "window", minimum=1)
    scores = np.asarray(scores, dtype=float).reshape(-1)
    sums = np.zeros_like(scores)
    for lag in range(min(window, scores.size) - 1, -1, -1):  # oldest first, as a running sum adds
        sums[lag:] += scores[: scores.size - lag]
    return sums


@dataclass(frozen=True, eq=False)
class Threshold:
    """A calibrated alarm threshold over the steps of an episode.

    Parameters
    ----------
    style : str
        One of :data:`THRESHOLD_STYLES`.
    values : array of shape (L,)
        The threshold at steps 0..L-1; later steps take the last value.
    centres : array of shape (L,)
        What a score is measured from when normalised: 0, or the band's mean.
    scale : float
        The calibrated factor ``h`` (the threshold itself for ``"constant"``).
    """

    style: str
    values: np.ndarray
    centres: np.ndarray
    scale: float

    def at(self, step: int) -> float:
        """The threshold at ``step`` (0-based)."""
        return float(self.values[min(step, self.values.size - 1)])

    def along(self, steps: int) -> np.ndarray:
        """The thresholds at steps 0..steps-1."""
        return self.values[np.minimum(np.arange(steps), self.values.size - 1)]

    def normalize(self, scores: np.ndarray, start: int = 0) -> np.ndarray:
        """Scores as multiples of the threshold's margin: > 1 exactly where a score is above it.

        ``(y - centre_t) / (threshold_t - centre_t)``, for scores at steps ``start, start+1, ...``.
        """
        scores = np.asarray(scores, dtype=float)
        index = np.minimum(np.arange(start, start + scores.size), self.values.size - 1)
        margin = np.maximum(self.values[index] - self.centres[index], _TINY)
        return (scores - self.centres[index]) / margin

    def to_dict(self) -> dict:
        """A JSON-ready description (lists of floats)."""
        return {"style": self.style, "values": self.values.tolist(), "centres": self.centres.tolist(),
                "scale": self.scale}

    @classmethod
    def from_dict(cls, data: dict) -> Threshold:
        """The threshold described by :meth:`to_dict`."""
        return cls(style=check_style(data["style"]), values=np.asarray(data["values"], dtype=float),
                   centres=np.asarray(data["centres"], dtype=float), scale=float(data["scale"]))


def _per_step(streams: Sequence[np.ndarray]) -> np.ndarray:
    """The fitting streams as a (n, L) array padded with NaN, L the steps enough episodes reach."""
    lengths = np.array([s.size for s in streams])
    alive_needed = max(2, math.ceil(_MIN_SHARE_ALIVE * len(streams)))
    alive_needed = min(alive_needed, len(streams))
    reach = int(np.sort(lengths)[::-1][alive_needed - 1])
    table = np.full((len(streams), reach), np.nan)
    for row, stream in zip(table, streams):
        row[: min(stream.size, reach)] = stream[:reach]
    return table


def _per_step_quantile(table: np.ndarray, level: float) -> np.ndarray:
    """The empirical ``level`` quantile (the ceil(level * n_t)-th smallest) of each column, NaNs left out."""
    ordered = np.sort(table, axis=0)  # NaNs sort last
    alive = np.sum(~np.isnan(table), axis=0)
    rank = np.clip(np.ceil(level * alive).astype(int), 1, alive)
    return ordered[rank - 1, np.arange(table.shape[1])]


def _floored(profile: np.ndarray) -> np.ndarray:
    return np.maximum(profile, _FLOOR * max(float(np.max(profile)), 0.0) + _TINY)


def calibrate_threshold(
    fit_streams: Sequence[np.ndarray],
    calibration_streams: Sequence[np.ndarray],
    alpha: float,
    style: str = "constant",
) -> Threshold:
    """Calibrate a threshold on windowed score streams of successful episodes.

    Parameters
    ----------
    fit_streams : sequence of arrays of shape (T_j,)
        Windowed scores of the fitting episodes; they shape the per-step profiles
        of the ``"time_varying"`` and ``"functional"`` styles (unused by ``"constant"``).
    calibration_streams : sequence of arrays of shape (T_j,)
        Windowed scores of the calibration episodes, kept apart from the fitting ones.
    alpha : float in (0, 1)
        Allowed episode-level false-alarm rate.
    style : str
        One of :data:`THRESHOLD_STYLES`.

    Returns
    -------
    Threshold
        A new episode exchangeable with the calibration ones rises above it at some
        step with probability at most ``alpha``.
    """
    alpha = check_level(alpha, "alpha")
    style = check_style(style)
    calibration = [np.asarray(s, dtype=float).reshape(-1) for s in calibration_streams]
    if not calibration or any(s.size == 0 for s in calibration):
        raise ValueError("calibrate_threshold needs at least one non-empty calibration stream")
    conformal_rank(len(calibration), alpha)  # fail early, with the message about n
    if style == "constant":
        value = conformal_quantile([s.max() for s in calibration], alpha)
        return Threshold(style, np.array([value]), np.zeros(1), value)
    fitting = [np.asarray(s, dtype=float).reshape(-1) for s in fit_streams]
    if not fitting or any(s.size == 0 for s in fitting):
        raise ValueError(f"the {style!r} threshold needs at least one non-empty fitting stream")
    table = _per_step(fitting)
    if style == "time_varying":
        profile = _floored(_per_step_quantile(table, 1.0 - alpha))
        centres = np.zeros_like(profile)
    else:
        centres = np.nanmean(table, axis=0)
        profile = _floored(np.nanstd(table, axis=0))
    last = profile.size - 1
    ratios = []
    for stream in calibration:
        index = np.minimum(np.arange(stream.size), last)
        ratios.append(np.max((stream - centres[index]) / profile[index]))
    scale = conformal_quantile(ratios, alpha)
    if style == "functional":
        # A band below the mean is never asked for; a larger h only lowers the alarm rate.
        scale = max(scale, 0.0)
    return Threshold(style, centres + scale * profile, centres, scale)
