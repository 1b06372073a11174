"""Checking the false-alarm guarantee: three different numbers, and which is which.

A conformal monitor's false-alarm rate on successes can be quoted three ways, and they answer
different questions:

- **test-pool interval** (:func:`false_alarm_interval`): the rate on one pool of held-out
  successes with its Clopper–Pearson interval. It measures the *test pool's* noise around the
  one calibrated monitor's rate, not the guarantee.
- **predictive range** (:func:`robogate.monitor.conformal.false_alarm_range`): where the rate
  of a monitor calibrated on n successes falls, before it is calibrated: Beta(n + 1 - k, k),
  with the chance that it exceeds alpha. It depends on n, alpha and the confidence alone.
- **re-splits** (:func:`resplit_false_alarms`): the monitor's calibration successes and further
  held-out successes pooled, split again and again at random into a calibration set of the
  same size and a test set, the threshold recalibrated each time: the mean rate is the
  marginal guarantee (at most alpha), the share of splits above alpha is what the confidence
  bounds. This is the check that uses real rollouts and no model of them. Each split's rate is
  measured on a finite test set, whose own noise spreads the rates a little wider than the
  monitors' true rates; the same check with the pool taken as the population (calibration sets
  drawn from it with replacement, each rate measured on the whole pool) has no test noise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from robogate.analysis.stats import clopper_pearson
from robogate.monitor.conformal import conformal_rank, episode_peaks, false_alarm_range, window_sums
from robogate.monitor.monitor import FailureMonitor
from robogate.monitor.rollout import Rollout

__all__ = ["false_alarm_interval", "resplit_false_alarms"]


def false_alarm_interval(alarms: int, successes: int, confidence: float = 0.95) -> tuple[float, float, float]:
    """The rate ``alarms / successes`` and its two-sided Clopper–Pearson interval."""
    low, high = clopper_pearson(alarms, successes, confidence)
    return (alarms / successes if successes else float("nan")), float(low), float(high)


def _pool_peaks(monitor: FailureMonitor, held_out: Sequence[Rollout], alpha: float) -> np.ndarray:
    """The calibration successes' and ``held_out`` successes' peaks on the monitor's common scale at ``alpha``."""
    names = monitor.scores_
    extra = [monitor.step_scores(r) for r in held_out if r.success]

    def windowed(streams: list[np.ndarray]) -> list[np.ndarray]:
        return [window_sums(s, monitor.window) for s in streams]

    fit = {n: windowed(monitor.fit_scores_[n]) for n in names}
    pool = {n: windowed(monitor.calibration_scores_[n] + [s[n] for s in extra]) for n in names}
    return episode_peaks(fit, pool, alpha, monitor.threshold)[1]


def resplit_false_alarms(monitor: FailureMonitor, held_out: Sequence[Rollout], *,
                         alphas: Sequence[float] | None = None, confidences: Sequence[float | None] = (None, 0.9),
                         repeats: int = 2000, seed: int = 0) -> pd.DataFrame:
    """The false-alarm rate over repeated random re-splits of real successes (see the module docstring).

    Parameters
    ----------
    monitor : FailureMonitor
        Fitted, with ``combine="or"`` or one score; its calibration successes join the pool.
    held_out : sequence of Rollout
        Further rollouts drawn like the calibration ones (their successes join the pool); none of
        them may have fitted the scores.
    alphas : sequence of float, optional
        Levels to check (default the monitor's own).
    confidences : sequence of float or None
        None is the marginal rank; a number the training-conditional one.
    repeats : int
        Re-splits per setting.
    seed : int

    Returns
    -------
    DataFrame
        One row per (alpha, confidence): the calibration size n and the test size, the rank k,
        the mean rate over re-splits (the marginal rate), the share of re-splits whose rate
        exceeds alpha, the 5th and 95th percentiles of the rate, and beside them the predictive
        range the calibration size implies (its mean, 90 % range and chance above alpha); and the
        share above alpha with the pool as the population (``share_above_alpha_pool``).

    Raises
    ------
    ValueError
        For an AND of several scores (their alarms need each step, not each episode's peak), or no
        held-out successes. A setting the calibration size is too small for is left out of the table.
    """
    monitor._check_fitted()
    if monitor.combine == "and" and len(monitor.scores_) > 1:
        raise ValueError("re-splits check an OR monitor (or one score): an AND alarms only where every score is "
                         "over at the same step")
    n = monitor.n_calibration_
    rng = np.random.default_rng(seed)
    rows = []
    for alpha in (alphas if alphas is not None else (monitor.alpha,)):
        peaks = _pool_peaks(monitor, held_out, alpha)
        if peaks.size <= n:
            raise ValueError(f"re-splits need more successes than the {n} a calibration takes; give held-out successes")
        for confidence in confidences:
            try:
                k = conformal_rank(n, alpha, confidence)
            except ValueError:  # the calibration size is too small for this setting: left out
                continue
            rates, population = np.empty(repeats), np.empty(repeats)
            for i in range(repeats):
                order = rng.permutation(peaks.size)
                threshold = np.sort(peaks[order[:n]])[k - 1]
                rates[i] = np.mean(peaks[order[n:]] > threshold)
                drawn = np.sort(peaks[rng.integers(0, peaks.size, n)])[k - 1]
                population[i] = np.mean(peaks > drawn)
            implied = false_alarm_range(n, alpha, confidence)
            rows.append({"alpha": alpha, "confidence": "marginal" if confidence is None else confidence,
                         "calibration": n, "test": int(peaks.size - n), "rank": k, "repeats": repeats,
                         "mean_rate": float(rates.mean()), "share_above_alpha": float(np.mean(rates > alpha)),
                         "rate_p05": float(np.quantile(rates, 0.05)), "rate_p95": float(np.quantile(rates, 0.95)),
                         "share_above_alpha_pool": float(np.mean(population > alpha)),
                         "implied_mean": implied.mean, "implied_low": implied.low, "implied_high": implied.high,
                         "implied_above_alpha": implied.p_above})
    return pd.DataFrame(rows)
