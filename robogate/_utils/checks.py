"""Argument checks shared across robogate: one owner for each rule."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

__all__ = ["check_int", "check_level", "is_integer", "is_real"]


def is_real(value: Any) -> bool:
    """True for Python and numpy real numbers; False for bools and everything else."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def is_integer(value: Any) -> bool:
    """True for Python and numpy integers; False for bools (``True`` is not the number 1 here)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def check_int(value: Any, name: str, minimum: int = 0) -> int:
    """``value`` as a Python int if it is an integer (not a bool) >= ``minimum``.

    Raises
    ------
    ValueError
        Naming ``name``, the rule and the value.
    """
    if not is_integer(value) or value < minimum:
        rule = {0: "a non-negative integer", 1: "a positive integer"}.get(minimum, f"an integer >= {minimum}")
        raise ValueError(f"{name} must be {rule}, got {value!r}")
    return int(value)


def check_level(value: Any, name: str) -> float:
    """``value`` as a float strictly between 0 and 1 (a confidence level, a rate limit, an alpha).

    Raises
    ------
    ValueError
        Naming ``name``, the valid range and the value.
    """
    if not is_real(value):
        raise ValueError(f"{name} must be a number in (0, 1), got {value!r}")
    if not 0.0 < float(value) < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {value!r}")
    return float(value)
