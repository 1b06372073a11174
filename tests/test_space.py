"""Tests of the operational parameter space (robogate.scenarios.space)."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from robogate.envs.scene import PLACEMENTS, SHAPES, default_space
from robogate.scenarios.space import Categorical, Continuous, Integer, ParameterSpace


@pytest.fixture
def space():
    return ParameterSpace(
        [
            Continuous("friction", 0.05, 1.2, log=True),
            Continuous("size", 0.02, 0.12),
            Integer("obstacles", 0, 4),
            Categorical("shape", ["box", "cylinder", "sphere"]),
        ]
    )


# ---------------------------------------------------------------------------------------------
# dimensions
# ---------------------------------------------------------------------------------------------


def test_dimensions_are_frozen_and_hashable():
    c = Continuous("x", 0.0, 1.0)
    with pytest.raises(AttributeError):
        c.low = 3.0
    cat = Categorical("shape", ["a", "b"])
    assert cat.choices == ("a", "b") and isinstance(cat.choices, tuple)
    assert len({c, Continuous("x", 0.0, 1.0), cat}) == 2


def test_nominal_defaults():
    assert Continuous("x", 0.0, 4.0).nominal == 2.0
    assert Continuous("x", 0.01, 100.0, log=True).nominal == pytest.approx(1.0)
    assert Integer("k", 2, 7).nominal == 2
    assert Categorical("c", ["q", "r"]).nominal == "q"
    assert Continuous("x", 0.0, 4.0, nominal=1).nominal == 1.0
    assert isinstance(Continuous("x", 0.0, 4.0, nominal=1).nominal, float)


def test_continuous_linear_round_trip():
    d = Continuous("x", -2.0, 6.0)
    u = np.linspace(0, 1, 101)
    x = d.from_unit(u)
    assert x[0] == -2.0 and x[-1] == 6.0
    np.testing.assert_allclose(x, -2.0 + 8.0 * u)
    np.testing.assert_allclose(d.to_unit(x), u, atol=1e-12)


def test_continuous_log_scaling():
    d = Continuous("friction", 0.05, 1.2, log=True)
    assert d.from_unit(0.0) == 0.05 and d.from_unit(1.0) == 1.2
    # the unit midpoint is the geometric mean; equal unit steps are equal ratios
    assert d.from_unit(0.5) == pytest.approx(math.sqrt(0.05 * 1.2))
    x = d.from_unit(np.array([0.1, 0.2, 0.3]))
    assert x[1] / x[0] == pytest.approx(x[2] / x[1])
    u = np.random.default_rng(0).random(50)
    np.testing.assert_allclose(d.to_unit(d.from_unit(u)), u, atol=1e-12)
    assert d.to_unit([0.05, 1.2]).tolist() == [0.0, 1.0]


def test_integer_binning():
    d = Integer("obstacles", 0, 4)
    # value k occupies [k/5, (k+1)/5)
    assert d.from_unit([0.0, 0.199, 0.2, 0.5, 0.79, 0.8, 0.9999, 1.0]).tolist() == [
        0, 0, 1, 2, 3, 4, 4, 4,
    ]
    np.testing.assert_allclose(d.to_unit([0, 1, 2, 3, 4]), [0.1, 0.3, 0.5, 0.7, 0.9])
    assert d.from_unit(d.to_unit(np.arange(5))).tolist() == [0, 1, 2, 3, 4]
    # equal bins: uniform unit draws give roughly uniform values
    counts = np.bincount(d.from_unit(np.random.default_rng(1).random(50_000)), minlength=5)
    assert counts.min() > 9_500 and counts.max() < 10_500


def test_categorical_binning():
    d = Categorical("shape", ["box", "cylinder", "sphere", "capsule"])
    assert d.from_unit([0.0, 0.24, 0.25, 0.6, 1.0]).tolist() == [
        "box", "box", "cylinder", "sphere", "capsule",
    ]
    np.testing.assert_allclose(d.to_unit(["box", "capsule"]), [0.125, 0.875])
    assert d.from_unit(d.to_unit(list(d.choices))).tolist() == list(d.choices)


def test_from_unit_rejects_points_outside_the_cube():
    with pytest.raises(ValueError, match="'x'"):
        Continuous("x", 0.0, 1.0).from_unit([1.5])
    with pytest.raises(ValueError, match="'k'"):
        Integer("k", 0, 3).from_unit([np.nan])


# ---------------------------------------------------------------------------------------------
# value validation
# ---------------------------------------------------------------------------------------------


def test_validate_returns_canonical_python_types():
    assert Continuous("x", 0.0, 1.0).validate(np.float32(0.5)) == 0.5
    assert type(Continuous("x", 0.0, 1.0).validate(1)) is float
    assert Integer("k", 0, 4).validate(2.0) == 2
    assert type(Integer("k", 0, 4).validate(np.int64(3))) is int
    assert type(Integer("k", 0, 4).validate(2.0)) is int
    assert type(Categorical("c", ["a", "b"]).validate(np.str_("b"))) is str


@pytest.mark.parametrize(
    "dim, value, pattern",
    [
        (Continuous("friction", 0.05, 1.2, log=True), 5.0, r"'friction'.*out of range.*0\.05, 1\.2"),
        (Continuous("friction", 0.05, 1.2, log=True), 0.0, r"'friction'.*0\.05, 1\.2"),
        (Continuous("friction", 0.05, 1.2), float("nan"), r"'friction'.*0\.05, 1\.2"),
        (Continuous("friction", 0.05, 1.2), float("inf"), r"'friction'"),
        (Continuous("friction", 0.05, 1.2), "0.5", r"'friction'.*str"),
        (Continuous("friction", 0.05, 1.2), None, r"'friction'"),
        (Continuous("friction", 0.05, 1.2), True, r"'friction'.*bool"),
        (Integer("obstacles", 0, 4), 1.5, r"'obstacles'.*integer in \[0, 4\]"),
        (Integer("obstacles", 0, 4), 5, r"'obstacles'.*out of range.*\[0, 4\]"),
        (Integer("obstacles", 0, 4), -1, r"'obstacles'"),
        (Integer("obstacles", 0, 4), np.nan, r"'obstacles'"),
        (Integer("obstacles", 0, 4), "2", r"'obstacles'.*str"),
        (Integer("obstacles", 0, 4), False, r"'obstacles'.*bool"),
        (Categorical("shape", ["box", "sphere"]), "cone", r"'shape'.*unknown.*'box', 'sphere'"),
        (Categorical("shape", ["box", "sphere"]), 0, r"'shape'.*'box', 'sphere'"),
        (Categorical("shape", ["box", "sphere"]), None, r"'shape'"),
    ],
)
def test_validate_rejects_bad_values(dim, value, pattern):
    with pytest.raises(ValueError, match=pattern):
        dim.validate(value)


def test_vectorised_to_unit_validates():
    with pytest.raises(ValueError, match="'x'.*out of range"):
        Continuous("x", 0.0, 1.0).to_unit([0.5, 1.5])
    with pytest.raises(ValueError, match="'x'"):
        Continuous("x", 0.0, 1.0).to_unit(["0.5"])
    with pytest.raises(ValueError, match="'k'"):
        Integer("k", 0, 4).to_unit([1.5])
    with pytest.raises(ValueError, match="'c'.*unknown"):
        Categorical("c", ["a", "b"]).to_unit(["a", "z"])


# ---------------------------------------------------------------------------------------------
# bad dimension / space definitions
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, pattern",
    [
        (lambda: Continuous("mass", 2.0, 1.0), r"'mass'.*low must be < high"),
        (lambda: Continuous("mass", 1.0, 1.0), r"'mass'.*low must be < high"),
        (lambda: Continuous("mass", 0.0, 1.0, log=True), r"'mass'.*log.*positive"),
        (lambda: Continuous("mass", -1.0, 1.0, log=True), r"'mass'.*log.*positive"),
        (lambda: Continuous("mass", 0.0, float("inf")), r"'mass'.*finite"),
        (lambda: Continuous("mass", float("nan"), 1.0), r"'mass'.*finite"),
        (lambda: Continuous("mass", 0.0, 1.0, nominal=2.0), r"'mass'.*nominal.*out of range"),
        (lambda: Continuous("", 0.0, 1.0), r"non-empty"),
        (lambda: Integer("obstacles", 4, 0), r"'obstacles'.*low must be < high"),
        (lambda: Integer("obstacles", 0, 4.5), r"'obstacles'.*integer"),
        (lambda: Integer("obstacles", 0, 4, nominal=7), r"'obstacles'.*nominal"),
        (lambda: Categorical("shape", []), r"'shape'.*empty"),
        (lambda: Categorical("shape", ["box", "box"]), r"'shape'.*duplicate.*box"),
        (lambda: Categorical("shape", "box"), r"'shape'.*sequence of strings"),
        (lambda: Categorical("shape", ["box", 3]), r"'shape'.*string"),
        (lambda: Categorical("shape", ["box"], nominal="cone"), r"'shape'.*nominal"),
    ],
)
def test_bad_dimensions(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


def test_bad_spaces():
    with pytest.raises(ValueError, match="at least one dimension"):
        ParameterSpace([])
    with pytest.raises(ValueError, match="duplicate parameter names.*'x'"):
        ParameterSpace([Continuous("x", 0, 1), Integer("x", 0, 3)])
    with pytest.raises(ValueError, match="Continuous, Integer or Categorical"):
        ParameterSpace([Continuous("x", 0, 1), ("y", 0, 1)])


# ---------------------------------------------------------------------------------------------
# the space
# ---------------------------------------------------------------------------------------------


def test_container_protocol(space):
    assert space.names == ["friction", "size", "obstacles", "shape"]
    assert len(space) == 4
    assert [d.name for d in space] == space.names
    assert space["obstacles"] == Integer("obstacles", 0, 4)
    assert "shape" in space and "colour" not in space
    with pytest.raises(KeyError, match="colour"):
        space["colour"]
    assert "ParameterSpace" in repr(space) and "friction" in repr(space)


def test_nominal_fill_and_canonical_types(space):
    out = space.validate({"obstacles": np.int64(3), "size": 0.1})
    assert out == {
        "friction": pytest.approx(math.sqrt(0.05 * 1.2)),
        "size": 0.1,
        "obstacles": 3,
        "shape": "box",
    }
    assert list(out) == space.names  # column order, not input order
    assert type(out["obstacles"]) is int
    assert space.validate({}) == space.nominal()
    assert space.validate({"size": 0.1}, fill_nominal=False) == {"size": 0.1}


def test_space_validate_errors(space):
    with pytest.raises(ValueError, match=r"unknown parameter.*'frction'.*valid names.*friction"):
        space.validate({"frction": 0.5})
    with pytest.raises(ValueError, match=r"'size'.*out of range"):
        space.validate({"size": 0.5})
    with pytest.raises(ValueError, match="mapping"):
        space.validate([("size", 0.05)])


def test_space_unit_round_trip(space):
    U = np.random.default_rng(3).random((200, len(space)))
    rows = space.from_unit(U)
    assert len(rows) == 200 and list(rows[0]) == space.names
    assert all(type(r["friction"]) is float and type(r["obstacles"]) is int for r in rows)
    assert all(type(r["shape"]) is str for r in rows)
    back = space.to_unit(rows)
    np.testing.assert_allclose(back[:, :2], U[:, :2], atol=1e-12)
    # discrete columns come back as the centre of their bin
    np.testing.assert_allclose(back[:, 2], (np.floor(U[:, 2] * 5) + 0.5) / 5)
    np.testing.assert_allclose(back[:, 3], (np.floor(U[:, 3] * 3) + 0.5) / 3)
    # and mapping those again gives the same physical points
    again = space.from_unit(back)
    assert [(r["obstacles"], r["shape"]) for r in again] == [
        (r["obstacles"], r["shape"]) for r in rows
    ]
    np.testing.assert_allclose(
        [[r["friction"], r["size"]] for r in again], [[r["friction"], r["size"]] for r in rows]
    )
    # a DataFrame works the same way, extra columns ignored
    df = space.to_frame(rows)
    df["success"] = True
    np.testing.assert_allclose(space.to_unit(df), back)


def test_space_shape_errors(space):
    with pytest.raises(ValueError, match=r"shape \(n, 4\)"):
        space.from_unit(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="missing parameter column"):
        space.to_unit(pd.DataFrame({"friction": [0.1]}))
    assert space.from_unit(np.zeros((0, 4))) == []
    assert space.to_unit([]).shape == (0, 4)


def test_to_frame_dtypes(space):
    df = space.to_frame([{"friction": 0.1, "shape": "sphere"}, {"obstacles": 2}])
    assert list(df.columns) == space.names
    assert df["friction"].dtype == np.float64 and df["size"].dtype == np.float64
    assert df["obstacles"].dtype == np.int64
    assert isinstance(df["shape"].dtype, pd.CategoricalDtype)
    assert list(df["shape"].cat.categories) == ["box", "cylinder", "sphere"]
    assert df["shape"].tolist() == ["sphere", "box"]
    assert len(space.to_frame([])) == 0
    with pytest.raises(ValueError, match="'shape'"):
        space.to_frame([{"shape": "cone"}])


def test_dict_round_trip_is_json(space):
    d = space.to_dict()
    text = json.dumps(d)
    again = ParameterSpace.from_dict(json.loads(text))
    assert again == space
    assert again.nominal() == space.nominal()
    assert ParameterSpace.from_dict(default_space().to_dict()) == default_space()
    with pytest.raises(ValueError, match="kind"):
        ParameterSpace.from_dict({"dimensions": [{"kind": "quantum", "name": "q"}]})
    with pytest.raises(ValueError, match="'x'.*low must be < high"):
        ParameterSpace.from_dict(
            {"dimensions": [{"kind": "continuous", "name": "x", "low": 1, "high": 0}]}
        )


def test_default_space():
    sp = default_space()
    assert sp.names == [
        "friction", "mass", "com_offset", "size", "ik_noise", "obstacles", "shape", "placement",
    ]
    assert sp["friction"] == Continuous("friction", 0.05, 1.2, log=True, nominal=0.8)
    assert sp["mass"] == Continuous("mass", 0.05, 2.0, log=True, nominal=0.2)
    assert sp["com_offset"] == Continuous("com_offset", 0.0, 0.4, nominal=0.0)
    assert sp["size"] == Continuous("size", 0.02, 0.12, nominal=0.05)
    assert sp["ik_noise"] == Continuous("ik_noise", 0.0, 0.04, nominal=0.0)
    assert sp["obstacles"] == Integer("obstacles", 0, 4, nominal=0)
    assert sp["shape"].choices == tuple(SHAPES)
    assert sp["placement"].choices == tuple(PLACEMENTS)
    assert sp.nominal() == {
        "friction": 0.8, "mass": 0.2, "com_offset": 0.0, "size": 0.05, "ik_noise": 0.0,
        "obstacles": 0, "shape": "box", "placement": "center",
    }
