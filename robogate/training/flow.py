"""Train a :class:`~robogate.policies.FlowPolicy` by behaviour cloning on recorded demonstrations.

The successful demonstrations are split by episode into training and
validation sets; every step of an episode gives one example (the observation
and the next ``horizon`` actions, the last action repeated past the end). The
network learns the conditional flow-matching loss with AdamW on a cosine
schedule and keeps an exponential moving average of its weights; the average
is scored on the validation episodes (fixed noise, so epochs compare) after
every epoch, training stops once that loss has not improved for ``patience``
epochs, and the best average is the policy. The output folder receives
``policy.pt``, ``loss.png`` and ``training.json``.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from robogate._utils.checks import check_int, is_integer
from robogate._utils.console import progress_bar
from robogate._utils.plotting import plain_log_labels
from robogate.policies.flow import CHECKPOINT_FILE, FlowConfig, FlowNet, FlowPolicy

__all__ = ["TrainConfig", "TrainResult", "chunk_examples", "train_flow_policy"]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (the defaults are the recipe of the shipped checkpoint).

    Parameters
    ----------
    epochs : int
        Most passes over the training examples.
    batch_size : int
        Examples per gradient step.
    learning_rate : float
        Peak AdamW learning rate (cosine decay to zero over ``epochs``).
    weight_decay : float
        AdamW weight decay.
    ema_decay : float
        Per-step decay of the weight average that becomes the policy.
    val_fraction : float
        Share of the successful episodes held out for validation.
    patience : int
        Epochs without a better validation loss before stopping.
    seed : int
        Seed of the split, the initial weights, the batches and the noise.
    """

    epochs: int = 150
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    ema_decay: float = 0.999
    val_fraction: float = 0.1
    patience: int = 30
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "patience"):
            check_int(getattr(self, name), name, minimum=1)
        check_int(self.seed, "seed")
        for name, low, high in (("learning_rate", 0.0, 1.0), ("ema_decay", 0.0, 1.0), ("val_fraction", 0.0, 0.5)):
            value = getattr(self, name)
            if is_integer(value) or not isinstance(value, float) or not low < value < high:
                raise ValueError(f"{name} must be a float in ({low}, {high}), got {value!r}")
        if not isinstance(self.weight_decay, float) or not 0.0 <= self.weight_decay < 1.0:
            raise ValueError(f"weight_decay must be a float in [0, 1), got {self.weight_decay!r}")


@dataclass
class TrainResult:
    """What :func:`train_flow_policy` produced.

    Attributes
    ----------
    policy : FlowPolicy
        The trained policy (best validation epoch).
    history : pandas.DataFrame
        Per epoch: ``epoch``, ``train_loss``, ``val_loss``, ``seconds`` (since start).
    best_epoch : int
    seconds : float
        Wall time of the training loop.
    train_episodes, val_episodes : int
        Successful episodes used for training / validation.
    path : Path or None
        The checkpoint written, if an output folder was given.
    """

    policy: FlowPolicy
    history: pd.DataFrame
    best_epoch: int
    seconds: float
    train_episodes: int
    val_episodes: int
    path: Path | None = None


def chunk_examples(episodes: Sequence[Any], horizon: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One (observation, next ``horizon`` actions) example per step of each episode.

    Parameters
    ----------
    episodes : sequence of EpisodeRecording
    horizon : int

    Returns
    -------
    (Tensor (N, obs_size), Tensor (N, horizon, A))
        Past an episode's end the last action repeats (the controller holds still).
    """
    obs, chunks = [], []
    for e in episodes:
        actions = np.asarray(e.actions, dtype=np.float32)
        padded = np.concatenate([actions, np.repeat(actions[-1:], horizon - 1, axis=0)])
        index = np.arange(len(actions))[:, None] + np.arange(horizon)[None, :]
        obs.append(np.asarray(e.observations, dtype=np.float32))
        chunks.append(padded[index])
    return torch.from_numpy(np.concatenate(obs)), torch.from_numpy(np.concatenate(chunks))


def _successes(demos: Any) -> tuple[list, dict[str, Any], str]:
    from robogate.training.demonstrations import load_demos

    if isinstance(demos, (str, Path)):
        episodes, meta = load_demos(demos)
        source = str(demos)
    else:
        episodes, meta, source = list(demos), {}, "the episodes given"
    if not episodes:
        raise ValueError(f"no demonstrations in {source}")
    good = [e for e in episodes if e.success and e.steps]
    if not good:
        raise ValueError(
            f"none of the {len(episodes)} demonstrations in {source} succeeded; behaviour cloning needs "
            "successful episodes (record them over an envelope where the scripted controller succeeds)"
        )
    if len(good) < 2:
        raise ValueError(f"only {len(good)} successful demonstration in {source}; at least 2 are needed "
                         "(one to train on, one to validate)")
    return good, meta, source


def train_flow_policy(
    demos: str | Path | Sequence[Any],
    out: str | Path | None = None,
    *,
    config: FlowConfig | None = None,
    train: TrainConfig | None = None,
    threads: int | None = 1,
    progress: bool | None = None,
) -> TrainResult:
    """Train a FlowPolicy on the successful episodes of recorded demonstrations.

    Parameters
    ----------
    demos : path or sequence of EpisodeRecording
        A demos folder (or file) written by :func:`robogate.training.demonstrations.record_demos`,
        or recorded episodes.
    out : str or Path, optional
        Folder for ``policy.pt``, ``loss.png`` and ``training.json``.
    config : FlowConfig, optional
        Architecture (default :class:`FlowConfig()`).
    train : TrainConfig, optional
        Optimisation settings (default :class:`TrainConfig()`).
    threads : int or None
        torch threads while training (None: leave torch's setting). One thread is
        the fastest for this small network on a machine whose cores are busy.
    progress : bool or None
        Draw a progress bar on stderr (None: only when stderr is a terminal).

    Returns
    -------
    TrainResult

    Raises
    ------
    ValueError
        For an empty or missing demos folder, or demonstrations without two successes.
    """
    config = config if config is not None else FlowConfig()
    train = train if train is not None else TrainConfig()
    episodes, meta, source = _successes(demos)
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(check_int(threads, "threads", minimum=1))
    try:
        return _train(episodes, meta, source, out, config, train, progress)
    finally:
        torch.set_num_threads(previous_threads)


def _train(
    episodes: list, meta: dict, source: str, out: str | Path | None, config: FlowConfig, train: TrainConfig,
    progress: bool | None,
) -> TrainResult:
    obs_size = episodes[0].observations.shape[1]
    if obs_size != config.obs_size:
        raise ValueError(f"the demonstrations have {obs_size}-value observations, config.obs_size is {config.obs_size}")
    train_eps, val_eps = _split(episodes, train)
    x_train, y_train = chunk_examples(train_eps, config.horizon)
    x_val, y_val = chunk_examples(val_eps, config.horizon)

    torch.manual_seed(train.seed)
    policy = FlowPolicy(config, env_id=meta.get("env_id"), envelope=meta.get("envelope"))
    net = policy.net.train()
    net.set_normalization(x_train, torch.cat([torch.from_numpy(e.actions) for e in train_eps]))
    ema = copy.deepcopy(net).eval()  # the weight average the validation loss and the checkpoint use
    for p in ema.parameters():
        p.requires_grad_(False)
    steps_per_epoch = max(1, -(-len(x_train) // train.batch_size))
    optimizer = torch.optim.AdamW(net.parameters(), lr=train.learning_rate, weight_decay=train.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=train.epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(train.seed)

    rows, best, best_epoch, best_state = [], float("inf"), 0, None
    start = time.perf_counter()
    bar = progress_bar(progress, total=train.epochs, desc="train", unit="epoch")
    for epoch in range(1, train.epochs + 1):
        loss = _epoch(net, ema, x_train, y_train, optimizer, schedule, generator, train)
        v = _validation_loss(ema, x_val, y_val, train.seed + 1)
        rows.append({"epoch": epoch, "train_loss": loss, "val_loss": v, "seconds": time.perf_counter() - start})
        bar.set_postfix(train=f"{loss:.4f}", val=f"{v:.4f}", refresh=False)
        bar.update(1)  # the count moves with the losses: the bar never shows the last epoch as undone
        if v < best:
            best, best_epoch, best_state = v, epoch, copy.deepcopy(ema.state_dict())
        elif epoch - best_epoch >= train.patience:
            break
    bar.close()
    policy.net.load_state_dict(best_state)
    policy.net.eval()
    result = TrainResult(policy, pd.DataFrame(rows), best_epoch, time.perf_counter() - start, len(train_eps),
                         len(val_eps))
    if out is not None:
        _save(result, rows, Path(out), source, config, train, len(x_train))
    return result


def _split(episodes: list, train: TrainConfig) -> tuple[list, list]:
    """Training and validation episodes, a seeded share of whole episodes apart."""
    order = np.random.default_rng(train.seed).permutation(len(episodes))
    n_val = min(len(episodes) - 1, max(1, round(train.val_fraction * len(episodes))))
    return [episodes[i] for i in order[n_val:]], [episodes[i] for i in order[:n_val]]


def _epoch(net: FlowNet, ema: FlowNet, x: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer,
           schedule: Any, generator: torch.Generator, train: TrainConfig) -> float:
    """One pass over the training examples in shuffled batches, the weight average following; the mean loss."""
    perm = torch.randperm(len(x), generator=generator)
    total = 0.0
    for i in range(0, len(x), train.batch_size):
        idx = perm[i:i + train.batch_size]
        loss = net.loss(x[idx], y[idx], generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), net.parameters()):
                pe.lerp_(p, 1.0 - train.ema_decay)
        total += loss.item() * len(idx)
    return total / len(x)


def _validation_loss(ema: FlowNet, x: torch.Tensor, y: torch.Tensor, seed: int) -> float:
    """The weight average's loss on the validation examples, with the same noise every epoch."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        total = sum(ema.loss(x[i:i + 4096], y[i:i + 4096], g).item() * len(x[i:i + 4096])
                    for i in range(0, len(x), 4096))
    return total / len(x)


def _save(result: TrainResult, rows: list[dict], out: Path, source: str, config: FlowConfig, train: TrainConfig,
          train_examples: int) -> None:
    """The checkpoint, the loss curves and ``training.json`` (with the per-epoch ``rows``) into ``out``."""
    result.path = result.policy.save(out / CHECKPOINT_FILE)
    _plot_losses(result.history, result.best_epoch, out / "loss.png")
    summary = {
        "demos": source, "env_id": result.policy.env_id, "flow_config": asdict(config), "train_config": asdict(train),
        "train_episodes": result.train_episodes, "val_episodes": result.val_episodes, "train_examples": train_examples,
        "best_epoch": result.best_epoch, "best_val_loss": min(r["val_loss"] for r in rows), "seconds": result.seconds,
        "torch_threads": torch.get_num_threads(), "history": rows,
    }
    (out / "training.json").write_text(json.dumps(summary, indent=1))


def _plot_losses(history: pd.DataFrame, best_epoch: int, path: Path) -> None:
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    ax.plot(history["epoch"], history["train_loss"], label="train")
    ax.plot(history["epoch"], history["val_loss"], label="validation (weight average)")
    ax.axvline(best_epoch, color="grey", linestyle=":", label=f"best epoch {best_epoch}")
    ax.set(xlabel="epoch", ylabel="flow-matching loss", yscale="log", title="FlowPolicy training")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    plain_log_labels(ax.yaxis, *ax.get_ylim())
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)

