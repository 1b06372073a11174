"""The monitor's evaluation report: Markdown and a self-contained HTML page with its figures.

Sections: the monitor as saved (and, when it was, how it was chosen on validation rollouts),
the test table of every variant beside FIPER's and SAFE's published figures, the same on episodes
cut to a common horizon, both error rates per family of test rollouts with one-sided bounds,
detection per failure type, the false-alarm rate on held-out in-envelope successes against alpha
beside the range the calibration size implies (and, when given, the rate over re-splits), and
figures of the saved monitor — score traces against their thresholds for a success and a
failure, the lead-time histogram — and ROC curves of the variants' max-so-far scores.
Figures are drawn on :class:`matplotlib.figure.Figure` directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import roc_curve

from robogate.analysis.stats import clopper_pearson
from robogate.monitor import scores as registry
from robogate.monitor.conformal import false_alarm_range
from robogate.monitor.evaluation import ALL, BEST, ScoredSet, headline, outcome_rates
from robogate.monitor.metrics import BOUND_CONFIDENCE, lead_seconds, summarize
from robogate.monitor.misses import detection_table
from robogate.monitor.monitor import FailureMonitor
from robogate.reports.document import Document

__all__ = ["COLUMNS", "FIPER", "SAFE", "false_alarm_table", "score_colour", "write_monitor_report"]

FIPER = {"accuracy": 0.78, "tpr": 0.92}
"""FIPER's published AND alarm, averaged over its five tasks."""
SAFE = {"roc_auc": (0.77, 0.78)}
"""SAFE's published ROC-AUC on unseen tasks in simulation (its range over policies)."""

COLUMNS = ["variant", "test_set", "scores", "combine", "window", "alpha", "threshold", "episodes", "failures",
           "tpr", "tnr", "accuracy", "balanced_accuracy", "roc_auc", "early_tpr", "detection_time",
           "lead_time_median_s", "time_weighted_accuracy"]
"""The columns of the per-set results table, in the order printed."""
DETAIL = ["variant", "test_set", "episodes", "failures", "tpr", "tnr", "balanced_accuracy", "roc_auc", "early_tpr",
          "lead_time_median_s"]
SAVED = "as saved"


def score_colour(name: str) -> str:
    """One colour per registered score (its place in the registry), grey for an unregistered one."""
    known = registry.names()
    return f"C{known.index(name) % 10}" if name in known else "#777777"


def _trace_picks(monitor: FailureMonitor, tests: ScoredSet) -> list[tuple[int, str]]:
    """The first success left alone, the first failure caught and the first failure missed, where there are."""
    table = tests.table(monitor)
    flagged = table["alarm_step"].notna()
    wanted = [(table["success"] & ~flagged, "success, no alarm"), (~table["success"] & flagged, "caught"),
              (~table["success"] & ~flagged, "missed")]
    return [(int(np.flatnonzero(mask)[0]), label) for mask, label in wanted if mask.any()]


def _fig_traces(monitor: FailureMonitor, tests: ScoredSet) -> Figure | None:
    """Windowed scores against thresholds for a success, a caught and a missed failure of ``tests``."""
    picks = _trace_picks(monitor, tests)
    if not picks:
        return None
    names = monitor.scores_
    fig = Figure(figsize=(4.2 * len(picks), 2.0 * len(names) + 0.7), layout="constrained")
    axes = fig.subplots(len(names), len(picks), squeeze=False, sharex="col")
    for col, (index, label) in enumerate(picks):
        rollout = tests.rollouts[index]
        trace = monitor.trace(rollout, tests.step_scores[index])
        steps = np.arange(rollout.steps)
        for row, name in enumerate(names):
            ax = axes[row][col]
            ax.plot(steps, trace.scores[name], color=score_colour(name), label=f"{name} (sum over {monitor.window})")
            ax.plot(steps, trace.thresholds[name], color="k", ls="--", lw=1, label="threshold")
            if trace.alarm_step is not None:
                ax.axvline(trace.alarm_step, color="#d62728", lw=1.2, label="alarm")
            if rollout.failure_step is not None:
                ax.axvline(rollout.failure_step, color="k", lw=1.2, ls=":", label="failure event")
            ax.set_ylabel(name)
            if np.nanmax(trace.scores[name]) > 20 * max(np.nanmax(trace.thresholds[name]), 1e-12):
                ax.set_yscale("log")
            if row == 0:
                ax.set_title(f"{rollout.outcome}: {label}", fontsize=10)
            ax.legend(fontsize=7, loc="upper left")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        hz = tests.rollouts[index].control_hz
        axes[-1][col].set_xlabel(f"control step ({1 / hz:.3g} s)" if hz else "control step")
    return fig


def _fig_lead_times(monitor: FailureMonitor, tests: ScoredSet) -> Figure | None:
    lead = lead_seconds(tests.table(monitor))
    if not lead.size:
        return None
    fig = Figure(figsize=(6, 3.2), layout="constrained")
    ax = fig.subplots()
    ax.hist(lead, bins=np.arange(np.floor(lead.min()) - 0.25, np.ceil(lead.max()) + 0.75, 0.5),
            color="C0", edgecolor="white")
    ax.axvline(0.0, color="k", lw=1)
    ax.axvline(np.median(lead), color="#d62728", ls="--", label=f"median {np.median(lead):.1f} s")
    ax.legend(fontsize=8)
    ax.set_xlabel("lead time before the failure event (s; negative: alarm after it)")
    ax.set_ylabel("flagged failures")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def _fig_roc(chosen: Mapping[str, FailureMonitor], tests: ScoredSet) -> Figure | None:
    fig = Figure(figsize=(5.4, 4.6), layout="constrained")
    ax = fig.subplots()
    drawn = 0
    for i, (name, monitor) in enumerate(chosen.items()):
        table = tests.table(monitor)
        failed = ~table["success"].to_numpy(dtype=bool)
        if failed.all() or not failed.any():
            continue
        fpr, tpr, _ = roc_curve(failed, table["peak"])
        auc = summarize(table)["roc_auc"]
        # Ten colours, then the same colours dashed, so no two variants look alike.
        style = ({"lw": 2.2, "color": "k"} if name == SAVED
                 else {"lw": 1.2, "color": f"C{(i - 1) % 10}", "ls": "-" if i <= 10 else "--"})
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc:.2f})", **style)
        drawn += 1
    if not drawn:
        return None
    ax.plot([0, 1], [0, 1], color="#999", lw=0.8, ls=":")
    ax.set_xlabel("false-positive rate (successes flagged)")
    ax.set_ylabel("true-positive rate (failures flagged)")
    ax.legend(fontsize=7, loc="lower right")
    return fig


def false_alarm_table(chosen: Mapping[str, FailureMonitor], successes: ScoredSet,
                      alphas: Sequence[float] = (0.05, 0.1, 0.2)) -> pd.DataFrame:
    """False-alarm rate on held-out successes against alpha, with 95 % Clopper–Pearson intervals.

    Each variant keeps its window, scores and threshold style and is recalibrated at every
    alpha of ``alphas`` (and its own alpha) that its calibration set allows.
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
            rows.append({"variant": name, "alpha": alpha, "own alpha": alpha == monitor.alpha, "successes": n,
                         "false_alarms": alarms, "false_alarm_rate": alarms / n if n else float("nan"),
                         "ci_low": float(low), "ci_high": float(high)})
    return pd.DataFrame(rows)


def _selection_text(monitor: FailureMonitor) -> str:
    chosen = monitor.selection_
    if not chosen:
        return ("Its settings were given, not chosen on validation rollouts (calibrate with --validation "
                "to choose them).")
    v = chosen["validation"]
    m = chosen["metrics"]
    return (f"Chosen on {v['rollouts']} validation rollouts ({v['failures']} failures) by {chosen['objective']} "
            f"among {len(chosen['searched']['scores'])} score sets, windows {chosen['searched']['window']}, "
            f"alphas {chosen['searched']['alpha']} and styles {chosen['searched']['threshold']}: there it had "
            f"TPR {m.get('tpr', float('nan')):.2f}, TNR {m.get('tnr', float('nan')):.2f}, balanced accuracy "
            f"{m.get('balanced_accuracy', float('nan')):.2f}.")


def write_monitor_report(
    out: str | Path,
    chosen: Mapping[str, FailureMonitor],
    results: pd.DataFrame,
    grids: Mapping[str, pd.DataFrame],
    test_sets: Sequence[ScoredSet],
    *,
    title: str = "Failure monitor evaluation",
    notes: Sequence[str] = (),
    families: Sequence[ScoredSet] = (),
    horizon: int | None = None,
    resplits: pd.DataFrame | None = None,
    misses: pd.DataFrame | None = None,
) -> Path:
    """Write ``report.md`` (PNG figures beside it) and a self-contained ``report.html``.

    Parameters
    ----------
    out : str or Path
        Folder to write into (created).
    chosen, results, grids
        What :func:`robogate.monitor.evaluation.evaluate` returned; ``chosen["as saved"]``
        is the monitor the figures show.
    test_sets : sequence of ScoredSet
        The sets given to ``evaluate``. The successes of those marked ``in_envelope`` test
        the false-alarm guarantee; figures use all of them joined.
    title : str
    notes : sequence of str
        Paragraphs placed under the title (provenance, how the rollouts were recorded).
    families : sequence of ScoredSet
        Families of rollouts whose two error rates are tabled (default: the test sets).
    horizon : int, optional
        The common horizon of the length-free figures (see :func:`~robogate.monitor.metrics.common_horizon`).
    resplits : DataFrame, optional
        From :func:`robogate.monitor.guarantee.resplit_false_alarms`.
    misses : DataFrame, optional
        Thresholds set to bound the miss rate and what they cost (a table made by the caller).

    Returns
    -------
    Path
        The HTML file.
    """
    doc = Document(title)
    for note in notes:
        doc.text(note)
    joined = ScoredSet.join(ALL, list(test_sets)) if len(test_sets) > 1 else test_sets[0]
    saved = chosen[SAVED]
    doc.heading("The monitor")
    doc.text(f"{saved.describe()}. {_selection_text(saved)}")
    _detection_section(doc, chosen, results, test_sets, tuned=bool(grids), horizon=horizon)
    _error_rates_section(doc, saved, list(families) or list(test_sets), horizon, misses)
    doc.heading("Detection per failure type")
    doc.text(f"The monitor as saved, on {joined.name}.")
    doc.table(outcome_rates(saved, joined))
    _false_alarm_section(doc, chosen, [s for s in test_sets if s.in_envelope], resplits)
    _figures_section(doc, chosen, joined)
    if grids:
        _validation_section(doc, grids)
    return doc.write(out)


def _detection_section(doc: Document, chosen: Mapping[str, FailureMonitor], results: pd.DataFrame,
                       test_sets: Sequence[ScoredSet], tuned: bool, horizon: int | None) -> None:
    doc.heading("Detection on the test rollouts")
    how = "chosen on the validation rollouts" if tuned else "as given (no validation rollouts)"
    doc.text(f"'{SAVED}' is the monitor above; every other variant has its window, alpha and threshold style "
             f"{how}, and '{BEST}' its scores and combination too. Nothing below was tuned on these test "
             "rollouts. An episode is flagged when the alarm fires at any step. Benign shifts are the successes of "
             "scenes outside the training envelope (novelty that is not failure), failing shifts their failures; "
             "'alarm before failure' counts alarms at or before the failure event over all failures; lead time is "
             "in seconds before the event.")
    doc.table(headline(chosen, test_sets))
    doc.text(f"Published: FIPER's AND alarm (mean of five tasks) accuracy {FIPER['accuracy']:.2f}, TPR "
             f"{FIPER['tpr']:.2f}; SAFE's ROC-AUC on unseen tasks in simulation {SAFE['roc_auc'][0]:.2f}–"
             f"{SAFE['roc_auc'][1]:.2f}.")
    doc.heading("Per test set", 3)
    doc.table(results[[c for c in DETAIL if c in results.columns]])
    if horizon is not None:
        doc.heading("Length-free: every episode cut after the common horizon", 3)
        doc.text(f"The same table with every episode seen for its first {horizon} steps only (the length nine in ten "
                 "successful test episodes reach): a failure whose alarm comes later counts as missed, a success is "
                 "not watched past the horizon. A figure that moves much here owed part of its value to the "
                 "episodes' lengths.")
        doc.table(headline(chosen, test_sets, horizon))


def _error_rates_section(doc: Document, saved: FailureMonitor, families: list[ScoredSet], horizon: int | None,
                         misses: pd.DataFrame | None) -> None:
    doc.heading("Both error rates, per family")
    doc.text(f"The monitor as saved. TPR and the share caught at or before the failure event with their one-sided "
             f"{BOUND_CONFIDENCE:.0%} lower Clopper–Pearson bounds; the false-alarm rate on the family's successes with "
             "its one-sided upper bound. A failure without an event (a timeout) never counts as caught before it.")
    doc.table(detection_table(saved, families))
    if horizon is not None:
        doc.text(f"Cut after {horizon} steps:")
        doc.table(detection_table(saved, families, horizon))
    if misses is not None and len(misses):
        doc.heading("Thresholds that bound the miss rate", 3)
        doc.text("Each threshold set from the validation failures of one family (conformal on failures: the k-th "
                 "smallest of their peaks), then tested on that family's test rollouts; what it costs is the "
                 "false-alarm rate on the monitor's calibration successes and on the held-out in-envelope ones.")
        doc.table(misses)


def _false_alarm_section(doc: Document, chosen: Mapping[str, FailureMonitor], envelope: list[ScoredSet],
                         resplits: pd.DataFrame | None) -> None:
    doc.heading("False alarms on held-out in-envelope successes")
    if not envelope:
        doc.text("No test set was marked as drawn from the calibration distribution, so the guarantee is not "
                 "checked here.")
        return
    saved = chosen[SAVED]
    successes = ScoredSet.join(", ".join(s.name for s in envelope), envelope)
    doc.text(f"Successful rollouts of {successes.name}, none of them used for fitting or calibration and drawn "
             "like the calibration rollouts: the conformal guarantee bounds the expected rate by alpha "
             "(marginally over calibration sets: one calibration set's rate scatters around it). Successes of "
             "shifted scenes are not covered by the guarantee and are not counted here.")
    doc.table(false_alarm_table({SAVED: saved}, successes))
    implied = false_alarm_range(saved.n_calibration_, saved.alpha, saved.confidence)
    kind = ("marginally (confidence not set)" if saved.confidence is None
            else f"training-conditionally at confidence {saved.confidence:g}")
    doc.text(f"Which number is which. The interval above is the test pool's: the noise of {successes.name}'s "
             f"successes around this one monitor's rate. The guarantee is about the monitor: calibrated "
             f"{kind} on {implied.n} successes (threshold at rank {implied.rank}), its rate is, before "
             f"calibration, distributed with mean {implied.mean:.3f} and 90 % predictive range "
             f"[{implied.low:.3f}, {implied.high:.3f}], above alpha {implied.alpha:g} with probability "
             f"{implied.p_above:.2f}.")
    if resplits is not None and len(resplits):
        doc.text("Re-splits of real rollouts: the calibration successes and held-out successes pooled, split at "
                 "random again and again into a calibration set of the same size and a test set, the threshold "
                 "recalibrated each time. The mean rate is the marginal rate; the share above alpha is what a "
                 "confidence bounds (also with the pool as the population, free of test-set noise); the implied "
                 "columns are the predictive range's.")
        shown = ["alpha", "confidence", "calibration", "test", "rank", "mean_rate", "share_above_alpha",
                 "share_above_alpha_pool", "implied_mean", "implied_above_alpha"]
        doc.table(resplits[[c for c in shown if c in resplits.columns]])
    own = false_alarm_table(chosen, successes, alphas=())
    doc.text("Every variant at its own alpha:")
    doc.table(own.drop(columns=["own alpha"]))


def _figures_section(doc: Document, chosen: Mapping[str, FailureMonitor], joined: ScoredSet) -> None:
    saved = chosen[SAVED]
    traces = _fig_traces(saved, joined)
    if traces is not None:
        doc.heading("Score traces")
        doc.figure("traces", traces, f"The monitor as saved: each score summed over {saved.window} steps against its "
                   f"{saved.threshold} threshold, for the first test rollout that succeeded without an alarm, the first "
                   "failure it caught and the first it missed (log scale where a score runs far above its threshold).")
    lead = _fig_lead_times(saved, joined)
    doc.heading("Lead time")
    if lead is not None:
        doc.figure("lead_times", lead, "The monitor as saved: time from the first alarm to the failure event, over "
                   "flagged failures with a known event.")
    else:
        doc.text("The monitor as saved flagged no failure with a known failure event (and a known control rate) "
                 "in the test rollouts.")
    roc = _fig_roc(chosen, joined)
    if roc is not None:
        doc.heading("ROC curves")
        doc.figure("roc", roc, "Each variant's max-so-far combined normalised score as a failure predictor on all "
                   "test rollouts (the saved monitor in black).")


def _validation_section(doc: Document, grids: Mapping[str, pd.DataFrame]) -> None:
    doc.heading("Validation")
    doc.text("Each variant's chosen row; for the best, the ten best candidates of its grid.")
    picked = pd.concat([grid[grid["chosen"]].assign(variant=name) for name, grid in grids.items()])
    keep = ["variant", "scores", "combine", "window", "alpha", "threshold", "tpr", "tnr", "balanced_accuracy",
            "time_weighted_accuracy"]
    doc.table(picked[keep])
    if BEST in grids:
        top = grids[BEST].sort_values(["balanced_accuracy", "time_weighted_accuracy"], ascending=False).head(10)
        doc.table(top[keep[1:]])
