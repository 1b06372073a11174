"""How an episode ends: the failure taxonomy, read off the simulation state.

:class:`OutcomeDetector` is called once per control step with what the scene
measured (contacts, heights, velocities) and decides whether the episode is
over and why. It never looks at the scenario parameters: outcomes come from the
physics and the controller alone.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np


class Outcome(str, enum.Enum):
    """Exactly one of these ends every episode."""

    SUCCESS = "success"
    GRASP_MISS = "grasp_miss"  # closed the gripper but never lifted
    GRIP_LOSS = "grip_loss"  # lifted, then dropped
    COLLISION = "collision"  # arm or payload hit an obstacle, or the arm hit the table or pressed the object hard
    PLACEMENT_ERROR = "placement_error"  # released outside the target tolerance
    TIMEOUT = "timeout"  # time ran out with the object lifted but not placed, or the gripper never closed
    ERROR = "error"  # policy raised, or the simulation diverged

    def __str__(self) -> str:
        return self.value


OUTCOMES = tuple(o.value for o in Outcome)

LIFT_HEIGHT = 0.03
"""The object counts as lifted once it is this far (m) above its resting height, held."""
PLACE_TOLERANCE = 0.03
"""Largest horizontal distance (m) between the object's centre and the place target for success."""
REST_SPEED = 0.03
"""Linear speed (m/s) under which the object is at rest."""
REST_SPIN = 0.5
"""Angular speed (rad/s) under which the object is at rest."""
OBSTACLE_FORCE = 2.0
"""Normal force (N) of an arm or payload contact with an obstacle that counts as a collision."""
TABLE_FORCE = 40.0
"""Normal force (N) of an arm contact with the table that counts as hitting it hard."""
PRESS_FORCE = 150.0
"""Total normal force (N) of the arm on the object that stops it, as a cobot's protective stop would.

A grasp squeezes with twice the finger force (80 N); pressing down on an object the
fingers cannot straddle (wider than the stroke, or missed by a calibration error)
drives the contact force to several hundred newtons.
"""
DIVERGED_SPEED = 20.0
"""Object speed (m/s) beyond which the simulation is taken to have diverged."""
CLEARANCE = 0.05
"""After release the tool must be this far (m) above the object's top before success is called."""
DROP_STEPS = 2
"""Control steps without a hold while the gripper is commanded closed before a drop is called."""


@dataclass
class Measurement:
    """What the scene measured at the end of one control step."""

    tcp_position: np.ndarray
    tcp_yaw: float
    gripper_opening: float
    pads: tuple[bool, bool]  # left / right pad touching the object
    object_position: np.ndarray
    object_orientation: np.ndarray
    object_velocity: np.ndarray
    object_speed: float
    object_spin: float
    object_top: float  # height of the object's highest point
    held: bool  # touching at least one finger pad, and squeezed by both
    touching_robot: bool  # any robot contact with the object
    gripper_closing: bool  # the last command asked the fingers to close
    fingers_closed_empty: bool  # the pads met with nothing between them
    obstacle_force: float  # largest arm/payload-obstacle normal force
    table_force: float  # largest arm-table normal force
    press_force: float  # total arm-object normal force
    target_distance: float  # horizontal distance object–target
    on_target_surface: bool  # the object rests on the target's surface (table or platform)
    off_table: bool


class OutcomeDetector:
    """Tracks one episode and names its outcome as soon as it is decided.

    Parameters
    ----------
    rest_height : float
        The object's resting centre height at the start.
    """

    def __init__(self, rest_height: float) -> None:
        self.rest_height = rest_height
        self.lifted = False
        self.closed = False
        """Whether the gripper was ever commanded closed."""
        self.max_lift = 0.0
        self._unheld_closed_steps = 0
        self.out_of_hand_steps = 0
        """Control steps, up to the latest, that the lifted object has been out of the grasp."""
        self.steps = 0
        """Control steps judged so far."""
        self.grasp_step: int | None = None
        """The step (0-based) the latest grasp closed: the first step of the latest closing at which the
        fingers met with nothing between them, else the step that closing was commanded."""
        self._closing = False
        self._closed_empty = False

    def update(self, m: Measurement) -> Outcome | None:
        """Return the outcome if this step ends the episode, else ``None``."""
        if not np.all(np.isfinite(m.object_position)) or m.object_speed > DIVERGED_SPEED:
            return Outcome.ERROR
        step, self.steps = self.steps, self.steps + 1
        if m.obstacle_force > OBSTACLE_FORCE or m.table_force > TABLE_FORCE or m.press_force > PRESS_FORCE:
            return Outcome.COLLISION
        self.closed |= m.gripper_closing
        if m.gripper_closing and not self._closing:
            self.grasp_step, self._closed_empty = step, False
        if m.gripper_closing and m.fingers_closed_empty and not self._closed_empty:
            self.grasp_step, self._closed_empty = step, True
        self._closing = m.gripper_closing
        lift = float(m.object_position[2] - self.rest_height)
        self.max_lift = max(self.max_lift, lift)
        if m.held and lift > LIFT_HEIGHT:
            self.lifted = True
        self.out_of_hand_steps = 0 if m.held or not self.lifted else self.out_of_hand_steps + 1
        if not self.lifted:
            if m.off_table:
                return Outcome.GRASP_MISS
            if m.fingers_closed_empty and m.tcp_position[2] > m.object_top + CLEARANCE:
                return Outcome.GRASP_MISS
            return None
        if m.held:
            self._unheld_closed_steps = 0
            return None
        if m.gripper_closing and not m.on_target_surface:
            # Lifted, not held, yet the gripper is still asked to hold: the object slipped out.
            self._unheld_closed_steps += 1
            if self._unheld_closed_steps >= DROP_STEPS or m.off_table:
                return Outcome.GRIP_LOSS
            return None
        self._unheld_closed_steps = 0
        if m.off_table:
            return Outcome.PLACEMENT_ERROR
        at_rest = m.object_speed < REST_SPEED and m.object_spin < REST_SPIN
        if not at_rest or m.touching_robot:
            return None
        if m.target_distance > PLACE_TOLERANCE or not m.on_target_surface:
            return Outcome.PLACEMENT_ERROR
        if m.tcp_position[2] > m.object_top + CLEARANCE:
            return Outcome.SUCCESS
        return None

    def event_lag(self, outcome: Outcome) -> int | None:
        """Control steps from the failure event to the step that named ``outcome`` (None: no event).

        A drop or a misplaced release is named once the object has fallen or come
        to rest; its event is the step the object left the grasp. A missed grasp is
        named once the tool has risen from it, or at the time limit; its event is the
        step the grasp closed without lifting (:attr:`grasp_step`). A timeout has no
        event: nothing happened, the time ran out. Every other outcome is named at its event.
        """
        if outcome in (Outcome.GRIP_LOSS, Outcome.PLACEMENT_ERROR):
            return max(self.out_of_hand_steps - 1, 0)
        if outcome is Outcome.GRASP_MISS and self.grasp_step is not None:
            return self.steps - 1 - self.grasp_step
        if outcome is Outcome.TIMEOUT:
            return None
        return 0

    def at_time_limit(self) -> Outcome:
        """The outcome of an episode that ran out of time: a missed grasp only if the gripper closed on
        nothing it lifted; a policy that never tried (never closed the gripper) timed out."""
        return Outcome.GRASP_MISS if self.closed and not self.lifted else Outcome.TIMEOUT
