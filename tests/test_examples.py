"""The examples a lab copies (examples/): panda-gym's pick-and-place on PyBullet and gymnasium-robotics'
Fetch push on MuJoCo, each a third-party env wrapped with robogate.ScenarioWrapper, through every command."""

import warnings

import gymnasium as gym
import gymnasium_robotics
import numpy as np

import robogate

gym.register_envs(gymnasium_robotics)


def test_wrapper_flattens_a_float64_dict_observation_into_float32_without_a_warning():
    space = robogate.ParameterSpace([robogate.Continuous("mass", 0.2, 50.0, log=True, nominal=2.0)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Gymnasium warns when a Box's bounds lose precision
        env = robogate.ScenarioWrapper(gym.make("FetchPush-v4"), space, observation_keys=("observation", "desired_goal"))
    obs, _ = env.reset(seed=0)
    assert env.observation_space.shape == (28,) and env.observation_space.dtype == np.float32
    assert obs.dtype == np.float32 and env.observation_space.contains(obs)
    env.close()
