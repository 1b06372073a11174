"""The arms: their URDF sources, the shared gripper mounted on each, and Cartesian control.

Every arm is assembled from its own description with the gripper of
:mod:`robogate.envs.gripper` on its flange, and driven the same way: a tool
pose (position, yaw about the vertical, tool pointing down) solved by PyBullet's
damped-least-squares IK and tracked by the joint position drives at the arm's
torque and speed limits.
"""

from __future__ import annotations

import math
import os
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from importlib import resources

import numpy as np

from . import gripper
from .simulator import Simulator, pybullet, pybullet_data


@dataclass(frozen=True)
class RobotSpec:
    """How to build one arm.

    Attributes
    ----------
    name : str
        Short name used in env ids (``Panda``, ``UR5e``, ``XArm6``).
    urdf : str
        The arm's URDF: a path inside ``pybullet_data`` or, with ``packaged``, in robogate's assets.
    flange : str
        Link the gripper is mounted on (its +z axis points out of the arm).
    drop_links : tuple of str
        Links of the original description to remove (an original hand).
    mount_yaw : float
        Rotation of the gripper about the flange axis (rad).
    inertia_from_file : bool
        Use the URDF's inertia tensors; otherwise PyBullet derives them from the
        collision shapes (for descriptions whose tensors it rejects).
    home_seed : tuple of float
        An elbow-up joint vector near the home pose; IK refines it.
    place_reach : float
        Horizontal distance (m) of the ``reach_limit`` placements: 97 % of the farthest
        point at table height the tool reaches pointing down (measured with this gripper).
    """

    name: str
    urdf: str
    flange: str
    home_seed: tuple[float, ...]
    place_reach: float
    drop_links: tuple[str, ...] = ()
    mount_yaw: float = 0.0
    packaged: bool = False
    inertia_from_file: bool = True


ROBOTS: dict[str, RobotSpec] = {
    spec.name: spec
    for spec in (
        RobotSpec(
            name="Panda",
            urdf="franka_panda/panda.urdf",
            flange="panda_link8",
            drop_links=("panda_hand", "panda_leftfinger", "panda_rightfinger", "panda_grasptarget"),
            mount_yaw=-math.pi / 4,
            home_seed=(0.0, -0.2, 0.0, -2.3, 0.0, 2.1, math.pi / 4),
            place_reach=0.64,
        ),
        RobotSpec(
            name="UR5e",
            urdf="ur5e.urdf",
            flange="tool0",
            packaged=True,
            home_seed=(2.84, -1.66, 2.01, -1.93, -1.57, -1.87),
            place_reach=0.70,
        ),
        RobotSpec(
            name="XArm6",
            urdf="xarm/xarm6_robot.urdf",
            flange="link6",
            home_seed=(0.0, -0.3, -0.9, 0.0, 1.2, 0.0),
            inertia_from_file=False,
            place_reach=0.58,
        ),
    )
}

HOME_TCP = np.array([0.35, 0.0, 0.30])
"""Tool centre point at the start of every episode (m, world frame; the arm's base is at the origin)."""


def assemble_urdf(spec: RobotSpec) -> str:
    """The arm's URDF text with its original hand removed and robogate's gripper mounted.

    Mesh paths are made absolute so the text can be loaded from any folder.
    """
    if spec.packaged:
        path = str(resources.files("robogate.envs") / "assets" / spec.urdf)
    else:
        path = os.path.join(pybullet_data.getDataPath(), spec.urdf)
    folder = os.path.dirname(path)
    root = ET.parse(path).getroot()
    dropped = set(spec.drop_links)
    for link in root.findall("link"):
        if link.get("name") in dropped:
            root.remove(link)
    for joint in root.findall("joint"):
        if joint.find("child").get("link") in dropped:
            root.remove(joint)
    for mesh in root.iter("mesh"):
        name = mesh.get("filename")
        relative = name.removeprefix("package://")
        candidates = [os.path.join(folder, relative), os.path.join(folder, "..", relative)]
        mesh.set("filename", os.path.abspath(next((c for c in candidates if os.path.exists(c)), candidates[0])))
    fragment = ET.fromstring(f"<robot>{gripper.gripper_urdf(spec.flange, (0.0, 0.0, spec.mount_yaw))}</robot>")
    root.extend(list(fragment))
    return ET.tostring(root, encoding="unicode")


def down_orientation(yaw: float) -> tuple[float, float, float, float]:
    """Quaternion of a tool pointing straight down, turned by ``yaw`` about the vertical."""
    return pybullet.getQuaternionFromEuler((math.pi, 0.0, yaw))


class Robot:
    """An arm with the shared gripper, loaded once into a :class:`Simulator`.

    Parameters
    ----------
    sim : Simulator
    spec : RobotSpec
    """

    def __init__(self, sim: Simulator, spec: RobotSpec) -> None:
        self.sim = sim
        self.spec = spec
        with tempfile.NamedTemporaryFile("w", suffix=".urdf", delete=False) as handle:
            handle.write(assemble_urdf(spec))
        try:
            flags = pybullet.URDF_USE_INERTIA_FROM_FILE if spec.inertia_from_file else 0
            self.body = sim.load_urdf("robot", handle.name, useFixedBase=True, flags=flags)
        finally:
            os.unlink(handle.name)
        client = sim.client
        self.arm_joints: list[int] = []
        self.finger_joints: list[int] = []
        self.links: dict[str, int] = {client.getBodyInfo(self.body)[0].decode(): -1}
        lower, upper, effort, speed = [], [], [], []
        for j in range(client.getNumJoints(self.body)):
            info = client.getJointInfo(self.body, j)
            name, kind = info[1].decode(), info[2]
            self.links[info[12].decode()] = j
            if name in gripper.FINGER_JOINTS:
                self.finger_joints.append(j)
            elif kind == pybullet.JOINT_REVOLUTE:
                self.arm_joints.append(j)
                lower.append(info[8])
                upper.append(info[9])
                effort.append(info[10])
                speed.append(info[11])
        self.tcp_link = self.links[gripper.TCP_LINK]
        self.finger_links = [self.links["finger_left"], self.links["finger_right"]]
        self.lower = np.array(lower)
        self.upper = np.array(upper)
        self.effort = np.array(effort)
        self.max_speed = np.array(speed)
        # Movable joints in PyBullet's IK order (arm joints come before the fingers).
        self._movable = sorted(self.arm_joints + self.finger_joints)
        self._arm_in_movable = [self._movable.index(j) for j in self.arm_joints]
        # IK limits and drive forces as plain lists, built once for the control loop.
        self._ik_lower = [float(v) for v in self.lower] + [0.0, 0.0]
        self._ik_upper = [float(v) for v in self.upper] + [gripper.FINGER_TRAVEL] * 2
        self._ik_ranges = [float(v) for v in self.upper - self.lower] + [gripper.FINGER_TRAVEL] * 2
        self._drive_joints = self.arm_joints + self.finger_joints
        self._drive_forces = [float(v) for v in self.effort] + [gripper.FINGER_FORCE] * 2
        for j, speed in zip(self.arm_joints, self.max_speed):
            client.changeDynamics(self.body, j, maxJointVelocity=float(speed))
        for link in self.finger_links:
            client.changeDynamics(self.body, link, lateralFriction=gripper.PAD_FRICTION)
        self.home = self._solve_home()
        self._home_rest = [float(v) for v in self.home] + [0.0, 0.0]
        self.go_home()

    def _solve_home(self) -> np.ndarray:
        q = np.array(self.spec.home_seed, dtype=float)
        for _ in range(20):
            self._set_joints(q, opening=gripper.FINGER_TRAVEL)
            q = self.inverse_kinematics(HOME_TCP, 0.0, rest=np.array(self.spec.home_seed), iterations=50)
        return q

    def _set_joints(self, q: np.ndarray, opening: float) -> None:
        for j, value in zip(self.arm_joints, q):
            self.sim.client.resetJointState(self.body, j, float(value))
        for j in self.finger_joints:
            self.sim.client.resetJointState(self.body, j, opening)

    def go_home(self) -> None:
        """Put the arm at home with the gripper open, drives holding that pose."""
        self._set_joints(self.home, gripper.FINGER_TRAVEL)
        self.command_joints(self.home, gripper.FINGER_TRAVEL)

    def inverse_kinematics(
        self, position: np.ndarray, yaw: float, rest: np.ndarray | None = None, iterations: int = 20
    ) -> np.ndarray:
        """Arm joint vector placing the tool centre point at ``position``, pointing down at ``yaw``."""
        rest_poses = self._home_rest if rest is None else [float(v) for v in rest] + [0.0, 0.0]
        solution = self.sim.client.calculateInverseKinematics(
            self.body,
            self.tcp_link,
            targetPosition=[float(v) for v in position],
            targetOrientation=down_orientation(yaw),
            lowerLimits=self._ik_lower,
            upperLimits=self._ik_upper,
            jointRanges=self._ik_ranges,
            restPoses=rest_poses,
            maxNumIterations=iterations,
            residualThreshold=1e-4,
        )
        q = np.asarray(solution)[self._arm_in_movable]
        return np.clip(q, self.lower, self.upper)

    def command_joints(self, q: np.ndarray, opening: float) -> None:
        """Send joint position targets to the arm drives and the finger opening to the gripper."""
        self.sim.client.setJointMotorControlArray(
            self.body,
            self._drive_joints,
            pybullet.POSITION_CONTROL,
            targetPositions=[float(v) for v in q] + [float(opening)] * 2,
            forces=self._drive_forces,
        )

    def tcp_pose(self) -> tuple[np.ndarray, float]:
        """Position of the tool centre point and its yaw about the vertical."""
        state = self.sim.client.getLinkState(self.body, self.tcp_link, computeForwardKinematics=1)
        rotation = self.sim.client.getMatrixFromQuaternion(state[5])
        # The finger axis (tool y) of a down-pointing tool at yaw psi is (sin psi, -cos psi, 0).
        yaw = math.atan2(rotation[1], -rotation[4])
        return np.asarray(state[4]), yaw

    def finger_opening(self) -> float:
        """Current gap between the finger pads (m)."""
        states = self.sim.client.getJointStates(self.body, self.finger_joints)
        return float(states[0][0] + states[1][0])
