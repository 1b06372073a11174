"""The score plug-in contract: a score registered from outside robogate works end to end, unchanged."""

import gymnasium as gym
import numpy as np
import pytest

from robogate.envs.interface import OBS_SLICES
from robogate.monitor import FailureMonitor, MonitoredEnv, record_rollouts, scores
from robogate.policies import ScriptedPolicy
from tests.helpers import ENV_ID

SHIFT = {"com_offset": 0.4, "mass": 1.0}  # a heavy, lopsided object swings in the grasp


class ObjectSpeed(scores.PerStepScore):
    """A user's score: the object's speed in units of its typical speed in successful episodes."""

    signals = ("observations",)

    def __init__(self, *, quantile: float = 0.9) -> None:
        self.quantile = quantile

    def fit(self, rollouts):
        speeds = np.concatenate([self._speed(r.observations) for r in rollouts])
        self.typical_ = np.array(np.quantile(speeds, self.quantile) + 1e-6)
        return self

    @staticmethod
    def _speed(observations):
        return np.linalg.norm(np.asarray(observations)[:, OBS_SLICES["object_velocity"]], axis=1)

    def score_steps(self, arrays):
        return self._speed(arrays["observations"]) / self.typical_

    def get_config(self):
        return {"quantile": self.quantile}

    def get_state(self):
        return {"typical": self.typical_}

    def set_state(self, state):
        self.typical_ = np.asarray(state["typical"])


@pytest.fixture(scope="module")
def registered():
    scores.register("object_speed", ObjectSpeed)
    yield "object_speed"


@pytest.mark.slow
def test_a_registered_score_is_fitted_saved_reloaded_and_used_in_the_loop(registered, tmp_path):
    rollouts = record_rollouts(ENV_ID, ScriptedPolicy(), episodes=12, params={}, seed=0, progress=False)
    monitor = FailureMonitor(alpha=0.25, scores=["obs_rnd", registered]).fit(rollouts)
    assert monitor.scores_ == ("obs_rnd", "object_speed")
    monitor.save(tmp_path / "m")
    loaded = FailureMonitor.load(tmp_path / "m")
    assert loaded.score_objects_["object_speed"].typical_ == monitor.score_objects_["object_speed"].typical_
    decisions = {}
    for name, m in (("fitted", monitor), ("loaded", loaded)):
        policy = ScriptedPolicy()
        env = MonitoredEnv(gym.make(ENV_ID), policy, m, on_alarm="flag")
        obs, info = env.reset(seed=100, options={"params": SHIFT})
        steps = []
        while True:
            obs, _, terminated, truncated, info = env.step(policy.act(obs))
            steps.append(info["monitor"])
            if terminated or truncated:
                break
        decisions[name] = steps
    assert decisions["fitted"] == decisions["loaded"]
    assert all("object_speed" in d.scores for d in decisions["fitted"])


@pytest.mark.slow
def test_an_unregistered_score_object_runs_but_cannot_be_saved(tmp_path):
    rollouts = record_rollouts(ENV_ID, ScriptedPolicy(), episodes=6, params={}, seed=0, progress=False)

    class Unlisted(ObjectSpeed):
        pass

    monitor = FailureMonitor(alpha=0.5, scores=[Unlisted()]).fit(rollouts)
    assert monitor.scores_ == ("Unlisted",)
    with pytest.raises(ValueError, match="is not registered, so a saved monitor could not rebuild it"):
        monitor.save(tmp_path / "m")
