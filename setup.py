"""Package discovery for the layout in pyproject.toml: robogate/, plus envs/ and policies/ installed as
robogate.envs and robogate.policies. Every package and data folder below them is found, none listed by hand."""

from setuptools import find_namespace_packages, setup


def packages_in(folder: str, prefix: str) -> list[str]:
    """``prefix`` and every package or data folder below ``folder``, named under ``prefix``."""
    found = find_namespace_packages(where=folder, exclude=["__pycache__", "*.__pycache__"])
    return [prefix, *(f"{prefix}.{name}" for name in found)]


setup(packages=[*packages_in("robogate", "robogate"), *packages_in("envs", "robogate.envs"),
                *packages_in("policies", "robogate.policies")])
