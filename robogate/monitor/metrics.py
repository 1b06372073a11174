"""How well a failure monitor predicts failures: per-episode outcomes and their summary.

An episode is a *positive* when it failed and *flagged* when the monitor raised an alarm at
any step. From a table with one row per episode (:func:`episode_table`) :func:`summarize`
computes

- TPR (failed episodes flagged), TNR (successes not flagged), their complement the
  false-alarm rate, accuracy and balanced accuracy ((TPR + TNR) / 2);
- ROC-AUC of the max-so-far score (the episode's peak combined normalised score);
- detection time: first alarm step / episode length, over flagged failures;
- lead time: failure-event step minus first-alarm step, over flagged failures with a known
  event, and the share of failures warned in time (``early_tpr``): the monitor decides on
  the observation a step starts from, so an alarm at the event's own step (lead time 0)
  still comes before the physics of that step;
- time-weighted accuracy: the mean per-episode credit, 1 for an unflagged success,
  ``1 - alarm_step / steps`` for a flagged failure (earlier is better), 0 otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from robogate.monitor.monitor import FailureMonitor
from robogate.monitor.rollout import Rollout

__all__ = ["episode_table", "lead_seconds", "summarize"]

COLUMNS = ["success", "outcome", "steps", "failure_step", "alarm_step", "peak", "control_hz"]


def episode_table(
    monitor: FailureMonitor, rollouts: Sequence[Rollout], step_scores: Sequence[dict] | None = None
) -> pd.DataFrame:
    """One row per rollout: its outcome and what ``monitor`` made of it.

    ``step_scores`` (one :meth:`FailureMonitor.step_scores` per rollout) saves
    recomputing the scores when several variants of one fitted monitor are compared.

    Columns: ``success``, ``outcome``, ``steps``, ``failure_step`` (the failure event's
    step, NaN when unknown or a success), ``alarm_step`` (the first alarm's step, NaN
    without one), ``peak`` (the max-so-far combined normalised score at the end) and
    ``control_hz`` (the env's control rate, NaN when it declared none).
    """
    rows = []
    for i, rollout in enumerate(rollouts):
        trace = monitor.trace(rollout, None if step_scores is None else step_scores[i])
        rows.append({
            "success": rollout.success,
            "outcome": rollout.outcome,
            "steps": rollout.steps,
            "failure_step": np.nan if rollout.failure_step is None else rollout.failure_step,
            "alarm_step": np.nan if trace.alarm_step is None else trace.alarm_step,
            "peak": trace.peak,
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
    with_event = failed & ~np.isnan(event)
    credit = np.where(failed, np.where(flagged, 1.0 - np.nan_to_num(alarm) / steps, 0.0), (~flagged).astype(float))
    both = failed.any() and (~failed).any()
    return {
        "episodes": int(len(table)),
        "failures": int(failed.sum()),
        "tpr": tpr,
        "tnr": tnr,
        "false_alarm_rate": 1.0 - tnr,
        "accuracy": _rate(flagged == failed),
        "balanced_accuracy": (tpr + tnr) / 2.0,
        "roc_auc": float(roc_auc_score(failed, table["peak"])) if both else float("nan"),
        "detection_time": _rate((alarm / steps)[failed & flagged]),
        "lead_time_median": float(np.median(lead)) if lead.size else float("nan"),
        "lead_time_median_s": float(np.median(seconds)) if (seconds := lead_seconds(table)).size else float("nan"),
        "early_tpr": _rate((alarm[with_event] <= event[with_event])),
        "time_weighted_accuracy": _rate(credit),
    }
