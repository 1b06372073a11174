"""A scripted pick-and-place controller: a Cartesian state machine on the env's observation.

It sees what a perception stack would give it (object pose, shape and size,
target, obstacles) and the tool pose as the arm believes it; it does not see
the scenario parameters, so friction, mass, centre-of-mass offset and
calibration error act on it only through the physics.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy.spatial.transform import Rotation

from robogate.envs import gripper
from robogate.envs.interface import MAX_STEP, MAX_YAW_STEP, OBS_SLICES, hold_action
from robogate.envs.scene import SHAPES, Shape

TIP_CLEARANCE = 0.004
"""Finger tips stay this far (m) above the table when grasping low objects."""
OBSTACLE_MARGIN = 0.05
"""Vertical margin (m) kept between the carried object and obstacle tops."""
SLOW_STEP = 0.02
"""Step (m) for the last centimetres of a descent."""
STALL_STEPS = 15
"""Control steps a phase may make no progress before the controller moves on."""


_PHASES = ("approach", "descend", "grasp", "lift", "transport", "lower", "release", "retreat", "done")
"""The controller's phases in order; :meth:`ScriptedPolicy.act` runs the current one."""


class _Scene(NamedTuple):
    """What the controller reads off one observation, and the heights it plans with."""

    tcp: np.ndarray
    yaw: float
    gap: float
    obj: np.ndarray
    quat: np.ndarray
    shape: Shape
    height: float
    target: np.ndarray
    grasp_z: float
    cruise: float


class _Command(NamedTuple):
    """One step's command: where the tool goes, its yaw, the grip, and the largest displacement."""

    goal: np.ndarray
    yaw: float
    grip: float
    step: float


def _wrap_half_turns(angle: float, period: float) -> float:
    """``angle`` shifted by multiples of ``period`` into [-period/2, period/2)."""
    return (angle + period / 2) % period - period / 2


class ScriptedPolicy:
    """Approach, descend, grasp, lift, transport over obstacles, lower, release, retreat.

    Parameters
    ----------
    cruise_height : float
        Lowest transport height of the tool (m); raised to clear obstacles.

    Examples
    --------
    >>> import robogate
    >>> from robogate.policies import ScriptedPolicy
    >>> record = robogate.run_episode("robogate/PickPlace-Panda-v0", ScriptedPolicy(), seed=0)
    >>> record["outcome"]
    'success'
    """

    hold_action = staticmethod(hold_action)
    """The action that keeps the arm still in robogate's action layout (what a monitor's "hold" sends)."""

    def __init__(self, cruise_height: float = 0.15) -> None:
        self.cruise_height = cruise_height
        self.reset()

    def reset(self) -> None:
        self.phase = "approach"
        self._phase_steps = 0
        self._best_error = math.inf
        self._last_gap = math.inf
        self._grasp_yaw: float | None = None
        self._retreat_height = 0.0
        self._hold_offset = np.zeros(3)

    # -- helpers -----------------------------------------------------------------
    @staticmethod
    def _field(obs: np.ndarray, name: str) -> np.ndarray:
        return np.asarray(obs[OBS_SLICES[name]], dtype=float)

    def _enter(self, phase: str) -> None:
        self.phase = phase
        self._phase_steps = 0
        self._best_error = math.inf

    def _stalled(self, error: float) -> bool:
        """True when ``error`` has not improved by a millimetre for ``STALL_STEPS`` steps."""
        if error < self._best_error - 1e-3:
            self._best_error = error
            self._phase_steps = 0
        return self._phase_steps > STALL_STEPS

    @staticmethod
    def _grasp_yaw_for(shape: Shape, quat: np.ndarray, current: float) -> float:
        """Tool yaw that closes the fingers across the object, nearest the current yaw."""
        if shape.yaw_symmetry is None:
            return current
        along = Rotation.from_quat(quat).as_matrix()[:, shape.long_axis]
        axis = math.atan2(along[1], along[0])
        return current + _wrap_half_turns(axis - current, shape.yaw_symmetry)

    # -- control -----------------------------------------------------------------
    def act(self, obs: np.ndarray) -> np.ndarray:
        scene = self._read(obs)
        if self._grasp_yaw is None:
            self._grasp_yaw = self._grasp_yaw_for(scene.shape, scene.quat, scene.yaw)
        self._phase_steps += 1
        command = _Command(scene.tcp.copy(), scene.yaw, 1.0, MAX_STEP)
        for phase in _PHASES:  # a phase that ends hands over to the next within the same step
            if self.phase == phase:
                command = getattr(self, f"_{phase}")(scene, command)
            if phase == "lift" and self.phase in ("lift", "transport", "lower"):
                # Where the object sits in the hand, smoothed: the controller places the
                # object, not the tool, over the target, and follows slow slips in the grasp.
                self._hold_offset = 0.7 * self._hold_offset + 0.3 * (scene.tcp - scene.obj)
        self._last_gap = scene.gap
        move = np.clip(command.goal - scene.tcp, -command.step, command.step) / MAX_STEP
        turn = np.clip((command.yaw - scene.yaw) / MAX_YAW_STEP, -1.0, 1.0)
        return np.array([*move, turn, command.grip], dtype=np.float32)

    def _read(self, obs: np.ndarray) -> _Scene:
        """What the controller reads off one observation, and the heights it plans with."""
        sin_yaw, cos_yaw = self._field(obs, "tcp_yaw")
        size = float(self._field(obs, "object_size")[0])
        shape = list(SHAPES.values())[int(np.argmax(self._field(obs, "object_shape")))]
        target = self._field(obs, "target_position")
        obstacles = self._field(obs, "obstacles").reshape(-1, 4)
        height = shape.geometry(size).height
        palm_gap = gripper.TCP_DEPTH - gripper.PALM_DEPTH  # tool point to palm underside
        floor = gripper.TIP_BELOW_TCP + TIP_CLEARANCE
        grasp_z = max(min(height / 2, height - palm_gap - 0.005), floor)
        tallest = max([h for *_, h, present in obstacles if present > 0.5] + [target[2], 0.0])
        return _Scene(tcp=self._field(obs, "tcp_position"), yaw=math.atan2(sin_yaw, cos_yaw),
                      gap=float(self._field(obs, "gripper_opening")[0]), obj=self._field(obs, "object_position"),
                      quat=self._field(obs, "object_orientation"), shape=shape, height=height, target=target,
                      grasp_z=grasp_z, cruise=max(self.cruise_height, tallest + OBSTACLE_MARGIN + grasp_z + 0.02))

    # -- phases: each returns the step's command, and enters the next phase when it is done ------------
    def _approach(self, s: _Scene, command: _Command) -> _Command:
        goal = np.array([s.obj[0], s.obj[1], max(s.cruise, s.grasp_z + 0.10)])
        if (np.linalg.norm(goal[:2] - s.tcp[:2]) < 0.01 and abs(goal[2] - s.tcp[2]) < 0.02
                and abs(self._grasp_yaw - s.yaw) < 0.05) or self._stalled(np.linalg.norm(goal - s.tcp)):
            self._enter("descend")
        return command._replace(goal=goal, yaw=self._grasp_yaw)

    def _descend(self, s: _Scene, command: _Command) -> _Command:
        goal = np.array([s.obj[0], s.obj[1], s.grasp_z])
        error = abs(goal[2] - s.tcp[2])
        if error < 0.005 or self._stalled(error):
            self._enter("grasp")
        return command._replace(goal=goal, yaw=self._grasp_yaw, step=SLOW_STEP if error < 0.05 else MAX_STEP)

    def _grasp(self, s: _Scene, command: _Command) -> _Command:
        if self._phase_steps >= 3 and abs(self._last_gap - s.gap) < 5e-4:  # the fingers have closed
            self._hold_offset = s.tcp - s.obj
            self._enter("lift")
        return command._replace(goal=s.tcp.copy(), yaw=self._grasp_yaw, grip=-1.0)

    def _lift(self, s: _Scene, command: _Command) -> _Command:
        goal = np.array([s.tcp[0], s.tcp[1], s.cruise])
        error = abs(goal[2] - s.tcp[2])
        if error < 0.02 or self._stalled(error):
            self._enter("transport")
        return command._replace(goal=goal, yaw=self._grasp_yaw, grip=-1.0)

    def _transport(self, s: _Scene, command: _Command) -> _Command:
        offset = self._hold_offset
        goal = np.array([s.target[0] + offset[0], s.target[1] + offset[1], s.cruise])
        error = np.linalg.norm(goal[:2] - s.tcp[:2])
        if error < 0.01 or self._stalled(error):
            self._enter("lower")
        return command._replace(goal=goal, yaw=self._grasp_yaw, grip=-1.0)

    def _lower(self, s: _Scene, command: _Command) -> _Command:
        offset = self._hold_offset
        bottom_below_tcp = offset[2] + s.height / 2
        goal = np.array([s.target[0] + offset[0], s.target[1] + offset[1], s.target[2] + bottom_below_tcp + 0.005])
        error = abs(goal[2] - s.tcp[2])
        if error < 0.004 or self._stalled(error):
            self._enter("release")
        return command._replace(goal=goal, yaw=self._grasp_yaw, grip=-1.0, step=SLOW_STEP if error < 0.05 else MAX_STEP)

    def _release(self, s: _Scene, command: _Command) -> _Command:
        if self._phase_steps >= 3:
            self._retreat_height = s.tcp[2] + 0.12
            self._enter("retreat")
        return command._replace(goal=s.tcp.copy(), yaw=s.yaw, grip=1.0)

    def _retreat(self, s: _Scene, command: _Command) -> _Command:
        goal = np.array([s.tcp[0], s.tcp[1], self._retreat_height])
        if abs(goal[2] - s.tcp[2]) < 0.01 or self._stalled(abs(goal[2] - s.tcp[2])):
            self._enter("done")
        return command._replace(goal=goal)

    def _done(self, s: _Scene, command: _Command) -> _Command:
        return command._replace(goal=s.tcp.copy(), yaw=s.yaw, grip=1.0)
