"""Tests of the two-stage boundary-focused sampler (robogate.sampling).

The statistical checks use analytic test functions whose failure boundary is
known exactly.  For a deterministic boundary the "true" success probability is
defined as a logistic of the signed distance to the boundary (in unit-cube
coordinates) with a small width, so "inside the 30-70 % band" means "within a
thin shell around the boundary".  Every statistical claim is checked over
several seeds.
"""

import functools
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, PolynomialFeatures, StandardScaler

from robogate.sampling import TwoStageSampler
from robogate.space import Categorical, Continuous, Integer, ParameterSpace

# ---------------------------------------------------------------------------------------------
# analytic test functions with a known boundary
# ---------------------------------------------------------------------------------------------


class Problem:
    """``dist(U)``: signed distance to the boundary in the unit cube (> 0 on the success side)."""

    space: ParameterSpace
    width = 0.03  # logistic width of the "true" P(success)
    noisy = False

    def true_p(self, U):
        return expit(self.dist(U) / self.width)

    def evaluator(self, seed=0):
        if not self.noisy:
            return lambda p: bool(self.dist(self.space.to_unit([p]))[0] > 0)
        rng = np.random.default_rng(seed)
        return lambda p: bool(rng.random() < self.true_p(self.space.to_unit([p]))[0])


class Linear2D(Problem):
    """A straight boundary in 2-D (one axis on a non-unit range)."""

    space = ParameterSpace([Continuous("x", 0.0, 1.0), Continuous("y", -1.0, 1.0)])

    def dist(self, U):
        return (0.8 - U[:, 0] - 0.5 * U[:, 1]) / math.sqrt(1.25)


class Sphere3D(Problem):
    """Success inside a ball in 3-D; one axis log-scaled."""

    space = ParameterSpace(
        [
            Continuous("a", 0.1, 10.0, log=True),
            Continuous("b", 0.0, 1.0),
            Continuous("c", 0.0, 2.0),
        ]
    )

    def dist(self, U):
        return 0.4 - np.linalg.norm(U - np.array([0.45, 0.5, 0.55]), axis=1)


class Mixed(Problem):
    """A threshold on x that moves with an Integer and a Categorical parameter."""

    space = ParameterSpace(
        [
            Continuous("x", 0.0, 1.0),
            Continuous("z", 0.0, 1.0),
            Integer("k", 0, 3),
            Categorical("shape", ["box", "sphere", "plate"]),
        ]
    )
    threshold = np.array([0.75, 0.55, 0.35])  # per shape

    def dist(self, U):
        k = np.floor(U[:, 2] * 4)
        shape = np.minimum(np.floor(U[:, 3] * 3), 2).astype(int)
        return self.threshold[shape] - 0.08 * k - U[:, 0] - 0.2 * (U[:, 1] - 0.5)


class NoisySphere(Problem):
    """Label noise: evaluate returns a Bernoulli draw with a smooth, known P(success)."""

    space = ParameterSpace(
        [Continuous("x", 0.0, 1.0), Continuous("y", 0.0, 1.0), Continuous("z", 0.0, 1.0)]
    )
    noisy = True

    def dist(self, U):
        return 0.35 - np.linalg.norm(U - 0.5, axis=1)


PROBLEMS = {"linear2d": Linear2D(), "sphere3d": Sphere3D(), "mixed": Mixed(), "noisy": NoisySphere()}
BUDGET = {"linear2d": (150, 150), "sphere3d": (300, 300), "mixed": (300, 300), "noisy": (300, 300)}


@functools.lru_cache(maxsize=None)
def two_stage(name, seed):
    """One two-stage sweep of a problem (cached: several tests look at the same sweep)."""
    prob = PROBLEMS[name]
    n_lhs, n_boundary = BUDGET[name]
    sampler = TwoStageSampler(
        prob.space, n_lhs=n_lhs, n_boundary=n_boundary, batch_size=n_boundary // 5,
        n_candidates=5000, seed=seed,
    )
    df = sampler.run(prob.evaluator(seed))
    return df


def lhs_only(name, seed):
    """Latin Hypercube data of the same total budget."""
    prob = PROBLEMS[name]
    n = sum(BUDGET[name])
    sampler = TwoStageSampler(prob.space, n_lhs=n, n_boundary=0, seed=seed)
    return sampler.run(prob.evaluator(seed + 1000))


def fit_logistic(space, df):
    """Logistic regression with pairwise interactions (one-hot categoricals)."""
    X = space.to_unit(df)
    cats = [j for j, d in enumerate(space) if isinstance(d, Categorical)]
    for j in cats:
        X[:, j] = np.floor(X[:, j] * space.dims[j].n_values)
    num = [j for j in range(len(space)) if j not in cats]
    parts = [("num", "passthrough", num)]
    if cats:
        parts.append(("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), cats))
    model = make_pipeline(
        ColumnTransformer(parts), PolynomialFeatures(2, include_bias=False),
        StandardScaler(), LogisticRegression(max_iter=5000),
    )
    model.fit(X, df["success"].to_numpy())
    return lambda U: model.predict_proba(_codes(space, U, cats))[:, 1]


def _codes(space, U, cats):
    X = U.copy()
    for j in cats:
        X[:, j] = np.minimum(np.floor(X[:, j] * space.dims[j].n_values), space.dims[j].n_values - 1)
    return X


@functools.lru_cache(maxsize=None)
def held_out_near_boundary(name, n=3000):
    """Uniform held-out points whose true P(success) lies in (0.1, 0.9)."""
    prob = PROBLEMS[name]
    U = np.random.default_rng(2024).random((40 * n, len(prob.space)))
    for j, dim in enumerate(prob.space):  # discrete coordinates to their bin centres
        U[:, j] = dim.to_unit(dim.from_unit(U[:, j]))
    p = prob.true_p(U)
    keep = (p > 0.1) & (p < 0.9)
    return U[keep][:n], p[keep][:n]


def near_boundary_auc(name, predict):
    """AUC on held-out points whose true P(success) lies in (0.1, 0.9).

    Deterministic problems: labels are the true outcomes.  The noisy problem:
    the expected AUC over the Bernoulli labels (each point counts as a success
    with weight p and as a failure with weight 1 - p), which has no label noise.
    """
    U, p = held_out_near_boundary(name)
    score = predict(U)
    if PROBLEMS[name].noisy:
        y = np.r_[np.ones(len(p)), np.zeros(len(p))]
        return roc_auc_score(y, np.r_[score, score], sample_weight=np.r_[p, 1 - p])
    return roc_auc_score(p > 0.5, score)


def in_band_fraction(prob, df, stage, band=(0.3, 0.7)):
    sub = df[df["stage"] == stage]
    p = prob.true_p(prob.space.to_unit(sub))
    return float(np.mean((p >= band[0]) & (p <= band[1])))


# ---------------------------------------------------------------------------------------------
# (a) stage 2 concentrates on the boundary
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", list(PROBLEMS))
def test_stage2_samples_lie_in_the_band(name, seed):
    prob = PROBLEMS[name]
    df = two_stage(name, seed)
    assert (df["stage"] == 2).sum() == BUDGET[name][1]
    frac2 = in_band_fraction(prob, df, stage=2)
    frac1 = in_band_fraction(prob, df, stage=1)
    assert frac2 >= 0.6, f"{name} seed {seed}: only {frac2:.1%} of stage-2 points in the band"
    assert frac2 > 3 * frac1, f"{name} seed {seed}: stage 2 {frac2:.1%} vs LHS {frac1:.1%}"


def test_stage2_batches_are_spread_out():
    """A batch covers the boundary rather than clustering around one point."""
    df = two_stage("sphere3d", 0)
    U = PROBLEMS["sphere3d"].space.to_unit(df[df["stage"] == 2])[:60]  # the first batch
    d = np.linalg.norm(U[:, None, :] - U[None, :, :], axis=-1)
    np.fill_diagonal(d, np.inf)
    assert d.min(axis=1).mean() > 0.08
    # and it reaches all around the sphere: every octant about the centre is visited
    octant = ((U - np.array([0.45, 0.5, 0.55])) > 0) @ np.array([1, 2, 4])
    assert len(np.unique(octant)) == 8


# ---------------------------------------------------------------------------------------------
# (b) boundary-focused data gives a better risk model near the boundary
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sphere3d", "mixed", "noisy"])
def test_two_stage_beats_lhs_near_boundary(name):
    prob = PROBLEMS[name]
    seeds = range(5)
    auc2 = [near_boundary_auc(name, fit_logistic(prob.space, two_stage(name, s))) for s in seeds]
    auc1 = [near_boundary_auc(name, fit_logistic(prob.space, lhs_only(name, s))) for s in seeds]
    wins = sum(a > b for a, b in zip(auc2, auc1))
    msg = f"{name}: two-stage AUC {np.round(auc2, 4)} vs LHS-only {np.round(auc1, 4)}"
    assert np.mean(auc2) > np.mean(auc1), msg
    assert wins >= 4, msg


# ---------------------------------------------------------------------------------------------
# Stage 1
# ---------------------------------------------------------------------------------------------


def test_stage1_is_a_latin_hypercube():
    space = ParameterSpace([Continuous("x", 0.0, 1.0), Continuous("y", 1.0, 100.0, log=True)])
    s = TwoStageSampler(space, n_lhs=50, n_boundary=0, seed=3)
    U = s.lhs_unit
    for j in range(2):  # exactly one point per 1/50 stratum in every column
        assert sorted(np.floor(U[:, j] * 50).astype(int)) == list(range(50))
    pts = s.ask()
    np.testing.assert_allclose(space.to_unit(pts), U, atol=1e-12)
    # a real space-filling design: lower discrepancy than i.i.d. uniform points
    from scipy.stats import qmc

    rng = np.random.default_rng(0)
    iid = np.mean([qmc.discrepancy(rng.random((50, 2))) for _ in range(20)])
    assert 0 < s.discrepancy < iid


def test_stage1_asks_in_order_and_never_crosses_into_stage2():
    space = Linear2D.space
    s = TwoStageSampler(space, n_lhs=10, n_boundary=6, batch_size=3, seed=0)
    ref = TwoStageSampler(space, n_lhs=10, n_boundary=6, batch_size=3, seed=0).ask()
    assert s.stage == 1
    a, b = s.ask(4), s.ask(100)
    assert a + b == ref and len(b) == 6
    assert s.stage == 2 and s.n_pending == 10 and not s.done
    with pytest.raises(RuntimeError, match="not been told"):
        s.ask()
    s.tell(b, [True] * 6)
    with pytest.raises(RuntimeError, match="4 asked point"):
        s.ask()
    s.tell(a, [False] * 4)
    batch = s.ask()
    assert len(batch) == 3 and s.n_pending == 3
    s.tell(batch, [True, False, True])
    assert len(s.ask(10)) == 3  # capped at the remaining budget
    assert s.ask() == [] and s.n_pending == 3


# ---------------------------------------------------------------------------------------------
# (c) determinism, (d) ask/tell == run
# ---------------------------------------------------------------------------------------------


def _drive(sampler, evaluate, sizes):
    """Drive a sampler with a given sequence of ask sizes; return every asked batch."""
    asked = []
    sizes = iter(sizes)
    while not sampler.done:
        pts = sampler.ask(next(sizes, None))
        asked.append(pts)
        sampler.tell(pts, [evaluate(p) for p in pts])
    return asked


def test_same_seed_same_points():
    prob = PROBLEMS["mixed"]
    sizes = [7, 50, 100, 25, 43, 10, 30]
    make = lambda seed: TwoStageSampler(  # noqa: E731
        prob.space, n_lhs=200, n_boundary=90, batch_size=20, n_candidates=3000, seed=seed
    )
    a = _drive(make(5), prob.evaluator(), sizes)
    b = _drive(make(5), prob.evaluator(), sizes)
    assert a == b  # bit-identical floats, same order
    c = _drive(make(6), prob.evaluator(), sizes)
    assert a[0] != c[0]  # stage 1 differs
    assert a[-1] != c[-1]  # stage 2 differs


def test_replay_reproduces_a_sweep():
    """A fresh sampler fed the recorded outcomes asks exactly the same points (resume)."""
    prob = PROBLEMS["noisy"]
    make = lambda: TwoStageSampler(  # noqa: E731
        prob.space, n_lhs=120, n_boundary=60, batch_size=15, n_candidates=3000, seed=11
    )
    first = make()
    df = first.run(prob.evaluator(seed=3))
    outcome = {tuple(r[n] for n in prob.space.names): r["success"] for r in df.to_dict("records")}
    again = make()
    asked = _drive(again, lambda p: outcome[tuple(p.values())], [50, 70])
    pd.testing.assert_frame_equal(again.history, first.history)
    assert sum(len(a) for a in asked) == 180


def test_ask_tell_matches_run():
    prob = PROBLEMS["linear2d"]
    make = lambda: TwoStageSampler(  # noqa: E731
        prob.space, n_lhs=60, n_boundary=40, batch_size=10, n_candidates=2000, seed=2
    )
    df_run = make().run(prob.evaluator())
    s = make()
    while not s.done:  # stage 1 in one go, then stage 2 batch by batch
        params = s.ask()
        s.tell(params, [prob.evaluator()(p) for p in params])
    pd.testing.assert_frame_equal(s.history, df_run)
    assert list(df_run.columns) == ["x", "y", "success", "stage"]
    assert df_run["success"].dtype == bool and df_run["stage"].tolist() == [1] * 60 + [2] * 40


# ---------------------------------------------------------------------------------------------
# (e) arguments, fallbacks and the run() contract
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(n_lhs=-1), "n_lhs"),
        (dict(n_lhs=2.5), "n_lhs"),
        (dict(n_boundary=True), "n_boundary"),
        (dict(n_lhs=0, n_boundary=0), "nothing to sample"),
        (dict(band=(0.7, 0.3)), "band"),
        (dict(band=(0.0, 0.5)), "band"),
        (dict(band=(0.3, 1.0)), "band"),
        (dict(band=0.5), "band"),
        (dict(band=("a", "b")), "band"),
        (dict(batch_size=0), "batch_size"),
        (dict(n_candidates=0), "n_candidates"),
        (dict(seed=-1), "seed"),
        (dict(seed=1.5), "seed"),
        (dict(seed="abc"), "seed"),
    ],
)
def test_bad_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        TwoStageSampler(Linear2D.space, **kwargs)


def test_bad_space_argument():
    with pytest.raises(ValueError, match="ParameterSpace"):
        TwoStageSampler([Continuous("x", 0, 1)])


def test_bad_tell_and_ask():
    s = TwoStageSampler(Linear2D.space, n_lhs=5, n_boundary=5, seed=0)
    with pytest.raises(ValueError, match="n must be"):
        s.ask(-1)
    pts = s.ask(3)
    with pytest.raises(ValueError, match="3 points but 2"):
        s.tell(pts, [True, False])
    with pytest.raises(ValueError, match="bool"):
        s.tell(pts, [True, 0.5, False])
    with pytest.raises(ValueError, match="bool"):
        s.tell(pts, ["yes", True, False])
    with pytest.raises(ValueError, match="list of parameter dicts"):
        s.tell(pts[0], [True])
    with pytest.raises(ValueError, match="not awaiting"):
        s.tell([{"x": 0.123, "y": 0.0}], [True])
    with pytest.raises(ValueError, match="'x'.*out of range"):
        s.tell([{"x": 7.0, "y": 0.0}], [True])
    assert s.n_told == 0 and s.n_pending == 3  # failed tells change nothing
    s.tell(pts[:1], [np.True_])
    with pytest.raises(ValueError, match="not awaiting"):
        s.tell(pts[:1], [True])  # already told
    s.tell(pts[1:], [1, 0])  # integers 0/1 are accepted as flags
    assert s.n_told == 3 and s.history["success"].tolist() == [True, True, False]


def test_single_class_falls_back_with_warning():
    space = Mixed.space
    s = TwoStageSampler(space, n_lhs=40, n_boundary=20, batch_size=10, n_candidates=500, seed=0)
    with pytest.warns(RuntimeWarning, match="only successes"):
        df = s.run(lambda p: True)
    stage2 = df[df["stage"] == 2]
    assert len(stage2) == 20 and df["success"].all()
    # the fallback is space-filling: no repeated points
    assert not stage2.duplicated().any()
    assert all(space.validate(r) for r in stage2[space.names].to_dict("records"))


def test_no_stage1_starts_space_filling():
    s = TwoStageSampler(Linear2D.space, n_lhs=0, n_boundary=20, batch_size=10, n_candidates=500)
    with pytest.warns(RuntimeWarning, match="no outcomes"):
        pts = s.ask()
    assert len(pts) == 10 and s.stage == 2


def test_narrow_band_widens_with_warning():
    prob = PROBLEMS["linear2d"]
    s = TwoStageSampler(
        prob.space, n_lhs=100, n_boundary=10, band=(0.499, 0.501), batch_size=10,
        n_candidates=50, seed=0,
    )
    pts = s.ask()
    s.tell(pts, [prob.evaluator()(p) for p in pts])
    with pytest.warns(RuntimeWarning, match="nearest to the band"):
        batch = s.ask()
    assert len(batch) == 10
    # still nearer the boundary than the space-filling stage-1 points
    d2 = np.abs(prob.dist(prob.space.to_unit(batch)))
    d1 = np.abs(prob.dist(prob.space.to_unit(pts)))
    assert np.median(d2) < np.median(d1)


def test_run_keeps_extra_fields_and_accepts_any_callable():
    space = Mixed.space

    class BlackBox:  # any callable, unrelated to robogate's simulator
        def __init__(self):
            self.calls = 0

        def __call__(self, params):
            self.calls += 1
            ok = params["x"] < 0.5
            return {
                "success": ok, "outcome": "success" if ok else "grasp_miss",
                "steps": self.calls, "x": -1.0, "stage": 99,  # reserved keys are not copied
            }

    box = BlackBox()
    df = TwoStageSampler(space, n_lhs=30, n_boundary=10, batch_size=5, seed=0).run(box)
    assert box.calls == 40 and len(df) == 40
    assert list(df.columns) == space.names + ["success", "stage", "outcome", "steps"]
    assert (df["outcome"] == np.where(df["success"], "success", "grasp_miss")).all()
    assert sorted(df["steps"]) == list(range(1, 41))
    assert df["x"].between(0, 1).all() and set(df["stage"]) == {1, 2}
    assert isinstance(df["shape"].dtype, pd.CategoricalDtype)


@pytest.mark.parametrize("bad", [0.7, None, "ok", {"outcome": "success"}])
def test_run_rejects_bad_results(bad):
    s = TwoStageSampler(Linear2D.space, n_lhs=4, n_boundary=0)
    with pytest.raises(ValueError, match="success"):
        s.run(lambda p: bad)


def test_run_resumes_after_evaluate_raises():
    prob = PROBLEMS["linear2d"]
    ok = prob.evaluator()
    calls = {"n": 0}

    def flaky(p):
        calls["n"] += 1
        if calls["n"] == 7:
            raise OSError("simulator crashed")
        return ok(p)

    s = TwoStageSampler(prob.space, n_lhs=20, n_boundary=10, batch_size=5, n_candidates=500)
    with pytest.raises(OSError):
        s.run(flaky)
    assert s.n_told == 6 and s.n_pending == 14  # finished work kept, the rest still owed
    df = s.run(flaky)
    assert len(df) == 30 and s.done and not df[prob.space.names].duplicated().any()
    ref = TwoStageSampler(prob.space, n_lhs=20, n_boundary=10, batch_size=5, n_candidates=500)
    pd.testing.assert_frame_equal(df, ref.run(ok))


def test_state_properties_and_config():
    prob = PROBLEMS["linear2d"]
    s = TwoStageSampler(prob.space, n_lhs=20, n_boundary=10, seed=4)
    assert (s.stage, s.n_told, s.done, s.batch_size, s.n_candidates) == (1, 0, False, 1, 20000)
    assert TwoStageSampler(prob.space).batch_size == 100  # n_boundary // 10
    assert list(s.history.columns) == ["x", "y", "success", "stage"] and len(s.history) == 0
    s = TwoStageSampler(prob.space, n_lhs=20, n_boundary=10, n_candidates=1000, seed=4)
    s.run(prob.evaluator())
    assert s.done and s.n_told == 30 and s.ask() == []
    p = s.predict_proba([{"x": 0.0, "y": -1.0}, {"x": 1.0, "y": 1.0}])
    assert p[0] > 0.9 and p[1] < 0.1
    cfg = s.config()
    assert cfg["seed"] == 4 and ParameterSpace.from_dict(cfg["space"]) == prob.space
    assert TwoStageSampler(prob.space, seed=None).seed >= 0  # fresh entropy, recorded


def test_discrete_only_space_still_works():
    space = ParameterSpace([Integer("k", 0, 2), Categorical("c", ["a", "b"])])
    s = TwoStageSampler(space, n_lhs=12, n_boundary=8, batch_size=4, n_candidates=200, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        df = s.run(lambda p: p["k"] + (p["c"] == "b") < 2)
    assert len(df) == 20 and df["k"].between(0, 2).all()
