"""Evaluate a failure monitor honestly: settings chosen on validation rollouts, figures from test rollouts.

One fitted :class:`FailureMonitor` yields many alarm *variants* by recalibration alone (the
scores are fitted once and shared): each fitted score alone, FIPER's AND of RND and ACE, the
OR of the default scores, and the best of a whole grid of score sets and combinations.
:func:`select_settings` picks the window, alpha and threshold style (and, from the grid, the
scores and their combination) that maximise balanced accuracy on *validation* rollouts
(successes and failures, in and out of the training envelope); :func:`evaluate` then reports
every metric of :mod:`robogate.monitor.metrics` on separate *test* sets, which never influence
a setting.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from robogate._utils.console import progress_bar
from robogate.monitor.metrics import episode_table, summarize
from robogate.monitor.monitor import COMBINES, DEFAULT_SCORES, FailureMonitor
from robogate.monitor.rollout import Rollout
from robogate.monitor.settings import THRESHOLD_STYLES

__all__ = ["ALL", "BEST", "CUT", "DEFAULT_GRID", "OBJECTIVES", "ScoredSet", "evaluate", "headline", "outcome_rates", "score_sets", "search_grid",
           "select_settings", "variants_of"]

DEFAULT_GRID: dict[str, tuple] = {
    "window": (1, 3, 5, 10),
    "alpha": (0.05, 0.1, 0.2),
    "threshold": THRESHOLD_STYLES,
}
"""Conformal settings searched on the validation rollouts."""

MAX_SCORES = 3
"""The largest score set :func:`score_sets` proposes."""

ALL = "all test rollouts"
"""Name of the test set that joins every test set given to :func:`evaluate`."""

BEST = "best on validation"
CUT = ("tpr", "tnr", "balanced_accuracy", "roc_auc", "early_tpr")
"""The figures :func:`evaluate` and :func:`headline` also give on episodes cut to a common horizon."""
"""Name of the variant whose scores and combination, too, were chosen on validation."""

OBJECTIVE = "balanced_accuracy"
"""What :func:`select_settings` maximises on the validation rollouts by default."""
OBJECTIVES = ("balanced_accuracy", "early_balanced_accuracy")
"""What it can maximise: (TPR + TNR) / 2, or (share of failures alarmed at or before their event + TNR) / 2."""


@dataclass(eq=False)
class ScoredSet:
    """Rollouts with their per-step scores under one fitted monitor (computed once, reused by every variant).

    Parameters
    ----------
    name : str
        What the set is, e.g. ``"in-envelope"`` or ``"shifted"``.
    rollouts : list of Rollout
    step_scores : list of dict
        :meth:`FailureMonitor.step_scores` of each rollout.
    in_envelope : bool
        Whether the set's scenes come from the monitor's calibration distribution: only then do
        its successes test the false-alarm guarantee.
    """

    name: str
    rollouts: list[Rollout]
    step_scores: list[dict] = field(repr=False)
    in_envelope: bool = False

    @classmethod
    def score(cls, monitor: FailureMonitor, name: str, rollouts: Sequence[Rollout],
              in_envelope: bool = False) -> ScoredSet:
        """Score ``rollouts`` with ``monitor``'s fitted scores."""
        rollouts = list(rollouts)
        return cls(name, rollouts, [monitor.step_scores(r) for r in rollouts], in_envelope)

    @classmethod
    def join(cls, name: str, parts: Sequence[ScoredSet]) -> ScoredSet:
        """One set made of ``parts`` (in the envelope only if they all are)."""
        return cls(name, [r for p in parts for r in p.rollouts], [s for p in parts for s in p.step_scores],
                   all(p.in_envelope for p in parts))

    def table(self, monitor: FailureMonitor, horizon: int | None = None) -> pd.DataFrame:
        """:func:`~robogate.monitor.metrics.episode_table` of this set under ``monitor`` (episodes cut
        after ``horizon`` steps when given)."""
        return episode_table(monitor, self.rollouts, self.step_scores, horizon)

    def describe(self) -> str:
        """``name: n rollouts (k failures)``."""
        failures = sum(not r.success for r in self.rollouts)
        return f"{self.name}: {len(self.rollouts)} rollouts ({failures} failures)"


def score_sets(fitted: Sequence[str], max_size: int = MAX_SCORES) -> list[tuple[tuple[str, ...], str]]:
    """Every (scores, combine) pair over subsets of ``fitted`` of up to ``max_size`` scores
    (a single score has one combination)."""
    out = []
    for size in range(1, min(max_size, len(fitted)) + 1):
        for subset in itertools.combinations(fitted, size):
            for combine in (COMBINES if size > 1 else COMBINES[:1]):
                out.append((subset, combine))
    return out


def search_grid(monitor: FailureMonitor, *, fixed_scores: bool = False, **fixed: Any) -> dict[str, Any]:
    """The grid :func:`select_settings` searches for a fitted monitor, with some settings held fixed.

    Parameters
    ----------
    monitor : FailureMonitor
        Fitted.
    fixed_scores : bool
        Keep the monitor's whole score set (only its combination is searched).
    **fixed
        ``alpha``, ``window``, ``threshold`` or ``combine`` values to keep.
    """
    unknown = set(fixed) - {"alpha", "window", "threshold", "combine"}
    if unknown:
        raise ValueError(f"search_grid fixes alpha, window, threshold or combine, got {sorted(unknown)}")
    grid: dict[str, Any] = {**DEFAULT_GRID, **{k: (v,) for k, v in fixed.items() if k != "combine"}}
    fitted = tuple(monitor.score_objects_)
    pairs = score_sets(fitted, len(fitted) if fixed_scores else MAX_SCORES)
    if fixed_scores:
        pairs = [(s, c) for s, c in pairs if len(s) == len(fitted)]
    if "combine" in fixed:
        pairs = [(s, c) for s, c in pairs if c == fixed["combine"] or len(s) == 1]
    grid["scores"] = pairs
    return grid


def variants_of(monitor: FailureMonitor) -> dict[str, dict]:
    """The fixed variants a fitted monitor supports: each score alone, FIPER's AND of RND and ACE
    beside their OR, the OR of the default scores, and that OR with the dynamics score."""
    fitted = tuple(monitor.score_objects_)
    variants = {name: {"scores": (name,), "combine": "or"} for name in fitted}
    pairs = [(("rnd", "ace"), "and"), (("rnd", "ace"), "or"), (DEFAULT_SCORES, "or"),
             ((*DEFAULT_SCORES, "dynamics"), "or")]
    for scores, combine in pairs:
        if set(scores) <= set(fitted):
            variants[f" {combine.upper()} ".join(scores)] = {"scores": scores, "combine": combine}
    return variants


def _ranked(rows: list[dict], objective: str = OBJECTIVE) -> list[int]:
    """Row indices, best first: the objective, then time-weighted accuracy, then the smaller
    alpha, the shorter window, the fewer scores."""
    def key(i: int) -> tuple:
        r = rows[i]
        return (-np.nan_to_num(r[objective], nan=-1.0), -np.nan_to_num(r["time_weighted_accuracy"], nan=-1.0),
                r["alpha"], r["window"], len(r["scores"].split("+")))
    return sorted(range(len(rows)), key=key)


def select_settings(
    monitor: FailureMonitor,
    validation: ScoredSet,
    variant: Mapping[str, Any] | None = None,
    grid: Mapping[str, Sequence] | None = None,
    progress: bool | None = None,
    objective: str = OBJECTIVE,
) -> tuple[FailureMonitor, pd.DataFrame]:
    """Choose a monitor's settings on validation rollouts.

    Parameters
    ----------
    monitor : FailureMonitor
        Fitted; only recalibrated here, never refitted.
    validation : ScoredSet
        Successes and failures kept apart from the test sets.
    variant : mapping, optional
        Fixed ``scores`` and ``combine``; default: both are searched too, over
        :func:`score_sets` of the fitted scores.
    grid : mapping, optional
        Candidate ``window``, ``alpha`` and ``threshold`` values (default :data:`DEFAULT_GRID`),
        and optionally ``scores``: a list of (scores, combine) pairs. Alphas the calibration
        set is too small for are skipped.
    progress : bool or None
        Draw a progress bar on stderr (None: only when stderr is a terminal).
    objective : str
        One of :data:`OBJECTIVES`.

    Returns
    -------
    (FailureMonitor, DataFrame)
        The chosen monitor, whose ``selection_`` records what was chosen and on which
        rollouts, and one row per candidate with its validation metrics.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {list(OBJECTIVES)}, got {objective!r}")
    grid = {**DEFAULT_GRID, **(grid or {})}
    if variant is not None:
        pairs = [(tuple(variant["scores"]), variant["combine"])]
    else:
        pairs = [(tuple(s), c) for s, c in grid.get("scores", score_sets(tuple(monitor.score_objects_)))]
    settings = list(itertools.product(pairs, grid["window"], grid["alpha"], grid["threshold"]))
    rows, candidates = [], []
    for (scores, combine), window, alpha, style in progress_bar(progress, iterable=settings, desc="settings"):
        try:
            candidate = monitor.recalibrate(scores=scores, combine=combine, window=window, alpha=alpha,
                                            threshold=style)
        except ValueError as exc:
            if "too few for alpha" in str(exc):
                continue
            raise
        summary = summarize(validation.table(candidate))
        rows.append({"scores": "+".join(candidate.scores_), "combine": combine, "window": window, "alpha": alpha,
                     "threshold": style, **summary})
        candidates.append(candidate)
    if not rows:
        raise ValueError(f"no setting in the grid fits {monitor.n_calibration_} calibration rollouts; "
                         "record more successes or allow larger alphas")
    table = pd.DataFrame(rows)
    best = _ranked(rows, objective)[0]
    table["chosen"] = False
    table.loc[best, "chosen"] = True
    chosen = candidates[best]
    failures = sum(not r.success for r in validation.rollouts)
    chosen.selection_ = {
        "objective": objective,
        "validation": {"name": validation.name, "rollouts": len(validation.rollouts), "failures": failures},
        "searched": {"scores": ["+".join(s) + f" ({c})" for s, c in pairs], "window": list(grid["window"]),
                     "alpha": list(grid["alpha"]), "threshold": list(grid["threshold"])},
        "metrics": {k: float(v) for k, v in rows[best].items() if isinstance(v, (int, float, np.floating))},
    }
    return chosen, table


def evaluate(
    monitor: FailureMonitor,
    test_sets: Sequence[ScoredSet],
    validation: ScoredSet | None = None,
    grid: Mapping[str, Sequence] | None = None,
    progress: bool | None = None,
    horizon: int | None = None,
) -> tuple[dict[str, FailureMonitor], pd.DataFrame, dict[str, pd.DataFrame]]:
    """Compare the alarm variants of a fitted monitor on test sets.

    Parameters
    ----------
    monitor : FailureMonitor
        Fitted; it is reported as ``"as saved"`` with its own settings.
    test_sets : sequence of ScoredSet
        Reported on, never tuned on; with more than one, their union (:data:`ALL`) too.
    validation : ScoredSet, optional
        When given, each variant of :func:`variants_of` chooses its window, alpha and
        threshold style on it, and :data:`BEST` chooses its scores and combination too.
    grid : mapping, optional
        Passed to :func:`select_settings`.
    progress : bool or None
        Draw a progress bar on stderr (None: only when stderr is a terminal).
    horizon : int, optional
        Also compute the figures of :data:`CUT` on episodes cut after this many steps
        (columns suffixed ``_cut``; see :func:`robogate.monitor.metrics.common_horizon`).

    Returns
    -------
    (dict, DataFrame, dict)
        The monitor of each variant; one row per variant and test set with its settings and
        metrics; each variant's validation grid (empty without validation).
    """
    test_sets = list(test_sets)
    if len(test_sets) > 1:
        test_sets.append(ScoredSet.join(ALL, test_sets))
    chosen: dict[str, FailureMonitor] = {"as saved": monitor}
    grids: dict[str, pd.DataFrame] = {}
    if validation is not None:
        for name, variant in progress_bar(progress, iterable=variants_of(monitor).items(), desc="variants"):
            chosen[name], grids[name] = select_settings(monitor, validation, variant, grid)
        chosen[BEST], grids[BEST] = select_settings(monitor, validation, None, grid, progress=progress)
    rows = []
    for name, m in chosen.items():
        for test in test_sets:
            row = {"variant": name, "test_set": test.name, "scores": "+".join(m.scores_),
                   "combine": m.combine, "window": m.window, "alpha": m.alpha, "threshold": m.threshold,
                   **summarize(test.table(m))}
            if horizon is not None:
                cut = summarize(test.table(m, horizon))
                row.update({f"{key}_cut": cut[key] for key in CUT})
            rows.append(row)
    return chosen, pd.DataFrame(rows), grids


def headline(chosen: Mapping[str, FailureMonitor], test_sets: Sequence[ScoredSet],
             horizon: int | None = None) -> pd.DataFrame:
    """One row per variant: the figures that decide whether a monitor is any good, over families of scenes.

    Columns: false alarms on the in-envelope successes (the guarantee's side, against ``alpha``),
    TNR on the successes of shifted scenes (benign shifts: novelty that is not failure), TPR on
    the failures of shifted scenes (failing shifts), the share of all failures alarmed at or
    before their failure event, balanced accuracy and ROC-AUC over all test rollouts, and the
    median lead time in seconds. With a ``horizon``, every figure comes from episodes cut after
    that many steps (the lead time stays that of the whole episodes).
    """
    inside = [s for s in test_sets if s.in_envelope]
    outside = [s for s in test_sets if not s.in_envelope]
    rows = []
    for name, monitor in chosen.items():
        row = {"variant": name, "scores": f" {monitor.combine.upper()} ".join(monitor.scores_),
               "window": monitor.window, "alpha": monitor.alpha, "threshold": monitor.threshold}
        if inside:
            joined = ScoredSet.join("in", inside).table(monitor, horizon)
            row["false alarms in envelope"] = summarize(joined)["false_alarm_rate"]
        if outside:
            shifted = summarize(ScoredSet.join("out", outside).table(monitor, horizon))
            row["TNR benign shifts"], row["TPR failing shifts"] = shifted["tnr"], shifted["tpr"]
        every = summarize(ScoredSet.join(ALL, list(test_sets)).table(monitor, horizon))
        row.update({"alarm before failure": every["early_tpr"], "balanced accuracy": every["balanced_accuracy"],
                    "ROC-AUC": every["roc_auc"], "median lead (s)": every["lead_time_median_s"]})
        rows.append(row)
    return pd.DataFrame(rows)


def outcome_rates(monitor: FailureMonitor, test: ScoredSet) -> pd.DataFrame:
    """Per failure type: failures, share flagged (TPR), share flagged at or before the failure event."""
    table = test.table(monitor)
    failed = table[~table["success"]]
    rows = []
    for outcome, group in failed.groupby("outcome"):
        flagged = group["alarm_step"].notna()
        early = flagged & (group["alarm_step"] <= group["failure_step"])
        rows.append({"outcome": outcome, "failures": len(group), "tpr": float(flagged.mean()),
                     "early_tpr": float(early.mean())})
    return pd.DataFrame(rows, columns=["outcome", "failures", "tpr", "early_tpr"])
