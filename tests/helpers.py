"""Shared test helpers: policies addressed by spec (``"tests.helpers:..."``) and table comparisons."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

ENV_ID = "robogate/PickPlace-Panda-v0"
# Columns that measure time on the machine; everything else of a sweep row is reproducible.
TIMING_COLUMNS = ["wall_time", "physics_time"]


class RaisingPolicy:
    """A policy whose ``act`` always raises."""

    def reset(self) -> None:
        pass

    def act(self, obs: np.ndarray) -> np.ndarray:
        raise RuntimeError("policy exploded on purpose")


class NotAPolicy:
    """Has ``reset`` but no ``act``."""

    def reset(self) -> None:
        pass


class GatedPolicy:
    """A policy made to stop the sweep at a point the test chooses.

    With ``ROBOGATE_TEST_GATE=DIR:K`` in the environment, every episode takes a numbered ticket
    (a file created exclusively in DIR, so the count is exact across worker processes); episodes
    ``0..K-1`` run normally and every later one blocks for good after writing ``blocked-N``. So
    once K records are stored and every worker is blocked, no further episode can finish: a test
    can kill the sweep there, whatever the machine's load. Without the variable it is ``policy``.
    """

    def __init__(self, policy):
        self._policy = policy
        gate = os.environ.get("ROBOGATE_TEST_GATE")
        self._dir, self._after = (None, None) if not gate else (Path(gate.rsplit(":", 1)[0]), int(gate.rsplit(":", 1)[1]))

    def reset(self) -> None:
        if self._dir is not None and self._take_ticket() >= self._after:
            (self._dir / f"blocked-{os.getpid()}").touch()
            threading.Event().wait()  # until the test kills the sweep
        self._policy.reset()

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self._policy.act(obs)

    def _take_ticket(self) -> int:
        n = 0
        while True:
            try:
                os.close(os.open(self._dir / f"ticket-{n}", os.O_CREAT | os.O_EXCL))
                return n
            except FileExistsError:
                n += 1


class GatedScriptedPolicy(GatedPolicy):
    """The scripted controller, gated (see :class:`GatedPolicy`)."""

    def __init__(self):
        from robogate.policies import ScriptedPolicy

        super().__init__(ScriptedPolicy())


def gated_slide_policy():
    """The controller of ``mylab_envs`` (tests/ on the path), gated (see :class:`GatedPolicy`)."""
    from mylab_envs import SlidePolicy

    return GatedPolicy(SlidePolicy())


def failing_factory():
    raise OSError("weights file missing")


NOT_CALLABLE = 42


def comparable(df):
    """A sweep table without its timing columns, sorted by id."""
    return df.drop(columns=TIMING_COLUMNS).sort_values("id").reset_index(drop=True)


class OpenGripperPolicy:
    """The scripted controller with its gripper never closing: a deliberately broken policy (it fails, it never raises)."""

    def __init__(self):
        from robogate.policies import ScriptedPolicy

        self._scripted = ScriptedPolicy()

    def reset(self) -> None:
        self._scripted.reset()

    def act(self, obs: np.ndarray) -> np.ndarray:
        action = self._scripted.act(obs).copy()
        action[4] = 1.0  # +1 opens
        return action


class CountedScriptedPolicy:
    """The scripted controller, counting how often it is built in this process (``CountedScriptedPolicy.built``)."""

    built = 0

    def __init__(self):
        from robogate.policies import ScriptedPolicy

        CountedScriptedPolicy.built += 1
        self._scripted = ScriptedPolicy()

    def reset(self) -> None:
        self._scripted.reset()

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self._scripted.act(obs)


def gated_swing_up_policy():
    """The controller of ``lab_pendulum`` (tests/ on the path), gated (see :class:`GatedPolicy`)."""
    from lab_pendulum import SwingUpPolicy

    return GatedPolicy(SwingUpPolicy())


def gated_pick_place_policy():
    """The controller of ``examples/panda_pick_place.py`` (examples/ on the path), gated (see :class:`GatedPolicy`)."""
    from panda_pick_place import PickPlacePolicy

    return GatedPolicy(PickPlacePolicy())


def gated_push_policy():
    """The controller of ``examples/fetch_push.py`` (examples/ on the path), gated (see :class:`GatedPolicy`)."""
    from fetch_push import PushPolicy

    return GatedPolicy(PushPolicy())


class SlowedPolicy:
    """A controller retuned too cautiously: its motion commands (the first three action elements) cut to 30 %."""

    SCALE = 0.3

    def __init__(self, policy):
        self._policy = policy

    def reset(self) -> None:
        self._policy.reset()

    def act(self, obs: np.ndarray) -> np.ndarray:
        action = np.array(self._policy.act(obs), dtype=np.float32)
        action[:3] *= self.SCALE
        return action


def slowed_pick_place_policy():
    from panda_pick_place import PickPlacePolicy

    return SlowedPolicy(PickPlacePolicy())


def slowed_push_policy():
    from fetch_push import PushPolicy

    return SlowedPolicy(PushPolicy())


class ThreadCounting:
    """The scripted controller holding a torch tensor (as a torch policy does), raising when torch runs on
    another number of threads than ``expected``."""

    def __init__(self, expected: int = 1):
        import torch

        from robogate.policies import ScriptedPolicy

        self.expected, self.weights, self._scripted = expected, torch.zeros(1), ScriptedPolicy()

    def reset(self) -> None:
        self._scripted.reset()

    def act(self, obs: np.ndarray) -> np.ndarray:
        import torch

        if torch.get_num_threads() != self.expected:
            raise RuntimeError(f"torch runs on {torch.get_num_threads()} threads, not {self.expected}")
        return self._scripted.act(obs)
