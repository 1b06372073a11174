"""Sweep a policy through a parameter space: sample, run in parallel, store, resume.

:func:`run_sweep` drives a :class:`~robogate.sampling.TwoStageSampler` with
ask/tell over an executor.  Every experiment gets a sequential ``id`` and the
seed :func:`~robogate.seeding.trial_seed` ``(seed, id)``.  A batch is recorded
in the store's plan before it runs, and finished records are appended in small
parts as they arrive, so a sweep killed at any moment loses at most the
episodes that were running.

Resuming replays the sampler: the planned batches are asked again in order
(each re-asked point must equal the stored plan), the stored outcomes are told
in id order, the planned-but-unfinished trials are run, and the sweep
continues.  Outcomes are always told in id order, batch by batch, so the final
table is the same whether the sweep ran in one go or was killed and resumed,
and whichever executor ran it.

:func:`run_gate` runs more experiments on a finished sweep, uniformly inside an
envelope, until the gate's verdict on it is decided.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import numbers
import os
import threading
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from robogate.checks import check_int, check_level
from robogate.console import progress_bar
from robogate.envelope import Envelope
from robogate.envs.outcomes import Outcome
from robogate.executors import Executor, make_executor
from robogate.gating import as_envelope, check_harness, evidence, name_left_out
from robogate.load import sweep_settings
from robogate.provenance import versions
from robogate.rows import STAGE_BOUNDARY, STAGE_GATE, STAGE_LHS, errored, first_error, uniform_rows
from robogate.runner import Trial, cached_env, check_clock, validate_env_id
from robogate.sampling import BAND, TwoStageSampler
from robogate.seeding import check_seed, trial_seed
from robogate.space import ParameterSpace
from robogate.specs import PolicyPayload, policy_label, validate_policy
from robogate.stats import GateDecision, decide, sequential_gate
from robogate.store import SweepStore
from robogate.sweep_config import SweepConfig

__all__ = ["RESUME_ALLOW", "Recorder", "check_resumable", "error_line", "format_summary", "run_gate", "run_sweep",
           "summarize"]

#: ``run_sweep(resume=RESUME_ALLOW)`` continues the sweep stored at ``out``, or starts one if there is none.
RESUME_ALLOW = "allow"
#: Finished records are appended at least this often (seconds) ...
FLUSH_SECONDS = 1.0
#: ... or whenever this many are waiting.
FLUSH_ROWS = 500



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


class Recorder:
    """Buffers finished records and appends them to the store in small parts.

    A background thread flushes the buffer every :data:`FLUSH_SECONDS`, so finished
    records reach the disk even while every worker is busy with a long episode.
    """

    def __init__(self, store: SweepStore, bar: Any, n_finished: int, n_failed: int, n_errors: int):
        self.store = store
        self.bar = bar
        self.buffer: list[dict] = []
        self.n_finished = n_finished
        self.n_failed = n_failed
        self.n_errors = n_errors
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._flusher = threading.Thread(target=self._flush_periodically, name="robogate-flush", daemon=True)
        self._flusher.start()

    def add(self, record: dict) -> None:
        self._raise_flush_error()
        self.n_finished += 1
        broken = record.get("outcome") == Outcome.ERROR.value
        self.n_errors += broken
        self.n_failed += not broken and not record["success"]
        if self.bar is not None:  # tqdm shows the rate; the postfix says how the policy fares
            judged = self.n_finished - self.n_errors
            postfix = f"fail {self.n_failed / judged:.1%}" if judged else "fail n/a"
            if self.n_errors:
                postfix += f", {self.n_errors} errored"
            self.bar.set_postfix_str(postfix, refresh=False)
            self.bar.update(1)
        with self._lock:
            self.buffer.append(record)
            full = len(self.buffer) >= FLUSH_ROWS
        if full:
            self.flush()

    def flush(self) -> None:
        """Append the buffered records to the store now."""
        with self._lock:
            if self.buffer:
                batch, self.buffer = self.buffer, []
                self.store.append(batch)

    def close(self) -> None:
        """Stop the flush thread and store what is left."""
        self._stop.set()
        self._flusher.join()
        self.flush()
        self._raise_flush_error()

    def _flush_periodically(self) -> None:
        while not self._stop.wait(FLUSH_SECONDS):
            try:
                self.flush()
            except BaseException as exc:  # reported by the sweep's thread
                self._error = exc
                return

    def _raise_flush_error(self) -> None:
        if self._error is not None:
            raise self._error


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
        ``env.unwrapped.parameter_space`` is a :class:`~robogate.space.ParameterSpace`, that
        takes ``reset(options={"params": ...})`` and reports ``info["success"]``; an env of
        your own as ``"module:EnvId"`` (see :func:`~robogate.runner.validate_env_id`).
    policy : str or policy object
        Policy spec (``"scripted"``, ``"flow"``, ``"flow:PATH"``, ``"package.module:Factory"``) or
        any object with ``reset()`` and ``act(obs)``, sent to every worker (see
        :class:`~robogate.specs.PolicyPayload`); the manifest then names it
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
        Seed of the sampler and, through :func:`~robogate.seeding.trial_seed`,
        of every experiment.
    executor : str or Executor, default "local"
        Where trials run: a name known to :func:`~robogate.executors.make_executor`
        (``"local"``, ``"ray"``, or one added with :func:`~robogate.executors.register`),
        or an :class:`~robogate.executors.Executor`, used as is (``workers`` and
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
    robogate.store.StoreError
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
    rec = Recorder(store, bar, len(success), sum(not s for s in success.values()) - n_errors, n_errors)
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
                    rec.add(record)
                rec.flush()
            sampler.tell([t.params for t in trials], [success[t.id] for t in trials])
            next_id += len(trials)
            batch += 1
    finally:
        try:
            rec.close()
        finally:
            bar.close()


# ---------------------------------------------------------------------------- the gate's runs


def _row_seed(sweep_seed: int, index: int) -> np.random.SeedSequence:
    """Seed of the envelope point of gate experiment ``index`` (its episode seed is ``trial_seed``)."""
    return np.random.SeedSequence(sweep_seed, spawn_key=(index, STAGE_GATE))


def run_gate(
    path: str | os.PathLike,
    envelope: Mapping[str, Any] | Envelope | None,
    max_failure_rate: float = 0.05,
    confidence: float = 0.95,
    *,
    max_experiments: int = 1000,
    batch_size: int = 20,
    policy: Any = None,
    executor: Any = "local",
    workers: int | None = None,
    address: str | None = None,
    progress: bool | None = None,
) -> GateDecision:
    """Run experiments inside an envelope until the gate's verdict is decided.

    Points are drawn uniformly inside the envelope, run on the sweep's env
    and policy, and appended to the sweep store as stage-3 rows (ids after
    the sweep's, the episode seed :func:`~robogate.seeding.trial_seed` of the
    sweep seed and the id, and an ``envelope`` column), after each batch.  The
    existing uniform evidence counts too, and every look uses the confidence
    sequence (see :func:`~robogate.stats.sequential_gate`).  A killed run loses at most the
    batch in flight; running again continues from the stored rows.

    Parameters
    ----------
    path : str or os.PathLike
        A finished sweep's folder.
    envelope, max_failure_rate, confidence
        As for :func:`robogate.gate`.
    max_experiments : int, default 1000
        At most this many new experiments.
    batch_size : int, default 20
        Experiments between looks.
    policy : policy object, optional
        The object a sweep of a policy object ran (the stored spec otherwise).
    executor, workers, address
        As for :func:`run_sweep`.
    progress : bool or None
        Draw a progress bar on stderr (None: only when stderr is a terminal).

    Returns
    -------
    GateDecision
        ``ran`` is the number of experiments run.  An errored experiment
        (already inside the envelope, or in a batch) stops the run with an
        ``"error"`` verdict.

    Raises
    ------
    ValueError
        For a bad envelope or setting, or a sweep that is not finished (its
        ids would clash with the rows the gate adds).
    """
    settings = sweep_settings(path)
    space = settings["space"]
    envelope = as_envelope(envelope, space)
    check_level(max_failure_rate, "max_failure_rate")
    check_level(confidence, "confidence")
    batch_size = check_int(batch_size, "batch_size", 1)
    max_experiments = check_int(max_experiments, "max_experiments")
    policy = validate_policy(settings["policy"] if policy is None else policy)
    if policy_label(policy) != settings["policy"]:
        raise ValueError(f"the sweep in {path} ran {settings['policy']}, not {policy_label(policy)}: the gate's "
                         "experiments must run the swept policy")
    if not settings["complete"]:
        raise ValueError(
            f"the sweep in {path} is not finished; finish it first (robogate sweep --out {path} --resume) "
            "so that the gate's experiments do not take ids it still needs"
        )
    store = SweepStore.open(path)
    df = store.read()
    rows = evidence(df, space, envelope)
    failures = int((~rows["success"].astype(bool)).sum())
    broken = check_harness(decide(failures, len(rows), max_failure_rate, confidence, sequential=True),
                            df[envelope.mask(df)])
    if broken.verdict == "error":  # no experiment is run on a broken harness
        return name_left_out(broken, envelope)
    planned = store.planned()
    next_id = int(max(df["id"].max() if len(df) else -1, planned["id"].max() if len(planned) else -1)) + 1
    next_batch = int(max(df["batch"].max() if "batch" in df and len(df) else -1,
                         planned["batch"].max() if "batch" in planned and len(planned) else -1)) + 1
    if not isinstance(executor, (str, Executor)):
        raise ValueError(f"executor must be a name or an Executor, got {type(executor).__name__}")
    own = isinstance(executor, str)
    ex = make_executor(executor, workers, address) if own else executor
    bar = progress_bar(progress, total=max_experiments, desc="gate", unit="ep")
    label = envelope.to_json()

    def draw(m: int) -> np.ndarray:
        nonlocal next_id, next_batch
        ids = range(next_id, next_id + m)
        points = envelope.points([_row_seed(settings["seed"], i) for i in ids])
        trials = [Trial(id=i, env_id=settings["env_id"], policy=policy, params=p,
                        seed=trial_seed(settings["seed"], i), stage=STAGE_GATE, batch=next_batch)
                  for i, p in zip(ids, points)]
        records = []
        for record in ex.imap_unordered(trials):
            records.append({**record, "envelope": label})
            bar.update(1)
        store.append(records)
        next_id, next_batch = next_id + m, next_batch + 1
        run_so_far.extend(records)
        if errored(pd.DataFrame(records)).any():
            raise _HarnessError
        by_id = {r["id"]: not r["success"] for r in records}
        return np.array([by_id[i] for i in ids])

    def show(failures: int, n: int) -> None:
        bar.set_postfix_str(f"{failures} of {n} failed", refresh=False)

    run_so_far: list[dict] = []  # every record draw() stored, for the verdict on an errored batch
    try:
        decision = sequential_gate(
            draw, max_failure_rate, confidence, n=len(rows), failures=failures, batch_size=batch_size,
            max_experiments=max_experiments, on_look=show,
        )
    except _HarnessError:
        batch = pd.DataFrame(run_so_far)
        new_failures = int((~batch["success"].astype(bool)).sum())
        decision = check_harness(
            decide(failures + new_failures, len(rows) + len(batch), max_failure_rate, confidence, sequential=True),
            pd.concat([df[envelope.mask(df)], batch], ignore_index=True))
        decision = dataclasses.replace(
            decision, ran=len(batch), reason=decision.reason[:-1] + f" (after running {len(batch)} experiments).")
    finally:
        bar.close()
        if own:
            ex.close()
    return name_left_out(decision, envelope)


class _HarnessError(Exception):
    """A batch of :func:`run_gate` held an errored experiment: the run stops there."""


# ------------------------------------------------------------------------------- summaries


def summarize(df: pd.DataFrame, elapsed: float | None = None) -> dict[str, Any]:
    """Summary figures of a sweep table.

    Parameters
    ----------
    df : pandas.DataFrame
        A table returned by :func:`run_sweep` (or read from its store).
    elapsed : float, optional
        Wall-clock seconds of the sweep; default ``df.attrs.get("elapsed")``.

    Returns
    -------
    dict
        ``rows``; ``success_rate``, the headline: the rate of the uniform (stage-1) rows, which stand
        for the whole space (the boundary-focused stage 2 over-samples the success band, and the
        gate's stage-3 runs sample one envelope); ``uniform_rows``, how many it is over;
        ``success_rate_by_stage`` (stage -> rate; rates leave out the experiments that errored, NaN
        if none is left), ``rows_by_stage``, ``outcomes`` (outcome -> count, most frequent first, of
        the sweep's own rows: stages 1 and 2), ``gate_outcomes`` (the same of the gate's stage-3
        rows, reported apart), ``errors`` (rows with an ``error`` outcome: the policy raised or the
        simulation diverged), ``first_error`` (the first line of the first one's message, or None),
        ``elapsed`` (seconds or None), ``episodes_per_second`` (or None) and ``lhs_discrepancy``
        (centred L2 discrepancy of the stage-1 design, if known).
    """
    if elapsed is None:
        elapsed = df.attrs.get("elapsed")
    n = len(df)
    uniform = uniform_rows(df)
    judged = uniform[~errored(uniform)]  # an errored experiment is neither a success nor a failure of the policy
    succ = judged["success"].astype(bool) if "success" in df else pd.Series([], dtype=bool)
    by_stage, rows_by_stage = {}, {}
    if "stage" in df and n:
        for stage, grp in df.groupby("stage"):
            rows_by_stage[int(stage)] = int(len(grp))
            ok = grp[~errored(grp)]["success"].astype(bool)
            by_stage[int(stage)] = float(ok.mean()) if len(ok) else math.nan
    gate = (df["stage"] == STAGE_GATE).to_numpy() if "stage" in df else np.zeros(n, dtype=bool)
    return {
        "first_error": first_error(df),
        "rows": int(n),
        "success_rate": float(succ.mean()) if len(succ) else math.nan,
        "uniform_rows": int(len(judged)),
        "success_rate_by_stage": by_stage,
        "rows_by_stage": rows_by_stage,
        "outcomes": _outcome_counts(df[~gate]),
        "gate_outcomes": _outcome_counts(df[gate]),
        "errors": int(errored(df).sum()),
        "elapsed": None if elapsed is None else float(elapsed),
        "episodes_per_second": (n / elapsed) if elapsed else None,
        "lhs_discrepancy": df.attrs.get("lhs_discrepancy"),
    }


def _outcome_counts(df: pd.DataFrame) -> dict[str, int]:
    """Outcome -> count, most frequent first."""
    if "outcome" not in df or not len(df):
        return {}
    counts = df["outcome"].value_counts()
    return {str(k): int(v) for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))}


_STAGE_NAMES = {STAGE_LHS: "uniform", STAGE_BOUNDARY: "boundary-focused", STAGE_GATE: "gate runs inside an envelope"}


def error_line(summary: Mapping[str, Any]) -> str:
    """One line on the experiments that errored (see :func:`summarize`)."""
    k, n = summary["errors"], summary["rows"]
    return (f"errors: {k} of {n} experiments errored (the policy raised or the simulation diverged: a broken "
            f"harness, not a failure of the policy); first: {summary.get('first_error')}")


def format_summary(summary: Mapping[str, Any]) -> str:
    """Render :func:`summarize` output as a few human-readable lines."""
    n = summary["rows"]

    def rate(value: float) -> str:
        return "n/a" if math.isnan(value) else f"{value:.1%}"

    def mix(counts: Mapping[str, int]) -> str:
        total = sum(counts.values())
        return ", ".join(f"{k} {v} ({v / total:.0%})" for k, v in counts.items())

    excluded = ", errored experiments left out" if summary.get("errors") else ""
    lines = [f"rows: {n}", f"success rate: {rate(summary['success_rate'])} of the {summary['uniform_rows']} uniform "
                           f"(stage-1) experiments{excluded}"]
    for stage, value in summary["success_rate_by_stage"].items():
        rows = summary.get("rows_by_stage", {}).get(stage)
        name = f" ({_STAGE_NAMES[stage]})" if stage in _STAGE_NAMES else ""
        lines.append(f"  stage {stage}: {rate(value)}" + (f" of {rows}" if rows is not None else "") + name)
    if summary["outcomes"]:
        lines.append(f"outcomes: {mix(summary['outcomes'])}")
    if summary.get("gate_outcomes"):
        lines.append(f"gate runs, apart: {mix(summary['gate_outcomes'])}")
    if summary.get("errors"):
        lines.append(error_line(summary))
    if summary.get("lhs_discrepancy") is not None and not math.isnan(summary["lhs_discrepancy"]):
        lines.append(f"stage-1 design: centred discrepancy {summary['lhs_discrepancy']:.4g}")
    if summary.get("elapsed") is not None:
        lines.append(f"elapsed: {summary['elapsed']:.1f} s")
    return "\n".join(lines)
