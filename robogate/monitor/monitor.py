"""The conformal failure monitor: plug-in failure scores, calibrated on successful rollouts only.

:class:`FailureMonitor` fits its scores (entries of :mod:`robogate.monitor.scores`) on one
share of the successful rollouts and calibrates split-conformal thresholds on the rest, so
that a new successful episode raises an alarm with probability at most ``alpha``. At run time
:meth:`FailureMonitor.update` takes one step's signals (the observation, the policy's
embedding, its sampled action chunks) and returns a :class:`MonitorDecision`.
"""

from __future__ import annotations

import copy
import json
import os
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robogate._utils.checks import check_int, check_level
from robogate.monitor import scores as registry
from robogate.monitor.conformal import (
    Threshold,
    calibrate_thresholds,
    calibration_needed,
    check_confidence,
    check_style,
    conformal_rank,
    window_sums,
)
from robogate.monitor.rollout import SIGNALS, Rollout
from robogate.monitor.scores import Step
from robogate.monitor.settings import COMBINES, DEFAULT_SCORES, DEFAULTS

__all__ = ["COMBINES", "DEFAULTS", "DEFAULT_SCORES", "FailureMonitor", "MonitorDecision", "MonitorTrace"]

FORMAT_VERSION = 2
_CONFIG_FILE = "monitor.json"
_ARRAYS_FILE = "arrays.npz"
_SIGNAL_WORDS = {"observations": "observation", "embeddings": "embedding", "action_chunks": "chunks",
                 "actions": "last_action"}


@dataclass(frozen=True)
class MonitorDecision:
    """What the monitor concluded at one control step.

    Attributes
    ----------
    step : int
        Control step since :meth:`FailureMonitor.reset` (0-based).
    alarm : bool
        The combined test at this step ("or": some score above its threshold; "and": every one).
    scores : dict
        Each score summed over the window, by name.
    thresholds : dict
        Each score's threshold at this step.
    normalized : dict
        Each score as a multiple of its threshold margin: above 1 exactly when above threshold.
    """

    step: int
    alarm: bool
    scores: dict[str, float]
    thresholds: dict[str, float]
    normalized: dict[str, float]

    @property
    def above(self) -> tuple[str, ...]:
        """The scores above their thresholds at this step: why the monitor alarmed."""
        return tuple(name for name, value in self.normalized.items() if value > 1.0)


@dataclass(frozen=True, eq=False)
class MonitorTrace:
    """A whole episode run through the monitor offline: what :meth:`FailureMonitor.update` gives
    step by step, as arrays of shape (T,).

    Attributes
    ----------
    scores, thresholds, normalized : dict of arrays
        As in :class:`MonitorDecision`, one entry per step.
    combined : array
        The combined normalised score (maximum over scores for "or", minimum for "and");
        an alarm is ``combined > 1``.
    alarms : array of bool
        The combined test at each step.
    """

    scores: dict[str, np.ndarray]
    thresholds: dict[str, np.ndarray]
    normalized: dict[str, np.ndarray]
    combined: np.ndarray
    alarms: np.ndarray

    @property
    def alarm_step(self) -> int | None:
        """The first step with an alarm, or None."""
        hits = np.flatnonzero(self.alarms)
        return int(hits[0]) if hits.size else None

    @property
    def peak(self) -> float:
        """The largest combined normalised score: the max-so-far score at the episode's end."""
        return float(np.max(self.combined))


def _check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def _resolve_scores(scores: Any) -> list[tuple[str, Any]] | None:
    """``scores`` as (name, score object) pairs; names are looked up in the registry."""
    if scores is None:
        return None
    items = [scores] if isinstance(scores, str) or not isinstance(scores, Sequence) else list(scores)
    if not items:
        raise ValueError(f"scores must name at least one score (registered: {', '.join(registry.names())}), got none")
    out: list[tuple[str, Any]] = []
    for item in items:
        if isinstance(item, str):
            out.append((item, registry.make(item)))
        else:
            name = registry.name_of(item)
            registry.check_score(item, name)
            out.append((name, item))
    names = [name for name, _ in out]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"scores names {duplicates} more than once; give each score once")
    return out


def _check_rollouts(rollouts: Any, name: str) -> list[Rollout]:
    if isinstance(rollouts, Rollout):
        rollouts = [rollouts]
    items = list(rollouts)
    for i, item in enumerate(items):
        if not isinstance(item, Rollout):
            raise ValueError(f"{name}[{i}] is a {type(item).__name__}, expected a robogate.monitor.Rollout")
    return items


def minimum_successes(alpha: float, fit_fraction: float = 0.5, confidence: float | None = None) -> int:
    """Successful rollouts :meth:`FailureMonitor.fit` needs (without separate calibration rollouts) for
    ``alpha`` (and ``confidence``): the calibration share must hold
    :func:`~robogate.monitor.conformal.calibration_needed` of them (``ceil(1 / alpha) - 1`` marginally,
    ``ln(1 - confidence) / ln(1 - alpha)`` training-conditionally)."""
    alpha, fit_fraction = check_level(alpha, "alpha"), check_level(fit_fraction, "fit_fraction")
    needed = calibration_needed(alpha, confidence)
    n = needed + 1
    while n - min(max(int(round(fit_fraction * n)), 1), n - 1) < needed:
        n += 1
    return n


class FailureMonitor:
    """A runtime failure monitor calibrated on successful rollouts only.

    Parameters
    ----------
    alpha : float in (0, 1)
        Allowed rate of false alarms on successful episodes (episode level), for the
        combined alarm.
    confidence : float in (0, 1), optional
        Calibrate training-conditionally: the monitor's own false-alarm rate exceeds ``alpha``
        with probability at most ``1 - confidence`` over calibration sets (0.9 at alpha 0.1
        needs 22 calibration successes). None (the default): the marginal threshold, whose
        rate is at most ``alpha`` on average over calibration sets only (see
        :mod:`robogate.monitor.conformal`).
    window : int
        Steps each score is summed over.
    combine : {"or", "and"}
        Alarm when any score is above its threshold (one calibration for all scores, at
        level ``alpha``), or when every one is (FIPER's AND: each score at ``alpha``).
    threshold : {"constant", "time_varying", "functional"}
        Threshold style (see :mod:`robogate.monitor.conformal`).
    scores : sequence of str or score objects, optional
        Registered score names (see :mod:`robogate.monitor.scores`) or score objects, such
        as a configured ``RND(epochs=30)`` or a trained :class:`~robogate.monitor.FailurePredictor`
        (a score whose ``prefitted`` is true is not fitted again, only calibrated: keep the
        rollouts it was trained on apart from the calibration ones).
        Default :data:`DEFAULT_SCORES`, those of them the rollouts carry signals for.
    fit_fraction : float in (0, 1)
        Share of the successful rollouts that fit the scores when :meth:`fit` gets no
        separate calibration rollouts; the rest calibrate the thresholds.
    seed : int
        Seeds the split of the rollouts.

    Attributes
    ----------
    scores_ : tuple of str
        The scores in use after :meth:`fit`.
    signals_ : dict
        The shape of each signal :meth:`update` reads, by signal name.
    thresholds_ : dict of Threshold
        The calibrated threshold of each score.
    n_fit_, n_calibration_ : int
        Successful rollouts used to fit the scores and to calibrate the thresholds.
    selection_ : dict or None
        How the settings were chosen on validation rollouts (see
        :func:`robogate.monitor.evaluation.select_settings`), or None.
    miss_bound_ : MissBound or None
        Set by :meth:`bound_misses`: the threshold bounds the miss rate instead of alpha.

    Examples
    --------
    >>> from robogate.monitor import FailureMonitor
    >>> monitor = FailureMonitor(alpha=0.1).fit(rollouts)                         # doctest: +SKIP
    >>> monitor.reset()                                                           # doctest: +SKIP
    >>> monitor.update(policy.embed(obs), observation=obs).alarm                  # doctest: +SKIP
    False
    """

    def __init__(
        self,
        alpha: float = DEFAULTS["alpha"],
        window: int = DEFAULTS["window"],
        combine: str = DEFAULTS["combine"],
        threshold: str = DEFAULTS["threshold"],
        *,
        scores: Sequence[Any] | None = None,
        confidence: float | None = DEFAULTS["confidence"],
        fit_fraction: float = 0.5,
        seed: int = 0,
    ) -> None:
        self.alpha = check_level(alpha, "alpha")
        self.confidence = check_confidence(confidence)
        self.window = check_int(window, "window", minimum=1)
        self.combine = _check_choice(combine, "combine", COMBINES)
        self.threshold = check_style(threshold)
        self.scores = _resolve_scores(scores)
        self.fit_fraction = check_level(fit_fraction, "fit_fraction")
        self.seed = check_int(seed, "seed")
        self.selection_: dict | None = None
        self.miss_bound_: Any = None

    # ------------------------------------------------------------------------- fitting
    def _split(self, successes: list[Rollout]) -> tuple[list[Rollout], list[Rollout]]:
        order = np.random.default_rng(self.seed).permutation(len(successes))
        n_fit = min(max(int(round(self.fit_fraction * len(successes))), 1), len(successes) - 1)
        return [successes[i] for i in order[:n_fit]], [successes[i] for i in order[n_fit:]]

    def fit(self, rollouts: Sequence[Rollout], calibration: Sequence[Rollout] | None = None) -> FailureMonitor:
        """Fit the scores and calibrate the thresholds on successful rollouts.

        Beside a prefitted score (a :class:`FailurePredictor`), each score fitted here is profiled
        out of fold (two folds of the fitting successes, each scored by a copy fitted on the
        other), so that no score sets the OR alarm's common scale by looking tight on the
        episodes it was fitted on.

        Parameters
        ----------
        rollouts : sequence of Rollout
            Recorded rollouts; only the successful ones are used. Without
            ``calibration`` they are split: ``fit_fraction`` fit the scores,
            the rest calibrate.
        calibration : sequence of Rollout, optional
            Separate calibration rollouts (their successes are used); then all
            successes of ``rollouts`` fit the scores.

        Returns
        -------
        FailureMonitor
            ``self``, fitted.

        Raises
        ------
        ValueError
            No rollouts, no successful ones, too few calibration successes for ``alpha``
            (the message counts the split), signals of different shapes, or a score that
            reads a signal the rollouts do not carry.
        """
        rollouts = _check_rollouts(rollouts, "rollouts")
        if not rollouts:
            raise ValueError("fit needs recorded rollouts, got none")
        successes = [r for r in rollouts if r.success]
        if not successes:
            raise ValueError(f"fit got {len(rollouts)} rollouts and none is successful: the monitor calibrates "
                             "on successful rollouts only")
        if calibration is None:
            needed = minimum_successes(self.alpha, self.fit_fraction, self.confidence)
            if len(successes) < needed:
                share = 1.0 - self.fit_fraction
                at = "" if self.confidence is None else f" at confidence {self.confidence:g}"
                raise ValueError(
                    f"{len(successes)} successful rollouts are too few for alpha={self.alpha:g}{at}: {share:.0%} of "
                    f"them calibrate the thresholds (the rest fit the scores), and the conformal quantile needs "
                    f"{calibration_needed(self.alpha, self.confidence)} calibration rollouts; record at least "
                    f"{needed} successful rollouts, or use a larger alpha"
                    + ("" if self.confidence is None else " or a lower confidence"))
            fit_set, cal_set = self._split(successes)
        else:
            cal_all = _check_rollouts(calibration, "calibration")
            fit_set, cal_set = successes, [r for r in cal_all if r.success]
            if not cal_set:
                raise ValueError(f"calibration holds {len(cal_all)} rollouts and none is successful")
            conformal_rank(len(cal_set), self.alpha, self.confidence)
        chosen = self._scores_for(fit_set + cal_set)
        self.signals_ = self._signal_shapes(fit_set + cal_set, chosen)
        # A score that arrives trained (e.g. a FailurePredictor) is used as it is: only calibrated.
        prefitted = {name for name, score in chosen if getattr(score, "prefitted", False)}
        blanks = {name: copy.deepcopy(score) for name, score in chosen if name not in prefitted} if prefitted else {}
        self.score_objects_ = {name: score if name in prefitted else score.fit(fit_set) for name, score in chosen}
        self.scores_ = tuple(self.score_objects_)
        # Beside a prefitted score, whose fitting-set streams are held out, a score fitted here looks
        # tighter on its own fitting episodes than on new ones; the OR alarm's common scale would then be
        # set by it alone. Its profile comes from episodes it did not fit on: two folds, each scored by
        # a copy fitted on the other.
        self.fit_scores_ = {name: self._out_of_fold(name, blanks[name], fit_set) if name in blanks
                            else [self._score(name, r) for r in fit_set] for name in self.scores_}
        self.calibration_scores_ = {name: [self._score(name, r) for r in cal_set] for name in self.scores_}
        self.n_fit_, self.n_calibration_ = len(fit_set), len(cal_set)
        self._calibrate()
        self._warn_unreachable()
        return self

    def _warn_unreachable(self) -> None:
        """Warn of a bounded score (one with ``upper_bound``) whose threshold it can never reach."""
        for name, score in self.score_objects_.items():
            bound = getattr(score, "upper_bound", None)
            lowest = float(self.thresholds_[name].values.min())
            if bound is not None and len(self.scores_) > 1 and lowest >= bound * self.window:
                others = " OR ".join(n for n in self.scores_ if n != name)
                warnings.warn(f"score {name!r} can never reach its threshold ({lowest:.3g}; its window sums are at "
                              f"most {bound * self.window:g}) beside {others}, which set the OR alarm's common scale "
                              f"here: it will never alarm; monitor with {name!r} alone, or fit on more successes",
                              RuntimeWarning, stacklevel=3)

    def _out_of_fold(self, name: str, blank: Any, fit_set: list[Rollout]) -> list[np.ndarray]:
        """Streams of score ``name`` on each fitting episode, from a copy of ``blank`` fitted on the other fold."""
        order = np.random.default_rng(self.seed).permutation(len(fit_set))
        folds = (order[: len(order) // 2], order[len(order) // 2:])
        streams: list[np.ndarray | None] = [None] * len(fit_set)
        for held, train in (folds, folds[::-1]):
            if not len(held) or not len(train):
                raise ValueError(f"score {name!r} needs at least two fitting successes to be scored out of fold "
                                 "beside a prefitted score")
            copy_fitted = copy.deepcopy(blank).fit([fit_set[i] for i in train])
            for i in held:
                streams[i] = self._checked(name, copy_fitted.score(fit_set[i]), fit_set[i])
        return streams

    def _scores_for(self, rollouts: list[Rollout]) -> list[tuple[str, Any]]:
        if self.scores is None:
            available = [name for name in registry.usable(rollouts) if name in DEFAULT_SCORES]
            if not available:
                raise ValueError("the rollouts carry neither embeddings nor observations for the default scores "
                                 f"{list(DEFAULT_SCORES)}; pass scores=[...] for the signals they have")
            return [(name, registry.make(name)) for name in available]
        chosen = [(name, copy.deepcopy(score)) for name, score in self.scores]
        for name, score in chosen:
            for signal in score.signals:
                missing = sum(not r.has(signal) for r in rollouts)
                if missing:
                    raise ValueError(
                        f"score {name!r} reads {signal}, but {missing} of the {len(rollouts)} successful rollouts "
                        f"carry none; record them with it (action chunks: n_chunks > 0; embeddings: a policy "
                        f"with embed(obs)) or leave {name!r} out")
        return chosen

    @staticmethod
    def _signal_shapes(rollouts: list[Rollout], chosen: list[tuple[str, Any]]) -> dict[str, tuple[int, ...]]:
        shapes = {}
        for signal in SIGNALS:
            if any(signal in score.signals for _, score in chosen):
                found = {getattr(r, signal).shape[1:] for r in rollouts}
                if len(found) > 1:
                    raise ValueError(f"rollouts have {signal} of different shapes {sorted(found)}")
                shapes[signal] = tuple(int(n) for n in found.pop())
        return shapes

    def _score(self, name: str, rollout: Rollout) -> np.ndarray:
        return self._checked(name, self.score_objects_[name].score(rollout), rollout)

    @staticmethod
    def _checked(name: str, scored: Any, rollout: Rollout) -> np.ndarray:
        values = np.asarray(scored, dtype=float).reshape(-1)
        if values.size != rollout.steps or not np.all(np.isfinite(values)):
            raise ValueError(f"score {name!r} gave {values.size} values for a rollout of {rollout.steps} steps"
                             + ("" if values.size != rollout.steps else ", some of them not finite"))
        return values

    def _calibrate(self) -> None:
        windowed = {part: {name: [window_sums(s, self.window) for s in streams[name]] for name in self.scores_}
                    for part, streams in (("fit", self.fit_scores_), ("cal", self.calibration_scores_))}
        self.thresholds_ = calibrate_thresholds(windowed["fit"], windowed["cal"], self.alpha, self.threshold,
                                                self.combine, self.confidence)
        self.reset()

    def as_default(self) -> FailureMonitor:
        """A copy with the settings of ``FailureMonitor()`` (:data:`DEFAULTS`, and those of
        :data:`DEFAULT_SCORES` that were fitted), sharing the fitted scores."""
        self._check_fitted()
        names = [n for n in DEFAULT_SCORES if n in self.score_objects_]
        if not names:
            raise ValueError(f"none of the default scores {list(DEFAULT_SCORES)} was fitted; "
                             f"fitted: {list(self.score_objects_)}")
        return self.recalibrate(**DEFAULTS, scores=names)

    def recalibrate(self, **settings: Any) -> FailureMonitor:
        """A copy with other conformal settings, sharing the fitted scores (no retraining).

        Parameters
        ----------
        **settings
            Any of ``alpha``, ``confidence``, ``window``, ``combine``, ``threshold`` and ``scores``
            (names among the fitted ``scores_``).
        """
        self._check_fitted()
        allowed = {"alpha", "confidence", "window", "combine", "threshold", "scores"}
        unknown = set(settings) - allowed
        if unknown:
            raise ValueError(f"recalibrate takes {sorted(allowed)}, got {sorted(unknown)}")
        other = copy.copy(self)
        other.alpha = check_level(settings.get("alpha", self.alpha), "alpha")
        other.confidence = check_confidence(settings.get("confidence", self.confidence))
        other.window = check_int(settings.get("window", self.window), "window", minimum=1)
        other.combine = _check_choice(settings.get("combine", self.combine), "combine", COMBINES)
        other.threshold = check_style(settings.get("threshold", self.threshold))
        other.selection_ = other.miss_bound_ = None
        if "scores" in settings:
            wanted = settings["scores"]
            names = (wanted,) if isinstance(wanted, str) else tuple(wanted)
            absent = [n for n in names if n not in self.score_objects_]
            if absent or not names:
                raise ValueError(f"scores {list(absent or names)} were not fitted; fitted: {list(self.score_objects_)}")
            other.scores_ = tuple(n for n in self.score_objects_ if n in names)
        conformal_rank(other.n_calibration_, other.alpha, other.confidence)
        other._calibrate()
        return other

    def bound_misses(self, failures: Sequence[Rollout], miss_rate: float,
                     confidence: float | None = None) -> FailureMonitor:
        """A copy whose threshold bounds the miss rate on failures like ``failures`` (labelled failing
        rollouts, e.g. the simulator's) at ``miss_rate``, instead of the false-alarm rate at alpha; its
        ``miss_bound_`` says what false-alarm rate that costs. See :func:`robogate.monitor.misses.bound_misses`."""
        from robogate.monitor.misses import bound_misses

        return bound_misses(self, failures, miss_rate, confidence)

    # ------------------------------------------------------------------------- running
    def _check_fitted(self) -> None:
        if not hasattr(self, "thresholds_"):
            raise RuntimeError("this FailureMonitor is not fitted yet; call fit(rollouts) or load(path)")

    @property
    def reads(self) -> tuple[str, ...]:
        """The signals the scores in use read (among :data:`robogate.monitor.rollout.SIGNALS`)."""
        self._check_fitted()
        used = {s for name in self.scores_ for s in self.score_objects_[name].signals}
        return tuple(s for s in SIGNALS if s in used)

    @property
    def n_chunks(self) -> int:
        """Action chunks B the monitor reads per step (0 when no score reads chunks)."""
        return self.signals_["action_chunks"][0] if "action_chunks" in self.reads else 0

    def reset(self) -> None:
        """Start a new episode: fresh score streams, empty windows, step 0."""
        self._check_fitted()
        self._streams = {name: self.score_objects_[name].stream() for name in self.scores_}
        self._recent = {name: [] for name in self.scores_}
        self._step = 0
        self.alarm_step: int | None = None

    def _check_signal(self, signal: str, value: Any) -> np.ndarray | None:
        if signal not in self.reads or (signal == "actions" and value is None and self._step == 0):
            return None  # no action has been taken before an episode's first step
        word = _SIGNAL_WORDS[signal]
        if value is None:
            users = [n for n in self.scores_ if signal in self.score_objects_[n].signals]
            raise ValueError(f"this monitor's scores {users} read the {word}: pass {word}= to update "
                             f"(shape {self.signals_[signal]})")
        array = np.asarray(value, dtype=np.float32)
        if array.shape != self.signals_[signal]:
            raise ValueError(f"{word} must have shape {self.signals_[signal]}, got {array.shape}")
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{word} holds NaN or infinite values")
        return array

    def update(self, embedding: Any = None, chunks: Any = None, *, observation: Any = None,
               last_action: Any = None) -> MonitorDecision:
        """Score one control step and decide whether to raise an alarm.

        Parameters
        ----------
        embedding : array of shape (d,), optional
            The policy's embedding of the current observation (needed by ``"rnd"``).
        chunks : array of shape (B, H, A), optional
            The action chunks the policy sampled at this step (needed by ``"ace"``, ``"consistency"``).
        observation : array of shape (o,), optional
            The current observation (needed by ``"obs_rnd"``, ``"dynamics"``).
        last_action : array of shape (A,), optional
            The action executed at the step before, which led to ``observation`` (needed by
            ``"dynamics"`` from the second step on; None at an episode's first step).

        Signals no score reads are ignored.

        Returns
        -------
        MonitorDecision
        """
        self._check_fitted()
        step = Step(self._step, observations=self._check_signal("observations", observation),
                    embeddings=self._check_signal("embeddings", embedding),
                    action_chunks=self._check_signal("action_chunks", chunks),
                    actions=self._check_signal("actions", last_action))
        scores, thresholds, normalized = {}, {}, {}
        for name in self.scores_:
            recent = self._recent[name]
            recent.append(float(self._streams[name].update(step)))
            del recent[:-self.window]
            total = 0.0
            for v in recent:  # oldest first, the order window_sums adds in
                total += v
            threshold = self.thresholds_[name]
            scores[name] = total
            thresholds[name] = threshold.at(step.step)
            normalized[name] = float(threshold.normalize(np.array([total]), start=step.step)[0])
        above = [scores[n] > thresholds[n] for n in self.scores_]
        alarm = any(above) if self.combine == "or" else all(above)
        if alarm and self.alarm_step is None:
            self.alarm_step = step.step
        self._step += 1
        return MonitorDecision(step=step.step, alarm=bool(alarm), scores=scores, thresholds=thresholds,
                               normalized=normalized)

    def step_scores(self, rollout: Rollout) -> dict[str, np.ndarray]:
        """Each fitted score at every step of a recorded rollout, before windowing: arrays of shape (T,).

        They depend only on the fitted scores, so one computation serves every
        :meth:`recalibrate` variant (pass it to :meth:`trace`).
        """
        self._check_fitted()
        (rollout,) = _check_rollouts([rollout], "rollout")
        for signal, shape in self.signals_.items():
            value = getattr(rollout, signal)
            if value is None or value.shape[1:] != shape:
                got = None if value is None else value.shape[1:]
                raise ValueError(f"rollout {signal} must have shape (T, {', '.join(map(str, shape))}), "
                                 f"got (T, {got})")
        return {name: self._score(name, rollout) for name in self.score_objects_}

    def trace(self, rollout: Rollout, step_scores: Mapping[str, np.ndarray] | None = None) -> MonitorTrace:
        """Run a recorded rollout through the monitor offline (batched; the decisions of ``update``).

        Parameters
        ----------
        rollout : Rollout
        step_scores : dict, optional
            The rollout's :meth:`step_scores`, when already computed.
        """
        raw = self.step_scores(rollout) if step_scores is None else step_scores
        steps = rollout.steps
        scores, thresholds, normalized, above = {}, {}, {}, []
        for name in self.scores_:
            threshold = self.thresholds_[name]
            scores[name] = window_sums(raw[name], self.window)
            thresholds[name] = threshold.along(steps)
            normalized[name] = threshold.normalize(scores[name])
            above.append(scores[name] > thresholds[name])
        stack = np.vstack(list(normalized.values()))
        if self.combine == "or":
            combined, alarms = stack.max(axis=0), np.logical_or.reduce(above)
        else:
            combined, alarms = stack.min(axis=0), np.logical_and.reduce(above)
        return MonitorTrace(scores, thresholds, normalized, combined, np.asarray(alarms, dtype=bool))

    # ------------------------------------------------------------------------- persistence
    def _config(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "alpha": self.alpha,
            "confidence": self.confidence,
            "window": self.window,
            "combine": self.combine,
            "threshold": self.threshold,
            "fit_fraction": self.fit_fraction,
            "seed": self.seed,
            "selection": self.selection_,
            "miss_bound": None if self.miss_bound_ is None else self.miss_bound_.to_dict(),
            "fitted": {
                "scores": [{"name": name, "kind": _kind(name, score), "config": score.get_config()}
                           for name, score in self.score_objects_.items()],
                "in_use": list(self.scores_),
                "signals": {k: list(v) for k, v in self.signals_.items()},
                "n_fit": self.n_fit_,
                "n_calibration": self.n_calibration_,
                "thresholds": {name: t.to_dict() for name, t in self.thresholds_.items()},
            },
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted monitor to folder ``path``: JSON settings and thresholds, and one ``.npz``
        of plain arrays (each score's fitted state and the calibration score streams); no pickle."""
        self._check_fitted()
        config = self._config()
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {}
        for name, score in self.score_objects_.items():
            for key, value in score.get_state().items():
                arrays[f"state/{name}/{key}"] = np.asarray(value)
        for part, streams in (("fit", self.fit_scores_), ("cal", self.calibration_scores_)):
            for name, series in streams.items():
                arrays[f"{part}/{name}/values"] = np.concatenate(series)
                arrays[f"{part}/{name}/lengths"] = np.array([s.size for s in series])
        np.savez(folder / _ARRAYS_FILE, **arrays)
        # The JSON goes last: a folder with monitor.json is complete.
        (folder / _CONFIG_FILE).write_text(json.dumps(config, indent=2))
        return folder

    @classmethod
    def load(cls, path: str | os.PathLike) -> FailureMonitor:
        """Read a monitor written by :meth:`save` (JSON and ``np.load(allow_pickle=False)``).

        Raises
        ------
        ValueError
            In one line, naming the folder: no saved monitor there, another format version,
            a score that is not registered, or damaged files.
        """
        folder = Path(path)
        config_path = folder / _CONFIG_FILE
        if not config_path.is_file():
            raise ValueError(f"{folder} holds no saved FailureMonitor ({_CONFIG_FILE} is missing; save one with "
                             "'robogate monitor calibrate')")
        try:
            config = json.loads(config_path.read_text())
            version = config["format_version"]
        except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{config_path} is not a FailureMonitor description: {exc}") from None
        if version != FORMAT_VERSION:
            raise ValueError(f"{config_path} has format version {version}; this robogate reads {FORMAT_VERSION} "
                             "(calibrate the monitor again)")
        try:
            fitted = config["fitted"]
            # Monitors saved before the confidence existed were calibrated marginally.
            monitor = cls(alpha=config["alpha"], window=config["window"], combine=config["combine"],
                          threshold=config["threshold"], confidence=config.get("confidence"),
                          fit_fraction=config["fit_fraction"], seed=config["seed"])
            entries = fitted["scores"]
            with np.load(folder / _ARRAYS_FILE, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
            objects = {}
            for entry in entries:
                name = entry["name"]
                score = registry.make(entry["kind"], **entry["config"])
                prefix = f"state/{name}/"
                score.set_state({k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)})
                objects[name] = score

            def split(part: str, name: str) -> list[np.ndarray]:
                values, lengths = arrays[f"{part}/{name}/values"], arrays[f"{part}/{name}/lengths"]
                return np.split(values, np.cumsum(lengths)[:-1])

            monitor.score_objects_ = objects
            monitor.scores_ = tuple(fitted["in_use"])
            monitor.signals_ = {k: tuple(v) for k, v in fitted["signals"].items()}
            monitor.n_fit_, monitor.n_calibration_ = int(fitted["n_fit"]), int(fitted["n_calibration"])
            monitor.fit_scores_ = {name: split("fit", name) for name in objects}
            monitor.calibration_scores_ = {name: split("cal", name) for name in objects}
            monitor.thresholds_ = {name: Threshold.from_dict(t) for name, t in fitted["thresholds"].items()}
            monitor.selection_ = config.get("selection")
            if config.get("miss_bound"):
                from robogate.monitor.misses import MissBound

                monitor.miss_bound_ = MissBound(**config["miss_bound"])
        except ValueError as exc:
            if str(exc).startswith("unknown score"):
                raise ValueError(f"{folder}: {exc}; register it before loading") from None
            raise ValueError(f"{folder} holds a damaged FailureMonitor: {exc}") from None
        except (KeyError, TypeError, OSError, RuntimeError, zipfile.BadZipFile, EOFError) as exc:
            raise ValueError(f"{folder} holds a damaged FailureMonitor ({type(exc).__name__}: {exc}); "
                             "calibrate it again") from None
        monitor.reset()
        return monitor

    def describe(self) -> str:
        """One line: the scores, how they combine, and the settings."""
        self._check_fitted()
        joined = f" {self.combine.upper()} ".join(self.scores_)
        confidence = "" if self.confidence is None else f" at confidence {self.confidence:g}"
        level = f"alpha {self.alpha:g}{confidence}"
        if self.miss_bound_ is not None:
            bound = self.miss_bound_
            level = (f"miss rate {bound.miss_rate:g} (from {bound.failures} failures; false alarms "
                     f"{bound.false_alarm_rate:.3f} on the calibration successes)")
        return (f"{joined}, window {self.window}, {level}, {self.threshold} thresholds; "
                f"fitted on {self.n_fit_} and calibrated on {self.n_calibration_} successful rollouts")

    def __repr__(self) -> str:
        state = f", scores={list(self.scores_)}" if hasattr(self, "scores_") else ""
        confidence = "" if self.confidence is None else f", confidence={self.confidence:g}"
        return (f"FailureMonitor(alpha={self.alpha:g}{confidence}, window={self.window}, combine={self.combine!r}, "
                f"threshold={self.threshold!r}{state})")


def _kind(name: str, score: Any) -> str:
    """The registry name a saved score is rebuilt from."""
    for key in registry.names():
        if registry.registered(key) is type(score):
            return key
    raise ValueError(f"score {name!r} ({type(score).__name__}) is not registered, so a saved monitor could not "
                     "rebuild it; call robogate.monitor.scores.register(name, its class) first")

