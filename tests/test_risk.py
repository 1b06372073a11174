"""Tests of the risk models (robogate.analysis.risk): the scikit-learn contract, JSON round trips,
term selection, and the closed-form boundary against analytic data with a known boundary."""

import functools
import json
import re

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq
from scipy.special import expit
from sklearn.metrics import roc_auc_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from robogate.analysis.risk import FlexibleRiskModel, RiskModel
from robogate.envs.scene import default_space
from robogate.scenarios.space import Categorical, Continuous, ParameterSpace


@pytest.mark.slow
@parametrize_with_checks([RiskModel(Cs=4, cv=3)])  # the contract, not the search, is under test
def test_risk_model_is_a_scikit_learn_classifier(estimator, check):
    check(estimator)


@pytest.mark.slow
@parametrize_with_checks([FlexibleRiskModel(max_iter=20)])  # the contract, not the fit, is under test
def test_flexible_risk_model_is_a_scikit_learn_classifier(estimator, check):
    check(estimator)


# ---------------------------------------------------------------------------------------------
# analytic data with a known closed-form boundary
# ---------------------------------------------------------------------------------------------

SPACE = ParameterSpace(
    [
        Continuous("friction", 0.05, 1.2, log=True, nominal=0.8),
        Continuous("mass", 0.05, 2.0, log=True, nominal=0.2),
        Continuous("size", 0.02, 0.12, nominal=0.05),
        Categorical("shape", ["box", "cylinder", "sphere"]),
    ]
)
SHAPE_OFFSET = {"box": 0.0, "cylinder": 0.3, "sphere": 0.8}
STEEPNESS = 4.0


def sample(n, seed):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "friction": np.exp(rng.uniform(np.log(0.05), np.log(1.2), n)),
            "mass": np.exp(rng.uniform(np.log(0.05), np.log(2.0), n)),
            "size": rng.uniform(0.02, 0.12, n),
            "shape": rng.choice(list(SHAPE_OFFSET), n),
        }
    )


def _rest(X):
    return 8.0 * (X["size"] - 0.05) + X["shape"].map(SHAPE_OFFSET).to_numpy(dtype=float)


class Linear:
    """logit P(failure) linear in log friction, with a log friction x log mass interaction.

    Boundary (box, size 0.05): log f* = (-1.2 + 0.6 log m) / (0.9 - 0.3 log m).
    """

    @staticmethod
    def logit(X):
        lf, lm = np.log(X["friction"]), np.log(X["mass"])
        return STEEPNESS * (-1.2 - 0.9 * lf + 0.6 * lm + 0.3 * lf * lm + _rest(X))

    @staticmethod
    def boundary(mass):
        lm = np.log(mass)
        return np.exp((-1.2 + 0.6 * lm) / (0.9 - 0.3 * lm))[:, None]


class Quadratic:
    """logit P(failure) quadratic in log friction: failure at too little and too much grip.

    Boundary (box, size 0.05): log f* = -1.4 -/+ sqrt((1 - 0.5 log m) / 0.8).
    """

    @staticmethod
    def logit(X):
        lf, lm = np.log(X["friction"]), np.log(X["mass"])
        return STEEPNESS * (0.8 * (lf + 1.4) ** 2 - 1.0 + 0.5 * lm + _rest(X))

    @staticmethod
    def boundary(mass):
        root = np.sqrt((1.0 - 0.5 * np.log(mass)) / 0.8)
        return np.exp(np.column_stack([-1.4 - root, -1.4 + root]))


@functools.lru_cache(maxsize=None)
def fitted(truth, seed, n=2500):
    """A RiskModel fitted on noisy rows of ``truth`` (cached; tests only read it)."""
    X = sample(n, seed)
    y = np.random.default_rng(seed + 1).random(n) < expit(truth.logit(X))  # True = failure
    return RiskModel(space=SPACE, random_state=seed).fit(X, y)


def on_true_boundary(truth, masses):
    """Points on the true boundary (the rest at nominal), one per mass and root."""
    f = truth.boundary(masses)
    rows = [{"friction": fi, "mass": m, "size": 0.05, "shape": "box"} for m, fr in zip(masses, f) for fi in fr]
    return pd.DataFrame(rows)


MASSES = np.geomspace(0.2, 1.5, 9)
SEEDS = [0, 1, 2, 3, 4]


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("truth", [Linear, Quadratic], ids=["linear", "quadratic"])
def test_probability_on_the_true_boundary_is_near_one_half(truth, seed):
    model = fitted(truth, seed)
    p = model.predict_proba(on_true_boundary(truth, MASSES))[:, 1]
    # 2,500 noisy rows: over 20 seeds the mean sat within 0.03 +- 0.035 of 0.5 (at most 0.094
    # off: the L2 penalty shrinks the shape levels a little), no point beyond 0.12
    assert abs(p.mean() - 0.5) < 0.12, p.round(2)
    assert np.all(np.abs(p - 0.5) < 0.2), p.round(2)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("truth", [Linear, Quadratic], ids=["linear", "quadratic"])
def test_boundary_curve_recovers_the_true_boundary(truth, seed):
    """Within 0.2 in log friction (22 % of the friction value) at every mass (20 seeds: at most 0.12)."""
    model = fitted(truth, seed)
    found = model.boundary_curve("friction", "mass", MASSES)
    true = truth.boundary(MASSES)
    assert found.shape == true.shape
    err = np.abs(np.log(found) - np.log(true))
    assert np.all(err < 0.2), err.round(3)


@pytest.mark.parametrize("seed", SEEDS)
def test_model_terms_follow_the_truth(seed):
    assert "friction:mass" in fitted(Linear, seed).coefficients_.index
    quad = fitted(Quadratic, seed).coefficients_.index
    assert "friction^2" in quad and "friction:mass" not in quad


def _linear_equation(text):
    """(a, b, c, d) of "z_friction* = (a + b*z_mass) / (c + d*z_mass)"."""
    num = r"(-?[\d.]+(?:e[-+]?\d+)?)"
    m = re.match(rf"z_friction\* = \({num} ([+-]) {num}\*z_mass\) / \({num} ([+-]) {num}\*z_mass\)", text)
    assert m, text
    a, sb, b, c, sd, d = m.groups()
    return float(a), float(sb + b), float(c), float(sd + d)


def test_boundary_equation_is_robogates_form_in_stated_units():
    model = fitted(Linear, 0)
    text = model.boundary_equation("friction", "mass")
    a, b, c, d = _linear_equation(text)
    f, m = model.features_[0], model.features_[1]
    assert f"z_friction = (log(friction) {'-' if f['mean'] > 0 else '+'} {abs(f['mean']):.4g}) / {f['scale']:.4g}" in text
    assert "z_mass = (log(mass)" in text and "size=0.05, shape=box" in text
    # the printed equation and the numeric curve agree (4 significant digits printed)
    zm = (np.log(MASSES) - m["mean"]) / m["scale"]
    zf = (a + b * zm) / (c + d * zm)
    curve = model.boundary_curve("friction", "mass", MASSES)[:, 0]
    np.testing.assert_allclose(np.exp(zf * f["scale"] + f["mean"]), curve, rtol=2e-3)


def test_quadratic_equation_names_its_coefficients():
    text = fitted(Quadratic, 0).boundary_equation("friction", "mass")
    assert text.startswith("z_friction* = (-B ± sqrt(B^2 - 4*A*C)) / (2*A) with A = ")
    assert "where z_friction = (log(friction)" in text


@pytest.mark.parametrize("truth", [Linear, Quadratic], ids=["linear", "quadratic"])
def test_boundary_curve_solves_the_fitted_model(truth):
    """At each x* the model itself predicts P(failure) = 0.5 (the algebra, nominal values included)."""
    model = fitted(truth, 3)
    curve = model.boundary_curve("friction", "mass", MASSES)
    for mass, roots in zip(MASSES, curve):
        for f in roots[np.isfinite(roots)]:
            row = pd.DataFrame([{"friction": f, "mass": mass, "size": 0.05, "shape": "box"}])
            assert model.predict_proba(row)[0, 1] == pytest.approx(0.5, abs=1e-9)
        # and brentq on the model finds the same root in the linear case
        if truth is Linear:
            g = lambda f: model.decision_function(  # noqa: E731
                pd.DataFrame([{"friction": f, "mass": mass, "size": 0.05, "shape": "box"}]))[0]
            assert brentq(g, 0.05, 1.2) == pytest.approx(roots[0], rel=1e-6)


def test_boundary_curve_marks_roots_outside_the_range():
    """Solved for mass: log m* = (1.2 + 0.9 log f) / (0.6 + 0.3 log f), 0.5 kg at friction
    0.3 but 8 kg (outside the 0.05-2 kg range) at friction 1.2."""
    for seed in SEEDS:
        curve = fitted(Linear, seed).boundary_curve("mass", "friction", [0.3, 1.2])
        assert curve.shape == (2, 1)
        assert 0.05 <= curve[0, 0] <= 2.0 and np.isnan(curve[1, 0])


def test_boundary_arguments_are_checked():
    model = fitted(Linear, 0)
    with pytest.raises(ValueError, match="'shape' is not a numeric parameter"):
        model.boundary_equation("shape", "mass")
    with pytest.raises(ValueError, match="different parameters"):
        model.boundary_curve("mass", "mass", [0.1])
    with pytest.raises(ValueError, match="'speed' is not a numeric parameter"):
        model.boundary_equation("friction", "speed")


def test_numeric_input_without_a_space():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(800, 3))
    y = rng.random(800) < expit(4 * (X[:, 0] - 0.5 * X[:, 1] + 0.3 * X[:, 0] * X[:, 1]))
    model = RiskModel(random_state=0).fit(X, y)
    assert list(model.coefficients_.index[:4]) == ["intercept", "x0", "x1", "x2"]
    assert "x0:x1" in model.coefficients_.index
    # boundary in the training range, the rest at the training means
    x0 = model.boundary_curve("x0", "x1", [0.0])[0, 0]
    assert x0 == pytest.approx(0.0, abs=0.25)


# ---------------------------------------------------------------------------------------------
# term selection does not overfit a few hundred rows
# ---------------------------------------------------------------------------------------------


def _default_space_rows(n, seed):
    space = default_space()
    U = np.random.default_rng(seed).random((n, len(space)))
    return space, space.to_frame(space.from_unit(U)), U


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_main_effect_truth_gets_few_second_order_terms(seed):
    """300 rows of the 8-D default space (25 encoded features, ~170 candidate terms) from a
    main-effects-only truth: at most two second-order terms survive the cross-validation."""
    space, X, U = _default_space_rows(300, seed)
    logit = 3.0 * (1.5 * U[:, 0] - 1.5 * U[:, 1] - 0.6 * U[:, 5]) + np.where(X["placement"] == "edge", 1.5, 0.0)
    y = np.random.default_rng(seed + 7).random(300) < expit(logit)
    model = RiskModel(space=space, random_state=seed).fit(X, y)
    second_order = [t for t in model.coefficients_.index if ":" in t or "^2" in t]
    assert len(second_order) <= 2, second_order
    assert model.selection_["cv_log_loss"].is_monotonic_decreasing


# ---------------------------------------------------------------------------------------------
# persistence without pickle
# ---------------------------------------------------------------------------------------------


def test_save_and_load_predict_identically(tmp_path):
    model = fitted(Quadratic, 2)
    path = tmp_path / "risk.json"
    model.save(path)
    doc = json.loads(path.read_text())  # plain JSON: encoding, terms and coefficients
    assert doc["format"] == "robogate.RiskModel" and len(doc["coef"]) == len(model.terms_)
    loaded = RiskModel.load(path)
    X = sample(500, 99)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    pd.testing.assert_series_equal(loaded.coefficients_, model.coefficients_)
    assert loaded.boundary_equation("friction", "mass") == model.boundary_equation("friction", "mass")
    assert loaded.get_params()["space"] == SPACE and loaded.C_ == model.C_


def test_json_round_trip_without_a_space_keeps_labels():
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(300, 2)), columns=["a", "b"])
    y = np.where(rng.random(300) < expit(3 * X["a"]), "fail", "ok")
    model = RiskModel(Cs=[0.1, 1.0, 10.0], random_state=3).fit(X, y)
    loaded = RiskModel.from_json(model.to_json())
    assert loaded.classes_.tolist() == ["fail", "ok"]
    assert loaded.feature_names_in_.tolist() == ["a", "b"]
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.get_params() == model.get_params()


@pytest.mark.parametrize(
    "text, pattern",
    [("not json", "not a RiskModel JSON"), ("[]", "missing format"),
     ('{"format": "robogate.RiskModel", "format_version": 99}', "format_version")],
)
def test_from_json_rejects_other_documents(text, pattern):
    with pytest.raises(ValueError, match=pattern):
        RiskModel.from_json(text)


# ---------------------------------------------------------------------------------------------
# input checks and the flexible model
# ---------------------------------------------------------------------------------------------


def test_parameter_tables_are_validated():
    X = sample(200, 0)
    y = np.arange(200) % 2 == 0
    with pytest.raises(ValueError, match=r"missing parameter column\(s\) \['size'\]"):
        RiskModel(space=SPACE).fit(X.drop(columns="size"), y)
    bad = X.copy()
    bad.loc[3, "friction"] = 5.0
    with pytest.raises(ValueError, match="'friction'.*out of range"):
        RiskModel(space=SPACE).fit(bad, y)
    bad = X.copy()
    bad.loc[0, "shape"] = "cone"
    with pytest.raises(ValueError, match="'shape'"):
        RiskModel(space=SPACE).fit(bad, y)
    with pytest.raises(ValueError, match="only 1 class"):
        RiskModel(space=SPACE).fit(X, np.ones(200, bool))
    with pytest.raises(ValueError, match="space must be a robogate ParameterSpace"):
        RiskModel(space={"friction": (0, 1)}).fit(X, y)


@pytest.mark.parametrize(
    "kwargs, pattern",
    [({"cv": 1}, "cv"), ({"n_screen": 0}, "n_screen"), ({"tol": -1.0}, "tol"), ({"Cs": [0.0, 1.0]}, "Cs"),
     ({"max_terms": 1.5}, "max_terms"), ({"squares": "yes"}, "squares"), ({"n_se": -1}, "n_se")],
)
def test_bad_settings_name_themselves(kwargs, pattern):
    X = sample(100, 0)
    with pytest.raises(ValueError, match=pattern):
        RiskModel(space=SPACE, **kwargs).fit(X, np.arange(100) % 2 == 0)


def test_flexible_model_shares_the_encoding():
    X, Xt = sample(1500, 0), sample(1000, 1)
    y = np.random.default_rng(2).random(1500) < expit(Linear.logit(X))
    yt = np.random.default_rng(3).random(1000) < expit(Linear.logit(Xt))
    flex = FlexibleRiskModel(space=SPACE, random_state=0).fit(X, y)
    logistic = RiskModel(space=SPACE, random_state=0).fit(X, y)
    assert [f["name"] for f in flex.features_] == [f["name"] for f in logistic.features_]
    auc_flex = roc_auc_score(yt, flex.predict_proba(Xt)[:, 1])
    auc_logistic = roc_auc_score(yt, logistic.predict_proba(Xt)[:, 1])
    # the truth is logistic in the encoded terms: boosting gets close, not better
    assert auc_flex > 0.8 and auc_logistic >= auc_flex - 0.01


# ---------------------------------------------------------------------------------------------
# the evaluation script, with tiny budgets
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_eval_script_runs_end_to_end_and_reuses_its_sweeps(tmp_path, capsys, monkeypatch):
    import importlib
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "scripts"))  # as when the script runs
    main = importlib.import_module("eval_risk").main
    argv = ["--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--n-lhs", "40", "--n-boundary", "20",
            "--n-test", "40", "--n-near", "6", "--repeats", "2", "--bootstrap", "20"]
    main(argv)
    first = capsys.readouterr().out
    assert "| logistic | two-stage | 60 |" in first and "| flexible | LHS-only | 60 |" in first
    assert "z_friction* = " in first and "vs LHS-only" not in first.split("Friction x mass")[1]
    out = tmp_path / "out"
    for name in ("eval_risk.md", "eval_table.csv", "reliability.png", "boundary_friction_mass.png"):
        assert (out / name).stat().st_size > 0
    RiskModel.load(out / "risk_model_two_stage.json")
    near = pd.read_parquet(tmp_path / "runs" / "near_boundary.parquet")
    assert len(near) <= 12 and near.groupby("point").size().eq(2).all()
    # a second run reuses every sweep and the repeated-seed episodes: the same table
    main(argv)
    assert capsys.readouterr().out == first
