"""Policies that drive robogate's environments: the :class:`Policy` protocol, a scripted controller,
a learned action-chunk policy (:class:`FlowPolicy`) and a fallback that backs away (:class:`RetreatPolicy`).
Each is imported on first use, so that the simulator and torch load only when they are needed."""

from importlib import import_module
from typing import Any

from .base import Policy

__all__ = ["FlowPolicy", "Policy", "RetreatPolicy", "ScriptedPolicy"]

_LAZY = {"FlowPolicy": ".flow", "RetreatPolicy": ".retreat", "ScriptedPolicy": ".scripted"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
