"""Split-conformal alarm thresholds on windowed score streams, calibrated on successes only.

A score stream is one episode's per-step failure score. It is summed over a trailing window
of ``w`` steps, and a threshold is calibrated so that a new successful episode, exchangeable
with the calibration episodes, crosses it *at any step* with probability at most ``alpha``.

Each score gets a profile from the *fitting* episodes: a centre ``c_t`` and a scale ``s_t``
per step. A factor ``h`` is then calibrated on the separate *calibration* episodes, and the
threshold is ``c_t + h * s_t``. Three threshold styles, all with that episode-level guarantee:

``"constant"``
    One value: the conformal quantile of the calibration episodes' maxima (``c = 0``, ``s``
    the fitting maxima's ``1 - alpha`` quantile, which only sets the scale between scores).
``"time_varying"``
    A per-step profile ``q_t`` (the per-step ``1 - alpha`` quantile of the fitting
    episodes) scaled by ``h``, the conformal quantile of ``max_t y_j(t) / q_t`` over the
    calibration episodes: per-step quantiles, inflated for the many steps of an episode.
``"functional"``
    A band ``mu_t + h * rho_t`` (per-step mean and standard deviation of the fitting
    episodes), ``h`` the conformal quantile of ``R_j = max_t (y_j(t) - mu_t) / rho_t``.
    A score *above* the mean is the dangerous side.

The profiles come from the fitting episodes and the conformal quantile from the calibration
episodes, so the guarantee is exact in finite samples. Several scores combined by OR share one
``h`` (:func:`calibrate_thresholds`): the OR alarm has level ``alpha`` itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from robogate._utils.checks import check_int, check_level

__all__ = [
    "THRESHOLD_STYLES",
    "Threshold",
    "calibrate_threshold",
    "calibrate_thresholds",
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


def _profile(style: str, fitting: list[np.ndarray], alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """A score's centre and scale per step, from its fitting streams (see the module docstring)."""
    if style == "constant":
        scale = _floored(np.array([np.quantile([s.max() for s in fitting], 1.0 - alpha)]))
        return np.zeros(1), scale
    table = _per_step(fitting)
    if style == "time_varying":
        profile = _floored(_per_step_quantile(table, 1.0 - alpha))
        return np.zeros_like(profile), profile
    return np.nanmean(table, axis=0), _floored(np.nanstd(table, axis=0))


def _normalised(stream: np.ndarray, centres: np.ndarray, scales: np.ndarray) -> np.ndarray:
    index = np.minimum(np.arange(stream.size), centres.size - 1)
    return (stream - centres[index]) / scales[index]


def _streams(streams: Sequence[np.ndarray], what: str) -> list[np.ndarray]:
    out = [np.asarray(s, dtype=float).reshape(-1) for s in streams]
    if not out or any(s.size == 0 for s in out):
        raise ValueError(f"calibration needs at least one non-empty {what} stream per score")
    return out


def calibrate_thresholds(
    fit_streams: Mapping[str, Sequence[np.ndarray]],
    calibration_streams: Mapping[str, Sequence[np.ndarray]],
    alpha: float,
    style: str = "constant",
    combine: str = "or",
) -> dict[str, Threshold]:
    """Calibrate one threshold per score so that the combined alarm keeps the false-alarm guarantee.

    Parameters
    ----------
    fit_streams, calibration_streams : mapping of name -> sequence of arrays (T_j,)
        Windowed scores of the fitting and of the calibration episodes (kept apart), per score;
        every score has one stream per episode, in the same episode order.
    alpha : float in (0, 1)
        Allowed episode-level false-alarm rate of the combined alarm.
    style : str
        One of :data:`THRESHOLD_STYLES`.
    combine : {"or", "and"}
        ``"or"`` (alarm when any score is above its threshold): the scores are put on one
        scale (each score's profile from its fitting streams) and a single factor ``h`` is
        calibrated on the calibration episodes' largest normalised score, so the OR alarm
        itself has level ``alpha`` exactly, with no split of alpha over the scores.
        ``"and"`` (alarm when every score is above): each score is calibrated at ``alpha``
        on its own, as FIPER does; the AND then never alarms more often than any one score.

    Returns
    -------
    dict of name -> Threshold
        A new episode exchangeable with the calibration ones raises the combined alarm at some
        step with probability at most ``alpha``.
    """
    alpha = check_level(alpha, "alpha")
    style = check_style(style)
    if combine not in ("or", "and"):
        raise ValueError(f"combine must be 'or' or 'and', got {combine!r}")
    names = list(calibration_streams)
    if not names:
        raise ValueError("calibration needs at least one score")
    if combine == "and" and len(names) > 1:
        return {name: calibrate_thresholds({name: fit_streams[name]}, {name: calibration_streams[name]},
                                           alpha, style)[name] for name in names}
    calibration = {name: _streams(calibration_streams[name], "calibration") for name in names}
    n = len(calibration[names[0]])
    conformal_rank(n, alpha)  # fail early, with the message about n
    profiles = {name: _profile(style, _streams(fit_streams[name], "fitting"), alpha) for name in names}
    peaks = [max(float(np.max(_normalised(calibration[name][j], *profiles[name]))) for name in names)
             for j in range(n)]
    scale = conformal_quantile(peaks, alpha)
    if style == "functional":
        # A band below the mean is never asked for; a larger h only lowers the alarm rate.
        scale = max(scale, 0.0)
    return {name: Threshold(style, centres + scale * scales, centres, scale)
            for name, (centres, scales) in profiles.items()}


def calibrate_threshold(
    fit_streams: Sequence[np.ndarray],
    calibration_streams: Sequence[np.ndarray],
    alpha: float,
    style: str = "constant",
) -> Threshold:
    """Calibrate the threshold of one score on windowed streams of successful episodes.

    Parameters
    ----------
    fit_streams : sequence of arrays of shape (T_j,)
        Windowed scores of the fitting episodes; they shape the per-step profiles
        of the ``"time_varying"`` and ``"functional"`` styles.
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
    return calibrate_thresholds({"score": fit_streams}, {"score": calibration_streams}, alpha, style)["score"]
