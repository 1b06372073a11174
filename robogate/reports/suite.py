"""The report of a suite run, in the sweep report's style (Markdown + self-contained HTML).

:func:`write_suite_report` shows a run's success per category against the category's target band
and per scenario with Wilson intervals and outcome mixes, then a failure gallery (one replayed
episode per failure mode).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from robogate.datasets.stages import errored, first_error
from robogate.envs.outcomes import OUTCOMES
from robogate.reports.animation import row_params
from robogate.reports.colours import OUTCOME_COLOURS, outcome_colours
from robogate.reports.document import Document
from robogate.reports.gallery import TRIES, Shot, add_gallery, describe_scene

if TYPE_CHECKING:
    from robogate.suites.run import SuiteRun

__all__ = ["write_suite_report"]

_BLUE, _BAND = "#1f77b4", "#2ca02c"
CATEGORY_COLOURS = ["#1f3b73", "#b8860b", "#6a3d9a", "#008b8b", "#8b1a1a", "#556b2f"]
"""Scenario categories, in colours apart from the outcomes' (OUTCOME_COLOURS)."""


def _pct_interval(rate: float, low: float, high: float) -> str:
    return "n/a" if np.isnan(rate) else f"{rate:.3f} [{low:.3f}, {high:.3f}]"


# ------------------------------------------------------------------------------- suite run


def _fig_categories(table: pd.DataFrame) -> Figure:
    """Success per category with its Wilson interval, over the category's target band."""
    rows = table.reset_index(drop=True)
    fig = Figure(figsize=(9, 0.8 + 0.55 * len(rows)), layout="constrained")
    ax = fig.add_subplot()
    for i, r in rows.iterrows():
        if r["target"]:
            ax.fill_betweenx([i - 0.32, i + 0.32], *r["target"], color=_BAND, alpha=0.18, lw=0,
                             label="target band" if i == 0 else None)
        if r["n"]:
            ax.errorbar(r["rate"], i, xerr=[[r["rate"] - r["ci_low"]], [r["ci_high"] - r["rate"]]], fmt="o",
                        color="black" if r["category"] == "all" else _BLUE, capsize=4, ms=6)
    ax.set_yticks(range(len(rows)), [f"{c}  {k}/{n}" for c, k, n in zip(rows["category"], rows["successes"], rows["n"])])
    ax.invert_yaxis()
    ax.set_xlim(0, 1.05)
    ax.set_xlabel("success rate (95 % Wilson interval)")
    ax.grid(axis="x", alpha=0.3)
    if rows["target"].notna().any():
        ax.legend(loc="lower left", fontsize=8)
    return fig


def _fig_scenarios(table: pd.DataFrame) -> Figure:
    """Per scenario: success with its interval (left), outcome mix (right); grouped by category."""
    rows = table.reset_index(drop=True)
    fig = Figure(figsize=(11, 1.2 + 0.2 * len(rows)), layout="constrained")
    left, right = fig.subplots(1, 2, sharey=True, width_ratios=[1.4, 1])
    colours = {c: CATEGORY_COLOURS[i % len(CATEGORY_COLOURS)] for i, c in enumerate(dict.fromkeys(rows["category"]))}
    seen: set[str] = set()
    for i, r in rows.iterrows():
        if r["n"]:
            left.errorbar(r["rate"], i, xerr=[[r["rate"] - r["ci_low"]], [r["ci_high"] - r["rate"]]], fmt="o",
                          ms=3.5, capsize=2, lw=1, color=colours[r["category"]])
        start = 0.0
        mix = dict(part.rsplit(" ", 1) for part in r["outcomes"].split(", ")) if r["outcomes"] else {}
        total = sum(int(v) for v in mix.values()) or 1
        for outcome in OUTCOMES:
            width = int(mix.get(outcome, 0)) / total
            if width:
                right.barh(i, width, left=start, color=OUTCOME_COLOURS[outcome], height=0.8)
                start += width
                seen.add(outcome)
    labels = [f"{r['scenario']}  ({r['scene']})" if len(r["scene"]) < 40 else r["scenario"] for _, r in rows.iterrows()]
    left.set_yticks(range(len(rows)), labels, fontsize=7)
    left.set_ylim(len(rows) - 0.5, -0.5)
    left.set_xlim(-0.02, 1.02)
    left.set_xlabel("success rate (95 % Wilson interval)")
    left.grid(axis="x", alpha=0.3)
    right.set_xlim(0, 1)
    right.set_xlabel("outcome mix")
    above = {"loc": "lower center", "bbox_to_anchor": (0.5, 1.0), "fontsize": 8, "frameon": False}
    left.legend(handles=[Patch(color=c, label=k) for k, c in colours.items()], ncol=2, **above)
    right.legend(handles=[Patch(color=OUTCOME_COLOURS[o], label=o) for o in OUTCOMES if o in seen], ncol=3, **above)
    return fig


def _run_shots(run: SuiteRun) -> list[Shot]:
    """The failed episodes of a run, by outcome (the gallery shows one of each), in episode order."""
    table = run.table[~errored(run.table)] if len(run.table) else run.table
    failed = table[~table["success"].astype(bool)] if len(table) else table
    space = run.suite.space
    shots = []
    for outcome in outcome_colours(failed["outcome"].astype(str) if len(failed) else []):
        for _, row in failed[failed["outcome"].astype(str) == outcome].head(TRIES).iterrows():
            params = row_params(row, space.names)
            shots.append(Shot(outcome, f"{row['scenario']} episode {row['episode']}", run.env_id, run.policy, params,
                              int(row["seed"]), outcome, describe_scene(space, params)))
    return shots


def write_suite_report(run: SuiteRun, out: str | os.PathLike | None = None) -> Path:
    """Write ``report.html`` and ``report.md`` of a suite run (default folder ``<run>/report``)."""
    out = Path(out) if out is not None else run.path / "report"
    doc = Document(f"{run.policy} on {run.suite.label} ({run.env_id})")
    categories, scenarios = run.by_category(), run.by_scenario()
    doc.heading("Summary")
    status = "complete" if run.complete else f"partial: {len(run.table)} of {len(run.suite.episodes())} episodes"
    doc.text(f"{len(run.suite.scenarios)} scenarios in {len(run.suite.categories)} categories, "
             f"{len(run.suite.episodes())} episodes with fixed seeds ({status}). Intervals are 95 % Wilson "
             "intervals; errored episodes are left out of the rates.")
    if len(run.errors):
        doc.text(f"{len(run.errors)} episodes errored (the policy raised or the simulation diverged): a broken "
                 f"harness, not evidence about the policy. First error: {first_error(run.errors)}")
    doc.table(pd.DataFrame({
        "category": categories["category"], "episodes": categories["n"],
        "success (95 % CI)": [_pct_interval(r, lo, hi) for r, lo, hi in
                              zip(categories["rate"], categories["ci_low"], categories["ci_high"])],
        "target": [f"{t[0]:.2f}–{t[1]:.2f}" if t else "" for t in categories["target"]],
        "errors": categories["errors"], "outcomes": categories["outcomes"]}))
    doc.figure("categories", _fig_categories(categories),
               "Success per category with its 95 % Wilson interval; the shaded band is the category's target.")
    doc.heading("Scenarios")
    doc.figure("scenarios", _fig_scenarios(scenarios),
               "Success per scenario (left, coloured by category) and the outcome mix of its episodes (right).")
    doc.table(pd.DataFrame({
        "scenario": scenarios["scenario"], "category": scenarios["category"], "scene": scenarios["scene"],
        "episodes": scenarios["n"], "success (95 % CI)": [
            _pct_interval(r, lo, hi) for r, lo, hi in zip(scenarios["rate"], scenarios["ci_low"], scenarios["ci_high"])],
        "outcomes": scenarios["outcomes"]}))
    add_gallery(doc, _run_shots(run), "One episode per failure mode.")
    doc.heading("Provenance")
    doc.table(pd.DataFrame([
        {"": "folder", "value": str(run.path)}, {"": "env", "value": run.env_id}, {"": "policy", "value": run.policy},
        {"": "suite", "value": f"{run.suite.label}, digest {run.suite.digest}, seed {run.suite.seed}"},
        {"": "eval_info.json", "value": "LeRobot's keys: per_task (scenarios), per_group (categories), overall"}]))
    return doc.write(out)


# ------------------------------------------------------------------------------ comparison


