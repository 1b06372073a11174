"""The monitor's evaluation report: Markdown and a self-contained HTML page with its figures.

Sections: the settings each alarm variant chose on the validation rollouts, the test table
(in-distribution and shifted rollouts) beside FIPER's published figures, the false-alarm
rate on held-out successes against alpha, and figures — score traces against their
thresholds for a success and a failure, the lead-time histogram, and ROC curves of the
max-so-far score. Figures are drawn on :class:`matplotlib.figure.Figure` directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

from robogate.monitor.evaluation import ALL, ScoredSet
from robogate.monitor.metrics import summarize
from robogate.monitor.monitor import FailureMonitor
from robogate.report import Document
from robogate.zones import clopper_pearson

__all__ = ["FIPER", "write_monitor_report"]

FIPER = {"accuracy": 0.78, "tpr": 0.92}
"""FIPER's published AND alarm, averaged over its five tasks."""

COLUMNS = ["variant", "test_set", "window", "alpha", "threshold", "episodes", "failures", "tpr", "tnr",
           "accuracy", "balanced_accuracy", "roc_auc", "early_tpr", "detection_time", "lead_time_median_s",
           "time_weighted_accuracy"]
_VARIANT_COLOURS = {"AND": "#1f77b4", "OR": "#ff7f0e", "RND": "#2ca02c", "ACE": "#9467bd"}
_SCORE_COLOURS = {"rnd": "#2ca02c", "ace": "#9467bd"}


def _fig_traces(monitor: FailureMonitor, tests: ScoredSet) -> Figure | None:
    """Windowed scores against thresholds for the first success and the first failure of ``tests``."""
    picks = []
    for want_success in (True, False):
        index = next((i for i, r in enumerate(tests.rollouts) if r.success == want_success), None)
        if index is not None:
            picks.append(index)
    if not picks:
        return None
    names = monitor.scores_
    fig = Figure(figsize=(5.2 * len(picks), 2.3 * len(names) + 0.6), layout="constrained")
    axes = fig.subplots(len(names), len(picks), squeeze=False, sharex="col")
    for col, index in enumerate(picks):
        rollout = tests.rollouts[index]
        trace = monitor.trace(rollout, tests.step_scores[index])
        for row, name in enumerate(names):
            ax = axes[row][col]
            steps = np.arange(rollout.steps)
            ax.plot(steps, trace.scores[name], color=_SCORE_COLOURS[name], label=f"{name} (window sum)")
            ax.plot(steps, trace.thresholds[name], color="k", ls="--", lw=1, label="threshold")
            if trace.alarm_step is not None:
                ax.axvline(trace.alarm_step, color="#d62728", lw=1.2, label="alarm")
            if rollout.failure_step is not None:
                ax.axvline(rollout.failure_step, color="k", lw=1.2, ls=":", label="failure event")
            ax.set_ylabel(name.upper())
            if row == 0:
                ax.set_title(f"{rollout.outcome} ({tests.name})", fontsize=10)
            ax.legend(fontsize=7, loc="upper left")
        axes[-1][col].set_xlabel("control step")
    return fig


def _fig_lead_times(monitor: FailureMonitor, tests: ScoredSet, control_hz: float) -> Figure:
    table = tests.table(monitor)
    failed = table[~table["success"] & table["alarm_step"].notna() & table["failure_step"].notna()]
    lead = (failed["failure_step"] - failed["alarm_step"]).to_numpy(dtype=float) / control_hz
    fig = Figure(figsize=(6, 3.2), layout="constrained")
    ax = fig.subplots()
    if lead.size:
        ax.hist(lead, bins=np.arange(np.floor(lead.min()) - 0.25, np.ceil(lead.max()) + 0.75, 0.5),
                color=_VARIANT_COLOURS["AND"], edgecolor="white")
        ax.axvline(0.0, color="k", lw=1)
        ax.axvline(np.median(lead), color="#d62728", ls="--", label=f"median {np.median(lead):.1f} s")
        ax.legend(fontsize=8)
    ax.set_xlabel("lead time before the failure event (s; negative: alarm after it)")
    ax.set_ylabel("flagged failures")
    return fig


def _fig_roc(chosen: Mapping[str, FailureMonitor], tests: ScoredSet) -> Figure:
    fig = Figure(figsize=(4.6, 4.2), layout="constrained")
    ax = fig.subplots()
    for name, monitor in chosen.items():
        table = tests.table(monitor)
        failed = ~table["success"].to_numpy(dtype=bool)
        if failed.all() or not failed.any():
            continue
        fpr, tpr, _ = roc_curve(failed, table["peak"])
        auc = summarize(table)["roc_auc"]
        ax.plot(fpr, tpr, color=_VARIANT_COLOURS.get(name), label=f"{name} (AUC {auc:.2f})")
    ax.plot([0, 1], [0, 1], color="#999", lw=0.8, ls=":")
    ax.set_xlabel("false-positive rate (successes flagged)")
    ax.set_ylabel("true-positive rate (failures flagged)")
    ax.legend(fontsize=8, loc="lower right")
    return fig


def false_alarm_table(chosen: Mapping[str, FailureMonitor], successes: ScoredSet,
                      alphas: Sequence[float] = (0.05, 0.1, 0.2)) -> pd.DataFrame:
    """False-alarm rate on held-out successes against alpha, with 95 % Clopper–Pearson intervals.

    Each variant keeps its chosen window and threshold style and is recalibrated at every
    alpha of ``alphas`` (and its own chosen alpha) that its calibration set allows.
    """
    rows = []
    for name, monitor in chosen.items():
        for alpha in sorted({*alphas, monitor.alpha}):
            try:
                variant = monitor.recalibrate(alpha=alpha)
            except ValueError:  # too few calibration rollouts for this alpha
                continue
            table = successes.table(variant)
            table = table[table["success"]]
            alarms, n = int(table["alarm_step"].notna().sum()), len(table)
            low, high = clopper_pearson(alarms, n)
            rows.append({"variant": name, "alpha": alpha, "chosen": alpha == monitor.alpha, "successes": n,
                         "false_alarms": alarms, "false_alarm_rate": alarms / n if n else float("nan"),
                         "ci_low": float(low), "ci_high": float(high)})
    return pd.DataFrame(rows)


def write_monitor_report(
    out: str | Path,
    chosen: Mapping[str, FailureMonitor],
    results: pd.DataFrame,
    grids: Mapping[str, pd.DataFrame],
    test_sets: Sequence[ScoredSet],
    *,
    title: str = "Failure monitor evaluation",
    notes: Sequence[str] = (),
    control_hz: float = 10.0,
) -> Path:
    """Write ``report.md`` (PNG figures beside it) and a self-contained ``report.html``.

    Parameters
    ----------
    out : str or Path
        Folder to write into (created).
    chosen, results, grids
        What :func:`robogate.monitor.evaluation.evaluate` returned.
    test_sets : sequence of ScoredSet
        The sets given to ``evaluate``. The first is taken as the in-distribution one
        (its successes give the false-alarm table); figures use all of them joined.
    title : str
    notes : sequence of str
        Paragraphs placed under the title (provenance, how the rollouts were recorded).
    control_hz : float
        Control steps per second (lead times in seconds).

    Returns
    -------
    Path
        The HTML file.
    """
    doc = Document(title)
    for note in notes:
        doc.text(note)
    joined = ScoredSet.join(ALL, list(test_sets)) if len(test_sets) > 1 else test_sets[0]

    doc.heading("Detection on the test rollouts")
    doc.text("Window, alpha and threshold style of each variant were chosen on the validation rollouts "
             "(maximum balanced accuracy); nothing below was tuned on these test rollouts. An episode is "
             "flagged when the alarm fires at any step; early TPR counts only alarms at or before the failure "
             "event; detection time is alarm step / episode length; lead time is in seconds before the event.")
    doc.table(results[[c for c in COLUMNS if c in results.columns]])
    and_all = results[(results["variant"] == "AND") & (results["test_set"] == joined.name)]
    if len(and_all):
        row = and_all.iloc[0]
        doc.text(f"FIPER's published AND alarm (average of five tasks): accuracy {FIPER['accuracy']:.2f}, "
                 f"TPR {FIPER['tpr']:.2f}. Here, AND on all test rollouts: accuracy {row['accuracy']:.2f}, "
                 f"TPR {row['tpr']:.2f}, TNR {row['tnr']:.2f}.")

    doc.heading("False alarms on held-out successes")
    doc.text(f"Successful rollouts of '{test_sets[0].name}', none of them used for fitting or calibration: "
             "the conformal guarantee bounds the expected rate by alpha (marginally over calibration sets: "
             "one calibration set's rate scatters around it). Each variant keeps its chosen window and style.")
    doc.table(false_alarm_table(chosen, test_sets[0]))

    first = next(iter(chosen))
    main = chosen.get("AND", chosen[first])
    main_name = "AND" if "AND" in chosen else first
    traces = _fig_traces(main, joined)
    if traces is not None:
        doc.heading("Score traces")
        doc.figure("traces", traces, f"{main_name} alarm: each score summed over {main.window} steps against its "
                   f"{main.threshold} threshold, for the first successful and the first failed test rollout.")
    doc.heading("Lead time")
    doc.figure("lead_times", _fig_lead_times(main, joined, control_hz),
               f"{main_name} alarm: time from the first alarm to the failure event, over flagged failures.")
    doc.heading("ROC curves")
    doc.figure("roc", _fig_roc(chosen, joined),
               "Each variant's max-so-far combined normalised score as a failure predictor on all test rollouts.")

    if grids:
        doc.heading("Validation grids")
        for name, grid in grids.items():
            doc.heading(name, 3)
            doc.table(grid[["window", "alpha", "threshold", "tpr", "tnr", "balanced_accuracy",
                            "time_weighted_accuracy", "chosen"]])

    return doc.write(out)
