"""Dynamics consistency: is the world doing what it did in successful episodes, given what the robot did?

Novelty scores (RND, density) look at what the policy sees; a slip or a calibration error looks
ordinary there until the object has fallen or the fingers have struck. What changes first is
the *dynamics*: the object stops following the gripper that lifts it, the fingers push the
object aside as they close, the tool stops short of where it was sent.

:class:`DynamicsConsistency` fits a small forward model on the transitions of successful
rollouts: from the observation ``o_t`` (and the action ``a_t`` executed from it) it predicts the
change ``g(o_{t+1}) - g(o_t)`` of the observation's moving parts ``g``, with a mean and a
variance per element (a heteroscedastic Gaussian: contact-rich phases are allowed their larger
spread, quiet ones are not). The score of step t is the mean squared standardised residual of
the transition that led to ``o_t``,

    s_t = (1 / m) * sum_i ((y_i - mu_i(x)) / sigma_i(x))^2,    x = (o_{t-1}, a_{t-1}),  y = g(o_t) - g(o_{t-1}),

about 1 where the world behaves as in the successes, 0 at an episode's first step. ``target``
chooses ``g``: every element of the observation that moves within an episode (``"next"``, any
env), or the object's position relative to the gripper (``"object"``, robogate's observation
layout). Training keeps a share of the episodes apart and stops at the best likelihood there.
The predicted standard deviation is floored at ``floor`` times each element's spread of change
over the fitting transitions: clean simulated data would otherwise teach a variance far below
what a real encoder or camera delivers, and every noisy step would then look like a slip.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from robogate._utils.checks import check_int, check_level
from robogate._utils.networks import check_training, load_state_arrays, mlp, state_arrays
from robogate._utils.threads import torch_threads
from robogate.monitor.rollout import Rollout
from robogate.monitor.scores.base import Step

__all__ = ["INPUTS", "TARGETS", "DynamicsConsistency"]

INPUTS = ("observation+action", "observation")
"""What the forward model reads: the observation and the action executed from it, or the observation alone."""
TARGETS = ("next", "object")
"""What it predicts the change of: every moving element of the observation, or the object's position
relative to the gripper (robogate's layout)."""
_CONSTANT = 1e-6
"""An input or target element whose spread over the training transitions is below this does not move:
inputs are scaled to zero (nothing learnt about them), targets left out."""
_LOG_VAR_MAX = 6.0
"""Upper bound of a predicted log-variance, in standardised units (the lower one comes from ``floor``)."""


def _object_layout(size: int) -> tuple[slice, slice]:
    """Where robogate's observation holds the tool's and the object's positions."""
    from robogate.envs.interface import OBS_SIZE, OBS_SLICES  # the layout only: no simulator

    if size != OBS_SIZE:
        raise ValueError(f"target='object' reads robogate's observation layout ({OBS_SIZE} elements), got "
                         f"observations of {size}; use target='next' for another env")
    return OBS_SLICES["tcp_position"], OBS_SLICES["object_position"]


class _ForwardModel(nn.Module):
    """Input standardisation and an MLP giving the mean and log-variance of each standardised target."""

    def __init__(self, n_in: int, n_out: int, hidden: int, floor: float) -> None:
        super().__init__()
        self.log_var_min = 2.0 * float(np.log(floor))
        self.register_buffer("in_mean", torch.zeros(n_in))
        self.register_buffer("in_scale", torch.ones(n_in))  # 1 / std, 0 for a constant input
        self.register_buffer("out_mean", torch.zeros(n_out))
        self.register_buffer("out_std", torch.ones(n_out))
        self.body = mlp([n_in, hidden, hidden, 2 * n_out])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.body((x - self.in_mean) * self.in_scale)
        mean, log_var = out.chunk(2, dim=-1)
        return mean, log_var.clamp(self.log_var_min, _LOG_VAR_MAX)

    def surprise(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean squared standardised residual of raw targets ``y`` given raw inputs ``x``."""
        mean, log_var = self(x)
        z = (y - self.out_mean) / self.out_std
        return ((z - mean) ** 2 * torch.exp(-log_var)).mean(dim=-1)


class DynamicsConsistency:
    """Surprise of a forward model fitted on successful transitions (see the module docstring).

    Parameters
    ----------
    inputs : {"observation", "observation+action"}
        What the model reads of a step (see :data:`INPUTS`). The observation alone did as well on
        validation rollouts of the shipped policy (``scripts/eval_monitor.py``) and needs no
        action from the control loop.
    target : {"next", "object"}
        What it predicts the change of (see :data:`TARGETS`); "next" works for any env.
    hidden : int
        Width of its two hidden layers.
    epochs : int
        Most passes over the training transitions.
    patience : int
        Epochs without a better held-out likelihood before training stops.
    batch_size : int
        Transitions per gradient step.
    learning_rate, weight_decay : float
        AdamW settings.
    holdout : float in (0, 1)
        Share of the episodes kept apart to stop training.
    floor : float in (0, 1)
        Smallest predicted standard deviation, as a share of each element's spread of change.
    seed : int
        Seeds the split, the weights and the batches.

    Attributes
    ----------
    signals : tuple of str
        ``("observations",)``, and ``"actions"`` with ``inputs="observation+action"``.
    network_ : torch.nn.Module
        The fitted forward model.

    Examples
    --------
    >>> import numpy as np
    >>> from robogate.monitor import Rollout
    >>> rng = np.random.default_rng(0)
    >>> def episode(gain):       # the state moves by gain * action
    ...     a = rng.normal(size=(40, 2)); o = np.vstack([np.zeros(2), np.cumsum(gain * a, axis=0)[:-1]])
    ...     return Rollout(observations=o, actions=a)
    >>> dyn = DynamicsConsistency(inputs="observation+action", epochs=60).fit([episode(1.0) for _ in range(30)])
    >>> bool(dyn.score(episode(3.0))[1:].mean() > 5 * dyn.score(episode(1.0))[1:].mean())
    True
    """

    signals: tuple[str, ...] = ("observations",)

    def __init__(self, *, inputs: str = "observation", target: str = "next", hidden: int = 64,
                 epochs: int = 150, patience: int = 15, batch_size: int = 256, learning_rate: float = 2e-3,
                 weight_decay: float = 1e-4, holdout: float = 0.2, floor: float = 0.1, seed: int = 0) -> None:
        if inputs not in INPUTS:
            raise ValueError(f"inputs must be one of {list(INPUTS)}, got {inputs!r}")
        if target not in TARGETS:
            raise ValueError(f"target must be one of {list(TARGETS)}, got {target!r}")
        self.inputs, self.target = inputs, target
        self.signals = ("observations", "actions") if inputs == "observation+action" else ("observations",)
        (self.hidden, self.epochs, self.patience, self.batch_size, self.learning_rate,
         self.weight_decay) = check_training(hidden, epochs, patience, batch_size, learning_rate, weight_decay)
        self.holdout = check_level(holdout, "holdout")
        self.floor = check_level(floor, "floor")
        self.seed = check_int(seed, "seed")

    def get_config(self) -> dict:
        return {"inputs": self.inputs, "target": self.target, "hidden": self.hidden, "epochs": self.epochs,
                "patience": self.patience, "batch_size": self.batch_size, "learning_rate": self.learning_rate,
                "weight_decay": self.weight_decay, "holdout": self.holdout, "floor": self.floor, "seed": self.seed}

    # ----------------------------------------------------------------------------- features
    def _moving(self, observations: np.ndarray) -> np.ndarray:
        """``g(o)``: the parts of the observations (n, o) whose change is predicted."""
        if self.target == "object":
            tcp, obj = _object_layout(observations.shape[-1])
            return observations[..., obj] - observations[..., tcp]
        return observations

    def _transitions(self, observations: np.ndarray, actions: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Inputs (n-1, F) and target changes (n-1, m) of the transitions of n consecutive steps."""
        obs = np.asarray(observations, dtype=np.float64)
        x = obs[:-1] if self.inputs == "observation" else np.concatenate(
            [obs[:-1], np.asarray(actions, dtype=np.float64)[:-1]], axis=1)
        g = self._moving(obs)
        return x, g[1:] - g[:-1]

    # ----------------------------------------------------------------------------- fitting
    def fit(self, rollouts: Sequence[Rollout]) -> DynamicsConsistency:
        """Fit the forward model on the transitions of ``rollouts`` (successful ones)."""
        missing = [s for s in self.signals if any(not r.has(s) for r in rollouts)]
        if missing:
            raise ValueError(f"the dynamics score reads {' and '.join(missing)}, which some rollouts do not carry; "
                             "record them (robogate's recordings keep both) or use inputs='observation'")
        pairs = [self._transitions(r.observations, r.actions) for r in rollouts if r.steps > 1]
        if sum(len(x) for x, _ in pairs) < 10 or len(pairs) < 2:
            raise ValueError("the dynamics score needs at least 2 rollouts and 10 transitions (steps after the "
                             f"first) to fit, got {len(pairs)} rollouts")
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(len(pairs))
        n_held = min(max(int(round(self.holdout * len(pairs))), 1), len(pairs) - 1)
        held, train = order[:n_held], order[n_held:]
        x_all, y_all = (np.concatenate([p[i] for p in pairs]) for i in (0, 1))
        moving = y_all.std(axis=0) > _CONSTANT
        if not moving.any():
            raise ValueError("nothing the dynamics score predicts moves in the fitting rollouts")
        self.moving_ = moving
        x_std = x_all.std(axis=0)

        def tensors(index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
            x = np.concatenate([pairs[i][0] for i in index])
            y = np.concatenate([pairs[i][1] for i in index])[:, moving]
            return torch.from_numpy(x).float(), torch.from_numpy(y).float()

        (x_train, y_train), (x_held, y_held) = tensors(train), tensors(held)
        with torch_threads(1), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            net = _ForwardModel(x_all.shape[1], int(moving.sum()), self.hidden, self.floor)
            with torch.no_grad():
                net.in_mean.copy_(torch.from_numpy(x_all.mean(axis=0)))
                net.in_scale.copy_(torch.from_numpy(np.where(x_std > _CONSTANT, 1.0 / np.maximum(x_std, _CONSTANT),
                                                             0.0)))
                net.out_mean.copy_(torch.from_numpy(y_all[:, moving].mean(axis=0)))
                net.out_std.copy_(torch.from_numpy(y_all[:, moving].std(axis=0)))
            optimiser = torch.optim.AdamW(net.body.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
            generator = torch.Generator().manual_seed(self.seed)
            best, best_state, waited = np.inf, None, 0
            for _ in range(self.epochs):
                net.train()
                perm = torch.randperm(len(x_train), generator=generator)
                for start in range(0, len(perm), self.batch_size):
                    batch = perm[start:start + self.batch_size]
                    loss = self._nll(net, x_train[batch], y_train[batch])
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
                net.eval()
                with torch.no_grad():
                    held_loss = float(self._nll(net, x_held, y_held))
                if held_loss < best - 1e-4:
                    best, best_state, waited = held_loss, {k: v.clone() for k, v in net.state_dict().items()}, 0
                else:
                    waited += 1
                    if waited >= self.patience:
                        break
            net.load_state_dict(best_state)
        self.network_ = net.eval()
        self.dims_ = (int(x_all.shape[1]), int(moving.size))
        return self

    @staticmethod
    def _nll(net: _ForwardModel, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        mean, log_var = net(x)
        z = (y - net.out_mean) / net.out_std
        return (0.5 * ((z - mean) ** 2 * torch.exp(-log_var) + log_var)).mean()

    # ----------------------------------------------------------------------------- scoring
    def _surprise(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        with torch_threads(1), torch.inference_mode():
            out = self.network_.surprise(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
                                         torch.from_numpy(np.ascontiguousarray(y[:, self.moving_], dtype=np.float32)))
        return out.numpy().astype(float)

    def score(self, rollout: Rollout) -> np.ndarray:
        """The surprise of each step's incoming transition, shape (T,); 0 at the first step."""
        out = np.zeros(rollout.steps)
        if rollout.steps > 1:
            out[1:] = self._surprise(*self._transitions(rollout.observations, rollout.actions))
        return out

    def stream(self) -> _DynamicsStream:
        return _DynamicsStream(self)

    # ----------------------------------------------------------------------------- state
    def get_state(self) -> dict[str, np.ndarray]:
        return {**state_arrays(self.network_), "moving": self.moving_.astype(np.int8),
                "dims": np.asarray(self.dims_, dtype=np.int64)}

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        n_in, n_obs = (int(v) for v in np.asarray(state["dims"]))
        self.moving_ = np.asarray(state["moving"]).astype(bool)
        weights = {k: v for k, v in state.items() if k not in ("moving", "dims")}
        model = _ForwardModel(n_in, int(self.moving_.sum()), self.hidden, self.floor)
        self.network_ = load_state_arrays(model, weights).float()
        self.dims_ = (n_in, n_obs)


class _DynamicsStream:
    """One live episode: the previous observation, whose transition the next step completes."""

    def __init__(self, score: DynamicsConsistency) -> None:
        self._score = score
        self._previous: np.ndarray | None = None

    def update(self, step: Step) -> float:
        obs = np.asarray(step.observations, dtype=np.float64).reshape(1, -1)
        previous, self._previous = self._previous, obs
        if previous is None:
            return 0.0
        pair = np.concatenate([previous, obs])
        actions = None
        if self._score.inputs == "observation+action":
            if step.actions is None:
                raise ValueError("the dynamics score reads the action taken at the step before; pass last_action")
            actions = np.repeat(np.asarray(step.actions, dtype=np.float64).reshape(1, -1), 2, axis=0)
        x, y = self._score._transitions(pair, actions)
        return float(self._score._surprise(x, y)[0])
