"""The deployment gate: envelopes, honest evidence, exact and sequential bounds, the CLI's exit codes."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from robogate.analysis.gating import gate
from robogate.analysis.stats import clopper_pearson, decide, sequential_gate
from robogate.cli.parser import main
from robogate.datasets.stages import STAGE_GATE
from robogate.datasets.store import SweepStore
from robogate.scenarios.envelope import Envelope
from robogate.scenarios.space import Categorical, Continuous, Integer, ParameterSpace
from robogate.sweep.config import SweepConfig

SPACE = ParameterSpace([Continuous("friction", 0.05, 1.2, log=True), Integer("obstacles", 0, 4),
                        Categorical("shape", ["box", "cylinder", "sphere"])])
ENVELOPE = {"friction": (0.4, 1.2), "shape": ["box", "cylinder"]}


def sweep(n, seed, failure_rate, stage=1, space=SPACE):
    """Uniform rows with failure probability ``failure_rate(rows)``."""
    rng = np.random.default_rng(seed)
    rows = pd.DataFrame(space.from_unit(rng.random((n, len(space)))))
    failed = rng.random(n) < failure_rate(rows)
    return rows.assign(success=~failed, outcome=np.where(failed, "grip_loss", "success"), stage=stage)


def slippery(rows):
    """Fails at low friction only: the envelope above 0.4 never fails."""
    return np.where(rows["friction"] < 0.3, 0.9, 0.0)


# ---------------------------------------------------------------------------------- envelopes


@pytest.mark.parametrize("limits, message", [
    ({"frction": (0.4, 1.2)}, r"envelope: unknown parameter 'frction'; valid names are \['friction'"),
    ({"friction": (1.2, 0.4)}, "envelope: friction range 1.2:0.4 is empty"),
    ({"obstacles": (3, 1)}, "envelope: obstacles range 3:1 is empty"),
    ({"friction": (0.01, 1.2)}, r"envelope: friction value 0.01 is outside the space \(friction takes a real "
                                r"number in \[0.05, 1.2\]"),
    ({"obstacles": [2, 7]}, r"envelope: obstacles value 7 is outside the space \(obstacles takes an integer"),
    ({"shape": ["box", "cube"]}, "envelope: unknown shape 'cube'; expected one of 'box', 'cylinder', 'sphere'"),
    ({"shape": []}, "envelope: shape allows no value"),
    ({"friction": [0.5]}, "envelope: friction is continuous and needs a range"),
])
def test_bad_envelopes_name_the_problem(limits, message):
    rows = sweep(100, 0, slippery)
    with pytest.raises(ValueError, match=message):
        gate(rows, SPACE, limits, max_failure_rate=0.05)


@pytest.mark.parametrize("texts, message", [
    (["friction"], "expected NAME=LOW:HIGH or NAME=A,B"),
    (["friction=0.4:x"], "friction takes numbers, got 'x'"),
    (["friction=0.1:0.2:0.3"], "friction range must be LOW:HIGH"),
    (["shape=box", "shape=sphere"], "parameter 'shape' is given twice"),
    (["colour=red"], "unknown parameter 'colour'"),
])
def test_bad_envelope_text(texts, message):
    with pytest.raises(ValueError, match=message):
        Envelope.parse(texts, SPACE)


def test_envelope_parse_mask_and_containment():
    env = Envelope.parse(["friction=0.4:1.2", "shape=box,cylinder", "obstacles=0:2"], SPACE)
    assert env == Envelope(SPACE, {"friction": (0.4, 1.2), "shape": ["cylinder", "box"], "obstacles": [0, 1, 2]})
    assert env.describe() == "friction 0.4–1.2, obstacles 0–2, shape in {box, cylinder}"  # nothing left free
    rows = pd.DataFrame({"friction": [0.4, 1.2, 0.39], "obstacles": [2, 0, 0], "shape": ["box", "cylinder", "box"]})
    assert env.mask(rows).tolist() == [True, True, False]
    smaller = Envelope(SPACE, {"friction": (0.5, 1.0), "shape": ["box"], "obstacles": [1]})
    assert env.contains(smaller) and not smaller.contains(env)
    assert Envelope(SPACE, {}).contains(env) and not env.contains(Envelope(SPACE, {}))
    assert Envelope.from_json(env.to_json(), SPACE) == env


def test_envelope_samples_like_the_sweep_inside_it():
    """Log-uniform friction, uniform integers and categories: stage-1's distribution, restricted."""
    env = Envelope(SPACE, {"friction": (0.1, 1.0), "obstacles": (1, 3), "shape": ["sphere", "box"]})
    seeds = np.random.SeedSequence(0).spawn(6000)
    points = pd.DataFrame(env.points(seeds))
    assert env.mask(points).all()
    log_friction = (np.log(points["friction"]) - np.log(0.1)) / np.log(10)
    assert np.histogram(log_friction, bins=5, range=(0, 1))[0] == pytest.approx([1200] * 5, rel=0.12)
    assert points["obstacles"].value_counts().to_dict() == pytest.approx({1: 2000, 2: 2000, 3: 2000}, rel=0.08)
    assert points["shape"].value_counts().to_dict() == pytest.approx({"box": 3000, "sphere": 3000}, rel=0.06)
    assert env.points(seeds[:3]) == env.points(seeds[:3])  # a point depends only on its seed


# ------------------------------------------------------------------------------ fixed evidence


def test_fifty_nine_failure_free_trials_pass_a_five_percent_limit():
    assert decide(0, 59).verdict == "pass" and decide(0, 59).upper_bound < 0.05
    d = decide(0, 58)
    assert d.verdict == "inconclusive" and d.more_needed == 1 and d.exit_code == 3
    assert decide(0, 0).more_needed == 59
    assert "no uniform experiment" in decide(0, 0).reason
    d = decide(3, 40)
    assert d.verdict == "inconclusive" and decide(3, 40 + d.more_needed).verdict == "pass"
    assert decide(3, 40 + d.more_needed - 1).verdict == "inconclusive"
    d = decide(12, 40)
    assert d.verdict == "fail" and d.lower_bound > 0.05 and d.exit_code == 1 and d.more_needed == 0
    assert d.reason.startswith("fail: 12 failures in 40 uniform experiments") and d.reason.count(".") <= 3


def test_safe_and_dangerous_envelopes():
    rows = sweep(1500, 0, slippery)
    safe = gate(rows, SPACE, ENVELOPE, max_failure_rate=0.05)
    assert safe.verdict == "pass" and safe.failures == 0 and safe.method == "clopper-pearson"
    assert safe.n == Envelope(SPACE, ENVELOPE).mask(rows).sum()
    bad = gate(rows, SPACE, {"friction": (0.05, 0.2)}, max_failure_rate=0.05)
    assert bad.verdict == "fail" and bad.lower_bound > 0.5


def test_stage2_rows_are_not_evidence():
    """A boundary-heavy sweep: stage-2 failures inside the envelope leave the verdict unchanged."""
    rows = sweep(1500, 0, slippery)
    boundary = sweep(4000, 1, lambda r: np.ones(len(r)), stage=2)
    boundary["friction"] = 0.45  # inside the envelope, all failed
    heavy = pd.concat([rows, boundary], ignore_index=True)
    assert gate(heavy, SPACE, ENVELOPE, 0.05) == gate(rows, SPACE, ENVELOPE, 0.05)
    # and the other way round: stage-2 successes cannot pass an envelope that fails
    failing = sweep(300, 2, lambda r: np.full(len(r), 0.3))
    lucky = sweep(4000, 3, lambda r: np.zeros(len(r)), stage=2)
    assert gate(pd.concat([failing, lucky]), SPACE, ENVELOPE, 0.05).verdict == "fail"


def test_stage3_rows_count_only_inside_the_envelope_they_were_sampled_in():
    rows = sweep(200, 0, slippery)
    env = Envelope(SPACE, ENVELOPE)
    gate_rows = pd.DataFrame(env.points(np.random.SeedSequence(1).spawn(100))).assign(
        success=True, outcome="success", stage=STAGE_GATE, envelope=env.to_json())
    both = pd.concat([rows, gate_rows], ignore_index=True)
    inside = gate(both, SPACE, {"friction": (0.5, 1.0), "shape": ["box"]}, 0.05)
    assert inside.method == "confidence sequence"
    assert inside.n == Envelope(SPACE, {"friction": (0.5, 1.0), "shape": ["box"]}).mask(both).sum()
    wider = gate(both, SPACE, {"friction": (0.3, 1.2)}, 0.05)  # the gate rows do not cover it uniformly
    assert wider.method == "clopper-pearson" and wider.n == Envelope(SPACE, {"friction": (0.3, 1.2)}).mask(rows).sum()


def test_bad_limits():
    rows = sweep(50, 0, slippery)
    with pytest.raises(ValueError, match="max_failure_rate must be in"):
        gate(rows, SPACE, ENVELOPE, max_failure_rate=0.0)
    with pytest.raises(ValueError, match="confidence must be in"):
        gate(rows, SPACE, ENVELOPE, 0.05, confidence=95)
    with pytest.raises(ValueError, match=r"lacks columns \['success'\]"):
        gate(rows.drop(columns="success"), SPACE, ENVELOPE, 0.05)


# ---------------------------------------------------------------------------- sequential test


def simulate(p, runs, seed, n=0, failures=0, batch_size=10, max_experiments=600):
    """Run the sequential gate ``runs`` times on a black box failing with probability ``p``."""
    decisions = []
    for r in range(runs):
        rng = np.random.default_rng([seed, r])
        decisions.append(sequential_gate(lambda m: rng.random(m) < p, 0.05, 0.95, n=n, failures=failures,
                                         batch_size=batch_size, max_experiments=max_experiments))
    return decisions


def consistent_with_at_most(misses, runs, rate):
    """An exact binomial test does not reject 'the miss rate is at most ``rate``' (at 0.1 %)."""
    return binomtest(misses, runs, rate, alternative="greater").pvalue > 1e-3


@pytest.mark.parametrize("p", [0.02, 0.05, 0.12])
@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_sequential_upper_bound_covers_the_true_rate(p, seed):
    decisions = simulate(p, 300, seed)
    misses = sum(d.upper_bound < p for d in decisions)
    assert consistent_with_at_most(misses, len(decisions), 0.05), misses
    assert all(d.method == "confidence sequence" for d in decisions)
    if p != 0.05:  # away from the limit the run decides, and rightly
        assert sum(d.verdict == ("pass" if p < 0.05 else "fail") for d in decisions) > 0.8 * len(decisions)


@pytest.mark.slow
@pytest.mark.parametrize("p, wrong", [(0.05, "pass"), (0.06, "pass"), (0.04, "fail")])
def test_sequential_wrong_verdicts_stay_below_the_level(p, wrong):
    decisions = simulate(p, 400, 7, n=30, failures=1, batch_size=5)
    errors = sum(d.verdict == wrong for d in decisions)
    assert consistent_with_at_most(errors, len(decisions), 0.05), errors
    assert all(d.ran <= 600 for d in decisions)


def test_looking_again_and_again_with_fixed_bounds_would_not_hold_the_level():
    """The check above has teeth: one-sided Clopper–Pearson after every batch passes p = limit too often."""
    runs, wrong = 400, 0
    for r in range(runs):
        failed = np.random.default_rng([11, r]).random(600) < 0.05
        n = np.arange(10, 601, 10)
        wrong += bool((clopper_pearson(np.cumsum(failed)[n - 1], n, 0.95, "less")[1] < 0.05).any())
    assert not consistent_with_at_most(wrong, runs, 0.05), wrong


def test_sequential_gate_stops_as_soon_as_decided():
    calls = []

    def draw(m):
        calls.append(m)
        return np.zeros(m, dtype=bool)

    d = sequential_gate(draw, 0.05, 0.95, batch_size=20, max_experiments=1000)
    assert d.verdict == "pass" and d.ran == sum(calls) == 100 and calls == [20] * 5
    assert decide(0, 80, sequential=True).verdict == "inconclusive" and d.reason.endswith("(after running 100 experiments).")
    # evidence already sufficient: nothing runs
    assert sequential_gate(draw, 0.05, 0.95, n=200, failures=0).ran == 0 and len(calls) == 5
    capped = sequential_gate(lambda m: np.arange(m) % 20 == 0, 0.05, 0.95, batch_size=7, max_experiments=30)
    assert capped.verdict == "inconclusive" and capped.ran == 30 and "the most allowed" in capped.reason


# --------------------------------------------------------------------------------------- CLI


def stored_sweep(path, rows, space=SPACE):
    config = SweepConfig(env_id="robogate/PickPlace-Panda-v0", policy="scripted", seed=0, space=space,
                         n_lhs=len(rows), n_boundary=0, band=(0.3, 0.7), batch_size=1, n_candidates=1000)
    store = SweepStore.create(path, {**config.to_manifest(), "complete": True})
    store.append(rows.assign(id=np.arange(len(rows))).to_dict("records"))
    return path


@pytest.mark.parametrize("envelope, status, verdict", [
    (["friction=0.4:1.2", "shape=box,cylinder"], 0, "pass"),
    (["friction=0.05:0.2"], 1, "fail"),
    (["friction=0.3:0.32"], 3, "inconclusive"),
])
def test_cli_exit_status(tmp_path, capsys, envelope, status, verdict):
    path = stored_sweep(tmp_path / "sweep", sweep(1500, 0, slippery))
    args = ["gate", str(path), "--max-failure-rate", "0.05", "--confidence", "0.95"]
    assert main(args + [a for e in envelope for a in ("--envelope", e)]) == status
    out = capsys.readouterr().out.strip()
    assert out.startswith(f"{verdict}: ") and out.count("\n") == 0


@pytest.mark.parametrize("args, message", [
    (["--envelope", "friction=2:3"], "friction value 2.0 is outside the space"),
    (["--envelope", "shape=cube"], "unknown shape 'cube'"),
    (["--envelope", "mass=0.1:1"], "unknown parameter 'mass'"),
])
def test_cli_usage_errors(tmp_path, capsys, args, message):
    path = stored_sweep(tmp_path / "sweep", sweep(100, 0, slippery))
    assert main(["gate", str(path), "--max-failure-rate", "0.05", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("robogate: error: envelope: ") and message in err
    with pytest.raises(SystemExit) as exc:
        main(["gate", str(path), "--max-failure-rate", "5"])
    assert exc.value.code == 2


# ------------------------------------------------------------------------- on a real sweep

SIZE_SPACE = ParameterSpace([Continuous("size", 0.02, 0.12, nominal=0.05)])


@pytest.fixture(scope="module")
def size_sweep(tmp_path_factory):
    """A real 40-episode sweep of object size on the Panda: objects wider than the gripper fail."""
    from robogate.sweep.run import run_sweep

    path = tmp_path_factory.mktemp("gate") / "size"
    run_sweep("robogate/PickPlace-Panda-v0", "scripted", path, space=SIZE_SPACE, n_lhs=40, n_boundary=0,
              workers=2, progress=False)
    return path


@pytest.mark.slow
def test_real_sweep_safe_and_dangerous_envelopes(size_sweep, capsys):
    import robogate

    df = robogate.load_sweep(size_sweep)
    assert len(df) == 40 and (df["stage"] == 1).all()
    safe = gate(df, SIZE_SPACE, {"size": (0.02, 0.08)}, max_failure_rate=0.15)
    assert safe.verdict == "pass", safe.reason
    wide = gate(df, SIZE_SPACE, {"size": (0.105, 0.12)}, max_failure_rate=0.15)
    assert wide.verdict == "fail", wide.reason
    assert main(["gate", str(size_sweep), "--envelope", "size=0.105:0.12", "--max-failure-rate", "0.15"]) == 1


@pytest.mark.slow
def test_gate_run_appends_stage3_rows_until_decided(size_sweep, capsys):
    import robogate

    before = robogate.load_sweep(size_sweep)
    args = ["gate", str(size_sweep), "--envelope", "size=0.02:0.06", "--max-failure-rate", "0.15", "--run",
            "--batch-size", "10", "--workers", "2", "--no-progress"]
    assert main(args) == 0
    reason = capsys.readouterr().out.strip()
    assert reason.startswith("pass: 0 failures in ") and "after running" in reason
    after = robogate.load_sweep(size_sweep)
    new = after[after["stage"] == STAGE_GATE]
    ran = int(reason.split("after running ")[1].split()[0])
    assert len(new) == ran == len(after) - len(before) and new["success"].all()
    assert new["id"].min() == before["id"].max() + 1 and new["id"].is_unique
    assert new["size"].between(0.02, 0.06).all()
    assert json.loads(new["envelope"].iloc[0]) == {"rest": "free", "limits": {"size": [0.02, 0.06]}}
    # the evidence is now sequential; the plain gate agrees, and a second run needs nothing more
    decision = gate(after, SIZE_SPACE, {"size": (0.02, 0.06)}, 0.15)
    assert decision.verdict == "pass" and decision.method == "confidence sequence"
    assert main(args) == 0 and "after running" not in capsys.readouterr().out


# ------------------------------------------------------------------- what the verdict says


def test_the_verdict_names_the_parameters_left_free():
    rows = sweep(1500, 0, slippery)
    d = gate(rows, SPACE, {"friction": (0.4, 1.2)}, max_failure_rate=0.05)
    assert d.reason.endswith("; the envelope leaves obstacles and shape free over their full range.")
    d = gate(rows, SPACE, {"friction": (0.4, 1.2), "shape": ["box"]}, max_failure_rate=0.05)
    assert "the envelope leaves obstacles free over its full range." in d.reason
    assert "free over" not in gate(rows, SPACE, {**ENVELOPE, "obstacles": (0, 4)}, 0.05).reason
    assert "the envelope limits no parameter" in gate(rows, SPACE, None, 0.05).reason


def test_a_range_may_be_a_list():
    rows = sweep(1500, 0, slippery)
    assert gate(rows, SPACE, {"friction": [0.4, 1.2]}, 0.05) == gate(rows, SPACE, {"friction": (0.4, 1.2)}, 0.05)


def test_wording_at_the_edges():
    # one failure in one experiment: the lower bound equals a 5 % limit, which decides nothing
    d = decide(1, 1, 0.05)
    assert d.verdict == "inconclusive" and "its lower bound at 5 %, equal to it" in d.reason
    assert "; 1 more failure-free experiment inside" in decide(0, 58).reason
    # a bound just under the limit is not printed as the limit itself
    d = decide(2, 8, 0.6)
    assert d.verdict == "pass" and "below 59.97 % with 95 % confidence, under the 60 % limit" in d.reason


def with_errors(rows, where, message="the policy raised RuntimeError: policy exploded on purpose"):
    rows = rows.copy()
    rows.loc[where, "outcome"], rows.loc[where, "success"] = "error", False
    rows["error"] = np.where(rows["outcome"] == "error", f"{message}\nTraceback (most recent call last): ...", None)
    return rows


def test_errored_experiments_give_no_pass_or_fail():
    rows = sweep(1500, 0, slippery)
    inside = Envelope(SPACE, ENVELOPE).mask(rows)
    broken = with_errors(rows, np.flatnonzero(inside)[:3])
    d = gate(broken, SPACE, ENVELOPE, max_failure_rate=0.05)
    assert d.verdict == "error" and d.exit_code == 4 and d.errors == 3
    assert d.first_error == "the policy raised RuntimeError: policy exploded on purpose"
    assert d.reason.startswith(f"error: 3 of the {inside.sum()} experiments inside the envelope errored")
    assert "first error: the policy raised RuntimeError: policy exploded on purpose" in d.reason
    # every experiment errored (what a raising policy gives): still a broken harness, never "fail"
    assert gate(with_errors(rows, rows.index), SPACE, ENVELOPE, 0.05).verdict == "error"
    # errors outside the envelope say nothing about it
    outside = with_errors(rows, np.flatnonzero(~inside)[:3])
    assert gate(outside, SPACE, ENVELOPE, 0.05).verdict == "pass"


def test_cli_gate_on_errored_experiments_exits_4(tmp_path, capsys):
    rows = with_errors(sweep(200, 0, slippery), slice(None))
    path = stored_sweep(tmp_path / "sweep", rows)
    for extra in ([], ["--run", "--no-progress"]):  # --run runs nothing on a broken harness
        code = main(["gate", str(path), "--envelope", "friction=0.4:1.2", "--max-failure-rate", "0.05", *extra])
        out = capsys.readouterr().out
        assert code == 4 and out.startswith("error: ") and out.count("\n") == 1
        assert "first error: the policy raised RuntimeError: policy exploded on purpose" in out
    assert len(SweepStore.open(path).read()) == 200


@pytest.mark.slow
def test_gate_run_stops_at_the_first_errored_batch(tmp_path, capsys):
    """A policy that raises, swept where it was never tried: --run stops after one batch with exit 4."""
    config = SweepConfig(env_id="robogate/PickPlace-Panda-v0", policy="tests.helpers:RaisingPolicy", seed=0,
                         space=SIZE_SPACE, n_lhs=4, n_boundary=0, band=(0.3, 0.7), batch_size=1, n_candidates=1000)
    store = SweepStore.create(tmp_path / "s", {**config.to_manifest(), "complete": True})
    store.append([{"id": i, "stage": 1, "batch": 0, "size": 0.1 + 0.005 * i, "seed": i, "outcome": "collision",
                   "success": False} for i in range(4)])
    args = ["gate", str(tmp_path / "s"), "--envelope", "size=0.02:0.06", "--max-failure-rate", "0.1", "--run",
            "--batch-size", "5", "--workers", "2", "--no-progress"]
    assert main(args) == 4
    out = capsys.readouterr().out
    assert out.startswith("error: all 5 experiments inside the envelope errored")
    assert "the policy raised RuntimeError: policy exploded on purpose" in out and "(after running 5 experiments)" in out
    assert (SweepStore.open(tmp_path / "s").read()["stage"] == STAGE_GATE).sum() == 5  # stored, not lost
