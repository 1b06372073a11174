"""Shared test helpers: policies addressed by spec (``"tests.helpers:..."``) and shared executors."""

from __future__ import annotations

import numpy as np
import pytest

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


# One executor of each kind per test session, shared by every module that imports the
# fixtures; the last module to release one closes it.
_shared: dict[str, list] = {}


def _acquire(kind: str, make):
    entry = _shared.get(kind)
    if entry is None:
        entry = _shared[kind] = [make(), 0]
    entry[1] += 1
    return entry[0]


def _release(kind: str) -> None:
    entry = _shared[kind]
    entry[1] -= 1
    if entry[1] == 0:
        del _shared[kind]
        entry[0].close()


@pytest.fixture(scope="session")
def local_pool():
    """A two-process :class:`LocalExecutor`, started once and reused."""
    from robogate.executors import LocalExecutor

    ex = _acquire("local", lambda: LocalExecutor(workers=2))
    yield ex
    _release("local")


@pytest.fixture(scope="session")
def ray_executor():
    """A :class:`RayExecutor` on a local two-CPU Ray instance, shut down at the end."""
    pytest.importorskip("ray")
    from robogate.executors import RayExecutor

    ex = _acquire("ray", lambda: RayExecutor(workers=2))
    yield ex
    _release("ray")
