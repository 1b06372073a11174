"""A private PyBullet world: one physics client per instance, bodies addressed by name.

pybullet writes a build banner and ``argv[0]=`` lines straight to the C-level
standard output; :func:`quiet_stdout` keeps them out of robogate's output.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import sys
import time
from collections.abc import Iterator, Sequence

import numpy as np

_LIBC = ctypes.CDLL(None)


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Silence C-level output on file descriptors 1 and 2 for the duration of the block.

    pybullet prints its build banner, ``argv[0]=`` lines and URDF importer
    warnings from C. C's stdio buffers are flushed before the descriptors are
    restored, so text printed inside the block cannot surface later.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    try:
        with open(os.devnull, "w") as devnull:
            for fd in saved:
                os.dup2(devnull.fileno(), fd)
            yield
    finally:
        _LIBC.fflush(None)
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)


with quiet_stdout():
    import pybullet
    import pybullet_data

TIME_STEP = 1.0 / 240.0
"""Physics time step in seconds (PyBullet's default, and the rate its solver is tuned for)."""
SOLVER_ITERATIONS = 30
"""Constraint-solver iterations per physics step (PyBullet's default is 50).

Grasp contacts make the solver most of an episode's cost; 30 iterations run
episodes about 1.3x faster than 50 with the same nominal success on every arm,
while 20 begin to cost placement accuracy (``scripts/bench_sim.py``).
"""


class Client:
    """PyBullet's functions bound to one physics server.

    Like ``pybullet_utils.bullet_client.BulletClient``, but each bound function
    is made once and cached, which keeps per-call overhead out of the control loop.
    """

    def __init__(self) -> None:
        self.id = pybullet.connect(pybullet.DIRECT)

    def __getattr__(self, name: str):
        attribute = getattr(pybullet, name)
        if callable(attribute):
            attribute = functools.partial(attribute, physicsClientId=self.id)
        setattr(self, name, attribute)
        return attribute


class Simulator:
    """A headless PyBullet world with named bodies and a saved base state.

    Parameters
    ----------
    time_step : float
        Physics step in seconds.

    Attributes
    ----------
    physics_seconds : float
        Wall-clock seconds spent inside ``stepSimulation`` since the last
        :meth:`reset_timers`; the rest of an episode's time is overhead.
    """

    def __init__(self, time_step: float = TIME_STEP) -> None:
        with quiet_stdout():
            self.client = Client()
        self.client.setAdditionalSearchPath(pybullet_data.getDataPath())
        self.client.setTimeStep(time_step)
        self.client.setGravity(0.0, 0.0, -9.81)
        self.client.setPhysicsEngineParameter(
            deterministicOverlappingPairs=1, numSolverIterations=SOLVER_ITERATIONS
        )
        self.time_step = time_step
        self.bodies: dict[str, int] = {}
        self._transient: list[str] = []
        self._saved_state: int | None = None
        self.physics_seconds = 0.0

    # -- bodies ----------------------------------------------------------------
    def load_urdf(self, name: str, path: str, **kwargs) -> int:
        """Load a URDF as the permanent body ``name``."""
        with quiet_stdout():
            body = self.client.loadURDF(path, **kwargs)
        self.bodies[name] = body
        return body

    def create_body(
        self,
        name: str,
        shape: int,
        *,
        mass: float,
        position: Sequence[float],
        orientation: Sequence[float] = (0.0, 0.0, 0.0, 1.0),
        rgba: Sequence[float] = (0.6, 0.6, 0.6, 1.0),
        com_offset: Sequence[float] = (0.0, 0.0, 0.0),
        transient: bool = True,
        collision: bool = True,
        **geometry,
    ) -> int:
        """Create a primitive body (box, cylinder, sphere, capsule) named ``name``.

        ``geometry`` takes PyBullet's keywords (``halfExtents``, ``radius``,
        ``height``/``length``). Transient bodies are removed by :meth:`restore`.
        """
        visual_geometry = dict(geometry)
        if "height" in visual_geometry:  # visual shapes call the cylinder/capsule length "length"
            visual_geometry["length"] = visual_geometry.pop("height")
        collision_id = (
            self.client.createCollisionShape(shape, **geometry) if collision else -1
        )
        visual_id = self.client.createVisualShape(shape, rgbaColor=list(rgba), **visual_geometry)
        body = self.client.createMultiBody(
            baseMass=mass,
            baseCollisionShapeIndex=collision_id,
            baseVisualShapeIndex=visual_id,
            basePosition=list(position),
            baseOrientation=list(orientation),
            baseInertialFramePosition=list(com_offset),
        )
        self.bodies[name] = body
        if transient:
            self._transient.append(name)
        return body

    def remove_transient(self) -> None:
        """Remove every transient body (objects, obstacles) created since the last restore."""
        for name in reversed(self._transient):
            self.client.removeBody(self.bodies.pop(name))
        self._transient.clear()

    # -- state -----------------------------------------------------------------
    def save(self) -> None:
        """Snapshot the permanent world; :meth:`restore` returns to it."""
        if self._transient:
            raise RuntimeError("save() must be called before transient bodies are added")
        self._saved_state = self.client.saveState()

    def restore(self) -> None:
        """Drop transient bodies and restore the saved permanent world."""
        if self._saved_state is None:
            raise RuntimeError("restore() called before save()")
        self.remove_transient()
        self.client.restoreState(stateId=self._saved_state)

    # -- stepping --------------------------------------------------------------
    def step(self, n: int = 1) -> None:
        """Advance the physics by ``n`` steps, timing the time spent in the engine."""
        step = self.client.stepSimulation
        start = time.perf_counter()
        for _ in range(n):
            step()
        self.physics_seconds += time.perf_counter() - start

    def reset_timers(self) -> None:
        self.physics_seconds = 0.0

    # -- images ----------------------------------------------------------------
    def render(
        self,
        width: int = 320,
        height: int = 240,
        target: Sequence[float] = (0.40, 0.0, 0.18),
        distance: float = 1.4,
        yaw: float = 70.0,
        pitch: float = -32.0,
    ) -> np.ndarray:
        """An RGB image (H, W, 3) from an orbiting camera, drawn by the headless TinyRenderer."""
        view = self.client.computeViewMatrixFromYawPitchRoll(
            cameraTargetPosition=list(target), distance=distance, yaw=yaw, pitch=pitch,
            roll=0.0, upAxisIndex=2,
        )
        proj = self.client.computeProjectionMatrixFOV(
            fov=45.0, aspect=width / height, nearVal=0.05, farVal=5.0
        )
        _, _, rgba, _, _ = self.client.getCameraImage(
            width, height, viewMatrix=view, projectionMatrix=proj,
            renderer=pybullet.ER_TINY_RENDERER,
        )
        return np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[..., :3].copy()

    def close(self) -> None:
        if self.client is not None:
            pybullet.disconnect(physicsClientId=self.client.id)
            self.client = None
