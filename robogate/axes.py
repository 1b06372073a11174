"""Tick labels shared by robogate's figures: plain numbers on log axes (0.05, 0.2, 1), never 10^-1 or 1.76×10^0."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.ticker import FuncFormatter, NullFormatter

__all__ = ["plain_log_labels"]


def _plain(value: float, _: Any = None) -> str:
    return f"{value:.3g}"


def _two_and_five(value: float, _: Any = None) -> str:
    return _plain(value) if f"{value:.1e}"[0] in "25" else ""


def plain_log_labels(axis: Any, low: float, high: float) -> None:
    """Label a log-scaled ``axis`` (``ax.xaxis`` or ``ax.yaxis``) spanning ``low``–``high`` with plain numbers.

    Under one decade every minor tick gets a label, under two the 2s and 5s do,
    beyond that only the powers of ten.
    """
    decades = float(np.log10(high / low)) if low > 0 and high > low else np.inf
    axis.set_major_formatter(FuncFormatter(_plain))
    axis.set_minor_formatter(FuncFormatter(_plain) if decades < 1 else FuncFormatter(_two_and_five)
                             if decades < 2 else NullFormatter())
