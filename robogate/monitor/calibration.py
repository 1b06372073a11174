"""Calibrating a monitor the way ``robogate monitor calibrate`` does: fit, choose, bound.

:func:`calibrate_monitor` picks the candidate scores (the defaults the rollouts carry signals
for; every usable score when validation rollouts will choose among them; a supervised
predictor beside them), fits and calibrates a :class:`~robogate.monitor.FailureMonitor`,
optionally chooses its settings on validation rollouts, and optionally moves its threshold so
that the miss rate on labelled failures is bounded. It imports nothing above
:mod:`robogate.monitor`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from robogate.monitor import scores as registry
from robogate.monitor.evaluation import ScoredSet, search_grid, select_settings
from robogate.monitor.monitor import FailureMonitor
from robogate.monitor.rollout import Rollout
from robogate.monitor.settings import DEFAULT_SCORES

__all__ = ["Calibrated", "calibrate_monitor", "monitor_settings"]

SETTINGS = ("alpha", "window", "combine", "threshold")
"""The monitor settings a caller may fix (the rest are chosen on validation, or default)."""


@dataclass
class Calibrated:
    """A calibrated monitor and how it was chosen."""

    monitor: FailureMonitor
    validation: ScoredSet | None = None
    """The scored validation rollouts, when settings were chosen on them."""
    choices: pd.DataFrame | None = None
    """Every setting tried on validation, the chosen one flagged in ``chosen``."""


def monitor_settings(scores: Sequence[Any] | None = None, confidence: float | None = None,
                     miss_rate: float | None = None, **settings: Any) -> dict[str, Any]:
    """The keyword arguments of the monitor a calibration request fits, checked before any rollout is read.

    ``confidence`` is the false-alarm rate's, unless ``miss_rate`` is asked for: then it is the miss-rate
    bound's. Raises ValueError on unknown settings, values out of range and unknown score names.
    """
    unknown = set(settings) - set(SETTINGS)
    if unknown:
        raise ValueError(f"settings are {list(SETTINGS)}, got {sorted(unknown)}")
    level = {"confidence": confidence} if confidence is not None and miss_rate is None else {}
    FailureMonitor(**settings, **level, scores=scores)  # checks the settings and the score names
    return {**settings, **level}


def candidate_scores(rollouts: Sequence[Rollout], scores: Sequence[Any] | None, predictor: Any = None,
                     searched: bool = False) -> list[Any] | None:
    """The scores a monitor is fitted with: ``scores`` when given; else, with a predictor or a search
    on validation, every usable score (``searched``) or the defaults the successes carry signals for
    (None keeps the monitor's own default). A predictor always joins them."""
    chosen = list(scores) if scores is not None else None
    if chosen is None and (searched or predictor is not None):
        usable = registry.usable([r for r in rollouts if r.success])
        chosen = usable if searched else [name for name in DEFAULT_SCORES if name in usable]
    if predictor is not None:
        chosen = [*(chosen or []), predictor]
    return chosen


def calibrate_monitor(
    rollouts: Sequence[Rollout],
    *,
    calibration: Sequence[Rollout] | None = None,
    validation: Sequence[Rollout] | None = None,
    scores: Sequence[Any] | None = None,
    predictor: Any = None,
    confidence: float | None = None,
    miss_rate: float | None = None,
    failures: Sequence[Rollout] | None = None,
    seed: int = 0,
    progress: bool | None = None,
    **settings: Any,
) -> Calibrated:
    """Fit and calibrate a monitor, choose its settings on validation and bound its misses.

    Parameters
    ----------
    rollouts : sequence of Rollout
        Successes fit the scores (and calibrate them unless ``calibration`` is given).
    calibration, validation : sequence of Rollout, optional
        Separate calibration successes; successes and failures to choose the scores, their
        combination, the window, alpha and the threshold style on (those in ``settings`` stay fixed).
    scores : sequence, optional
        Score names or objects (default: see :func:`candidate_scores`).
    predictor : FailurePredictor, optional
        One more score, calibrated here.
    confidence : float, optional
        Training-conditional confidence of the false-alarm rate; with ``miss_rate``, the
        confidence of the miss-rate bound instead.
    miss_rate : float, optional
        Set the threshold from ``failures`` so that a failure like them is missed at most this often.
    failures : sequence of Rollout, optional
        Labelled failing rollouts; required with ``miss_rate`` and only with it.
    seed : int
        Seed of the fit/calibration split.
    progress : bool or None
        Progress bar of the validation search (None: only when stderr is a terminal).
    **settings
        Any of ``alpha``, ``window``, ``combine``, ``threshold``.

    Raises
    ------
    ValueError
        On unknown settings, on ``miss_rate`` without ``failures`` (or the reverse), and on
        too few successes for the requested alpha and confidence.
    """
    if (miss_rate is None) != (failures is None):
        raise ValueError("miss_rate and failures go together: the failures set the threshold that bounds the miss rate")
    checked = monitor_settings(scores, confidence, miss_rate, **settings)
    candidates = candidate_scores(rollouts, scores, predictor, searched=validation is not None)
    monitor = FailureMonitor(**checked, scores=candidates, seed=seed).fit(rollouts, calibration)
    result = Calibrated(monitor)
    if validation is not None:
        result.validation = ScoredSet.score(monitor, "validation", validation)
        grid = search_grid(monitor, fixed_scores=scores is not None, **settings)
        result.monitor, result.choices = select_settings(monitor, result.validation, grid=grid, progress=progress)
    if miss_rate is not None:
        result.monitor = result.monitor.bound_misses(failures, miss_rate, confidence)
    return result
