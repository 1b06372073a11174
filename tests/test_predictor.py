"""FailurePredictor: learns a planted precursor, invents none, keeps the conformal guarantee, round-trips."""

import numpy as np
import pytest

from robogate.monitor import FailureMonitor, FailurePredictor
from robogate.monitor.metrics import episode_table, summarize
from tests.monitor_synthetic import labelled, rollouts

ALPHA = 0.1


def trained(seed: int, planted: bool = True, **settings) -> FailurePredictor:
    settings.setdefault("epochs", 60)
    return FailurePredictor(seed=seed, **settings).fit(labelled(100 + seed, 120, planted))


@pytest.fixture(scope="module")
def predictor() -> FailurePredictor:
    return trained(0)


def monitored(predictor: FailurePredictor, seed: int) -> FailureMonitor:
    """The predictor calibrated on successes it never saw."""
    return FailureMonitor(alpha=ALPHA, scores=[predictor]).fit(rollouts(900 + seed, 60))


@pytest.mark.slow
@pytest.mark.parametrize("target", ["episode", "horizon"])
def test_a_planted_precursor_is_found_and_warned_of_before_the_failure(target):
    predictor = trained(1, target=target)
    monitor = monitored(predictor, 1)
    assert monitor.scores_ == ("predictor",)
    table = episode_table(monitor, labelled(500, 80))
    summary = summarize(table)
    assert summary["roc_auc"] > 0.95 and summary["early_tpr"] >= 0.8
    failed = table[~table["success"]]
    assert (failed["alarm_step"] <= failed["failure_step"]).mean() >= 0.8


@pytest.mark.slow
@pytest.mark.parametrize("seed", [2, 3, 4])
def test_without_a_signal_it_invents_none_and_false_alarms_stay_within_alpha(seed):
    predictor = trained(seed, planted=False)
    monitor = monitored(predictor, seed)
    test = labelled(600 + seed, 200, planted=False)
    summary = summarize(episode_table(monitor, test))
    assert abs(summary["roc_auc"] - 0.5) < 0.12, summary["roc_auc"]
    held_out = summarize(episode_table(monitor, rollouts(700 + seed, 150)))
    assert held_out["false_alarm_rate"] <= ALPHA + 0.1  # binomial slack of one calibration


@pytest.mark.slow
def test_the_conformal_guarantee_holds_for_the_predictors_score():
    rates = []
    for seed in range(4):
        monitor = monitored(trained(10 + seed), 10 + seed)
        rates.append(summarize(episode_table(monitor, rollouts(800 + seed, 150)))["false_alarm_rate"])
    assert np.mean(rates) <= ALPHA + 0.05, rates


@pytest.mark.slow
@pytest.mark.parametrize("model", ["mlp", "gru"])
def test_save_load_and_the_live_stream_give_identical_scores(tmp_path, model):
    predictor = trained(5, model=model, epochs=5)
    predictor.save(tmp_path / "p")
    assert (tmp_path / "p" / "loss.png").is_file()
    loaded = FailurePredictor.load(tmp_path / "p")
    assert loaded.signals == predictor.signals and repr(loaded) == repr(predictor)
    for rollout in labelled(7, 4):
        offline = predictor.score(rollout)
        np.testing.assert_array_equal(offline, loaded.score(rollout))
        stream = loaded.stream()
        from robogate.monitor.scores import Step

        live = [stream.update(Step(t, observations=o, embeddings=e, action_chunks=c)) for t, (o, e, c) in
                enumerate(zip(rollout.observations, rollout.embeddings, rollout.action_chunks))]
        np.testing.assert_allclose(live, offline, rtol=1e-5, atol=1e-7)
    # Inside a saved monitor too.
    monitor = monitored(predictor, 5)
    monitor.save(tmp_path / "m")
    again = FailureMonitor.load(tmp_path / "m")
    r = labelled(8, 2)[1]
    np.testing.assert_array_equal(monitor.trace(r).combined, again.trace(r).combined)


def test_training_needs_both_outcomes_and_a_trained_predictor_needs_no_refit():
    successes, failures = rollouts(1, 10), [r for r in labelled(2, 20) if not r.success]
    with pytest.raises(ValueError, match="0 failures .* record failures too"):
        FailurePredictor().fit(successes)
    with pytest.raises(ValueError, match="0 successes and 10 failures"):
        FailurePredictor().fit(failures)
    with pytest.raises(ValueError, match="learns from rollouts of both outcomes"):
        FailureMonitor(alpha=0.5, scores=[FailurePredictor()]).fit(rollouts(3, 10))  # untrained, successes only


@pytest.mark.slow
def test_load_refuses_missing_and_damaged_predictors_in_one_line(predictor, tmp_path):
    with pytest.raises(ValueError, match="holds no trained FailurePredictor"):
        FailurePredictor.load(tmp_path)
    predictor.save(tmp_path / "p")
    (tmp_path / "p" / "predictor.pt").write_bytes(b"hello")
    with pytest.raises(ValueError, match="damaged FailurePredictor") as caught:
        FailurePredictor.load(tmp_path / "p")
    assert "\n" not in str(caught.value)


def test_the_step_enters_as_an_absolute_count_not_a_share_of_the_episode():
    from robogate.monitor.scores.predictor import STEP_SCALE, step_features

    short, long = rollouts(4, 2)
    for r in (short, long):
        np.testing.assert_allclose(step_features(r, ("observations",))[:, -1], np.arange(r.steps) / STEP_SCALE)


def test_a_feature_constant_in_training_does_not_move_the_score_where_it_varies():
    """An observation component the training scenes never varied (an obstacle slot always empty,
    say) carries nothing learnt: a new scene that sets it scores as if it were unset."""
    import dataclasses

    train = [dataclasses.replace(r, observations=np.column_stack([r.observations, np.zeros(r.steps)]))
             for r in labelled(120, 60)]
    predictor = FailurePredictor(seed=0, epochs=10).fit(train)
    for r in labelled(121, 4):
        unset = dataclasses.replace(r, observations=np.column_stack([r.observations, np.zeros(r.steps)]))
        set_ = dataclasses.replace(r, observations=np.column_stack([r.observations, np.full(r.steps, 50.0)]))
        np.testing.assert_array_equal(predictor.score(unset), predictor.score(set_))
