"""The scripted controller: reliable at nominal settings, and failing for physical reasons at the extremes."""

import collections

import gymnasium as gym
import pytest

import robogate
from robogate.envs import gripper
from robogate.envs.interface import OBS_SLICES
from robogate.execution.trial import Trial
from robogate.policies import ScriptedPolicy


def outcome_counts(pool, env_id: str, params: dict, seeds: range) -> collections.Counter:
    trials = [Trial(i, env_id, "scripted", params, seed, 1, 0) for i, seed in enumerate(seeds)]
    return collections.Counter(record["outcome"] for record in pool.imap_unordered(trials))


@pytest.mark.slow
@pytest.mark.parametrize("env_id", robogate.ENV_IDS)
def test_every_action_lies_in_the_arms_action_space(env_id):
    env, policy = gym.make(env_id), ScriptedPolicy()
    for params in ({}, {"friction": 0.1, "mass": 1.9, "obstacles": 3}):  # a success and a failure
        obs, _ = env.reset(seed=3, options={"params": params})
        policy.reset()
        done = False
        while not done:
            action = policy.act(obs)
            assert env.action_space.contains(action), action
            obs, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
    env.close()


def test_run_episode_returns_a_flat_record():
    record = robogate.run_episode("robogate/PickPlace-UR5e-v0", ScriptedPolicy(), params={"size": 0.03}, seed=7)
    assert record["outcome"] == "success" and record["success"] is True
    assert record["size"] == 0.03 and record["seed"] == 7 and record["env_id"] == "robogate/PickPlace-UR5e-v0"
    assert 0 < record["physics_time"] < record["wall_time"] and record["steps"] > 10
    assert all(not isinstance(v, (dict, list)) for v in record.values())


class Raising:
    def reset(self):
        pass

    def act(self, obs):
        raise RuntimeError("gripper driver offline")


def test_a_raising_policy_ends_as_error_not_a_crash():
    record = robogate.run_episode("robogate/PickPlace-Panda-v0", Raising(), seed=0)
    assert record["outcome"] == "error" and not record["success"]
    assert "gripper driver offline" in record["error"]


def test_an_object_wider_than_the_stroke_stops_the_arm_and_never_opens_the_fingers_further():
    env = gym.make("robogate/PickPlace-Panda-v0")
    policy = ScriptedPolicy()
    stroke = 2 * gripper.FINGER_TRAVEL
    for seed in range(5):
        obs, _ = env.reset(seed=seed, options={"params": {"size": 0.12}})
        policy.reset()
        widest, done = 0.0, False
        while not done:
            obs, _, terminated, truncated, info = env.step(policy.act(obs))
            widest = max(widest, float(obs[OBS_SLICES["gripper_opening"]][0]))
            done = terminated or truncated
        assert info["outcome"] == "collision", (seed, info)
        assert widest < stroke + 0.003, (seed, widest)
    env.close()


@pytest.mark.slow
@pytest.mark.parametrize("env_id", robogate.ENV_IDS)
def test_nominal_success_rate_is_at_least_95_percent(local_pool, env_id):
    counts = outcome_counts(local_pool, env_id, {}, range(100))
    assert counts["success"] >= 95, counts


# Extreme corners: (parameters, largest success share, outcomes expected to dominate).
CORNERS = {
    "slippery and heavy": ({"friction": 0.05, "mass": 2.0}, 0.2, {"grasp_miss", "grip_loss"}),
    "wider than the gripper": ({"size": 0.12}, 0.0, {"collision"}),
    "4 obstacles at the reach limit": ({"obstacles": 4, "placement": "reach_limit"}, 0.85, {"collision"}),
    "large calibration error": ({"ik_noise": 0.04}, 0.4, {"grasp_miss", "collision"}),
}


@pytest.mark.slow
@pytest.mark.parametrize("env_id", robogate.ENV_IDS)
@pytest.mark.parametrize("corner", CORNERS)
def test_physics_decides_at_extreme_corners(local_pool, env_id, corner):
    params, max_success, expected = CORNERS[corner]
    n = 30
    counts = outcome_counts(local_pool, env_id, params, range(1000, 1000 + n))
    assert counts["success"] <= max_success * n, counts
    failures = n - counts["success"]
    assert sum(counts[o] for o in expected) >= 0.5 * failures, counts
