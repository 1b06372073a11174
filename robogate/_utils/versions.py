"""Which packages decided a run's outcomes: robogate, numpy, the env's own package and its simulator.

Every stored run (a sweep, a suite run) records :func:`versions` in its manifest, and a resumed
sweep warns when one of them changed. The env's package is found from the module of its
registration and of its unwrapped class (a lab's wrapper and the third-party env inside it both
count); the physics engine is named only when that package depends on it, so a MuJoCo sweep
never claims PyBullet.
"""

from __future__ import annotations

import importlib.metadata
import re

import gymnasium as gym

__all__ = ["SIMULATORS", "versions"]

SIMULATORS = ("pybullet", "mujoco")
"""Physics engines named in a run's provenance when the env's package depends on one."""
NOT_INSTALLED = "not an installed distribution"
"""The version recorded for an env module that no installed distribution provides."""


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _requirement_names(dist: str) -> set[str]:
    requires = importlib.metadata.requires(dist) or []
    names = set()
    for line in requires:
        if "extra ==" in line:  # an optional dependency decides nothing about a plain install
            continue
        match = re.match(r"[A-Za-z0-9_.\-]+", line)
        if match:
            names.add(match.group(0).lower().replace("_", "-"))
    return names


def _env_modules(env: gym.Env) -> list[str]:
    """Top-level modules of the env's registration entry point, of its unwrapped class, and of any env that
    class holds as an attribute (a lab's env built around a third-party one)."""
    modules = []
    spec = env.spec
    if spec is not None:
        entry = spec.entry_point
        modules.append(entry.split(":")[0] if isinstance(entry, str) else getattr(entry, "__module__", ""))
    base = env.unwrapped
    held = [v.unwrapped for v in vars(base).values() if isinstance(v, gym.Env)]
    modules += [type(e).__module__ for e in (base, *held)]
    return list(dict.fromkeys(m.split(".")[0] for m in modules if m))


def versions(env: gym.Env | None = None) -> dict[str, str]:
    """Versions of the packages that decide a run's outcomes.

    Parameters
    ----------
    env : gymnasium.Env, optional
        The env the run uses: its package(s), by distribution name, and the physics engine(s)
        they depend on are added (a module no distribution provides is named as it is).

    Returns
    -------
    dict
        Distribution name -> version: ``robogate``, ``numpy``, then the env's.
    """
    out = {"robogate": _version("robogate"), "numpy": _version("numpy")}
    if env is None:
        return out
    providers = importlib.metadata.packages_distributions()
    for module in _env_modules(env):
        dists = providers.get(module)
        if not dists:
            out.setdefault(module, NOT_INSTALLED)
            continue
        for dist in dists:
            out.setdefault(dist, _version(dist))
            for simulator in SIMULATORS:
                if simulator in _requirement_names(dist):
                    out.setdefault(simulator, _version(simulator))
    return out
