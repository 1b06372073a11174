"""The Gymnasium environment: wires a simulator, an arm and the pick-and-place task together."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np

from robogate._utils.checks import check_int

from . import gripper
from .interface import (
    ACTION_NAMES,
    CONTROL_HZ,
    MAX_EPISODE_STEPS,
    MAX_STEP,
    MAX_YAW_STEP,
    OBS_BOUND,
    OBS_NAMES,
    OBS_SIZE,
    hold_action,
)
from .outcomes import Outcome
from .pick_place_task import PickPlaceTask
from .robots import ROBOTS, Robot
from .scene import SHAPES, TRAINING_ENVELOPE, default_space
from .simulator import Simulator

WORKSPACE = np.array([[0.10, -0.60, 0.005], [0.95, 0.60, 0.60]])
"""Bounds (m) of the commanded tool position, in the robot's own (believed) frame."""


class PickPlaceEnv(gym.Env):
    """Pick an object off the table and place it on a target, with one of three arms.

    The arm (Franka Panda, UR5e or xArm6) carries robogate's parallel-jaw
    gripper. The scene is set by eight operational parameters and randomised by
    the seed, so a parameter point run over many seeds is a Bernoulli experiment.

    ## Action Space
    ``Box(-1, 1, (5,), float32)``: ``[dx, dy, dz, dyaw, grip]`` (``action_names``). The first three
    move the tool centre point by up to ``MAX_STEP`` = 0.05 m per step from where
    the arm believes it is; ``dyaw`` turns the tool about the vertical by up to
    0.3 rad; ``grip`` sets the finger opening from closed (-1) to fully open (+1,
    0.10 m gap). The tool always points down; joint targets come from inverse
    kinematics inside the env, tracked at the arm's torque and speed limits.
    One step lasts 0.1 s (24 physics steps of 1/240 s).

    ## Observation Space
    ``Box(-10, 10, (OBS_SIZE,), float32)``; fields in order (see ``OBS_SLICES``; each element's
    name, e.g. ``object_position.z``, in ``observation_names``):
    tool position as the arm believes it (3), sin/cos of tool yaw (2), finger
    gap (1), left/right pad touching the object (2), object position (3) and
    quaternion (4) and velocity (3), object size (1), shape one-hot (one per
    entry of ``robogate.envs.scene.SHAPES``), place target position (3), and up
    to four obstacles as (x, y, height, present) (16).
    Positions are in metres, in the frame of the arm's base.

    ## Scenario parameters
    Passed as ``reset(options={"params": {...}})``: the dimensions of
    ``robogate.default_space()``, which holds their ranges and nominal values
    (``env.unwrapped.parameter_space``). Anything omitted takes its nominal value; an
    unknown name, a value out of range, NaN or of the wrong type raises
    ``ValueError`` naming the parameter and its range.

    - ``friction``: friction coefficient of the object against the pads and the table.
    - ``mass``: of the object (kg).
    - ``com_offset``: centre-of-mass offset as a fraction of the object size,
      along the object's length.
    - ``size``: of the object (m); each shape's geometry says which extent it sets.
    - ``ik_noise``: std of a calibration error (m) — the arm reaches commanded
      points offset by an unseen error drawn per episode.
    - ``obstacles``: number of pillars beside the path.
    - ``shape``: a name of ``robogate.envs.scene.SHAPES``.
    - ``placement``: a name of ``robogate.envs.scene.PLACEMENTS``.

    ## Starting State
    The arm at home (tool 0.3 m above the table, gripper open); the object at the
    pick spot jittered by up to 3 cm and 45 degrees of yaw; obstacle positions
    and heights and the calibration error drawn from the seed.

    ## Rewards
    Sparse: 1 on the step that ends in success, else 0.

    ## Episode End
    The episode ends with exactly one ``info["outcome"]`` (with
    ``info["success"]``, ``info["params"]``, ``info["physics_time"]`` (seconds
    spent inside the physics engine this episode) and ``info["failure_step"]``,
    the 0-based control step of the failure event, e.g. the step a dropped
    object left the grasp or a missed grasp closed, None for a success and for a
    timeout, which has no event): ``success`` (released at rest
    within 3 cm of the target, tool clear), ``grasp_miss`` (never lifted),
    ``grip_loss`` (lifted, then dropped), ``collision`` (arm or carried object
    hit an obstacle, or the arm hit the table or pressed on the object hard:
    a protective stop), ``placement_error``
    (released outside the tolerance), ``timeout`` (lifted but not placed after
    ``max_steps``, 120 by default), ``error`` (non-finite action or diverged simulation).
    Time-limited episodes are ``truncated``; all others ``terminated``. The env
    keeps its own time limit (``gym.make(id, max_steps=N)``) so that it can name
    the outcome; Gymnasium's ``max_episode_steps`` wrapper would cut episodes
    without one.

    ## Version History
    - v0: first release.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": CONTROL_HZ}
    # What the env declares to robogate (robogate.scenarios.env_contract reads each).
    observation_names = OBS_NAMES
    action_names = ACTION_NAMES
    task_description = "Pick up the object and place it on the target."
    hold_action = staticmethod(hold_action)
    training_envelope = TRAINING_ENVELOPE

    def __init__(
        self, robot: str = "Panda", render_mode: str | None = None, max_steps: int = MAX_EPISODE_STEPS
    ) -> None:
        if robot not in ROBOTS:
            raise ValueError(f"robot: unknown arm {robot!r}; expected one of {sorted(ROBOTS)}")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode: {render_mode!r} is not supported; use 'rgb_array' or None")
        if int(max_steps) < 1:
            raise ValueError(f"max_steps: must be a positive number of control steps, got {max_steps}")
        self.render_mode = render_mode
        self.robot_type = robot.lower()
        self.max_steps = int(max_steps)
        self.parameter_space = default_space()
        self.sim = Simulator()
        spec = ROBOTS[robot]
        self.robot = Robot(self.sim, spec)
        self.task = PickPlaceTask(self.sim, self.robot, reach_radius=spec.place_reach)
        self.sim.save()
        self.substeps = round(1.0 / (CONTROL_HZ * self.sim.time_step))
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(len(ACTION_NAMES),), dtype=np.float32)
        self.observation_space = gym.spaces.Box(-OBS_BOUND, OBS_BOUND, shape=(OBS_SIZE,), dtype=np.float32)
        self._bias = np.zeros(3)
        self._steps = 0
        self._done = True
        self.params: dict[str, Any] = self.parameter_space.nominal()

    # -- gymnasium API -----------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=None if seed is None else check_int(seed, "seed"))  # numpy integers too
        options = dict(options or {})
        unknown = set(options) - {"params"}
        if unknown:
            raise ValueError(f"options: unknown keys {sorted(unknown)}; expected 'params'")
        self.params = self.parameter_space.validate(options.get("params") or {})
        self.sim.restore()
        self.robot.go_home()
        self.task.build(self.params, self.np_random)
        self._bias = self.np_random.normal(0.0, self.params["ik_noise"], size=3)
        self._steps = 0
        self._done = False
        self.sim.reset_timers()
        self._last = self.task.measure(gripper_closing=False)
        return self._observation(), {"params": dict(self.params)}

    def step(self, action):
        if self._done:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != (5,):
            raise ValueError(f"action: expected shape (5,), got {action.shape}")
        outcome: Outcome | None
        if not np.all(np.isfinite(action)):
            outcome, message = Outcome.ERROR, "action contains a non-finite value"
        else:
            action = np.clip(action, -1.0, 1.0)
            self._apply(action)
            self.sim.step(self.substeps)
            self._last = self.task.measure(gripper_closing=bool(action[4] < 0.0))
            outcome, message = self.task.judge(self._last), None
            if outcome is Outcome.ERROR:
                message = "simulation diverged"
        self._steps += 1
        truncated = False
        if outcome is None and self._steps >= self.max_steps:
            outcome, truncated = self.task.detector.at_time_limit(), True
        terminated = outcome is not None and not truncated
        info: dict[str, Any] = {}
        if outcome is not None:
            self._done = True
            info = {"outcome": outcome.value, "success": outcome is Outcome.SUCCESS, "params": dict(self.params),
                    "physics_time": self.sim.physics_seconds}
            lag = None if info["success"] else self.task.detector.event_lag(outcome)
            info["failure_step"] = None if lag is None else self._steps - 1 - lag
            if message:
                info["error"] = message
        obs = self._observation()
        reward = float(outcome is Outcome.SUCCESS)
        return obs, reward, terminated, truncated, info

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        return self.sim.render()

    def close(self) -> None:
        self.sim.close()

    # -- internals ---------------------------------------------------------------
    def _apply(self, action: np.ndarray) -> None:
        tcp, yaw = self._last.tcp_position, self._last.tcp_yaw
        believed = tcp - self._bias
        target = np.clip(believed + MAX_STEP * action[:3], WORKSPACE[0], WORKSPACE[1])
        target_yaw = min(max(yaw + MAX_YAW_STEP * float(action[3]), -math.pi), math.pi)
        q = self.robot.inverse_kinematics(target + self._bias, target_yaw, iterations=10)
        opening = (action[4] + 1.0) / 2.0 * gripper.FINGER_TRAVEL
        self.robot.command_joints(q, opening)

    def _observation(self) -> np.ndarray:
        m = self._last
        shape = np.zeros(len(SHAPES))
        shape[list(SHAPES).index(self.params["shape"])] = 1.0
        obs = np.concatenate([
            m.tcp_position - self._bias,
            (math.sin(m.tcp_yaw), math.cos(m.tcp_yaw)),
            (m.gripper_opening,),
            m.pads,
            m.object_position,
            m.object_orientation,
            m.object_velocity,
            (self.params["size"],),
            shape,
            self.task.target,
            self.task.obstacle_table.reshape(-1),
        ])
        if not np.isfinite(obs).all():  # a diverged simulation still yields a valid observation
            obs = np.nan_to_num(obs, nan=0.0)
        return np.clip(obs, -OBS_BOUND, OBS_BOUND).astype(np.float32)
