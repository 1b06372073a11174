"""The operational parameter space a policy is swept through.

A :class:`ParameterSpace` is an ordered collection of dimensions
(:class:`Continuous`, :class:`Integer`, :class:`Categorical`).  Every dimension
maps the unit interval ``[0, 1]`` to its physical values and back, so samplers
can work in the unit cube and hand physical parameter dictionaries to the
simulator:

* :class:`Continuous` -- linear, or linear in ``log(value)`` when ``log=True``;
* :class:`Integer` and :class:`Categorical` -- the unit interval is cut into
  ``n`` equal bins; value number ``k`` occupies ``[k/n, (k+1)/n)`` and maps back
  to the bin centre ``(k + 0.5)/n``.

Every dimension also validates user input (:meth:`Continuous.validate` etc.):
a value out of range, non-finite, of the wrong type or an unknown category
raises a :class:`ValueError` that names the parameter and its valid range.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Union

import numpy as np
import pandas as pd

from robogate._utils.checks import is_integer, is_real

__all__ = [
    "Continuous",
    "Integer",
    "Categorical",
    "Dimension",
    "ParameterSpace",
]


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------


def _type_name(value: Any) -> str:
    return type(value).__name__


def _check_name(name: Any, kind: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{kind} parameter name must be a non-empty string, got {name!r}")
    return name


def _check_unit_text(dim: Any) -> None:
    if not isinstance(dim.unit, str):
        raise ValueError(f"parameter {dim.name!r}: unit must be a string, got {dim.unit!r}")


def _fmt(x: float) -> str:
    return f"{x:g}"


def _wrong_type(dim: Any, what: str, value: Any) -> ValueError:
    """The error for a value of the wrong type for a numeric dimension."""
    return ValueError(
        f"parameter {dim.name!r}: {what} must be {dim.describe()}, got {_type_name(value)} {value!r}"
    )


def _in_range(dim: Any, what: str, v: float | int) -> Any:
    """``v`` if it lies within the dimension's bounds, else a ``ValueError`` naming the parameter."""
    if v < dim.low or v > dim.high:
        raise ValueError(f"parameter {dim.name!r}: {what} {v!r} is out of range; expected {dim.describe()}")
    return v


def _check_unit(u: Any, name: str) -> np.ndarray:
    """Return ``u`` as a float array after checking it lies in [0, 1]."""
    arr = np.asarray(u, dtype=float)
    if arr.size and (not np.all(np.isfinite(arr)) or arr.min() < 0.0 or arr.max() > 1.0):
        raise ValueError(
            f"parameter {name!r}: unit-cube coordinates must be finite and in [0, 1]"
        )
    return arr


_PLAIN_REAL_TYPES = frozenset(
    {float, int, np.float64, np.float32, np.float16, np.int64, np.int32, np.int16, np.int8,
     np.uint64, np.uint32, np.uint16, np.uint8}
)


def _plain_floats(values: Any) -> np.ndarray | None:
    """``values`` as a 1-D float array if every item is a plain real number, else None.

    A fast path for vectorised validation; anything unusual (bool, str, None,
    other objects) returns None so the caller validates item by item and raises
    a precise error.
    """
    if isinstance(values, np.ndarray):
        if values.dtype.kind in "iuf":
            return values.astype(float).ravel()
        if values.dtype.kind != "O":
            return None
        values = values.ravel().tolist()
    else:
        values = list(values)
    if not set(map(type, values)) <= _PLAIN_REAL_TYPES:
        return None
    return np.array(values, dtype=float)


def _validate_each(dim: Any, values: Any) -> list:
    """Validate item by item: the first bad value raises its precise error."""
    return [dim.validate(v) for v in np.asarray(values, dtype=object).ravel().tolist()]


def bin_index(u: np.ndarray, n: int) -> np.ndarray:
    """Index of the equal-width bin of [0, 1] (``n`` bins) holding each ``u``."""
    return np.minimum(np.floor(u * n).astype(np.int64), n - 1)


# ----------------------------------------------------------------------------
# dimensions
# ----------------------------------------------------------------------------


class _Serialisable:
    """``to_dict`` for the dimension dataclasses: their kind, then every field in order."""

    kind: ClassVar[str]
    name: str
    unit: str

    def to_dict(self) -> dict:
        """JSON-serialisable description (see :meth:`ParameterSpace.from_dict`)."""
        out: dict[str, Any] = {"kind": self.kind}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @property
    def label(self) -> str:
        """The name with its unit, for an axis: ``"mass (kg)"``; the bare name without a unit."""
        return f"{self.name} ({self.unit})" if self.unit else self.name


@dataclass(frozen=True)
class Continuous(_Serialisable):
    """A real-valued parameter on ``[low, high]``.

    Parameters
    ----------
    name : str
        Parameter name.
    low, high : float
        Finite bounds, ``low < high``.
    log : bool, default False
        Map the unit interval linearly in ``log(value)`` (requires ``low > 0``).
    nominal : float, optional
        The value used when the parameter is not given.  Defaults to the
        midpoint (the geometric midpoint when ``log=True``).
    unit : str, default ""
        What the values measure, e.g. ``"kg"`` (axis labels; not compared).
    """

    name: str
    low: float
    high: float
    log: bool = False
    nominal: float | None = None
    unit: str = field(default="", compare=False)

    kind: ClassVar[str] = "continuous"

    def __post_init__(self) -> None:
        _check_name(self.name, "Continuous")
        _check_unit_text(self)
        for attr in ("low", "high"):
            v = getattr(self, attr)
            if not is_real(v) or not math.isfinite(float(v)):
                raise ValueError(
                    f"parameter {self.name!r}: {attr} must be a finite real number, got {v!r}"
                )
            object.__setattr__(self, attr, float(v))
        if not self.low < self.high:
            raise ValueError(
                f"parameter {self.name!r}: low must be < high, got low={_fmt(self.low)}, "
                f"high={_fmt(self.high)}"
            )
        if not isinstance(self.log, (bool, np.bool_)):
            raise ValueError(f"parameter {self.name!r}: log must be a bool, got {self.log!r}")
        object.__setattr__(self, "log", bool(self.log))
        if self.log and self.low <= 0.0:
            raise ValueError(
                f"parameter {self.name!r}: a log-scaled range needs positive bounds, "
                f"got low={_fmt(self.low)}"
            )
        if self.nominal is None:
            nom = math.sqrt(self.low * self.high) if self.log else 0.5 * (self.low + self.high)
            nom = min(max(nom, self.low), self.high)
        else:
            nom = self._check(self.nominal, what="nominal")
        object.__setattr__(self, "nominal", nom)

    # -- description -----------------------------------------------------------------------------

    def describe(self) -> str:
        """Human-readable range, e.g. ``"a real number in [0.05, 1.2] (log scale)"``."""
        scale = " (log scale)" if self.log else ""
        return f"a real number in [{_fmt(self.low)}, {_fmt(self.high)}]{scale}"

    # -- validation ------------------------------------------------------------------------------

    def _check(self, value: Any, what: str = "value") -> float:
        if not is_real(value):
            raise _wrong_type(self, what, value)
        v = float(value)
        if not math.isfinite(v):
            raise ValueError(
                f"parameter {self.name!r}: {what} must be {self.describe()}, got {value!r}"
            )
        return _in_range(self, what, v)

    def validate(self, value: Any) -> float:
        """Return ``value`` as a Python float, or raise ``ValueError`` naming the parameter."""
        return self._check(value)

    # -- unit-cube mapping -----------------------------------------------------------------------

    def from_unit(self, u: Any) -> np.ndarray:
        """Map unit-interval coordinates to physical values (vectorised)."""
        u = _check_unit(u, self.name)
        if self.log:
            lo, hi = math.log(self.low), math.log(self.high)
            x = np.exp(lo + u * (hi - lo))
        else:
            x = self.low + u * (self.high - self.low)
        # exact bounds at the ends of the unit interval, no rounding drift outside
        x = np.where(u <= 0.0, self.low, np.where(u >= 1.0, self.high, x))
        return np.clip(x, self.low, self.high)

    def validate_many(self, values: Any) -> np.ndarray:
        """Vectorised :meth:`validate`: a flat float array, or ``ValueError`` on a bad item."""
        x = _plain_floats(values)
        if x is None or not np.all(np.isfinite(x) & (x >= self.low) & (x <= self.high)):
            x = np.array(_validate_each(self, values), dtype=float)
        return x

    def to_unit(self, values: Any) -> np.ndarray:
        """Map physical values to unit-interval coordinates (vectorised, validated)."""
        x = self.validate_many(values).reshape(np.shape(values))
        if self.log:
            lo, hi = math.log(self.low), math.log(self.high)
            u = (np.log(x) - lo) / (hi - lo)
        else:
            u = (x - self.low) / (self.high - self.low)
        return np.clip(u, 0.0, 1.0)


@dataclass(frozen=True)
class Integer(_Serialisable):
    """An integer parameter on ``{low, ..., high}``.

    Parameters
    ----------
    name : str
        Parameter name.
    low, high : int
        Inclusive bounds, ``low < high``.
    nominal : int, optional
        The value used when the parameter is not given (default ``low``).
    unit : str, default ""
        What the values count, e.g. ``"count"`` (axis labels; not compared).
    """

    name: str
    low: int
    high: int
    nominal: int | None = None
    unit: str = field(default="", compare=False)

    kind: ClassVar[str] = "integer"

    def __post_init__(self) -> None:
        _check_name(self.name, "Integer")
        _check_unit_text(self)
        for attr in ("low", "high"):
            v = getattr(self, attr)
            ok = is_real(v) and math.isfinite(float(v)) and float(v).is_integer()
            if not ok:
                raise ValueError(
                    f"parameter {self.name!r}: {attr} must be a finite integer, got {v!r}"
                )
            object.__setattr__(self, attr, int(v))
        if not self.low < self.high:
            raise ValueError(
                f"parameter {self.name!r}: low must be < high, got low={self.low}, "
                f"high={self.high}"
            )
        nom = self.low if self.nominal is None else self._check(self.nominal, what="nominal")
        object.__setattr__(self, "nominal", nom)

    @property
    def n_values(self) -> int:
        """Number of distinct values (``high - low + 1``)."""
        return self.high - self.low + 1

    def describe(self) -> str:
        """Human-readable range, e.g. ``"an integer in [0, 4]"``."""
        return f"an integer in [{self.low}, {self.high}]"

    def _check(self, value: Any, what: str = "value") -> int:
        if not is_real(value):
            raise _wrong_type(self, what, value)
        if is_integer(value):
            v = int(value)
        else:
            f = float(value)
            if not math.isfinite(f) or not f.is_integer():
                raise ValueError(
                    f"parameter {self.name!r}: {what} must be {self.describe()}, got {value!r}"
                )
            v = int(f)
        return _in_range(self, what, v)

    def validate(self, value: Any) -> int:
        """Return ``value`` as a Python int, or raise ``ValueError`` naming the parameter.

        Integral floats (``2.0``) and numpy integers are accepted; ``1.5`` and
        ``True`` are not.
        """
        return self._check(value)

    def from_unit(self, u: Any) -> np.ndarray:
        """Map unit-interval coordinates to integers by equal-width binning."""
        u = _check_unit(u, self.name)
        return self.low + bin_index(u, self.n_values)

    def validate_many(self, values: Any) -> np.ndarray:
        """Vectorised :meth:`validate`: a flat int64 array, or ``ValueError`` on a bad item."""
        x = _plain_floats(values)
        if x is None or not np.all(
            np.isfinite(x) & (x >= self.low) & (x <= self.high) & (x == np.round(x))
        ):
            x = np.array(_validate_each(self, values), dtype=float)
        return x.astype(np.int64)

    def to_unit(self, values: Any) -> np.ndarray:
        """Map integers to the centres of their unit-interval bins (validated)."""
        x = self.validate_many(values).reshape(np.shape(values))
        return (x - self.low + 0.5) / self.n_values


@dataclass(frozen=True)
class Categorical(_Serialisable):
    """A parameter taking one of a finite set of named values.

    Parameters
    ----------
    name : str
        Parameter name.
    choices : sequence of str
        Distinct, non-empty category names (stored as a tuple, order kept).
    nominal : str, optional
        The value used when the parameter is not given (default ``choices[0]``).
    """

    name: str
    choices: tuple[str, ...] = field()
    nominal: str | None = None

    kind: ClassVar[str] = "categorical"
    unit: ClassVar[str] = ""  # named values have no unit

    def __post_init__(self) -> None:
        _check_name(self.name, "Categorical")
        choices = self.choices
        if isinstance(choices, (str, bytes)) or not isinstance(choices, Iterable):
            raise ValueError(
                f"parameter {self.name!r}: choices must be a sequence of strings, "
                f"got {choices!r}"
            )
        choices = tuple(choices)
        if not choices:
            raise ValueError(f"parameter {self.name!r}: choices must not be empty")
        for c in choices:
            if not isinstance(c, str) or not c:
                raise ValueError(
                    f"parameter {self.name!r}: every choice must be a non-empty string, "
                    f"got {c!r}"
                )
        dupes = sorted({c for c in choices if choices.count(c) > 1})
        if dupes:
            raise ValueError(f"parameter {self.name!r}: duplicate choices {dupes}")
        object.__setattr__(self, "choices", tuple(str(c) for c in choices))
        nom = self.choices[0] if self.nominal is None else self._check(self.nominal, "nominal")
        object.__setattr__(self, "nominal", nom)

    @property
    def n_values(self) -> int:
        """Number of categories."""
        return len(self.choices)

    def describe(self) -> str:
        """Human-readable list of the valid choices."""
        return "one of " + ", ".join(repr(c) for c in self.choices)

    def _check(self, value: Any, what: str = "value") -> str:
        if not isinstance(value, str):
            raise ValueError(
                f"parameter {self.name!r}: {what} must be {self.describe()}, "
                f"got {_type_name(value)} {value!r}"
            )
        if value not in self.choices:
            raise ValueError(
                f"parameter {self.name!r}: unknown {what} {value!r}; expected {self.describe()}"
            )
        return str(value)

    def validate(self, value: Any) -> str:
        """Return ``value`` as a Python str, or raise ``ValueError`` naming the parameter."""
        return self._check(value)

    def index(self, values: Any) -> np.ndarray:
        """Position of each value in :attr:`choices` (validated, vectorised)."""
        lookup = {c: i for i, c in enumerate(self.choices)}
        flat = np.asarray(values, dtype=object).ravel().tolist()
        try:
            out = np.array([lookup[v] for v in flat], dtype=np.int64)
        except (KeyError, TypeError):
            _validate_each(self, flat)  # raises the precise error
            raise
        return out.reshape(np.shape(values))

    def validate_many(self, values: Any) -> np.ndarray:
        """Vectorised :meth:`validate`: a flat object array of str, or ``ValueError``."""
        return np.asarray(self.choices, dtype=object)[self.index(values).ravel()]

    def from_unit(self, u: Any) -> np.ndarray:
        """Map unit-interval coordinates to category names (object array)."""
        u = _check_unit(u, self.name)
        return np.asarray(self.choices, dtype=object)[bin_index(u, self.n_values)]

    def to_unit(self, values: Any) -> np.ndarray:
        """Map category names to the centres of their unit-interval bins (validated)."""
        return (self.index(values) + 0.5) / self.n_values


Dimension = Union[Continuous, Integer, Categorical]
_KINDS: dict[str, type] = {cls.kind: cls for cls in (Continuous, Integer, Categorical)}


# ----------------------------------------------------------------------------
# the space
# ----------------------------------------------------------------------------


class ParameterSpace:
    """An ordered set of named parameter dimensions.

    Parameters
    ----------
    dims : iterable of Continuous, Integer or Categorical
        The dimensions, in column order.  Names must be unique.

    Examples
    --------
    >>> from robogate.scenarios.space import ParameterSpace, Continuous, Integer, Categorical
    >>> space = ParameterSpace([Continuous("friction", 0.05, 1.2, log=True),
    ...                         Integer("obstacles", 0, 4),
    ...                         Categorical("shape", ["box", "cylinder"])])
    >>> space.names
    ['friction', 'obstacles', 'shape']
    >>> space.validate({"friction": 0.2})
    {'friction': 0.2, 'obstacles': 0, 'shape': 'box'}
    >>> space.from_unit([[0.0, 0.99, 0.6]])
    [{'friction': 0.05, 'obstacles': 4, 'shape': 'cylinder'}]
    >>> space.to_unit([{"friction": 1.2, "obstacles": 0, "shape": "box"}]).round(2)
    array([[1.  , 0.1 , 0.25]])
    >>> ParameterSpace.from_dict(space.to_dict()) == space
    True
    """

    def __init__(self, dims: Iterable[Dimension]):
        if isinstance(dims, (Continuous, Integer, Categorical)):
            dims = [dims]
        dims = tuple(dims)
        if not dims:
            raise ValueError("a ParameterSpace needs at least one dimension")
        for d in dims:
            if not isinstance(d, (Continuous, Integer, Categorical)):
                raise ValueError(
                    "ParameterSpace dimensions must be Continuous, Integer or Categorical, "
                    f"got {_type_name(d)} {d!r}"
                )
        names = [d.name for d in dims]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate parameter names in ParameterSpace: {dupes}")
        self._dims: tuple[Dimension, ...] = dims
        self._index = {d.name: i for i, d in enumerate(dims)}

    # -- container protocol ----------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        """Parameter names, in column order."""
        return [d.name for d in self._dims]

    @property
    def dims(self) -> tuple[Dimension, ...]:
        """The dimensions, in column order."""
        return self._dims

    def __len__(self) -> int:
        return len(self._dims)

    def __iter__(self) -> Iterator[Dimension]:
        return iter(self._dims)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __getitem__(self, name: str) -> Dimension:
        try:
            return self._dims[self._index[name]]
        except (KeyError, TypeError):
            raise KeyError(
                f"unknown parameter {name!r}; valid names are {self.names}"
            ) from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ParameterSpace):
            return NotImplemented
        return self._dims == other._dims

    def __hash__(self) -> int:
        return hash(self._dims)

    def __repr__(self) -> str:
        inner = ",\n".join(f"    {d!r}" for d in self._dims)
        return f"ParameterSpace([\n{inner},\n])"

    # -- values ----------------------------------------------------------------------------------

    def nominal(self) -> dict[str, Any]:
        """The nominal value of every parameter, in column order."""
        return {d.name: d.nominal for d in self._dims}

    def validate(self, params: Mapping[str, Any], fill_nominal: bool = True) -> dict[str, Any]:
        """Check a parameter dictionary and return it in canonical form.

        Parameters
        ----------
        params : mapping
            Parameter name -> value.  Values may be numpy scalars.
        fill_nominal : bool, default True
            Give omitted parameters their nominal value.  If False, only the
            parameters present in ``params`` are returned.

        Returns
        -------
        dict
            Parameters in column order, with Python ``float`` / ``int`` / ``str`` values.

        Raises
        ------
        ValueError
            For an unknown name (the message lists the valid names) or an
            invalid value (the message names the parameter and its range).
        """
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise ValueError(
                f"params must be a mapping of parameter name to value, got {_type_name(params)}"
            )
        unknown = [k for k in params if k not in self._index]
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {unknown}; valid names are {self.names}"
            )
        out: dict[str, Any] = {}
        for d in self._dims:
            if d.name in params:
                out[d.name] = d.validate(params[d.name])
            elif fill_nominal:
                out[d.name] = d.nominal
        return out

    # -- unit cube -------------------------------------------------------------------------------

    def from_unit(self, U: Any) -> list[dict[str, Any]]:
        """Map points of the unit cube to parameter dictionaries.

        Parameters
        ----------
        U : array_like, shape (n, d) or (d,)
            Coordinates in ``[0, 1]``, columns in the order of :attr:`names`.

        Returns
        -------
        list of dict
            One canonical parameter dictionary per row.
        """
        U = np.asarray(U, dtype=float)
        if U.ndim == 1:
            U = U[None, :]
        if U.ndim != 2 or U.shape[1] != len(self):
            raise ValueError(
                f"unit-cube points must have shape (n, {len(self)}), got {np.shape(U)}"
            )
        cols = []
        for j, d in enumerate(self._dims):
            v = d.from_unit(U[:, j])
            cols.append(v.tolist())  # numpy -> Python float / int / str
        names = self.names
        return [dict(zip(names, row)) for row in zip(*cols)] if U.shape[0] else []

    def to_unit(self, rows: Any) -> np.ndarray:
        """Map parameter points to unit-cube coordinates.

        Parameters
        ----------
        rows : list of dict or pandas.DataFrame
            Parameter points.  Dict rows are validated with nominal fill; a
            DataFrame must hold a column per parameter (other columns are
            ignored).

        Returns
        -------
        ndarray, shape (n, d)
            Continuous values map linearly (or log-linearly); integers and
            categories map to the centre of their bin.
        """
        if isinstance(rows, pd.DataFrame):
            missing = [n for n in self.names if n not in rows.columns]
            if missing:
                raise ValueError(f"DataFrame is missing parameter column(s) {missing}")
            cols = []
            for d in self._dims:
                col = rows[d.name]
                if isinstance(d, Categorical):
                    vals = col.astype(object).to_numpy()
                else:
                    if col.dtype == bool or not pd.api.types.is_numeric_dtype(col.dtype):
                        raise ValueError(
                            f"parameter {d.name!r}: column must be numeric, "
                            f"expected {d.describe()}; got dtype {col.dtype}"
                        )
                    vals = col.to_numpy(dtype=float, na_value=np.nan)
                cols.append(d.to_unit(vals))
            return np.column_stack(cols) if cols else np.empty((len(rows), 0))
        cols = self._columns(rows, "to_unit")
        out = np.empty((len(cols[0]), len(self)))
        for j, (d, col) in enumerate(zip(self._dims, cols)):
            out[:, j] = d.to_unit(col)
        return out

    def to_frame(self, rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
        """Tabulate parameter dictionaries (validated, nominal-filled).

        Returns
        -------
        pandas.DataFrame
            A column per parameter: ``float64`` for continuous, ``int64`` for
            integer and :class:`pandas.Categorical` with the declared categories
            for categorical parameters.
        """
        cols = self._columns(rows, "to_frame")
        data = {}
        for d, col in zip(self._dims, cols):
            if isinstance(d, Continuous):
                data[d.name] = pd.Series(col, dtype="float64")
            elif isinstance(d, Integer):
                data[d.name] = pd.Series(col, dtype="int64")
            else:
                data[d.name] = pd.Series(pd.Categorical(col, categories=list(d.choices)))
        return pd.DataFrame(data, columns=self.names)

    def _columns(self, rows: Any, caller: str) -> list[np.ndarray]:
        """Validated, nominal-filled columns of a list of parameter dicts."""
        if isinstance(rows, (Mapping, str, bytes)):
            raise ValueError(f"{caller} expects a list of parameter dicts")
        rows = list(rows)
        for r in rows:
            if not isinstance(r, Mapping):
                raise ValueError(
                    f"{caller} expects parameter dicts, got {_type_name(r)} {r!r}"
                )
            if any(k not in self._index for k in r):
                self.validate(r)  # raises the unknown-name error
        return [
            d.validate_many([r.get(d.name, d.nominal) for r in rows]) for d in self._dims
        ]

    # -- serialisation ---------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """JSON-serialisable description, inverse of :meth:`from_dict`."""
        return {"dimensions": [d.to_dict() for d in self._dims]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ParameterSpace:
        """Rebuild a space from :meth:`to_dict` output."""
        if not isinstance(data, Mapping) or "dimensions" not in data:
            raise ValueError("expected a mapping with a 'dimensions' list")
        dims = []
        for item in data["dimensions"]:
            if not isinstance(item, Mapping):
                raise ValueError(f"each dimension must be a mapping, got {item!r}")
            item = dict(item)
            kind = item.pop("kind", None)
            if kind not in _KINDS:
                raise ValueError(
                    f"unknown dimension kind {kind!r}; expected one of {sorted(_KINDS)}"
                )
            try:
                dims.append(_KINDS[kind](**item))
            except TypeError as exc:
                raise ValueError(f"bad {kind} dimension {item!r}: {exc}") from None
        return cls(dims)
