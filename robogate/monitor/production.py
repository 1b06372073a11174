"""A production cell in simulation: attempt each task until it succeeds, with or without stopping on the monitor's alarm.

:func:`run_production` gives each task a scene and attempts it, again and again on new seeds of
the same scene, until an attempt succeeds or the attempt budget is spent; every attempt that does
not succeed costs a reset. With a :class:`~robogate.monitor.FailureMonitor` an alarm stops the
attempt at once (:class:`~robogate.monitor.MonitoredEnv` with ``on_alarm="stop"``) and the cell
resets and tries again; without one every attempt runs to its end. Task ``j``'s attempt ``k``
always runs the same seed, so two runs of the same tasks, one with the monitor and one without,
are paired: :func:`paired_makespan` compares them task by task.

Times are seconds of simulated time, from the env's control rate
(:func:`robogate.scenarios.env_contract.control_hz`), so any env that reports ``info["success"]`` and
declares its rate runs here, a lab's own included. Attempts run on the executors as rollouts do,
round by round (every unfinished task's next attempt in one batch), with a policy spec or a
policy object alike.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from robogate._utils.checks import check_int, check_level
from robogate._utils.console import progress_bar
from robogate._utils.seeding import trial_seed
from robogate.execution.episode import RECORD_FIELDS, EpisodeRecording, run_episode
from robogate.execution.executors import Executor, using_executor
from robogate.execution.specs import cached_policy, label_of, policy_reference
from robogate.execution.trial import Trial, cached_env, env_space, validate_env_id
from robogate.monitor.makespan import _check_reset, _interval, _resamples
from robogate.monitor.monitor import FailureMonitor
from robogate.monitor.recording import capture_for, rollout_scenarios
from robogate.monitor.rollout import Rollout
from robogate.monitor.wrappers import MonitoredEnv
from robogate.scenarios.env_contract import control_hz, training_envelope

__all__ = ["STOPPED", "MonitoredAttempt", "PairedMakespan", "ProductionRun", "paired_makespan", "run_production"]

STOPPED = "stopped"
"""The outcome of an attempt the monitor stopped (:class:`~robogate.monitor.MonitoredEnv`'s own)."""

_MONITORS: dict[str, FailureMonitor] = {}
"""Per process: the monitors attempts have unpacked, by digest (a worker unpacks each once)."""


@dataclass(frozen=True)
class MonitoredAttempt:
    """One attempt watched by a failure monitor and stopped at its first alarm: what a
    :class:`~robogate.execution.trial.Trial` runs in place of :func:`robogate.run_episode`.

    The monitor travels packed (pickled here, in the process that fitted it; unpacked once per
    worker and cached by its digest), so it runs on any executor.

    Attributes
    ----------
    blob : bytes
        The pickled monitor.
    key : str
        Its SHA-256 digest.
    """

    blob: bytes = field(repr=False)
    key: str

    @classmethod
    def of(cls, monitor: FailureMonitor) -> MonitoredAttempt:
        """Pack a fitted ``monitor``."""
        if not isinstance(monitor, FailureMonitor):
            raise ValueError(f"monitor must be a fitted FailureMonitor, got {type(monitor).__name__}")
        monitor._check_fitted()
        try:
            blob = pickle.dumps(monitor, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise ValueError(f"the monitor cannot be sent to worker processes ({type(exc).__name__}: {exc}); "
                             "run with workers=1") from None
        return cls(blob, hashlib.sha256(blob).hexdigest())

    def monitor(self) -> FailureMonitor:
        """The monitor, unpacked once in this process."""
        monitor = _MONITORS.get(self.key)
        if monitor is None:
            monitor = _MONITORS[self.key] = pickle.loads(self.blob)
        return monitor

    def __call__(self, env: Any, policy: Any, params: dict, seed: int) -> dict[str, Any]:
        """Run the attempt: the flat record of :func:`robogate.run_episode` plus ``alarm_step``.

        A stopped attempt has outcome :data:`STOPPED`; its ``steps`` and ``sim_time`` count the
        actions executed before the alarm (the step the alarm fired on executes none).
        """
        watched = MonitoredEnv(env, policy, self.monitor(), on_alarm="stop")
        seen: dict[str, Any] = {}
        record = run_episode(watched, policy, params, seed, on_step=lambda obs, action, info: seen.update(info))
        alarm = seen.get("alarm_step")
        record["alarm_step"] = np.nan if alarm is None else int(alarm)
        if record["outcome"] == STOPPED:
            rate = control_hz(env)
            record["steps"] = int(alarm)
            record["sim_time"] = alarm / rate if rate else float("nan")
        return record


ATTEMPT_COLUMNS = ["task", "attempt", "seed", "outcome", "success", "stopped", "alarm_step", "steps", "sim_time",
                   "reset", "time", "wall_time"]
"""The first columns of :attr:`ProductionRun.attempts`; the scene's parameters follow."""
TASK_COLUMNS = ["task", "seed", "attempts", "completed", "time"]
"""The first columns of :attr:`ProductionRun.tasks`; the scene's parameters follow."""


@dataclass(frozen=True, eq=False)
class ProductionRun:
    """What a production run did: every attempt, every task, and the makespan.

    Attributes
    ----------
    env_id, policy : str
        The env and the policy (its spec, or ``<module.Class object>``).
    monitor : str or None
        The monitor's :meth:`~robogate.monitor.FailureMonitor.describe`, None without one.
    reset_time : float
        Seconds charged after every attempt that did not succeed.
    max_attempts : int
        The attempt budget per task.
    control_hz : float
        The env's control rate.
    attempts : DataFrame
        One row per attempt (:data:`ATTEMPT_COLUMNS`, then the scene's parameters): ``stopped``
        when the monitor's alarm ended it, ``alarm_step`` the step it fired on (NaN without),
        ``sim_time`` the seconds it ran, ``reset`` the reset charged after it, ``time`` both.
    tasks : DataFrame
        One row per task (:data:`TASK_COLUMNS`, then its scene): ``time`` is everything its
        attempts and resets took; ``completed`` whether one attempt succeeded within the budget.
    recordings : list of EpisodeRecording, optional
        Every attempt's steps, in the order of ``attempts``, when the run recorded them.
    """

    env_id: str
    policy: str
    monitor: str | None
    reset_time: float
    max_attempts: int
    control_hz: float
    attempts: pd.DataFrame = field(repr=False)
    tasks: pd.DataFrame = field(repr=False)
    recordings: list[EpisodeRecording] | None = field(default=None, repr=False)

    @property
    def completed(self) -> int:
        """Tasks completed within the budget."""
        return int(self.tasks["completed"].sum())

    @property
    def makespan(self) -> float:
        """Seconds per completed task: the time of every attempt and reset over the tasks completed
        (infinite when none was)."""
        done = self.completed
        return float(self.tasks["time"].sum() / done) if done else float("inf")

    @property
    def rollouts(self) -> list[Rollout]:
        """The attempts as labelled rollouts (for :func:`~robogate.monitor.makespan.choose_threshold`), when recorded."""
        if self.recordings is None:
            raise ValueError("this run recorded no rollouts: run it with record=True (and no monitor)")
        return [Rollout.from_recording(r, self.control_hz) for r in self.recordings if r.steps]

    def with_reset(self, reset_time: float) -> ProductionRun:
        """The same attempts accounted with another reset time: the loop never waits on the reset to decide
        anything, so one run answers for every reset time."""
        reset_time = _check_reset(reset_time)
        attempts = self.attempts.copy()
        attempts["reset"] = np.where(attempts["success"], 0.0, reset_time)
        attempts["time"] = attempts["sim_time"] + attempts["reset"]
        tasks = self.tasks.copy()
        tasks["time"] = attempts.groupby("task", sort=True)["time"].sum().reindex(tasks["task"]).to_numpy()
        return replace(self, reset_time=reset_time, attempts=attempts, tasks=tasks)

    def summary(self) -> dict[str, Any]:
        """Tasks, completed tasks, attempts, stopped attempts, successes, the makespan and the attempts' failure share."""
        a = self.attempts
        return {"tasks": len(self.tasks), "completed": self.completed, "attempts": len(a),
                "stopped": int(a["stopped"].sum()), "successes": int(a["success"].sum()),
                "failed_share": float(1.0 - a["success"].mean()), "makespan": self.makespan}


def _attempt_row(task: int, attempt: int, record: dict[str, Any], reset_time: float) -> dict[str, Any]:
    success = bool(record["success"])
    reset = 0.0 if success else reset_time
    params = {k: v for k, v in record.items() if k not in RECORD_FIELDS and k not in
              ("id", "stage", "batch", "policy", "recording", "alarm_step")}
    return {"task": task, "attempt": attempt, "seed": int(record["seed"]), "outcome": record["outcome"],
            "success": success, "stopped": record["outcome"] == STOPPED,
            "alarm_step": float(record.get("alarm_step", np.nan)), "steps": int(record["steps"]),
            "sim_time": float(record["sim_time"]), "reset": reset, "time": float(record["sim_time"]) + reset,
            "wall_time": float(record["wall_time"]), **params}


def run_production(
    env_id: str,
    policy: Any,
    monitor: FailureMonitor | None = None,
    *,
    tasks: int = 50,
    params: Any = None,
    seed: int = 0,
    reset_time: float = 0.0,
    max_attempts: int = 20,
    record: bool = False,
    executor: str | Executor = "local",
    workers: int | None = 1,
    address: str | None = None,
    progress: bool | None = None,
) -> ProductionRun:
    """Attempt each of ``tasks`` tasks until it succeeds or ``max_attempts`` are spent, stopping on alarm with a monitor.

    Parameters
    ----------
    env_id : str
        A Gymnasium env id (one of ``robogate.ENV_IDS`` or ``module:EnvId``) that declares its
        control rate.
    policy : str or policy object
        A spec (``"flow"``, ``"scripted"``, ``"package.module:Factory"``) or any policy object.
    monitor : FailureMonitor, optional
        Stop an attempt at its first alarm and try again. None: every attempt runs to its end.
    tasks : int
        How many tasks.
    params : None, dict, list of dict or DataFrame
        The scene of each task, as for :func:`~robogate.monitor.record_rollouts` (None: a Latin
        Hypercube over the policy's training envelope; a list or table: one row per task).
    seed : int
        Seeds the scenes and the attempts: task ``j`` gets seed ``trial_seed(seed, j)`` and its
        attempt ``k`` runs seed ``trial_seed(task seed, k)``, whether or not a monitor watches.
    reset_time : float
        Seconds charged after every attempt that does not succeed (a stopped one included).
    max_attempts : int
        The attempt budget per task.
    record : bool
        Keep every attempt's steps (``recordings``, ``rollouts``): labelled rollouts drawn as the
        cell draws attempts. Only without a monitor (a stopped attempt is cut short).
    executor, workers, address, progress
        Where attempts run and whether to draw a progress bar, as for
        :func:`~robogate.monitor.record_rollouts`; the same run comes back whatever runs it.

    Returns
    -------
    ProductionRun

    Raises
    ------
    ValueError
        For bad arguments, an env that declares no control rate, a policy the monitor cannot
        read, and when an attempt ended in ``error`` (the policy raised: a broken harness).

    Examples
    --------
    >>> run = run_production("robogate/PickPlace-Panda-v0", "flow", monitor, tasks=100, reset_time=2.0)  # doctest: +SKIP
    >>> run.makespan, run.summary()["stopped"]                                                          # doctest: +SKIP
    """
    env_id = validate_env_id(env_id)
    tasks, max_attempts = check_int(tasks, "tasks", minimum=1), check_int(max_attempts, "max_attempts", minimum=1)
    reset_time = _check_reset(reset_time)
    if record and monitor is not None:
        raise ValueError("record=True keeps whole attempts, and a monitor cuts them short: record a run without the "
                         "monitor, then apply the monitor to its rollouts offline (choose_threshold, estimate_makespan)")
    env = cached_env(env_id)
    rate = control_hz(env)
    if rate is None:
        raise ValueError(f"env {env_id} declares no control rate, so its attempts have no duration: declare "
                         "metadata['render_fps'] or a control_hz attribute (control steps per second)")
    reference = policy_reference(policy)
    probe = cached_policy(reference) if isinstance(policy, str) else policy
    attempt = None
    if monitor is not None:
        MonitoredEnv(env, probe, monitor, on_alarm="stop")  # checks the policy offers what the monitor reads
        attempt = MonitoredAttempt.of(monitor)
    capture = capture_for(probe, 0) if record else None
    envelope = getattr(probe, "envelope", None) or training_envelope(env)
    scenes = rollout_scenarios(tasks, params, seed, envelope, env_space(env_id))
    rows: list[dict[str, Any]] = []
    recordings: list[tuple[int, int, EpisodeRecording]] = []
    open_tasks = list(range(tasks))
    with (using_executor(executor, workers, address) as runner,
          progress_bar(progress, total=tasks, desc="tasks", unit="task") as bar):
        for k in range(max_attempts):
            if not open_tasks:
                break
            trials = [Trial(id=j, env_id=env_id, policy=reference, params=dict(scenes[j][0]),
                            seed=trial_seed(scenes[j][1], k), stage=0, batch=k, capture=capture, episode=attempt)
                      for j in open_tasks]
            done = []
            for result in runner.imap_unordered(trials):
                if result["outcome"] == "error":
                    first = (result.get("error") or "no message").strip().splitlines()[0]
                    raise ValueError(f"task {result['id']}'s attempt {k} ended in error (the policy raised or the "
                                     f"simulation diverged), a broken harness rather than a failure: {first}")
                rows.append(_attempt_row(result["id"], k, result, reset_time))
                if capture is not None:
                    recordings.append((result["id"], k, result["recording"]))
                if result["success"]:
                    done.append(result["id"])
                    bar.update()
            open_tasks = [j for j in open_tasks if j not in set(done)]
        bar.update(len(open_tasks))  # the tasks the budget ran out on
    attempts = pd.DataFrame(rows).sort_values(["task", "attempt"], kind="stable").reset_index(drop=True)
    names = [c for c in attempts.columns if c not in ATTEMPT_COLUMNS]
    attempts = attempts[ATTEMPT_COLUMNS + names]
    grouped = attempts.groupby("task", sort=True)
    table = pd.DataFrame({"task": np.arange(tasks), "seed": [s for _, s in scenes],
                          "attempts": grouped.size().to_numpy(), "completed": grouped["success"].any().to_numpy(),
                          "time": grouped["time"].sum().to_numpy()})
    table = pd.concat([table, pd.DataFrame([dict(p) for p, _ in scenes])], axis=1)
    ordered = None
    if capture is not None:
        ordered = [rec for _, _, rec in sorted(recordings, key=lambda item: item[:2])]
    return ProductionRun(env_id, label_of(policy), None if monitor is None else monitor.describe(), reset_time,
                         max_attempts, rate, attempts, table, ordered)


@dataclass(frozen=True)
class PairedMakespan:
    """Two production runs of the same tasks compared task by task (see :func:`paired_makespan`).

    Attributes
    ----------
    baseline, candidate : float
        Each run's makespan (seconds per completed task).
    baseline_interval, candidate_interval : (float, float)
        Their bootstrap intervals over tasks.
    saving : float
        ``baseline - candidate``: positive when the candidate (e.g. stopping on alarm) is faster.
    interval : (float, float)
        The paired bootstrap interval of the saving.
    relative_saving : float
        The saving as a share of the baseline's makespan, and ``relative_interval`` its interval.
    tasks : int
    confidence : float
    """

    baseline: float
    candidate: float
    baseline_interval: tuple[float, float]
    candidate_interval: tuple[float, float]
    saving: float
    interval: tuple[float, float]
    relative_saving: float
    relative_interval: tuple[float, float]
    tasks: int
    confidence: float


def _same_tasks(a: ProductionRun, b: ProductionRun) -> None:
    if a.env_id != b.env_id or len(a.tasks) != len(b.tasks):
        raise ValueError(f"paired_makespan compares two runs of the same tasks; these ran {len(a.tasks)} tasks on "
                         f"{a.env_id} and {len(b.tasks)} on {b.env_id}")
    params = [c for c in a.tasks.columns if c not in TASK_COLUMNS]
    same = a.tasks[["seed", *params]].reset_index(drop=True).equals(b.tasks[["seed", *params]].reset_index(drop=True))
    if not same or a.reset_time != b.reset_time:
        raise ValueError("paired_makespan compares two runs of the same tasks: run both with the same params, seed and "
                         "reset_time (their scenes, seeds or resets differ)")


def paired_makespan(
    baseline: ProductionRun, candidate: ProductionRun, *, confidence: float = 0.95, n_boot: int = 4000, seed: int = 0,
) -> PairedMakespan:
    """Compare two production runs of the same tasks (scenes and seeds), e.g. without and with stopping on alarm.

    Each run's makespan is its total time over its completed tasks; the intervals are
    percentile intervals over ``n_boot`` resamples of the tasks, the same resample for both
    runs, so the saving's interval is paired.

    Raises
    ------
    ValueError
        When the runs are not of the same tasks.
    """
    _same_tasks(baseline, candidate)
    confidence = check_level(confidence, "confidence")
    weights = _resamples(len(baseline.tasks), check_int(n_boot, "n_boot", minimum=1), check_int(seed, "seed"))

    def ratio(run: ProductionRun) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            done = weights @ run.tasks["completed"].to_numpy(dtype=float)
            return np.where(done > 0, (weights @ run.tasks["time"].to_numpy(dtype=float)) / done, np.inf)

    a, b = ratio(baseline), ratio(candidate)
    with np.errstate(invalid="ignore", divide="ignore"):
        saving, relative = a - b, (a - b) / a
    point = baseline.makespan - candidate.makespan
    return PairedMakespan(
        baseline.makespan, candidate.makespan, _interval(a, confidence), _interval(b, confidence), point,
        _interval(saving, confidence), point / baseline.makespan if np.isfinite(baseline.makespan) else float("nan"),
        _interval(relative, confidence), len(baseline.tasks), confidence)
