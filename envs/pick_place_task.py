"""The pick-and-place task: table, object, place target, obstacles, observation and outcome.

The scenario parameters fix the scene; the episode's random generator draws its
nuisance variation (the object's start pose, obstacle positions, the
calibration error behind ``ik_noise``).
"""

from __future__ import annotations

import math

import numpy as np

from .interface import MAX_OBSTACLES
from .outcomes import Measurement, Outcome, OutcomeDetector
from .robots import Robot
from .scene import PLACEMENTS, SHAPES, TABLE_X, TABLE_Y
from .simulator import Simulator, pybullet

PICK_XY = np.array([0.45, -0.20])
"""Nominal pick location (m); the object starts within :data:`PICK_JITTER` of it."""
PICK_JITTER = 0.03
YAW_JITTER = math.pi / 4
ROLLING_FRICTION = 0.001
"""Rolling and spinning friction of the object: a released ball rolls a few centimetres, not off the table."""


class PickPlaceTask:
    """Builds a scenario into the world and judges the episode.

    Parameters
    ----------
    sim : Simulator
    robot : Robot
    reach_radius : float
        Horizontal distance from the base of the ``reach_limit`` placements (m).
    """

    def __init__(self, sim: Simulator, robot: Robot, reach_radius: float) -> None:
        self.sim = sim
        self.robot = robot
        self.reach_radius = reach_radius
        cx, cy = np.mean(TABLE_X), np.mean(TABLE_Y)
        hx, hy = np.diff(TABLE_X)[0] / 2, np.diff(TABLE_Y)[0] / 2
        sim.create_body(
            "table", pybullet.GEOM_BOX, mass=0.0, position=(cx, cy, -0.025),
            halfExtents=[hx, hy, 0.025], rgba=(0.72, 0.6, 0.45, 1.0), transient=False,
        )
        self.obstacle_ids: set[int] = set()
        self.obstacle_table = np.zeros((MAX_OBSTACLES, 4))
        self.params: dict = {}

    # -- scene -----------------------------------------------------------------
    def build(self, params: dict, rng: np.random.Generator) -> None:
        """Create the object, target, platform and obstacles of one episode."""
        self.params = params
        size, shape = params["size"], SHAPES[params["shape"]]
        geom = shape.geometry(size)
        self.object_height = geom.height
        self.target = PLACEMENTS[params["placement"]].target(self.reach_radius)
        xy = PICK_XY + rng.uniform(-PICK_JITTER, PICK_JITTER, size=2)
        yaw = rng.uniform(-YAW_JITTER, YAW_JITTER)
        orientation = pybullet.getQuaternionFromEuler((0.0, shape.tilt, yaw))
        self.rest_height = geom.height / 2
        com = [0.0, 0.0, 0.0]
        com[shape.long_axis] = params["com_offset"] * size
        obj = self.sim.create_body(
            "object", getattr(pybullet, geom.shape), mass=params["mass"], position=(*xy, self.rest_height),
            orientation=orientation, com_offset=com, rgba=(0.85, 0.25, 0.2, 1.0), **geom.kwargs,
        )
        self.sim.client.changeDynamics(
            obj, -1, lateralFriction=params["friction"], spinningFriction=ROLLING_FRICTION,
            rollingFriction=ROLLING_FRICTION,
        )
        self.detector = OutcomeDetector(self.rest_height)
        self.obstacle_ids = set()
        if self.target[2] > 0:
            platform = self.sim.create_body(
                "platform", pybullet.GEOM_BOX, mass=0.0,
                position=(self.target[0], self.target[1], self.target[2] / 2),
                halfExtents=[0.07, 0.07, self.target[2] / 2], rgba=(0.45, 0.45, 0.5, 1.0),
            )
            self.obstacle_ids.add(platform)  # the arm striking the platform is a collision
        self.sim.create_body(
            "target_marker", pybullet.GEOM_CYLINDER, mass=0.0, collision=False,
            position=(self.target[0], self.target[1], self.target[2] + 0.0005),
            radius=0.03, height=0.001, rgba=(0.2, 0.8, 0.3, 0.6),
        )
        self.obstacle_table = np.zeros((MAX_OBSTACLES, 4))
        for i, (ox, oy, height) in enumerate(self._obstacle_layout(params["obstacles"], xy, rng)):
            name = f"obstacle_{i}"
            self.sim.create_body(
                name, pybullet.GEOM_BOX, mass=0.0, position=(ox, oy, height / 2),
                halfExtents=[0.02, 0.02, height / 2], rgba=(0.25, 0.3, 0.8, 1.0),
            )
            self.obstacle_ids.add(self.sim.bodies[name])
            self.obstacle_table[i] = (ox, oy, height, 1.0)

    def _obstacle_layout(self, count: int, pick_xy: np.ndarray, rng: np.random.Generator) -> list:
        """Pillars beside the pick-to-place path, clear of the object's and the target's footprint."""
        place_xy = self.target[:2]
        path = place_xy - pick_xy
        normal = np.array([-path[1], path[0]]) / np.linalg.norm(path)
        layout: list[tuple[float, float, float]] = []
        while len(layout) < count:
            along = rng.uniform(0.15, 0.85)
            side = rng.choice([-1.0, 1.0]) * rng.uniform(0.05, 0.10)
            xy = pick_xy + along * path + side * normal
            height = rng.uniform(0.10, 0.25)
            clear = min(np.linalg.norm(xy - pick_xy), np.linalg.norm(xy - place_xy)) > 0.09
            apart = all(np.hypot(xy[0] - x, xy[1] - y) > 0.06 for x, y, _ in layout)
            if clear and apart:
                layout.append((float(xy[0]), float(xy[1]), float(height)))
        return layout

    # -- judging ---------------------------------------------------------------
    def measure(self, gripper_closing: bool) -> Measurement:
        """Read the state, contacts, heights and speeds (one query per kind)."""
        sim, robot, client = self.sim, self.robot, self.sim.client
        object_id, robot_id, table_id = sim.bodies["object"], robot.body, sim.bodies["table"]
        pos, quat = client.getBasePositionAndOrientation(object_id)
        lin, ang = client.getBaseVelocity(object_id)
        pos, lin = np.array(pos), np.array(lin)
        left, right = robot.finger_links
        pads = [False, False]
        touching = False
        obstacle_force = table_force = press_force = 0.0
        for c in client.getContactPoints(bodyA=robot_id):
            other, link, force = c[2], c[3], c[9]
            if other == object_id:
                touching = True
                press_force += force
                pads[0] |= link == left
                pads[1] |= link == right
            elif other in self.obstacle_ids:
                obstacle_force = max(obstacle_force, force)
            elif other == table_id:
                table_force = max(table_force, force)
        if any(pads):  # a held payload striking an obstacle
            for c in client.getContactPoints(bodyA=object_id):
                if c[2] in self.obstacle_ids:
                    obstacle_force = max(obstacle_force, c[9])
        tcp, yaw = robot.tcp_pose()
        gap = robot.finger_opening()
        xy_dist = math.hypot(pos[0] - self.target[0], pos[1] - self.target[1])
        bottom = pos[2] - self.object_height / 2
        surface = self.target[2]
        on_surface = abs(bottom - surface) < 0.6 * self.object_height + 0.01 and (
            surface == 0.0 or xy_dist < 0.07 + 0.5 * self.params["size"]
        )
        return Measurement(
            tcp_position=tcp,
            tcp_yaw=yaw,
            gripper_opening=gap,
            pads=(pads[0], pads[1]),
            object_position=pos,
            object_orientation=np.array(quat),
            object_velocity=lin,
            object_speed=float(np.linalg.norm(lin)),
            object_spin=math.sqrt(sum(w * w for w in ang)),
            object_top=float(pos[2] + self.object_height / 2),
            held=pads[0] and pads[1],
            touching_robot=touching,
            gripper_closing=gripper_closing,
            fingers_closed_empty=gap < 0.004 and not any(pads),
            obstacle_force=obstacle_force,
            table_force=table_force,
            press_force=press_force,
            target_distance=xy_dist,
            on_target_surface=bool(on_surface),
            off_table=bool(pos[2] < -0.05),
        )

    def judge(self, measurement: Measurement) -> Outcome | None:
        return self.detector.update(measurement)

