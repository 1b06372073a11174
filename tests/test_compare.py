"""Comparing two policies on the same scenes and seeds: suite runs, sweeps, policies run now; verdicts and exit codes."""

import numpy as np
import pandas as pd
import pytest

from robogate.cli.parser import main
from robogate.datasets.store import SweepStore
from robogate.envs.scene import default_space
from robogate.suites.comparison import compare
from robogate.suites.run import load_suite_run, run_suite
from robogate.sweep.config import SweepConfig
from tests.helpers import ENV_ID

pytestmark = pytest.mark.slow  # every comparison runs suites of real episodes

BROKEN = "tests.helpers:OpenGripperPolicy"  # the scripted controller that never closes its gripper
EASY = {  # 16 episodes the scripted controller succeeds in
    "name": "easy", "version": 1, "seed": 5, "seeds": 4, "categories": {"nominal": {}, "placements": {}},
    "scenarios": [{"id": "nominal", "category": "nominal"},
                  {"id": "cylinder", "category": "nominal", "params": {"shape": "cylinder"}},
                  {"id": "far", "category": "placements", "params": {"placement": "far"}},
                  {"id": "left", "category": "placements", "params": {"placement": "left"}}],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    return {name: run_suite(ENV_ID, spec, EASY, root / name, workers=1, progress=False)
            for name, spec in (("scripted", "scripted"), ("again", "scripted"), ("broken", BROKEN))}


def test_a_policy_against_itself_is_never_different(runs):
    for margin in (None, 0.05, 0.2):
        for other in ("scripted", "again"):
            result = compare(runs["scripted"], runs[other], margin)
            assert result.verdict in ("undecided", "not worse") and result.exit_code in (0, 3)
            assert result.decision.wins == result.decision.losses == 0 and len(result.flipped()) == 0
            assert result.decision.method == "fixed" and len(result.pairs) == 16


def test_a_broken_policy_is_worse_and_the_flips_say_where(runs, tmp_path, capsys):
    result = compare(runs["broken"], runs["scripted"], non_inferiority=0.05)
    assert result.verdict == "worse" and result.exit_code == 1 and result.decision.losses == 16
    assert result.decision.p_value == pytest.approx(2 * 0.5 ** 16)
    flips = result.flipped()
    assert len(flips) == 16 and set(flips["change"]) == {"lost"} and set(flips["baseline_outcome"]) == {"success"}
    assert list(dict.fromkeys(flips["category"])) == ["nominal", "placements"]  # the suite's order
    summary = result.flip_summary()
    assert summary["pairs"].sum() == 16 and set(summary["outcome"]) <= {"grasp_miss", "timeout"}
    by_category = result.by_category().set_index("category")
    assert by_category.loc["all", "difference"] == -1.0 and by_category.loc["nominal", "losses"] == 8
    assert compare(runs["scripted"], runs["broken"]).verdict == "better"
    # and through the CLI, with the report
    code = main(["compare", str(runs["broken"].path), str(runs["scripted"].path), "--non-inferiority", "0.05",
                 "--out", str(tmp_path / "cmp")])
    out = capsys.readouterr().out
    assert code == 1 and out.startswith("worse: the candidate is worse than the baseline by more than 5 points")
    assert "flipped" in out and (tmp_path / "cmp" / "report" / "report.html").stat().st_size > 10_000


def test_policies_run_now_stop_once_decided(runs, tmp_path, capsys):
    """The broken candidate runs against the stored baseline in batches: decided before the suite is done."""
    code = main(["compare", BROKEN, str(runs["scripted"].path), "--out", str(tmp_path / "now"), "--batch-size", "4",
                 "--workers", "1", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1 and out.startswith("worse: ") and "the verdict of the sequential test, after 8 of the 16 pairs" in out
    candidate = load_suite_run(tmp_path / "now" / "candidate")
    assert len(candidate.table) == 8 and not candidate.complete  # 8 of the 16 episodes never had to run
    assert set(candidate.table["id"]) == set(candidate.suite.run_order()[:8])
    # both sides run now; running again continues the stored runs instead of starting afresh
    result = compare("scripted", BROKEN, suite=EASY, env_id=ENV_ID, out=tmp_path / "both", batch_size=4, workers=1,
                     progress=False)
    assert result.verdict == "better" and result.decision.method == "sequential" and result.ran == {
        "candidate": 8, "baseline": 8}
    again = compare("scripted", BROKEN, suite=EASY, env_id=ENV_ID, out=tmp_path / "both", batch_size=4, workers=1,
                    progress=False)
    assert again.ran == {"candidate": 0, "baseline": 0}
    assert again.decision == result.decision and again.looks["pairs"].tolist() == result.looks["pairs"].tolist()


LOPSIDED = {  # the scripted controller succeeds in the 6 nominal episodes only; the broken policy in none
    "name": "lopsided", "version": 1, "seed": 5, "seeds": 6, "categories": {"nominal": {}, "oversized": {}},
    "scenarios": [{"id": "nominal", "category": "nominal"},
                  {"id": "oversized", "category": "oversized", "params": {"size": 0.12}, "seeds": 10}],
}


def test_a_full_suite_gets_one_verdict_whichever_way_the_runs_were_made(tmp_path, capsys):
    """6 losses in 16 pairs: the fixed-budget test says worse, the sequential one would not have decided yet."""
    stored = {name: run_suite(ENV_ID, spec, LOPSIDED, tmp_path / name, workers=1, progress=False)
              for name, spec in (("broken", BROKEN), ("scripted", "scripted"))}
    both_stored = compare(stored["broken"], stored["scripted"])
    run_now = compare(BROKEN, stored["scripted"], out=tmp_path / "now", workers=1, progress=False)
    both_now = compare(BROKEN, "scripted", suite=LOPSIDED, env_id=ENV_ID, out=tmp_path / "both", batch_size=4,
                       workers=1, progress=False)
    assert run_now.ran == {"candidate": 16} and both_now.ran == {"candidate": 16, "baseline": 16}
    for result in (both_stored, run_now, both_now):
        assert (result.decision.losses, result.decision.wins, len(result.pairs)) == (6, 0, 16)
        assert result.verdict == "worse" and result.exit_code == 1 and result.decision.method == "fixed"
        assert result.reason.endswith("; the verdict of the fixed-budget test (exact McNemar) on all 16 pairs.")
    assert compare(BROKEN, stored["scripted"], out=tmp_path / "now", workers=1, progress=False).ran == {"candidate": 0}
    code = main(["compare", str(tmp_path / "broken"), str(tmp_path / "scripted"), "--out", str(tmp_path / "cli")])
    assert code == 1 and "the verdict of the fixed-budget test (exact McNemar) on all 16 pairs" in capsys.readouterr().out


def test_errored_episodes_are_not_evidence(runs, tmp_path):
    raising = run_suite(ENV_ID, "tests.helpers:RaisingPolicy", EASY, tmp_path / "raising", workers=1, progress=False)
    result = compare(raising, runs["scripted"])
    assert result.exit_code == 4 and result.errors == 16 and len(result.pairs) == 0
    assert "16 paired episodes errored" in result.reason and "the policy raised RuntimeError: policy exploded on purpose" in result.reason


def test_runs_that_are_not_paired_are_refused(runs, tmp_path):
    other = run_suite(ENV_ID, "scripted", {**EASY, "seed": 6}, tmp_path / "other", workers=1, progress=False)
    with pytest.raises(ValueError, match="the runs are not paired: .* ran easy@1 and .* ran easy@1 "
                                         r"\(other scenes or seeds\)"):
        compare(runs["scripted"], other)
    # a run whose rows were changed after the fact
    tampered = load_suite_run(runs["again"].path)
    tampered.table = tampered.table.assign(seed=tampered.table["seed"] + 1)
    with pytest.raises(ValueError, match="the runs are not paired: episode .* has seed"):
        compare(runs["scripted"], tampered)
    with pytest.raises(ValueError, match="neither a folder nor a policy spec"):
        compare("nosuch:Policy", runs["scripted"])
    with pytest.raises(ValueError, match=r"needs an out folder"):
        compare(BROKEN, runs["scripted"])


@pytest.mark.parametrize("margin", ["0", "1", "1.5", "-0.05"])
def test_a_margin_outside_zero_one_is_a_usage_error(runs, capsys, margin):
    code = main(["compare", str(runs["scripted"].path), str(runs["again"].path), "--non-inferiority", margin])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("robogate: error: non_inferiority margin must be in (0, 1)")
    assert err.count("\n") == 1


# ----------------------------------------------------------------------------------- sweeps


def stored_sweep(path, seed, succeed, n=120, shuffle_seed=None):
    """A finished 8-D sweep: uniform rows from the seed, outcomes by ``succeed(rows)``; optional stage-2 rows."""
    space = default_space()
    rng = np.random.default_rng(seed if shuffle_seed is None else shuffle_seed)
    rows = pd.DataFrame(space.from_unit(np.random.default_rng(seed).random((n, len(space)))))
    ok = succeed(rows, rng)
    rows = rows.assign(id=np.arange(n), stage=np.where(np.arange(n) < n - 20, 1, 2), seed=np.arange(n) + 1000 * seed,
                       success=ok, outcome=np.where(ok, "success", "collision"), error=None)
    config = SweepConfig(env_id=ENV_ID, policy="scripted", seed=seed, space=space, n_lhs=n - 20, n_boundary=20,
                         band=(0.3, 0.7), batch_size=10, n_candidates=1000)
    SweepStore.create(path, {**config.to_manifest(), "complete": True}).append(rows.to_dict("records"))
    return path


def test_two_sweeps_with_the_same_seed_pair_on_their_uniform_rows(tmp_path):
    good = stored_sweep(tmp_path / "good", 1, lambda r, g: (r["obstacles"] < 3).to_numpy())
    worse = stored_sweep(tmp_path / "worse", 1, lambda r, g: ((r["obstacles"] < 3) & (r["size"] < 0.09)).to_numpy())
    result = compare(worse, good)
    assert len(result.pairs) == 100 and set(result.pairs["category"]) == {"stage 1 (uniform)"}  # stage 2 left out
    uniform = pd.read_parquet(good / "results").query("stage == 1")
    expected = int(((uniform["obstacles"] < 3) & (uniform["size"] >= 0.09)).sum())
    assert result.decision.losses == expected and result.decision.wins == 0 and result.verdict == "worse"
    assert compare(good, good).verdict == "undecided"
    with pytest.raises(ValueError, match="the sweeps are not paired: .* has seed 1 and .* seed 2"):
        compare(good, stored_sweep(tmp_path / "other", 2, lambda r, g: np.ones(len(r), bool)))
    suite_run = run_suite(ENV_ID, "scripted", {**EASY, "seeds": 1}, tmp_path / "suite", workers=1, progress=False)
    with pytest.raises(ValueError, match="compare a sweep with another sweep"):
        compare(good, suite_run.path)
