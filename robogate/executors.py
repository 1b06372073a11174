"""Executors run trials in parallel and hand back their records as they finish.

* :class:`LocalExecutor` -- a pool of worker processes on this machine (all
  cores by default).  Workers are started with ``spawn``, so no simulator state
  is ever forked, and live as long as the executor: each keeps its envs loaded.
* :class:`RayExecutor` -- Ray tasks on a local Ray instance or a cluster
  (``pip install robogate[ray]``).  Ray reuses its worker processes, so they
  keep their envs loaded too.

Both run :func:`robogate.runner.run_trial`, so the same trials give the same
records on either.
"""

from __future__ import annotations

import importlib.util
import logging
import multiprocessing
import multiprocessing.connection
import numbers
import os
import signal
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from robogate.runner import Trial, run_trial

__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "RayExecutor", "check_executor_args", "make_executor"]

#: Names accepted by :func:`make_executor`.
EXECUTORS = ("local", "ray")
_RAY_MISSING = "the 'ray' executor needs Ray, which is not installed"
_RAY_INSTALL = "install it with: pip install 'robogate[ray]'"


def _check_workers(workers: Any) -> int | None:
    if workers is None:
        return None
    if isinstance(workers, bool) or not isinstance(workers, numbers.Integral) or workers < 1:
        raise ValueError(f"workers must be a positive integer or None, got {workers!r}")
    return int(workers)


class Executor:
    """Base class: runs trials and yields their records in completion order.

    Attributes
    ----------
    workers : int
        How many trials run at once.
    """

    workers: int

    def imap_unordered(self, trials: Iterable[Trial]) -> Iterator[dict[str, Any]]:
        """Run ``trials``; yield each record as soon as it is ready.

        Closing the iterator early cancels the trials not yet started.
        """
        raise NotImplementedError

    def close(self) -> None:
        """Release the workers; the executor cannot be used afterwards."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(workers={self.workers})"


# ------------------------------------------------------------------------------------ local


def _exit_with_parent() -> None:
    """Exit this worker when the process that started it dies (even by SIGKILL)."""
    parent = multiprocessing.parent_process()
    if parent is None:  # pragma: no cover - not a multiprocessing child
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="robogate-parent-watch", daemon=True).start()


def _init_local_worker() -> None:
    # Ctrl-C goes to the whole process group: the parent handles it and stops the pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()


class LocalExecutor(Executor):
    """A pool of worker processes on this machine.

    Parameters
    ----------
    workers : int, optional
        Number of worker processes; default ``os.cpu_count()``.  With 1, trials
        run in this process (no pool).

    Notes
    -----
    Workers start with the ``spawn`` method on first use and are reused for
    every trial until :meth:`close`.  If the parent process dies, its workers
    exit.
    """

    def __init__(self, workers: int | None = None):
        workers = _check_workers(workers)
        self.workers = workers if workers is not None else (os.cpu_count() or 1)
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._closed:
            raise RuntimeError("this executor is closed")
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_local_worker,
            )
        return self._pool

    def imap_unordered(self, trials: Iterable[Trial]) -> Iterator[dict[str, Any]]:
        """Run ``trials``; yield each record as soon as it is ready.

        Parameters
        ----------
        trials : iterable of Trial
            Submitted in order.

        Yields
        ------
        dict
            The :func:`~robogate.runner.run_trial` records, in completion order.
        """
        trials = list(trials)
        if self._closed:
            raise RuntimeError("this executor is closed")
        if self.workers == 1:
            for trial in trials:
                yield run_trial(trial)
            return
        pool = self._get_pool()
        futures = [pool.submit(run_trial, t) for t in trials]
        try:
            for fut in as_completed(futures):
                yield fut.result()
        finally:
            for fut in futures:
                fut.cancel()

    def close(self) -> None:
        """Stop the worker processes (running trials finish, queued ones are cancelled)."""
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


# -------------------------------------------------------------------------------------- ray


def _import_ray():
    try:
        import ray
    except ImportError as exc:
        raise ImportError(
            f"{_RAY_MISSING} ({exc}); {_RAY_INSTALL}"
        ) from None
    return ray


class RayExecutor(Executor):
    """Ray tasks, on a local Ray instance or a cluster.

    Parameters
    ----------
    address : str, optional
        Address of a Ray cluster to join (e.g. ``"auto"`` or
        ``"ray://head:10001"``).  Default: start a local Ray instance.
    workers : int, optional
        Local instance: its number of CPUs (default all cores).  Cluster: the
        most trials in flight at once (default the cluster's CPUs).

    Notes
    -----
    Needs ``pip install robogate[ray]``.  If Ray is already initialised in this
    process, that instance is used and left running by :meth:`close`; otherwise
    the executor starts Ray (no dashboard, worker logs not forwarded) and
    shuts it down on :meth:`close`.  Ray reuses its worker processes, so each
    keeps its envs loaded across trials.
    """

    def __init__(self, address: str | None = None, workers: int | None = None):
        workers = _check_workers(workers)
        if address is not None and (not isinstance(address, str) or not address.strip()):
            raise ValueError(f"address must be a non-empty string, got {address!r}")
        ray = _import_ray()
        self._ray = ray
        self._owns = not ray.is_initialized()
        if self._owns:
            kwargs: dict[str, Any] = {
                "address": address,
                "include_dashboard": False,
                "log_to_driver": False,
                "logging_level": logging.WARNING,
            }
            if address is None:
                kwargs["num_cpus"] = workers
            try:
                ray.init(**kwargs)
            except ConnectionError as exc:
                raise ConnectionError(f"cannot connect to the Ray cluster at {address!r}: {exc}") from exc
        cpus = int(ray.cluster_resources().get("CPU", 1)) or 1
        self.workers = workers if workers is not None else cpus
        self._remote = ray.remote(num_cpus=1)(run_trial)
        self._closed = False

    def imap_unordered(self, trials: Iterable[Trial]) -> Iterator[dict[str, Any]]:
        """Run ``trials`` as Ray tasks; yield each record as soon as it is ready.

        At most ``2 * workers`` tasks are in flight, submitted in trial order.
        """
        if self._closed:
            raise RuntimeError("this executor is closed")
        ray = self._ray
        queue = deque(trials)
        limit = 2 * self.workers
        pending: list = []
        try:
            while queue or pending:
                while queue and len(pending) < limit:
                    pending.append(self._remote.remote(queue.popleft()))
                ready, pending = ray.wait(pending, num_returns=1)
                if pending:
                    more, pending = ray.wait(pending, num_returns=len(pending), timeout=0)
                    ready += more
                for record in sorted(ray.get(ready), key=lambda r: r["id"]):
                    yield record
        finally:
            for ref in pending:
                try:
                    ray.cancel(ref)
                except Exception:  # pragma: no cover - best effort
                    pass

    def close(self) -> None:
        """Shut Ray down if this executor started it."""
        if not self._closed:
            self._closed = True
            if self._owns and self._ray.is_initialized():
                self._ray.shutdown()


# ----------------------------------------------------------------------------------- factory


def check_executor_args(name: Any, workers: Any = None, address: Any = None) -> None:
    """Check :func:`make_executor`'s arguments without starting any worker.

    Raises
    ------
    ValueError
        For an unknown name, bad ``workers``, or an address without Ray.
    ImportError
        For ``"ray"`` when Ray is not installed.
    """
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r}; expected one of: {', '.join(EXECUTORS)}")
    _check_workers(workers)
    if name == "local" and address is not None:
        raise ValueError("address is only used by the 'ray' executor")
    if name == "ray" and importlib.util.find_spec("ray") is None:
        raise ImportError(f"{_RAY_MISSING}; {_RAY_INSTALL}")


def make_executor(name: str = "local", workers: int | None = None, address: str | None = None) -> Executor:
    """Build an executor by name.

    Parameters
    ----------
    name : {"local", "ray"}
        Which executor.
    workers : int, optional
        Parallel trials (default: all cores, or the Ray cluster's CPUs).
    address : str, optional
        Ray cluster address (``"ray"`` only).

    Returns
    -------
    Executor

    Raises
    ------
    ValueError, ImportError
        As :func:`check_executor_args`, which runs first.
    """
    check_executor_args(name, workers, address)
    if name == "local":
        return LocalExecutor(workers)
    return RayExecutor(address=address, workers=workers)
