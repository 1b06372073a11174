"""Random network distillation (RND): novelty of what the policy sees.

A frozen, randomly initialised *target* network ``f`` maps an input to a feature vector; a
*predictor* network ``g`` is trained to reproduce ``f`` on the inputs of successful rollouts.
Where the policy has been, ``g`` has learnt ``f`` and the score ``||f(x) - g(x)||_2`` is small;
on unfamiliar inputs it is not. :class:`RND` reads the policy's observation embedding (FIPER's
choice); :class:`ObservationRND` reads the observation itself, so it works for any policy, the
scripted controller included, and sees what an embedding may have compressed away (obstacles,
the target's height, the object's size are all in robogate's observation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from robogate._utils.checks import check_int
from robogate._utils.networks import load_state_arrays, mlp, state_arrays
from robogate._utils.threads import torch_threads
from robogate.monitor.rollout import Rollout
from robogate.monitor.scores.base import PerStepScore

__all__ = ["RND", "ObservationRND"]

_STD_FLOOR = 1e-3
"""Per-feature standard deviations are floored at this fraction of their mean (constant features)."""


class _RNDNetwork(nn.Module):
    """Standardisation, the frozen target and the trained predictor, as one state dict."""

    def __init__(self, dim: int, hidden: int, features: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.target = mlp([dim, hidden, hidden, features], nn.LeakyReLU)
        self.predictor = mlp([dim, hidden, hidden, hidden, features], nn.LeakyReLU)
        self.target.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.mean) / self.std
        return torch.linalg.vector_norm(self.target(z) - self.predictor(z), dim=-1)


class RND(PerStepScore):
    """Novelty of the policy's embedding: distance between a frozen random network and its trained copy.

    Parameters
    ----------
    hidden : int
        Width of the hidden layers (target: 2, predictor: 3).
    features : int
        Output size of both networks.
    epochs : int
        Passes over the training inputs.
    batch_size : int
        Inputs per gradient step.
    learning_rate : float
        Adam step size.
    seed : int
        Seeds the target's random weights, the predictor's initialisation and the batches.

    Attributes
    ----------
    dim_ : int
        Input size the score was fitted on.
    network_ : torch.nn.Module
        Target, predictor and the input standardisation.

    Examples
    --------
    >>> import numpy as np
    >>> from robogate.monitor import Rollout
    >>> rng = np.random.default_rng(0)
    >>> rnd = RND(epochs=20).fit([Rollout(embeddings=rng.normal(size=(2000, 8)))])
    >>> novel, familiar = Rollout(embeddings=np.full((1, 8), 6.0)), Rollout(embeddings=rng.normal(size=(1, 8)))
    >>> bool(rnd.score(novel)[0] > rnd.score(familiar)[0])
    True
    """

    signals = ("embeddings",)

    def __init__(self, *, hidden: int = 128, features: int = 64, epochs: int = 60, batch_size: int = 256,
                 learning_rate: float = 1e-3, seed: int = 0) -> None:
        self.hidden = check_int(hidden, "hidden", minimum=1)
        self.features = check_int(features, "features", minimum=1)
        self.epochs = check_int(epochs, "epochs", minimum=1)
        self.batch_size = check_int(batch_size, "batch_size", minimum=1)
        if not float(learning_rate) > 0.0:
            raise ValueError(f"learning_rate must be a positive number, got {learning_rate!r}")
        self.learning_rate = float(learning_rate)
        self.seed = check_int(seed, "seed")

    @property
    def signal(self) -> str:
        return self.signals[0]

    def get_config(self) -> dict:
        return {"hidden": self.hidden, "features": self.features, "epochs": self.epochs,
                "batch_size": self.batch_size, "learning_rate": self.learning_rate, "seed": self.seed}

    def fit(self, rollouts: Sequence[Rollout]) -> RND:
        """Train the predictor on every step of ``rollouts`` (successful ones)."""
        x = np.concatenate([np.asarray(getattr(r, self.signal), dtype=np.float32) for r in rollouts])
        if x.ndim != 2 or x.shape[0] < 2:
            raise ValueError(f"RND needs at least 2 steps of {self.signal} to fit, got {x.shape[0]}")
        data = torch.from_numpy(x)
        with torch_threads(1), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            net = _RNDNetwork(x.shape[1], self.hidden, self.features)
            std = data.std(dim=0)
            net.mean.copy_(data.mean(dim=0))
            net.std.copy_(torch.clamp(std, min=_STD_FLOOR * float(std.mean()) + 1e-8))
            optimiser = torch.optim.Adam(net.predictor.parameters(), lr=self.learning_rate)
            generator = torch.Generator().manual_seed(self.seed)
            for _ in range(self.epochs):
                order = torch.randperm(len(data), generator=generator)
                for start in range(0, len(data), self.batch_size):
                    loss = net(data[order[start:start + self.batch_size]]).pow(2).mean()
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
        net.eval()
        self.network_ = net
        self.dim_ = int(x.shape[1])
        return self

    def score_steps(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(arrays[self.signal], dtype=np.float32))
        with torch_threads(1), torch.inference_mode():
            return self.network_(x).numpy().astype(float)

    def get_state(self) -> dict[str, np.ndarray]:
        return state_arrays(self.network_)

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        dim = int(np.asarray(state["mean"]).shape[0])
        self.network_, self.dim_ = load_state_arrays(_RNDNetwork(dim, self.hidden, self.features), state), dim


class ObservationRND(RND):
    """:class:`RND` on the observation state instead of the policy's embedding (any policy)."""

    signals = ("observations",)
