"""The deployment gate: may the policy run in this operating envelope?

An **envelope** (:class:`robogate.scenarios.envelope.Envelope`) restricts some parameters
of the swept space (a range per numeric parameter, a set of allowed values per
category); given as a mapping, the parameters it leaves out keep their full
range (``rest="free"``).  Its evidence (:func:`evidence`) is the **uniform**
experiments that fall inside it: stage-1 rows of the sweep, and stage-3 rows
that :func:`robogate.sweep.gate_run.run_gate` sampled uniformly in an envelope
containing it.  Stage-2 rows are never evidence: they over-sample the failure
boundary.

:func:`gate` turns that evidence into a verdict (:func:`robogate.analysis.stats.decide`:
``pass``, ``fail`` or ``inconclusive``), or ``error`` when some experiment
inside the envelope errored (the policy raised, the simulation diverged): a
broken harness says nothing about the policy's safety, so there is no pass or
fail, only the first error message.  The verdict's sentence names the
parameters the envelope leaves free over their full range.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from robogate.analysis.stats import GateDecision, decide
from robogate.datasets.stages import STAGE_GATE, UNIFORM_STAGES, errored, first_error
from robogate.scenarios.envelope import Envelope
from robogate.scenarios.space import ParameterSpace

__all__ = ["as_envelope", "check_harness", "evidence", "gate", "name_left_out"]


def as_envelope(envelope: Any, space: ParameterSpace) -> Envelope:
    """``envelope`` as an :class:`Envelope` of ``space`` (a mapping or None: left-out parameters free)."""
    if isinstance(envelope, Envelope):
        if envelope.space != space:
            raise ValueError("envelope: it was made for a different parameter space")
        return envelope
    return Envelope(space, {} if envelope is None else envelope)


def evidence(df: pd.DataFrame, space: ParameterSpace, envelope: Envelope) -> pd.DataFrame:
    """The uniform rows of a sweep inside ``envelope``: stage 1, and stage-3 rows sampled in an envelope containing it.

    A table without a ``stage`` column is taken as uniform throughout.
    """
    missing = [c for c in [*space.names, "success"] if c not in df]
    if missing:
        raise ValueError(f"the sweep table lacks columns {missing}")
    inside = envelope.mask(df)
    if "stage" not in df:
        return df[inside]
    stage = df["stage"].to_numpy()
    usable = np.isin(stage, UNIFORM_STAGES)
    gate_rows = np.flatnonzero(stage == STAGE_GATE)
    if len(gate_rows):
        if "envelope" not in df:
            raise ValueError(f"stage-{STAGE_GATE} rows lack the 'envelope' they were sampled in")
        sampled_in = {text: Envelope.from_json(text, space).contains(envelope)
                      for text in df["envelope"].iloc[gate_rows].unique()}
        usable[gate_rows] = df["envelope"].iloc[gate_rows].map(sampled_in).to_numpy(dtype=bool)
    return df[inside & usable]


def gate(
    df: pd.DataFrame,
    space: ParameterSpace,
    envelope: Mapping[str, Any] | Envelope | None,
    max_failure_rate: float = 0.05,
    confidence: float = 0.95,
) -> GateDecision:
    """Decide whether a policy may be deployed in an operating envelope.

    Parameters
    ----------
    df : pandas.DataFrame
        A sweep table (parameter columns, ``success``, ``stage``).
    space : ParameterSpace
        The swept space.
    envelope : mapping or Envelope
        Parameter name -> ``(low, high)`` or a list of allowed values; see
        :class:`Envelope`.  ``None`` or ``{}`` is the whole space.
    max_failure_rate : float, default 0.05
        The largest acceptable failure rate, in (0, 1).
    confidence : float, default 0.95
        Confidence of the verdict, in (0, 1).

    Returns
    -------
    GateDecision
        Evidence is the uniform rows inside the envelope (stage 1, and
        stage-3 rows of :func:`robogate.sweep.gate_run.run_gate` sampled in an envelope containing
        it); never stage-2 rows.  With stage-3 rows among them the bounds
        come from the confidence sequence (they were collected sequentially),
        otherwise from Clopper–Pearson.

    Raises
    ------
    ValueError
        For a bad envelope (naming the parameter and the problem), a limit or
        confidence outside (0, 1), or a table without the space's columns.

    Examples
    --------
    >>> import pandas as pd
    >>> from robogate import Continuous, ParameterSpace
    >>> space = ParameterSpace([Continuous("friction", 0.05, 1.2, log=True)])
    >>> df = pd.DataFrame({"friction": [0.5] * 60, "success": [True] * 60, "stage": [1] * 60})
    >>> gate(df, space, {"friction": (0.4, 1.2)}).verdict
    'pass'
    """
    envelope = as_envelope(envelope, space)
    rows = evidence(df, space, envelope)
    sequential = bool("stage" in rows and (rows["stage"] == STAGE_GATE).any())
    failures = int((~rows["success"].astype(bool)).sum())
    decision = decide(failures, len(rows), max_failure_rate, confidence, sequential=sequential)
    return name_left_out(check_harness(decision, df[envelope.mask(df)]), envelope)


def check_harness(decision: GateDecision, inside: pd.DataFrame) -> GateDecision:
    """``decision``, or an ``"error"`` verdict if any experiment in ``inside`` errored."""
    broken = errored(inside)
    if not broken.any():
        return decision
    k, total = int(broken.sum()), len(inside)
    if k < total:
        counted = f"{k} of the {total} experiments"
    else:
        counted = "the one experiment" if total == 1 else f"all {total} experiments"
    reason = (f"error: {counted} inside the envelope errored (the policy "
              "raised or the simulation diverged), which is a broken harness, not evidence about the policy's "
              f"safety; first error: {first_error(inside)}.")
    return dataclasses.replace(decision, verdict="error", more_needed=0, reason=reason, errors=k,
                               first_error=first_error(inside))


def name_left_out(decision: GateDecision, envelope: Envelope) -> GateDecision:
    """The decision with its sentence naming the parameters the envelope leaves out: free over their full
    range (``rest="free"``) or held at nominal (``rest="nominal"``)."""
    left = envelope.left_out
    if not left:
        return decision
    names = left[0] if len(left) == 1 else f"{', '.join(left[:-1])} and {left[-1]}"
    its = "its" if len(left) == 1 else "their"
    if envelope.rest == "nominal":
        clause = f"the envelope holds {names} at {its} nominal value{'s' * (len(left) != 1)}"
    elif not envelope.limits:
        clause = "the envelope limits no parameter, so every one ranges over its full range"
    else:
        clause = f"the envelope leaves {names} free over {its} full range"
    return dataclasses.replace(decision, reason=f"{decision.reason[:-1]}; {clause}.")
