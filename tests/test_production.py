"""The production loop on a lab's own env (tests/mylab_envs.py): attempts until success, a reset after each
failure, and an alarm that stops the attempt and retries on the next seed of the same scene."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from robogate._utils.seeding import trial_seed
from robogate.monitor import FailureMonitor, paired_makespan, record_rollouts, run_production
from robogate.monitor.makespan import estimate_makespan

TESTS = Path(__file__).resolve().parent
# The lab's module importable, as a lab's installed package would be: at collection, so that worker processes
# spawned later (the pool shared by the whole test run) find it too.
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

ENV, POLICY = "mylab_envs:Slide-v0", "mylab_envs:SlidePolicy"
HZ = 50.0
CALIBRATION = {"friction": (0.45, 1.0), "mass": (0.2, 1.0), "latency": 0, "surface": "dry"}
"""Where the lab's controller does not fail: the monitor's successful calibration rollouts come from here."""
RESET = 1.5


def scenes(n, seed):
    """Half of them like the calibration scenes, half on a slipperier or laggier surface where the puck
    overshoots (the controller fails there some of the time, not always)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        scene = {"friction": float(rng.uniform(0.45, 1.0)), "mass": float(rng.uniform(0.2, 1.0)), "latency": 0,
                 "surface": "dry", "distance": float(rng.uniform(0.5, 1.2))}
        if i % 2:
            scene.update(friction=float(rng.uniform(0.3, 0.45)), latency=int(rng.integers(1, 3)))
        out.append(scene)
    return out


@pytest.fixture(scope="module")
def monitor():
    from robogate.execution.trial import env_space
    from robogate.scenarios.envelope import Envelope

    envelope = Envelope(env_space(ENV), CALIBRATION, rest="free")
    calibration = record_rollouts(ENV, POLICY, episodes=60, params=envelope.sample(60, 1), seed=1, progress=False)
    return FailureMonitor(alpha=0.2).fit(calibration)


@pytest.fixture(scope="module")
def baseline():
    return run_production(ENV, POLICY, tasks=24, params=scenes(24, 0), seed=2, reset_time=RESET, max_attempts=6,
                          record=True)


@pytest.fixture(scope="module")
def watched(monitor):
    return run_production(ENV, POLICY, monitor, tasks=24, params=scenes(24, 0), seed=2, reset_time=RESET,
                          max_attempts=6)


def test_each_task_is_attempted_until_it_succeeds_on_new_seeds_of_its_scene(baseline):
    a, t = baseline.attempts, baseline.tasks
    assert baseline.control_hz == HZ and baseline.monitor is None and not a["stopped"].any()
    for task, rows in a.groupby("task"):
        task_seed = int(t.loc[t["task"] == task, "seed"].iloc[0])
        assert list(rows["attempt"]) == list(range(len(rows)))
        assert list(rows["seed"]) == [trial_seed(task_seed, k) for k in range(len(rows))]
        assert not rows["success"].iloc[:-1].any()  # it stops at the first success...
        assert rows["success"].iloc[-1] or len(rows) == baseline.max_attempts  # ...or when the budget is spent
        assert rows["distance"].nunique() == 1  # one scene per task
    assert (~a["success"]).any() and a.groupby("task").size().max() > 1  # the mix fails now and then
    assert np.allclose(a["sim_time"], a["steps"] / HZ)
    assert np.allclose(a["reset"], np.where(a["success"], 0.0, RESET))
    assert np.allclose(t["time"], a.groupby("task")["time"].sum())
    assert baseline.makespan == pytest.approx(t["time"].sum() / t["completed"].sum())
    assert len(baseline.rollouts) == len(a) and all(r.control_hz == HZ for r in baseline.rollouts)


def test_an_alarm_stops_the_attempt_where_the_monitor_run_offline_alarms(baseline, watched, monitor):
    # The monitor only watches until it alarms, so attempt k of a task runs as it did without it: the live
    # loop's alarms are exactly those of the monitor replayed on the recorded attempts of the same seeds.
    a = watched.attempts
    assert a["stopped"].any() and (~a["stopped"]).any()
    recorded = dict(zip(zip(baseline.attempts["task"], baseline.attempts["attempt"]), baseline.rollouts))
    compared = 0
    for row in a.itertuples():
        rollout = recorded.get((row.task, row.attempt))
        if rollout is None:
            continue  # the monitored loop needed more attempts than the unmonitored one
        alarm = monitor.trace(rollout).alarm_step
        if row.stopped:
            assert row.outcome == "stopped" and not row.success
            assert alarm == row.alarm_step == row.steps and row.sim_time == pytest.approx(row.steps / HZ)
        else:
            assert alarm is None and np.isnan(row.alarm_step)
            assert row.success == rollout.success and row.steps == rollout.steps
        compared += 1
    assert compared >= len(baseline.attempts) // 2
    assert watched.monitor == monitor.describe()


def test_the_paired_comparison_and_the_closed_form_on_the_same_attempts(baseline, watched, monitor):
    paired = paired_makespan(baseline, watched, n_boot=500)
    assert paired.baseline == baseline.makespan and paired.candidate == watched.makespan
    assert paired.saving == pytest.approx(baseline.makespan - watched.makespan)
    for value, (low, high) in ((paired.saving, paired.interval), (paired.baseline, paired.baseline_interval)):
        assert low <= value <= high
    # Run to the end, the closed form on a run's own attempts is that run's measured makespan.
    estimate = estimate_makespan(baseline.rollouts, monitor, reset=RESET, n_boot=50)
    assert estimate.run_to_end == pytest.approx(baseline.makespan)
    cheaper = baseline.with_reset(0.5)
    assert cheaper.tasks["time"].sum() == pytest.approx(
        baseline.tasks["time"].sum() - 1.0 * (~baseline.attempts["success"]).sum())
    assert estimate_makespan(baseline.rollouts, reset=0.5, n_boot=5).run_to_end == pytest.approx(cheaper.makespan)
    same = paired_makespan(baseline, baseline, n_boot=50)
    assert same.saving == 0.0 and same.interval == (0.0, 0.0)


def test_the_same_run_on_worker_processes(baseline, local_pool):
    again = run_production(ENV, "mylab_envs:SlidePolicy", tasks=24, params=scenes(24, 0), seed=2, reset_time=RESET,
                           max_attempts=6, executor=local_pool)
    columns = [c for c in baseline.attempts.columns if c != "wall_time"]
    pd.testing.assert_frame_equal(again.attempts[columns], baseline.attempts[columns])


@pytest.mark.slow
def test_a_policy_object_and_a_monitor_travel_to_workers(watched, monitor, local_pool):
    from mylab_envs import SlidePolicy

    again = run_production(ENV, SlidePolicy(), monitor, tasks=24, params=scenes(24, 0), seed=2, reset_time=RESET,
                           max_attempts=6, executor=local_pool)
    columns = [c for c in watched.attempts.columns if c != "wall_time"]
    pd.testing.assert_frame_equal(again.attempts[columns], watched.attempts[columns])


def test_bad_setups_are_one_line_errors(monitor, baseline):
    with pytest.raises(ValueError, match="record a run without the monitor"):
        run_production(ENV, POLICY, monitor, tasks=2, record=True)
    with pytest.raises(ValueError, match="reset"):
        run_production(ENV, POLICY, tasks=2, reset_time=-1.0)
    with pytest.raises(ValueError, match="ended in error"):
        run_production(ENV, "tests.helpers:RaisingPolicy", tasks=2)
    other = run_production(ENV, POLICY, tasks=3, params=scenes(3, 0), seed=9, reset_time=RESET, max_attempts=2)
    with pytest.raises(ValueError, match="same tasks"):
        paired_makespan(baseline, other)
    from robogate.monitor.production import MonitoredAttempt

    with pytest.raises(ValueError, match="FailureMonitor"):
        MonitoredAttempt.of("not a monitor")
