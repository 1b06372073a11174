"""The UR5e URDF asset against Universal Robots' published parameters.

Kinematics are checked against the standard DH model: the pose of ``tool0`` in
``base_link`` is the product of ``Rz(theta_i) Tz(d_i) Tx(a_i) Rx(alpha_i)`` for
i = 1..6, with no extra fixed transform at either end.
"""

from __future__ import annotations

import importlib.resources
import itertools
import math
import xml.etree.ElementTree as ET

import numpy as np
import pybullet
import pytest

PI = math.pi

# Universal Robots' published UR5e parameters (metres, radians, kg, N m, rad/s).
DH_D = (0.1625, 0.0, 0.0, 0.1333, 0.0997, 0.0996)
DH_A = (0.0, -0.425, -0.3922, 0.0, 0.0, 0.0)
DH_ALPHA = (PI / 2, 0.0, 0.0, PI / 2, -PI / 2, 0.0)
JOINTS = (
    "shoulder_pan_joint",
    "shoulder_lift_joint",
    "elbow_joint",
    "wrist_1_joint",
    "wrist_2_joint",
    "wrist_3_joint",
)
LINKS = (
    "shoulder_link",
    "upper_arm_link",
    "forearm_link",
    "wrist_1_link",
    "wrist_2_link",
    "wrist_3_link",
    "tool0",
)
EFFORT = (150.0, 150.0, 150.0, 28.0, 28.0, 28.0)
LIMIT = (2 * PI, 2 * PI, PI, 2 * PI, 2 * PI, 2 * PI)
VELOCITY = 3.14159
MASSES = {
    "shoulder_link": 3.761,
    "upper_arm_link": 8.058,
    "forearm_link": 2.846,
    "wrist_1_link": 1.37,
    "wrist_2_link": 1.3,
    "wrist_3_link": 0.365,
}
REACH = 0.85

ZERO = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
TOOL_DOWN = (0.0, -PI / 2, PI / 2, -PI / 2, -PI / 2, 0.0)
HOME = (2.8409, -1.6596, 2.0143, -1.9255, -1.5708, -1.8715)
"""tool0 at (0.45, 0, 0.35) in base_link, +z straight down, +x along base +x."""


def urdf_path():
    return importlib.resources.files("robogate.envs") / "assets" / "ur5e.urdf"


def dh_transform(theta: float, d: float, a: float, alpha: float) -> np.ndarray:
    ct, st = math.cos(theta), math.sin(theta)
    ca, sa = math.cos(alpha), math.sin(alpha)
    return np.array(
        [
            [ct, -st * ca, st * sa, a * ct],
            [st, ct * ca, -ct * sa, a * st],
            [0.0, sa, ca, d],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )


def dh_fk(q) -> np.ndarray:
    """Pose of the flange (tool0) in the base frame, from the standard DH model."""
    pose = np.eye(4)
    for theta, d, a, alpha in zip(q, DH_D, DH_A, DH_ALPHA):
        pose = pose @ dh_transform(theta, d, a, alpha)
    return pose


@pytest.fixture(scope="module")
def arm():
    """(client, body, {link name: index}) with self-collision and the file's inertia."""
    client = pybullet.connect(pybullet.DIRECT)
    try:
        with importlib.resources.as_file(urdf_path()) as path:
            body = pybullet.loadURDF(
                str(path),
                useFixedBase=True,
                flags=pybullet.URDF_USE_SELF_COLLISION | pybullet.URDF_USE_INERTIA_FROM_FILE,
                physicsClientId=client,
            )
        n = pybullet.getNumJoints(body, physicsClientId=client)
        index = {
            pybullet.getJointInfo(body, j, physicsClientId=client)[12].decode(): j for j in range(n)
        }
        index["base_link"] = -1
        yield client, body, index
    finally:
        pybullet.disconnect(client)


def set_joints(arm, q) -> None:
    client, body, _ = arm
    for j, value in enumerate(q):
        pybullet.resetJointState(body, j, value, physicsClientId=client)


def tool0_pose(arm) -> np.ndarray:
    client, body, index = arm
    state = pybullet.getLinkState(
        body, index["tool0"], computeForwardKinematics=True, physicsClientId=client
    )
    pose = np.eye(4)
    pose[:3, :3] = np.reshape(pybullet.getMatrixFromQuaternion(state[5]), (3, 3))
    pose[:3, 3] = state[4]  # the URDF link frame, not the inertial frame
    return pose


def urdf_links() -> dict[str, ET.Element]:
    root = ET.fromstring(urdf_path().read_text())
    return {link.get("name"): link for link in root.findall("link")}


def test_joints_match_published_limits(arm):
    client, body, index = arm
    assert pybullet.getNumJoints(body, physicsClientId=client) == 7
    infos = [pybullet.getJointInfo(body, j, physicsClientId=client) for j in range(7)]
    assert tuple(info[1].decode() for info in infos[:6]) == JOINTS
    assert tuple(info[12].decode() for info in infos) == LINKS
    for info, effort, limit in zip(infos[:6], EFFORT, LIMIT):
        assert info[2] == pybullet.JOINT_REVOLUTE
        assert info[8] == pytest.approx(-limit, abs=1e-9)
        assert info[9] == pytest.approx(limit, abs=1e-9)
        assert info[10] == pytest.approx(effort)
        assert info[11] == pytest.approx(VELOCITY)
        assert 0.0 < info[6] <= 1.0  # damping
        assert 0.0 <= info[7] <= 0.5  # friction
    tool = infos[6]
    assert tool[2] == pybullet.JOINT_FIXED
    assert tool[16] == index["wrist_3_link"]
    # every joint turns about its child link's z axis (pybullet reports axes in
    # the inertial frame, so read them from the file)
    root = ET.fromstring(urdf_path().read_text())
    axes = {
        j.get("name"): j.find("axis").get("xyz")
        for j in root.findall("joint")
        if j.get("type") == "revolute"
    }
    assert axes == {name: "0 0 1" for name in JOINTS}


def test_masses_match_published(arm):
    client, body, index = arm
    for name, mass in MASSES.items():
        info = pybullet.getDynamicsInfo(body, index[name], physicsClientId=client)
        assert info[0] == pytest.approx(mass), name
    assert pybullet.getDynamicsInfo(body, index["tool0"], physicsClientId=client)[0] < 0.01
    # pybullet reports a fixed base as massless; read the file instead
    base_mass = float(urdf_links()["base_link"].find("inertial/mass").get("value"))
    assert 2.0 < base_mass < 8.0


def test_inertia_tensors_are_physical(arm):
    client, body, index = arm
    for name, link in urdf_links().items():
        el = link.find("inertial/inertia")
        i = {k: float(el.get(k)) for k in ("ixx", "ixy", "ixz", "iyy", "iyz", "izz")}
        tensor = np.array(
            [
                [i["ixx"], i["ixy"], i["ixz"]],
                [i["ixy"], i["iyy"], i["iyz"]],
                [i["ixz"], i["iyz"], i["izz"]],
            ]
        )
        principal = np.linalg.eigvalsh(tensor)
        assert principal[0] > 0.0, name
        assert principal[0] + principal[1] >= principal[2] * (1 - 1e-9), name
        if name != "base_link":  # pybullet loads the file's tensor (diagonalised)
            diag = pybullet.getDynamicsInfo(body, index[name], physicsClientId=client)[2]
            np.testing.assert_allclose(sorted(diag), principal, rtol=1e-6, err_msg=name)


def test_centres_of_mass_lie_inside_the_links(arm):
    client, body, index = arm
    set_joints(arm, TOOL_DOWN)
    for name in MASSES:
        com = pybullet.getLinkState(
            body, index[name], computeForwardKinematics=True, physicsClientId=client
        )[0]
        lo, hi = pybullet.getAABB(body, index[name], physicsClientId=client)
        assert np.all(np.array(com) > lo) and np.all(np.array(com) < hi), name


def test_zero_configuration_frames(arm):
    """At zero the arm stretches along -x of base_link, the flange facing -y."""
    set_joints(arm, ZERO)
    pose = tool0_pose(arm)
    d1, _, _, d4, d5, d6 = DH_D
    np.testing.assert_allclose(pose[:3, 3], (DH_A[1] + DH_A[2], -(d4 + d6), d1 - d5), atol=1e-9)
    np.testing.assert_allclose(pose[:3, :3], [[1, 0, 0], [0, 0, -1], [0, 1, 0]], atol=1e-9)


def test_tool0_pose_matches_dh_forward_kinematics(arm):
    rng = np.random.default_rng(20240601)
    for _ in range(20):
        q = rng.uniform(-1.0, 1.0, 6) * np.array(LIMIT)
        set_joints(arm, q)
        pose = tool0_pose(arm)
        expected = dh_fk(q)
        np.testing.assert_allclose(pose[:3, 3], expected[:3, 3], atol=1e-6)
        np.testing.assert_allclose(pose[:3, :3], expected[:3, :3], atol=1e-6)


def test_reach_matches_published(arm):
    """Reach: the stretched-out (zero) pose, tool0's distance from the shoulder.

    Measured both from the shoulder-pan axis (horizontal distance, 0.8497 m)
    and from the shoulder centre, where the pan and lift axes meet (0.8556 m).
    """
    stretched = dh_fk(ZERO)[:3, 3]
    from_axis = math.hypot(stretched[0], stretched[1])
    from_centre = np.linalg.norm(stretched - np.array([0.0, 0.0, DH_D[0]]))
    assert from_axis == pytest.approx(REACH, abs=0.02)
    assert from_centre == pytest.approx(REACH, abs=0.02)
    set_joints(arm, ZERO)
    np.testing.assert_allclose(tool0_pose(arm)[:3, 3], stretched, atol=1e-6)


def non_adjacent_pairs(arm):
    client, body, index = arm
    parent = {j: pybullet.getJointInfo(body, j, physicsClientId=client)[16] for j in range(7)}
    solid = [
        i for i in range(-1, 7) if pybullet.getCollisionShapeData(body, i, physicsClientId=client)
    ]
    return [
        (a, b)
        for a, b in itertools.combinations(solid, 2)
        if parent.get(b) != a and parent.get(a) != b
    ]


def self_contacts(arm, q, margin: float = 0.0):
    """Non-adjacent link pairs closer than ``margin`` at joint vector ``q``."""
    client, body, _ = arm
    set_joints(arm, q)
    hits = set()
    for a, b in non_adjacent_pairs(arm):
        if pybullet.getClosestPoints(body, body, margin, a, b, physicsClientId=client):
            hits.add((a, b))
    pybullet.performCollisionDetection(physicsClientId=client)
    for point in pybullet.getContactPoints(body, body, physicsClientId=client):
        if point[8] < margin:
            hits.add(tuple(sorted((point[3], point[4]))))
    return hits


@pytest.mark.parametrize("q", [ZERO, TOOL_DOWN, HOME], ids=["zero", "tool_down", "home"])
def test_no_self_collision(arm, q):
    assert self_contacts(arm, q, margin=0.002) == set()


def test_self_collision_check_detects_a_folded_arm(arm):
    _, _, index = arm
    folded = (0.0, 0.0, PI, 0.0, 0.0, 0.0)  # forearm folded back onto the upper arm
    assert (index["upper_arm_link"], index["wrist_1_link"]) in self_contacts(arm, folded)


def test_home_pose(arm):
    set_joints(arm, HOME)
    pose = tool0_pose(arm)
    np.testing.assert_allclose(pose[:3, 3], (0.45, 0.0, 0.35), atol=2e-4)
    np.testing.assert_allclose(pose[:3, :3], np.diag([1.0, -1.0, -1.0]), atol=2e-4)


def test_flange_face_is_clear_for_a_mounted_tool():
    """wrist_3_link's collision stops short of tool0's xy plane, so a tool bolted
    to tool0 (a child of tool0, not of wrist_3_link) never touches it."""
    wrist_3 = urdf_links()["wrist_3_link"]
    assert urdf_links()["tool0"].find("collision") is None
    for collision in wrist_3.findall("collision"):
        assert collision.find("origin").get("rpy") == "0 0 0"
        top = float(collision.find("origin").get("xyz").split()[2])
        top += float(collision.find("geometry/cylinder").get("length")) / 2
        assert top <= -0.005
