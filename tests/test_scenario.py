"""One scenario, three readers: the parameter space, the env and the scripted controller agree.

The shapes and placements are declared once, in ``robogate.envs.scene``; these tests check that
the space offers exactly them, that the env builds what the tables say, and that the scripted
controller handles every one of them.
"""

import math

import gymnasium as gym
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

import robogate
from robogate.envs.interface import OBS_SIZE, OBS_SLICES
from robogate.envs.scene import PLACEMENTS, SHAPES, TABLE_X, TABLE_Y
from robogate.envs.simulator import pybullet
from robogate.execution.trial import Trial
from robogate.policies import ScriptedPolicy

SPACE = robogate.default_space()


@pytest.fixture(scope="module")
def panda():
    env = gym.make("robogate/PickPlace-Panda-v0")
    yield env
    env.close()


def test_the_space_offers_exactly_the_env_tables_in_their_order():
    assert SPACE["shape"].choices == tuple(SHAPES)
    assert SPACE["placement"].choices == tuple(PLACEMENTS)
    assert SPACE["shape"].nominal == next(iter(SHAPES))
    assert SPACE["placement"].nominal == next(iter(PLACEMENTS))
    assert all(name == shape.name for name, shape in SHAPES.items())
    assert all(name == placement.name for name, placement in PLACEMENTS.items())


def test_the_observation_has_one_shape_slot_per_table_entry(panda):
    one_hot = OBS_SLICES["object_shape"]
    assert one_hot.stop - one_hot.start == len(SHAPES) == SPACE["shape"].n_values
    assert panda.observation_space.shape == (OBS_SIZE,)


def footprint_radii(sim, body, directions=16, reach=0.15):
    """Distance from the body's centre to its surface in equally spaced horizontal directions (ray casts)."""
    centre, _ = sim.client.getBasePositionAndOrientation(body)
    angles = 2 * math.pi * np.arange(directions) / directions
    starts = [(centre[0] + reach * math.cos(a), centre[1] + reach * math.sin(a), centre[2]) for a in angles]
    hits = sim.client.rayTestBatch(starts, [centre] * directions)
    assert all(hit[0] == body for hit in hits)
    return np.array([math.dist(hit[3][:2], centre[:2]) for hit in hits])


@pytest.mark.parametrize("shape", SPACE["shape"].choices)
@pytest.mark.parametrize("size", [SPACE["size"].low, SPACE["size"].nominal, SPACE["size"].high])
def test_the_env_builds_the_shape_the_table_describes(panda, shape, size):
    obs, _ = panda.reset(seed=0, options={"params": {"shape": shape, "size": size}})
    one_hot = obs[OBS_SLICES["object_shape"]]
    assert one_hot.sum() == 1 and one_hot[SPACE["shape"].choices.index(shape)] == 1
    geometry = SHAPES[shape].geometry(size)
    sim = panda.unwrapped.sim
    body = sim.bodies["object"]
    assert sim.client.getCollisionShapeData(body, -1)[0][2] == getattr(pybullet, geometry.shape)
    low, high = sim.client.getAABB(body)
    assert high[2] - low[2] == pytest.approx(geometry.height, abs=1e-3)  # the height the controller plans with
    assert low[2] == pytest.approx(0.0, abs=1e-3)  # resting on the table
    _, quat = sim.client.getBasePositionAndOrientation(body)
    along = Rotation.from_quat(quat).as_matrix()[:, SHAPES[shape].long_axis]
    assert abs(along[2]) < 1e-6  # the long axis lies horizontal
    radii, period = footprint_radii(sim, body), SHAPES[shape].yaw_symmetry
    if period is None:  # round about the vertical
        assert np.ptp(radii) < 1e-3, radii
    else:  # the same after a turn by the period, and not round
        shift = round(period / (2 * math.pi) * len(radii))
        np.testing.assert_allclose(np.roll(radii, shift), radii, atol=1e-3)
        assert np.ptp(radii) > 2e-3, radii


def _yaw(obs):
    sin_yaw, cos_yaw = obs[OBS_SLICES["tcp_yaw"]]
    return math.atan2(sin_yaw, cos_yaw)


@pytest.mark.parametrize("shape", SPACE["shape"].choices)
@pytest.mark.parametrize("seed", [0, 1])
def test_the_controller_grasps_every_shape_across_its_long_axis(panda, shape, seed):
    spec, policy = SHAPES[shape], ScriptedPolicy()
    obs, _ = panda.reset(seed=seed, options={"params": {"shape": shape}})
    start_yaw, info, at_grasp = _yaw(obs), {}, None
    while not info:
        action = policy.act(obs)
        if policy.phase == "grasp" and at_grasp is None:
            at_grasp = obs  # the scene as the fingers start to close
        obs, _, _, _, info = panda.step(action)
    assert info["outcome"] == "success", info
    tool_yaw = _yaw(at_grasp)
    if spec.yaw_symmetry is None:  # round about the vertical: no need to turn the tool
        assert tool_yaw == pytest.approx(start_yaw, abs=0.01)
    else:
        along = Rotation.from_quat(at_grasp[OBS_SLICES["object_orientation"]]).as_matrix()[:, spec.long_axis]
        period = spec.yaw_symmetry
        misalignment = (tool_yaw - math.atan2(along[1], along[0]) + period / 2) % period - period / 2
        assert abs(misalignment) < 0.06


@pytest.mark.parametrize("env_id", robogate.ENV_IDS)
def test_every_placement_is_a_target_on_the_table(env_id):
    env = gym.make(env_id)
    reach = env.unwrapped.robot.spec.place_reach
    for name in SPACE["placement"].choices:
        obs, _ = env.reset(seed=0, options={"params": {"placement": name}})
        target = PLACEMENTS[name].target(reach)
        np.testing.assert_allclose(obs[OBS_SLICES["target_position"]], target, atol=1e-6)
        assert TABLE_X[0] < target[0] < TABLE_X[1] and TABLE_Y[0] < target[1] < TABLE_Y[1], name
        has_platform = "platform" in env.unwrapped.sim.bodies
        assert has_platform == (target[2] > 0), name
    env.close()


@pytest.mark.slow
def test_the_controller_reaches_every_placement_with_every_arm(local_pool):
    grid = [(env_id, name) for env_id in robogate.ENV_IDS for name in SPACE["placement"].choices]
    trials = [Trial(i, env_id, "scripted", {"placement": name}, i, 1, 0) for i, (env_id, name) in enumerate(grid)]
    records = list(local_pool.imap_unordered(trials))
    assert len(records) == len(trials)
    assert not [r for r in records if r["outcome"] == "error"]
    for name in SPACE["placement"].choices:
        placed = sum(r["success"] for r in records if r["placement"] == name)
        assert placed >= len(robogate.ENV_IDS) - 1, (name, placed)
    assert sum(r["success"] for r in records) >= 0.9 * len(records)
