"""Small PyTorch building blocks shared by the learned policy and the monitor's scores."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from robogate._utils.checks import check_int

__all__ = ["check_training", "load_state_arrays", "mlp", "state_arrays"]


def check_training(hidden: int, epochs: int, patience: int, batch_size: int, learning_rate: float,
                   weight_decay: float) -> tuple[int, int, int, int, float, float]:
    """A small network's training settings, checked: positive sizes and step size, a non-negative decay.

    Raises
    ------
    ValueError
        Naming the first setting out of range.
    """
    sizes = (check_int(hidden, "hidden", minimum=1), check_int(epochs, "epochs", minimum=1),
             check_int(patience, "patience", minimum=1), check_int(batch_size, "batch_size", minimum=1))
    for name, value in (("learning_rate", learning_rate), ("weight_decay", weight_decay)):
        if not float(value) >= 0.0 or (name == "learning_rate" and not float(value) > 0.0):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    return (*sizes, float(learning_rate), float(weight_decay))


def mlp(sizes: list[int], activation: type[nn.Module] = nn.SiLU) -> nn.Sequential:
    """Linear layers of the given sizes with ``activation`` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


def state_arrays(module: nn.Module) -> dict[str, np.ndarray]:
    """``module``'s state dict as NumPy arrays: what a score saves, with no pickle."""
    return {key: value.numpy() for key, value in module.state_dict().items()}


def load_state_arrays(module: nn.Module, state: Mapping[str, np.ndarray]) -> nn.Module:
    """Load arrays written by :func:`state_arrays` into ``module`` and put it in evaluation mode."""
    module.load_state_dict({key: torch.from_numpy(np.array(value)) for key, value in state.items()})
    return module.eval()
