"""The score contract, checked for every registered score; the dynamics score; RND's scale and support."""

import numpy as np
import pytest

from robogate.monitor import FailureMonitor, FailurePredictor, Rollout, scores
from robogate.monitor.scores import RND, DynamicsConsistency, ObservationRND, Step
from tests.monitor_synthetic import labelled, rollouts

BUILT_IN = tuple(scores.names())
"""The scores robogate registers (read at import, before any test registers one of its own)."""
QUICK = {"rnd": {"epochs": 10}, "obs_rnd": {"epochs": 10}, "predictor": {"epochs": 15, "hidden": 32},
         "dynamics": {"epochs": 30, "inputs": "observation+action"}}  # the stream that needs the last action


@pytest.fixture(scope="module")
def data():
    return {"fit": rollouts(21, 40), "ok": rollouts(22, 8), "shifted": rollouts(23, 8, shifted=True),
            "labelled": labelled(24, 40)}


@pytest.fixture(scope="module", params=BUILT_IN)
def fitted(request, data):
    name = request.param
    score = scores.make(name, **QUICK.get(name, {}))
    return name, score.fit(data["labelled"] if getattr(score, "needs_failures", False) else data["fit"])


def live(score, rollout):
    """The score of every step as a running monitor gets it, step by step."""
    stream = score.stream()
    return np.array([stream.update(Step(t, observations=rollout.observations[t], embeddings=rollout.embeddings[t],
                                        action_chunks=rollout.action_chunks[t],
                                        actions=None if t == 0 else rollout.actions[t - 1]))
                     for t in range(rollout.steps)])


def test_every_score_gives_one_finite_non_negative_value_per_step_live_as_offline(fitted, data):
    name, score = fitted
    for rollout in data["ok"][:3] + data["shifted"][:3]:
        values = np.asarray(score.score(rollout), dtype=float)
        assert values.shape == (rollout.steps,), name
        assert np.all(np.isfinite(values)) and values.min() >= 0.0, (name, values.min())
        np.testing.assert_allclose(live(score, rollout), values, rtol=1e-4, atol=1e-5, err_msg=name)


def test_every_score_restores_from_its_config_and_plain_arrays(fitted, data):
    name, score = fitted
    state = score.get_state()
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in state.values()), name
    again = scores.make(name, **score.get_config())
    again.set_state(state)
    if name == "predictor":
        again.signals = score.signals
    rollout = data["shifted"][0]
    np.testing.assert_allclose(again.score(rollout), score.score(rollout), rtol=1e-5, atol=1e-6, err_msg=name)


def test_the_density_is_never_negative_even_where_the_likelihood_exceeds_one():
    """Embeddings packed in tight clusters (as a policy's phases are) have densities far above 1."""
    rng = np.random.default_rng(0)
    centres = 3.0 * rng.normal(size=(8, 12))
    packed = centres[rng.integers(0, 8, 3000)] + 0.05 * rng.normal(size=(3000, 12))
    density = scores.make("density").fit([Rollout(embeddings=packed)])
    assert density.negative_log_likelihood(packed).max() < 0.0  # the raw score would be negative everywhere
    assert density.score(Rollout(embeddings=packed)).min() == 0.0
    assert density.score(Rollout(embeddings=np.ones((3, 12)))).min() > 0.0


def episode(rng, steps=40, gain=1.0, slip_at=None):
    """A held object that follows the gripper: its position moves by gain * action, until a slip stops it."""
    actions = rng.normal(size=(steps, 3))
    follow = np.full(steps, gain)
    if slip_at is not None:
        follow[slip_at:] = 0.1
    position = np.vstack([np.zeros(3), np.cumsum(follow[:-1, None] * actions[:-1], axis=0)])
    observations = np.hstack([position, 0.01 * rng.normal(size=(steps, 2))])
    failed = slip_at is not None
    return Rollout(observations=observations, actions=actions, success=not failed,
                   outcome="grip_loss" if failed else "success", failure_step=slip_at + 3 if failed else None)


def test_the_dynamics_score_sees_the_world_stop_following_the_robot_before_the_failure():
    rng = np.random.default_rng(0)
    monitor = FailureMonitor(alpha=0.1, scores=[DynamicsConsistency(inputs="observation+action", epochs=60)]).fit(
        [episode(rng) for _ in range(60)])
    slips = [episode(rng, slip_at=int(rng.integers(10, 30))) for _ in range(20)]
    caught = [monitor.trace(r).alarm_step for r in slips]
    assert all(a is not None and a <= r.failure_step for a, r in zip(caught, slips))
    quiet = [monitor.trace(episode(rng)).alarm_step is None for _ in range(40)]
    assert np.mean(quiet) >= 0.75


def test_the_dynamics_score_reads_the_last_action_and_says_so():
    rng = np.random.default_rng(1)
    monitor = FailureMonitor(alpha=0.2, scores=[DynamicsConsistency(inputs="observation+action", epochs=20)]).fit(
        [episode(rng) for _ in range(12)])
    assert monitor.reads == ("observations", "actions")
    monitor.reset()
    monitor.update(observation=np.zeros(5))  # the first step has no action before it
    with pytest.raises(ValueError, match="pass last_action= to update"):
        monitor.update(observation=np.zeros(5))
    assert DynamicsConsistency().signals == ("observations",)  # the default reads no action
    with pytest.raises(ValueError, match="inputs must be one of"):
        DynamicsConsistency(inputs="action")
    with pytest.raises(ValueError, match="target='object' reads robogate's observation layout"):
        DynamicsConsistency(target="object", epochs=2).fit([episode(rng) for _ in range(4)])


def varying_and_constant(rng, n):
    """Inputs whose first element spans [-1, 1], the rest noise of their own, and a last one always 0."""
    x = np.hstack([rng.uniform(-1, 1, size=(n, 1)), rng.normal(size=(n, 4)), np.zeros((n, 1))])
    return x.astype(np.float32)


@pytest.mark.slow
def test_rnd_sees_an_element_far_past_its_seen_range_and_not_sensor_noise_on_a_constant_one():
    rng = np.random.default_rng(2)
    rnd = ObservationRND(epochs=30).fit([Rollout(observations=varying_and_constant(rng, 3000))])
    typical = rnd.score(Rollout(observations=varying_and_constant(rng, 2000)))
    far = varying_and_constant(rng, 200)
    far[:, 0] = 4.0  # 1.5 ranges past the largest value seen
    noisy = varying_and_constant(rng, 200)
    noisy[:, -1] = 0.01 * rng.normal(size=200)  # a centimetre of noise where fitting saw none
    q99 = np.quantile(typical, 0.99)
    assert np.median(rnd.score(Rollout(observations=far))) > 3 * q99
    assert np.quantile(rnd.score(Rollout(observations=noisy)), 0.9) < q99
    plain = ObservationRND(epochs=30, support=0.0).fit([Rollout(observations=varying_and_constant(rng, 3000))])
    assert np.median(plain.score(Rollout(observations=far))) < np.median(rnd.score(Rollout(observations=far)))


def test_an_rnd_saved_before_the_support_term_scores_as_it_was_calibrated():
    rng = np.random.default_rng(3)
    rnd = RND(epochs=5).fit([Rollout(embeddings=rng.normal(size=(300, 4)))])
    old = {k: v for k, v in rnd.get_state().items() if k not in ("low", "high", "gain")}
    again = RND(epochs=5)
    again.set_state(old)
    x = Rollout(embeddings=np.full((2, 4), 9.0))
    assert np.all(again.score(x) < rnd.score(x))  # the RND distance alone, no support term


def test_the_predictor_reads_no_actions():
    predictor = FailurePredictor(epochs=3, hidden=8).fit(labelled(5, 20))
    assert "actions" not in predictor.signals


def test_a_monitored_policy_gives_the_dynamics_score_the_action_it_took():
    from robogate.monitor import MonitoredPolicy

    class Mover:
        def reset(self):
            self.rng = np.random.default_rng(0)

        def act(self, obs):
            return self.rng.normal(size=3).astype(np.float32)

    rng = np.random.default_rng(4)
    monitor = FailureMonitor(alpha=0.2, scores=[DynamicsConsistency(inputs="observation+action", epochs=20)]).fit(
        [episode(rng) for _ in range(12)])
    wrapped = MonitoredPolicy(Mover(), monitor, on_alarm="flag")
    wrapped.reset()
    obs = np.zeros(5)
    for _ in range(6):
        action = wrapped.act(obs)
        obs = obs + np.concatenate([action, np.zeros(2)])  # the world follows the action
    assert wrapped.decision.step == 5 and wrapped.decision.scores["dynamics"] >= 0.0
