"""The colour of each outcome in robogate's figures (the sweep, suite and comparison reports)."""

from __future__ import annotations

from robogate.envs.outcomes import Outcome

__all__ = ["OUTCOME_COLOURS"]

OUTCOME_COLOURS: dict[str, str] = {
    Outcome.SUCCESS: "#2ca02c",
    Outcome.GRASP_MISS: "#ff7f0e",
    Outcome.GRIP_LOSS: "#d62728",
    Outcome.COLLISION: "#9467bd",
    Outcome.PLACEMENT_ERROR: "#8c564b",
    Outcome.TIMEOUT: "#7f7f7f",
    Outcome.ERROR: "#000000",
}
"""Outcome name -> colour, one for each of :data:`robogate.envs.outcomes.OUTCOMES`."""
