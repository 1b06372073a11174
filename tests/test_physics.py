"""The simulator setters of robogate.physics, on real models: Fetch's MuJoCo scene (gymnasium-robotics)
and panda-gym's PyBullet scene, each checked in the model and in how the physics then moves."""

import subprocess
import sys
import textwrap

import gymnasium as gym
import gymnasium_robotics
import mujoco
import numpy as np
import panda_gym  # noqa: F401  (registers PandaPickAndPlace-v3)
import pytest

from robogate.physics import mujoco as mj
from robogate.physics import pybullet as pb

gym.register_envs(gymnasium_robotics)
TABLE_TOP = 0.4
"""Height (m) of the top of Fetch's table."""


@pytest.fixture
def fetch():
    """Fetch's push scene, reset: (model, data, the block's qpos address)."""
    env = gym.make("FetchPush-v4")
    env.reset(seed=0)
    model, data = env.unwrapped.model, env.unwrapped.data
    yield model, data, model.joint("object0:joint").qposadr[0]
    env.close()


def settle(model, data, steps=500):
    mujoco.mj_step(model, data, nstep=steps)


def table_force(model, data):
    """The normal force (N) the table pushes the block up with."""
    block, table = model.body("object0").id, model.body("table0").id
    total, wrench = 0.0, np.zeros(6)
    for i in range(data.ncon):
        bodies = {model.geom_bodyid[data.contact[i].geom1], model.geom_bodyid[data.contact[i].geom2]}
        if bodies == {block, table}:
            mujoco.mj_contactForce(model, data, i, wrench)
            total += wrench[0]
    return total


def test_mujoco_mass_scales_inertia_keeps_the_state_and_weighs_on_the_table(fetch):
    model, data, block = fetch
    body = model.body("object0").id
    settle(model, data)
    rest, inertia = data.qpos[block + 2], model.body_inertia[body].copy()
    assert table_force(model, data) == pytest.approx(2.0 * 9.81, rel=0.02)  # the block as compiled: 2 kg
    state = data.qpos.copy()
    mj.set_mass(model, data, "object0", 20.0)
    np.testing.assert_array_equal(data.qpos, state)  # the scene is where it was
    assert model.body_mass[body] == 20.0
    np.testing.assert_allclose(model.body_inertia[body], 10 * inertia)
    settle(model, data)
    assert table_force(model, data) == pytest.approx(20.0 * 9.81, rel=0.02)
    # MuJoCo's mass-derived constants are refreshed: the heavier block rests as deep as a compiled one
    assert abs(data.qpos[block + 2] - rest) < 2e-4


def slide(model, data, block, speed=0.5, steps=750):
    """Launch the block along the table at ``speed`` (m/s) and return how far it slides."""
    dof = model.jnt_dofadr[model.joint("object0:joint").id]
    start = data.qpos[block].copy()
    data.qvel[dof] = speed
    settle(model, data, steps)
    return data.qpos[block] - start


def test_mujoco_friction_takes_both_sides_of_a_contact(fetch):
    model, data, block = fetch
    settle(model, data)
    kind = mujoco.mjtState.mjSTATE_INTEGRATION
    state = np.empty(mujoco.mj_stateSize(model, kind))
    mujoco.mj_getState(model, data, state, kind)
    table = mj.body_geoms(model, "table0")
    assert len(table) == 1 and model.geom(table[0]).name == ""  # the table's box has no name of its own

    nominal = slide(model, data, block)
    mujoco.mj_setState(model, data, state, kind)
    mj.set_friction(model, "object0", 0.1)
    assert model.geom_friction[model.geom("object0").id, 0] == 0.1
    assert slide(model, data, block) == pytest.approx(nominal, abs=1e-3)  # the table's 1.0 still rules

    mujoco.mj_setState(model, data, state, kind)
    mj.set_friction(model, ["object0", *table], 0.1, torsional=0.001)
    np.testing.assert_array_equal(model.geom_friction[table[0], :2], [0.1, 0.001])
    slippery = slide(model, data, block)
    # v²/(2μg): 1.3 cm at μ = 1, 13 cm at μ = 0.1 (the contact's softness takes a little)
    assert nominal < 0.02 and 0.1 < slippery < 0.14


def test_mujoco_size_resizes_the_box_and_what_collision_culls_with(fetch):
    model, data, block = fetch
    geom = model.geom("object0").id
    mj.set_size(model, "object0", 0.04)
    np.testing.assert_array_equal(model.geom_size[geom], [0.04, 0.04, 0.04])
    assert model.geom_rbound[geom] == pytest.approx(0.04 * np.sqrt(3))
    settle(model, data)
    assert data.qpos[block + 2] == pytest.approx(TABLE_TOP + 0.04, abs=2e-3)  # the larger cube rests higher

    # 12 cm above a finger, a cube grown to 11 cm half-size touches it: the bounding volumes grew too
    finger = model.geom("robot0:r_gripper_finger_link").id
    mujoco.mj_forward(model, data)
    data.qpos[block:block + 3] = data.geom_xpos[finger] + [0.0, 0.0, 0.12]
    data.qpos[block + 3:block + 7] = [1.0, 0.0, 0.0, 0.0]

    def touching():
        mujoco.mj_forward(model, data)
        return any({data.contact[i].geom1, data.contact[i].geom2} == {geom, finger} for i in range(data.ncon))

    assert not touching()
    mj.set_size(model, "object0", [0.11, 0.11, 0.11])
    assert touching()


def test_mujoco_setters_name_what_is_wrong(fetch):
    model, data, _ = fetch
    with pytest.raises(ValueError, match=r"no body named 'cube'; its named bodies are \['world'") as info:
        mj.set_mass(model, data, "cube", 1.0)
    assert "\n" not in str(info.value) and "object0" in str(info.value)
    with pytest.raises(ValueError, match="no geom named 'table0'"):
        mj.set_friction(model, ["object0", "table0"], 0.5)
    with pytest.raises(ValueError, match="positive"):
        mj.set_mass(model, data, "object0", 0.0)
    with pytest.raises(ValueError, match="no mass of its own"):
        mj.set_mass(model, data, "world", 1.0)
    with pytest.raises(ValueError, match="non-negative"):
        mj.set_friction(model, "object0", -0.1)
    with pytest.raises(ValueError, match="a box takes 3 size number"):
        mj.set_size(model, "object0", [0.1, 0.1])
    with pytest.raises(ValueError, match="'floor0' is a plane"):
        mj.set_size(model, "floor0", 1.0)
    with pytest.raises(ValueError, match="an id from 0 to"):
        mj.set_friction(model, model.ngeom, 0.5)


@pytest.fixture
def panda():
    """panda-gym's pick-and-place scene: (env, its BulletClient, the cube's body id)."""
    env = gym.make("PandaPickAndPlace-v3")
    env.reset(seed=0)
    sim = env.unwrapped.sim
    yield env, sim.physics_client, sim._bodies_idx["object"]
    env.close()


def test_pybullet_setters_change_the_dynamics_and_hold_through_reset(panda):
    env, client, cube = panda
    mass, friction, inertia = client.getDynamicsInfo(cube, -1)[:3]
    assert (mass, friction) == (1.0, 0.5)
    pb.set_mass(client, cube, 3.0)
    pb.set_lateral_friction(client._client, cube, 0.2)  # the integer client id works too
    env.reset(seed=1)
    info = client.getDynamicsInfo(cube, -1)
    assert info[:2] == (3.0, pytest.approx(0.2))
    np.testing.assert_allclose(info[2], 3 * np.asarray(inertia))  # recomputed from the collision shape
    pb.set_lateral_friction(client, env.unwrapped.sim._bodies_idx["panda"], 0.7, link="panda_leftfinger")
    assert client.getDynamicsInfo(env.unwrapped.sim._bodies_idx["panda"], 9)[1] == pytest.approx(0.7)


def shove(env, client, cube, speed=0.5, steps=500):
    """Launch the cube along the table at ``speed`` (m/s) and return how far it slides."""
    env.reset(seed=0)
    start = client.getBasePositionAndOrientation(cube)[0][0]
    client.resetBaseVelocity(cube, [speed, 0.0, 0.0], [0.0, 0.0, 0.0])
    for _ in range(steps):
        client.stepSimulation()
    return client.getBasePositionAndOrientation(cube)[0][0] - start


def pull(env, client, cube, force=8.0, steps=250):
    """Pull the cube along the table with ``force`` (N) and return how far it moves."""
    env.reset(seed=0)
    start = client.getBasePositionAndOrientation(cube)[0][0]
    for _ in range(steps):
        position = client.getBasePositionAndOrientation(cube)[0]
        client.applyExternalForce(cube, -1, [force, 0.0, 0.0], position, client.WORLD_FRAME)
        client.stepSimulation()
    return client.getBasePositionAndOrientation(cube)[0][0] - start


def test_pybullet_physics_reacts_to_mass_and_friction(panda):
    env, client, cube = panda
    grippy = shove(env, client, cube)
    pb.set_lateral_friction(client, cube, 0.05)
    assert shove(env, client, cube) > 3 * grippy  # a slipperier cube slides farther
    pb.set_lateral_friction(client, cube, 0.5)
    # the contact's friction is the product of the cube's and the table's (0.5 each): 8 N drags
    assert pull(env, client, cube) > 0.01  # 1 kg, held by 0.25 * 1 * 9.81 = 2.5 N at most,
    pb.set_mass(client, cube, 5.0)
    assert abs(pull(env, client, cube)) < 1e-3  # but not 5 kg, held by up to 12 N


def test_pybullet_setters_name_what_is_wrong(panda):
    env, client, cube = panda
    with pytest.raises(ValueError, match=r"no body 99; its body ids are \[0, 1, 2, 3, 4\]"):
        pb.set_mass(client, 99, 1.0)
    with pytest.raises(ValueError, match="has only its base, link -1"):
        pb.set_mass(client, cube, 1.0, link=0)
    with pytest.raises(ValueError, match=r"no link named 'finger'; its links are \['panda_link1'"):
        pb.set_lateral_friction(client, env.unwrapped.sim._bodies_idx["panda"], 1.0, link="finger")
    with pytest.raises(ValueError, match="0 makes a body static"):
        pb.set_mass(client, cube, 0.0)
    with pytest.raises(ValueError, match="non-negative"):
        pb.set_lateral_friction(client, cube, -1.0)
    with pytest.raises(ValueError, match="a PyBullet physics client id"):
        pb.set_mass("client", cube, 1.0)


def test_importing_the_setters_imports_no_simulator():
    code = textwrap.dedent("""
        import sys, robogate, robogate.physics, robogate.physics.mujoco, robogate.physics.pybullet
        loaded = [m for m in ("mujoco", "pybullet") if m in sys.modules]
        print(loaded)
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"
