"""How many threads torch runs on while robogate runs a policy: one, unless the user asks for more.

A policy's network is small and runs once per control step. Torch's default, one thread per core
in every process, only makes the workers of a sweep (and the main process) contend for the cores,
worst on a machine that other jobs keep busy. So every episode robogate runs, every call a
:class:`~robogate.monitor.MonitoredEnv` makes and every call of the shipped
:class:`~robogate.policies.FlowPolicy` runs torch on :func:`policy_threads` threads, policy objects
and specs alike; the caller's setting is restored afterwards. To give policies more threads, set
the environment variable ``ROBOGATE_TORCH_THREADS`` (worker processes inherit it).

Torch is never imported here: a process that has not loaded it runs no torch policy.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

__all__ = ["THREADS_VARIABLE", "policy_threads", "torch_threads"]

THREADS_VARIABLE = "ROBOGATE_TORCH_THREADS"
"""The environment variable that sets :func:`policy_threads` (default 1)."""


def policy_threads() -> int:
    """The torch threads a policy runs on: ``ROBOGATE_TORCH_THREADS``, default 1.

    Raises
    ------
    ValueError
        When the variable is set to anything but a positive integer.
    """
    text = os.environ.get(THREADS_VARIABLE, "").strip()
    if not text:
        return 1
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{THREADS_VARIABLE} must be a positive integer (torch threads per policy), got {text!r}")
    return int(text)


@contextlib.contextmanager
def torch_threads(n: int | None = None) -> Iterator[None]:
    """Run the block with torch on ``n`` intra-op threads (None: :func:`policy_threads`), restoring the
    caller's setting after; nothing happens in a process that has not imported torch."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    n = policy_threads() if n is None else n
    before = torch.get_num_threads()
    if before == n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
