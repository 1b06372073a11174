"""Small PyTorch building blocks shared by the learned policy and the monitor's scores."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

__all__ = ["load_state_arrays", "mlp", "state_arrays"]


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
