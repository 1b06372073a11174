"""Read a stored sweep: its rows as a DataFrame and its settings from the manifest.

A sweep's ``results/`` folder is a plain Parquet dataset, so pandas, DuckDB or
Polars read it directly too (``pd.read_parquet("runs/panda/results")``);
:func:`load_sweep` adds the store's checks (every part's checksum, no id twice).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import pandas as pd

from robogate.datasets.store import SweepStore
from robogate.sweep.config import SweepConfig

__all__ = ["load_sweep", "sweep_settings"]


def load_sweep(path: str | os.PathLike) -> pd.DataFrame:
    """The experiments of a finished or partial sweep, one row each, sorted by ``id``.

    Parameters
    ----------
    path : str or os.PathLike
        A folder written by ``robogate sweep`` / :func:`robogate.sweep.run.run_sweep`.

    Returns
    -------
    pandas.DataFrame
        ``id``, ``stage`` (1 Latin Hypercube, 2 boundary-focused, 3 gate runs),
        ``batch``, a column per parameter, ``env_id``, ``policy``, ``seed``,
        ``outcome``, ``success`` and timings.  ``attrs["settings"]`` holds
        :func:`sweep_settings`.

    Raises
    ------
    ValueError
        Naming the folder, when it holds no finished experiment (a sweep stopped before its
        first one finished: nothing to read, resume it first).
    robogate.datasets.store.StoreError
        If ``path`` is not a sweep store, or a part is corrupt.

    Examples
    --------
    >>> import robogate
    >>> df = robogate.load_sweep("runs/panda")                 # doctest: +SKIP
    >>> df.groupby("stage")["success"].mean()                  # doctest: +SKIP
    """
    store = SweepStore.open(path)
    settings = _settings(store.manifest, path)
    df = store.read()
    if df.empty:
        raise ValueError(f"the sweep in {path} holds no finished experiment yet: it stopped before its first one "
                         f"finished; continue it with robogate sweep --out {path} --resume")
    df.attrs["settings"] = settings
    return df


def sweep_settings(path: str | os.PathLike) -> dict[str, Any]:
    """What a stored sweep is, read from its manifest.

    Returns
    -------
    dict
        Every field of its :class:`~robogate.sweep.config.SweepConfig` (``env_id``,
        ``policy``, ``seed``, ``space``, ``band``, ...), the ``config`` itself, the raw
        ``sampler`` settings, and the run's provenance: ``complete``, ``versions``,
        ``created``, ``completed`` and ``lhs_discrepancy`` (None where unknown).

    Raises
    ------
    ValueError
        If the manifest does not describe a robogate sweep.
    robogate.datasets.store.StoreError
        If ``path`` is not a sweep store.
    """
    return _settings(SweepStore.open(path).manifest, path)


def _settings(manifest: dict[str, Any], path: Any) -> dict[str, Any]:
    config = SweepConfig.from_manifest(manifest, where=path)
    return {
        **{f.name: getattr(config, f.name) for f in dataclasses.fields(config)},
        "config": config,
        "sampler": manifest["sampler"],
        "complete": bool(manifest.get("complete")),
        "versions": manifest.get("versions") or {},
        "created": manifest.get("created"),
        "completed": manifest.get("completed"),
        "lhs_discrepancy": manifest.get("lhs_discrepancy"),
    }
