"""A sweep table in a few figures and lines: the headline rate on uniform rows, the stages, the outcomes, the errors."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from robogate.datasets.stages import STAGE_BOUNDARY, STAGE_GATE, STAGE_LHS, errored, first_error, uniform_rows

__all__ = ['error_line', 'format_summary', 'summarize_sweep']


def summarize_sweep(df: pd.DataFrame, elapsed: float | None = None) -> dict[str, Any]:
    """Summary figures of a sweep table.

    Parameters
    ----------
    df : pandas.DataFrame
        A table returned by :func:`run_sweep` (or read from its store).
    elapsed : float, optional
        Wall-clock seconds of the sweep; default ``df.attrs.get("elapsed")``.

    Returns
    -------
    dict
        ``rows``; ``success_rate``, the headline: the rate of the uniform (stage-1) rows, which stand
        for the whole space (the boundary-focused stage 2 over-samples the success band, and the
        gate's stage-3 runs sample one envelope); ``uniform_rows``, how many it is over;
        ``success_rate_by_stage`` (stage -> rate; rates leave out the experiments that errored, NaN
        if none is left), ``rows_by_stage``, ``outcomes`` (outcome -> count, most frequent first, of
        the sweep's own rows: stages 1 and 2), ``gate_outcomes`` (the same of the gate's stage-3
        rows, reported apart), ``errors`` (rows with an ``error`` outcome: the policy raised or the
        simulation diverged), ``first_error`` (the first line of the first one's message, or None),
        ``elapsed`` (seconds or None), ``episodes_per_second`` (or None) and ``lhs_discrepancy``
        (centred L2 discrepancy of the stage-1 design, if known).
    """
    if elapsed is None:
        elapsed = df.attrs.get("elapsed")
    n = len(df)
    uniform = uniform_rows(df)
    judged = uniform[~errored(uniform)]  # an errored experiment is neither a success nor a failure of the policy
    succ = judged["success"].astype(bool) if "success" in df else pd.Series([], dtype=bool)
    by_stage, rows_by_stage = {}, {}
    if "stage" in df and n:
        for stage, grp in df.groupby("stage"):
            rows_by_stage[int(stage)] = int(len(grp))
            ok = grp[~errored(grp)]["success"].astype(bool)
            by_stage[int(stage)] = float(ok.mean()) if len(ok) else math.nan
    gate = (df["stage"] == STAGE_GATE).to_numpy() if "stage" in df else np.zeros(n, dtype=bool)
    return {
        "first_error": first_error(df),
        "rows": int(n),
        "success_rate": float(succ.mean()) if len(succ) else math.nan,
        "uniform_rows": int(len(judged)),
        "success_rate_by_stage": by_stage,
        "rows_by_stage": rows_by_stage,
        "outcomes": _outcome_counts(df[~gate]),
        "gate_outcomes": _outcome_counts(df[gate]),
        "errors": int(errored(df).sum()),
        "elapsed": None if elapsed is None else float(elapsed),
        "episodes_per_second": (n / elapsed) if elapsed else None,
        "lhs_discrepancy": df.attrs.get("lhs_discrepancy"),
    }


def _outcome_counts(df: pd.DataFrame) -> dict[str, int]:
    """Outcome -> count, most frequent first."""
    if "outcome" not in df or not len(df):
        return {}
    counts = df["outcome"].value_counts()
    return {str(k): int(v) for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))}


_STAGE_NAMES = {STAGE_LHS: "uniform", STAGE_BOUNDARY: "boundary-focused", STAGE_GATE: "gate runs inside an envelope"}


def error_line(summary: Mapping[str, Any]) -> str:
    """One line on the experiments that errored (see :func:`summarize_sweep`)."""
    k, n = summary["errors"], summary["rows"]
    return (f"errors: {k} of {n} experiments errored (the policy raised or the simulation diverged: a broken "
            f"harness, not a failure of the policy); first: {summary.get('first_error')}")


def format_summary(summary: Mapping[str, Any]) -> str:
    """Render :func:`summarize_sweep` output as a few human-readable lines."""
    n = summary["rows"]

    def rate(value: float) -> str:
        return "n/a" if math.isnan(value) else f"{value:.1%}"

    def mix(counts: Mapping[str, int]) -> str:
        total = sum(counts.values())
        return ", ".join(f"{k} {v} ({v / total:.0%})" for k, v in counts.items())

    excluded = ", errored experiments left out" if summary.get("errors") else ""
    lines = [f"rows: {n}", f"success rate: {rate(summary['success_rate'])} of the {summary['uniform_rows']} uniform "
                           f"(stage-1) experiments{excluded}"]
    for stage, value in summary["success_rate_by_stage"].items():
        rows = summary.get("rows_by_stage", {}).get(stage)
        name = f" ({_STAGE_NAMES[stage]})" if stage in _STAGE_NAMES else ""
        lines.append(f"  stage {stage}: {rate(value)}" + (f" of {rows}" if rows is not None else "") + name)
    if summary["outcomes"]:
        lines.append(f"outcomes: {mix(summary['outcomes'])}")
    if summary.get("gate_outcomes"):
        lines.append(f"gate runs, apart: {mix(summary['gate_outcomes'])}")
    if summary.get("errors"):
        lines.append(error_line(summary))
    if summary.get("lhs_discrepancy") is not None and not math.isnan(summary["lhs_discrepancy"]):
        lines.append(f"stage-1 design: centred discrepancy {summary['lhs_discrepancy']:.4g}")
    if summary.get("elapsed") is not None:
        lines.append(f"elapsed: {summary['elapsed']:.1f} s")
    return "\n".join(lines)
