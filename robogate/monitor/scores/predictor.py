"""A learned failure score: trained on rollouts of both outcomes, calibrated like every other score.

Unsupervised scores see successes only, so they cannot tell a novel scene the policy handles
from one it fails in. A sweep of the policy produces labelled failures by the thousand, most of
them at the boundary where the same parameters sometimes succeed and sometimes fail.
:class:`FailurePredictor` learns from them: per step, a small network maps the step's features
(the observation, the policy's embedding, cheap statistics of the sampled chunks, and the
absolute step — never the step as a share of the episode's length, which would leak the
length) to the probability that the episode fails. It is then one more score of the registry:
its conformal threshold comes, as for every score, from successful rollouts kept apart from its
training set, so the false-alarm guarantee holds whatever it learnt.

Two targets (chosen on validation, see ``scripts/eval_predictor.py``): ``"episode"`` labels every
step of a failed episode up to its failure event (SAFE's framing: does this episode fail?), and
``"horizon"`` labels the steps within ``horizon`` steps of the event (fails soon?). Two models:
``"mlp"`` scores each step from its own features, ``"gru"`` from the episode so far.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from robogate._utils.checks import check_int, check_level
from robogate._utils.console import progress_bar
from robogate._utils.networks import check_training, load_state_arrays, mlp, state_arrays
from robogate._utils.threads import torch_threads
from robogate.monitor.rollout import Rollout
from robogate.monitor.scores.base import Step
from robogate.monitor.scores.consistency import ChunkConsistency
from robogate.monitor.settings import MODELS, TARGETS

__all__ = ["MODELS", "TARGETS", "FailurePredictor", "step_features"]

FEATURE_SIGNALS = ("observations", "embeddings", "action_chunks")
"""The rollout signals the predictor's features can come from."""
STEP_SCALE = 100.0
"""The absolute step enters the features as ``step / STEP_SCALE`` (a fixed scale, not the episode's length)."""
_FORMAT = "robogate.failure_predictor/1"
_CONFIG_FILE, _WEIGHTS_FILE = "predictor.json", "predictor.pt"
_STD_FLOOR = 1e-3
_CONSTANT = 1e-6
"""A feature whose spread over the training steps is below this is constant there: it carries nothing
learnt, so it is scaled to zero rather than magnified into an arbitrary logit where it does vary."""


def step_features(rollout: Rollout, signals: Sequence[str]) -> np.ndarray:
    """The predictor's features of every step of ``rollout``, shape (T, F).

    In order: the observation, the embedding, and from the sampled chunks their spread (the
    standard deviation over the B samples of each action component, averaged over the horizon),
    the norm of their mean plan and the energy distance of their overlap with the previous
    step's plans; then the absolute step / :data:`STEP_SCALE`. Only the ``signals`` given are used.
    """
    parts = []
    if "observations" in signals:
        parts.append(rollout.observations)
    if "embeddings" in signals:
        parts.append(rollout.embeddings)
    if "action_chunks" in signals:
        chunks = rollout.action_chunks.astype(np.float64)
        spread = chunks.std(axis=1).mean(axis=1)  # (T, A)
        plan = np.linalg.norm(chunks.mean(axis=1), axis=2).mean(axis=1, keepdims=True)  # (T, 1)
        overlap = ChunkConsistency().score(rollout)[:, None]
        parts += [spread, plan, overlap]
    parts.append(np.arange(rollout.steps, dtype=np.float64)[:, None] / STEP_SCALE)
    return np.concatenate([np.asarray(p, dtype=np.float64) for p in parts], axis=1)


def _labels(rollout: Rollout, target: str, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-step labels and which steps count (a failed episode's steps after its event do not)."""
    steps = rollout.steps
    if rollout.success:
        return np.zeros(steps), np.ones(steps, dtype=bool)
    event = rollout.failure_step if rollout.failure_step is not None else steps - 1
    used = np.arange(steps) <= event
    if target == "episode":
        return np.ones(steps), used
    return (event - np.arange(steps) <= horizon).astype(float), used


class _Network(nn.Module):
    """Standardisation and the per-step (MLP) or recurrent (GRU) failure logit."""

    def __init__(self, n_features: int, model: str, hidden: int) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        if model == "mlp":
            self.body = mlp([n_features, hidden, hidden, 1])
        else:
            self.encoder = mlp([n_features, hidden])
            self.gru = nn.GRU(hidden, hidden, batch_first=True)
            self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (batch, T) of features (batch, T, F); the GRU's state after the last step."""
        z = (x - self.mean) / self.std
        if self.model == "mlp":
            return self.body(z).squeeze(-1), None
        out, state = self.gru(torch.relu(self.encoder(z)), state)
        return self.head(out).squeeze(-1), state


class FailurePredictor:
    """A failure score learnt from labelled rollouts (see the module docstring).

    Parameters
    ----------
    target : {"episode", "horizon"}
        What a step is labelled with.
    horizon : int
        With ``target="horizon"``: steps before the failure event labelled as failing.
    model : {"mlp", "gru"}
        The network.
    hidden : int
        Width of its hidden layers.
    epochs : int
        Most passes over the training rollouts.
    patience : int
        Epochs without a better validation loss before training stops.
    batch_size : int
        Rollouts per gradient step.
    learning_rate, weight_decay : float
        AdamW settings.
    validation_fraction : float in (0, 1)
        Share of the training rollouts (by episode) held out to stop training.
    signals : sequence of str, optional
        Which rollout signals to read (default: every one the training rollouts all carry).
    seed : int
        Seeds the split, the weights and the batches.

    Attributes
    ----------
    signals : tuple of str
        After :meth:`fit`: the signals it reads.
    prefitted : bool
        True once trained: a :class:`~robogate.monitor.FailureMonitor` then uses it as it is and
        only calibrates its threshold.
    upper_bound : float
        The largest value it gives at a step (a probability: 1).
    n_features_ : int
    history_ : list of dict
        Training and validation loss per epoch.

    Examples
    --------
    >>> predictor = FailurePredictor().fit(labelled)                       # doctest: +SKIP
    >>> monitor = FailureMonitor(scores=[predictor]).fit(calibration)       # doctest: +SKIP
    """

    name = "predictor"
    needs_failures = True
    """Trained apart on rollouts of both outcomes, never fitted by a monitor on its successes."""

    def __init__(self, *, target: str = "episode", horizon: int = 10, model: str = "mlp", hidden: int = 128,
                 epochs: int = 200, patience: int = 20, batch_size: int = 16, learning_rate: float = 1e-3,
                 weight_decay: float = 1e-4,
                 validation_fraction: float = 0.2, signals: Sequence[str] | None = None, seed: int = 0) -> None:
        if target not in TARGETS:
            raise ValueError(f"target must be one of {list(TARGETS)}, got {target!r}")
        if model not in MODELS:
            raise ValueError(f"model must be one of {list(MODELS)}, got {model!r}")
        self.target, self.model = target, model
        self.horizon = check_int(horizon, "horizon", minimum=0)
        (self.hidden, self.epochs, self.patience, self.batch_size, self.learning_rate,
         self.weight_decay) = check_training(hidden, epochs, patience, batch_size, learning_rate, weight_decay)
        self.validation_fraction = check_level(validation_fraction, "validation_fraction")
        if signals is not None:
            signals = tuple(signals)
            unknown = [s for s in signals if s not in FEATURE_SIGNALS]
            if unknown or not signals:
                raise ValueError(f"signals must be a non-empty selection of {list(FEATURE_SIGNALS)}, "
                                 f"got {list(signals)}")
        self.requested = signals
        self.signals: tuple[str, ...] = signals or FEATURE_SIGNALS
        self.seed = check_int(seed, "seed")

    upper_bound = 1.0

    @property
    def prefitted(self) -> bool:
        return hasattr(self, "network_")

    def get_config(self) -> dict:
        return {"target": self.target, "horizon": self.horizon, "model": self.model, "hidden": self.hidden,
                "epochs": self.epochs, "patience": self.patience, "batch_size": self.batch_size,
                "learning_rate": self.learning_rate,
                "weight_decay": self.weight_decay, "validation_fraction": self.validation_fraction,
                "signals": list(self.signals), "seed": self.seed}

    # ----------------------------------------------------------------------------- training
    def fit(self, rollouts: Sequence[Rollout], *, progress: bool | None = None) -> FailurePredictor:
        """Train on labelled rollouts: successes and failures (with their failure steps).

        Parameters
        ----------
        rollouts : sequence of Rollout
        progress : bool or None
            Draw a progress bar over epochs on stderr (None: only when stderr is a terminal).

        Raises
        ------
        ValueError
            Without both outcomes (at least 2 of each), or when the rollouts lack a requested signal.
        """
        rollouts = list(rollouts)
        for i, r in enumerate(rollouts):
            if not isinstance(r, Rollout):
                raise ValueError(f"rollouts[{i}] is a {type(r).__name__}, expected a robogate.monitor.Rollout")
        failures, successes = sum(not r.success for r in rollouts), sum(r.success for r in rollouts)
        if failures < 2 or successes < 2:
            raise ValueError(
                f"a FailurePredictor learns from rollouts of both outcomes; got {successes} successes and "
                f"{failures} failures (need at least 2 of each: record failures too, e.g. "
                "'robogate rollouts record --from-sweep DIR --balanced')")
        carried = tuple(s for s in FEATURE_SIGNALS if all(r.has(s) for r in rollouts))
        if self.requested is not None:
            missing = [s for s in self.requested if s not in carried]
            if missing:
                raise ValueError(f"signals {missing} are not carried by every training rollout")
            self.signals = self.requested
        else:
            self.signals = carried
        features = [step_features(r, self.signals) for r in rollouts]
        labels = [_labels(r, self.target, self.horizon) for r in rollouts]
        with torch_threads(1), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self._train(features, labels, np.array([not r.success for r in rollouts]), progress)
        return self

    def _train(self, features: list[np.ndarray], labels: list[tuple[np.ndarray, np.ndarray]],
               failed: np.ndarray, progress: bool | None) -> None:
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(len(features))
        n_val = max(2, int(round(self.validation_fraction * len(features))))
        val, train = order[:n_val], order[n_val:]
        stacked = np.concatenate([features[i] for i in train])
        net = _Network(stacked.shape[1], self.model, self.hidden)
        std = stacked.std(axis=0)
        net.mean.copy_(torch.from_numpy(stacked.mean(axis=0)).float())
        scale = np.maximum(std, _STD_FLOOR * float(std.mean()) + 1e-8)
        scale[std < _CONSTANT] = np.inf
        net.std.copy_(torch.from_numpy(scale).float())
        # Each episode weighs the same whatever its length, and the two outcomes weigh the same.
        share = {True: max(failed[train].mean(), 1e-6), False: max(1 - failed[train].mean(), 1e-6)}

        def batch(indices: np.ndarray) -> tuple[torch.Tensor, ...]:
            longest = max(len(features[i]) for i in indices)
            x = np.zeros((len(indices), longest, stacked.shape[1]))
            y, w = np.zeros((len(indices), longest)), np.zeros((len(indices), longest))
            for row, i in enumerate(indices):
                target, used = labels[i]
                n = len(features[i])
                x[row, :n], y[row, :n] = features[i], target
                w[row, :n] = used / max(used.sum(), 1) / share[bool(failed[i])]
            return torch.from_numpy(x).float(), torch.from_numpy(y).float(), torch.from_numpy(w).float()

        def loss_of(indices: np.ndarray) -> torch.Tensor:
            x, y, w = batch(indices)
            logits, _ = net(x)
            per_step = nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
            return (per_step * w).sum() / w.sum()

        optimiser = torch.optim.AdamW(net.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        best, best_state, stale, history = np.inf, None, 0, []
        with progress_bar(progress, total=self.epochs, desc="train", unit="epoch") as bar:
            for epoch in range(self.epochs):
                net.train()
                shuffled = rng.permutation(train)
                total = 0.0
                for start in range(0, len(shuffled), self.batch_size):
                    chosen = shuffled[start:start + self.batch_size]
                    loss = loss_of(chosen)
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
                    total += float(loss.detach()) * len(chosen)
                net.eval()
                with torch.no_grad():
                    val_loss = float(loss_of(val))
                history.append({"epoch": epoch, "train_loss": total / len(train), "val_loss": val_loss})
                bar.set_postfix(val=f"{val_loss:.4f}", refresh=False)
                bar.update()
                if val_loss < best - 1e-6:
                    best, stale = val_loss, 0
                    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                else:
                    stale += 1
                    if stale >= self.patience:
                        break
        net.load_state_dict(best_state)
        net.eval()
        self.network_, self.n_features_, self.history_ = net, int(stacked.shape[1]), history

    # ------------------------------------------------------------------------------ scoring
    def _check_fitted(self) -> None:
        if not self.prefitted:
            raise RuntimeError("this FailurePredictor is not trained; call fit(labelled rollouts) or load(path)")

    def score(self, rollout: Rollout) -> np.ndarray:
        """P(the episode fails) at every step of a recorded rollout, shape (T,)."""
        self._check_fitted()
        x = torch.from_numpy(step_features(rollout, self.signals)[None]).float()
        with torch_threads(1), torch.inference_mode():
            logits, _ = self.network_(x)
        return torch.sigmoid(logits[0]).numpy().astype(float)

    def stream(self) -> _PredictorStream:
        self._check_fitted()
        return _PredictorStream(self)

    # ------------------------------------------------------------------------- persistence
    def get_state(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        return state_arrays(self.network_)

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        n_features = int(np.asarray(state["mean"]).shape[0])
        self.network_ = load_state_arrays(_Network(n_features, self.model, self.hidden), state)
        self.n_features_ = n_features
        self.history_ = getattr(self, "history_", [])

    def save(self, path: str | os.PathLike) -> Path:
        """Write the trained predictor to folder ``path``: JSON settings and a state dict (no pickle)."""
        self._check_fitted()
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(self.network_.state_dict(), folder / _WEIGHTS_FILE)
        if self.history_:
            _plot_history(self.history_, folder / "loss.png")
        (folder / _CONFIG_FILE).write_text(json.dumps(
            {"format": _FORMAT, "config": self.get_config(), "history": self.history_}, indent=2))
        return folder

    @classmethod
    def load(cls, path: str | os.PathLike) -> FailurePredictor:
        """Read a predictor written by :meth:`save` (``torch.load(weights_only=True)``).

        Raises
        ------
        ValueError
            In one line: no predictor there, another format, or damaged files.
        """
        folder = Path(path)
        if not (folder / _CONFIG_FILE).is_file():
            raise ValueError(f"{folder} holds no trained FailurePredictor ({_CONFIG_FILE} is missing; train one "
                             "with 'robogate monitor train')")
        try:
            saved = json.loads((folder / _CONFIG_FILE).read_text())
            if saved.get("format") != _FORMAT:
                raise ValueError(f"format {saved.get('format')!r}, expected {_FORMAT!r}")
            predictor = cls(**saved["config"])
            predictor.signals = tuple(saved["config"]["signals"])
            state = torch.load(folder / _WEIGHTS_FILE, map_location="cpu", weights_only=True)
            predictor.set_state({k: v.numpy() for k, v in state.items()})
            predictor.history_ = saved.get("history", [])
        except Exception as exc:  # noqa: BLE001 - any damage is reported the same way, in one line
            detail = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
            raise ValueError(f"{folder} holds a damaged FailurePredictor ({detail}); train it again") from None
        return predictor

    def __repr__(self) -> str:
        state = f", signals={list(self.signals)}" if self.prefitted else ""
        return f"FailurePredictor(target={self.target!r}, model={self.model!r}{state})"


def _plot_history(history: list[dict], path: Path) -> None:
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    epochs = [h["epoch"] for h in history]
    best = min(history, key=lambda h: h["val_loss"])["epoch"]
    fig = Figure(figsize=(6, 3.6), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(epochs, [h["train_loss"] for h in history], label="training rollouts")
    ax.plot(epochs, [h["val_loss"] for h in history], label="held-out rollouts")
    ax.axvline(best, color="grey", linestyle=":", label=f"best epoch {best} (kept)")
    ax.set(xlabel="epoch", ylabel="weighted cross-entropy", title="FailurePredictor training")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend()
    fig.savefig(path, dpi=100)


class _PredictorStream:
    """One live episode: the previous step's plans (for the overlap feature) and the GRU's state."""

    def __init__(self, predictor: FailurePredictor) -> None:
        self._predictor = predictor
        self._consistency = ChunkConsistency().stream()
        self._state: torch.Tensor | None = None

    def update(self, step: Step) -> float:
        p = self._predictor
        parts = []
        if "observations" in p.signals:
            parts.append(np.asarray(step.observations, dtype=np.float64))
        if "embeddings" in p.signals:
            parts.append(np.asarray(step.embeddings, dtype=np.float64))
        if "action_chunks" in p.signals:
            chunks = np.asarray(step.action_chunks, dtype=np.float64)
            parts += [chunks.std(axis=0).mean(axis=0), [np.linalg.norm(chunks.mean(axis=0), axis=1).mean()],
                      [self._consistency.update(step)]]
        parts.append([step.step / STEP_SCALE])
        x = torch.from_numpy(np.concatenate([np.ravel(q) for q in parts])[None, None]).float()
        with torch_threads(1), torch.inference_mode():
            logits, self._state = p.network_(x, self._state)
        return float(torch.sigmoid(logits[0, 0]))
