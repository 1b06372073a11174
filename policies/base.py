"""The policy contract: anything with ``reset()`` and ``act(obs)`` drives robogate's envs."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Policy(Protocol):
    """A controller for one episode at a time.

    ``reset()`` is called before each episode; ``act(obs)`` maps an observation
    to an action in the env's action space. Scripted, learned and a user's own
    policies plug in alike: no base class is needed. A policy that samples may
    take the episode's seed, ``reset(seed=None)``: robogate then passes it (see
    :func:`robogate.execution.episode.reset_policy`), so a seeded episode reproduces.
    """

    def reset(self) -> None: ...

    def act(self, obs: np.ndarray) -> np.ndarray: ...
