"""Where to deploy: the largest envelope around nominal that a sweep's uniform rows and its risk map say should pass.

:func:`suggest_envelope` peels the whole parameter space down toward the nominal scene, one
slice at a time, as PRIM's top-down peeling does: at each step it cuts off the slice whose
predicted failure rate is highest (by the risk map, the mean P(failure) over points spread
uniformly in the slice), among

* a tenth of the way from either end of a continuous parameter's range to its nominal value
  (on the parameter's own scale: log for log-scaled ones);
* the lowest or the highest value of an integer parameter, or one value of a category,
  never the nominal one.

Along that path the boxes shrink, so the first box the gate passes on the sweep's uniform
rows (:func:`robogate.gate`: stage-1 rows, never stage-2 ones) is the largest passing box of
the path. When none passes (a sweep has too few rows inside any box that avoids its failures),
the suggestion is the first box whose rows do not fail the gate and over which the risk map
predicts a failure rate at most the limit, both on average and in every slice the search could
cut next (its edges, where failures gather): the rows cannot show it passes, the map says it
should.

The box is chosen by looking at the sweep's rows, so its verdict on them is optimistic: only
experiments run afresh inside it certify it. ``gate --run`` on the same sweep would count the
rows that chose it, so :meth:`Suggestion.command` starts a fresh store (one uniform experiment)
and runs the gate there.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from robogate.analysis.gating import gate
from robogate.analysis.risk import MIN_PER_OUTCOME, RiskModel
from robogate.analysis.stats import GateDecision, decide
from robogate.datasets.stages import errored
from robogate.scenarios.envelope import Envelope
from robogate.scenarios.space import Categorical, Continuous, Integer, ParameterSpace

__all__ = ["Suggestion", "suggest_envelope"]

_STEPS = 10
"""Cuts from either end of a continuous range to its nominal value (each a tenth of the way, on its own scale)."""
_POINTS = 2000
"""Points spread over the box to average the risk map's P(failure) on (fresh ones once half have been cut away)."""


@dataclass(frozen=True)
class Suggestion:
    """An envelope to deploy in, and why.

    Attributes
    ----------
    envelope : Envelope or None
        The suggested envelope (parameters it leaves out are free), None when no box qualifies.
    basis : {"rows", "map", "none"}
        What it rests on: it passes the gate on the sweep's uniform rows; the rows cannot decide
        and the map predicts it under the limit; nothing (no box of the search qualifies).
    decision : GateDecision or None
        The gate's verdict on the sweep's own rows inside the envelope.
    predicted : float
        The risk map's mean P(failure) over the envelope (uniform in it); NaN without an envelope.
    max_failure_rate, confidence : float
        The limit and confidence it was chosen for.
    path : pandas.DataFrame
        The peeling path, one row per box: ``step``, ``cut``, ``envelope``, ``predicted`` (the
        map's mean P(failure) over the box), ``worst_slice`` (its highest over the slices that
        could be cut next), ``n`` (uniform rows inside), ``failures``, ``upper_bound`` and ``verdict``
        (the gate's on those rows).
    """

    envelope: Envelope | None
    basis: str
    decision: GateDecision | None
    predicted: float
    max_failure_rate: float
    confidence: float
    path: pd.DataFrame

    @property
    def flags(self) -> list[str]:
        """The envelope as the CLI's ``--envelope`` entries (``NAME=LOW:HIGH``, ``NAME=A,B``); [] for the whole space."""
        if self.envelope is None:
            return []
        out = []
        for name, limit in self.envelope.limits.items():
            dim = self.envelope.space[name]
            if isinstance(dim, Continuous):
                out.append(f"{name}={limit[0]:.6g}:{limit[1]:.6g}")
            elif isinstance(dim, Integer) and len(limit) > 1 and limit[-1] - limit[0] == len(limit) - 1:
                out.append(f"{name}={limit[0]}:{limit[-1]}")
            else:
                out.append(f"{name}={','.join(map(str, limit))}")
        return out

    def summary(self) -> str:
        """The suggestion in a few sentences: the envelope, what supports it, and what it still needs."""
        if self.envelope is None:
            return self.basis_text()
        return f"{self.basis_text()}: {self.envelope.describe()}. {self.evidence_text()}"

    def basis_text(self) -> str:
        """Why this box (without the box itself), or why there is none."""
        limit = f"{self.max_failure_rate:g}"
        needed = decide(0, 0, self.max_failure_rate, self.confidence).more_needed
        clean = self.path.loc[self.path["failures"] == 0, "n"]
        rows = (f"a pass at {limit} needs at least {needed} failure-free uniform experiments inside; the boxes of the "
                f"search without a failure held at most {int(clean.max()) if len(clean) else 0}")
        if self.basis == "rows":
            return "The largest envelope around nominal found that passes the gate on the sweep's uniform rows"
        if self.basis == "map":
            return (f"No box of the search passes the gate on the sweep's uniform rows ({rows}); the largest whose rows "
                    f"do not fail it and over which the risk map predicts a failure rate at most {limit}, on average "
                    "and at every edge")
        open_boxes = self.path[self.path["verdict"] != "fail"]
        low = (open_boxes if len(open_boxes) else self.path).sort_values("predicted").iloc[0]
        return (f"No envelope around nominal qualifies at a {limit} limit. {rows[0].upper()}{rows[1:]}. In every box "
                f"of the search whose rows do not fail the gate, the risk map predicts a failure rate above {limit} on "
                f"average or at some edge; its lowest average is {low['predicted']:.3f} ({low['envelope']}). Sweep "
                "more, or gate an envelope of your own with gate --run.")

    def evidence_text(self) -> str:
        """What the sweep's rows and the risk map say about the envelope, and why that does not certify it."""
        if self.envelope is None:
            return ""
        why = ("It was chosen by looking at these rows, so that pass is optimistic" if self.basis == "rows" else
               "The map was fitted on this sweep and errs where the sweep has few rows")
        return (f"On the sweep's rows: {self.decision.reason} The risk map predicts a mean P(failure) of "
                f"{self.predicted:.3f} over it. {why}: only fresh experiments inside it certify it.")

    def command(self, sweep: str | os.PathLike, settings: dict[str, Any], out: str | os.PathLike | None = None,
                wrap: bool = False) -> str:
        """The command line that certifies the envelope on fresh experiments only.

        A fresh store (``out``, default ``SWEEP-certify``) with one uniform experiment of another
        seed, then ``gate --run`` there: run on the sweep itself, the gate would also count the
        rows that chose the envelope.

        Parameters
        ----------
        sweep : path
            The sweep the suggestion was made on.
        settings : dict
            Its stored settings (``load_sweep(...).attrs["settings"]``): env id, policy spec and seed.
        out : path, optional
        wrap : bool, default False
            Break the line before each ``--envelope`` and after ``&&`` (a shell's ``\\`` continuations).
        """
        fresh = shlex.quote(str(out) if out is not None else f"{os.fspath(sweep).rstrip('/')}-certify")
        confidence = "" if self.confidence == 0.95 else f" --confidence {self.confidence:g}"
        pieces = [f"robogate sweep --env {shlex.quote(settings['env_id'])} --policy {shlex.quote(settings['policy'])}",
                  f"--n-lhs 1 --n-boundary 0 --seed {int(settings['seed']) + 1} --out {fresh} &&",
                  f"robogate gate {fresh}", *(f"--envelope {shlex.quote(flag)}" for flag in self.flags),
                  f"--max-failure-rate {self.max_failure_rate:g}{confidence} --run"]
        return (" \\\n    " if wrap else " ").join(pieces)


# ------------------------------------------------------------------------------------- the box


class _Box:
    """The current box: how many cuts each end of a continuous range has taken, the values left of the others."""

    def __init__(self, space: ParameterSpace) -> None:
        self.space = space
        self.nominal = space.nominal()
        self.limits: dict[str, Any] = {}
        for dim in space:
            if isinstance(dim, Continuous):
                self.limits[dim.name] = (0, 0)
            elif isinstance(dim, Integer):
                self.limits[dim.name] = list(range(dim.low, dim.high + 1))
            else:
                self.limits[dim.name] = list(dim.choices)
        self._full = dict(self.limits)

    def edges(self, name: str, cuts: tuple[int, int]) -> tuple[float, float]:
        """A continuous range after ``cuts`` (low, high) steps of a tenth of the way from each end to nominal."""
        dim = self.space[name]
        lo, nominal, hi = dim.to_unit(np.array([dim.low, self.nominal[name], dim.high], dtype=float))
        low = lo + (nominal - lo) * cuts[0] / _STEPS
        high = hi - (hi - nominal) * cuts[1] / _STEPS
        ends = dim.from_unit(np.clip([low, high], 0.0, 1.0))
        return (min(_round(ends[0]), self.nominal[name]) if cuts[0] < _STEPS else self.nominal[name],
                max(_round(ends[1]), self.nominal[name]) if cuts[1] < _STEPS else self.nominal[name])

    def envelope(self) -> Envelope:
        """The box as an envelope that limits only the parameters it has cut."""
        return Envelope(self.space, {n: self.edges(n, v) if isinstance(self.space[n], Continuous) else v
                                     for n, v in self.limits.items() if v != self._full[n]})

    def cuts(self) -> list[tuple[str, str, Any]]:
        """The slices that may be cut next: ``(name, side, new limit)``, side ``"low"``, ``"high"`` or a category."""
        out = []
        for dim in self.space:
            name, limit, nominal = dim.name, self.limits[dim.name], self.nominal[dim.name]
            if isinstance(dim, Continuous):
                edges = self.edges(name, limit)
                if edges[0] < nominal:
                    out.append((name, "low", (limit[0] + 1, limit[1])))
                if edges[1] > nominal:
                    out.append((name, "high", (limit[0], limit[1] + 1)))
            elif isinstance(dim, Integer):
                if limit[0] != nominal:
                    out.append((name, "low", limit[1:]))
                if limit[-1] != nominal:
                    out.append((name, "high", limit[:-1]))
            else:
                out += [(name, value, [v for v in limit if v != value]) for value in limit if value != nominal]
        return out

    def inside(self, points: dict[str, np.ndarray], name: str, limit: Any) -> np.ndarray:
        """Which ``points`` (a column per parameter) satisfy ``limit`` on ``name``."""
        values = points[name]
        if isinstance(self.space[name], Continuous):
            low, high = self.edges(name, limit)
            return (values >= low) & (values <= high)
        return np.isin(values, list(limit))

    def describe_cut(self, name: str, side: str, limit: Any) -> str:
        dim = self.space[name]
        if isinstance(dim, Categorical):
            return f"{name} ≠ {side}"
        if isinstance(dim, Integer):
            return f"{name} {'≥' if side == 'low' else '≤'} {limit[0] if side == 'low' else limit[-1]}"
        low, high = self.edges(name, limit)
        return f"{name} ≥ {low:.6g}" if side == "low" else f"{name} ≤ {high:.6g}"


def _round(value: float) -> float:
    """``value`` to 3 significant digits: the suggestion prints what it gated."""
    return float(f"{value:.3g}")


# ------------------------------------------------------------------------------------- search


def suggest_envelope(
    df: pd.DataFrame,
    max_failure_rate: float = 0.05,
    confidence: float = 0.95,
    *,
    space: ParameterSpace | None = None,
    model: RiskModel | None = None,
    seed: int = 0,
) -> Suggestion:
    """Suggest the largest envelope around nominal that the sweep's uniform rows and risk map say should pass.

    Parameters
    ----------
    df : pandas.DataFrame
        A sweep table (``robogate.load_sweep``).
    max_failure_rate, confidence : float
        The gate's limit and confidence.
    space : ParameterSpace, optional
        Default: the sweep's (``df.attrs["settings"]["space"]``).
    model : RiskModel, optional
        A fitted risk map to guide the search; default one fitted here on every row that did not error.
    seed : int, default 0
        Seed of the points the map's failure rate is averaged over (and of the model fitted here).

    Returns
    -------
    Suggestion
        See the module docstring for the search, and ``basis`` for what it rests on.

    Raises
    ------
    ValueError
        For a limit or confidence outside (0, 1), or a sweep with fewer than
        :data:`~robogate.analysis.risk.MIN_PER_OUTCOME` experiments of either outcome (too few for a risk map).
    """
    space = space if space is not None else df.attrs["settings"]["space"]
    df = df.copy(deep=False)
    df.attrs = {}  # pandas deep-copies attrs (a sweep's settings) on every operation: the search runs hundreds
    gate(df, space, None, max_failure_rate, confidence)  # checks the limit, confidence and columns
    if model is None:
        judged = df[~errored(df)]
        failed = ~judged["success"].astype(bool).to_numpy()
        if min(failed.sum(), (~failed).sum()) < MIN_PER_OUTCOME:
            raise ValueError(f"the sweep's {int((~failed).sum())} successes and {int(failed.sum())} failures are too "
                             f"few for a risk map to guide the search (at least {MIN_PER_OUTCOME} of each); sweep more")
        model = RiskModel(space=space, random_state=seed).fit(judged[space.names], failed)
    box = _Box(space)
    draws = 0

    def spread() -> tuple[dict[str, np.ndarray], np.ndarray]:
        nonlocal draws
        seeds = np.random.SeedSequence(seed, spawn_key=(draws,)).spawn(_POINTS)
        table = pd.DataFrame(box.envelope().points(seeds))[space.names]
        draws += 1
        return {n: table[n].to_numpy() for n in space.names}, model.predict_proba(table)[:, 1]

    points, risk = spread()
    path, chosen, cut = [], {}, "the whole space"
    while True:
        envelope = box.envelope()
        decision = gate(df, space, envelope, max_failure_rate, confidence)
        options = box.cuts()
        kept = [box.inside(points, name, limit) for name, _, limit in options]
        shares = np.array([risk[~k].mean() if not k.all() else np.nan for k in kept])
        predicted = float(risk.mean())
        edge = float(np.nanmax(shares)) if np.isfinite(shares).any() else predicted
        path.append({"step": len(path), "cut": cut, "envelope": envelope.describe(), "predicted": predicted,
                     "worst_slice": edge, "n": decision.n, "failures": decision.failures,
                     "upper_bound": decision.upper_bound, "verdict": decision.verdict})
        if decision.verdict == "pass":
            chosen["rows"] = (envelope, decision, predicted)
            break
        if "map" not in chosen and decision.verdict == "inconclusive" and max(predicted, edge) <= max_failure_rate:
            chosen["map"] = (envelope, decision, predicted)
        if "map" in chosen and decide(0, decision.n, max_failure_rate, confidence).verdict != "pass":
            break  # the boxes only shrink: not even failure-free rows inside could pass a later one
        if not np.isfinite(shares).any():
            break
        best = int(np.nanargmax(shares))
        name, side, limit = options[best]
        box.limits[name] = limit
        cut = box.describe_cut(name, side, limit)
        points, risk = {n: v[kept[best]] for n, v in points.items()}, risk[kept[best]]
        if len(risk) < _POINTS // 2:
            points, risk = spread()
    basis = "rows" if "rows" in chosen else "map" if "map" in chosen else "none"
    envelope, decision, predicted = chosen.get(basis, (None, None, float("nan")))
    return Suggestion(envelope, basis, decision, predicted, float(max_failure_rate), float(confidence),
                      pd.DataFrame(path))
