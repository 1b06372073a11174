"""Executors shared by the whole test session (starting a pool or Ray takes seconds)."""

import pytest


@pytest.fixture(scope="session")
def local_pool():
    """A two-process :class:`LocalExecutor`, started once and reused."""
    from robogate.execution.executors import LocalExecutor

    with LocalExecutor(workers=2) as executor:
        yield executor


@pytest.fixture(scope="session")
def ray_executor():
    """A :class:`RayExecutor` on a local two-CPU Ray instance, shut down at the end."""
    pytest.importorskip("ray")
    from robogate.execution.executors import RayExecutor

    with RayExecutor(workers=2) as executor:
        yield executor
