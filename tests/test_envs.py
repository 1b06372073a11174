"""The Gymnasium environments: API contract, reproducibility, parameter validation."""

import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import robogate
from robogate.envs.interface import OBS_SIZE, OBS_SLICES
from robogate.envs.outcomes import OUTCOMES
from robogate.policies import ScriptedPolicy


class Still:
    """A policy that never moves and never closes the gripper."""

    def reset(self):
        pass

    def act(self, obs):
        return np.zeros(5, dtype=np.float32)


@pytest.fixture(scope="module")
def panda():
    env = gym.make("robogate/PickPlace-Panda-v0")
    yield env
    env.close()


def rollout(env, params, seed):
    """Observations, actions and the final info of one scripted episode."""
    policy = ScriptedPolicy()
    obs, _ = env.reset(seed=seed, options={"params": params})
    observations = [obs]
    while True:
        obs, _, terminated, truncated, info = env.step(policy.act(obs))
        observations.append(obs)
        if terminated or truncated:
            return np.array(observations), info


def test_three_arms_are_registered():
    assert robogate.ENV_IDS == [
        "robogate/PickPlace-Panda-v0",
        "robogate/PickPlace-UR5e-v0",
        "robogate/PickPlace-XArm6-v0",
    ]


@pytest.mark.parametrize("env_id", robogate.ENV_IDS)
def test_check_env(env_id):
    env = gym.make(env_id, render_mode="rgb_array")
    check_env(env.unwrapped)
    env.close()


def test_observation_layout_covers_the_vector(panda):
    obs, info = panda.reset(seed=0)
    assert obs.shape == (OBS_SIZE,) and obs.dtype == np.float32
    covered = sorted(i for s in OBS_SLICES.values() for i in range(s.start, s.stop))
    assert covered == list(range(OBS_SIZE))
    assert info["params"] == robogate.default_space().nominal()


def test_same_seed_and_params_reproduce_the_episode(panda):
    params = {"obstacles": 2, "shape": "cylinder", "mass": 0.6}
    first, info_a = rollout(panda, params, seed=11)
    rollout(panda, {"shape": "plate", "obstacles": 4, "friction": 0.1}, seed=3)  # history must not matter
    second, info_b = rollout(panda, params, seed=11)
    fresh = gym.make("robogate/PickPlace-Panda-v0")
    third, info_c = rollout(fresh, params, seed=11)
    fresh.close()
    assert np.array_equal(first, second) and np.array_equal(first, third)
    assert info_a["outcome"] == info_b["outcome"] == info_c["outcome"]


def test_a_numpy_integer_seed_is_a_seed(panda):
    first, _ = panda.reset(seed=np.int64(7), options={"params": {"obstacles": 2}})
    second, _ = panda.reset(seed=7, options={"params": {"obstacles": 2}})
    np.testing.assert_array_equal(first, second)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        panda.reset(seed=np.int64(-1))


def test_different_seeds_differ(panda):
    starts = {tuple(panda.reset(seed=s, options={"params": {"obstacles": 3}})[0]) for s in range(5)}
    assert len(starts) == 5


def test_episode_ends_with_exactly_one_known_outcome(panda):
    _, info = rollout(panda, {"shape": "sphere", "obstacles": 1}, seed=2)
    assert info["outcome"] in OUTCOMES
    assert info["success"] == (info["outcome"] == "success")
    assert info["params"]["shape"] == "sphere"


@pytest.mark.parametrize(
    "params, match",
    [
        ({"frictoin": 0.5}, "frictoin"),
        ({"friction": 5.0}, "friction.*0.05"),
        ({"mass": float("nan")}, "mass"),
        ({"size": "big"}, "size"),
        ({"obstacles": 1.5}, "obstacles"),
        ({"obstacles": 7}, "obstacles"),
        ({"shape": "torus"}, "shape"),
        ({"placement": "moon"}, "placement"),
        ({"ik_noise": -0.01}, "ik_noise"),
    ],
)
def test_bad_params_name_the_parameter(panda, params, match):
    with pytest.raises(ValueError, match=match):
        panda.reset(seed=0, options={"params": params})


def test_bad_options_and_actions(panda):
    with pytest.raises(ValueError, match="options"):
        panda.reset(seed=0, options={"parms": {}})
    panda.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        panda.step(np.zeros(4))
    with pytest.raises(ValueError, match="robot"):
        gym.make("robogate/PickPlace-Panda-v0", robot="KUKA")


def test_non_finite_action_ends_as_error(panda):
    panda.reset(seed=0)
    _, _, terminated, _, info = panda.step(np.array([0, 0, math.nan, 0, 1]))
    assert terminated and info["outcome"] == "error" and "non-finite" in info["error"]
    with pytest.raises(RuntimeError, match="reset"):
        panda.step(np.zeros(5))


@pytest.mark.parametrize("grip, outcome", [(0.0, "timeout"), (-1.0, "grasp_miss")],
                         ids=["never closed: timeout", "closed on nothing: grasp_miss"])
def test_time_limit_truncates_with_an_outcome(grip, outcome):
    env = gym.make("robogate/PickPlace-XArm6-v0", max_steps=5)
    env.reset(seed=0)
    for _ in range(5):
        _, _, terminated, truncated, info = env.step(np.array([0, 0, 0, 0, grip], dtype=np.float32))
        if terminated or truncated:
            break
    assert info["outcome"] == outcome
    assert (truncated and not terminated) or outcome == "grasp_miss"  # fingers meeting on nothing end it early
    env.close()


def test_a_policy_that_never_moves_times_out():
    record = robogate.run_episode("robogate/PickPlace-Panda-v0", Still(), seed=0)
    assert record["outcome"] == "timeout" and record["error"] is None


def test_render_returns_an_image():
    env = gym.make("robogate/PickPlace-UR5e-v0", render_mode="rgb_array")
    env.reset(seed=0, options={"params": {"obstacles": 2}})
    image = env.render()
    assert image.shape == (240, 320, 3) and image.dtype == np.uint8
    assert image.std() > 10  # a scene, not a blank frame
    env.close()
