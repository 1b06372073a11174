"""Executors run trials in parallel and hand back their records as they finish.

An executor is anything with ``workers``, ``imap_unordered(trials)`` and ``close()`` (the
:class:`Executor` protocol).  Executors are made by name through a registry:
:func:`register` adds a factory (``factory(workers=None, address=None) -> Executor``), and
installed packages can add theirs under the ``robogate.executors`` entry-point group, so
``robogate sweep --executor NAME`` runs on a user's own backend (Dask, a SLURM launcher, ...)
without changes to robogate.  Two are built in:

* :class:`LocalExecutor` -- a pool of worker processes on this machine (all
  cores by default).  Workers are started with ``spawn``, so no simulator state
  is ever forked, and live as long as the executor: each keeps its envs loaded.
* :class:`RayExecutor` -- Ray tasks on a local Ray instance or a cluster
  (``pip install robogate[ray]``).  Ray reuses its worker processes, so they
  keep their envs loaded too.

Both run :func:`robogate.execution.trial.run_trial`, so the same trials give the same
records on either.
"""

from __future__ import annotations

import importlib.metadata
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from typing import Any, Protocol, runtime_checkable

from robogate._utils.checks import check_int
from robogate.execution.trial import Trial, run_trial

__all__ = ["ENTRY_POINT_GROUP", "Executor", "LocalExecutor", "RayExecutor", "executor_names",
           "init_local_worker", "make_executor", "register", "using_executor"]

#: Entry-point group through which installed packages add executors.
ENTRY_POINT_GROUP = "robogate.executors"
_RAY_INSTALL = "install it with: pip install 'robogate[ray]'"


@runtime_checkable
class Executor(Protocol):
    """Runs trials and yields their records in completion order.

    Any object with these members is an executor; no base class is needed.  It must run
    each trial with :func:`robogate.execution.trial.run_trial` (in whatever process or machine) and
    yield the record unchanged, so every executor gives the same rows for the same trials.

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
        ...

    def close(self) -> None:
        """Release the workers; the executor cannot be used afterwards."""
        ...


def _check_workers(workers: Any) -> int | None:
    return None if workers is None else check_int(workers, "workers", minimum=1)


class _Closing:
    """Context-manager support and a readable repr for the built-in executors."""

    workers: int

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self):
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


def init_local_worker() -> None:
    """Set up a local worker process: it ignores Ctrl-C (the parent stops the pool) and exits with its parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()


class LocalExecutor(_Closing):
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
                initializer=init_local_worker,
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
            The :func:`~robogate.execution.trial.run_trial` records, in completion order.
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
        raise ImportError(f"the 'ray' executor needs Ray, which is not installed ({exc}); {_RAY_INSTALL}") from None
    return ray


class RayExecutor(_Closing):
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


# ---------------------------------------------------------------------------------- registry

ExecutorFactory = Callable[..., Executor]
_FACTORIES: dict[str, ExecutorFactory] = {}


def register(name: str, factory: ExecutorFactory) -> None:
    """Make ``factory`` the executor called ``name`` (``run_sweep(executor=name)``, ``--executor name``).

    Parameters
    ----------
    name : str
        The executor's name; registering a name again replaces its factory.
    factory : callable
        ``factory(workers=None, address=None)`` returning an :class:`Executor`; it should raise
        ``ValueError`` for arguments it cannot use.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"executor name must be a non-empty string, got {name!r}")
    if not callable(factory):
        raise ValueError(f"executor factory for {name!r} must be callable, got {factory!r}")
    _FACTORIES[name] = factory


def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def executor_names() -> list[str]:
    """Names :func:`make_executor` accepts: the registered ones and those of installed entry points."""
    return sorted(set(_FACTORIES) | set(_entry_points()))


def make_executor(name: str = "local", workers: int | None = None, address: str | None = None) -> Executor:
    """Build an executor by name.

    Parameters
    ----------
    name : str
        A registered name (built in: ``"local"``, ``"ray"``) or an entry point's.
    workers : int, optional
        Parallel trials (default: the executor's own, e.g. all cores).
    address : str, optional
        Where the executor runs (e.g. a Ray cluster address), if it takes one.

    Raises
    ------
    ValueError
        For an unknown name, bad ``workers``, or an argument the executor does not take.
    ImportError
        When the executor's backend is not installed (e.g. Ray).
    """
    workers = _check_workers(workers)
    factory = _FACTORIES.get(name) if isinstance(name, str) else None
    if factory is None and isinstance(name, str) and name in _entry_points():
        factory = _FACTORIES[name] = _entry_points()[name].load()
    if factory is None:
        raise ValueError(f"unknown executor {name!r}; expected one of: {', '.join(executor_names())}")
    executor = factory(workers=workers, address=address)
    if not isinstance(executor, Executor):
        raise ValueError(f"the {name!r} executor factory returned {type(executor).__name__}, not an Executor")
    return executor


def _local(workers: int | None = None, address: str | None = None) -> LocalExecutor:
    if address is not None:
        raise ValueError("address is only used by the 'ray' executor")
    return LocalExecutor(workers)


def _ray(workers: int | None = None, address: str | None = None) -> RayExecutor:
    return RayExecutor(address=address, workers=workers)


register("local", _local)
register("ray", _ray)


@contextmanager
def using_executor(executor: str | Executor = "local", workers: int | None = None,
                   address: str | None = None) -> Iterator[Executor]:
    """An executor for a block of work: one made by name (and closed afterwards), or one given (left open).

    Raises
    ------
    ValueError
        For an unknown name or something that is neither a name nor an :class:`Executor`.
    """
    if isinstance(executor, str):
        made = make_executor(executor, workers, address)
        try:
            yield made
        finally:
            made.close()
    elif isinstance(executor, Executor):
        yield executor
    else:
        raise ValueError(f"executor must be a name or an Executor, got {type(executor).__name__}")
