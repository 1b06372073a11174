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

Marginal and training-conditional
---------------------------------
The ``ceil((n + 1)(1 - alpha))``-th smallest of n calibration values bounds the false-alarm rate
*on average over calibration sets*. One calibration set gives one monitor, whose own rate is
random: with the threshold at the k-th smallest of n exchangeable (continuous) values, the
probability that a new success stays under it is distributed Beta(k, n + 1 - k), so the
monitor's false-alarm rate ``F`` is Beta(n + 1 - k, k), and

    P(F > alpha) = P(Beta(k, n + 1 - k) < 1 - alpha) = P(Binomial(n, 1 - alpha) >= k).

With 93 calibration successes at alpha 0.05 the marginal rank (k = 90) leaves one monitor in
three above alpha. Asked for a ``confidence`` c, :func:`conformal_rank` takes instead the smallest
k with ``P(Binomial(n, 1 - alpha) >= k) <= 1 - c``, so that P(F > alpha) <= 1 - c for the monitor
actually calibrated (training-conditional, Vovk 2012). The largest rank is k = n, so this needs
``(1 - alpha)^n <= 1 - c``: n >= ln(1 - c) / ln(1 - alpha) calibration successes
(:func:`calibration_needed`: 22 at alpha 0.1 and c 0.9, 45 at alpha 0.05).
:func:`false_alarm_range` gives the distribution of ``F`` a calibration size implies.

The miss rate, from failures
----------------------------
The same order statistics bound the other error from labelled *failing* episodes (e.g. the
simulator's). With their peaks (on the scale of :func:`calibrate_thresholds`) sorted, a threshold
at the k-th smallest misses a new failure of the same kind (its peak at or under the threshold)
with probability k / (m + 1) on average, so :func:`miss_rank` takes k = floor((m + 1) beta) for a
miss rate beta; with a confidence c, the largest k with ``P(Binomial(m, beta) < k) <= 1 - c``
(the miss rate is Beta(k, m + 1 - k)). That needs m >= 1 / beta - 1 failures, or
m >= ln(1 - c) / ln(1 - beta) with a confidence (:func:`failures_needed`): the simulator's
"about 1 / beta failures" for a miss rate beta.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import beta, binom

from robogate._utils.checks import check_int, check_level
from robogate.monitor.settings import THRESHOLD_STYLES

__all__ = [
    "FalseAlarmRange",
    "Threshold",
    "calibrate_threshold",
    "calibrate_thresholds",
    "calibration_needed",
    "check_confidence",
    "episode_peaks",
    "failures_needed",
    "check_style",
    "conformal_quantile",
    "conformal_rank",
    "false_alarm_range",
    "miss_rank",
    "thresholds_at",
    "window_sums",
]

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


def check_confidence(confidence: float | None) -> float | None:
    """``confidence`` if it is None or a number in (0, 1), else a ValueError naming it."""
    return None if confidence is None else check_level(confidence, "confidence")


def calibration_needed(alpha: float, confidence: float | None = None) -> int:
    """The fewest calibration successes a threshold at ``alpha`` (and ``confidence``) can be set from.

    Marginal (``confidence=None``): ``ceil(1 / alpha) - 1``, where the conformal rank reaches n.
    Training-conditional: the smallest n with ``(1 - alpha)^n <= 1 - confidence`` (even the largest
    value of n is then above alpha's quantile with that confidence).
    """
    alpha, confidence = check_level(alpha, "alpha"), check_confidence(confidence)
    if confidence is None:
        return math.ceil(1.0 / alpha - 1e-9) - 1
    return max(math.ceil(math.log(1.0 - confidence) / math.log(1.0 - alpha) - 1e-9), 1)


def conformal_rank(n: int, alpha: float, confidence: float | None = None) -> int:
    """The rank k of the conformal quantile among n calibration values (see the module docstring).

    ``confidence=None``: the marginal rank ``k = ceil((n + 1)(1 - alpha))``, so that the false-alarm
    rate is at most alpha on average over calibration sets. A ``confidence`` c: the smallest k with
    ``P(Binomial(n, 1 - alpha) >= k) <= 1 - c``, so that the calibrated threshold's own false-alarm
    rate exceeds alpha with probability at most ``1 - c``.

    Raises
    ------
    ValueError
        When no rank up to n will do: n calibration episodes are too few for this alpha (and
        confidence); the message says how many are (:func:`calibration_needed`).
    """
    alpha, confidence = check_level(alpha, "alpha"), check_confidence(confidence)
    n = check_int(n, "number of calibration rollouts")
    if confidence is None:
        # Rounding guard: (n + 1)(1 - alpha) may land a hair above an integer in floating point.
        k = math.ceil((n + 1) * (1.0 - alpha) - 1e-9)
        rule = f"the conformal quantile is the ceil((n+1)(1-alpha)) = {k}-th smallest of n values"
    else:
        # P(Bin(n, 1 - alpha) >= k) = binom.sf(k - 1, ...), decreasing in k: the first k at or under 1 - c.
        tails = binom.sf(np.arange(n + 1), n, 1.0 - alpha)  # tails[k - 1] = P(X >= k), k = 1..n+1
        below = np.flatnonzero(tails[:n] <= 1.0 - confidence)
        k = int(below[0]) + 1 if below.size else n + 1
        rule = (f"even the largest of n values falls short of the 1-alpha quantile with probability "
                f"(1-alpha)^n = {(1 - alpha) ** n:.3f} > 1-confidence")
    if k > n:
        needed = calibration_needed(alpha, confidence)
        at = "" if confidence is None else f" at confidence {confidence:g}"
        raise ValueError(
            f"{n} calibration rollouts are too few for alpha={alpha:g}{at}: {rule}; use at least {needed} "
            f"successful calibration rollouts, a larger alpha" + ("" if confidence is None else " or a lower confidence")
        )
    return max(k, 1)


def conformal_quantile(values: Sequence[float] | np.ndarray, alpha: float, confidence: float | None = None) -> float:
    """The :func:`conformal_rank`-th smallest of ``values``.

    For a new value exchangeable with ``values``, ``P(new > quantile) <= alpha`` (marginally over
    ``values``); with a ``confidence`` c, that probability given ``values`` exceeds alpha with
    probability at most ``1 - c``.
    """
    values = np.sort(np.asarray(values, dtype=float).reshape(-1))
    return float(values[conformal_rank(values.size, alpha, confidence) - 1])


def failures_needed(miss_rate: float, confidence: float | None = None) -> int:
    """The fewest failing episodes a threshold bounding the miss rate at ``miss_rate`` can be set from
    (see the module docstring)."""
    miss_rate, confidence = check_level(miss_rate, "miss_rate"), check_confidence(confidence)
    if confidence is None:
        return math.ceil(1.0 / miss_rate - 1e-9) - 1
    return max(math.ceil(math.log(1.0 - confidence) / math.log(1.0 - miss_rate) - 1e-9), 1)


def miss_rank(m: int, miss_rate: float, confidence: float | None = None) -> int:
    """The rank k, among the peaks of m failing episodes, of a threshold whose miss rate is at most
    ``miss_rate`` (on average, or with probability ``confidence``): see the module docstring.

    Raises
    ------
    ValueError
        When m failures are too few; the message says how many are (:func:`failures_needed`).
    """
    miss_rate, confidence = check_level(miss_rate, "miss_rate"), check_confidence(confidence)
    m = check_int(m, "number of failing rollouts")
    if confidence is None:
        k = math.floor((m + 1) * miss_rate + 1e-9)
    else:
        # P(miss rate > beta) = P(Bin(m, beta) < k) = binom.cdf(k - 1, m, beta), increasing in k.
        within = np.flatnonzero(binom.cdf(np.arange(m), m, miss_rate) <= 1.0 - confidence)
        k = int(within[-1]) + 1 if within.size else 0
    if k < 1:
        at = "" if confidence is None else f" at confidence {confidence:g}"
        raise ValueError(f"{m} failing rollouts are too few to bound the miss rate at {miss_rate:g}{at}: use at "
                         f"least {failures_needed(miss_rate, confidence)} failures, a larger miss rate"
                         + ("" if confidence is None else " or a lower confidence"))
    return min(k, m)


@dataclass(frozen=True)
class FalseAlarmRange:
    """The false-alarm rate of one monitor calibrated on ``n`` successes: what the calibration size implies.

    Attributes
    ----------
    n, rank : int
        Calibration successes and the rank of the threshold among them.
    alpha : float
        The level asked for.
    confidence : float or None
        The confidence asked for (None: the marginal rank).
    low, high : float
        The central ``level`` predictive range of the rate (quantiles of Beta(n + 1 - rank, rank)).
    level : float
        Probability the range holds.
    mean : float
        The expected rate, ``(n + 1 - rank) / (n + 1)``: at most alpha.
    p_above : float
        Probability that the rate exceeds alpha: ``P(Binomial(n, 1 - alpha) >= rank)``.
    """

    n: int
    rank: int
    alpha: float
    confidence: float | None
    low: float
    high: float
    level: float
    mean: float
    p_above: float


def false_alarm_range(n: int, alpha: float, confidence: float | None = None, level: float = 0.9) -> FalseAlarmRange:
    """The distribution of a monitor's false-alarm rate when calibrated on ``n`` exchangeable successes.

    The rate is Beta(n + 1 - k, k) with k = :func:`conformal_rank` ``(n, alpha, confidence)``
    (see the module docstring); ``level`` sets the central predictive range.
    """
    k = conformal_rank(n, alpha, confidence)
    level = check_level(level, "level")
    a, b = n + 1 - k, k
    low, high = beta.ppf([(1 - level) / 2, (1 + level) / 2], a, b)
    return FalseAlarmRange(n=int(n), rank=k, alpha=float(alpha), confidence=check_confidence(confidence),
                           low=float(low), high=float(high), level=level, mean=a / (n + 1),
                           p_above=float(binom.sf(k - 1, n, 1.0 - alpha)))


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


def episode_peaks(fit_streams: Mapping[str, Sequence[np.ndarray]], streams: Mapping[str, Sequence[np.ndarray]],
                  alpha: float, style: str = "constant") -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """The profiles :func:`calibrate_thresholds` puts the scores on one scale with (centre and scale per
    step, from ``fit_streams``), and each episode of ``streams``' largest normalised score over its
    steps and the scores: it alarms at factor h exactly when its peak exceeds h."""
    style = check_style(style)
    profiles = {name: _profile(style, _streams(fit_streams[name], "fitting"), alpha) for name in streams}
    return profiles, calibration_peaks({name: _streams(streams[name], "scored") for name in streams}, profiles)


def thresholds_at(profiles: Mapping[str, tuple[np.ndarray, np.ndarray]], style: str, scale: float) -> dict[str, Threshold]:
    """The thresholds ``centre_t + scale * scale_t`` of each score's profile."""
    return {name: Threshold(style, centres + scale * scales, centres, scale) for name, (centres, scales) in profiles.items()}


def calibration_peaks(streams: Mapping[str, Sequence[np.ndarray]],
                      profiles: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Each episode's largest score over its steps and the scores, on the profiles' common scale."""
    names = list(streams)
    n = len(streams[names[0]])
    return np.array([max(float(np.max(_normalised(streams[name][j], *profiles[name]))) for name in names)
                     for j in range(n)])


def calibrate_thresholds(
    fit_streams: Mapping[str, Sequence[np.ndarray]],
    calibration_streams: Mapping[str, Sequence[np.ndarray]],
    alpha: float,
    style: str = "constant",
    combine: str = "or",
    confidence: float | None = None,
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
    confidence : float in (0, 1), optional
        Use the training-conditional rank (:func:`conformal_rank`): the calibrated alarm's own
        false-alarm rate exceeds ``alpha`` with probability at most ``1 - confidence``.

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
                                           alpha, style, confidence=confidence)[name] for name in names}
    calibration = {name: _streams(calibration_streams[name], "calibration") for name in names}
    n = len(calibration[names[0]])
    conformal_rank(n, alpha, confidence)  # fail early, with the message about n
    profiles = {name: _profile(style, _streams(fit_streams[name], "fitting"), alpha) for name in names}
    scale = conformal_quantile(calibration_peaks(calibration, profiles), alpha, confidence)
    if style == "functional":
        # A band below the mean is never asked for; a larger h only lowers the alarm rate.
        scale = max(scale, 0.0)
    return thresholds_at(profiles, style, scale)


def calibrate_threshold(
    fit_streams: Sequence[np.ndarray],
    calibration_streams: Sequence[np.ndarray],
    alpha: float,
    style: str = "constant",
    confidence: float | None = None,
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
    confidence : float in (0, 1), optional
        Training-conditional, as in :func:`calibrate_thresholds`.

    Returns
    -------
    Threshold
        A new episode exchangeable with the calibration ones rises above it at some
        step with probability at most ``alpha``.
    """
    return calibrate_thresholds({"score": fit_streams}, {"score": calibration_streams}, alpha, style,
                                confidence=confidence)["score"]
