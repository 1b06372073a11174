"""Sweep a policy through a parameter space: sample, run in parallel, store, resume.

:func:`run_sweep` drives a :class:`~robogate.sweep.sampler.TwoStageSampler` with
ask/tell over an executor.  Every experiment gets a sequential ``id`` and the
seed :func:`~robogate._utils.seeding.trial_seed` ``(seed, id)``.  A batch is recorded
in the store's plan before it runs, and finished records are appended in small
parts as they arrive, so a sweep killed at any moment loses at most the
episodes that were running.

Resuming replays the sampler: the planned batches are asked again in order
(each re-asked point must equal the stored plan), the stored outcomes are told
in id order, the planned-but-unfinished trials are run, and the sweep
continues.  Outcomes are always told in id order, batch by batch, so the final
table is the same whether the sweep ran in one go or was killed and resumed,
and whichever executor ran it.
"""

from __future__ import annotations

import datetime
import numbers
import os
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from robogate._utils.console import progress_bar
from robogate._utils.seeding import check_seed, trial_seed
from robogate._utils.versions import versions
from robogate.datasets.stages import STAGE_GATE, errored
from robogate.datasets.store import StoreWriter, SweepStore
from robogate.execution.executors import Executor, make_executor
from robogate.execution.specs import PolicyPayload, default_policy, policy_label, validate_policy
from robogate.execution.trial import Trial, cached_env, check_clock, validate_env_id
from robogate.scenarios.space import ParameterSpace
from robogate.sweep.config import SweepConfig
from robogate.sweep.sampler import BAND, TwoStageSampler

__all__ = ["RESUME_ALLOW", "check_resumable", "resolve_settings", "run_sweep"]

#: ``run_sweep(resume=RESUME_ALLOW)`` continues the sweep stored at ``out``, or starts one if there is none.
RESUME_ALLOW = "allow"


# -------------------------------------------------------------------------------- manifest


def _manifest(config: SweepConfig, sampler: TwoStageSampler) -> dict[str, Any]:
    return {**config.to_manifest(), "lhs_discrepancy": sampler.discrepancy,
            "versions": versions(cached_env(config.env_id)),
            "complete": False}


def _check_resumable(out: Path, stored: Mapping[str, Any], config: SweepConfig) -> None:
    """Raise ``ValueError`` naming the first setting that differs from the stored sweep."""
    difference = SweepConfig.from_manifest(stored, where=f"cannot resume {out}").first_difference(config)
    if difference:
        raise ValueError(
            f"cannot resume {out}: {difference}; use the settings of the stored sweep or a new out folder"
        )
    wanted = versions(cached_env(config.env_id))
    for name, old in (stored.get("versions") or {}).items():
        new = wanted.get(name)
        if new is not None and old != new:
            warnings.warn(
                f"resuming {out}, made with {name} {old}, under {name} {new}: "
                "if this changes episode outcomes the resumed table will differ",
                RuntimeWarning,
                stacklevel=3,
            )


def check_resumable(out: str | os.PathLike) -> None:
    """Raise ``ValueError`` naming the folder unless ``out`` holds a stored sweep to resume."""
    path = Path(out)
    if path.is_dir() and (path / "manifest.json").exists():
        return
    why = ("there is no such folder" if not path.exists() else "it is a file, not a sweep folder"
           if not path.is_dir() else "the folder is empty" if not any(path.iterdir())
           else "the folder holds no robogate sweep (no manifest.json)")
    raise ValueError(f"cannot resume {path}: {why}; check the path, or leave out --resume "
                     "(resume=False) to start a new sweep there")


def resolve_settings(out: str | os.PathLike, resume: bool, **given: Any) -> dict[str, Any]:
    """The settings of :func:`run_sweep` from those given (None: left out).

    Resuming, each setting left out is the stored sweep's (its space too); otherwise ``band`` and
    ``seed`` take their defaults, and ``policy`` the built-in one of robogate's envs (see
    :func:`~robogate.execution.specs.default_policy`). ``env_id``, ``n_lhs`` and ``n_boundary``
    stay None when neither given nor stored.

    Raises
    ------
    ValueError
        Resuming a folder that holds no sweep; a policy left out on an env that is not robogate's.
    """
    if resume:
        check_resumable(out)
        stored = SweepConfig.read(out)
        settings = {k: getattr(stored, k) if v is None else v for k, v in given.items()}
        settings["space"] = stored.space
    else:
        settings = {"env_id": None, "n_lhs": None, "n_boundary": None, "band": BAND, "seed": 0,
                    **{k: v for k, v in given.items() if v is not None}, "space": None}
    if settings.get("policy") is None and settings.get("env_id") is not None:
        settings["policy"] = default_policy(settings["env_id"])
    return settings


def _check_resume(resume: Any) -> bool | str:
    if resume is True or resume is False or resume == RESUME_ALLOW:
        return resume
    raise ValueError(f"resume must be True, False or {RESUME_ALLOW!r}, got {resume!r}")


def _open_store(out: Any, config: SweepConfig, sampler: TwoStageSampler, resume: bool | str
                ) -> tuple[SweepStore, bool]:
    """Create or open the store at ``out``; return it and whether it was resumed."""
    if not isinstance(out, (str, os.PathLike)) or not str(out):
        raise ValueError(f"out must be a folder path, got {out!r}")
    path = Path(out)
    is_store = path.is_dir() and (path / "manifest.json").exists()
    if resume is True:
        check_resumable(path)
    if is_store:
        if not resume:
            raise ValueError(
                f"out folder {path} already holds a sweep; continue it with resume=True "
                "(--resume) or choose a new folder"
            )
        store = SweepStore.open(path)
        _check_resumable(path, store.manifest, config)
        if not os.access(path, os.W_OK):
            raise ValueError(f"cannot resume {path}: the folder is not writable")
        store.cleanup()
        return store, True
    if path.is_dir() and any(not p.name.startswith(".") for p in path.iterdir()):
        raise ValueError(
            f"out folder {path} exists, is not empty and holds no sweep to resume; choose a new folder"
        )
    return SweepStore.create(path, _manifest(config, sampler)), False


# -------------------------------------------------------------------------------- the sweep


def _ask(sampler: TwoStageSampler, n: int | None, replay: bool, shown: set[str]) -> list[dict]:
    """``sampler.ask(n)``; its warnings are dropped on replay, otherwise each distinct one is warned once."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        params = sampler.ask(n)
    if not replay:
        for w in caught:
            message = str(w.message)
            if message not in shown:
                shown.add(message)
                warnings.warn(message, w.category, stacklevel=4)  # at the caller of run_sweep
    return params


def _planned_batches(store: SweepStore, out: Path) -> tuple[dict[int, pd.DataFrame], pd.DataFrame]:
    plan = store.planned()
    finished = store.read()
    if len(finished):  # rows that robogate gate --run added are not the sampler's
        finished = finished[finished["stage"] != STAGE_GATE]
    if len(plan) and not plan["id"].is_unique:  # pragma: no cover - the store forbids it
        raise ValueError(f"cannot resume {out}: its plan repeats ids")
    unplanned = set(finished["id"].tolist()) - set(plan["id"].tolist())
    if unplanned:
        raise ValueError(f"cannot resume {out}: results hold ids that were never planned: {sorted(unplanned)[:10]}")
    batches = {int(b): rows.sort_values("id").reset_index(drop=True) for b, rows in plan.groupby("batch")} if len(plan) else {}
    return batches, finished


def _replayed_trials(
    rows: pd.DataFrame, params: list[dict], first_id: int, batch: int, stage: int, config: SweepConfig,
    policy: str | PolicyPayload, out: Path,
) -> list[Trial]:
    """Trials of a stored batch, checked against the sampler's replay."""
    ids = rows["id"].tolist()
    if ids != list(range(first_id, first_id + len(ids))) or len(params) != len(ids):
        raise ValueError(
            f"cannot resume {out}: planned batch {batch} holds ids {ids[0]}..{ids[-1]} but the sampler "
            f"replay gives {len(params)} experiments from id {first_id}; the plan is inconsistent"
        )
    trials = []
    for (_, row), p in zip(rows.iterrows(), params):
        tid = int(row["id"])
        stored = {name: row[name] for name in p}
        if any(_differs(stored[name], p[name]) for name in p) or int(row["stage"]) != stage:
            raise ValueError(
                f"cannot resume {out}: experiment {tid} was planned as {stored} (stage {int(row['stage'])}) "
                f"but the sampler now gives {p} (stage {stage}); the sweep was made with a different "
                "sampler version or settings"
            )
        s = trial_seed(config.seed, tid)
        if int(row["seed"]) != s:
            raise ValueError(f"cannot resume {out}: experiment {tid} has seed {int(row['seed'])}, expected {s}")
        trials.append(Trial(id=tid, env_id=config.env_id, policy=policy, params=p, seed=s, stage=stage,
                            batch=batch))
    return trials


def _differs(stored: Any, value: Any) -> bool:
    if isinstance(value, float):
        return not (isinstance(stored, numbers.Real) and float(stored) == value)
    if isinstance(value, (int, np.integer)):
        return not (isinstance(stored, numbers.Real) and stored == value)
    return stored != value


def run_sweep(
    env_id: str,
    policy: Any,
    out: str | os.PathLike,
    *,
    space: ParameterSpace | Mapping | None = None,
    n_lhs: int,
    n_boundary: int,
    band: tuple[float, float] = BAND,
    batch_size: int | None = None,
    seed: int = 0,
    executor: str | Executor = "local",
    workers: int | None = None,
    address: str | None = None,
    resume: bool | str = False,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Sweep a policy through a parameter space with the two-stage sampler.

    Parameters
    ----------
    env_id : str
        A Gymnasium env id: one of ``robogate.ENV_IDS``, or any env whose
        ``env.unwrapped.parameter_space`` is a :class:`~robogate.scenarios.space.ParameterSpace`, that
        takes ``reset(options={"params": ...})`` and reports ``info["success"]``; an env of
        your own as ``"module:EnvId"`` (see :func:`~robogate.execution.trial.validate_env_id`).
    policy : str or policy object
        Policy spec (``"scripted"``, ``"flow"``, ``"flow:PATH"``, ``"package.module:Factory"``) or
        any object with ``reset()`` and ``act(obs)``, sent to every worker (see
        :class:`~robogate.execution.specs.PolicyPayload`); the manifest then names it
        ``<module.Class object>``, and resuming takes the object again.
    out : str or os.PathLike
        Folder of the sweep store (created; must not hold files unless resuming).
    space : ParameterSpace or dict, optional
        Space to sweep (default: the env's own); a dict is read with
        :meth:`ParameterSpace.from_dict`.  Every dimension must be a parameter
        of the env, within the env's range.
    n_lhs, n_boundary : int
        Stage-1 (Latin Hypercube) and stage-2 (boundary) budgets.
    band : (float, float), default (0.3, 0.7)
        Success-probability band targeted by stage 2.
    batch_size : int, optional
        Stage-2 points per surrogate refit (sampler default if None).
    seed : int, default 0
        Seed of the sampler and, through :func:`~robogate._utils.seeding.trial_seed`,
        of every experiment.
    executor : str or Executor, default "local"
        Where trials run: a name known to :func:`~robogate.execution.executors.make_executor`
        (``"local"``, ``"ray"``, or one added with :func:`~robogate.execution.executors.register`),
        or an :class:`~robogate.execution.executors.Executor`, used as is (``workers`` and
        ``address`` are then ignored) and left open.
    workers : int, optional
        Parallel trials (default all cores / the Ray cluster's CPUs).
    address : str, optional
        Ray cluster address (``executor="ray"``).
    resume : bool or "allow", default False
        True: continue the sweep stored at ``out`` (its settings must
        match; a finished one returns its rows at once); a folder without a
        stored sweep is an error, never silently a new sweep.  ``"allow"``:
        continue the stored sweep if there is one, else start one (a script
        that may run again).  False: ``out`` must not hold a sweep.
    progress : bool or None
        Draw a progress bar on stderr (None: only when stderr is a terminal).

    Returns
    -------
    pandas.DataFrame
        One row per experiment, sorted by ``id``: ``id``, ``stage``,
        ``batch``, the parameters, ``env_id``, ``policy``, ``seed``,
        ``outcome``, ``success``, ``steps``, ``sim_time``, ``wall_time``,
        ``physics_time``, ``error``.  ``df.attrs["elapsed"]`` holds this
        call's wall-clock seconds.

    Raises
    ------
    ValueError
        Before any work, for an unknown env id or policy, a bad space or
        sampler setting, an out folder that already holds files (without
        ``resume``), no sweep to resume (``resume=True``), or settings that
        differ from the stored sweep.
    robogate.datasets.store.StoreError
        If ``out`` cannot be created or written.
    ImportError
        For ``executor="ray"`` without Ray installed.
    """
    started = time.perf_counter()
    env_id = validate_env_id(env_id)
    policy = validate_policy(policy)
    check_clock(env_id)
    config = SweepConfig.build(env_id, policy_label(policy), space=space, n_lhs=n_lhs, n_boundary=n_boundary, band=band,
                               batch_size=batch_size, seed=check_seed(seed))
    sampler = config.sampler()
    resume = _check_resume(resume)
    own_executor = isinstance(executor, str)
    ex = make_executor(executor, workers, address) if own_executor else executor
    if not isinstance(ex, Executor):
        raise ValueError(f"executor must be a name or an Executor, got {type(executor).__name__}")
    try:
        store, resumed = _open_store(Path(out), config, sampler, resume)
        _drive(config, policy, sampler, store, ex, Path(out), progress)
    finally:
        if own_executor:
            ex.close()
    store.compact()
    completed = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    store.update_manifest(complete=True, completed=completed)
    df = store.read()
    df.attrs["elapsed"] = time.perf_counter() - started
    df.attrs["resumed"] = resumed
    df.attrs["lhs_discrepancy"] = sampler.discrepancy
    return df


def _drive(
    config: SweepConfig, policy: str | PolicyPayload, sampler: TwoStageSampler, store: SweepStore, ex: Executor,
    out: Path, progress: bool | None,
) -> None:
    batches, finished = _planned_batches(store, out)
    success = dict(zip(finished["id"].tolist(), finished["success"].astype(bool).tolist())) if len(finished) else {}
    bar = progress_bar(progress, total=sampler.n_total, initial=len(success), desc="sweep", unit="ep")
    n_errors = int(errored(finished).sum()) if len(finished) else 0
    writer = StoreWriter(store, bar, len(success), sum(not s for s in success.values()) - n_errors, n_errors)
    shown: set[str] = set()
    try:
        next_id, batch = 0, 0
        while True:
            stage = sampler.stage
            if batch in batches:  # replay a planned batch
                rows = batches.pop(batch)
                params = _ask(sampler, len(rows), replay=True, shown=shown)
                trials = _replayed_trials(rows, params, next_id, batch, stage, config, policy, out)
            else:
                if batches:
                    raise ValueError(f"cannot resume {out}: its plan skips batch {batch}")
                params = _ask(sampler, None, replay=False, shown=shown)
                if not params:
                    break
                trials = [
                    Trial(id=i, env_id=config.env_id, policy=policy, params=p,
                          seed=trial_seed(config.seed, i), stage=stage, batch=batch)
                    for i, p in enumerate(params, start=next_id)
                ]
                store.plan([t.plan_row() for t in trials])
            todo = [t for t in trials if t.id not in success]
            if todo:
                for record in ex.imap_unordered(todo):
                    success[record["id"]] = bool(record["success"])
                    writer.add(record)
                writer.flush()
            sampler.tell([t.params for t in trials], [success[t.id] for t in trials])
            next_id += len(trials)
            batch += 1
    finally:
        try:
            writer.close()
        finally:
            bar.close()


# ---------------------------------------------------------------------------- the gate's runs


# ------------------------------------------------------------------------------- summaries


