"""A learned action-chunk policy: conditional flow matching over chunks of actions.

:class:`FlowPolicy` maps an observation to a chunk of ``horizon`` future
actions by integrating a learned velocity field from Gaussian noise (a few
Euler steps of a conditional flow-matching model), executes the first
``n_action_steps`` of them and then replans. Its network encodes the
observation once (:meth:`FlowPolicy.embed` exposes that encoding) and
conditions the flow on it, so :meth:`FlowPolicy.sample_chunks` draws many
chunks from the same flow in one batched pass: the runtime monitor reads both.

Checkpoints are ``torch.save`` of plain containers (config, tensors, the
training envelope as :meth:`robogate.scenarios.envelope.Envelope.to_dict`) and load with
``torch.load(weights_only=True)``: nothing is unpickled. A checkpoint written by
robogate 0.1.0 (the shipped one among them) stores the envelope as a mapping of
every parameter to its range or values; :meth:`FlowPolicy.load` reads both.
"""

from __future__ import annotations

import math
import pickle
from dataclasses import asdict, dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from robogate._utils.checks import check_int
from robogate._utils.networks import mlp
from robogate._utils.threads import torch_threads
from robogate.envs.interface import ACTION_NAMES, OBS_SIZE, OBS_SLICES, hold_action
from robogate.envs.scene import default_space
from robogate.scenarios.envelope import Envelope

__all__ = ["CHECKPOINT_FILE", "CHECKPOINT_FORMAT", "PRETRAINED", "FlowConfig", "FlowNet", "FlowPolicy"]

CHECKPOINT_FILE = "policy.pt"
"""Name of the checkpoint inside a folder written by ``robogate policy train``."""
CHECKPOINT_FORMAT = "robogate.flow_policy/1"
"""Format tag stored in every checkpoint; :meth:`FlowPolicy.load` refuses anything else."""

PRETRAINED: dict[str, str] = {"robogate/PickPlace-Panda-v0": "flow_panda.pt"}
"""Checkpoints shipped in ``robogate.policies/checkpoints``, by env id."""

ACTION_SIZE = len(ACTION_NAMES)
TIME_FEATURES = 16
"""Sinusoidal frequencies of the flow time (the network sees their sines and cosines)."""


@dataclass(frozen=True)
class FlowConfig:
    """Architecture and sampling settings of a :class:`FlowPolicy`.

    Parameters
    ----------
    obs_size : int
        Length of the observation vector (43 for robogate's envs).
    action_size : int
        Length of one action.
    horizon : int
        Actions per sampled chunk (H).
    n_action_steps : int
        Actions of each chunk executed before replanning (1 to ``horizon``).
    hidden : int
        Width of the hidden layers.
    depth : int
        Hidden layers of the velocity network.
    embed_dim : int
        Size d of the observation embedding.
    flow_steps : int
        Euler steps from noise to a chunk.
    """

    obs_size: int = OBS_SIZE
    action_size: int = ACTION_SIZE
    horizon: int = 8
    n_action_steps: int = 2
    hidden: int = 256
    depth: int = 3
    embed_dim: int = 64
    flow_steps: int = 10

    def __post_init__(self) -> None:
        for f in fields(self):
            check_int(getattr(self, f.name), f.name, minimum=1)
        if self.n_action_steps > self.horizon:
            raise ValueError(
                f"n_action_steps must be between 1 and horizon ({self.horizon}), got {self.n_action_steps}"
            )

    @property
    def feature_size(self) -> int:
        """Inputs of the encoder: the observation plus object-to-tool and target-to-object offsets."""
        return self.obs_size + 6

    @property
    def chunk_size(self) -> int:
        """Numbers in one flattened chunk (H * A)."""
        return self.horizon * self.action_size


def _features(obs: torch.Tensor) -> torch.Tensor:
    """The observation with the offsets a grasp and a placement are about (in metres)."""
    tcp = obs[:, OBS_SLICES["tcp_position"]]
    obj = obs[:, OBS_SLICES["object_position"]]
    target = obs[:, OBS_SLICES["target_position"]]
    return torch.cat([obs, obj - tcp, target - obj], dim=1)


class FlowNet(nn.Module):
    """Observation encoder and the velocity field of the flow, with their normalisation statistics.

    Parameters
    ----------
    config : FlowConfig
    """

    def __init__(self, config: FlowConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.register_buffer("feature_mean", torch.zeros(c.feature_size))
        self.register_buffer("feature_std", torch.ones(c.feature_size))
        self.register_buffer("action_mean", torch.zeros(c.action_size))
        self.register_buffer("action_std", torch.ones(c.action_size))
        self.register_buffer("frequencies", torch.exp(torch.linspace(0.0, math.log(1000.0), TIME_FEATURES)))
        self.encoder = mlp([c.feature_size, c.hidden, c.hidden, c.embed_dim])
        self.velocity = mlp([c.chunk_size + c.embed_dim + 2 * TIME_FEATURES] + [c.hidden] * c.depth + [c.chunk_size])

    def set_normalization(self, observations: torch.Tensor, actions: torch.Tensor) -> None:
        """Fit the input and action standardisation to training data (constant columns keep scale 1)."""
        feats = _features(observations)
        for name, data in (("feature", feats), ("action", actions)):
            mean, std = data.mean(0), data.std(0)
            std = torch.where(std > 1e-6, std, torch.ones_like(std))
            getattr(self, f"{name}_mean").copy_(mean)
            getattr(self, f"{name}_std").copy_(std)

    def embed(self, obs: torch.Tensor) -> torch.Tensor:
        """(n, obs_size) observations -> (n, embed_dim) embeddings."""
        return self.encoder((_features(obs) - self.feature_mean) / self.feature_std)

    def field(self, x: torch.Tensor, t: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """Velocity at flattened normalised chunks ``x`` (n, H*A), times ``t`` (n,), embeddings (n, d)."""
        angles = t[:, None] * self.frequencies[None, :]
        return self.velocity(torch.cat([x, emb, torch.sin(angles), torch.cos(angles)], dim=1))

    def loss(self, obs: torch.Tensor, chunks: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Conditional flow-matching loss of (n, H, A) expert chunks: straight paths from noise."""
        target = ((chunks - self.action_mean) / self.action_std).flatten(1)
        noise = torch.randn(target.shape, generator=generator)
        t = torch.rand(target.shape[0], generator=generator)
        x = (1.0 - t[:, None]) * noise + t[:, None] * target
        pred = self.field(x, t, self.embed(obs))
        return ((pred - (target - noise)) ** 2).mean()

    def sample(self, emb: torch.Tensor, n: int, generator: torch.Generator | None) -> torch.Tensor:
        """``n`` chunks (n, H, A) per embedding row (emb has 1 row), in action units."""
        c = self.config
        x = torch.randn((n, c.chunk_size), generator=generator)
        emb = emb.expand(n, -1)
        dt = 1.0 / c.flow_steps
        for k in range(c.flow_steps):
            t = torch.full((n,), k * dt)
            x = x + dt * self.field(x, t, emb)
        return x.view(n, c.horizon, c.action_size) * self.action_std + self.action_mean


class FlowPolicy:
    """Conditional flow-matching policy over action chunks (see the module docstring).

    Parameters
    ----------
    config : FlowConfig, optional
        Architecture; default :class:`FlowConfig()`.
    env_id : str, optional
        The env the policy was trained on (recorded in its checkpoint).
    envelope : Envelope or mapping, optional
        The training envelope of its demonstrations (see :mod:`robogate.training.demonstrations`); a mapping
        is read with :meth:`Envelope.from_dict`.

    Notes
    -----
    ``reset(seed=...)`` seeds the episode's sampling: :func:`robogate.run_episode`
    passes the episode seed, so a seeded episode reproduces exactly. Acting and
    :meth:`sample_chunks` draw from separate generators, so watching a policy
    (embedding and sampling chunks every step) never changes what it does.

    Examples
    --------
    >>> import gymnasium as gym
    >>> import robogate
    >>> from robogate.policies import FlowPolicy
    >>> flow = FlowPolicy.pretrained("robogate/PickPlace-Panda-v0")
    >>> obs, info = gym.make("robogate/PickPlace-Panda-v0").reset(seed=0)
    >>> flow.embed(obs).shape, flow.sample_chunks(obs, n=32).shape
    ((64,), (32, 8, 5))
    >>> robogate.run_episode("robogate/PickPlace-Panda-v0", flow, seed=0)["outcome"]
    'success'
    """

    hold_action = staticmethod(hold_action)
    """The action that keeps the arm still in robogate's action layout (what a monitor's "hold" sends)."""

    def __init__(
        self, config: FlowConfig | None = None, *, env_id: str | None = None,
        envelope: Envelope | dict | None = None,
    ) -> None:
        self.config = config if config is not None else FlowConfig()
        self.net = FlowNet(self.config).eval()
        self.env_id = env_id
        if envelope is not None and not isinstance(envelope, Envelope):
            envelope = Envelope.from_dict(envelope, default_space())
        self.envelope = envelope
        self.reset()

    # -- Policy protocol -----------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> None:
        """Start an episode; ``seed`` (an int >= 0, or None for fresh entropy) seeds its sampling."""
        if seed is not None:
            seed = check_int(seed, "seed")
        act_seed, chunk_seed = (int(s.generate_state(1, np.uint64)[0]) >> 1
                                for s in np.random.SeedSequence(seed).spawn(2))
        self._act_generator = torch.Generator().manual_seed(act_seed)
        self._chunk_generator = torch.Generator().manual_seed(chunk_seed)
        self._queue: list[np.ndarray] = []

    def act(self, obs: np.ndarray) -> np.ndarray:
        """The next action (A,) in [-1, 1]: from the current chunk, sampling a new one when it runs out."""
        x = self._check_obs(obs)
        if not self._queue:
            with torch_threads(), torch.inference_mode():
                chunk = self.net.sample(self.net.embed(x), 1, self._act_generator)[0].numpy()
            chunk = np.clip(chunk, -1.0, 1.0).astype(np.float32)
            self._queue = list(chunk[: self.config.n_action_steps])
        return self._queue.pop(0)

    # -- what the runtime monitor reads ----------------------------------------------------------
    def embed(self, obs: np.ndarray) -> np.ndarray:
        """The observation encoding the flow is conditioned on, shape (embed_dim,)."""
        x = self._check_obs(obs)
        with torch_threads(), torch.inference_mode():
            return self.net.embed(x)[0].numpy().astype(np.float32)

    def sample_chunks(self, obs: np.ndarray, n: int = 32) -> np.ndarray:
        """``n`` action chunks (n, H, A) for ``obs``, drawn from the flow the policy acts with."""
        n = check_int(n, "n", minimum=1)
        x = self._check_obs(obs)
        with torch_threads(), torch.inference_mode():
            return self.net.sample(self.net.embed(x), n, self._chunk_generator).numpy().astype(np.float32)

    def _check_obs(self, obs: Any) -> torch.Tensor:
        arr = np.asarray(obs, dtype=np.float32)
        if arr.shape != (self.config.obs_size,):
            raise ValueError(
                f"obs must have shape ({self.config.obs_size},), the observation size this policy was "
                f"trained on{f' ({self.env_id})' if self.env_id else ''}; got {arr.shape}"
            )
        if not np.all(np.isfinite(arr)):
            raise ValueError("obs holds NaN or infinite values")
        return torch.from_numpy(arr)[None, :]

    # -- checkpoints -----------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the checkpoint (config, weights, env id, envelope) to ``path`` atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        checkpoint = {
            "format": CHECKPOINT_FORMAT,
            "config": asdict(self.config),
            "state_dict": {k: v.detach().clone() for k, v in self.net.state_dict().items()},
            "env_id": self.env_id,
            "envelope": None if self.envelope is None else self.envelope.to_dict(),
        }
        tmp = path.with_name(path.name + ".tmp")
        torch.save(checkpoint, tmp)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> FlowPolicy:
        """Load a checkpoint written by :meth:`save` (``torch.load(weights_only=True)``).

        ``path`` may also be the folder ``robogate policy train`` wrote (its
        :data:`CHECKPOINT_FILE` is loaded).

        Raises
        ------
        ValueError
            If the file is missing, not a FlowPolicy checkpoint, or its weights do
            not fit the architecture its config describes.
        """
        path = Path(path)
        if path.is_dir():
            if not (path / CHECKPOINT_FILE).is_file():
                raise ValueError(f"no FlowPolicy checkpoint in {path}: expected {path / CHECKPOINT_FILE} "
                                 "(written by 'robogate policy train')")
            path = path / CHECKPOINT_FILE
        if not path.is_file():
            raise ValueError(f"no FlowPolicy checkpoint at {path}")
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            # torch's own text is pages of advice to unpickle anyway; the exception type says enough
            refused = isinstance(exc, pickle.UnpicklingError) and "Unsupported global" in str(exc)
            why = ("it holds Python objects, which a weights-only load refuses to run" if refused
                   else f"torch.load cannot read it ({type(exc).__name__})")
            raise ValueError(f"{path} is not a FlowPolicy checkpoint: {why}; expected a file written by "
                             "FlowPolicy.save or 'robogate policy train'") from None
        if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
            found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
            raise ValueError(f"{path} is not a FlowPolicy checkpoint (format {found!r}, expected {CHECKPOINT_FORMAT!r})")
        try:
            config = FlowConfig(**ckpt["config"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: bad FlowPolicy config: {exc}") from None
        try:
            policy = cls(config, env_id=ckpt.get("env_id"), envelope=ckpt.get("envelope"))
        except ValueError as exc:
            raise ValueError(f"{path}: bad training envelope: {exc}") from None
        try:
            policy.net.load_state_dict(ckpt["state_dict"])
        except (RuntimeError, KeyError) as exc:
            detail = " ".join(str(exc).split())[:300]
            raise ValueError(f"{path}: the weights do not match the FlowPolicy architecture of its config ({detail})") from None
        return policy

    @classmethod
    def pretrained(cls, env_id: str = "robogate/PickPlace-Panda-v0") -> FlowPolicy:
        """The checkpoint shipped with robogate for ``env_id`` (see :data:`PRETRAINED`)."""
        if env_id not in PRETRAINED:
            raise ValueError(f"no pretrained FlowPolicy for {env_id!r}; available: {', '.join(PRETRAINED)}")
        with resources.as_file(resources.files("robogate.policies") / "checkpoints" / PRETRAINED[env_id]) as p:
            return cls.load(p)

    def __getstate__(self) -> dict[str, Any]:
        """Plain containers only (config, tensors, env id, envelope), so the policy pickles to worker
        processes; the sampling generators start afresh on the other side (``reset`` seeds them)."""
        return {"config": asdict(self.config), "state_dict": self.net.state_dict(), "env_id": self.env_id,
                "envelope": None if self.envelope is None else self.envelope.to_dict()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(FlowConfig(**state["config"]), env_id=state["env_id"], envelope=state["envelope"])
        self.net.load_state_dict(state["state_dict"])

    def __repr__(self) -> str:
        return f"FlowPolicy(env_id={self.env_id!r}, config={self.config})"
