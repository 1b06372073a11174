"""What a sweep's rows are: the stage each was drawn in, which sample the space uniformly, which errored.

Every row of a sweep table carries its ``stage``: the Latin Hypercube (stage 1), the
boundary-focused batches (stage 2), or the experiments ``robogate gate --run`` added inside an
envelope (stage 3).  Rates that stand for the whole space come from the uniform rows only, and
rows whose experiment errored are no evidence either way.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from robogate.envs.outcomes import Outcome

__all__ = ["STAGE_BOUNDARY", "STAGE_GATE", "STAGE_LHS", "UNIFORM_STAGES", "errored", "first_error", "uniform_rows"]

#: The ``stage`` of a sweep's rows: its Latin Hypercube, its boundary-focused batches, and the
#: experiments ``robogate gate --run`` adds inside an envelope.
STAGE_LHS, STAGE_BOUNDARY, STAGE_GATE = 1, 2, 3
#: Stages whose rows are a uniform sample of the whole space (the Latin Hypercube).
UNIFORM_STAGES = (STAGE_LHS,)


def uniform_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of a sweep that sample the whole space uniformly (stage 1).

    A table without a ``stage`` column is taken as uniform throughout.
    """
    if "stage" not in df:
        return df
    return df[df["stage"].isin(UNIFORM_STAGES)]


def errored(df: pd.DataFrame) -> np.ndarray:
    """Which rows of a sweep table errored (outcome ``"error"``: the policy raised, the simulation diverged).

    Such rows are a broken harness, never evidence of safety or danger.  A
    table without an ``outcome`` column has none.
    """
    if "outcome" not in df:
        return np.zeros(len(df), dtype=bool)
    return (df["outcome"].astype(str) == Outcome.ERROR.value).to_numpy()


def first_error(df: pd.DataFrame) -> str | None:
    """The first line of the error message of the first errored row (lowest ``id``), or None."""
    rows = df[errored(df)]
    if not len(rows):
        return None
    if "id" in rows:
        rows = rows.sort_values("id")
    message = rows["error"].iloc[0] if "error" in rows else None
    if not isinstance(message, str) or not message.strip():
        return "no message recorded"
    return message.strip().splitlines()[0]
