"""The makespan report: stop on alarm or run to the end, the predicted makespan against the monitor's threshold,
and, beside it, what test rollouts and production runs measured.

:func:`add_makespan_section` adds the section to any :class:`~robogate.reports.document.Document`;
:func:`write_makespan_report` writes it as a report of its own (``robogate monitor makespan --report``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from robogate._utils.plotting import plain_log_labels
from robogate.monitor.makespan import MakespanDecision
from robogate.reports.document import Document

__all__ = ["MEASURED_COLUMNS", "add_makespan_section", "makespan_figure", "write_makespan_report"]

MEASURED_COLUMNS = ["alpha", "run_to_end", "run_to_end_low", "run_to_end_high", "stop_on_alarm", "stop_on_alarm_low",
                    "stop_on_alarm_high"]
"""The columns of a table of measured makespans (e.g. production runs at several alphas), one row per alpha."""

_PREDICTED, _TEST, _MEASURED = "#1f77b4", "#ff7f0e", "#2ca02c"


def _band(ax, x: np.ndarray, rows: pd.DataFrame, name: str, colour: str, label: str, style: str = "-") -> None:
    ax.plot(x, rows[name], style, color=colour, marker="o", ms=3.5, label=label)
    ax.fill_between(x, rows[f"{name}_low"], rows[f"{name}_high"], color=colour, alpha=0.15, lw=0)


def makespan_figure(decision: MakespanDecision, test_curve: pd.DataFrame | None = None,
                    measured: pd.DataFrame | None = None) -> Figure:
    """Seconds per completed task against alpha: predicted on validation rollouts (with its interval), on test
    rollouts, and measured in production runs; running to the end as horizontal bands."""
    fig = Figure(figsize=(7.2, 4.2), layout="constrained")
    ax = fig.subplots()
    curve = decision.curve
    x = curve["alpha"].to_numpy(dtype=float)
    _band(ax, x, curve, "stop_on_alarm", _PREDICTED, "stop on alarm, predicted (validation)")
    low, high = decision.estimate.intervals["run_to_end"]
    ax.axhline(decision.estimate.run_to_end, color=_PREDICTED, ls="--", lw=1.2, label="run to the end, predicted")
    ax.axhspan(low, high, color=_PREDICTED, alpha=0.08, lw=0)
    if test_curve is not None and len(test_curve):
        _band(ax, test_curve["alpha"].to_numpy(dtype=float), test_curve, "stop_on_alarm", _TEST,
              "stop on alarm, test rollouts", "--")
        ax.axhline(float(test_curve["run_to_end"].iloc[0]), color=_TEST, ls=":", lw=1.2,
                   label="run to the end, test rollouts")
    if measured is not None and len(measured):
        m = measured.sort_values("alpha")
        ax.errorbar(m["alpha"], m["stop_on_alarm"], yerr=[m["stop_on_alarm"] - m["stop_on_alarm_low"],
                                                         m["stop_on_alarm_high"] - m["stop_on_alarm"]],
                    fmt="s", color=_MEASURED, ms=6, capsize=3, label="stop on alarm, measured (production runs)")
        ax.axhline(float(m["run_to_end"].iloc[0]), color=_MEASURED, ls="-.", lw=1.2,
                   label="run to the end, measured")
        ax.axhspan(float(m["run_to_end_low"].iloc[0]), float(m["run_to_end_high"].iloc[0]), color=_MEASURED,
                   alpha=0.08, lw=0)
    ax.axvline(decision.alpha, color="k", lw=1, ls=":", label=f"chosen alpha {decision.alpha:g}")
    ax.set_xscale("log")
    plain_log_labels(ax.xaxis, float(x.min()), float(x.max()))
    ax.set_xlabel("monitor threshold: alpha (larger alarms earlier and more often)")
    ax.set_ylabel("seconds per completed task")
    finite = [v for v in (*curve["stop_on_alarm_high"], high) if np.isfinite(v)]
    if finite:
        ax.set_ylim(0, 1.1 * max(finite))
    ax.legend(fontsize=7.5, loc="best")
    return fig


def _rounded(rows: pd.DataFrame) -> pd.DataFrame:
    keep = ["alpha", "tpr", "fpr", "lead", "run_to_end", "stop_on_alarm", "saving", "saving_low", "saving_high"]
    return rows[[c for c in keep if c in rows.columns]].round(3)


def add_makespan_section(doc: Document, decision: MakespanDecision, *, test_curve: pd.DataFrame | None = None,
                         measured: pd.DataFrame | None = None, heading: str = "Stop on alarm or run to the end",
                         level: int = 2, figure: str = "makespan") -> None:
    """Add the decision, the makespan against the threshold and its tables to ``doc``.

    Parameters
    ----------
    doc : Document
    decision : MakespanDecision
        From :func:`~robogate.monitor.makespan.choose_threshold` on validation rollouts.
    test_curve : DataFrame, optional
        The ``curve`` of :func:`~robogate.monitor.makespan.choose_threshold` with the same monitor on test rollouts.
    measured : DataFrame, optional
        Makespans measured in production runs (:data:`MEASURED_COLUMNS`).
    heading, level
        The section's heading.
    figure : str
        The figure's name (its PNG beside ``report.md``): one per section of a document.
    """
    e = decision.estimate
    doc.heading(heading, level)
    doc.text(f"A cell attempts each task until it succeeds and resets after every attempt that does not "
             f"(reset {e.inputs['reset']:g} s). Stopping on the monitor's alarm cuts a failing attempt short, and "
             "throws away a successful one on a false alarm. The prediction is the closed-form expected makespan "
             f"(renewal-reward over attempts) with inputs from {e.episodes} labelled validation rollouts "
             f"({e.failures} failures); intervals are {e.confidence:.0%} bootstrap intervals over episodes. The "
             "threshold is the alpha with the shortest predicted makespan; the verdict is 'stop on alarm' only when "
             "the saving's interval there lies above zero.")
    doc.verdict(decision, "Makespan")
    parts = ["Seconds per completed task against the monitor's alpha. Blue: predicted from the validation rollouts "
             "(band: interval)"]
    if test_curve is not None and len(test_curve):
        parts.append("orange: the same estimate on test rollouts")
    if measured is not None and len(measured):
        parts.append("green: measured in production runs (error bars: bootstrap over tasks)")
    doc.figure(figure, makespan_figure(decision, test_curve, measured),
               "; ".join(parts) + ". Horizontal lines: running every attempt to its end.")
    doc.heading("Predicted on the validation rollouts", level + 1)
    doc.table(_rounded(decision.curve), note="tpr, fpr: the share of failures and of successes the monitor stops; "
              "lead: how long a stopped failure would still have run (s); times in seconds per completed task.")
    if test_curve is not None and len(test_curve):
        doc.heading("On the test rollouts", level + 1)
        doc.table(_rounded(test_curve))
    if measured is not None and len(measured):
        doc.heading("Measured in production runs", level + 1)
        doc.table(measured.round(3))


def write_makespan_report(out: str | Path, decision: MakespanDecision, *, test_curve: pd.DataFrame | None = None,
                          measured: pd.DataFrame | None = None, title: str = "Stop on alarm or run to the end",
                          notes: Sequence[str] = ()) -> Path:
    """Write the makespan section as a report of its own (``report.md``, its PNG, ``report.html``) in ``out``."""
    doc = Document(title)
    for note in notes:
        doc.text(note)
    add_makespan_section(doc, decision, test_curve=test_curve, measured=measured, heading="The decision")
    return doc.write(out)
