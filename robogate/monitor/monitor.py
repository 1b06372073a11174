"""The conformal failure monitor: RND and ACE scores, calibrated on successful rollouts only.

:class:`FailureMonitor` fits its scores on one share of the successful rollouts (RND's
predictor, ACE's histogram cells, the per-step profiles of time-varying thresholds) and
calibrates split-conformal thresholds on the rest, so that a new successful episode raises
an alarm with probability at most ``alpha``. At run time :meth:`FailureMonitor.update`
takes one step's embedding and sampled chunks and returns a :class:`MonitorDecision`.
"""

from __future__ import annotations

import copy
import json
import os
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robogate.checks import check_int
from robogate.monitor.ace import ActionChunkEntropy
from robogate.monitor.conformal import (
    Threshold,
    calibrate_threshold,
    check_style,
    conformal_rank,
    window_sums,
)
from robogate.monitor.rnd import RNDScorer
from robogate.monitor.rollout import Rollout
from robogate.checks import check_level

__all__ = ["COMBINES", "SCORES", "FailureMonitor", "MonitorDecision", "MonitorTrace"]

SCORES = ("rnd", "ace")
"""Failure scores: RND novelty of the embedding, entropy of the sampled action chunks."""
COMBINES = ("and", "or")
"""How the scores' alarms combine: all of them above threshold, or any."""
FORMAT_VERSION = 1
_CONFIG_FILE = "monitor.json"
_WEIGHTS_FILE = "rnd.pt"
_STREAMS_FILE = "scores.npz"


@dataclass(frozen=True)
class MonitorDecision:
    """What the monitor concluded at one control step.

    Attributes
    ----------
    step : int
        Control step since :meth:`FailureMonitor.reset` (0-based).
    alarm : bool
        The combined test at this step ("and": every score above its threshold; "or": any).
    scores : dict
        Each score summed over the window, by name (``"rnd"``, ``"ace"``).
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


@dataclass(frozen=True, eq=False)
class MonitorTrace:
    """A whole episode run through the monitor offline: what :meth:`FailureMonitor.update` gives
    step by step, as arrays of shape (T,).

    Attributes
    ----------
    scores, thresholds, normalized : dict of arrays
        As in :class:`MonitorDecision`, one entry per step.
    combined : array
        The combined normalised score (minimum over scores for "and", maximum for "or");
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


def _check_scores(scores: Sequence[str] | None) -> tuple[str, ...] | None:
    if scores is None:
        return None
    names = (scores,) if isinstance(scores, str) else tuple(scores)
    if not names:
        raise ValueError(f"scores must name at least one of {list(SCORES)}, got none")
    for name in names:
        _check_choice(name, "scores entry", SCORES)
    return tuple(n for n in SCORES if n in names)


def _check_rollouts(rollouts: Any, name: str) -> list[Rollout]:
    if isinstance(rollouts, Rollout):
        rollouts = [rollouts]
    items = list(rollouts)
    for i, item in enumerate(items):
        if not isinstance(item, Rollout):
            raise ValueError(f"{name}[{i}] is a {type(item).__name__}, expected a robogate.monitor.Rollout")
    return items


class FailureMonitor:
    """A runtime failure monitor calibrated on successful rollouts only.

    Parameters
    ----------
    alpha : float in (0, 1)
        Allowed rate of false alarms on successful episodes (episode level). With
        ``combine="or"`` each score is calibrated at ``alpha / len(scores)``, so the
        combined rate stays within ``alpha`` too.
    window : int
        Steps each score is summed over.
    combine : {"and", "or"}
        Alarm when every score is above its threshold, or when any is.
    threshold : {"constant", "time_varying", "functional"}
        Threshold style (see :mod:`robogate.monitor.conformal`).
    scores : sequence of {"rnd", "ace"}, optional
        Which scores to use; default: RND, plus ACE when the rollouts carry action chunks.
    fit_fraction : float in (0, 1)
        Share of the successful rollouts that fit the scores when :meth:`fit` gets no
        separate calibration rollouts; the rest calibrate the thresholds.
    rnd : RNDScorer, optional
        The RND scorer to train (default ``RNDScorer(seed=seed)``).
    ace : ActionChunkEntropy, optional
        The ACE scorer (default ``ActionChunkEntropy()``).
    seed : int
        Seeds the split of the rollouts and the default RND scorer.

    Attributes
    ----------
    scores_ : tuple of str
        The scores in use after :meth:`fit`.
    embedding_dim_ : int
        Size of the embeddings ``update`` takes.
    chunk_shape_ : tuple (B, H, A) or None
        Shape of one step's action chunks (None without ACE).
    thresholds_ : dict of Threshold
        The calibrated threshold of each score.
    n_fit_, n_calibration_ : int
        Successful rollouts used to fit the scores and to calibrate the thresholds.

    Examples
    --------
    >>> from robogate.monitor import FailureMonitor
    >>> monitor = FailureMonitor(alpha=0.05, window=5, combine="and").fit(rollouts)  # doctest: +SKIP
    >>> monitor.reset()                                                              # doctest: +SKIP
    >>> monitor.update(policy.embed(obs), policy.sample_chunks(obs, 32)).alarm       # doctest: +SKIP
    False
    """

    def __init__(
        self,
        alpha: float = 0.05,
        window: int = 5,
        combine: str = "and",
        threshold: str = "constant",
        *,
        scores: Sequence[str] | None = None,
        fit_fraction: float = 0.5,
        rnd: RNDScorer | None = None,
        ace: ActionChunkEntropy | None = None,
        seed: int = 0,
    ) -> None:
        self.alpha = check_level(alpha, "alpha")
        self.window = check_int(window, "window", minimum=1)
        self.combine = _check_choice(combine, "combine", COMBINES)
        self.threshold = check_style(threshold)
        self.scores = _check_scores(scores)
        self.fit_fraction = check_level(fit_fraction, "fit_fraction")
        self.seed = check_int(seed, "seed")
        self.rnd = rnd if rnd is not None else RNDScorer(seed=self.seed)
        self.ace = ace if ace is not None else ActionChunkEntropy()
        if not isinstance(self.rnd, RNDScorer):
            raise ValueError(f"rnd must be an RNDScorer, got {type(self.rnd).__name__}")
        if not isinstance(self.ace, ActionChunkEntropy):
            raise ValueError(f"ace must be an ActionChunkEntropy, got {type(self.ace).__name__}")

    # ------------------------------------------------------------------------- fitting
    @property
    def score_alpha(self) -> float:
        """The level each score is calibrated at (``alpha``, split over the scores for "or")."""
        n = len(self.scores_) if hasattr(self, "scores_") else len(self.scores or SCORES)
        return self.alpha / n if self.combine == "or" else self.alpha

    def _split(self, successes: list[Rollout]) -> tuple[list[Rollout], list[Rollout]]:
        order = np.random.default_rng(self.seed).permutation(len(successes))
        n_fit = min(max(int(round(self.fit_fraction * len(successes))), 1), len(successes) - 1)
        return [successes[i] for i in order[:n_fit]], [successes[i] for i in order[n_fit:]]

    def fit(self, rollouts: Sequence[Rollout], calibration: Sequence[Rollout] | None = None) -> FailureMonitor:
        """Fit the scores and calibrate the thresholds on successful rollouts.

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
            No rollouts, no successful ones, too few calibration successes for
            ``alpha``, inconsistent embedding sizes or chunk shapes, or ACE asked
            for on rollouts without action chunks.
        """
        rollouts = _check_rollouts(rollouts, "rollouts")
        if not rollouts:
            raise ValueError("fit needs recorded rollouts, got none")
        successes = [r for r in rollouts if r.success]
        if not successes:
            raise ValueError(
                f"fit got {len(rollouts)} rollouts and none is successful: the monitor calibrates "
                "on successful rollouts only"
            )
        if calibration is None:
            if len(successes) < 2:
                raise ValueError("fit needs at least 2 successful rollouts: one share fits the scores, "
                                 "the rest calibrates the thresholds")
            fit_set, cal_set = self._split(successes)
        else:
            cal_all = _check_rollouts(calibration, "calibration")
            fit_set, cal_set = successes, [r for r in cal_all if r.success]
            if not cal_set:
                raise ValueError(f"calibration holds {len(cal_all)} rollouts and none is successful")
        self.scores_ = self._scores_for(fit_set + cal_set)
        conformal_rank(len(cal_set), self.score_alpha)
        self._check_shapes(fit_set + cal_set)
        if "rnd" in self.scores_:
            self.rnd.fit(np.concatenate([r.embeddings for r in fit_set]))
        if "ace" in self.scores_:
            self.ace.fit([r.action_chunks for r in fit_set])
        self.fit_scores_ = {name: [self._step_scores(name, r) for r in fit_set] for name in self.scores_}
        self.calibration_scores_ = {name: [self._step_scores(name, r) for r in cal_set] for name in self.scores_}
        self.n_fit_, self.n_calibration_ = len(fit_set), len(cal_set)
        self._calibrate()
        return self

    def _scores_for(self, rollouts: list[Rollout]) -> tuple[str, ...]:
        with_chunks = all(r.action_chunks is not None for r in rollouts)
        if self.scores is None:
            return ("rnd", "ace") if with_chunks else ("rnd",)
        if "ace" in self.scores and not with_chunks:
            missing = sum(r.action_chunks is None for r in rollouts)
            raise ValueError(f"scores include 'ace' but {missing} of the successful rollouts carry no "
                             "action chunks; record them with n_chunks > 0 or use scores=('rnd',)")
        return self.scores

    def _check_shapes(self, rollouts: list[Rollout]) -> None:
        dims = {r.embeddings.shape[1] for r in rollouts}
        if len(dims) > 1:
            raise ValueError(f"rollouts have embeddings of different sizes {sorted(dims)}")
        self.embedding_dim_ = dims.pop()
        self.chunk_shape_ = None
        if "ace" in self.scores_:
            shapes = {r.action_chunks.shape[1:] for r in rollouts}
            if len(shapes) > 1:
                raise ValueError(f"rollouts have action chunks of different shapes (B, H, A) {sorted(shapes)}")
            self.chunk_shape_ = tuple(int(n) for n in shapes.pop())
            if self.chunk_shape_[2] <= max(self.ace.dims):
                raise ValueError(f"action chunks have {self.chunk_shape_[2]} components, ACE reads "
                                 f"components {list(self.ace.dims)}")

    def _step_scores(self, name: str, rollout: Rollout) -> np.ndarray:
        if name == "rnd":
            return self.rnd.score(rollout.embeddings)
        return np.asarray(self.ace.score(rollout.action_chunks), dtype=float)

    def _calibrate(self) -> None:
        self.thresholds_ = {
            name: calibrate_threshold(
                [window_sums(s, self.window) for s in self.fit_scores_[name]],
                [window_sums(s, self.window) for s in self.calibration_scores_[name]],
                self.score_alpha,
                self.threshold,
            )
            for name in self.scores_
        }
        self.reset()

    def recalibrate(self, **settings: Any) -> FailureMonitor:
        """A copy with other conformal settings, sharing the fitted scores (no retraining).

        Parameters
        ----------
        **settings
            Any of ``alpha``, ``window``, ``combine``, ``threshold`` and ``scores``
            (a subset of the fitted ``scores_``).
        """
        self._check_fitted()
        allowed = {"alpha", "window", "combine", "threshold", "scores"}
        unknown = set(settings) - allowed
        if unknown:
            raise ValueError(f"recalibrate takes {sorted(allowed)}, got {sorted(unknown)}")
        other = copy.copy(self)
        other.alpha = check_level(settings.get("alpha", self.alpha), "alpha")
        other.window = check_int(settings.get("window", self.window), "window", minimum=1)
        other.combine = _check_choice(settings.get("combine", self.combine), "combine", COMBINES)
        other.threshold = check_style(settings.get("threshold", self.threshold))
        if "scores" in settings:
            names = _check_scores(settings["scores"])
            absent = [n for n in names if n not in self.scores_]
            if absent:
                raise ValueError(f"scores {absent} were not fitted; fitted: {list(self.scores_)}")
            other.scores = other.scores_ = names
        conformal_rank(other.n_calibration_, other.score_alpha)
        other._calibrate()
        return other

    # ------------------------------------------------------------------------- running
    def _check_fitted(self) -> None:
        if not hasattr(self, "thresholds_"):
            raise RuntimeError("this FailureMonitor is not fitted yet; call fit(rollouts) or load(path)")

    def reset(self) -> None:
        """Start a new episode: clear the windows and the step counter."""
        self._check_fitted()
        self._windows = {name: deque(maxlen=self.window) for name in self.scores_}
        self._step = 0
        self.alarm_step: int | None = None

    def _check_embedding(self, embedding: Any) -> np.ndarray:
        e = np.asarray(embedding, dtype=np.float32)
        if e.shape != (self.embedding_dim_,):
            raise ValueError(f"embedding must have shape ({self.embedding_dim_},), got {e.shape}")
        if not np.all(np.isfinite(e)):
            raise ValueError("embedding holds NaN or infinite values")
        return e

    def _check_chunks(self, chunks: Any) -> np.ndarray:
        if chunks is None:
            raise ValueError(f"this monitor uses ACE: update needs the step's action chunks of shape "
                             f"{self.chunk_shape_}, got None")
        c = np.asarray(chunks, dtype=np.float64)
        if c.shape != self.chunk_shape_:
            raise ValueError(f"chunks must have shape (B, H, A) = {self.chunk_shape_}, got {c.shape}")
        if not np.all(np.isfinite(c)):
            raise ValueError("chunks hold NaN or infinite values")
        return c

    def update(self, embedding: np.ndarray, chunks: np.ndarray | None = None) -> MonitorDecision:
        """Score one control step and decide whether to raise an alarm.

        Parameters
        ----------
        embedding : array of shape (d,)
            The policy's embedding of the current observation (the observation
            itself for a policy with no encoder).
        chunks : array of shape (B, H, A), optional
            The action chunks the policy sampled at this step; required when the
            monitor uses ACE, ignored otherwise.

        Returns
        -------
        MonitorDecision
        """
        self._check_fitted()
        raw = {}
        if "rnd" in self.scores_:
            raw["rnd"] = float(self.rnd.score(self._check_embedding(embedding)[None])[0])
        else:
            self._check_embedding(embedding)
        if "ace" in self.scores_:
            raw["ace"] = self.ace.score(self._check_chunks(chunks))
        step = self._step
        scores, thresholds, normalized, above = {}, {}, {}, []
        for name, value in raw.items():
            window = self._windows[name]
            window.append(value)
            total = 0.0
            for v in window:  # oldest first, the order window_sums adds in
                total += v
            threshold = self.thresholds_[name]
            scores[name] = total
            thresholds[name] = threshold.at(step)
            normalized[name] = float(threshold.normalize(np.array([total]), start=step)[0])
            above.append(total > thresholds[name])
        alarm = all(above) if self.combine == "and" else any(above)
        if alarm and self.alarm_step is None:
            self.alarm_step = step
        self._step += 1
        return MonitorDecision(step=step, alarm=bool(alarm), scores=scores, thresholds=thresholds,
                               normalized=normalized)

    def step_scores(self, rollout: Rollout) -> dict[str, np.ndarray]:
        """Each score of every step of a recorded rollout, before windowing: arrays of shape (T,).

        They depend only on the fitted scorers, so one computation serves every
        :meth:`recalibrate` variant (pass it to :meth:`trace`).
        """
        self._check_fitted()
        (rollout,) = _check_rollouts([rollout], "rollout")
        if rollout.embeddings.shape[1] != self.embedding_dim_:
            raise ValueError(f"rollout embeddings have size {rollout.embeddings.shape[1]}, the monitor "
                             f"was fitted on {self.embedding_dim_}")
        if "ace" in self.scores_ and (rollout.action_chunks is None
                                      or rollout.action_chunks.shape[1:] != self.chunk_shape_):
            got = None if rollout.action_chunks is None else rollout.action_chunks.shape[1:]
            raise ValueError(f"rollout action chunks must have shape (T, {self.chunk_shape_}), got (T, {got})")
        return {name: self._step_scores(name, rollout) for name in self.scores_}

    def trace(self, rollout: Rollout, step_scores: dict[str, np.ndarray] | None = None) -> MonitorTrace:
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
        if self.combine == "and":
            combined, alarms = stack.min(axis=0), np.logical_and.reduce(above)
        else:
            combined, alarms = stack.max(axis=0), np.logical_or.reduce(above)
        return MonitorTrace(scores, thresholds, normalized, combined, np.asarray(alarms, dtype=bool))

    # ------------------------------------------------------------------------- persistence
    def _config(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "alpha": self.alpha,
            "window": self.window,
            "combine": self.combine,
            "threshold": self.threshold,
            "scores": list(self.scores) if self.scores is not None else None,
            "fit_fraction": self.fit_fraction,
            "seed": self.seed,
            "rnd": self.rnd.get_config(),
            "ace": self.ace.get_config(),
            "fitted": {
                "scores": list(self.scores_),
                "embedding_dim": self.embedding_dim_,
                "chunk_shape": list(self.chunk_shape_) if self.chunk_shape_ else None,
                "ace_widths": self.ace.widths_.tolist() if "ace" in self.scores_ else None,
                "n_fit": self.n_fit_,
                "n_calibration": self.n_calibration_,
                "thresholds": {name: t.to_dict() for name, t in self.thresholds_.items()},
            },
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted monitor to folder ``path``: JSON settings and thresholds, the RND
        state dict, and the calibration score streams (``.npz``); no pickle anywhere."""
        self._check_fitted()
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        if "rnd" in self.scores_:
            torch.save(self.rnd.state_dict(), folder / _WEIGHTS_FILE)
        arrays = {}
        for part, streams in (("fit", self.fit_scores_), ("cal", self.calibration_scores_)):
            for name, series in streams.items():
                arrays[f"{part}/{name}/values"] = np.concatenate(series)
                arrays[f"{part}/{name}/lengths"] = np.array([s.size for s in series])
        np.savez(folder / _STREAMS_FILE, **arrays)
        # The JSON goes last: a folder with monitor.json is complete.
        (folder / _CONFIG_FILE).write_text(json.dumps(self._config(), indent=2))
        return folder

    @classmethod
    def load(cls, path: str | os.PathLike) -> FailureMonitor:
        """Read a monitor written by :meth:`save` (``torch.load(weights_only=True)``, no pickle)."""
        folder = Path(path)
        config_path = folder / _CONFIG_FILE
        if not config_path.is_file():
            raise ValueError(f"{folder} holds no saved FailureMonitor ({_CONFIG_FILE} is missing)")
        try:
            config = json.loads(config_path.read_text())
            version = config["format_version"]
            fitted = config["fitted"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{config_path} is not a FailureMonitor description: {exc}") from None
        if version != FORMAT_VERSION:
            raise ValueError(f"{config_path} has format version {version}; this robogate reads {FORMAT_VERSION}")
        monitor = cls(
            alpha=config["alpha"], window=config["window"], combine=config["combine"],
            threshold=config["threshold"], scores=config["scores"], fit_fraction=config["fit_fraction"],
            rnd=RNDScorer(**config["rnd"]), ace=ActionChunkEntropy(**config["ace"]), seed=config["seed"],
        )
        monitor.scores_ = tuple(fitted["scores"])
        monitor.embedding_dim_ = int(fitted["embedding_dim"])
        monitor.chunk_shape_ = tuple(fitted["chunk_shape"]) if fitted["chunk_shape"] else None
        monitor.n_fit_, monitor.n_calibration_ = int(fitted["n_fit"]), int(fitted["n_calibration"])
        if "rnd" in monitor.scores_:
            state = torch.load(folder / _WEIGHTS_FILE, weights_only=True)
            monitor.rnd = RNDScorer.from_state(config["rnd"], monitor.embedding_dim_, state)
        if "ace" in monitor.scores_:
            monitor.ace.widths_ = np.asarray(fitted["ace_widths"], dtype=float)
        with np.load(folder / _STREAMS_FILE, allow_pickle=False) as data:
            streams = {}
            for part in ("fit", "cal"):
                streams[part] = {
                    name: np.split(data[f"{part}/{name}/values"], np.cumsum(data[f"{part}/{name}/lengths"])[:-1])
                    for name in monitor.scores_
                }
        monitor.fit_scores_, monitor.calibration_scores_ = streams["fit"], streams["cal"]
        monitor.thresholds_ = {name: Threshold.from_dict(t) for name, t in fitted["thresholds"].items()}
        monitor.reset()
        return monitor

    def __repr__(self) -> str:
        state = f", scores={list(self.scores_)}" if hasattr(self, "scores_") else ""
        return (f"FailureMonitor(alpha={self.alpha:g}, window={self.window}, combine={self.combine!r}, "
                f"threshold={self.threshold!r}{state})")

