"""FailureMonitor: calibration on successes, alarms on drifting rollouts, persistence, bad input."""

import dataclasses
import warnings

import numpy as np
import pytest

from robogate.monitor import COMBINES, THRESHOLD_STYLES, FailureMonitor, Rollout, scores
from robogate.monitor.metrics import episode_table, summarize
from robogate.monitor.scores import RND, ObservationRND
from tests.monitor_synthetic import CHUNKS, DIM, HORIZON, OBS, rollouts

ALPHA = 0.1
ALL_SCORES = ("rnd", "obs_rnd", "ace", "consistency", "density")


def every_score(seed: int) -> list:
    """Each registered built-in score, the RND ones trained briefly."""
    return [RND(epochs=15, seed=seed), ObservationRND(epochs=15, seed=seed), "ace", "consistency", "density"]


def fitted(seed: int, n: int = 60, **settings) -> FailureMonitor:
    """A monitor with every built-in score fitted on n synthetic successes (half fit, half calibrate)."""
    settings.setdefault("alpha", ALPHA)
    return FailureMonitor(scores=every_score(seed), seed=seed, **settings).fit(rollouts(1000 + seed, n))


@pytest.fixture(scope="module")
def monitor() -> FailureMonitor:
    return fitted(0)


@pytest.fixture(scope="module")
def held_out() -> list[Rollout]:
    return rollouts(5000, 150)


@pytest.fixture(scope="module")
def shifted() -> list[Rollout]:
    return rollouts(6000, 40, shifted=True)


@pytest.mark.slow
def test_default_monitor_uses_the_default_scores_the_rollouts_carry():
    monitor = FailureMonitor(alpha=0.2).fit(rollouts(1, 30))
    assert monitor.scores_ == ("rnd", "obs_rnd") and monitor.combine == "or"
    no_embedding = [Rollout(observations=r.observations, success=True) for r in rollouts(2, 30)]
    assert FailureMonitor(alpha=0.2).fit(no_embedding).scores_ == ("obs_rnd",)
    no_observation = [Rollout(embeddings=r.embeddings, success=True) for r in rollouts(3, 30)]
    alone = FailureMonitor(alpha=0.2).fit(no_observation)
    assert alone.scores_ == ("rnd",)
    alone.reset()
    assert set(alone.update(np.zeros(DIM)).scores) == {"rnd"}  # no observation needed


@pytest.mark.slow
def test_fit_uses_successes_only(monitor, shifted):
    assert monitor.scores_ == ALL_SCORES
    assert (monitor.n_fit_, monitor.n_calibration_) == (30, 30)
    assert monitor.signals_ == {"observations": (OBS,), "embeddings": (DIM,), "action_chunks": (CHUNKS, HORIZON, 5)}
    again = FailureMonitor(alpha=ALPHA, scores=every_score(0)).fit(rollouts(1000, 60) + shifted)
    assert (again.n_fit_, again.n_calibration_) == (30, 30)  # the 40 failures are left out
    for name in monitor.scores_:
        assert np.array_equal(again.thresholds_[name].values, monitor.thresholds_[name].values)


@pytest.mark.slow
@pytest.mark.parametrize("combine", COMBINES)
def test_update_step_by_step_matches_the_offline_trace(monitor, shifted, combine):
    tuned = monitor.recalibrate(combine=combine)
    for rollout in shifted[:3]:
        trace = tuned.trace(rollout)
        tuned.reset()
        decisions = [tuned.update(e, c, observation=o)
                     for e, c, o in zip(rollout.embeddings, rollout.action_chunks, rollout.observations)]
        assert [d.step for d in decisions] == list(range(rollout.steps))
        assert [d.alarm for d in decisions] == trace.alarms.tolist()
        assert tuned.alarm_step == trace.alarm_step
        for name in tuned.scores_:
            assert np.allclose([d.scores[name] for d in decisions], trace.scores[name], rtol=1e-5)
            assert np.array_equal([d.thresholds[name] for d in decisions], trace.thresholds[name])
        first = decisions[trace.alarm_step]
        assert first.above and all(first.normalized[n] > 1 for n in first.above)


@pytest.mark.slow
@pytest.mark.parametrize("style", THRESHOLD_STYLES)
def test_and_never_alarms_more_than_either_score_alone(monitor, held_out, style):
    rates = {}
    for names in (("rnd",), ("ace",), ("rnd", "ace")):
        tuned = monitor.recalibrate(threshold=style, scores=names, combine="and")
        rates[names] = summarize(episode_table(tuned, held_out))["false_alarm_rate"]
    assert rates[("rnd", "ace")] <= min(rates[("rnd",)], rates[("ace",)])


@pytest.mark.slow
def test_false_alarm_rate_on_held_out_successes_stays_within_alpha_over_seeds(held_out):
    variants = [((name,), "or") for name in ALL_SCORES] + [(ALL_SCORES, c) for c in COMBINES]
    rates = {(names, combine, style): [] for names, combine in variants for style in THRESHOLD_STYLES}
    for seed in range(4):
        base = fitted(seed)
        for names, combine, style in rates:
            tuned = base.recalibrate(scores=names, combine=combine, threshold=style)
            rates[names, combine, style].append(summarize(episode_table(tuned, held_out))["false_alarm_rate"])
    # 30 calibration successes: one calibration's rate is Beta(3, 28)-distributed (sd 0.05); the mean
    # of 4 calibrations on 150 episodes each stays below alpha + 0.1 with a wide margin.
    for key, values in rates.items():
        assert np.mean(values) <= ALPHA + 0.1, (key, values)


def _shift_detection(monitor, shifted, **settings):
    table = episode_table(monitor.recalibrate(**settings), shifted)
    flagged = table["alarm_step"].notna()
    early = (table["alarm_step"] <= table["failure_step"])[flagged]
    return flagged.mean(), early.mean()


@pytest.mark.parametrize("name", ALL_SCORES)
def test_each_score_catches_drifting_rollouts_before_their_failure(monitor, shifted, name):
    flagged, early = _shift_detection(monitor, shifted, scores=(name,))
    assert flagged >= 0.8 and early >= 0.8, (flagged, early)


COMBINATIONS = [(("rnd", "ace"), "and"), (("rnd", "ace"), "or"), (("rnd", "obs_rnd"), "or")]
"""FIPER's AND and OR, and the default OR. (An AND is as late as its slowest score.)"""


@pytest.mark.parametrize("style", THRESHOLD_STYLES)
@pytest.mark.parametrize("pair, combine", COMBINATIONS)
def test_combined_alarms_catch_drifting_rollouts_before_their_failure(monitor, shifted, style, pair, combine):
    flagged, early = _shift_detection(monitor, shifted, threshold=style, combine=combine, scores=pair)
    assert flagged >= 0.8 and early >= 0.8


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_drifting_rollouts_raise_alarms_before_their_failure_over_seeds(seed):
    monitor, shifted = fitted(seed), rollouts(7000 + seed, 40, shifted=True)
    for style in THRESHOLD_STYLES:
        for pair, combine in COMBINATIONS:
            flagged, early = _shift_detection(monitor, shifted, threshold=style, combine=combine, scores=pair)
            assert flagged >= 0.8 and early >= 0.8, (style, combine, pair, flagged, early)
    for name in ALL_SCORES:
        flagged, early = _shift_detection(monitor, shifted, scores=(name,))
        assert flagged >= 0.8 and early >= 0.8, (name, flagged, early)


@pytest.mark.parametrize("style", THRESHOLD_STYLES)
def test_saved_and_reloaded_monitor_gives_identical_decisions(monitor, shifted, held_out, tmp_path, style):
    original = monitor.recalibrate(threshold=style, window=3, scores=ALL_SCORES)
    original.save(tmp_path / "mon")
    loaded = FailureMonitor.load(tmp_path / "mon")
    assert repr(loaded) == repr(original) and loaded.describe() == original.describe()
    for rollout in [held_out[0], shifted[0], shifted[1]]:
        for m in (original, loaded):
            m.reset()
        for e, c, o in zip(rollout.embeddings, rollout.action_chunks, rollout.observations):
            assert original.update(e, c, observation=o) == loaded.update(e, c, observation=o)
    # The stored calibration streams recalibrate to the same thresholds as the original.
    a, b = original.recalibrate(alpha=0.2), loaded.recalibrate(alpha=0.2)
    for name in original.scores_:
        assert np.array_equal(a.thresholds_[name].values, b.thresholds_[name].values)
    # ... and the reloaded scores score new rollouts exactly as the fitted ones.
    for name, values in original.step_scores(shifted[2]).items():
        np.testing.assert_array_equal(values, loaded.step_scores(shifted[2])[name])


def test_load_refuses_missing_and_damaged_monitors_in_one_line(monitor, tmp_path):
    with pytest.raises(ValueError, match="holds no saved FailureMonitor"):
        FailureMonitor.load(tmp_path)
    monitor.save(tmp_path / "m")
    (tmp_path / "m" / "arrays.npz").write_bytes(b"hello")
    with pytest.raises(ValueError, match="damaged FailureMonitor") as caught:
        FailureMonitor.load(tmp_path / "m")
    assert "\n" not in str(caught.value)
    monitor.save(tmp_path / "m2")
    text = (tmp_path / "m2" / "monitor.json").read_text().replace('"kind": "density"', '"kind": "unheard_of"')
    (tmp_path / "m2" / "monitor.json").write_text(text)
    with pytest.raises(ValueError, match="unknown score 'unheard_of'.*register it before loading"):
        FailureMonitor.load(tmp_path / "m2")


def test_decision_is_frozen(monitor, held_out):
    monitor.reset()
    r = held_out[0]
    decision = monitor.update(r.embeddings[0], r.action_chunks[0], observation=r.observations[0])
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.alarm = True


# ------------------------------------------------------------------------------ bad input

GOOD = {"embedding": np.zeros(DIM), "chunks": np.zeros((CHUNKS, HORIZON, 5)), "observation": np.zeros(OBS)}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"embedding": np.zeros(DIM + 1)}, "embedding must have shape"),
        ({"embedding": np.zeros((1, DIM))}, "embedding must have shape"),
        ({"embedding": np.full(DIM, np.nan)}, "embedding holds NaN"),
        ({"chunks": np.zeros((CHUNKS, HORIZON + 1, 5))}, "chunks must have shape"),
        ({"chunks": np.zeros((CHUNKS - 1, HORIZON, 5))}, "chunks must have shape"),
        ({"chunks": np.full((CHUNKS, HORIZON, 5), np.inf)}, "chunks holds NaN"),
        ({"chunks": None}, r"scores \['ace', 'consistency'\] read the chunks"),
        ({"observation": None}, r"scores \['obs_rnd'\] read the observation"),
    ],
)
def test_update_rejects_bad_input(monitor, change, message):
    monitor.reset()
    with pytest.raises(ValueError, match=message):
        monitor.update(**{**GOOD, **change})


def test_fit_rejects_no_rollouts_and_failures_only(shifted):
    with pytest.raises(ValueError, match="got none"):
        FailureMonitor().fit([])
    with pytest.raises(ValueError, match="none is successful"):
        FailureMonitor().fit(shifted)
    with pytest.raises(ValueError, match="expected a robogate.monitor.Rollout"):
        FailureMonitor().fit([np.zeros((5, DIM))])


def test_too_few_calibration_rollouts_are_refused_counting_the_split():
    # 30 successes split 15/15; alpha = 0.05 needs 19 calibration rollouts: 37 successes split 18/19.
    with pytest.raises(ValueError, match=r"30 successful rollouts are too few for alpha=0.05: 50% of them "
                                         r"calibrate .* needs 19 calibration rollouts; record at least 37"):
        FailureMonitor(alpha=0.05).fit(rollouts(2, 30))
    with pytest.raises(ValueError, match="too few for alpha=0.05"):
        FailureMonitor(alpha=0.05).fit(rollouts(2, 30), calibration=rollouts(3, 10))


def test_scores_that_need_missing_signals_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="score 'ace' reads action_chunks, but 40 of the 40 .* n_chunks > 0"):
        FailureMonitor(scores=("rnd", "ace")).fit(rollouts(3, 40, chunks=False))
    odd = [Rollout(embeddings=np.zeros((5, DIM + 2)))]
    with pytest.raises(ValueError, match="embeddings of different shapes"):
        FailureMonitor(alpha=0.5, scores=[RND(epochs=1)]).fit(rollouts(3, 10) + odd * 4)
    with pytest.raises(ValueError, match="a Rollout needs its embeddings or its observations"):
        Rollout(action_chunks=np.zeros((3, 2, 2, 5)))


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
        ({"scores": ("rnd", "entropy")}, "unknown score 'entropy'; registered scores: rnd, obs_rnd"),
        ({"scores": ()}, "scores must name at least one"),
        ({"scores": ("rnd", "rnd")}, "more than once"),
        ({"scores": [object()]}, "lacks fit()"),
        ({"fit_fraction": 1.0}, "fit_fraction must be"),
    ],
)
def test_bad_settings_are_rejected_with_their_name(settings, message):
    with pytest.raises(ValueError, match=message):
        FailureMonitor(**settings)


def test_recalibrate_rejects_unfitted_scores_and_unknown_settings():
    monitor = FailureMonitor(alpha=ALPHA, scores=[RND(epochs=1)]).fit(rollouts(4, 40, chunks=False))
    with pytest.raises(ValueError, match="were not fitted"):
        monitor.recalibrate(scores=("ace",))
    with pytest.raises(ValueError, match="recalibrate takes"):
        monitor.recalibrate(horizon=3)
    with pytest.raises(RuntimeError, match="not fitted"):
        FailureMonitor().update(np.zeros(DIM))


def test_as_default_is_the_monitor_of_default_settings(monitor):
    default = monitor.as_default()
    assert default.scores_ == ("rnd", "obs_rnd")
    assert (default.alpha, default.window, default.combine, default.threshold) == (
        FailureMonitor().alpha, FailureMonitor().window, FailureMonitor().combine, FailureMonitor().threshold)


# ------------------------------------------------------------------------------ the scores


def test_ace_is_the_horizon_mean_of_histogram_entropies():
    rng = np.random.default_rng(0)
    ace = scores.ActionChunkEntropy(bin_fraction=0.2).fit_chunks(rng.normal(size=(20, 32, 8, 5)))
    chunks = rng.normal(size=(32, 8, 5)) * 0.5
    points = np.cumsum(chunks[..., :3], axis=1)
    expected = []
    for h in range(8):
        _, counts = np.unique(np.floor(points[:, h] / ace.widths_), axis=0, return_counts=True)
        p = counts / counts.sum()
        expected.append(-(p * np.log(p)).sum())
    assert ace.entropy(chunks) == pytest.approx(np.mean(expected))
    assert ace.entropy(np.repeat(chunks[:1], 32, axis=0)) == 0.0  # all samples agree
    far_apart = np.zeros((32, 8, 5))
    far_apart[:, :, 0] = np.arange(32)[:, None] * 100.0  # every sample in its own cell
    assert ace.entropy(far_apart) == pytest.approx(np.log(32))


@pytest.mark.slow
def test_rnd_scores_unfamiliar_inputs_higher_and_is_seeded():
    rng = np.random.default_rng(0)
    train = [Rollout(embeddings=rng.normal(size=(2000, 6)), observations=rng.normal(size=(2000, 3)))]
    a, b = RND(epochs=20, seed=3).fit(train), RND(epochs=20, seed=3).fit(train)
    familiar = Rollout(embeddings=rng.normal(size=(200, 6)))
    novel = Rollout(embeddings=rng.normal(size=(200, 6)) + 4.0)
    assert np.array_equal(a.score(familiar), b.score(familiar))
    assert np.median(a.score(novel)) > 3 * np.median(a.score(familiar))
    on_obs = ObservationRND(epochs=20).fit(train)
    assert on_obs.dim_ == 3  # it read the observations, not the embeddings


def test_consistency_is_zero_for_steady_plans_and_grows_when_plans_contradict():
    rng = np.random.default_rng(0)
    score = scores.ChunkConsistency()
    # Each step's 16 plans follow one fixed trajectory from where the episode now is: the overlaps agree.
    path = rng.normal(size=(20, 5))
    steady = np.stack([np.repeat(path[None, t:t + 8], 16, axis=0) for t in range(6)])
    assert np.allclose(score.score(Rollout(embeddings=np.zeros((6, 2)), action_chunks=steady)), 0.0)
    jumping = steady + rng.normal(size=(6, 1, 1, 5))  # every step plans somewhere else
    assert np.all(score.score(Rollout(embeddings=np.zeros((6, 2)), action_chunks=jumping))[1:] > 0.5)


@pytest.mark.slow
def test_density_matches_scikit_learns_mixture_likelihood():
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    rng = np.random.default_rng(1)
    x = (rng.normal(size=(400, 5)) @ rng.normal(size=(5, 5))).astype(np.float32).astype(np.float64)
    density = scores.EmbeddingDensity(components=3).fit([Rollout(embeddings=x)])
    z = (x - x.mean(0)) / x.std(0)
    pca = PCA(0.99, random_state=0).fit(z)
    mixture = GaussianMixture(3, covariance_type="full", reg_covar=1e-3, random_state=0).fit(pca.transform(z))
    y = rng.normal(size=(20, 5)).astype(np.float32).astype(np.float64)
    expected = -mixture.score_samples(pca.transform((y - x.mean(0)) / x.std(0)))
    np.testing.assert_allclose(density.negative_log_likelihood(y), expected, rtol=1e-6)
    # The score is measured from the most likely fitting step, so it is never negative.
    offset = np.min(-mixture.score_samples(pca.transform(z)))
    np.testing.assert_allclose(density.score(Rollout(embeddings=y)), np.maximum(expected - offset, 0.0),
                               rtol=1e-6, atol=1e-9)  # Rollout keeps float32


def test_the_readme_states_how_many_successful_rollouts_a_monitor_needs():
    from pathlib import Path

    from robogate.monitor.monitor import minimum_successes

    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    stated = f"**{minimum_successes(0.05)} at α = 0.05** (the default), {minimum_successes(0.1)} at 0.1, " \
             f"{minimum_successes(0.2)} at 0.2"
    assert stated in readme


class _Memorizer(scores.PerStepScore):
    """Distance from a step's observation to the nearest fitting step: zero on the episodes it was fitted on."""

    signals = ("observations",)

    def fit(self, rollouts):
        self.seen = np.concatenate([r.observations for r in rollouts])
        return self

    def score_steps(self, arrays):
        obs = arrays["observations"]
        return np.min(np.linalg.norm(obs[:, None, :] - self.seen[None], axis=2), axis=1)


class _Prefitted(scores.PerStepScore):
    """Arrives trained: the observation's distance from the origin."""

    signals = ("observations",)
    prefitted = True

    def score_steps(self, arrays):
        return np.linalg.norm(arrays["observations"], axis=1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_score_fitted_beside_a_prefitted_one_does_not_silence_it(seed):
    # A memorizing score is tight on its own fitting episodes; profiled there, it would set the OR alarm's
    # common scale alone and push the prefitted score's threshold out of reach.
    successes = rollouts(seed, 120)
    failures = rollouts(100 + seed, 60, shifted=True)
    alone = FailureMonitor(scores=[_Prefitted()], seed=seed).fit(successes)
    both = FailureMonitor(scores=[_Memorizer(), _Prefitted()], seed=seed).fit(successes)
    ratio = both.thresholds_["_Prefitted"].values.max() / alone.thresholds_["_Prefitted"].values.max()
    assert 0.8 < ratio < 2.0, ratio
    caught_alone = summarize(episode_table(alone, failures))["tpr"]
    caught_both = summarize(episode_table(both, failures))["tpr"]
    assert caught_both >= caught_alone - 0.05


class _Probability(scores.PerStepScore):
    """Arrives trained and gives values in [0, 1], as a failure predictor does."""

    signals = ("observations",)
    prefitted = True
    upper_bound = 1.0

    def score_steps(self, arrays):
        return 1.0 / (1.0 + np.exp(-arrays["observations"][:, 0]))


def test_a_bounded_score_that_can_never_alarm_beside_others_is_warned_of():
    successes = rollouts(0, 60)
    # Calibration successes far out along the observation: _Prefitted's peaks there set the common scale.
    far = [dataclasses.replace(r, observations=r.observations + 5.0) for r in rollouts(1, 60)]
    with pytest.warns(RuntimeWarning, match="'_Probability' can never reach its threshold"):
        FailureMonitor(scores=[_Probability(), _Prefitted()]).fit(successes, calibration=far)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FailureMonitor(scores=[_Probability()]).fit(successes, calibration=far)
