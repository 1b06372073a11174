"""Shared test helpers: policies addressed by spec (``"tests.helpers:..."``) and table comparisons."""

from __future__ import annotations

import numpy as np

ENV_ID = "robogate/PickPlace-Panda-v0"
# Columns that measure time on the machine; everything else of a sweep row is reproducible.
TIMING_COLUMNS = ["wall_time", "physics_time"]


class RaisingPolicy:
    """A policy whose ``act`` always raises."""

    def reset(self) -> None:
        pass

    def act(self, obs: np.ndarray) -> np.ndarray:
        raise RuntimeError("policy exploded on purpose")


class NotAPolicy:
    """Has ``reset`` but no ``act``."""

    def reset(self) -> None:
        pass


def failing_factory():
    raise OSError("weights file missing")


NOT_CALLABLE = 42


def comparable(df):
    """A sweep table without its timing columns, sorted by id."""
    return df.drop(columns=TIMING_COLUMNS).sort_values("id").reset_index(drop=True)
