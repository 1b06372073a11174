"""Tests of the two-stage boundary-focused sampler (robogate.sweep.sampler).

The statistical checks use analytic test functions whose failure boundary is
known exactly.  Small problems (2-4 dimensions): for a deterministic boundary
the "true" success probability is defined as a logistic of the signed distance
to the boundary (in unit-cube coordinates) with a small width, so "inside the
30-70 % band" means "within a thin shell around the boundary".  8-D problems
over the default space (a 14-level categorical, an integer, ROBOGATE-like
budgets of 600 + 400): sharp, curved, noisy and two-phase functions with a known
P(success), outcomes drawn from it.  Every statistical claim is checked over
several seeds.
"""

import functools
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from robogate.analysis.risk import RiskModel
from robogate.envs.scene import default_space
from robogate.scenarios.space import Categorical, Continuous, Integer, ParameterSpace, bin_index
from robogate.sweep.sampler import TwoStageSampler

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


def in_band_fraction(prob, df, stage, band=(0.3, 0.7)):
    sub = df[df["stage"] == stage]
    p = prob.true_p(prob.space.to_unit(sub))
    return float(np.mean((p >= band[0]) & (p <= band[1])))


# ---------------------------------------------------------------------------------------------
# (a) stage 2 concentrates on the boundary
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
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


@pytest.mark.slow
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
# (b) 8-D spaces with a 14-level categorical at ROBOGATE-like budgets
# ---------------------------------------------------------------------------------------------
#
# The default space (5 continuous, 1 integer, 5 shapes, 14 placements) with a known P(success)
# per point; every outcome is a Bernoulli draw from it.  Placement difficulty is graded, the
# two reach-limit targets almost always fail.  A uniform design puts 6-12 % of its points in
# the true 30-70 % band of each function (checked below).

SPACE_8D = default_space()
PLACEMENT_OFFSET = np.r_[np.linspace(-0.12, 0.28, 12), 0.7, 0.9]
SHAPE_OFFSET = np.array([0.0, 0.03, 0.12, 0.06, 0.09])


def _coords(U):
    """Unit coordinates of the continuous dimensions, then obstacle count, shape and placement codes."""
    return (*(U[:, j] for j in range(5)), bin_index(U[:, 5], 5), bin_index(U[:, 6], 5), bin_index(U[:, 7], 14))


def sharp(U):
    """A steep logistic, linear in log friction and log mass with a friction x mass interaction."""
    f, m, _, _, ik, k, shape, place = _coords(U)
    g = 0.3 + 0.55 * f - 0.45 * m - 0.25 * f * m - 0.04 * k - 0.2 * ik
    return expit(25 * (g - SHAPE_OFFSET[shape] - PLACEMENT_OFFSET[place]))


def curved(U):
    """A boundary curved in friction and size, with a centre-of-mass x mass interaction."""
    f, m, c, s, _, k, shape, place = _coords(U)
    g = 0.45 - 0.9 * (f - 0.75) ** 2 - 1.2 * (s - 0.5) ** 2 - 0.35 * c * m - 0.3 * m - 0.03 * k
    return expit(22 * (g - SHAPE_OFFSET[shape] - PLACEMENT_OFFSET[place]))


def noisy(U):
    """Random failures everywhere: success is at most 85 % (not a logistic)."""
    f, m, _, _, ik, k, shape, place = _coords(U)
    g = 0.25 + 0.5 * f - 0.5 * m - 0.3 * ik - 0.05 * k
    return 0.85 * expit(24 * (g - SHAPE_OFFSET[shape] - PLACEMENT_OFFSET[place]))


def two_phase(U):
    """Grasp and place must both succeed: a product of two logistics (not a logistic)."""
    f, m, _, s, ik, k, shape, place = _coords(U)
    grasp = expit(26 * (0.15 + 0.6 * f - 0.5 * m + 0.2 * s - SHAPE_OFFSET[shape]))
    place = expit(26 * (0.35 - 0.5 * ik - 0.06 * k - PLACEMENT_OFFSET[place]))
    return grasp * place


FUNCTIONS_8D = {f.__name__: f for f in (sharp, curved, noisy, two_phase)}
SEEDS_8D = (0, 1, 2)


def _bernoulli(p_success, seed):
    rng = np.random.default_rng(seed)
    return lambda p: bool(rng.random() < p_success(SPACE_8D.to_unit([p]))[0])


def _uniform_unit(n, seed):
    """Uniform points of the unit cube, discrete coordinates at their bin centres."""
    U = np.random.default_rng(seed).random((n, len(SPACE_8D)))
    for j, dim in enumerate(SPACE_8D):
        U[:, j] = dim.to_unit(dim.from_unit(U[:, j]))
    return U


@functools.lru_cache(maxsize=None)
def uniform_reference(name):
    """A function's in-band share under a uniform design, and near-boundary test points.

    Test points: uniform points whose true P(success) lies in (0.1, 0.9).
    """
    U = _uniform_unit(200_000, 2024)
    p = FUNCTIONS_8D[name](U)
    share = float(np.mean((p >= 0.3) & (p <= 0.7)))
    near = (p > 0.1) & (p < 0.9)
    U_near, p_near = U[near][:3000], p[near][:3000]
    return share, SPACE_8D.to_frame(SPACE_8D.from_unit(U_near)), p_near


def side_accuracy(df, name):
    """Near-boundary accuracy of a RiskModel fitted on ``df``: the share of test points it puts
    on the right side of P(success) = 0.5."""
    _, X_near, p_near = uniform_reference(name)
    model = RiskModel(space=SPACE_8D, random_state=0).fit(df[SPACE_8D.names], ~df["success"])
    return float(np.mean((model.predict_proba(X_near)[:, 1] > 0.5) == (p_near < 0.5)))


@pytest.mark.parametrize("name", list(FUNCTIONS_8D))
def test_8d_functions_have_a_thin_band(name):
    share, _, _ = uniform_reference(name)
    assert 0.06 <= share <= 0.12, f"{name}: uniform in-band share {share:.3f}"


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FUNCTIONS_8D))
def test_stage2_triples_the_uniform_in_band_share_in_8d(name):
    """600 LHS + 400 boundary points: stage 2 puts >= 3x the uniform share in the true band,
    and a risk model fitted on the two-stage data is more often on the right side of the
    boundary than one fitted on 1,000 uniform (LHS) points."""
    p_success = FUNCTIONS_8D[name]
    uniform_share, _, _ = uniform_reference(name)
    shares, acc_two, acc_uniform = [], [], []
    for seed in SEEDS_8D:
        df = TwoStageSampler(SPACE_8D, n_lhs=600, n_boundary=400, seed=seed).run(_bernoulli(p_success, seed))
        p2 = p_success(SPACE_8D.to_unit(df[df["stage"] == 2]))
        shares.append(float(np.mean((p2 >= 0.3) & (p2 <= 0.7))))
        lhs = TwoStageSampler(SPACE_8D, n_lhs=1000, n_boundary=0, seed=seed + 100)
        uniform = lhs.run(_bernoulli(p_success, seed + 1000))
        acc_two.append(side_accuracy(df, name))
        acc_uniform.append(side_accuracy(uniform, name))
    msg = (f"{name}: stage-2 in-band share {np.round(shares, 3)} vs uniform {uniform_share:.3f}; "
           f"near-boundary accuracy two-stage {np.round(acc_two, 3)} vs uniform {np.round(acc_uniform, 3)}")
    assert min(shares) >= 3 * uniform_share, msg
    assert np.mean(acc_two) > np.mean(acc_uniform), msg
    assert sum(a > b for a, b in zip(acc_two, acc_uniform)) >= 2, msg


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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


def test_surrogate_is_the_risk_model():
    prob = PROBLEMS["mixed"]
    s = TwoStageSampler(prob.space, n_lhs=80, n_boundary=10, batch_size=10, n_candidates=500, seed=0)
    df = s.run(prob.evaluator())
    assert isinstance(s.surrogate_, RiskModel) and s.surrogate_.space == prob.space
    assert {"intercept", "x", "shape=box"} <= set(s.surrogate_.coefficients_.index)
    # the sampler's P(success) is one minus the risk model's P(failure)
    rows = df[prob.space.names].head(5)
    np.testing.assert_allclose(s.predict_proba(rows), s.surrogate_.predict_proba(rows)[:, 0])


@pytest.mark.slow
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
