"""The report of a policy comparison, in the sweep report's style (Markdown + self-contained HTML).

:func:`write_comparison_report` puts the verdict first, then the scenarios whose outcome flipped
(by category and outcome) with a gallery of them (the failing side's episode, replayed), the
difference per category, the paired counts and the sequential test's trace.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from matplotlib.figure import Figure

from robogate.datasets.store import StoreError
from robogate.reports.animation import row_params
from robogate.reports.document import Document
from robogate.reports.gallery import Shot, add_gallery, describe_scene
from robogate.scenarios.space import ParameterSpace

if TYPE_CHECKING:
    from robogate.suites.comparison import Comparison

__all__ = ["write_comparison_report"]

_FLIPS_LISTED = 200
_BLUE, _GREY = "#1f77b4", "#999999"


def _fig_differences(table: pd.DataFrame, margin: float | None, method: str) -> Figure:
    """Candidate − baseline success per category with its interval (a forest plot)."""
    rows = table.reset_index(drop=True)
    fig = Figure(figsize=(9, 0.9 + 0.5 * len(rows)), layout="constrained")
    ax = fig.add_subplot()
    ax.axvline(0, color=_GREY, lw=1)
    if margin is not None:
        ax.axvline(-margin, color="#d62728", ls="--", lw=1, label=f"non-inferiority margin −{margin:g}")
    for i, r in rows.iterrows():
        ax.errorbar(r["difference"], i, xerr=[[r["difference"] - r["low"]], [r["high"] - r["difference"]]], fmt="o",
                    color="black" if r["category"] == "all" else _BLUE, capsize=4, ms=6)
        ax.text(r["high"] + 0.01, i, f"+{r['wins']} / −{r['losses']}", va="center", fontsize=8)
    ax.set_yticks(range(len(rows)), [f"{c} ({n})" for c, n in zip(rows["category"], rows["pairs"])])
    ax.invert_yaxis()
    ax.set_xlabel(f"success-rate difference, candidate − baseline ({'confidence sequence' if method == 'sequential' else 'Tango interval'}, 95 %)")
    ax.grid(axis="x", alpha=0.3)
    if margin is not None:
        ax.legend(fontsize=8, loc="lower left")
    return fig


def _fig_sequence(looks: pd.DataFrame, margin: float | None, stopped: int | None, total: int) -> Figure:
    """The sequential test's confidence sequence on the difference, look by look."""
    trace = looks.dropna(subset=["low"])
    fig = Figure(figsize=(9, 3.6), layout="constrained")
    ax = fig.add_subplot()
    ax.fill_between(trace["pairs"], trace["low"], trace["high"], color=_BLUE, alpha=0.25, step="pre",
                    label="confidence sequence (valid at every look)")
    ax.axhline(0, color=_GREY, lw=1)
    if margin is not None:
        ax.axhline(-margin, color="#d62728", ls="--", lw=1, label=f"−margin ({margin:g})")
    if stopped is not None:
        ax.axvline(stopped, color="black", ls=":", lw=1.2, label=f"decided after {stopped} pairs")
    last = int(looks["pairs"].max())
    if total > last:
        ax.axvspan(last, total, color="#eeeeee", lw=0, label=f"not run ({total - last} pairs)")
    ax.set_xlim(0, max(1, total, last))
    ax.set_ylim(max(-1.0, float(trace["low"].min()) - 0.05), min(1.0, float(trace["high"].max()) + 0.05))
    ax.set_xlabel("pairs looked at (in the suite's run order)")
    ax.set_ylabel("candidate − baseline")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    return fig


@dataclass
class _Side:
    """A comparison side's stored episodes by key (suite episode or sweep id), and what they ran."""

    table: pd.DataFrame
    env_id: str
    policy: str
    space: ParameterSpace
    sweep: Path | None = None
    """The sweep folder, when the side is a sweep (its episodes replay with ``robogate replay``)."""


def _stored_side(folder: Path) -> _Side | None:
    from robogate.suites.run import load_suite_run
    from robogate.sweep.stored import load_sweep

    try:
        run = load_suite_run(folder)
        return _Side(run.table, run.env_id, run.policy, run.suite.space)
    except ValueError:  # a sweep folder
        df = load_sweep(folder)
        settings = df.attrs["settings"]
        return _Side(df.set_index("id", drop=False), settings["env_id"], settings["policy"], settings["space"], folder)
    except StoreError:
        return None


def _flip_shots(result: Comparison, out: Path) -> tuple[list[Shot], str | None]:
    """The failing side of each flipped pair, grouped by change and outcome; or why its episodes cannot be found.

    A side given as a folder is read there; a policy run now is read where ``compare`` stored it, beside the report
    folder (``OUT/candidate``, ``OUT/baseline``).
    """
    p = result.pairs
    flips = p[p["candidate_success"] != p["baseline_success"]]
    flips = flips.assign(_gained=~flips["baseline_success"].astype(bool))
    flips = flips.sort_values(["_gained", "scenario", "episode"], kind="stable")
    sides = {}
    for role, label in (("candidate", result.candidate), ("baseline", result.baseline)):
        folder = Path(label) if Path(label).is_dir() else out.parent / role
        sides[role] = _stored_side(folder) if folder.is_dir() else None
    shots = []
    for _, pair in flips.iterrows():
        role = "baseline" if pair["_gained"] else "candidate"
        side = sides[role]
        if side is None:
            return [], (f"the {role}'s episodes are not stored where the comparison keeps them ({out.parent / role}); "
                        "write the report into the comparison's out folder (OUT/report)")
        params = row_params(side.table.loc[pair["key"]], side.space.names)
        outcome = str(pair[f"{role}_outcome"])
        name = pair["scenario"] if side.sweep is not None else f"{pair['scenario']} episode {pair['episode']}"
        shots.append(Shot(f"{'gained' if pair['_gained'] else 'lost'}: {outcome} ({role})", name, side.env_id,
                          side.policy, params, int(pair["seed"]), outcome, describe_scene(side.space, params),
                          f"robogate replay {side.sweep} --id {pair['key']}" if side.sweep is not None else ""))
    return shots, None


def write_comparison_report(result: Comparison, out: str | os.PathLike) -> Path:
    """Write ``report.html`` and ``report.md`` of a comparison into ``out``."""
    d = result.decision
    doc = Document(f"{result.candidate} against {result.baseline}")
    doc.verdict(result, "candidate")
    flips = result.flipped()
    doc.heading("What flipped")
    lost, gained = int((flips["change"] == "lost").sum()), int((flips["change"] == "gained").sum())
    doc.text(f"{lost} paired episodes succeeded only with the baseline (lost) and {gained} only with the candidate "
             "(gained); the outcome is the failing side's.")
    if len(flips):
        doc.table(result.flip_summary())
        shots, missing = _flip_shots(result, Path(out))
        if missing:
            doc.heading("Gallery of flipped episodes", 3)
            doc.caveat(f"No gallery: {missing}")
        else:
            add_gallery(doc, shots, "One flipped episode per change and outcome of the side that failed (lost: the "
                                    "candidate failed, gained: the baseline did).",
                        heading="Gallery of flipped episodes")
        listed = flips.head(_FLIPS_LISTED)
        doc.heading("Every flipped episode" if len(flips) <= _FLIPS_LISTED else f"The first {_FLIPS_LISTED} flipped episodes", 3)
        doc.table(listed, None if len(flips) <= _FLIPS_LISTED else
                  f"{len(flips) - _FLIPS_LISTED} more; Comparison.flipped() returns them all.")
    doc.heading("Difference per category")
    table = result.by_category()
    if table["p_value"].isna().all():  # sequential: no fixed-budget p-value
        table = table.drop(columns="p_value")
    doc.figure("differences", _fig_differences(table, d.margin, d.method),
               "Candidate − baseline success per category (pairs in brackets) with its 95 % interval, and the "
               "number of wins (+) and losses (−). Per-category intervals are each at 95 %, not simultaneous.")
    doc.table(table.assign(interval=[f"[{lo:+.3f}, {hi:+.3f}]" for lo, hi in zip(table["low"], table["high"])])
              .drop(columns=["low", "high"]))
    doc.heading("How it was decided")
    p = result.pairs
    count = lambda c, b: int(((p["candidate_success"] == c) & (p["baseline_success"] == b)).sum())  # noqa: E731
    doc.table(pd.DataFrame({"": ["candidate succeeded", "candidate failed"],
                            "baseline succeeded": [count(True, True), count(False, True)],
                            "baseline failed": [count(True, False), count(False, False)]}),
              "Paired episodes: only the discordant pairs (one succeeded, the other failed) tell the policies apart.")
    later = (f" Looked at pair by pair in the suite's run order, the sequential test would have decided after "
             f"{result.stopped_after} of the {len(p)} pairs." if result.stopped_after is not None else
             " Looked at pair by pair in the suite's run order, the sequential test would not have decided.")
    method = ("Every episode of the suite is paired: exact McNemar test on the discordant pairs and Tango's score "
              "interval (continuity-corrected) on the difference." + later if d.method == "fixed" else
              "Sequential: the betting confidence sequence, valid however often it is looked at; episodes were "
              "run (or are looked at) in the suite's shuffled order.")
    doc.text(f"The verdict of {result.test}. " + method
             + (f" Non-inferiority margin {d.margin:g}." if d.margin is not None else ""))
    if len(result.looks):
        doc.figure("sequence", _fig_sequence(result.looks, d.margin, result.stopped_after, result.total),
                   "The anytime-valid interval on the difference as pairs accumulate; the test decides where it "
                   "leaves 0 (or, with a margin, the margin's line).")
    doc.table(pd.DataFrame([
        {"": "candidate", "value": result.candidate}, {"": "baseline", "value": result.baseline},
        {"": "suite", "value": result.suite}, {"": "envs", "value": " / ".join(result.env_ids)},
        {"": "pairs", "value": str(len(p))},
        {"": "episodes run now", "value": ", ".join(f"{k} {v}" for k, v in result.ran.items()) or "none"}]))
    return doc.write(out)
