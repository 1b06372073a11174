"""How well a failure monitor predicts failures: per-episode outcomes and their summary.

An episode is a *positive* when it failed and *flagged* when the monitor raised an alarm at
any step. From a table with one row per episode (:func:`episode_table`) :func:`summarize`
computes

- TPR (failed episodes flagged) with its one-sided lower confidence bound, TNR (successes not
  flagged), their complement the false-alarm rate with its one-sided upper bound (Clopper–Pearson
  at :data:`BOUND_CONFIDENCE`), accuracy and balanced accuracy ((TPR + TNR) / 2);
- ROC-AUC of the max-so-far score (the episode's peak combined normalised score);
- detection time: first alarm step / episode length, over flagged failures;
- lead time: failure-event step minus first-alarm step, over flagged failures with a known
  event, and the share of failures warned in time (``early_tpr``, over *all* failures: one
  without an event, a timeout, is never counted as warned in time): the monitor decides on
  the observation a step starts from, so an alarm at the event's own step (lead time 0)
  still comes before the physics of that step;
- time-weighted accuracy: the mean per-episode credit, 1 for an unflagged success,
  ``1 - alarm_step / steps`` for a flagged failure (earlier is better), 0 otherwise.

Length-free figures. An episode's peak score and its chance of some alarm grow with its number of
steps, and failures and successes differ in length. :func:`episode_table` therefore also takes a
``horizon``: every episode is cut after that many steps (alarms and scores beyond it are not seen,
the outcome label stays), and :func:`common_horizon` picks one for a set of rollouts, the length
that nine in ten successful episodes reach, so that no episode is credited for steps the others
were not watched for.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from robogate.analysis.stats import clopper_pearson
from robogate.monitor.monitor import FailureMonitor
from robogate.monitor.rollout import Rollout

__all__ = ["BOUND_CONFIDENCE", "common_horizon", "episode_table", "lead_seconds", "summarize"]

BOUND_CONFIDENCE = 0.95
"""Confidence of the one-sided bounds :func:`summarize` gives the TPR (lower) and the false-alarm rate (upper)."""
HORIZON_QUANTILE = 0.1
""":func:`common_horizon` cuts episodes at the length this share of successful episodes falls short of."""

COLUMNS = ["success", "outcome", "steps", "failure_step", "alarm_step", "peak", "control_hz"]


def common_horizon(rollouts: Sequence[Rollout]) -> int:
    """The steps every episode is cut to for length-free figures: the length that all but
    :data:`HORIZON_QUANTILE` of the successful episodes reach (of every episode when none succeeded)."""
    rollouts = list(rollouts)
    if not rollouts:
        raise ValueError("common_horizon needs rollouts, got none")
    lengths = [r.steps for r in rollouts if r.success] or [r.steps for r in rollouts]
    return max(int(np.floor(np.quantile(lengths, HORIZON_QUANTILE))), 1)


def episode_table(
    monitor: FailureMonitor, rollouts: Sequence[Rollout], step_scores: Sequence[dict] | None = None,
    horizon: int | None = None,
) -> pd.DataFrame:
    """One row per rollout: its outcome and what ``monitor`` made of it.

    ``step_scores`` (one :meth:`FailureMonitor.step_scores` per rollout) saves
    recomputing the scores when several variants of one fitted monitor are compared.
    With a ``horizon``, each episode is seen only up to that many steps: its alarm, its
    peak and its ``steps`` are those of the cut episode; its outcome and event stay.

    Columns: ``success``, ``outcome``, ``steps``, ``failure_step`` (the failure event's
    step, NaN when unknown or a success), ``alarm_step`` (the first alarm's step, NaN
    without one), ``peak`` (the max-so-far combined normalised score at the end) and
    ``control_hz`` (the env's control rate, NaN when it declared none).
    """
    rows = []
    for i, rollout in enumerate(rollouts):
        trace = monitor.trace(rollout, None if step_scores is None else step_scores[i])
        seen = rollout.steps if horizon is None else min(rollout.steps, int(horizon))
        alarm = trace.alarm_step
        rows.append({
            "success": rollout.success,
            "outcome": rollout.outcome,
            "steps": seen,
            "failure_step": np.nan if rollout.failure_step is None else rollout.failure_step,
            "alarm_step": np.nan if alarm is None or alarm >= seen else alarm,
            "peak": float(np.max(trace.combined[:seen])),
            "control_hz": np.nan if rollout.control_hz is None else rollout.control_hz,
        })
    return pd.DataFrame(rows, columns=COLUMNS)


def _rate(hits: np.ndarray) -> float:
    return float(np.mean(hits)) if hits.size else float("nan")


def lead_seconds(table: pd.DataFrame) -> np.ndarray:
    """Lead times in seconds (each episode at its env's control rate) of the flagged failures with a known
    event whose rate is known."""
    failed = ~table["success"].to_numpy(dtype=bool)
    lead = (table["failure_step"] - table["alarm_step"]).to_numpy(dtype=float)
    hz = table["control_hz"].to_numpy(dtype=float) if "control_hz" in table else np.full(len(table), np.nan)
    seconds = lead / hz
    return seconds[failed & ~np.isnan(seconds)]


def summarize(table: pd.DataFrame) -> dict[str, float]:
    """Detection metrics of an :func:`episode_table` (see the module docstring).

    Parameters
    ----------
    table : DataFrame
        From :func:`episode_table` (or the same columns); lead times in seconds need its
        ``control_hz`` (NaN where the env declared no rate).
    """
    failed = ~table["success"].to_numpy(dtype=bool)
    flagged = table["alarm_step"].notna().to_numpy()
    steps = table["steps"].to_numpy(dtype=float)
    alarm = table["alarm_step"].to_numpy(dtype=float)
    event = table["failure_step"].to_numpy(dtype=float)
    tpr, tnr = _rate(flagged[failed]), _rate(~flagged[~failed])
    lead = (event - alarm)[failed & flagged & ~np.isnan(event)]
    in_time = flagged & ~np.isnan(event) & (alarm <= np.nan_to_num(event, nan=-1.0))
    tpr_low = clopper_pearson(int(flagged[failed].sum()), int(failed.sum()), BOUND_CONFIDENCE, "greater")[0]
    fa_high = clopper_pearson(int(flagged[~failed].sum()), int((~failed).sum()), BOUND_CONFIDENCE, "less")[1]
    credit = np.where(failed, np.where(flagged, 1.0 - np.nan_to_num(alarm) / steps, 0.0), (~flagged).astype(float))
    both = failed.any() and (~failed).any()
    return {
        "episodes": int(len(table)),
        "failures": int(failed.sum()),
        "tpr": tpr,
        "tpr_lower": float(tpr_low) if failed.any() else float("nan"),
        "tnr": tnr,
        "false_alarm_rate": 1.0 - tnr,
        "false_alarm_upper": float(fa_high) if (~failed).any() else float("nan"),
        "accuracy": _rate(flagged == failed),
        "balanced_accuracy": (tpr + tnr) / 2.0,
        "roc_auc": float(roc_auc_score(failed, table["peak"])) if both else float("nan"),
        "detection_time": _rate((alarm / steps)[failed & flagged]),
        "lead_time_median": float(np.median(lead)) if lead.size else float("nan"),
        "lead_time_median_s": float(np.median(seconds)) if (seconds := lead_seconds(table)).size else float("nan"),
        "early_tpr": _rate(in_time[failed]),
        "early_balanced_accuracy": (_rate(in_time[failed]) + tnr) / 2.0,
        "time_weighted_accuracy": _rate(credit),
    }
