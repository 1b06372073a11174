"""The other error: how often the monitor misses a failure, bounded with the simulator's failures.

A conformal threshold calibrated on successes bounds the false-alarm rate and says nothing about
misses. The simulator, though, makes labelled failures by the thousand (a sweep's failing rows
replayed, or scenes of a failure family), and the same order statistics bound the miss rate from
them (:func:`robogate.monitor.conformal.miss_rank`):

- :func:`detection_table` reports, per family of test rollouts, the TPR with a one-sided lower
  Clopper–Pearson bound (and the share caught before the failure event, with its bound) beside
  the false-alarm rate on the family's successes with its upper bound;
- :func:`bound_misses` sets the threshold from failing rollouts instead, so that a new failure of
  the same kind is missed with probability at most ``miss_rate`` (on average, or with a stated
  confidence), and says what false-alarm rate that costs on the monitor's own calibration
  successes (which played no part in choosing it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from robogate.analysis.stats import clopper_pearson
from robogate.monitor.conformal import episode_peaks, miss_rank, thresholds_at, window_sums
from robogate.monitor.metrics import BOUND_CONFIDENCE, episode_table
from robogate.monitor.monitor import FailureMonitor
from robogate.monitor.rollout import Rollout

__all__ = ["MissBound", "bound_misses", "detection_table"]


@dataclass(frozen=True)
class MissBound:
    """How a threshold set from failing rollouts was chosen, and what it costs.

    Attributes
    ----------
    miss_rate : float
        The miss rate asked for.
    confidence : float or None
        Its confidence (None: on average over sets of failures).
    failures, rank : int
        Failing rollouts the threshold was set from, and its rank among their peaks.
    scale : float
        The factor h of the thresholds (``centre_t + h * scale_t``).
    successes : int
        The monitor's calibration successes the cost is measured on.
    false_alarm_rate, false_alarm_upper : float
        Share of them the threshold alarms on, and its one-sided upper Clopper–Pearson bound at
        :data:`~robogate.monitor.metrics.BOUND_CONFIDENCE`.
    """

    miss_rate: float
    confidence: float | None
    failures: int
    rank: int
    scale: float
    successes: int
    false_alarm_rate: float
    false_alarm_upper: float

    def to_dict(self) -> dict:
        """A JSON-ready description."""
        return asdict(self)

    def describe(self) -> str:
        """One sentence: the bound and its cost."""
        at = "on average" if self.confidence is None else f"with confidence {self.confidence:g}"
        return (f"threshold set at the {self.rank}-th smallest peak of {self.failures} failing rollouts: misses at "
                f"most {self.miss_rate:g} of such failures {at}; it alarms on {self.false_alarm_rate:.3f} of the "
                f"{self.successes} calibration successes (upper bound {self.false_alarm_upper:.3f} at "
                f"{BOUND_CONFIDENCE:.0%})")


def bound_misses(monitor: FailureMonitor, failures: Sequence[Rollout], miss_rate: float,
                 confidence: float | None = None) -> FailureMonitor:
    """A copy of ``monitor`` whose threshold bounds the miss rate on failures like ``failures``.

    The scores keep their profiles (from the fitting successes); only the common factor ``h`` is
    set from the failures' peaks, at the :func:`~robogate.monitor.conformal.miss_rank`-th smallest.
    The guarantee covers failures exchangeable with ``failures`` (the same family of scenes, the
    same policy); the false-alarm rate is then what it is, measured on the calibration successes
    and kept in the copy's ``miss_bound_`` (a :class:`MissBound`).

    Parameters
    ----------
    monitor : FailureMonitor
        Fitted, with ``combine="or"`` or a single score.
    failures : sequence of Rollout
        Labelled rollouts; only the failed ones are used.
    miss_rate : float in (0, 1)
    confidence : float in (0, 1), optional

    Raises
    ------
    ValueError
        In one line: an AND of several scores, too few failures (the message says how many).
    """
    monitor._check_fitted()
    if monitor.combine == "and" and len(monitor.scores_) > 1:
        raise ValueError("a threshold bounding the miss rate needs combine='or' (or one score): an AND of several "
                         "scores has a threshold per score")
    failed = [r for r in failures if not r.success]
    rank = miss_rank(len(failed), miss_rate, confidence)  # too few failures: a one-line error with the count needed
    names = monitor.scores_

    def windowed(streams: dict[str, list[np.ndarray]]) -> dict[str, list[np.ndarray]]:
        return {name: [window_sums(s, monitor.window) for s in streams[name]] for name in names}

    fit = windowed(monitor.fit_scores_)
    scored = [monitor.step_scores(r) for r in failed]
    profiles, peaks = episode_peaks(fit, windowed({n: [s[n] for s in scored] for n in names}), monitor.alpha,
                                    monitor.threshold)
    scale = float(np.sort(peaks)[rank - 1])
    _, success_peaks = episode_peaks(fit, windowed(monitor.calibration_scores_), monitor.alpha, monitor.threshold)
    alarms = int(np.sum(success_peaks > scale))
    upper = float(clopper_pearson(alarms, success_peaks.size, BOUND_CONFIDENCE, "less")[1])
    other = monitor.recalibrate()
    other.thresholds_ = thresholds_at(profiles, monitor.threshold, scale)
    other.miss_bound_ = MissBound(miss_rate=float(miss_rate), confidence=confidence, failures=len(failed), rank=rank,
                                  scale=scale, successes=int(success_peaks.size),
                                  false_alarm_rate=alarms / success_peaks.size, false_alarm_upper=upper)
    other.reset()
    return other


def detection_table(monitor: FailureMonitor, families: Sequence, horizon: int | None = None,
                    confidence: float = BOUND_CONFIDENCE) -> pd.DataFrame:
    """Both error rates per family of rollouts, with one-sided Clopper–Pearson bounds.

    Parameters
    ----------
    monitor : FailureMonitor
    families : sequence of ScoredSet
        Each a named family (:class:`~robogate.monitor.evaluation.ScoredSet`).
    horizon : int, optional
        Cut every episode after this many steps (see :mod:`robogate.monitor.metrics`).
    confidence : float
        Of the bounds.

    Returns
    -------
    DataFrame
        One row per family: failures, TPR and its lower bound, the share caught at or before the
        failure event and its lower bound, successes, false-alarm rate and its upper bound.
    """
    rows = []
    for family in families:
        table = episode_table(monitor, family.rollouts, family.step_scores, horizon)
        failed = ~table["success"].to_numpy(dtype=bool)
        flagged = table["alarm_step"].notna().to_numpy()
        event = table["failure_step"].to_numpy(dtype=float)
        early = flagged & ~np.isnan(event) & (table["alarm_step"].to_numpy(dtype=float) <= np.nan_to_num(event, nan=-1))
        n_fail, n_ok = int(failed.sum()), int((~failed).sum())
        caught, in_time, alarms = int(flagged[failed].sum()), int(early[failed].sum()), int(flagged[~failed].sum())
        rows.append({
            "family": family.name, "failures": n_fail,
            "tpr": caught / n_fail if n_fail else np.nan,
            "tpr_lower": float(clopper_pearson(caught, n_fail, confidence, "greater")[0]) if n_fail else np.nan,
            "early_tpr": in_time / n_fail if n_fail else np.nan,
            "early_lower": float(clopper_pearson(in_time, n_fail, confidence, "greater")[0]) if n_fail else np.nan,
            "successes": n_ok,
            "false_alarm_rate": alarms / n_ok if n_ok else np.nan,
            "false_alarm_upper": float(clopper_pearson(alarms, n_ok, confidence, "less")[1]) if n_ok else np.nan,
        })
    return pd.DataFrame(rows)
