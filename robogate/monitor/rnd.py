"""Random network distillation (RND): a novelty score on the policy's observation embedding.

A frozen, randomly initialised *target* network ``f`` maps an embedding to a feature vector;
a *predictor* network ``g`` is trained to reproduce ``f`` on the embeddings of successful
rollouts. Where the policy has been, ``g`` has learnt ``f`` and the score
``||f(e) - g(e)||_2`` is small; on unfamiliar embeddings it is not.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from robogate.checks import check_int

__all__ = ["RNDScorer"]

_STD_FLOOR = 1e-3
"""Per-feature standard deviations are floored at this fraction of their mean (constant features)."""


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` intra-op threads, restoring the caller's setting after.

    Networks this small run fastest on one thread; more only contend for busy cores.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(nn.LeakyReLU())
    return nn.Sequential(*layers)


class _RNDNetwork(nn.Module):
    """Standardisation, the frozen target and the trained predictor, as one state dict."""

    def __init__(self, dim: int, hidden: int, features: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.target = _mlp([dim, hidden, hidden, features])
        self.predictor = _mlp([dim, hidden, hidden, hidden, features])
        self.target.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.mean) / self.std
        return torch.linalg.vector_norm(self.target(z) - self.predictor(z), dim=-1)


class RNDScorer:
    """Novelty of an embedding: distance between a frozen random network and its trained copy.

    Parameters
    ----------
    hidden : int
        Width of the hidden layers (target: 2, predictor: 3).
    features : int
        Output size of both networks.
    epochs : int
        Passes over the training embeddings.
    batch_size : int
        Embeddings per gradient step.
    learning_rate : float
        Adam step size.
    seed : int
        Seeds the target's random weights, the predictor's initialisation and the batches.

    Attributes
    ----------
    dim_ : int
        Embedding size the scorer was fitted on.
    network_ : torch.nn.Module
        Target, predictor and the input standardisation.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> rnd = RNDScorer(epochs=20).fit(rng.normal(size=(2000, 8)))
    >>> bool(rnd.score(np.full((1, 8), 6.0))[0] > rnd.score(rng.normal(size=(1, 8)))[0])
    True
    """

    def __init__(
        self,
        *,
        hidden: int = 128,
        features: int = 64,
        epochs: int = 60,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        seed: int = 0,
    ) -> None:
        self.hidden = check_int(hidden, "hidden", minimum=1)
        self.features = check_int(features, "features", minimum=1)
        self.epochs = check_int(epochs, "epochs", minimum=1)
        self.batch_size = check_int(batch_size, "batch_size", minimum=1)
        if not float(learning_rate) > 0.0:
            raise ValueError(f"learning_rate must be a positive number, got {learning_rate!r}")
        self.learning_rate = float(learning_rate)
        self.seed = check_int(seed, "seed")

    def get_config(self) -> dict:
        """The constructor arguments, JSON-ready."""
        return {"hidden": self.hidden, "features": self.features, "epochs": self.epochs,
                "batch_size": self.batch_size, "learning_rate": self.learning_rate, "seed": self.seed}

    def fit(self, embeddings: np.ndarray) -> RNDScorer:
        """Train the predictor on ``embeddings`` of shape (N, d), from successful rollouts."""
        x = np.asarray(embeddings, dtype=np.float32)
        if x.ndim != 2 or x.shape[0] < 2:
            raise ValueError(f"RND needs embeddings of shape (N, d) with N >= 2, got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("RND embeddings hold NaN or infinite values")
        data = torch.from_numpy(x)
        with _torch_threads(1), torch.random.fork_rng(devices=[]):
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

    def score(self, embeddings: np.ndarray) -> np.ndarray:
        """Novelty scores of shape (N,) for embeddings of shape (N, d)."""
        x = torch.from_numpy(np.ascontiguousarray(embeddings, dtype=np.float32))
        with _torch_threads(1), torch.inference_mode():
            return self.network_(x).numpy().astype(float)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The fitted networks' tensors (for ``torch.save``; reload with ``weights_only=True``)."""
        return self.network_.state_dict()

    @classmethod
    def from_state(cls, config: dict, dim: int, state: dict[str, torch.Tensor]) -> RNDScorer:
        """A fitted scorer from :meth:`get_config`, the embedding size and :meth:`state_dict`."""
        scorer = cls(**config)
        net = _RNDNetwork(check_int(dim, "dim", minimum=1), scorer.hidden, scorer.features)
        net.load_state_dict(state)
        net.eval()
        scorer.network_ = net
        scorer.dim_ = int(dim)
        return scorer
