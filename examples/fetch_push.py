"""gymnasium-robotics' ``FetchPush-v4`` (MuJoCo) swept by robogate: a lab's env and controller, wrapped.

The first part is what a lab already has: a scripted pusher for Fetch's observation (gripper
position, block position, ...; then the goal) and its 4-D action (gripper displacement, 5 cm per
unit; the fingers are blocked). The second part, at most 25 lines, is all robogate needs: the
scenario space, a hook that sets the block's mass and size and the friction between block, table
and fingers with :mod:`robogate.physics.mujoco`, and :class:`robogate.ScenarioWrapper` with its
built-in latency and noise.

The failures come from MuJoCo and the controller: on a slippery table the pushed block coasts past
the goal; the pusher comes down 6 cm behind the block's centre, which a block larger than about
6 cm is still under; late or noisy commands push it off its line. The mass matters little: Fetch's
arm follows a mocap body, strong enough to push 50 kg (only a heavy block on a grippy table slows
it). Importing this module registers
``Push-v0``, so robogate sweeps it as ``fetch_push:Push-v0`` with the policy ``fetch_push:PushPolicy``
(with ``examples/`` on ``PYTHONPATH``).
"""

from __future__ import annotations

import gymnasium as gym
import gymnasium_robotics
import numpy as np

import robogate
from robogate.physics import mujoco as mj

gym.register_envs(gymnasium_robotics)


class PushPolicy:
    """Go behind the block, lower the fingers to it, push it along the line to the goal, stop there."""

    BEHIND = 0.06
    """Distance (m) behind the block's centre, on the line from the goal, where the push starts."""
    GAIN = 10.0
    """Action per metre of position error (one action unit moves the gripper 5 cm)."""
    LIFT = 0.05
    """Height (m) above the block at which the gripper moves around it."""

    def reset(self) -> None:
        self.phase = "behind"

    def act(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64)
        hand, block, goal = obs[0:3], obs[3:6], obs[25:28]
        line = (goal - block)[:2]
        direction = np.append(line / max(np.linalg.norm(line), 1e-6), 0.0)
        start = block - self.BEHIND * direction
        off_line = abs(np.cross(direction, hand - block)[2])  # the fingers' distance from the push line
        if self.phase == "push" and (off_line > 0.02 or np.dot(hand - block, direction) > 0):
            self.phase = "behind"  # the block turned away from the fingers: go round again
        if self.phase == "behind":
            target = start + [0.0, 0.0, self.LIFT]
            if np.linalg.norm((target - hand)[:2]) < 0.01:
                self.phase = "lower"
            elif hand[2] < block[2] + 0.8 * self.LIFT:
                target = np.append(hand[:2], target[2])  # rise before moving over the block
        if self.phase == "lower":
            target = start
            if abs(hand[2] - block[2]) < 0.01:
                self.phase = "push"
        if self.phase == "push":
            target = goal - self.BEHIND * direction
            target[2] = block[2]
        return np.append(np.clip(self.GAIN * (target - hand), -1.0, 1.0), 0.0).astype(np.float32)


# --- robogate: the scenario space, the hook that applies it, the wrapper -------------------------

SPACE = robogate.ParameterSpace([
    robogate.Continuous("mass", 0.2, 50.0, log=True, nominal=2.0, unit="kg"),
    robogate.Continuous("friction", 0.05, 2.0, log=True, nominal=1.0, unit="coefficient"),
    robogate.Continuous("size", 0.02, 0.08, nominal=0.05, unit="m"),
])
FINGERS = ("robot0:l_gripper_finger_link", "robot0:r_gripper_finger_link")


def apply(env: gym.Env, params: dict, rng: np.random.Generator) -> None:
    """Set the block's mass, and the sliding friction of the block, the table and the fingers."""
    model, data = env.unwrapped.model, env.unwrapped.data
    mj.set_mass(model, data, "object0", params["mass"])
    mj.set_size(model, "object0", params["size"] / 2)  # a cube's half-size
    env.unwrapped.initial_qpos[model.joint("object0:joint").qposadr[0] + 2] = 0.4 + params["size"] / 2  # on the table
    # MuJoCo takes the larger friction of two touching geoms: set the block and all it touches
    mj.set_friction(model, ["object0", *FINGERS, *mj.body_geoms(model, "table0")], params["friction"])


def make_env() -> robogate.ScenarioWrapper:
    """Fetch's push with the space above, 0-3 steps of latency and action and observation noise;
    rollouts and demonstrations are drawn where the controller is reliable (the rest nominal)."""
    return robogate.ScenarioWrapper(gym.make("FetchPush-v4"), SPACE, apply=apply,
                                    observation_keys=("observation", "desired_goal"),
                                    obs_noise=0.02, action_noise=0.5, latency=3,
                                    training_envelope={"mass": (0.5, 10.0), "friction": (0.5, 2.0)})


gym.register(id="Push-v0", entry_point=make_env)
