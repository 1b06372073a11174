"""Policies that drive robogate's environments: the :class:`Policy` protocol, a scripted controller
and a learned action-chunk policy (:class:`FlowPolicy`, imported on first use so that torch loads
only when it is needed)."""

from typing import Any

from .base import Policy
from .scripted import ScriptedPolicy

__all__ = ["FlowPolicy", "Policy", "ScriptedPolicy"]


def __getattr__(name: str) -> Any:
    if name == "FlowPolicy":
        from .flow import FlowPolicy

        return FlowPolicy
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
