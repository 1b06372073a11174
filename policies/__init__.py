"""Policies that drive robogate's environments: the :class:`Policy` protocol and a scripted controller."""

from .base import Policy
from .scripted import ScriptedPolicy

__all__ = ["Policy", "ScriptedPolicy"]
