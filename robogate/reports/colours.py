"""The colour of each outcome in robogate's figures (the sweep, suite and comparison reports)."""

from __future__ import annotations

from collections.abc import Iterable

from robogate.envs.outcomes import Outcome
from robogate.execution.episode import FAILURE

__all__ = ["OUTCOME_COLOURS", "outcome_colours"]

OUTCOME_COLOURS: dict[str, str] = {
    Outcome.SUCCESS: "#2ca02c",
    Outcome.GRASP_MISS: "#ff7f0e",
    Outcome.GRIP_LOSS: "#d62728",
    Outcome.COLLISION: "#9467bd",
    Outcome.PLACEMENT_ERROR: "#8c564b",
    Outcome.TIMEOUT: "#7f7f7f",
    FAILURE: "#e377c2",
    Outcome.ERROR: "#000000",
}
"""Outcome name -> colour: each of :data:`robogate.envs.outcomes.OUTCOMES`, and the failure of an env
that names none (:data:`robogate.execution.episode.FAILURE`)."""

_ENV_NAMED = ["#17becf", "#bcbd22", "#aec7e8", "#ffbb78", "#98df8a", "#c5b0d5"]
"""Colours of the outcomes an env of a user's names itself, in the order of their names."""


def outcome_colours(present: Iterable[str]) -> dict[str, str]:
    """The outcomes ``present`` and their colours: robogate's in taxonomy order, then those an env names."""
    present = set(present)
    own = sorted(present - set(OUTCOME_COLOURS))
    return {**{o: c for o, c in OUTCOME_COLOURS.items() if o in present},
            **{o: _ENV_NAMED[k % len(_ENV_NAMED)] for k, o in enumerate(own)}}
