"""Run a policy on a scenario suite: on the executors, resumable, with per-scenario and per-category success.

:func:`run_suite` plans every episode of the suite in a store (the sweep's crash-safe folder of
Parquet parts, :class:`~robogate.datasets.store.SweepStore`), runs the unfinished ones in the suite's
shuffled run order on an executor, and appends each finished record as it arrives; a run killed
at any moment continues with ``resume=True`` and ends with the same table. The folder then
holds::

    manifest.json      the env, the policy, the suite (its content and digest), versions
    plan/ results/     one row per episode: id, scenario, category, episode, the scene, seed, outcome, ...
    eval_info.json     LeRobot's evaluation keys: per scenario (per_task), per category (per_group), overall
    report/            report.html (self-contained) and report.md

Rates leave out ``error`` episodes (the policy raised, the simulation diverged): a broken
harness says nothing about the policy; their count and first message are reported instead.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from robogate._utils.console import progress_bar
from robogate._utils.versions import versions
from robogate.analysis.stats import wilson
from robogate.datasets.stages import errored, first_error
from robogate.datasets.store import StoreWriter, SweepStore
from robogate.envs.scene import default_space
from robogate.execution.executors import Executor, using_executor
from robogate.execution.specs import validate_policy_spec
from robogate.execution.trial import Trial, cached_env, check_clock, env_space, validate_env_id
from robogate.scenarios.space import ParameterSpace
from robogate.suites.suite import Suite, load_suite

__all__ = ["MANIFEST_KIND", "SuiteRun", "finish_run", "load_suite_run", "open_run", "run_episodes",
           "run_suite", "stored_settings"]

#: The ``kind`` of a suite run's manifest.
MANIFEST_KIND = "robogate-suite-run"
EVAL_INFO = "eval_info.json"
_RESUMES = (False, True, "allow")


def _mix(outcomes: Iterable[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in Counter(outcomes).most_common())


# ----------------------------------------------------------------------------------- result


@dataclass
class SuiteRun:
    """A policy's run on a suite, finished or partial.

    Attributes
    ----------
    path : Path
        The run's folder.
    suite : Suite
    env_id, policy : str
    table : pandas.DataFrame
        One row per finished episode, by ``id`` (the episode's index in the suite): ``scenario``,
        ``category``, ``episode``, the parameters, ``seed``, ``outcome``, ``success``, ``steps``, ...
    """

    path: Path
    suite: Suite
    env_id: str
    policy: str
    table: pd.DataFrame

    @property
    def complete(self) -> bool:
        """Every episode of the suite has finished."""
        return len(self.table) == len(self.suite.episodes())

    @property
    def errors(self) -> pd.DataFrame:
        """The episodes that errored (the policy raised, the simulation diverged)."""
        return self.table[errored(self.table)]

    def _rows(self, groups: Sequence[tuple[str, pd.DataFrame]], confidence: float) -> list[dict[str, Any]]:
        rows = []
        for name, part in groups:
            judged = part[~errored(part)]
            n, k = len(judged), int(judged["success"].astype(bool).sum()) if len(judged) else 0
            low, high = wilson(k, n, confidence)
            rows.append({"name": name, "n": n, "successes": k, "rate": k / n if n else float("nan"),
                         "ci_low": low, "ci_high": high, "errors": len(part) - n, "outcomes": _mix(part["outcome"])})
        return rows

    def by_scenario(self, confidence: float = 0.95) -> pd.DataFrame:
        """Per scenario (file order): ``scenario``, ``category``, ``scene``, ``n``, ``successes``, ``rate``,
        Wilson ``ci_low`` / ``ci_high``, ``errors`` and the ``outcomes`` mix."""
        df = self.table
        groups = [(s.id, df[df["scenario"] == s.id] if len(df) else df) for s in self.suite.scenarios]
        rows = self._rows(groups, confidence)
        for row, s in zip(rows, self.suite.scenarios):
            row.update(category=s.category, scene=s.describe(self.suite.space))
        out = pd.DataFrame(rows).rename(columns={"name": "scenario"})
        return out[["scenario", "category", "scene", "n", "successes", "rate", "ci_low", "ci_high", "errors",
                    "outcomes"]]

    def by_category(self, confidence: float = 0.95) -> pd.DataFrame:
        """Per category (declared order), then ``all``: ``n``, ``successes``, ``rate``, Wilson interval,
        the category's ``target`` band, ``errors`` and the ``outcomes`` mix."""
        df = self.table
        names = list(self.suite.categories)
        groups = [(c, df[df["category"] == c] if len(df) else df) for c in names] + [("all", df)]
        out = pd.DataFrame(self._rows(groups, confidence)).rename(columns={"name": "category"})
        out["target"] = [self.suite.categories[c].target if c in self.suite.categories else None
                         for c in out["category"]]
        return out[["category", "n", "successes", "rate", "ci_low", "ci_high", "target", "errors", "outcomes"]]

    def eval_info(self) -> dict[str, Any]:
        """LeRobot's evaluation summary: ``per_task`` (scenarios), ``per_group`` (categories) and ``overall``,
        each with ``n_episodes``, ``n_success``, ``pc_success`` and ``pc_success_ci95`` (Wilson, percent)."""

        def entry(row: Mapping[str, Any]) -> dict[str, Any]:
            pct = lambda x: None if np.isnan(x) else round(100 * float(x), 4)  # noqa: E731
            return {"n_episodes": int(row["n"]), "n_success": int(row["successes"]), "pc_success": pct(row["rate"]),
                    "pc_success_ci95": [pct(row["ci_low"]), pct(row["ci_high"])], "n_errors": int(row["errors"])}

        categories = self.by_category()
        return {
            "suite": self.suite.label, "suite_digest": self.suite.digest, "env_id": self.env_id, "policy": self.policy,
            "complete": self.complete,
            "per_task": [{"task_group": r["category"], "task_id": r["scenario"], **entry(r)}
                         for r in self.by_scenario().to_dict("records")],
            "per_group": {r["category"]: entry(r) for r in categories.to_dict("records") if r["category"] != "all"},
            "overall": entry(categories[categories["category"] == "all"].iloc[0]),
        }

    def summary(self) -> str:
        """A few lines for the terminal: per category and overall, with intervals."""
        lines = [f"{self.policy} on {self.suite.label} ({self.env_id}): {len(self.table)} of "
                 f"{len(self.suite.episodes())} episodes"]
        for r in self.by_category().to_dict("records"):
            target = f"  target {r['target'][0]:.0%}–{r['target'][1]:.0%}" if r["target"] else ""
            rate = f"{r['rate']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]" if r["n"] else "n/a"
            lines.append(f"  {r['category']:<22} {r['successes']:>4}/{r['n']:<4} {rate}{target}")
        errors = self.errors
        if len(errors):
            lines.append(f"  {len(errors)} episodes errored (a broken harness, left out of the rates); first: "
                         f"{first_error(errors)}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------- storage


def _manifest(env_id: str, policy: str, suite: Suite) -> dict[str, Any]:
    return {"kind": MANIFEST_KIND, "env_id": env_id, "policy": policy, "suite_label": suite.label,
            "suite_digest": suite.digest, "suite": suite.to_dict(), "space": suite.space.to_dict(),
            "versions": versions(cached_env(env_id)), "complete": False}


def load_suite_run(path: str | os.PathLike) -> SuiteRun:
    """A suite run's folder (finished or partial) as a :class:`SuiteRun`.

    Raises
    ------
    ValueError
        If the folder holds no suite run, or its stored suite no longer gives the scenes it ran.
    robogate.datasets.store.StoreError
        For a missing folder or a corrupt part.
    """
    store = SweepStore.open(path)
    manifest = store.manifest
    if manifest.get("kind") != MANIFEST_KIND:
        raise ValueError(f"{path} holds no suite run (its manifest is not a robogate suite run's)")
    space = ParameterSpace.from_dict(manifest["space"]) if "space" in manifest else default_space()
    suite = load_suite(manifest["suite"], space)
    if suite.digest != manifest.get("suite_digest"):
        raise ValueError(f"{path}: this robogate builds other scenes from the stored suite {suite.label} "
                         f"(digest {suite.digest}, stored {manifest.get('suite_digest')})")
    table = store.read()
    if len(table):
        table = table.set_index("id", drop=False).rename_axis(None)
    return SuiteRun(Path(path), suite, manifest["env_id"], manifest["policy"], table)


def stored_settings(out: str | os.PathLike) -> dict[str, Any]:
    """The ``env_id``, ``policy`` and ``suite`` of the run stored in ``out``: what resuming it continues.

    Raises
    ------
    ValueError
        Naming the folder when it holds no suite run.
    """
    path = Path(out)
    if not (path / "manifest.json").is_file():
        raise ValueError(f"cannot resume {path}: it holds no suite run; check the path, or leave out --resume")
    run = load_suite_run(path)
    return {"env_id": run.env_id, "policy": run.policy, "suite": run.suite}


def open_run(out: Any, env_id: str, policy: str, suite: Suite, resume: Any) -> SweepStore:
    """Create a run's store at ``out`` with every episode planned, or open the one there to continue.

    ``resume``: True (a run must be there, with the same env, policy and suite), ``"allow"``
    (continue one if there is one), False (``out`` must not hold one).

    Raises
    ------
    ValueError
        Naming the folder and what is wrong with it.
    """
    if resume not in _RESUMES:
        raise ValueError(f"resume must be True, False or 'allow', got {resume!r}")
    if not isinstance(out, (str, os.PathLike)) or not str(out):
        raise ValueError(f"out must be a folder path, got {out!r}")
    path = Path(out)
    if path.is_dir() and (path / "manifest.json").exists():
        if resume is False:
            raise ValueError(f"out folder {path} already holds a suite run; continue it with resume=True (--resume) "
                             "or choose a new folder")
        store = SweepStore.open(path)
        stored = store.manifest
        if stored.get("kind") != MANIFEST_KIND:
            raise ValueError(f"cannot resume {path}: it holds no suite run")
        wanted = _manifest(env_id, policy, suite)
        for key in ("env_id", "policy", "suite_label", "suite_digest"):
            if stored.get(key) != wanted[key]:
                raise ValueError(f"cannot resume {path}: {key} differs (stored {stored.get(key)!r}, requested "
                                 f"{wanted[key]!r}); use the stored run's settings or a new out folder")
        store.cleanup()
        return store
    if resume is True:
        raise ValueError(f"cannot resume {path}: it holds no suite run; check the path, or leave out --resume")
    if path.is_dir() and any(not p.name.startswith(".") for p in path.iterdir()):
        raise ValueError(f"out folder {path} exists, is not empty and holds no suite run; choose a new folder")
    plan = [{"id": e.index, "scenario": e.scenario, "category": e.category, "episode": e.episode, "seed": e.seed,
             **e.params} for e in suite.episodes()]
    store = SweepStore.create(path, _manifest(env_id, policy, suite))
    store.plan(plan)
    return store


def run_episodes(store: SweepStore, suite: Suite, env_id: str, policy: str, ids: Sequence[int], ex: Executor,
                 progress: bool | None, desc: str) -> None:
    """Run the episodes ``ids`` of a run that have not finished, in that order, appending each record as it
    arrives (the sweep's :class:`~robogate.datasets.store.StoreWriter`). Trials carry stage 0 and batch 0, which a
    suite does not use and does not store."""
    episodes = suite.episodes()
    done = store.finished_ids()
    todo = [episodes[i] for i in ids if i not in done]
    if not todo:
        return
    bar = progress_bar(progress, total=len(todo), desc=desc, unit="ep")
    writer = StoreWriter(store, bar, 0, 0, 0)
    by_id = {e.index: e for e in todo}
    try:
        trials = [Trial(id=e.index, env_id=env_id, policy=policy, params=e.params, seed=e.seed, stage=0, batch=0)
                  for e in todo]
        for record in ex.imap_unordered(trials):
            e = by_id[record["id"]]
            record = {k: v for k, v in record.items() if k not in ("stage", "batch")}
            writer.add({"id": e.index, "scenario": e.scenario, "category": e.category, "episode": e.episode,
                          **{k: v for k, v in record.items() if k != "id"}})
    finally:
        try:
            writer.close()
        finally:
            bar.close()


def finish_run(store: SweepStore) -> SuiteRun:
    """Compact a run's store, mark it complete if it is, and write its ``eval_info.json``."""
    store.compact()
    run = load_suite_run(store.path)
    if run.complete and not store.manifest.get("complete"):
        completed = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        store.update_manifest(complete=True, completed=completed)
    (store.path / EVAL_INFO).write_text(json.dumps(run.eval_info(), indent=1) + "\n", encoding="utf-8")
    return run


def run_suite(
    env_id: str,
    policy: str,
    suite: str | os.PathLike | Mapping[str, Any] | Suite = "robogate-68",
    out: str | os.PathLike | None = None,
    *,
    executor: str | Executor = "local",
    workers: int | None = None,
    address: str | None = None,
    resume: bool | str = False,
    progress: bool | None = None,
) -> SuiteRun:
    """Run a policy on every episode of a suite and write ``eval_info.json`` (LeRobot's evaluation keys).

    Its report is :func:`robogate.reports.suite.write_suite_report` (``robogate suite run`` writes it).

    Parameters
    ----------
    env_id : str
        A Gymnasium env id: one of ``robogate.ENV_IDS``, or an env of your own (``module:EnvId``).
    policy : str
        Policy spec (``"scripted"``, ``"flow"``, ``"flow:PATH"``, ``"package.module:Factory"``).
    suite : str, path, mapping or Suite, default "robogate-68"
        A shipped suite's name, a suite file, or a suite (see :func:`robogate.suites.suite.load_suite`),
        checked against the env's scenario space (``robogate-68`` is for robogate's envs).
    out : path
        The run's folder (created; must not hold files unless resuming).
    executor, workers, address
        Where episodes run, as for :func:`robogate.sweep.run.run_sweep`.
    resume : bool or "allow", default False
        True: continue the run stored at ``out`` (same env, policy and suite); "allow": continue
        it if there is one, else start; False: ``out`` must not hold a run.
    progress : bool or None
        Draw a progress bar on stderr (None: only when stderr is a terminal).

    Returns
    -------
    SuiteRun

    Raises
    ------
    ValueError
        Before any work: unknown env, policy or suite, a bad suite file or a scenario outside the
        env's space, an out folder that holds files (without ``resume``) or another run (with
        ``resume``). A run that fails before any episode has finished leaves no folder behind.
    """
    env_id, policy = validate_env_id(env_id), validate_policy_spec(policy)
    suite = load_suite(suite, env_space(env_id))
    check_clock(env_id)
    if out is None:
        raise ValueError("run_suite needs an out folder for the run")
    with using_executor(executor, workers, address) as ex:
        new = not (Path(out) / "manifest.json").exists()
        store = open_run(out, env_id, policy, suite, resume)
        try:
            run_episodes(store, suite, env_id, policy, suite.run_order(), ex, progress, desc=f"suite {suite.name}")
        except BaseException:
            if new and not store.finished_ids():  # only the plan the suite gives: nothing to keep
                shutil.rmtree(store.path, ignore_errors=True)
            raise
    return finish_run(store)
