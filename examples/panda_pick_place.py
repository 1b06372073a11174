"""panda-gym's ``PandaPickAndPlace-v3`` (PyBullet) swept by robogate: a lab's env and controller, wrapped.

The first part is what a lab already has: a scripted pick-and-place controller for panda-gym's
observation (end-effector position and velocity, finger width, the object's pose and velocities,
then the goal) and its 4-D action (end-effector displacement, 5 cm per unit, and the fingers'
opening). The second part, at most 25 lines, is all robogate needs: the scenario space, a hook
that sets the object's mass and friction with :mod:`robogate.physics.pybullet`, and
:class:`robogate.ScenarioWrapper` with its built-in latency and noise.

The failures come from PyBullet and the controller: the fingers squeeze with a limited force, so a
slippery or heavy cube slides out between them while the arm carries it; late or noisy commands
close the fingers beside the cube. panda-gym ends an episode as soon as the cube is within 5 cm of
the goal (a success) or after 50 steps (a failure). Importing this module registers ``PickPlace-v0``, so robogate sweeps it
as ``panda_pick_place:PickPlace-v0`` with the policy ``panda_pick_place:PickPlacePolicy``::

    robogate sweep --env panda_pick_place:PickPlace-v0 --policy panda_pick_place:PickPlacePolicy \\
        --n-lhs 200 --n-boundary 100 --out runs/panda_pick_place

(with ``examples/`` on ``PYTHONPATH``).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import panda_gym  # noqa: F401  (registers PandaPickAndPlace-v3)

import robogate
from robogate.physics import pybullet as pb


class PickPlacePolicy:
    """Hover over the cube, descend, close the fingers, carry it to the goal and hold it there."""

    HOVER = 0.05
    """Height (m) above the cube from which the hand descends."""
    GAIN = 10.0
    """Action per metre of position error (one action unit moves the hand 5 cm)."""
    CLOSE_STEPS = 6
    """Control steps the fingers close for before the carry starts."""

    def reset(self) -> None:
        self.phase, self.closing = "reach", 0

    def act(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64)
        hand, cube, goal = obs[0:3], obs[7:10], obs[19:22]
        grip = 1.0  # open
        if self.phase == "reach":
            target = cube + [0.0, 0.0, self.HOVER]
            if np.linalg.norm((target - hand)[:2]) < 0.01 and abs(target[2] - hand[2]) < 0.02:
                self.phase = "descend"
        if self.phase == "descend":
            target = cube
            if np.linalg.norm(target - hand) < 0.01:
                self.phase = "grasp"
        if self.phase == "grasp":
            target, grip = cube, -1.0
            self.closing += 1
            if self.closing >= self.CLOSE_STEPS:
                self.phase = "carry"
        if self.phase == "carry":
            target, grip = goal, -1.0
        return np.append(np.clip(self.GAIN * (target - hand), -1.0, 1.0), grip).astype(np.float32)


# --- robogate: the scenario space, the hook that applies it, the wrapper -------------------------

SPACE = robogate.ParameterSpace([
    robogate.Continuous("mass", 0.1, 10.0, log=True, nominal=1.0, unit="kg"),
    robogate.Continuous("friction", 0.03, 1.0, log=True, nominal=0.5, unit="coefficient"),
])


def apply(env: gym.Env, params: dict, rng: np.random.Generator) -> None:
    """Set the cube's mass and lateral friction (PyBullet multiplies it with the fingers' 1.0)."""
    sim = env.unwrapped.sim
    pb.set_mass(sim.physics_client, sim._bodies_idx["object"], params["mass"])
    pb.set_lateral_friction(sim.physics_client, sim._bodies_idx["object"], params["friction"])


def make_env() -> robogate.ScenarioWrapper:
    """panda-gym's pick-and-place with the space above, 0-4 steps of latency and action and observation noise;
    rollouts and demonstrations are drawn where the controller is reliable (the rest nominal)."""
    return robogate.ScenarioWrapper(gym.make("PandaPickAndPlace-v3"), SPACE, apply=apply,
                                    observation_keys=("observation", "desired_goal"),
                                    obs_noise=0.015, action_noise=0.5, latency=4,
                                    training_envelope={"mass": (0.3, 3.0), "friction": (0.2, 1.0)})


gym.register(id="PickPlace-v0", entry_point=make_env)
