"""The parallel-jaw gripper every arm carries, as a URDF fragment.

A palm with two prismatic fingers closing along the palm's y axis and a fixed
``tcp`` frame between the finger pads. Each finger opens from 0 to
:data:`FINGER_TRAVEL`; the gap between the pads is twice the finger position.
"""

from __future__ import annotations

FINGER_TRAVEL = 0.05
"""Travel of one finger (m): the pads open to a 0.10 m gap."""
FINGER_FORCE = 40.0
"""Force limit of each finger's drive (N): the grip force."""
FINGER_SPEED = 0.2
"""Speed limit of each finger (m/s)."""
PAD_FRICTION = 1.0
"""Lateral friction of the pads; the object's friction sets the contact's coefficient."""

PALM_DEPTH = 0.06  # palm height along the tool axis
PAD_LENGTH = 0.06  # finger length along the tool axis
PAD_THICKNESS = 0.012
PAD_WIDTH = 0.025
TCP_DEPTH = PALM_DEPTH + PAD_LENGTH - 0.015
"""Distance from the flange to the tool centre point, 15 mm above the finger tips."""
TIP_BELOW_TCP = PALM_DEPTH + PAD_LENGTH - TCP_DEPTH

FINGER_JOINTS = ("finger_left_joint", "finger_right_joint")
TCP_LINK = "tcp"


def _box_inertia(mass: float, x: float, y: float, z: float) -> str:
    ixx = mass * (y * y + z * z) / 12.0
    iyy = mass * (x * x + z * z) / 12.0
    izz = mass * (x * x + y * y) / 12.0
    return f'<inertia ixx="{ixx:.6g}" ixy="0" ixz="0" iyy="{iyy:.6g}" iyz="0" izz="{izz:.6g}"/>'


def _finger(side: str, sign: int) -> str:
    y = sign * PAD_THICKNESS / 2
    size = f"{PAD_WIDTH} {PAD_THICKNESS} {PAD_LENGTH}"
    return f"""
  <joint name="finger_{side}_joint" type="prismatic">
    <parent link="gripper_palm"/>
    <child link="finger_{side}"/>
    <origin xyz="0 0 {PALM_DEPTH}" rpy="0 0 0"/>
    <axis xyz="0 {sign} 0"/>
    <limit lower="0" upper="{FINGER_TRAVEL}" effort="{FINGER_FORCE}" velocity="{FINGER_SPEED}"/>
    <dynamics damping="1.0" friction="0.0"/>
  </joint>
  <link name="finger_{side}">
    <inertial>
      <origin xyz="0 {y} {PAD_LENGTH / 2}"/>
      <mass value="0.05"/>
      {_box_inertia(0.05, PAD_WIDTH, PAD_THICKNESS, PAD_LENGTH)}
    </inertial>
    <visual>
      <origin xyz="0 {y} {PAD_LENGTH / 2}"/>
      <geometry><box size="{size}"/></geometry>
      <material name="pad"><color rgba="0.15 0.15 0.15 1"/></material>
    </visual>
    <collision>
      <origin xyz="0 {y} {PAD_LENGTH / 2}"/>
      <geometry><box size="{size}"/></geometry>
    </collision>
  </link>"""


def gripper_urdf(parent_link: str, rpy: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> str:
    """URDF links and joints of the gripper, mounted on ``parent_link`` (the flange).

    The flange's +z axis must point out of the arm; ``rpy`` turns the gripper about it.
    """
    palm = (0.05, 2 * FINGER_TRAVEL + 2 * PAD_THICKNESS + 0.02, PALM_DEPTH)
    palm_size = " ".join(f"{v:.4f}" for v in palm)
    return f"""
  <joint name="gripper_mount" type="fixed">
    <parent link="{parent_link}"/>
    <child link="gripper_palm"/>
    <origin xyz="0 0 0" rpy="{rpy[0]} {rpy[1]} {rpy[2]}"/>
  </joint>
  <link name="gripper_palm">
    <inertial>
      <origin xyz="0 0 {PALM_DEPTH / 2}"/>
      <mass value="0.6"/>
      {_box_inertia(0.6, *palm)}
    </inertial>
    <visual>
      <origin xyz="0 0 {PALM_DEPTH / 2}"/>
      <geometry><box size="{palm_size}"/></geometry>
      <material name="palm"><color rgba="0.85 0.85 0.85 1"/></material>
    </visual>
    <collision>
      <origin xyz="0 0 {PALM_DEPTH / 2}"/>
      <geometry><box size="{palm_size}"/></geometry>
    </collision>
  </link>{_finger("left", 1)}{_finger("right", -1)}
  <joint name="tcp_joint" type="fixed">
    <parent link="gripper_palm"/>
    <child link="{TCP_LINK}"/>
    <origin xyz="0 0 {TCP_DEPTH}" rpy="0 0 0"/>
  </joint>
  <link name="{TCP_LINK}">
    <inertial><mass value="0.001"/>{_box_inertia(0.001, 0.01, 0.01, 0.01)}</inertial>
  </link>
"""
