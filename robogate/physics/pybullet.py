"""PyBullet setters: a body's (or link's) mass and lateral friction, through ``changeDynamics``.

``client`` is what the env holds of its physics server: a ``pybullet_utils.bullet_client.BulletClient``
(panda-gym's ``env.unwrapped.sim.physics_client``) or the integer id ``pybullet.connect`` returned.
A body is its unique id; a link its index (-1, the default, is the base) or its name. An unknown
body or link is a ``ValueError`` naming what the body has. PyBullet is imported only when a
setter runs on an integer client id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["set_lateral_friction", "set_mass"]

BASE = -1
"""The link index of a body's base."""


def _api(client: Any) -> Callable[[str], Callable[..., Any]]:
    """A function giving PyBullet's functions bound to ``client``."""
    if isinstance(client, (int, np.integer)) and not isinstance(client, bool):
        import pybullet

        return lambda name: lambda *args, **kwargs: getattr(pybullet, name)(*args, physicsClientId=int(client),
                                                                            **kwargs)
    if callable(getattr(client, "changeDynamics", None)):
        return lambda name: getattr(client, name)
    raise ValueError(f"client must be a PyBullet physics client id (an int) or a BulletClient, got "
                     f"{type(client).__name__}")


def _link(call: Callable[[str], Callable[..., Any]], body: int, link: int | str) -> int:
    """The index of ``link`` of ``body``, checked against what the body has."""
    bodies = [call("getBodyUniqueId")(i) for i in range(call("getNumBodies")())]
    if isinstance(body, bool) or not isinstance(body, (int, np.integer)) or int(body) not in bodies:
        raise ValueError(f"the physics client has no body {body!r}; its body ids are {bodies}")
    names = [call("getJointInfo")(int(body), j)[12].decode() for j in range(call("getNumJoints")(int(body)))]
    if isinstance(link, str):
        if link not in names:
            raise ValueError(f"body {body} has no link named {link!r}; its links are {names} (or the base, -1)")
        return names.index(link)
    if isinstance(link, bool) or not isinstance(link, (int, np.integer)) or not BASE <= int(link) < len(names):
        links = f"links -1 (the base) to {len(names) - 1}" if names else "only its base, link -1"
        raise ValueError(f"body {body} has {links}; got link {link!r}")
    return int(link)


def set_mass(client: Any, body: int, mass: float, *, link: int | str = BASE) -> None:
    """Set the mass of a body's base (or of one of its links).

    PyBullet recomputes the link's inertia from its collision shape for the new mass.

    Parameters
    ----------
    client : BulletClient or int
        The physics client (see the module docstring).
    body : int
        The body's unique id.
    mass : float
        The new mass (kg), positive (a mass of 0 would make the body static).
    link : int or str, default -1
        The link: its index, -1 for the base, or its name.

    Raises
    ------
    ValueError
        For an unknown body or link, or a mass that is not positive.
    """
    value = float(mass)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"the mass must be a positive number (0 makes a body static), got {mass!r}")
    call = _api(client)
    call("changeDynamics")(int(body), _link(call, body, link), mass=value)


def set_lateral_friction(client: Any, body: int, friction: float, *, link: int | str = BASE) -> None:
    """Set the lateral (sliding) friction coefficient of a body's base (or of one of its links).

    PyBullet gives a contact the *product* of the two touching links' coefficients, so scaling
    one side scales every contact it makes: e.g. the object's friction against the gripper's
    pads (panda-gym's are 1.0) and against the table alike.

    Parameters
    ----------
    client : BulletClient or int
        The physics client (see the module docstring).
    body : int
        The body's unique id.
    friction : float
        The coefficient, non-negative.
    link : int or str, default -1
        The link: its index, -1 for the base, or its name.

    Raises
    ------
    ValueError
        For an unknown body or link, or a negative coefficient.
    """
    value = float(friction)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"the lateral friction must be a non-negative number, got {friction!r}")
    call = _api(client)
    call("changeDynamics")(int(body), _link(call, body, link), lateralFriction=value)
