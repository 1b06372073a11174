"""What a pick-and-place scene offers: the table, the object shapes, the place targets and the
scenario space over them.

:data:`SHAPES` and :data:`PLACEMENTS` are the one declaration of the scenario's
categories: :func:`default_space` takes its ``shape`` and ``placement`` choices from
them (in this order, the first being the nominal value), the env builds and observes
objects from them, and the scripted controller reads its per-shape facts here. A new
shape is one entry in :data:`SHAPES` with its geometry function.

The module is plain data: it imports no simulator, so the space of robogate's envs
(``robogate.default_space()``) is known on a machine without PyBullet.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from robogate.scenarios.envelope import Envelope
from robogate.scenarios.space import Categorical, Continuous, Integer, ParameterSpace

TABLE_X = (0.15, 0.95)
TABLE_Y = (-0.50, 0.48)
"""Extent of the table top (m, the arm's base frame)."""
REACH_LIMIT_BEARING = math.radians(35.0)
"""Bearing from the arm's base of the ``reach_limit`` placements."""


class Geometry(NamedTuple):
    """Collision geometry of an object of one size."""

    shape: str
    """Name of the PyBullet geometry type (``"GEOM_BOX"`` etc.)."""
    kwargs: dict[str, Any]
    """Extents passed to ``createCollisionShape`` (half extents, radius, height)."""
    height: float
    """Height of the object resting on the table (m)."""


@dataclass(frozen=True)
class Shape:
    """An object shape.

    Attributes
    ----------
    name : str
        Value of the ``shape`` scenario parameter.
    geometry : callable
        ``geometry(size) -> Geometry`` for the ``size`` parameter (m).
    long_axis : int
        The object's axis (0 x, 1 y, 2 z, in its own frame) that lies horizontal along its
        length at rest: the centre-of-mass offset lies along it, the fingers close across it.
    tilt : float
        Rotation about the object's y axis that puts it in its resting pose (rad).
    yaw_symmetry : float or None
        Period (rad) of the resting object's symmetry about the vertical; None for a shape
        round about the vertical, which a grasp may take at any yaw.
    """

    name: str
    geometry: Callable[[float], Geometry]
    long_axis: int = 0
    tilt: float = 0.0
    yaw_symmetry: float | None = None


def _box(size: float) -> Geometry:
    return Geometry("GEOM_BOX", {"halfExtents": [size / 2] * 3}, size)


def _cylinder(size: float) -> Geometry:
    return Geometry("GEOM_CYLINDER", {"radius": size / 2, "height": size}, size)


def _sphere(size: float) -> Geometry:
    return Geometry("GEOM_SPHERE", {"radius": size / 2}, size)


def _capsule(size: float) -> Geometry:
    """A capsule ``size`` long; its axis is its own z, laid horizontal by its tilt."""
    return Geometry("GEOM_CAPSULE", {"radius": size / 4, "height": size}, size / 2)


def _plate(size: float) -> Geometry:
    thickness = max(0.012, 0.3 * size)
    return Geometry("GEOM_BOX", {"halfExtents": [size / 2, size / 2, thickness / 2]}, thickness)


SHAPES: dict[str, Shape] = {
    shape.name: shape
    for shape in (
        Shape("box", _box, yaw_symmetry=math.pi / 2),
        Shape("cylinder", _cylinder),
        Shape("sphere", _sphere),
        Shape("capsule", _capsule, long_axis=2, tilt=math.pi / 2, yaw_symmetry=math.pi),
        Shape("plate", _plate, yaw_symmetry=math.pi / 2),
    )
}
"""Object shapes by name, in the order of the ``shape`` parameter's choices."""


@dataclass(frozen=True)
class Placement:
    """A named place target: position on the table and the height of the platform under it."""

    name: str
    x: float
    y: float
    platform: float = 0.0
    at_reach_limit: bool = False

    def target(self, reach_radius: float) -> np.ndarray:
        """World position of the target's surface point (x, y, surface height).

        ``reach_radius`` is the horizontal distance from the arm's base of the
        ``at_reach_limit`` targets (m); the others ignore it.
        """
        if self.at_reach_limit:
            x = reach_radius * math.cos(REACH_LIMIT_BEARING)
            y = reach_radius * math.sin(REACH_LIMIT_BEARING)
        else:
            x, y = self.x, self.y
        return np.array([x, y, self.platform])


PLACEMENTS: dict[str, Placement] = {
    placement.name: placement
    for placement in (
        Placement("center", 0.45, 0.18),
        Placement("left", 0.45, 0.32),
        Placement("right", 0.45, 0.05),
        Placement("near", 0.30, 0.18),
        Placement("far", 0.60, 0.18),
        Placement("left_near", 0.30, 0.32),
        Placement("right_near", 0.30, 0.05),
        Placement("left_far", 0.60, 0.32),
        Placement("right_far", 0.60, 0.05),
        Placement("raised_low", 0.45, 0.18, platform=0.06),
        Placement("raised_high", 0.45, 0.18, platform=0.15),
        Placement("edge", 0.45, TABLE_Y[1] - 0.04),
        Placement("reach_limit", 0.0, 0.0, at_reach_limit=True),
        Placement("reach_limit_raised", 0.0, 0.0, platform=0.10, at_reach_limit=True),
    )
}
"""Place targets by name, easiest first, in the order of the ``placement`` parameter's choices."""


def default_space() -> ParameterSpace:
    """The 8-D scenario space of robogate's pick-and-place envs (ROBOGATE's dimensions).

    Returns
    -------
    ParameterSpace
        friction, mass, com_offset, size, ik_noise, obstacles, shape, placement.
        The ``shape`` and ``placement`` choices are :data:`SHAPES` and :data:`PLACEMENTS`,
        in their order; the first of each is nominal.
    """
    return ParameterSpace(
        [
            Continuous("friction", 0.05, 1.2, log=True, nominal=0.8, unit="coefficient"),
            Continuous("mass", 0.05, 2.0, log=True, nominal=0.2, unit="kg"),
            Continuous("com_offset", 0.0, 0.4, nominal=0.0, unit="fraction of size"),
            Continuous("size", 0.02, 0.12, nominal=0.05, unit="m"),
            Continuous("ik_noise", 0.0, 0.04, nominal=0.0, unit="m"),
            Integer("obstacles", 0, 4, nominal=0, unit="count"),
            Categorical("shape", tuple(SHAPES)),
            Categorical("placement", tuple(PLACEMENTS)),
        ]
    )


TRAINING_ENVELOPE = Envelope(
    default_space(),
    {
        "friction": (0.4, 1.2),
        "mass": (0.05, 0.5),
        "com_offset": (0.0, 0.1),
        "size": (0.03, 0.07),
        "ik_noise": (0.0, 0.003),
        "obstacles": (0, 0),
        "shape": ["box", "cylinder", "sphere"],
        "placement": ["center", "left", "right", "near", "far", "left_near", "right_near", "left_far", "right_far"],
    },
    rest="nominal",
)
"""The default training envelope (every parameter limited; anything left out of an envelope
derived from it with :meth:`~robogate.scenarios.envelope.Envelope.updated` keeps these limits)."""
