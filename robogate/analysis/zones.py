"""Danger zones: regions of the parameter space where a policy fails, with exact intervals.

A zone is a bin of one parameter or a cell of two (equal-width bins in the
parameter's unit coordinates, so log-scaled parameters are binned in log space;
one bin per value for small integer ranges and categories).  Its failure rate
is estimated from the **uniform** rows of a sweep only (stage 1): stage-2 rows
over-sample the boundary and would pull every rate towards 50 %.  Rows whose
experiment errored (the policy raised, the simulation diverged) are no
evidence either way and are left out.

Each zone is classified twice:

* **against the rest of the space** (``versus_rest``, the actionable one):
  ``worse`` when its failure rate is surely above that of the uniform rows
  outside it, ``better`` when surely below, ``unclear`` otherwise (Fisher's
  exact test, one-sided each way).  When most of the space fails, a zone at the
  base rate is no news, however high its rate;
* **in absolute terms** (``class``): ``danger`` when the Clopper–Pearson
  interval's lower end is at least 0.7, ``safe`` when its upper end is below
  0.3, ``boundary`` otherwise (neither surely high nor surely low).

A sweep has hundreds of cells, so by default every test and interval is
**simultaneous** (Bonferroni over every cell tested): with 95 % confidence,
*no* zone in the table is labelled wrongly.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import hypergeom

from robogate._utils.checks import check_int, check_level
from robogate.analysis.stats import clopper_pearson
from robogate.datasets.stages import errored, uniform_rows
from robogate.scenarios.space import Categorical, Integer, ParameterSpace, bin_index

__all__ = [
    "CLASSES",
    "RELATIVE_CLASSES",
    "Bin",
    "danger_zones",
    "parameter_bins",
]

#: Zone classes by absolute failure rate, from the most to the least dangerous.
CLASSES = ("danger", "boundary", "safe")
#: Zone classes against the rest of the space, from the most to the least dangerous.
RELATIVE_CLASSES = ("worse", "unclear", "better")
#: An integer parameter with at most this many values gets one bin per value.
_MAX_INTEGER_VALUES = 8


# -------------------------------------------------------------------------------------- bins


@dataclass(frozen=True)
class Bin:
    """One bin of a parameter.

    Attributes
    ----------
    label : str
        Readable range or value, e.g. ``"0.05–0.11"`` or ``"sphere"``.
    is_value : bool
        The bin holds a single value (a category or one integer).
    limits : tuple or list
        The bin as an envelope entry: ``(low, high)`` for numbers, ``[value]``
        for a category.
    centre : float or str
        Where to plot the bin (the geometric centre on a log scale).
    """

    label: str
    is_value: bool
    limits: Any
    centre: Any

    def describe(self, name: str) -> str:
        """The bin as a condition on parameter ``name``, e.g. ``"shape = sphere"``."""
        return f"{name} = {self.label}" if self.is_value else f"{name} {self.label}"


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def parameter_bins(values: Any, dim: Any, bins: int = 4) -> tuple[np.ndarray, list[Bin]]:
    """Bin the values of one parameter.

    Continuous parameters get ``bins`` equal-width bins of their unit
    coordinate (log space for log-scaled ones); integers with at most 8 values
    and categories get one bin per value.

    Parameters
    ----------
    values : array-like
        Values of the parameter (validated against ``dim``).
    dim : Continuous, Integer or Categorical
    bins : int, default 4
        Bins of a continuous (or wide integer) parameter.

    Returns
    -------
    codes : ndarray of int, shape (n,)
        Bin index of every value.
    table : list of Bin
        The bins, in order.
    """
    bins = check_int(bins, "bins", 1)
    values = np.asarray(values, dtype=object)
    if isinstance(dim, Categorical):
        return dim.index(values), [Bin(c, True, [c], c) for c in dim.choices]
    if isinstance(dim, Integer) and dim.n_values <= _MAX_INTEGER_VALUES:
        codes = dim.validate_many(values) - dim.low
        return codes, [Bin(str(v), True, (v, v), v) for v in range(dim.low, dim.high + 1)]
    codes = bin_index(dim.to_unit(values), bins)
    if isinstance(dim, Integer):
        members = np.arange(dim.low, dim.high + 1)
        member_codes = bin_index(dim.to_unit(members), bins)
        table = []
        for b in range(bins):
            inside = members[member_codes == b]
            lo, hi = int(inside.min()), int(inside.max())
            table.append(Bin(str(lo) if lo == hi else f"{lo}–{hi}", lo == hi, (lo, hi), (lo + hi) / 2))
        return codes, table
    edges = dim.from_unit(np.linspace(0.0, 1.0, bins + 1))
    centres = np.sqrt(edges[:-1] * edges[1:]) if dim.log else (edges[:-1] + edges[1:]) / 2
    table = [
        Bin(f"{_fmt(lo)}–{_fmt(hi)}", False, (float(lo), float(hi)), float(c))
        for lo, hi, c in zip(edges[:-1], edges[1:], centres)
    ]
    return codes, table


# ------------------------------------------------------------------------------------- zones


def _check_table(df: Any, space: ParameterSpace, what: str) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"{what} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in [*space.names, "success"] if c not in df]
    if missing:
        raise ValueError(f"{what} lacks columns {missing}")
    return df


def _cells(df: pd.DataFrame, space: ParameterSpace, bins: int, pairs: bool, min_rows: int) -> pd.DataFrame:
    """Counts of every one- and two-parameter cell with at least ``min_rows`` rows."""
    binned = {d.name: parameter_bins(df[d.name].to_numpy(), d, bins) for d in space}
    failed = ~df["success"].astype(bool).to_numpy()
    outcome = df["outcome"].astype(str).to_numpy() if "outcome" in df else None
    groups = [(n,) for n in space.names]
    if pairs:
        groups += list(itertools.combinations(space.names, 2))
    rows = []
    for group in groups:
        sizes = [len(binned[name][1]) for name in group]
        key = np.ravel_multi_index([binned[name][0] for name in group], sizes) if len(group) > 1 else binned[group[0]][0]
        n = np.bincount(key, minlength=math.prod(sizes))
        k = np.bincount(key, weights=failed, minlength=math.prod(sizes)).astype(int)
        for cell in np.flatnonzero(n >= min_rows):
            index = np.unravel_index(cell, sizes)
            parts = [binned[name][1][i] for name, i in zip(group, index)]
            mix = {}
            if outcome is not None:
                values, counts = np.unique(outcome[key == cell], return_counts=True)
                order = np.argsort(-counts, kind="stable")
                mix = {str(values[i]): int(counts[i]) for i in order}
            rows.append({
                "zone": " & ".join(b.describe(name) for name, b in zip(group, parts)),
                "params": group,
                "envelope": {name: b.limits for name, b in zip(group, parts)},
                "n": int(n[cell]),
                "failures": int(k[cell]),
                "outcomes": mix,
            })
    return pd.DataFrame(rows, columns=["zone", "params", "envelope", "n", "failures", "outcomes"])


def _classify(table: pd.DataFrame, total: int, total_failures: int, confidence: float, tests: int,
              danger: float, safe: float) -> pd.DataFrame:
    """Absolute class from Clopper–Pearson intervals; class against the rest by Fisher's exact test.

    Both are Bonferroni-corrected over ``tests`` cells (1: per cell).  Fisher's
    one-sided test of a zone against its complement is the hypergeometric
    tail of the zone's failures given the margins; ``p_value`` is the test in
    the direction observed, doubled for the two directions and corrected.
    """
    n, k = table["n"].to_numpy(dtype=np.int64), table["failures"].to_numpy(dtype=np.int64)
    cell_confidence = 1.0 - (1.0 - confidence) / tests
    low, high = clopper_pearson(k, n, cell_confidence)
    rest_n, rest_k = total - n, total_failures - k
    rate = k / np.maximum(n, 1)
    rest_rate = np.where(rest_n > 0, rest_k / np.maximum(rest_n, 1), np.nan)
    worse_side = rate >= np.nan_to_num(rest_rate, nan=0.0)
    one_sided = np.where(worse_side, hypergeom.sf(k - 1, total, total_failures, n),
                         hypergeom.cdf(k, total, total_failures, n))
    p_value = np.where(rest_n > 0, np.minimum(1.0, 2.0 * tests * one_sided), 1.0)
    decided = p_value <= 1.0 - confidence
    table = table.assign(failure_rate=rate, ci_low=low, ci_high=high, rest_failure_rate=rest_rate,
                         difference=rate - rest_rate, p_value=p_value)
    table["versus_rest"] = np.select([decided & worse_side, decided & ~worse_side], ["worse", "better"], "unclear")
    table["class"] = np.select([low >= danger, high < safe], ["danger", "safe"], "boundary")
    return table


def _labels(table: pd.DataFrame) -> list[tuple[str, str]]:
    return list(zip(table["class"], table["versus_rest"]))


def _drop_implied(table: pd.DataFrame) -> pd.DataFrame:
    """Drop two-parameter cells labelled like a one-parameter zone they lie in (unless neither label says anything)."""
    uninformative = ("boundary", "unclear")
    single = {
        (p[0], str(env[p[0]])): label
        for p, env, label in zip(table["params"], table["envelope"], _labels(table)) if len(p) == 1
    }
    keep = [
        len(p) == 1 or label == uninformative or not any(single.get((q, str(env[q]))) == label for q in p)
        for p, env, label in zip(table["params"], table["envelope"], _labels(table))
    ]
    return table[np.array(keep, dtype=bool)]  # a boolean mask: an empty list would select no columns


def _ranked(table: pd.DataFrame) -> pd.DataFrame:
    """Worse than the rest first (largest difference first), then unclear, then better (largest gain first)."""
    order = table["versus_rest"].map({c: i for i, c in enumerate(RELATIVE_CLASSES)})
    key = np.where(table["versus_rest"] == "better", table["difference"], -table["difference"])
    return (
        table.assign(_order=order, _key=key, _n=-table["n"])
        .sort_values(["_order", "_key", "_n", "zone"], kind="stable")
        .drop(columns=["_order", "_key", "_n"])
        .reset_index(drop=True)
    )


def danger_zones(
    data: pd.DataFrame | Mapping[str, pd.DataFrame],
    space: ParameterSpace,
    *,
    bins: int = 4,
    pairs: bool = True,
    confidence: float = 0.95,
    danger: float = 0.7,
    safe: float = 0.3,
    min_rows: int = 10,
    simultaneous: bool = True,
) -> pd.DataFrame:
    """Rank the one- and two-parameter regions of a sweep by how much worse than the rest of the space they fail.

    Parameters
    ----------
    data : DataFrame or mapping of str to DataFrame
        A sweep table (parameter columns, ``success``, and ``stage``,
        ``outcome`` if present), or several keyed by arm (e.g.
        ``{"panda": df1, "ur5e": df2}``) swept over the same space.  Only
        uniform rows (stage 1) that did not error are used.
    space : ParameterSpace
        The swept space (bins follow its scales and categories).
    bins : int, default 4
        Bins per continuous parameter (cells of a pair: ``bins**2``).
    pairs : bool, default True
        Also test two-parameter cells.  A pair cell inside a one-parameter
        zone with the same two labels adds nothing and is left out.
    confidence : float, default 0.95
        Confidence of the classification.
    danger, safe : float, default 0.7 and 0.3
        A zone is ``danger`` when its interval's lower end is >= ``danger``,
        ``safe`` when its upper end is < ``safe``, else ``boundary``.
    min_rows : int, default 10
        Cells with fewer uniform rows are not tested.
    simultaneous : bool, default True
        Bonferroni-adjust the tests and intervals over every cell tested (of
        every arm), so that all of them hold together with ``confidence``: the
        chance that any zone in the table is labelled wrongly is at most
        ``1 - confidence``.  ``False`` tests each cell on its own.

    Returns
    -------
    pandas.DataFrame
        One row per zone (and per arm), ranked: zones worse than the rest
        first (largest difference first), then unclear, then better.
        Columns ``zone`` (readable), ``params`` (tuple of names),
        ``envelope`` (the zone as a :func:`robogate.gate` envelope),
        ``n``, ``failures``, ``failure_rate``, ``ci_low``, ``ci_high``,
        ``rest_failure_rate`` (the uniform rows outside the zone),
        ``difference`` (zone minus rest), ``p_value`` (Fisher's exact test
        against the rest, corrected), ``versus_rest`` (worse / unclear /
        better), ``class`` (danger / boundary / safe), ``outcomes`` (outcome
        -> count, most frequent first); with several arms also ``arm`` and
        ``universal`` (the zone has the same labels on every arm, and they
        say something).  ``attrs`` holds ``tests`` (cells tested),
        ``cell_confidence`` (of each interval), ``rows`` (uniform rows used,
        per arm) and ``errors`` (uniform rows left out because they errored).
        A sweep too small for any cell to reach ``min_rows`` gives an empty
        table with these columns.

    Raises
    ------
    ValueError
        For a table without the space's columns or ``success``, or bad settings.

    Examples
    --------
    >>> from robogate import Continuous, ParameterSpace
    >>> import numpy as np, pandas as pd
    >>> space = ParameterSpace([Continuous("friction", 0.05, 1.2, log=True)])
    >>> friction = np.geomspace(0.05, 1.2, 400)
    >>> df = pd.DataFrame({"friction": friction, "success": friction > 0.15})
    >>> danger_zones(df, space)[["zone", "versus_rest", "class"]].iloc[0].tolist()
    ['friction 0.05–0.111', 'worse', 'danger']
    """
    confidence = check_level(confidence, "confidence")
    danger, safe = check_level(danger, "danger"), check_level(safe, "safe")
    if safe > danger:
        raise ValueError(f"safe ({safe}) must not exceed danger ({danger})")
    min_rows = check_int(min_rows, "min_rows", 1)
    if not isinstance(space, ParameterSpace):
        raise ValueError(f"space must be a ParameterSpace, got {type(space).__name__}")
    several = isinstance(data, Mapping)
    arms = dict(data) if several else {None: data}
    if not arms:
        raise ValueError("danger_zones needs at least one sweep table")
    tables, margins, rows, errors = {}, {}, {}, {}
    for arm, df in arms.items():
        df = uniform_rows(_check_table(df, space, "data" if arm is None else f"data[{arm!r}]"))
        broken = errored(df)
        df = df[~broken]
        tables[arm] = _cells(df, space, bins, pairs, min_rows)
        margins[arm] = (len(df), int((~df["success"].astype(bool)).sum()))
        rows[arm], errors[arm] = len(df), int(broken.sum())
    tests = sum(len(t) for t in tables.values())
    adjust = max(tests, 1) if simultaneous else 1
    classified = {arm: _classify(t, *margins[arm], confidence, adjust, danger, safe) for arm, t in tables.items()}
    if not several:
        out = _ranked(_drop_implied(classified[None]))
    else:
        out = pd.concat([_drop_implied(t).assign(arm=arm) for arm, t in classified.items()], ignore_index=True)
        labels: dict[str, dict[Any, tuple[str, str]]] = {}
        for arm, t in classified.items():
            for zone, label in zip(t["zone"], _labels(t)):
                labels.setdefault(zone, {})[arm] = label
        out["universal"] = [
            len(labels[z]) == len(arms) and len(set(labels[z].values())) == 1 and label != ("boundary", "unclear")
            for z, label in zip(out["zone"], _labels(out))
        ]
        out = _ranked(out)
    columns = ["zone", "params", "envelope", "n", "failures", "failure_rate", "ci_low", "ci_high",
               "rest_failure_rate", "difference", "p_value", "versus_rest", "class", "outcomes"]
    out = out[columns + (["arm", "universal"] if several else [])]
    out.attrs.update(tests=tests, cell_confidence=1.0 - (1.0 - confidence) / adjust,
                     rows=rows if several else rows[None], errors=errors if several else errors[None])
    return out
