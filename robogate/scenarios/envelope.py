"""An envelope: a region of the parameter space, the one owner of that idea for every command.

An :class:`Envelope` limits some parameters of a :class:`~robogate.scenarios.space.ParameterSpace` (a
range per numeric parameter, allowed values per integer or category) and says what the
parameters it leaves out do, explicitly:

* ``rest="free"`` -- they range over their full span (the gate's operating envelope: "friction
  at least 0.4, anything else as it comes");
* ``rest="nominal"`` -- they stay at their nominal value (a training envelope, a suite
  scenario: "friction 0.4--1.2 and otherwise the nominal scene").

Every command reads envelopes in one syntax (:meth:`Envelope.parse`), the CLI's repeatable
``--envelope NAME=LOW:HIGH`` (both ends included; ``LOW == HIGH`` fixes a number) and
``--envelope NAME=A,B`` (allowed values; a single value fixes the parameter). Envelopes
sample scenes two ways: :meth:`Envelope.sample` spreads ``n`` scenes by a Latin Hypercube
(demonstrations, rollouts, suite scenarios), :meth:`Envelope.points` draws one independent
uniform scene per seed (the gate's sequential runs, where a scene must depend on its seed
alone). They serialise to JSON (:meth:`Envelope.to_json`) for sweeps, demonstrations and
policy checkpoints.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from robogate._utils.checks import check_int
from robogate.scenarios.space import Categorical, Continuous, Integer, ParameterSpace, bin_index

__all__ = ["RESTS", "Envelope"]

#: What the parameters an envelope leaves out do: range over their full span, or stay nominal.
RESTS = ("free", "nominal")
SYNTAX = "NAME=LOW:HIGH or NAME=A,B,..."
"""The one text form of an envelope entry (the CLI's ``--envelope``, suite files)."""


@dataclass(frozen=True, eq=False)
class Envelope:
    """A region of a parameter space: limits on some parameters, and what the others do.

    Parameters
    ----------
    space : ParameterSpace
        The space the envelope is part of.
    limits : mapping, optional
        Parameter name -> ``(low, high)`` (a range of a continuous or integer parameter,
        both ends included; ``low == high`` fixes the value; ``[low, high]`` also reads as a
        range of a continuous one) or a list of allowed values (integers or categories; one
        value fixes the parameter).
    rest : {"free", "nominal"}, default "free"
        What the parameters left out of ``limits`` do: range over their full span, or stay at
        their nominal value.

    Raises
    ------
    ValueError
        ``envelope: ...`` naming an unknown parameter, an empty range, a value outside the
        space, an unknown category or an unknown ``rest``.

    Examples
    --------
    >>> from robogate import default_space
    >>> box = Envelope(default_space(), {"friction": (0.4, 1.2), "shape": ["box", "cylinder"]}, rest="free")
    >>> box.describe()
    'friction 0.4–1.2, shape in {box, cylinder}; free: mass, com_offset, size, ik_noise, obstacles, placement'
    >>> box.contains({"friction": 0.5, "mass": 1.9}), box.contains({"friction": 0.2})
    (True, False)
    >>> Envelope.parse(["friction=0.4:1.2", "shape=box,cylinder"], default_space()) == box
    True
    >>> Envelope.from_json(box.to_json(), default_space()) == box
    True
    """

    space: ParameterSpace
    limits: Mapping[str, Any] = field(default_factory=dict)
    rest: str = "free"

    def __post_init__(self) -> None:
        if not isinstance(self.space, ParameterSpace):
            raise ValueError(f"envelope: space must be a ParameterSpace, got {type(self.space).__name__}")
        if self.rest not in RESTS:
            raise ValueError(f"envelope: rest must be 'free' or 'nominal', got {self.rest!r}")
        if not isinstance(self.limits, Mapping):
            raise ValueError(
                "envelope must be a mapping of parameter name to (low, high) or a list of values, "
                f"got {type(self.limits).__name__}"
            )
        normal = {}
        for name, limit in self.limits.items():
            if name not in self.space:
                raise ValueError(f"envelope: unknown parameter {name!r}; valid names are {self.space.names}")
            normal[name] = _normalise(self.space[name], limit)
        object.__setattr__(self, "limits", {n: normal[n] for n in self.space.names if n in normal})

    # ------------------------------------------------------------------------------ reading

    @classmethod
    def parse(cls, texts: Iterable[str], space: ParameterSpace, rest: str = "free") -> Envelope:
        """Read ``NAME=LOW:HIGH`` and ``NAME=A,B,...`` entries (the CLI's ``--envelope``).

        A single value (``NAME=V``) fixes the parameter. Each parameter may appear once.

        Raises
        ------
        ValueError
            For a malformed entry, a repeated parameter, or any error of the envelope itself.
        """
        limits: dict[str, Any] = {}
        for text in texts:
            name, sep, value = str(text).partition("=")
            name, value = name.strip(), value.strip()
            if not sep or not name or not value:
                raise ValueError(f"envelope: expected {SYNTAX}, got {text!r}")
            if name in limits:
                raise ValueError(f"envelope: parameter {name!r} is given twice")
            if name not in space:
                raise ValueError(f"envelope: unknown parameter {name!r}; valid names are {space.names}")
            limits[name] = _parse_limit(space[name], value)
        return cls(space, limits, rest)

    def updated(self, other: Envelope | Mapping[str, Any]) -> Envelope:
        """This envelope with the entries of ``other`` replacing its own (its ``rest`` kept)."""
        entries = other.limits if isinstance(other, Envelope) else other
        return Envelope(self.space, {**self.limits, **dict(entries)}, self.rest)

    # ------------------------------------------------------------------------ what is inside

    @property
    def left_out(self) -> list[str]:
        """The parameters without a limit, in the space's order (free or nominal, by ``rest``)."""
        return [n for n in self.space.names if n not in self.limits]

    def allowed(self, name: str) -> Any:
        """The values ``name`` may take: ``(low, high)`` for a continuous parameter, else a frozenset."""
        dim = self.space[name]
        if name in self.limits:
            limit = self.limits[name]
            return limit if isinstance(dim, Continuous) else frozenset(limit)
        if self.rest == "nominal":
            return (dim.nominal, dim.nominal) if isinstance(dim, Continuous) else frozenset([dim.nominal])
        if isinstance(dim, Categorical):
            return frozenset(dim.choices)
        if isinstance(dim, Integer):
            return frozenset(range(dim.low, dim.high + 1))
        return (dim.low, dim.high)

    def contains(self, other: Envelope | Mapping[str, Any]) -> bool:
        """True if the scene ``other`` (nominal-filled) or every scene of the envelope ``other`` lies inside."""
        return not self.outside(other)

    def outside(self, other: Envelope | Mapping[str, Any]) -> list[str]:
        """The parameters on which the scene (or some scene of the envelope) ``other`` leaves this envelope."""
        if isinstance(other, Envelope):
            if other.space != self.space:
                raise ValueError("envelope: the two envelopes belong to different parameter spaces")
            out = []
            for name in self.space.names:
                mine, theirs = self.allowed(name), other.allowed(name)
                inside = (mine[0] <= theirs[0] and theirs[1] <= mine[1]) if isinstance(mine, tuple) else theirs <= mine
                if not inside:
                    out.append(name)
            return out
        point = self.space.validate(other)
        out = []
        for name, value in point.items():
            allowed = self.allowed(name)
            if not (allowed[0] <= value <= allowed[1] if isinstance(allowed, tuple) else value in allowed):
                out.append(name)
        return out

    def mask(self, df: pd.DataFrame) -> np.ndarray:
        """Which rows of a table (a column per parameter) lie inside the envelope."""
        inside = np.ones(len(df), dtype=bool)
        names = self.space.names if self.rest == "nominal" else list(self.limits)
        missing = [n for n in names if n not in df]
        if missing:
            raise ValueError(f"envelope: the table lacks parameter column(s) {missing}")
        for name in names:
            allowed, values = self.allowed(name), df[name]
            if isinstance(allowed, tuple):
                inside &= ((values >= allowed[0]) & (values <= allowed[1])).to_numpy()
            else:
                inside &= values.isin(list(allowed)).to_numpy()
        return inside

    # ------------------------------------------------------------------------------ sampling

    def sample(self, n: int, seed: int = 0) -> list[dict[str, Any]]:
        """``n`` scenes spread over the envelope by a Latin Hypercube.

        Only the parameters that can vary take part in the design (a fixed one keeps its value);
        continuous ones are spread on their own scale (log-uniform when log-scaled), integers
        over their allowed values in increasing order, categories in the order the envelope
        lists them.

        Returns
        -------
        list of dict
            Complete, validated parameter dicts.
        """
        n, seed = check_int(n, "n"), check_int(seed, "seed")
        fixed, varying = {}, []
        for dim in self.space:
            values = self._values(dim)
            if len(values) == 1:
                fixed[dim.name] = values[0]
            else:
                varying.append((dim, values))
        if not varying:
            return [self.space.validate(fixed) for _ in range(n)]
        from scipy.stats import qmc  # heavy: imported when an envelope is first sampled

        unit = qmc.LatinHypercube(d=len(varying), seed=np.random.default_rng(seed)).random(n)
        columns = {dim.name: _spread(dim, values, unit[:, j]) for j, (dim, values) in enumerate(varying)}
        return [self.space.validate({**fixed, **dict(zip(columns, row))}) for row in zip(*columns.values())]

    def points(self, seeds: Sequence[Any]) -> list[dict[str, Any]]:
        """One scene per seed, uniform inside the envelope; a scene depends on its seed alone.

        Continuous parameters are uniform on their own scale (log-uniform when log-scaled),
        integers and categories uniform over the allowed values (in the space's order): the
        distribution of a sweep's stage-1 rows, restricted to the envelope.

        Parameters
        ----------
        seeds : sequence
            Anything :func:`numpy.random.default_rng` takes (ints, ``SeedSequence``).
        """
        U = np.array([np.random.default_rng(s).random(len(self.space)) for s in seeds]).reshape(-1, len(self.space))
        columns = {}
        for j, dim in enumerate(self.space):
            allowed = self.allowed(dim.name)
            if isinstance(allowed, frozenset):
                values = sorted(allowed) if isinstance(dim, Integer) else [c for c in dim.choices if c in allowed]
                columns[dim.name] = [values[i] for i in np.minimum((U[:, j] * len(values)).astype(int), len(values) - 1)]
            else:
                lo, hi = dim.to_unit(np.array(allowed, dtype=float))
                columns[dim.name] = np.clip(dim.from_unit(lo + U[:, j] * (hi - lo)), *allowed).tolist()
        return [dict(zip(columns, values)) for values in zip(*columns.values())]

    def _values(self, dim: Any) -> list:
        """What ``dim`` takes in :meth:`sample`: ``[low, high]`` or ``[value]`` for continuous, else the values."""
        allowed = self.allowed(dim.name)
        if isinstance(allowed, tuple):
            return [allowed[0]] if allowed[0] == allowed[1] else list(allowed)
        if dim.name in self.limits:
            return list(self.limits[dim.name])
        return sorted(allowed) if isinstance(dim, Integer) else [c for c in dim.choices if c in allowed]

    # ----------------------------------------------------------------------------- describing

    def describe_entry(self, name: str) -> str:
        """One parameter's limit in words, e.g. ``"friction 0.4–1.2"``, ``"obstacles 0–2"``, ``"shape in {box, sphere}"``."""
        dim, allowed = self.space[name], self.allowed(name)
        if isinstance(dim, Continuous):
            low, high = allowed
            return f"{name} {low:.3g}" if low == high else f"{name} {low:.3g}–{high:.3g}"
        order = sorted(allowed) if isinstance(dim, Integer) else [c for c in dim.choices if c in allowed]
        if len(order) == 1:
            return f"{name} {order[0]}"
        if isinstance(dim, Integer) and len(order) > 2 and order[-1] - order[0] == len(order) - 1:
            return f"{name} {order[0]}–{order[-1]}"
        return f"{name} in {{{', '.join(map(str, order))}}}"

    def describe(self) -> str:
        """The limits in a few words, and what the parameters left out do.

        E.g. ``"friction 0.4–1.2, shape in {box, cylinder}; free: mass, ..."``.
        """
        parts = [self.describe_entry(name) for name in self.limits]
        left = self.left_out
        if not parts:
            return "the whole space" if self.rest == "free" else "the nominal scene"
        if not left:
            return ", ".join(parts)
        return f"{', '.join(parts)}; {'free' if self.rest == 'free' else 'at nominal'}: {', '.join(left)}"

    def __eq__(self, other: object) -> bool:
        """Equal when both belong to the same space and allow the same values of every parameter."""
        if not isinstance(other, Envelope):
            return NotImplemented
        return self.space == other.space and all(self.allowed(n) == other.allowed(n) for n in self.space.names)

    def __hash__(self) -> int:
        return hash((self.space, tuple(self.allowed(n) for n in self.space.names)))

    def __repr__(self) -> str:
        return f"Envelope({self.describe()!r}, rest={self.rest!r})"

    # -------------------------------------------------------------------------- serialisation

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{"rest": ..., "limits": {name: [low, high] | [values]}}``.

        Continuous limits are ``[low, high]``; integer and categorical limits list their
        allowed values (integers sorted, categories in the envelope's order).
        """
        return {"rest": self.rest, "limits": {name: list(limit) for name, limit in self.limits.items()}}

    def to_json(self) -> str:
        """Canonical JSON of :meth:`to_dict` (stored with the rows ``gate --run`` adds)."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], space: ParameterSpace) -> Envelope:
        """Inverse of :meth:`to_dict`, in ``space``.

        Also reads the form robogate 0.1.0 wrote into demonstrations and policy checkpoints:
        a mapping of parameters to ``[low, high]`` (continuous and integer ranges) or lists of
        categories, the parameters left out at nominal.

        Raises
        ------
        ValueError
            For anything else, naming the problem.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"envelope: expected a mapping, got {type(data).__name__}")
        if set(data) == {"rest", "limits"}:
            limits = data["limits"]
            if not isinstance(limits, Mapping):
                raise ValueError(f"envelope: 'limits' must be a mapping, got {type(limits).__name__}")
            return cls(space, {n: tuple(v) if n in space and isinstance(space[n], Continuous) else v
                               for n, v in limits.items()}, data["rest"])
        return cls(space, {n: v if n in space and isinstance(space[n], Categorical) else tuple(v)
                           for n, v in data.items()}, "nominal")

    @classmethod
    def from_json(cls, text: str, space: ParameterSpace) -> Envelope:
        """Inverse of :meth:`to_json`.

        Also reads the form robogate 0.1.0's gate stored with its stage-3 rows: a mapping of
        parameters to ``[low, high]`` (continuous) or allowed values, the rest free.
        """
        try:
            data = json.loads(text)
        except (TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"envelope: not valid JSON ({exc})") from None
        if isinstance(data, Mapping) and set(data) != {"rest", "limits"}:
            return cls(space, {n: tuple(v) if n in space and isinstance(space[n], Continuous) else list(v)
                               for n, v in data.items()}, "free")
        return cls.from_dict(data, space)


# ---------------------------------------------------------------------------------- helpers


def _spread(dim: Any, values: list, u: np.ndarray) -> list:
    """Map one Latin Hypercube column onto ``values`` (a continuous range on the dim's scale, or a list)."""
    if isinstance(dim, Continuous):
        return Continuous(dim.name, values[0], values[1], log=dim.log).from_unit(u).tolist()
    return [values[i] for i in bin_index(u, len(values))]


def _number(dim: Any, text: str) -> float | int:
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"envelope: {dim.name} takes numbers, got {text!r}") from None
    if isinstance(dim, Integer) and value.is_integer():
        return int(value)
    return value


def _parse_limit(dim: Any, value: str) -> Any:
    """One entry's text after ``NAME=``: a range, a list of values, or a single value."""
    if ":" in value and not isinstance(dim, Categorical):
        parts = value.split(":")
        if len(parts) != 2:
            raise ValueError(f"envelope: {dim.name} range must be LOW:HIGH, got {value!r}")
        return tuple(_number(dim, p) for p in parts)
    items = [v.strip() for v in value.split(",")]
    if isinstance(dim, Categorical):
        return items
    if isinstance(dim, Continuous):
        if len(items) != 1:
            raise ValueError(f"envelope: {dim.name} is continuous and takes a range LOW:HIGH, got {value!r}")
        return (_number(dim, items[0]),) * 2
    return [_number(dim, v) for v in items]


def _inside(dim: Any, value: Any) -> Any:
    try:
        return dim.validate(value)
    except ValueError:
        raise ValueError(
            f"envelope: {dim.name} value {value!r} is outside the space ({dim.name} takes {dim.describe()})"
        ) from None


def _normalise(dim: Any, limit: Any) -> Any:
    """A continuous range as a ``(low, high)`` tuple; allowed integers as a sorted list, categories as a list in
    the order given (deduplicated)."""
    if isinstance(limit, tuple) and not isinstance(dim, Categorical):
        if len(limit) != 2:
            raise ValueError(f"envelope: {dim.name} range must be (low, high), got {limit!r}")
        lo, hi = (_inside(dim, v) for v in limit)
        if lo > hi:
            raise ValueError(f"envelope: {dim.name} range {limit[0]}:{limit[1]} is empty (low must not exceed high)")
        return (lo, hi) if isinstance(dim, Continuous) else list(range(lo, hi + 1))
    if isinstance(dim, Continuous):
        if isinstance(limit, (list, np.ndarray)) and len(limit) == 2:  # [low, high] reads as a range too
            return _normalise(dim, tuple(limit))
        raise ValueError(f"envelope: {dim.name} is continuous and needs a range (low, high), got {limit!r}")
    values = [limit] if isinstance(limit, (str, int, np.integer)) else limit
    try:
        values = list(values)
    except TypeError:
        raise ValueError(f"envelope: {dim.name} needs a list of allowed values, got {limit!r}") from None
    if not values:
        raise ValueError(f"envelope: {dim.name} allows no value (an empty list)")
    out = []
    for v in values:
        if isinstance(dim, Categorical) and isinstance(v, str) and v not in dim.choices:
            raise ValueError(f"envelope: unknown {dim.name} {v!r}; expected {dim.describe()}")
        out.append(_inside(dim, v))
    return sorted(set(out)) if isinstance(dim, Integer) else list(dict.fromkeys(out))
