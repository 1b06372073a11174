"""Read a stored sweep: its rows as a DataFrame and its settings from the manifest.

A sweep's ``results/`` folder is a plain Parquet dataset, so pandas, DuckDB or
Polars read it directly too (``pd.read_parquet("runs/panda/results")``);
:func:`load_sweep` adds the store's checks (every part's checksum, no id twice).
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from robogate.space import ParameterSpace
from robogate.store import SweepStore

__all__ = ["load_sweep", "sweep_settings"]


def load_sweep(path: str | os.PathLike) -> pd.DataFrame:
    """The experiments of a finished or partial sweep, one row each, sorted by ``id``.

    Parameters
    ----------
    path : str or os.PathLike
        A folder written by ``robogate sweep`` / :func:`robogate.sweep.run_sweep`.

    Returns
    -------
    pandas.DataFrame
        ``id``, ``stage`` (1 Latin Hypercube, 2 boundary-focused, 3 gate runs),
        ``batch``, a column per parameter, ``env_id``, ``policy``, ``seed``,
        ``outcome``, ``success`` and timings.  ``attrs["settings"]`` holds
        :func:`sweep_settings`.

    Raises
    ------
    robogate.store.StoreError
        If ``path`` is not a sweep store, or a part is corrupt.

    Examples
    --------
    >>> import robogate
    >>> df = robogate.load_sweep("runs/panda")                 # doctest: +SKIP
    >>> df.groupby("stage")["success"].mean()                  # doctest: +SKIP
    """
    store = SweepStore.open(path)
    df = store.read()
    df.attrs["settings"] = _settings(store.manifest, path)
    return df


def sweep_settings(path: str | os.PathLike) -> dict[str, Any]:
    """What a stored sweep is, read from its manifest.

    Returns
    -------
    dict
        ``env_id``, ``policy``, ``seed``, ``space`` (a ParameterSpace),
        ``band`` (the stage-2 success band, or None), ``sampler`` (its settings),
        ``complete``, ``versions``, ``created``, ``completed`` and
        ``lhs_discrepancy`` (None where unknown).

    Raises
    ------
    ValueError
        If the manifest holds no parameter space.
    robogate.store.StoreError
        If ``path`` is not a sweep store.
    """
    return _settings(SweepStore.open(path).manifest, path)


def _settings(manifest: dict[str, Any], path: Any) -> dict[str, Any]:
    if "space" not in manifest:
        raise ValueError(f"{path} holds no robogate sweep: its manifest has no parameter space")
    sampler = manifest.get("sampler") or {}
    return {
        "env_id": manifest.get("env_id"),
        "policy": manifest.get("policy"),
        "seed": manifest.get("seed"),
        "space": ParameterSpace.from_dict(manifest["space"]),
        "band": tuple(sampler["band"]) if sampler.get("band") else None,
        "sampler": sampler,
        "complete": bool(manifest.get("complete")),
        "versions": manifest.get("versions") or {},
        "created": manifest.get("created"),
        "completed": manifest.get("completed"),
        "lhs_discrepancy": manifest.get("lhs_discrepancy"),
    }
