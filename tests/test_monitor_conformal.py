"""Split-conformal thresholds: order statistics, windows, and the episode-level false-alarm guarantee."""

import math

import numpy as np
import pytest

from robogate.monitor.conformal import (
    THRESHOLD_STYLES,
    Threshold,
    calibrate_threshold,
    calibrate_thresholds,
    conformal_quantile,
    conformal_rank,
    window_sums,
)
from tests.monitor_synthetic import score_streams

ALPHA = 0.1
N_FIT, N_CAL, N_TEST, REPEATS = 40, 40, 150, 25


def test_conformal_rank_is_the_split_conformal_order_statistic():
    assert conformal_rank(19, 0.05) == 19  # ceil(20 * 0.95)
    assert conformal_rank(99, 0.1) == 90
    assert conformal_quantile([5.0, 1.0, 3.0, 2.0, 4.0, 9.0, 8.0, 7.0, 6.0], 0.2) == 8.0  # ceil(10*0.8)=8


@pytest.mark.parametrize("n, alpha", [(18, 0.05), (8, 0.1), (0, 0.5)])
def test_too_few_calibration_rollouts_for_alpha_is_an_error(n, alpha):
    with pytest.raises(ValueError, match="too few for alpha"):
        conformal_rank(n, alpha)


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, 1.5, float("nan"), "x"])
def test_alpha_outside_the_open_unit_interval_is_an_error(alpha):
    with pytest.raises(ValueError, match="alpha must be"):
        conformal_rank(50, alpha)


def test_window_sums_match_a_running_sum_exactly():
    rng = np.random.default_rng(3)
    scores = rng.random(23)
    for window in (1, 4, 30):
        running, expected = [], []
        for value in scores:
            running = (running + [value])[-window:]
            total = 0.0
            for v in running:
                total += v
            expected.append(total)
        assert window_sums(scores, window).tolist() == expected  # bit for bit


def test_unknown_threshold_style_is_an_error():
    with pytest.raises(ValueError, match="threshold must be one of"):
        calibrate_threshold([np.ones(5)], [np.ones(5)] * 20, 0.1, "quantile")


def _false_alarm_rates(seed: int, style: str, window: int = 5) -> tuple[float, float, float, float]:
    """Average episode-level false-alarm rates of score 1, score 2, their AND (each at alpha) and their
    OR (one joint calibration at alpha) over REPEATS fresh calibrations, each tested on N_TEST fresh episodes."""
    rng = np.random.default_rng(seed)
    tallies = np.zeros(4)
    for _ in range(REPEATS):
        fit, cal, test = ([[window_sums(s, window) for s in streams] for streams in score_streams(rng, n)]
                          for n in (N_FIT, N_CAL, N_TEST))
        single = [calibrate_threshold(fit[k], cal[k], ALPHA, style) for k in (0, 1)]
        joint = calibrate_thresholds({k: fit[k] for k in (0, 1)}, {k: cal[k] for k in (0, 1)}, ALPHA, style, "or")
        above = [[y > single[k].along(y.size) for y in test[k]] for k in (0, 1)]
        above_joint = [[y > joint[k].along(y.size) for y in test[k]] for k in (0, 1)]
        first = np.array([a.any() for a in above[0]])
        second = np.array([a.any() for a in above[1]])
        both = np.array([(a & b).any() for a, b in zip(*above)])
        either = np.array([(a | b).any() for a, b in zip(*above_joint)])
        tallies += [first.mean(), second.mean(), both.mean(), either.mean()]
    return tuple(tallies / REPEATS)


@pytest.mark.parametrize("style", THRESHOLD_STYLES)
@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow), pytest.param(2, marks=pytest.mark.slow)])
def test_false_alarm_rate_on_exchangeable_successes_stays_within_alpha(style, seed):
    first, second, both, either = _false_alarm_rates(seed, style)
    # The marginal rate of split conformal is 1 - ceil((n+1)(1-alpha))/(n+1) <= alpha. Over
    # 25 calibrations x 150 episodes, calibration-to-calibration spread (sd ~0.009) and binomial
    # noise (sd ~0.005) together stay well below the 0.035 slack.
    slack = 0.035
    for rate in (first, second, either):
        assert rate <= ALPHA + slack
    # ... and the thresholds are not vacuous: the rate is near alpha, not near zero, and the joint OR
    # uses its alpha rather than splitting it over the scores.
    assert first >= ALPHA / 2 and second >= ALPHA / 2 and either >= ALPHA / 2
    # AND needs both scores over their thresholds at one step: never more alarms than either alone.
    assert both <= min(first, second)


def test_functional_band_alarms_on_the_high_side_only():
    rng = np.random.default_rng(0)
    fit, cal = (score_streams(rng, 40)[0] for _ in range(2))
    band = calibrate_threshold(fit, cal, 0.1, "functional")
    assert band.scale >= 0
    centres = band.centres
    assert np.all(band.values >= centres)
    low = np.zeros(centres.size)  # far below the mean: a calm episode, no alarm
    high = centres + 2 * (band.values - centres)
    assert not np.any(low > band.along(low.size))
    assert np.all(high > band.along(high.size))
    assert np.all(band.normalize(high) > 1) and np.all(band.normalize(low) < 1)


@pytest.mark.parametrize("style", THRESHOLD_STYLES)
def test_threshold_round_trips_through_its_dict(style):
    rng = np.random.default_rng(1)
    fit, cal = score_streams(rng, 30)
    threshold = calibrate_threshold(fit, cal, 0.1, style)
    again = Threshold.from_dict(threshold.to_dict())
    assert np.array_equal(again.values, threshold.values) and again.scale == threshold.scale
    assert again.at(10_000) == threshold.values[-1]  # beyond the calibrated steps: the last value
    assert math.isfinite(again.at(0))


@pytest.mark.parametrize("style", THRESHOLD_STYLES)
def test_one_score_joint_calibration_is_the_single_score_threshold(style):
    rng = np.random.default_rng(2)
    fit, cal = score_streams(rng, 30)
    joint = calibrate_thresholds({"a": fit}, {"a": cal}, 0.1, style, "or")["a"]
    single = calibrate_threshold(fit, cal, 0.1, style)
    assert np.array_equal(joint.values, single.values) and joint.scale == single.scale


def test_joint_or_shares_one_factor_and_keeps_each_scores_profile():
    rng = np.random.default_rng(3)
    fit, cal = (score_streams(rng, 30) for _ in range(2))
    scaled = {"fit": [10 * s for s in fit[1]], "cal": [10 * s for s in cal[1]]}
    joint = calibrate_thresholds({"a": fit[0], "b": scaled["fit"]}, {"a": cal[0], "b": scaled["cal"]}, 0.1, "constant")
    assert joint["a"].scale == joint["b"].scale  # one h for every score
    assert joint["b"].values[0] > 5 * joint["a"].values[0]  # each on its own scale
