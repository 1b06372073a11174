"""Seeds: checking one, and the seed of each experiment of a seeded sweep (``SeedSequence.spawn``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from robogate._utils.checks import check_int

__all__ = ["check_seed", "trial_seed"]


def check_seed(value: Any, name: str = "seed") -> int:
    """Return ``value`` as an int if it is a non-negative integer (not a bool), else raise ``ValueError``."""
    return check_int(value, name)


def trial_seed(sweep_seed: int, index: int) -> int:
    """Seed of experiment ``index`` of a sweep seeded with ``sweep_seed``.

    Parameters
    ----------
    sweep_seed : int
        Non-negative seed of the whole sweep.
    index : int
        Non-negative experiment index (its id).

    Returns
    -------
    int
        ``SeedSequence(sweep_seed).spawn(n)[index].generate_state(1)[0]`` for any
        ``n > index``, as a Python int in ``[0, 2**32)``.
    """
    sweep_seed, index = check_seed(sweep_seed, "sweep_seed"), check_seed(index, "index")
    child = np.random.SeedSequence(sweep_seed, spawn_key=(index,))
    return int(child.generate_state(1)[0])
