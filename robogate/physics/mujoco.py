"""MuJoCo setters: body mass, geom friction and geom size, changed on a compiled ``mujoco.MjModel``.

Each keeps the model consistent with what MuJoCo derives from the property at compile time,
so the physics reacts as if the model had been compiled with the new value. Names are MuJoCo's
(``model.body(name)``, ``model.geom(name)``); an unknown one is a ``ValueError`` listing the
model's names. MuJoCo is imported only when a setter needs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["body_geoms", "set_friction", "set_mass", "set_size"]

_SIZES = {"sphere": 1, "capsule": 2, "ellipsoid": 3, "cylinder": 2, "box": 3}
"""The geom types whose size is their shape, and how many size numbers each has."""


_PLURAL = {"body": "bodies", "geom": "geoms"}


def _named(model: Any, kind: str, name: str) -> Any:
    """``model.body(name)`` / ``model.geom(name)``, with a one-line ValueError for an unknown name."""
    try:
        return getattr(model, kind)(name)
    except (KeyError, TypeError):
        count = getattr(model, f"n{kind}")
        names = [getattr(model, kind)(i).name for i in range(count)]
        raise ValueError(f"the model has no {kind} named {name!r}; its named {_PLURAL[kind]} are "
                         f"{[n for n in names if n]}") from None


def _geom_id(model: Any, geom: str | int) -> int:
    """The id of a geom given by name or id."""
    if isinstance(geom, str):
        return int(_named(model, "geom", geom).id)
    if isinstance(geom, (int, np.integer)) and not isinstance(geom, bool) and 0 <= geom < model.ngeom:
        return int(geom)
    raise ValueError(f"a geom is a name or an id from 0 to {model.ngeom - 1}, got {geom!r}")


def body_geoms(model: Any, body: str) -> list[int]:
    """The ids of a body's geoms (for geoms without a name of their own, such as a table's box).

    Raises
    ------
    ValueError
        For an unknown body.
    """
    index = _named(model, "body", body).id
    first = int(model.body_geomadr[index])
    return list(range(first, first + int(model.body_geomnum[index]))) if first >= 0 else []


def _positive(value: Any, what: str) -> float:
    number = float(value)
    if not np.isfinite(number) or number <= 0:
        raise ValueError(f"{what} must be a positive number, got {value!r}")
    return number


def set_mass(model: Any, data: Any, body: str, mass: float) -> None:
    """Set a body's mass, scaling its inertia with it and refreshing MuJoCo's mass-derived constants.

    Parameters
    ----------
    model : mujoco.MjModel
    data : mujoco.MjData
        The model's data. Its state (positions, velocities, time, controls) is kept.
    body : str
        The body's name.
    mass : float
        The new mass (kg), positive.

    Notes
    -----
    The inertia is scaled by the ratio of the masses (the same shape and mass distribution).
    Then ``mujoco.mj_setConst`` recomputes what MuJoCo derives from masses at compile time
    (subtree masses, and the inverse weights that scale contact softness: without them a
    block made ten times heavier sinks into the table as if it were soft). That call moves
    ``data`` to the reference pose, so the state is saved before and restored after.

    Raises
    ------
    ValueError
        For an unknown body, a massless one (the world, or a body whose mass is its children's),
        or a mass that is not positive.
    """
    import mujoco

    mass = _positive(mass, f"the mass of body {body!r}")
    index = _named(model, "body", body).id
    old = float(model.body_mass[index])
    if old <= 0:
        raise ValueError(f"body {body!r} has no mass of its own to change (mass {old}); name the body that "
                         "holds the geoms")
    model.body_inertia[index] *= mass / old
    model.body_mass[index] = mass
    kind = mujoco.mjtState.mjSTATE_INTEGRATION
    state = np.empty(mujoco.mj_stateSize(model, kind))
    mujoco.mj_getState(model, data, state, kind)
    mujoco.mj_setConst(model, data)
    mujoco.mj_setState(model, data, state, kind)
    mujoco.mj_forward(model, data)


def set_friction(model: Any, geoms: str | int | Sequence[str | int], sliding: float, *, torsional: float | None = None,
                 rolling: float | None = None) -> None:
    """Set the friction coefficients of one geom or several.

    MuJoCo gives a contact between two geoms of equal priority the *larger* of their two
    frictions. So to make a contact slipperier, set both sides: e.g. the object and every geom
    that touches it where it matters (the fingertip pads for a grasp, the table for a push).
    Setting the object alone only raises friction, never lowers it below the other side's.
    (A geom of higher ``priority`` imposes its own friction; none of MuJoCo's defaults differ.)

    Parameters
    ----------
    model : mujoco.MjModel
    geoms : str, int or sequence of them
        The geoms: names, or ids (:func:`body_geoms` gives a body's, named or not).
    sliding : float
        The sliding (tangential) coefficient, non-negative.
    torsional, rolling : float, optional
        Also the torsional and rolling coefficients (used by contacts of ``condim`` 4 and 6);
        left out, they keep their values.

    Raises
    ------
    ValueError
        For an unknown geom or a negative coefficient.
    """
    names = [geoms] if isinstance(geoms, (str, int, np.integer)) else list(geoms)
    if not names:
        raise ValueError("set_friction needs at least one geom")
    columns = {column: float(value) for column, value in enumerate((sliding, torsional, rolling)) if value is not None}
    if not all(np.isfinite(value) and value >= 0 for value in columns.values()):
        raise ValueError(f"friction coefficients must be non-negative numbers, got {sliding=}, {torsional=}, {rolling=}")
    indices = [_geom_id(model, name) for name in names]
    for column, value in columns.items():
        model.geom_friction[indices, column] = value


def set_size(model: Any, geom: str, size: float | Sequence[float]) -> None:
    """Resize a primitive geom, and the bounding volumes MuJoCo's collision detection culls with.

    Parameters
    ----------
    model : mujoco.MjModel
    geom : str
        The geom's name: a sphere, capsule, ellipsoid, cylinder or box.
    size : float or sequence of float
        Its size in MuJoCo's terms: a sphere's radius; a capsule's or cylinder's radius and
        half-length; an ellipsoid's three radii; a box's three half-sizes. One number is used
        for each of them (a cube's half-size, say).

    Notes
    -----
    MuJoCo derives a geom's bounding sphere (``geom_rbound``) and box (``geom_aabb``) and its
    body's bounding-volume hierarchy (``bvh_aabb``) from the size at compile time, and culls
    contacts with them: a geom grown without them passes through what it should touch. They
    are set to the new size (the hierarchy's boxes only ever grow, so nothing is culled that
    touches). The body's mass and inertia stay as they are: set them with :func:`set_mass`.
    Move the body (e.g. its rest height on a table) in the env's own reset if the change needs it.

    Raises
    ------
    ValueError
        For an unknown geom, a geom whose size is not its shape (a plane, mesh, height field),
        a wrong count of numbers, or a size that is not positive.
    """
    import mujoco

    index = _named(model, "geom", geom).id
    kind = mujoco.mjtGeom(int(model.geom_type[index])).name.removeprefix("mjGEOM_").lower()
    if kind not in _SIZES:
        raise ValueError(f"geom {geom!r} is a {kind}, whose size is not its shape; set_size resizes a "
                         f"{', '.join(_SIZES)}")
    count = _SIZES[kind]
    values = np.asarray(size, dtype=np.float64).reshape(-1)
    values = np.repeat(values, count) if values.size == 1 else values
    if values.size != count:
        raise ValueError(f"a {kind} takes {count} size number(s), got {list(np.ravel(size))} for geom {geom!r}")
    for value in values:
        _positive(value, f"the size of geom {geom!r}")
    model.geom_size[index, :count] = values
    radius, length = values[0], values[-1]  # a capsule's or cylinder's half-length is its second number
    half = np.asarray({"sphere": [radius] * 3, "capsule": [radius, radius, length + radius],
                       "cylinder": [radius, radius, length]}.get(kind, values), dtype=np.float64)
    model.geom_aabb[index] = np.concatenate([np.zeros(3), half])
    model.geom_rbound[index] = {"sphere": radius, "capsule": radius + length, "cylinder": np.hypot(radius, length),
                                "ellipsoid": values.max()}.get(kind, np.linalg.norm(half))
    _grow_bvh(model, index, half)


def _grow_bvh(model: Any, geom: int, half: np.ndarray) -> None:
    """Grow every box of the geom's body's bounding-volume hierarchy to hold the geom's new box."""
    import mujoco

    body = int(model.geom_bodyid[geom])
    first, count = int(model.body_bvhadr[body]), int(model.body_bvhnum[body])
    if first < 0 or count == 0:
        return
    inertial, placed = np.empty(9), np.empty(9)
    mujoco.mju_quat2Mat(inertial, model.body_iquat[body])
    mujoco.mju_quat2Mat(placed, model.geom_quat[geom])
    to_inertial = inertial.reshape(3, 3).T
    rotation = to_inertial @ placed.reshape(3, 3)
    centre = to_inertial @ (model.geom_pos[geom] - model.body_ipos[body])
    extent = np.abs(rotation) @ half
    for node in range(first, first + count):
        box = model.bvh_aabb[node]
        low = np.minimum(box[:3] - box[3:], centre - extent)
        high = np.maximum(box[:3] + box[3:], centre + extent)
        model.bvh_aabb[node] = np.concatenate([(low + high) / 2, (high - low) / 2])
