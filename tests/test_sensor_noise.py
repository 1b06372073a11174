"""Sensor noise on robogate's observation: its size per field, its seeding, and an untouched scenario space."""

import gymnasium as gym
import numpy as np
import pytest

import robogate
from robogate.envs.interface import OBS_SLICES
from robogate.envs.sensor_noise import SENSOR_NOISE, SENSOR_NOISE_ENV_IDS, SensorNoise, noise_scale

NOISY = "robogate.envs.sensor_noise:robogate/PickPlace-Panda-SensorNoise-v0"


@pytest.fixture(scope="module")
def envs():
    clean, noisy = gym.make(robogate.ENV_IDS[0]), gym.make(SENSOR_NOISE_ENV_IDS[0])
    yield clean, noisy
    clean.close()
    noisy.close()


def test_noise_has_each_fields_size_and_leaves_exact_fields_and_empty_slots_alone(envs):
    clean, noisy = envs
    scene = {"obstacles": 1}
    diffs = []
    for seed in range(60):
        a, _ = clean.reset(seed=seed, options={"params": scene})
        b, _ = noisy.reset(seed=seed, options={"params": scene})
        diffs.append(b.astype(float) - a)
    diffs = np.array(diffs)
    spread = diffs.std(axis=0)
    scale = noise_scale()
    present = OBS_SLICES["obstacles"].start  # slot 0 holds the obstacle; slots 1-3 are empty
    for name in ("tcp_position", "object_position", "object_velocity", "target_position"):
        part = OBS_SLICES[name]
        np.testing.assert_allclose(spread[part], scale[part], rtol=0.35, err_msg=name)
    for name in ("pad_contacts", "object_shape"):
        assert np.all(diffs[:, OBS_SLICES[name]] == 0.0), name
    assert np.all(spread[present:present + 3] > 0) and np.all(diffs[:, present + 4:] == 0.0)
    assert SENSOR_NOISE["object_position"] == 0.004


def test_the_same_seed_gives_the_same_noise_and_the_space_is_robogates(envs):
    _, noisy = envs
    first = [noisy.reset(seed=3)[0]] + [noisy.step(np.zeros(5, np.float32))[0] for _ in range(3)]
    again = [noisy.reset(seed=3)[0]] + [noisy.step(np.zeros(5, np.float32))[0] for _ in range(3)]
    np.testing.assert_array_equal(np.array(first), np.array(again))
    assert noisy.unwrapped.parameter_space == robogate.default_space()
    with pytest.raises(ValueError, match="wraps robogate's pick-and-place envs"):
        SensorNoise(gym.make("CartPole-v1"))


@pytest.mark.slow
def test_a_noisy_env_records_rollouts_in_workers(tmp_path):
    from robogate.monitor import record_rollouts
    from robogate.policies import ScriptedPolicy

    rollouts = record_rollouts(NOISY, ScriptedPolicy(), episodes=2, params={}, seed=1, workers=2, progress=False)
    assert len(rollouts) == 2 and rollouts[0].observations.shape[1] == 43
