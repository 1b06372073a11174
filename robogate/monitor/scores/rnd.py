"""Random network distillation (RND): novelty of what the policy sees.

A frozen, randomly initialised *target* network ``f`` maps an input to a feature vector; a
*predictor* network ``g`` is trained to reproduce ``f`` on the inputs of successful rollouts.
Where the policy has been, ``g`` has learnt ``f`` and the score ``||f(x) - g(x)||_2`` is small;
on unfamiliar inputs it is not. :class:`RND` reads the policy's observation embedding (FIPER's
choice); :class:`ObservationRND` reads the observation itself, so it works for any policy, the
scripted controller included, and sees what an embedding may have compressed away (obstacles,
the target's height, the object's size are all in robogate's observation).

Two things about scale. Inputs are standardised by each element's spread over the fitting steps;
an element that never varied there (an empty obstacle slot, the target's height on the table)
takes a tenth of the median spread of the elements that did (1 cm in robogate's observation), not
a thousandth of their mean: a millimetre of sensor noise on it is then a tenth of a unit, not ten. And RND has a blind spot the support term
closes: where an element did vary, the predictor learns the target's slope along it, and past the
edge of the data both networks go on linearly, so their distance grows slowly (an object 11 cm
wide, five standard deviations past the 3-7 cm seen, scored like a common successful step). The
score therefore adds ``support * gain * ||e||``, with ``e`` each element's distance outside the
range it covered in fitting, in its standardised units, and ``gain`` the 95th percentile of the
RND distance over the fitting steps: an input one spread outside the seen range of one element
scores like a step in the top 5 % of training novelty, on top of its RND distance.
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

_CONSTANT = 1e-6
"""An input element whose spread over the fitting steps is below this did not vary there: it is scaled by
:data:`_CONSTANT_SCALE` times the median spread of the elements that did."""
_CONSTANT_SCALE = 0.1
_GAIN_QUANTILE = 0.95
"""The support term's unit: this quantile of the RND distance over the fitting steps."""


class _RNDNetwork(nn.Module):
    """Standardisation, the frozen target and the trained predictor, as one state dict."""

    def __init__(self, dim: int, hidden: int, features: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.register_buffer("low", torch.full((dim,), -torch.inf))  # the fitting range, standardised
        self.register_buffer("high", torch.full((dim,), torch.inf))
        self.register_buffer("gain", torch.zeros(()))  # support * the RND distance's 95th percentile in fitting
        self.target = mlp([dim, hidden, hidden, features], nn.LeakyReLU)
        self.predictor = mlp([dim, hidden, hidden, hidden, features], nn.LeakyReLU)
        self.target.requires_grad_(False)

    def distance(self, z: torch.Tensor) -> torch.Tensor:
        """The RND distance of standardised inputs."""
        return torch.linalg.vector_norm(self.target(z) - self.predictor(z), dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.mean) / self.std
        outside = torch.clamp(z - self.high, min=0.0) + torch.clamp(self.low - z, min=0.0)
        return self.distance(z) + self.gain * torch.linalg.vector_norm(outside, dim=-1)


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
    support : float
        Weight of the support term (see the module docstring); 0 scores the RND distance alone.
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
                 learning_rate: float = 1e-3, support: float = 1.0, seed: int = 0) -> None:
        self.hidden = check_int(hidden, "hidden", minimum=1)
        self.features = check_int(features, "features", minimum=1)
        self.epochs = check_int(epochs, "epochs", minimum=1)
        self.batch_size = check_int(batch_size, "batch_size", minimum=1)
        if not float(learning_rate) > 0.0:
            raise ValueError(f"learning_rate must be a positive number, got {learning_rate!r}")
        self.learning_rate = float(learning_rate)
        if not float(support) >= 0.0:
            raise ValueError(f"support must be a non-negative number, got {support!r}")
        self.support = float(support)
        self.seed = check_int(seed, "seed")

    @property
    def signal(self) -> str:
        return self.signals[0]

    def get_config(self) -> dict:
        return {"hidden": self.hidden, "features": self.features, "epochs": self.epochs,
                "batch_size": self.batch_size, "learning_rate": self.learning_rate, "support": self.support,
                "seed": self.seed}

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
            varies = std > _CONSTANT
            typical = _CONSTANT_SCALE * float(std[varies].median()) if bool(varies.any()) else 1.0
            net.mean.copy_(data.mean(dim=0))
            net.std.copy_(torch.where(varies, std, torch.full_like(std, typical)))
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
            with torch.inference_mode():
                z = (data - net.mean) / net.std
                net.low.copy_(z.min(dim=0).values)
                net.high.copy_(z.max(dim=0).values)
                net.gain.fill_(self.support * float(torch.quantile(net.distance(z), _GAIN_QUANTILE)))
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
        if "gain" not in state:  # saved before the support term: scored by the RND distance alone, as calibrated
            state = {**state, "low": np.full(dim, -np.inf, np.float32), "high": np.full(dim, np.inf, np.float32),
                     "gain": np.zeros((), np.float32)}
        self.network_, self.dim_ = load_state_arrays(_RNDNetwork(dim, self.hidden, self.features), state), dim


class ObservationRND(RND):
    """:class:`RND` on the observation state instead of the policy's embedding (any policy)."""

    signals = ("observations",)
