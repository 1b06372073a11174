"""The failure-score contract: a protocol, a template for per-step scores, and the registry.

A *score* turns an episode's signals into one non-negative number per control step: higher
means more likely to fail. It is fitted on successful rollouts only (or needs no fit, or arrives
trained and says so with ``prefitted = True``), scores
a recorded rollout offline and a live episode step by step, and saves its fitted state as
plain arrays (no pickle). The monitor sums it over a window and calibrates a conformal
threshold on it; it never needs to know what the score computes.

A new score is one class and one :func:`register` call; :func:`make` builds it by name, and a
saved monitor finds its scores' classes here when it loads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from robogate.monitor.rollout import SIGNALS, Rollout

__all__ = ["PerStepScore", "Score", "ScoreStream", "Step", "check_score", "make", "name_of", "names", "register",
           "registered", "usable"]


@dataclass(frozen=True, eq=False)
class Step:
    """The signals of one control step, as a live monitor receives them.

    Attributes
    ----------
    step : int
        Control step since the episode started (0-based).
    observations, embeddings, action_chunks : array or None
        This step's observation (o,), the policy's embedding (d,) and its sampled
        chunks (B, H, A), named as the :class:`~robogate.monitor.Rollout` fields they
        are rows of; None when not given.
    actions : array or None
        The action (A,) taken at the step before, which led to this observation: row
        ``step - 1`` of :attr:`Rollout.actions <robogate.monitor.Rollout>`; None at step 0.
    """

    step: int
    observations: np.ndarray | None = None
    embeddings: np.ndarray | None = None
    action_chunks: np.ndarray | None = None
    actions: np.ndarray | None = None

    def rows(self, signal: str) -> np.ndarray:
        """``signal`` as a batch of one step, shape (1, ...)."""
        value = getattr(self, signal)
        if value is None:
            raise ValueError(f"this step carries no {signal}")
        return np.asarray(value)[None]


@runtime_checkable
class ScoreStream(Protocol):
    """One episode's running score: the state a score keeps between steps."""

    def update(self, step: Step) -> float:
        """The score of ``step``, the episode's next step."""
        ...


@runtime_checkable
class Score(Protocol):
    """A failure score (see the module docstring).

    Attributes
    ----------
    signals : tuple of str
        The rollout signals it reads, among :data:`robogate.monitor.rollout.SIGNALS`.
    """

    signals: tuple[str, ...]

    def fit(self, rollouts: Sequence[Rollout]) -> Score:
        """Fit on successful rollouts; return ``self``."""
        ...

    def score(self, rollout: Rollout) -> np.ndarray:
        """The per-step scores (T,) of a recorded rollout: what a stream gives step by step."""
        ...

    def stream(self) -> ScoreStream:
        """A fresh running score for one live episode."""
        ...

    def get_config(self) -> dict:
        """The constructor's keyword arguments, JSON-ready."""
        ...

    def get_state(self) -> dict[str, np.ndarray]:
        """The fitted state as named arrays (saved without pickle)."""
        ...

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore what :meth:`get_state` gave."""
        ...


class _StatelessStream:
    def __init__(self, score: PerStepScore) -> None:
        self._score = score

    def update(self, step: Step) -> float:
        return float(self._score.score_steps({s: step.rows(s) for s in self._score.signals})[0])


class PerStepScore:
    """Template for a score whose value at a step depends on that step's signals alone.

    Subclasses set :attr:`signals` and implement :meth:`score_steps` (and :meth:`fit`,
    :meth:`get_config`, :meth:`get_state`, :meth:`set_state` when they have fitted state);
    offline scoring and the live stream then both come from :meth:`score_steps`.
    """

    signals: tuple[str, ...] = ()

    def fit(self, rollouts: Sequence[Rollout]) -> PerStepScore:
        """Nothing to fit by default."""
        return self

    def score_steps(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        """Scores (n,) of n steps given each signal as an (n, ...) array."""
        raise NotImplementedError

    def score(self, rollout: Rollout) -> np.ndarray:
        return np.asarray(self.score_steps({s: getattr(rollout, s) for s in self.signals}), dtype=float)

    def stream(self) -> ScoreStream:
        return _StatelessStream(self)

    def get_config(self) -> dict:
        return {}

    def get_state(self) -> dict[str, np.ndarray]:
        return {}

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        pass


# ------------------------------------------------------------------------------- registry

ScoreFactory = Callable[..., Score]
_REGISTRY: dict[str, ScoreFactory] = {}


def register(name: str, factory: ScoreFactory) -> None:
    """Make ``factory`` (a class, or any callable taking keyword arguments) the score called ``name``.

    Registering a name again replaces it. Registered names can be passed to
    :class:`~robogate.monitor.FailureMonitor` (``scores=["rnd", name]``), to the CLI's
    ``--scores``, and a saved monitor that uses them loads again.
    """
    if not isinstance(name, str) or not name.strip() or any(c.isspace() for c in name):
        raise ValueError(f"score name must be a non-empty word, got {name!r}")
    if not callable(factory):
        raise ValueError(f"score factory for {name!r} must be callable, got {factory!r}")
    _REGISTRY[name] = factory


def names() -> list[str]:
    """The registered score names, in registration order."""
    return list(_REGISTRY)


def registered(name: str) -> ScoreFactory:
    """The factory registered as ``name``; ``ValueError`` listing the names otherwise."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown score {name!r}; registered scores: {', '.join(_REGISTRY)} "
                         "(add your own with robogate.monitor.scores.register(name, factory))")
    return _REGISTRY[name]


def make(name: str, **config: Any) -> Score:
    """A new, unfitted score registered as ``name``, built with ``config``."""
    score = registered(name)(**config)
    check_score(score, name)
    return score


def usable(rollouts: Sequence[Rollout]) -> list[str]:
    """The registered scores a monitor can fit on ``rollouts`` (successful ones), in registration order:
    those whose signals every rollout carries. Scores trained apart on failures too
    (``needs_failures = True``, e.g. the failure predictor) are left out."""
    return [name for name, factory in _REGISTRY.items()
            if not getattr(factory, "needs_failures", False)
            and all(r.has(s) for r in rollouts for s in getattr(factory, "signals", ()))]


def name_of(score: Any) -> str:
    """The name a score object is known by: its ``name`` attribute, else the name its class is
    registered under, else its class name."""
    name = getattr(score, "name", None)
    if isinstance(name, str) and name:
        return name
    for key, factory in _REGISTRY.items():
        if factory is type(score):
            return key
    return type(score).__name__


def check_score(score: Any, name: str) -> None:
    """Raise ``ValueError`` unless ``score`` follows the :class:`Score` protocol."""
    missing = [m for m in ("fit", "score", "stream", "get_config", "get_state", "set_state")
               if not callable(getattr(score, m, None))]
    if missing:
        raise ValueError(f"score {name!r} ({type(score).__name__}) lacks {', '.join(m + '()' for m in missing)}; "
                         "see robogate.monitor.scores.Score")
    signals = getattr(score, "signals", None)
    if not isinstance(signals, (tuple, list)) or not signals or any(s not in SIGNALS for s in signals):
        raise ValueError(f"score {name!r} must declare the signals it reads, a non-empty tuple among {SIGNALS}; "
                         f"got {signals!r}")
