"""Evaluate a failure monitor honestly: settings chosen on validation rollouts, figures from test rollouts.

One fitted :class:`FailureMonitor` yields four alarm *variants* by recalibration alone (the
scorers are shared): FIPER's AND of RND and ACE, their OR, and each score alone. For each
variant, :func:`select_settings` picks the window, alpha and threshold style that maximise
balanced accuracy on *validation* rollouts (successes and failures); :func:`evaluate` then
reports every metric of :mod:`robogate.monitor.metrics` on separate *test* sets, which never
influence a setting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from robogate.monitor.conformal import THRESHOLD_STYLES
from robogate.monitor.metrics import episode_table, summarize
from robogate.monitor.monitor import FailureMonitor
from robogate.monitor.rollout import Rollout

__all__ = ["ALL", "DEFAULT_GRID", "VARIANTS", "ScoredSet", "evaluate", "select_settings", "variants_of"]

VARIANTS: dict[str, dict] = {
    "AND": {"combine": "and", "scores": ("rnd", "ace")},
    "OR": {"combine": "or", "scores": ("rnd", "ace")},
    "RND": {"combine": "and", "scores": ("rnd",)},
    "ACE": {"combine": "and", "scores": ("ace",)},
}
"""The alarm variants compared: FIPER's AND, the OR, and each score alone."""

DEFAULT_GRID: dict[str, tuple] = {
    "window": (1, 3, 5, 10),
    "alpha": (0.05, 0.1, 0.2),
    "threshold": THRESHOLD_STYLES,
}
"""Settings searched on the validation rollouts."""

ALL = "all test rollouts"
"""Name of the test set that joins every test set given to :func:`evaluate`."""

OBJECTIVE = "balanced_accuracy"
"""What :func:`select_settings` maximises on the validation rollouts."""


@dataclass(eq=False)
class ScoredSet:
    """Rollouts with their per-step scores under one fitted monitor (computed once, reused by every variant).

    Parameters
    ----------
    name : str
        What the set is, e.g. ``"in-distribution"`` or ``"shifted"``.
    rollouts : list of Rollout
    step_scores : list of dict
        :meth:`FailureMonitor.step_scores` of each rollout.
    """

    name: str
    rollouts: list[Rollout]
    step_scores: list[dict] = field(repr=False)

    @classmethod
    def score(cls, monitor: FailureMonitor, name: str, rollouts: Sequence[Rollout]) -> ScoredSet:
        """Score ``rollouts`` with ``monitor``'s fitted scorers."""
        rollouts = list(rollouts)
        return cls(name, rollouts, [monitor.step_scores(r) for r in rollouts])

    @classmethod
    def join(cls, name: str, parts: Sequence[ScoredSet]) -> ScoredSet:
        """One set made of ``parts``."""
        return cls(name, [r for p in parts for r in p.rollouts], [s for p in parts for s in p.step_scores])

    def table(self, monitor: FailureMonitor) -> pd.DataFrame:
        """:func:`~robogate.monitor.metrics.episode_table` of this set under ``monitor``."""
        return episode_table(monitor, self.rollouts, self.step_scores)


def variants_of(monitor: FailureMonitor) -> dict[str, dict]:
    """The :data:`VARIANTS` a fitted monitor supports (RND alone when it has no ACE)."""
    return {name: v for name, v in VARIANTS.items() if set(v["scores"]) <= set(monitor.scores_)}


def select_settings(
    monitor: FailureMonitor,
    validation: ScoredSet,
    variant: Mapping[str, object],
    grid: Mapping[str, Sequence] | None = None,
) -> tuple[FailureMonitor, pd.DataFrame]:
    """Choose window, alpha and threshold style for one variant on validation rollouts.

    Parameters
    ----------
    monitor : FailureMonitor
        Fitted; only recalibrated here, never refitted.
    validation : ScoredSet
        Successes and failures kept apart from the test sets.
    variant : mapping
        ``combine`` and ``scores`` of the variant (see :data:`VARIANTS`).
    grid : mapping, optional
        Candidate ``window``, ``alpha`` and ``threshold`` values (default :data:`DEFAULT_GRID`);
        alphas the calibration set is too small for are skipped.

    Returns
    -------
    (FailureMonitor, DataFrame)
        The chosen monitor and one row per candidate with its validation metrics.
        Ties in balanced accuracy go to the higher time-weighted accuracy, then the
        smaller alpha, then the shorter window.
    """
    grid = {**DEFAULT_GRID, **(grid or {})}
    rows, candidates = [], []
    for window in grid["window"]:
        for alpha in grid["alpha"]:
            for style in grid["threshold"]:
                try:
                    candidate = monitor.recalibrate(window=window, alpha=alpha, threshold=style, **variant)
                except ValueError as exc:
                    if "too few for alpha" in str(exc):
                        continue
                    raise
                summary = summarize(validation.table(candidate))
                rows.append({"window": window, "alpha": alpha, "threshold": style, **summary})
                candidates.append(candidate)
    if not rows:
        raise ValueError(f"no setting in the grid fits {monitor.n_calibration_} calibration rollouts; "
                         "record more successes or allow larger alphas")
    table = pd.DataFrame(rows)
    order = sorted(range(len(rows)), key=lambda i: (-np.nan_to_num(rows[i][OBJECTIVE], nan=-1.0),
                                                    -np.nan_to_num(rows[i]["time_weighted_accuracy"], nan=-1.0),
                                                    rows[i]["alpha"], rows[i]["window"]))
    table["chosen"] = False
    table.loc[order[0], "chosen"] = True
    return candidates[order[0]], table


def evaluate(
    monitor: FailureMonitor,
    test_sets: Sequence[ScoredSet],
    validation: ScoredSet | None = None,
    grid: Mapping[str, Sequence] | None = None,
    progress: bool = False,
) -> tuple[dict[str, FailureMonitor], pd.DataFrame, dict[str, pd.DataFrame]]:
    """Compare the alarm variants of a fitted monitor on test sets.

    Parameters
    ----------
    monitor : FailureMonitor
        Fitted.
    test_sets : sequence of ScoredSet
        Reported on, never tuned on; with more than one, their union (:data:`ALL`) too.
    validation : ScoredSet, optional
        When given, each variant's settings are chosen on it (:func:`select_settings`);
        otherwise every variant keeps ``monitor``'s window, alpha and threshold style.
    grid : mapping, optional
        Passed to :func:`select_settings`.
    progress : bool
        Show a progress bar over the variants.

    Returns
    -------
    (dict, DataFrame, dict)
        The monitor of each variant; one row per variant and test set with its
        settings and metrics; each variant's validation grid (empty without validation).
    """
    test_sets = list(test_sets)
    if len(test_sets) > 1:
        test_sets.append(ScoredSet.join(ALL, test_sets))
    chosen: dict[str, FailureMonitor] = {}
    grids: dict[str, pd.DataFrame] = {}
    rows = []
    variants = variants_of(monitor)
    for name, variant in tqdm(variants.items(), desc="variants", disable=not progress):
        if validation is not None:
            chosen[name], grids[name] = select_settings(monitor, validation, variant, grid)
        else:
            chosen[name] = monitor.recalibrate(**variant)
        m = chosen[name]
        for test in test_sets:
            rows.append({"variant": name, "test_set": test.name, "window": m.window, "alpha": m.alpha,
                         "threshold": m.threshold, **summarize(test.table(m))})
    return chosen, pd.DataFrame(rows), grids
