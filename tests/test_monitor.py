"""FailureMonitor: calibration on successes, alarms on drifting rollouts, persistence, bad input."""

import dataclasses

import numpy as np
import pytest

from robogate.monitor import (
    COMBINES,
    THRESHOLD_STYLES,
    ActionChunkEntropy,
    FailureMonitor,
    RNDScorer,
    Rollout,
)
from robogate.monitor.metrics import episode_table, summarize
from tests.monitor_synthetic import CHUNKS, DIM, HORIZON, rollouts

ALPHA = 0.1


def fitted(seed: int, n: int = 60, **settings) -> FailureMonitor:
    """A monitor fitted on n synthetic successes (half fit the scores, half calibrate)."""
    settings.setdefault("alpha", ALPHA)
    monitor = FailureMonitor(rnd=RNDScorer(epochs=15, seed=seed), seed=seed, **settings)
    return monitor.fit(rollouts(1000 + seed, n))


@pytest.fixture(scope="module")
def monitor() -> FailureMonitor:
    return fitted(0)


@pytest.fixture(scope="module")
def held_out() -> list[Rollout]:
    return rollouts(5000, 150)


@pytest.fixture(scope="module")
def shifted() -> list[Rollout]:
    return rollouts(6000, 40, shifted=True)


def test_fit_uses_successes_only_and_both_scores_when_chunks_are_recorded(monitor, shifted):
    assert monitor.scores_ == ("rnd", "ace")
    assert (monitor.n_fit_, monitor.n_calibration_) == (30, 30)
    assert monitor.embedding_dim_ == DIM and monitor.chunk_shape_ == (CHUNKS, HORIZON, 5)
    again = FailureMonitor(alpha=ALPHA, rnd=RNDScorer(epochs=15, seed=0)).fit(rollouts(1000, 60) + shifted)
    assert (again.n_fit_, again.n_calibration_) == (30, 30)  # the 40 failures are left out
    for name in monitor.scores_:
        assert np.array_equal(again.thresholds_[name].values, monitor.thresholds_[name].values)


def test_without_chunks_the_monitor_runs_on_rnd_alone():
    monitor = FailureMonitor(alpha=ALPHA, rnd=RNDScorer(epochs=5)).fit(rollouts(1, 40, chunks=False))
    assert monitor.scores_ == ("rnd",) and monitor.chunk_shape_ is None
    monitor.reset()
    decision = monitor.update(np.zeros(DIM))
    assert set(decision.scores) == {"rnd"}


def test_update_step_by_step_matches_the_offline_trace(monitor, shifted):
    for rollout in shifted[:3]:
        trace = monitor.trace(rollout)
        monitor.reset()
        decisions = [monitor.update(e, c) for e, c in zip(rollout.embeddings, rollout.action_chunks)]
        assert [d.step for d in decisions] == list(range(rollout.steps))
        assert [d.alarm for d in decisions] == trace.alarms.tolist()
        assert monitor.alarm_step == trace.alarm_step
        for name in monitor.scores_:
            assert np.allclose([d.scores[name] for d in decisions], trace.scores[name], rtol=1e-5)
            assert np.array_equal([d.thresholds[name] for d in decisions], trace.thresholds[name])


@pytest.mark.parametrize("style", THRESHOLD_STYLES)
def test_and_never_alarms_more_than_either_score_alone(monitor, held_out, style):
    rates = {}
    for scores in (("rnd",), ("ace",), ("rnd", "ace")):
        tuned = monitor.recalibrate(threshold=style, scores=scores, combine="and")
        rates[scores] = summarize(episode_table(tuned, held_out))["false_alarm_rate"]
    assert rates[("rnd", "ace")] <= min(rates[("rnd",)], rates[("ace",)])


@pytest.mark.slow
def test_false_alarm_rate_on_held_out_successes_stays_within_alpha_over_seeds(held_out):
    rates = {(style, combine): [] for style in THRESHOLD_STYLES for combine in COMBINES}
    for seed in range(4):
        base = fitted(seed)
        for style, combine in rates:
            tuned = base.recalibrate(threshold=style, combine=combine)
            rates[style, combine].append(summarize(episode_table(tuned, held_out))["false_alarm_rate"])
    # 30 calibration successes: one calibration's rate is Beta(3, 28)-distributed (sd 0.05); the mean
    # of 4 calibrations on 150 episodes each stays below alpha + 0.1 with a wide margin.
    for key, values in rates.items():
        assert np.mean(values) <= ALPHA + 0.1, (key, values)


def _shift_detection(monitor, shifted, style, combine):
    table = episode_table(monitor.recalibrate(threshold=style, combine=combine), shifted)
    flagged = table["alarm_step"].notna()
    early = (table["alarm_step"] < table["failure_step"])[flagged]
    return flagged.mean(), early.mean()


@pytest.mark.parametrize("style", THRESHOLD_STYLES)
@pytest.mark.parametrize("combine", COMBINES)
def test_drifting_rollouts_raise_alarms_before_their_failure(monitor, shifted, style, combine):
    flagged, early = _shift_detection(monitor, shifted, style, combine)
    assert flagged >= 0.8
    assert early >= 0.8


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_drifting_rollouts_raise_alarms_before_their_failure_over_seeds(seed):
    monitor, shifted = fitted(seed), rollouts(7000 + seed, 40, shifted=True)
    for style in THRESHOLD_STYLES:
        for combine in COMBINES:
            flagged, early = _shift_detection(monitor, shifted, style, combine)
            assert flagged >= 0.8 and early >= 0.8, (style, combine, flagged, early)


@pytest.mark.parametrize("style", THRESHOLD_STYLES)
def test_saved_and_reloaded_monitor_gives_identical_decisions(monitor, shifted, held_out, tmp_path, style):
    original = monitor.recalibrate(threshold=style, window=3)
    original.save(tmp_path / "mon")
    loaded = FailureMonitor.load(tmp_path / "mon")
    assert repr(loaded) == repr(original)
    for rollout in [held_out[0], shifted[0], shifted[1]]:
        for m in (original, loaded):
            m.reset()
        for e, c in zip(rollout.embeddings, rollout.action_chunks):
            assert original.update(e, c) == loaded.update(e, c)
    # The stored calibration streams recalibrate to the same thresholds as the original.
    a, b = original.recalibrate(alpha=0.2), loaded.recalibrate(alpha=0.2)
    for name in original.scores_:
        assert np.array_equal(a.thresholds_[name].values, b.thresholds_[name].values)


def test_load_refuses_a_folder_without_a_monitor(tmp_path):
    with pytest.raises(ValueError, match="holds no saved FailureMonitor"):
        FailureMonitor.load(tmp_path)


def test_decision_is_frozen(monitor, held_out):
    monitor.reset()
    decision = monitor.update(held_out[0].embeddings[0], held_out[0].action_chunks[0])
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.alarm = True


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "embedding, chunks, message",
    [
        (np.zeros(DIM + 1), np.zeros((CHUNKS, HORIZON, 5)), "embedding must have shape"),
        (np.zeros((1, DIM)), np.zeros((CHUNKS, HORIZON, 5)), "embedding must have shape"),
        (np.full(DIM, np.nan), np.zeros((CHUNKS, HORIZON, 5)), "embedding holds NaN"),
        (np.zeros(DIM), np.zeros((CHUNKS, HORIZON + 1, 5)), "chunks must have shape"),
        (np.zeros(DIM), np.zeros((CHUNKS - 1, HORIZON, 5)), "chunks must have shape"),
        (np.zeros(DIM), np.full((CHUNKS, HORIZON, 5), np.inf), "chunks hold NaN"),
        (np.zeros(DIM), None, "needs the step's action chunks"),
    ],
)
def test_update_rejects_bad_input(monitor, embedding, chunks, message):
    monitor.reset()
    with pytest.raises(ValueError, match=message):
        monitor.update(embedding, chunks)


def test_fit_rejects_no_rollouts_and_failures_only(shifted):
    with pytest.raises(ValueError, match="got none"):
        FailureMonitor().fit([])
    with pytest.raises(ValueError, match="none is successful"):
        FailureMonitor().fit(shifted)
    with pytest.raises(ValueError, match="expected a robogate.monitor.Rollout"):
        FailureMonitor().fit([np.zeros((5, DIM))])


def test_fit_rejects_fewer_calibration_rollouts_than_alpha_allows():
    # 30 successes split 15/15; alpha = 0.05 needs ceil(16 * 0.95) = 16 > 15 calibration rollouts.
    with pytest.raises(ValueError, match="15 calibration rollouts are too few for alpha=0.05"):
        FailureMonitor(alpha=0.05, rnd=RNDScorer(epochs=1)).fit(rollouts(2, 30))
    # "or" splits alpha over the two scores: 0.1 / 2 needs 19.
    with pytest.raises(ValueError, match="too few for alpha=0.05"):
        FailureMonitor(alpha=0.1, combine="or", rnd=RNDScorer(epochs=1)).fit(rollouts(2, 30))


def test_fit_rejects_ace_without_chunks_and_mixed_embedding_sizes():
    with pytest.raises(ValueError, match="carry no action chunks"):
        FailureMonitor(scores=("rnd", "ace")).fit(rollouts(3, 40, chunks=False))
    odd = [Rollout(embeddings=np.zeros((5, DIM + 2)))]
    with pytest.raises(ValueError, match="embeddings of different sizes"):
        FailureMonitor(alpha=0.5, rnd=RNDScorer(epochs=1)).fit(rollouts(3, 10) + odd * 4)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"alpha": 0.0}, "alpha must be"),
        ({"alpha": 1.0}, "alpha must be"),
        ({"alpha": -0.5}, "alpha must be"),
        ({"window": 0}, "window must be a positive integer"),
        ({"window": 2.5}, "window must be a positive integer"),
        ({"combine": "xor"}, "combine must be one of"),
        ({"threshold": "adaptive"}, "threshold must be one of"),
        ({"scores": ("rnd", "entropy")}, "scores entry must be one of"),
        ({"scores": ()}, "scores must name at least one"),
        ({"fit_fraction": 1.0}, "fit_fraction must be"),
    ],
)
def test_bad_settings_are_rejected_with_their_name(settings, message):
    with pytest.raises(ValueError, match=message):
        FailureMonitor(**settings)


def test_recalibrate_rejects_unfitted_scores_and_unknown_settings():
    monitor = FailureMonitor(alpha=ALPHA, rnd=RNDScorer(epochs=1)).fit(rollouts(4, 40, chunks=False))
    with pytest.raises(ValueError, match="were not fitted"):
        monitor.recalibrate(scores=("ace",))
    with pytest.raises(ValueError, match="recalibrate takes"):
        monitor.recalibrate(horizon=3)
    with pytest.raises(RuntimeError, match="not fitted"):
        FailureMonitor().update(np.zeros(DIM))


# ------------------------------------------------------------------------------ the scores


def test_ace_is_the_horizon_mean_of_histogram_entropies():
    rng = np.random.default_rng(0)
    ace = ActionChunkEntropy(bin_fraction=0.2).fit(rng.normal(size=(20, 32, 8, 5)))
    chunks = rng.normal(size=(32, 8, 5)) * 0.5
    points = np.cumsum(chunks[..., :3], axis=1)
    expected = []
    for h in range(8):
        _, counts = np.unique(np.floor(points[:, h] / ace.widths_), axis=0, return_counts=True)
        p = counts / counts.sum()
        expected.append(-(p * np.log(p)).sum())
    assert ace.score(chunks) == pytest.approx(np.mean(expected))
    assert ace.score(np.repeat(chunks[:1], 32, axis=0)) == 0.0  # all samples agree
    far_apart = np.zeros((32, 8, 5))
    far_apart[:, :, 0] = np.arange(32)[:, None] * 100.0  # every sample in its own cell
    assert ace.score(far_apart) == pytest.approx(np.log(32))


def test_rnd_scores_unfamiliar_embeddings_higher_and_is_seeded():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(2000, 6))
    a, b = RNDScorer(epochs=20, seed=3).fit(train), RNDScorer(epochs=20, seed=3).fit(train)
    familiar, novel = rng.normal(size=(200, 6)), rng.normal(size=(200, 6)) + 4.0
    assert np.array_equal(a.score(familiar), b.score(familiar))
    assert np.median(a.score(novel)) > 3 * np.median(a.score(familiar))
