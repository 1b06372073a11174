"""The abort-and-retry makespan: the closed form against a simulation of the cell, its estimate from labelled
episodes, and the decision to stop on alarm."""

import re

import numpy as np
import pandas as pd
import pytest

from robogate.monitor import expected_makespan
from robogate.monitor.makespan import (
    RUN_TO_END,
    STOP_ON_ALARM,
    EpisodeTimes,
    check_decision,
    choose_threshold,
    episode_times,
    estimate_makespan,
)
from tests.monitor_synthetic import rollouts as synthetic

HZ = 10.0


def durations(rng, mean, size, shape=3.0):
    """Random durations with the given mean (gamma): the model speaks of means only."""
    return rng.gamma(shape, mean / shape, size=size)


def simulate_cell(rng, p, t_s, t_f, reset, tpr, t_af, fpr, t_as, stop, attempts=300_000):
    """Run the cell attempt by attempt; return each completed task's time (resets included).

    Every attempt succeeds with probability p; stopping on alarm, the monitor alarms on a success with
    probability fpr (at a random time of mean t_as) and on a failure with probability tpr (mean t_af),
    and the attempt ends there. Each attempt that does not succeed is followed by a reset.
    """
    success = rng.random(attempts) < p
    alarm = stop & np.where(success, rng.random(attempts) < fpr, rng.random(attempts) < tpr)
    run = np.where(success, durations(rng, t_s, attempts), durations(rng, t_f, attempts))
    stopped_at = np.where(success, durations(rng, t_as, attempts), durations(rng, t_af, attempts))
    time = np.where(alarm, stopped_at, run)
    completes = success & ~alarm
    time = time + np.where(completes, 0.0, reset)
    ends = np.flatnonzero(completes)
    totals = np.cumsum(time)[ends]
    return np.diff(np.concatenate([[0.0], totals]))


POINTS = [
    # p, t_s, t_f, reset, tpr, t_af, fpr, t_as
    (0.7, 4.0, 5.5, 2.0, 0.9, 1.2, 0.05, 2.0),       # the design's example: a long failure caught early
    (0.95, 4.5, 3.0, 2.0, 0.3, 1.5, 0.07, 1.6),      # in the envelope: rare failures, some false alarms
    (0.3, 4.5, 1.8, 5.0, 0.95, 0.1, 0.15, 1.8),      # a failing shift with an expensive reset
    (1.0, 4.0, 3.0, 1.0, 0.5, 1.0, 0.2, 2.0),        # no failure at all: only false alarms
    (0.5, 3.0, 8.0, 0.0, 0.0, 1.0, 0.0, 1.0),        # no alarms: both policies alike
]


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("seed", [0, 1])
def test_closed_form_matches_a_simulation_of_the_cell(point, seed):
    p, t_s, t_f, reset, tpr, t_af, fpr, t_as = point
    m = expected_makespan(p_success=p, t_success=t_s, t_failure=t_f, reset=reset, tpr=tpr, t_alarm_failure=t_af,
                          fpr=fpr, t_alarm_success=t_as)
    rng = np.random.default_rng(seed)
    for stop, predicted in ((False, m.run_to_end), (True, m.stop_on_alarm)):
        tasks = simulate_cell(rng, p, t_s, t_f, reset, tpr, t_af, fpr, t_as, stop)
        error = tasks.std(ddof=1) / np.sqrt(tasks.size)
        # 4.5 standard errors: a false failure has probability below 1e-5 for any seed.
        assert abs(tasks.mean() - predicted) <= 4.5 * error + 1e-9, (stop, tasks.mean(), predicted, error)


def test_closed_form_matches_a_simulation_when_alarms_pick_the_long_failures():
    # Failures the monitor lets through are shorter than those it stops: t_failure_unstopped carries that.
    rng = np.random.default_rng(3)
    n, p, reset, fpr = 300_000, 0.6, 1.5, 0.1
    success = rng.random(n) < p
    length = np.where(success, durations(rng, 4.0, n), durations(rng, 5.0, n))
    alarm = np.where(success, rng.random(n) < fpr, length > 4.0)  # the long failures alarm, 1 s in
    time = np.where(alarm, np.where(success, 2.0, 1.0), length) + np.where(success & ~alarm, 0.0, reset)
    ends = np.flatnonzero(success & ~alarm)
    tasks = np.diff(np.concatenate([[0.0], np.cumsum(time)[ends]]))
    fail = ~success
    m = expected_makespan(p_success=success.mean(), t_success=length[success].mean(), t_failure=length[fail].mean(),
                          reset=reset, tpr=alarm[fail].mean(), t_alarm_failure=1.0, fpr=alarm[success].mean(),
                          t_alarm_success=2.0, t_failure_unstopped=length[fail & ~alarm].mean(),
                          t_success_unstopped=length[success & ~alarm].mean())
    error = tasks.std(ddof=1) / np.sqrt(tasks.size)
    assert abs(tasks.mean() - m.stop_on_alarm) <= 4.5 * error


def test_the_design_example_and_the_saving_in_closed_form():
    m = expected_makespan(p_success=0.7, t_success=4.0, t_failure=5.5, reset=2.0, tpr=0.9, t_alarm_failure=1.2,
                          fpr=0.05, t_alarm_success=2.0)
    assert m.run_to_end == pytest.approx(4.0 + 0.3 / 0.7 * 7.5)
    # saving = (1 - p) tpr (t_f - t_af) / (p (1 - fpr)) - fpr / (1 - fpr) (t_as + r + M_end - t_s)
    gain = 0.3 * 0.9 * (5.5 - 1.2) / (0.7 * 0.95)
    loss = 0.05 / 0.95 * (2.0 + 2.0 + m.run_to_end - 4.0)
    assert m.saving == pytest.approx(gain - loss)
    assert m.relative_saving == pytest.approx(m.saving / m.run_to_end)


def test_edges_no_alarm_no_success_and_arrays():
    alike = expected_makespan(p_success=0.4, t_success=3.0, t_failure=2.0, reset=1.0)
    assert alike.saving == 0.0 and alike.run_to_end == pytest.approx(3.0 + 1.5 * 3.0)
    never = expected_makespan(p_success=0.0, t_success=np.nan, t_failure=2.0, reset=1.0)
    assert never.run_to_end == np.inf and never.stop_on_alarm == np.inf and np.isnan(never.saving)
    always_stopped = expected_makespan(p_success=1.0, t_success=3.0, t_failure=np.nan, reset=1.0, fpr=1.0,
                                       t_alarm_success=0.5)
    assert always_stopped.run_to_end == 3.0 and always_stopped.stop_on_alarm == np.inf
    many = expected_makespan(p_success=np.array([0.5, 1.0]), t_success=3.0, t_failure=2.0, reset=1.0,
                             tpr=np.array([1.0, 0.0]), t_alarm_failure=0.5)
    assert many.run_to_end.shape == (2,)
    assert many.stop_on_alarm[0] == pytest.approx((0.5 * 3.0 + 0.5 * 1.5) / 0.5)


@pytest.mark.parametrize("kwargs, word", [
    ({"p_success": 1.2}, "p_success"),
    ({"tpr": -0.1}, "tpr"),
    ({"reset": -1.0}, "reset"),
    ({"t_success": np.inf}, "t_success"),
    ({"tpr": 0.5, "t_alarm_failure": np.nan}, "t_alarm_failure"),
])
def test_bad_inputs_are_one_line_errors(kwargs, word):
    base = dict(p_success=0.5, t_success=3.0, t_failure=2.0, reset=1.0, tpr=0.0, fpr=0.0)
    with pytest.raises(ValueError, match=word) as info:
        expected_makespan(**{**base, **kwargs})
    assert "\n" not in str(info.value)


def episodes(rng, n, p, t_s, t_f, tpr, lead, fpr):
    success = rng.random(n) < p
    duration = np.where(success, durations(rng, t_s, n), durations(rng, t_f, n))
    alarmed = np.where(success, rng.random(n) < fpr, rng.random(n) < tpr)
    alarm = np.where(alarmed, np.maximum(duration - np.where(success, 1.0, lead), 0.0), np.nan)
    return EpisodeTimes(success, duration, alarm)


def test_estimate_is_the_episodes_own_renewal_reward_ratio():
    rng = np.random.default_rng(0)
    times = episodes(rng, 300, 0.6, 4.0, 6.0, 0.8, 3.0, 0.1)
    reset = 2.0
    estimate = estimate_makespan(times, reset=reset, n_boot=500)
    ok, alarmed = times.success, ~np.isnan(times.alarm)
    end = (times.duration.sum() + reset * (~ok).sum()) / ok.sum()
    stopped = np.where(alarmed, times.alarm, times.duration) + np.where(ok & ~alarmed, 0.0, reset)
    assert estimate.run_to_end == pytest.approx(end)
    assert estimate.stop_on_alarm == pytest.approx(stopped.sum() / (ok & ~alarmed).sum())
    for name in ("run_to_end", "stop_on_alarm", "saving"):
        low, high = estimate.intervals[name]
        assert low <= getattr(estimate, name) <= high
    assert estimate.episodes == 300 and estimate.failures == int((~ok).sum())


@pytest.mark.slow
def test_the_saving_interval_covers_the_true_saving():
    # Repeated validation sets from one known cell: the 90 % interval should cover the closed form's value about
    # 90 % of the time (binomial slack over 200 repetitions).
    truth = expected_makespan(p_success=0.6, t_success=4.0, t_failure=6.0, reset=2.0, tpr=0.8,
                              t_alarm_failure=3.0, fpr=0.1, t_alarm_success=3.0).saving
    rng = np.random.default_rng(11)
    hits = 0
    for i in range(200):
        times = episodes(rng, 200, 0.6, 4.0, 6.0, 0.8, 3.0, 0.1)
        low, high = estimate_makespan(times, reset=2.0, confidence=0.9, n_boot=400, seed=i).intervals["saving"]
        hits += low <= truth <= high
    assert 0.82 * 200 <= hits <= 0.97 * 200


def test_estimate_needs_successes_and_a_control_rate():
    rng = np.random.default_rng(1)
    failures = EpisodeTimes(np.zeros(5, bool), np.ones(5), np.full(5, np.nan))
    with pytest.raises(ValueError, match="none of the 5 episodes succeeded"):
        estimate_makespan(failures, reset=1.0)
    with pytest.raises(ValueError, match="control rate"):
        episode_times(synthetic(1, 3))
    with pytest.raises(ValueError, match="reset"):
        estimate_makespan(episodes(rng, 20, 0.5, 3, 3, 0.5, 1, 0.1), reset=-2)


@pytest.fixture(scope="module")
def monitor():
    from robogate.monitor import FailureMonitor

    return FailureMonitor(alpha=0.1, scores=["rnd"]).fit(synthetic(0, 80, chunks=False))


def labelled(seed, successes, failures):
    return synthetic(seed, successes, chunks=False) + synthetic(seed + 1000, failures, shifted=True, chunks=False)


def test_stop_on_alarm_where_failures_run_long_after_the_alarm(monitor):
    # The synthetic failures drift for many steps before they end, and the monitor sees the drift early.
    decision = choose_threshold(labelled(1, 60, 60), monitor, reset=0.5, control_hz=HZ, n_boot=500)
    assert decision.verdict == STOP_ON_ALARM and decision.exit_code == 0
    chosen = decision.curve[decision.curve["chosen"]].iloc[0]
    assert chosen["alpha"] == decision.alpha and chosen["stop_on_alarm"] == decision.curve["stop_on_alarm"].min()
    assert decision.monitor.alpha == decision.alpha
    # The verdict holds on fresh test rollouts of the same cell.
    test = estimate_makespan(labelled(2, 60, 60), decision.monitor, reset=0.5, control_hz=HZ, n_boot=500)
    assert test.intervals["saving"][0] > 0
    assert "saves" in decision.reason


def test_a_decision_checked_on_test_rollouts_is_its_sweep_run_there(monitor):
    decision = choose_threshold(labelled(1, 40, 40), monitor, reset=0.5, control_hz=HZ, n_boot=200)
    test = labelled(2, 40, 40)
    check = check_decision(decision, test, control_hz=HZ, n_boot=200)
    alone = choose_threshold(test, monitor, reset=0.5, control_hz=HZ, n_boot=200).curve
    pd.testing.assert_frame_equal(check.curve, alone.drop(columns="chosen"))
    row = alone[alone["alpha"] == decision.alpha].iloc[0]
    assert check.alpha == decision.alpha and check.episodes == 80
    assert check.saving == row["saving"] and check.interval == (row["saving_low"], row["saving_high"])
    assert check.holds == ((row["saving_low"] > 0) == (decision.verdict == STOP_ON_ALARM))
    assert check.describe().endswith("the verdict holds" if check.holds else "do not confirm the verdict")


def test_run_to_the_end_where_nothing_fails(monitor):
    decision = choose_threshold(synthetic(3, 60, chunks=False), monitor, reset=1.0, control_hz=HZ, n_boot=300)
    assert decision.verdict == RUN_TO_END and decision.exit_code == 1
    assert "lead is too short or failures too rare" in decision.reason


def test_run_to_the_end_where_false_alarms_cost_more_than_the_early_stops_save(monitor):
    # At alpha 0.4 the monitor stops about a third of the successes; one attempt in ten fails.
    decision = choose_threshold(labelled(4, 90, 10), monitor, reset=0.0, alphas=[0.4], control_hz=HZ, n_boot=300)
    assert decision.verdict == RUN_TO_END and decision.alpha == 0.4
    assert "too many false alarms" in decision.reason and "even with a free reset" in decision.reason


def test_run_to_the_end_where_the_reset_is_too_expensive_names_the_break_even(monitor):
    rollouts, variant = labelled(4, 50, 50), monitor.recalibrate(alpha=0.2)
    decision = choose_threshold(rollouts, monitor, reset=30.0, alphas=[0.2], control_hz=HZ, n_boot=300)
    assert decision.verdict == RUN_TO_END and "reset is too expensive" in decision.reason
    breakeven = float(re.search(r"resets under ([0-9.]+) s", decision.reason).group(1))
    below, above = (estimate_makespan(rollouts, variant, reset=f * breakeven, control_hz=HZ, n_boot=10).saving
                    for f in (0.9, 1.1))
    assert below > 0 > above


def test_the_report_draws_predicted_test_and_measured_makespans(monitor, tmp_path):
    from robogate.reports.makespan import MEASURED_COLUMNS, write_makespan_report

    decision = choose_threshold(labelled(1, 40, 40), monitor, reset=0.5, control_hz=HZ, n_boot=100)
    test = choose_threshold(labelled(2, 40, 40), monitor, reset=0.5, control_hz=HZ, n_boot=100).curve
    measured = pd.DataFrame([[decision.alpha, 9.0, 8.0, 10.0, 7.0, 6.5, 7.5]], columns=MEASURED_COLUMNS)
    path = write_makespan_report(tmp_path, decision, test_curve=test, measured=measured, notes=["Synthetic."])
    text = (tmp_path / "report.md").read_text()
    for words in ("Predicted on the validation rollouts", "On the test rollouts", "Measured in production runs",
                  "green: measured in production runs", f"{decision.verdict.upper()}"):
        assert words in text
    assert path.name == "report.html" and (tmp_path / "makespan.png").stat().st_size > 10_000
