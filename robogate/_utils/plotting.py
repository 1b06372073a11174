"""Tick labels shared by robogate's figures: plain numbers on log axes (0.05, 0.2, 1), never 10^-1 or 1.76×10^0."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.ticker import FuncFormatter, NullFormatter

__all__ = ["plain_log_labels"]


def _plain(value: float, _: Any = None) -> str:
    return f"{value:.3g}"


def _leading(digits: str) -> FuncFormatter:
    """Labels for the minor ticks whose leading digit is one of ``digits``."""
    return FuncFormatter(lambda value, _=None: _plain(value) if f"{value:.1e}"[0] in digits else "")


def plain_log_labels(axis: Any, low: float, high: float) -> None:
    """Label a log-scaled ``axis`` (``ax.xaxis`` or ``ax.yaxis``) spanning ``low``–``high`` with plain numbers.

    Under half a decade every minor tick gets a label, under one the 2s, 3s and 5s do, under two
    the 2s and 5s, beyond that only the powers of ten: labels that fit a small panel's axis.
    """
    decades = float(np.log10(high / low)) if low > 0 and high > low else np.inf
    axis.set_major_formatter(FuncFormatter(_plain))
    axis.set_minor_formatter(FuncFormatter(_plain) if decades < 0.5 else _leading("235") if decades < 1
                             else _leading("25") if decades < 2 else NullFormatter())
