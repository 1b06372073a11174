"""What a safety engineer signs: the stated confidence, the miss-rate bound, re-splits and length-free figures."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

from robogate.monitor import FailureMonitor, Rollout
from robogate.monitor.conformal import (
    calibration_needed,
    conformal_rank,
    failures_needed,
    false_alarm_range,
    miss_rank,
)
from robogate.monitor.guarantee import resplit_false_alarms
from robogate.monitor.metrics import common_horizon, episode_table, summarize
from robogate.monitor.monitor import minimum_successes
from robogate.monitor.scores import RND, ObservationRND
from tests.monitor_synthetic import rollouts


@pytest.mark.parametrize("n, alpha, confidence", [(93, 0.05, 0.9), (50, 0.1, 0.9), (200, 0.1, 0.95), (22, 0.1, 0.9)])
def test_training_conditional_rank_is_the_smallest_with_the_binomial_tail_under_one_minus_confidence(
        n, alpha, confidence):
    k = conformal_rank(n, alpha, confidence)
    tail = lambda j: binom.sf(j - 1, n, 1 - alpha)  # noqa: E731  P(Bin(n, 1 - alpha) >= j)
    assert tail(k) <= 1 - confidence < tail(k - 1)
    assert false_alarm_range(n, alpha, confidence).p_above == pytest.approx(tail(k))
    assert k >= conformal_rank(n, alpha)  # never below the marginal rank


def test_the_issues_figures_for_the_marginal_rank():
    assert false_alarm_range(93, 0.05).p_above == pytest.approx(0.31, abs=0.01)
    assert false_alarm_range(50, 0.1).p_above == pytest.approx(0.43, abs=0.01)


@pytest.mark.parametrize("alpha, confidence", [(0.1, 0.9), (0.05, 0.9), (0.1, None), (0.2, 0.95)])
def test_calibration_needed_is_the_first_size_with_a_rank(alpha, confidence):
    n = calibration_needed(alpha, confidence)
    conformal_rank(n, alpha, confidence)
    with pytest.raises(ValueError, match=f"use at least {n} successful calibration rollouts"):
        conformal_rank(n - 1, alpha, confidence)
    assert calibration_needed(0.1, 0.9) == 22 and calibration_needed(0.05, 0.9) == 45


@pytest.mark.parametrize("confidence", [None, 0.9])
def test_the_false_alarm_rate_over_calibrations_is_what_the_rank_promises(confidence):
    """Uniform scores: a threshold q has false-alarm rate 1 - q exactly, so 4000 calibrations show its law."""
    rng = np.random.default_rng(0)
    n, alpha, repeats = 60, 0.1, 4000
    k = conformal_rank(n, alpha, confidence)
    rates = 1.0 - np.sort(rng.uniform(size=(repeats, n)), axis=1)[:, k - 1]
    implied = false_alarm_range(n, alpha, confidence)
    slack = 3 * np.sqrt(0.25 / repeats)
    assert np.mean(rates > alpha) <= implied.p_above + slack
    assert abs(rates.mean() - implied.mean) < 3 * rates.std() / np.sqrt(repeats)
    if confidence is None:
        assert rates.mean() <= alpha + slack and np.mean(rates > alpha) > 0.3  # marginal: often above alpha
    else:
        assert np.mean(rates > alpha) <= 1 - confidence + slack


@pytest.mark.parametrize("confidence", [None, 0.9])
def test_the_miss_rank_bounds_the_miss_rate_over_sets_of_failures(confidence):
    rng = np.random.default_rng(1)
    m, beta, repeats = 80, 0.1, 4000
    k = miss_rank(m, beta, confidence)
    misses = np.sort(rng.uniform(size=(repeats, m)), axis=1)[:, k - 1]  # P(new peak <= threshold) for uniform peaks
    slack = 3 * np.sqrt(0.25 / repeats)
    if confidence is None:
        assert misses.mean() <= beta + 0.005
    else:
        assert np.mean(misses > beta) <= 1 - confidence + slack
    assert failures_needed(0.1) == 9 and failures_needed(0.1, 0.9) == 22
    with pytest.raises(ValueError, match="too few to bound the miss rate at 0.1: use at least 9 failures"):
        miss_rank(8, 0.1)


def fitted(seed: int = 0, n: int = 60, **settings) -> FailureMonitor:
    return FailureMonitor(scores=[RND(epochs=10, seed=seed), ObservationRND(epochs=10, seed=seed)], seed=seed,
                          **settings).fit(rollouts(3000 + seed, n))


def test_a_stated_confidence_needs_enough_successes_and_says_how_many_in_one_line():
    assert minimum_successes(0.1, confidence=0.9) == 44 and minimum_successes(0.1) == 17
    with pytest.raises(ValueError) as refused:
        FailureMonitor(alpha=0.1, confidence=0.9).fit(rollouts(5, 40))
    message = str(refused.value)
    assert "\n" not in message and "at confidence 0.9" in message and "record at least 44" in message
    with pytest.raises(ValueError, match="confidence must be"):
        FailureMonitor(confidence=1.5)


def test_a_stated_confidence_raises_the_threshold_and_survives_saving(tmp_path):
    marginal = fitted(alpha=0.1)
    stated = marginal.recalibrate(confidence=0.9)
    n = marginal.n_calibration_
    assert conformal_rank(n, 0.1, 0.9) > conformal_rank(n, 0.1)
    assert stated.thresholds_["rnd"].scale > marginal.thresholds_["rnd"].scale
    assert "at confidence 0.9" in stated.describe() and "confidence=0.9" in repr(stated)
    stated.save(tmp_path / "m")
    loaded = FailureMonitor.load(tmp_path / "m")
    assert loaded.confidence == 0.9 and loaded.thresholds_["rnd"].scale == stated.thresholds_["rnd"].scale
    assert marginal.as_default().confidence is None


def test_a_monitor_saved_before_the_confidence_existed_still_loads_as_marginal(tmp_path):
    monitor = fitted(alpha=0.1)
    monitor.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "monitor.json").read_text())
    del config["confidence"], config["miss_bound"]
    (tmp_path / "m" / "monitor.json").write_text(json.dumps(config))
    loaded = FailureMonitor.load(tmp_path / "m")
    assert loaded.confidence is None and loaded.miss_bound_ is None
    probe = rollouts(77, 3, shifted=True)
    for r in probe:
        assert loaded.trace(r).alarm_step == monitor.trace(r).alarm_step


@pytest.mark.slow
def test_a_threshold_set_from_failures_bounds_their_miss_rate_and_states_its_cost(tmp_path):
    monitor = fitted(alpha=0.1)
    test = rollouts(8, 300, shifted=True)
    scored = [monitor.step_scores(r) for r in test]
    rates = []
    for seed in range(12):
        bounded = monitor.bound_misses(rollouts(100 + seed, 40, shifted=True), 0.1)
        rates.append(episode_table(bounded, test, scored)["alarm_step"].isna().mean())
    # Each threshold's miss rate is Beta(4, 38) around 4/41 = 0.098; their mean over 12 sets of failures, too.
    assert np.mean(rates) <= 0.1 + 3 * 0.045 / np.sqrt(12)
    bound = bounded.miss_bound_
    assert (bound.failures, bound.rank, bound.successes) == (40, 4, monitor.n_calibration_)
    assert 0.0 <= bound.false_alarm_rate <= bound.false_alarm_upper <= 1.0
    assert "miss rate 0.1" in bounded.describe()
    bounded.save(tmp_path / "b")
    assert FailureMonitor.load(tmp_path / "b").miss_bound_ == bound
    assert bounded.recalibrate().miss_bound_ is None  # recalibrating returns to the false-alarm threshold


def test_miss_thresholds_refuse_an_and_and_too_few_failures_in_one_line():
    monitor = fitted(alpha=0.1)
    with pytest.raises(ValueError, match="needs combine='or'"):
        monitor.recalibrate(combine="and").bound_misses(rollouts(4, 40, shifted=True), 0.1)
    with pytest.raises(ValueError, match="5 failing rollouts are too few .* use at least 9"):
        monitor.bound_misses(rollouts(4, 5, shifted=True) + rollouts(6, 20), 0.1)


def test_resplits_of_exchangeable_successes_keep_the_marginal_rate_and_the_stated_confidence():
    monitor = fitted(alpha=0.1, n=80)
    table = resplit_false_alarms(monitor, rollouts(9, 400), alphas=(0.1,), confidences=(None, 0.9), repeats=1500)
    marginal, stated = (table[table["confidence"] == c].iloc[0] for c in ("marginal", 0.9))
    assert marginal["mean_rate"] <= 0.1 + 0.01 and marginal["share_above_alpha_pool"] > 0.3
    assert stated["share_above_alpha_pool"] <= 0.1 + 0.03
    assert stated["implied_above_alpha"] <= 0.1 and stated["rank"] > marginal["rank"]


def test_cut_episodes_see_only_their_first_steps_and_a_timeout_is_never_early():
    monitor = fitted(alpha=0.1)
    late = rollouts(11, 20, shifted=True)
    full, cut = episode_table(monitor, late), episode_table(monitor, late, horizon=10)
    assert (cut["steps"] <= 10).all() and (cut["alarm_step"].dropna() < 10).all()
    assert cut["alarm_step"].notna().sum() <= full["alarm_step"].notna().sum()
    assert (cut["peak"] <= full["peak"] + 1e-12).all()
    timed_out = [Rollout(observations=r.observations, embeddings=r.embeddings, actions=r.actions, success=False,
                         outcome="timeout") for r in late]
    table = episode_table(monitor, timed_out)
    assert table["alarm_step"].notna().any() and summarize(table)["early_tpr"] == 0.0
    assert common_horizon(rollouts(12, 30)) == int(np.floor(np.quantile([r.steps for r in rollouts(12, 30)], 0.1)))


def test_summaries_bound_both_error_rates():
    table = pd.DataFrame({"success": [False] * 20 + [True] * 20, "outcome": ["x"] * 40, "steps": 30,
                          "failure_step": [5.0] * 20 + [np.nan] * 20,
                          "alarm_step": [3.0] * 18 + [np.nan] * 2 + [4.0] + [np.nan] * 19, "peak": 1.0,
                          "control_hz": 10.0})
    s = summarize(table)
    assert s["tpr"] == 0.9 and 0.6 < s["tpr_lower"] < 0.9
    assert s["false_alarm_rate"] == pytest.approx(0.05) and 0.05 < s["false_alarm_upper"] < 0.3
    assert s["early_tpr"] == 0.9


def test_the_readme_states_how_many_successes_a_confidence_needs():
    from pathlib import Path

    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    stated = (f"{calibration_needed(0.1, 0.9)} at α = 0.1 and confidence 0.9 (`fit` then needs "
              f"{minimum_successes(0.1, confidence=0.9)}), {calibration_needed(0.05, 0.9)} at α = 0.05 "
              f"({minimum_successes(0.05, confidence=0.9)})")
    assert stated in readme
