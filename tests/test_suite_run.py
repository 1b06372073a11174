"""Running a policy on a suite: the store, per-scenario and per-category tables, eval_info.json, resuming."""

import json
import os
import signal
import subprocess
import sys

import pandas as pd
import pytest

from robogate.cli.parser import main
from robogate.datasets.store import SweepStore
from robogate.reports.suite import write_suite_report
from robogate.suites.run import load_suite_run, run_suite
from robogate.suites.suite import load_suite
from tests.helpers import ENV_ID, comparable
from tests.test_sweep import REPO, alive, children, stored_rows, wait_for

SUITE = {
    "name": "tiny", "version": 1, "seed": 3, "seeds": 2,
    "categories": {"nominal": {"target": [0.95, 1.0]}, "hard": {"target": [0.0, 0.5]}},
    "scenarios": [
        {"id": "nominal", "category": "nominal"},
        {"id": "slippery-heavy", "category": "hard", "params": {"friction": 0.1, "mass": 1.5}},
        {"id": "light", "category": "nominal", "envelope": {"mass": "0.05:0.3", "shape": "box,cylinder"}},
    ],
}


@pytest.fixture(scope="module")
def scripted_run(tmp_path_factory):
    return run_suite(ENV_ID, "scripted", SUITE, tmp_path_factory.mktemp("suite") / "scripted", workers=1,
                     progress=False)


@pytest.mark.slow
def test_run_gives_tables_per_scenario_and_category(scripted_run):
    run = scripted_run
    assert run.complete and len(run.table) == 6 and set(run.table["id"]) == set(range(6))
    episodes = load_suite(SUITE).episodes()
    assert run.table.sort_values("id")["seed"].tolist() == [e.seed for e in episodes]
    scenarios = run.by_scenario().set_index("scenario")
    assert scenarios.loc["nominal", "rate"] == 1.0 and scenarios.loc["slippery-heavy", "rate"] == 0.0
    assert scenarios.loc["slippery-heavy", "outcomes"] == "grasp_miss 2"
    assert scenarios.loc["nominal", "ci_low"] == pytest.approx(0.342, abs=1e-3)  # Wilson, 2 of 2
    categories = run.by_category().set_index("category")
    assert categories.loc["nominal", ["n", "successes"]].tolist() == [4, 4]
    assert categories.loc["all", ["n", "successes"]].tolist() == [6, 4]
    assert categories.loc["hard", "target"] == (0.0, 0.5)
    assert "nominal" in run.summary() and "4/4" in run.summary()


@pytest.mark.slow
def test_eval_info_has_lerobots_keys(scripted_run):
    info = json.loads((scripted_run.path / "eval_info.json").read_text())
    assert info == scripted_run.eval_info()
    keys = {"n_episodes", "n_success", "pc_success", "pc_success_ci95"}
    assert keys <= set(info["overall"]) and info["overall"]["n_episodes"] == 6 and info["overall"]["n_success"] == 4
    assert info["overall"]["pc_success"] == pytest.approx(66.6667, abs=1e-3)
    low, high = info["overall"]["pc_success_ci95"]
    assert low == pytest.approx(30.0, abs=0.1) and high == pytest.approx(90.3, abs=0.1)  # Wilson, percent
    assert [t["task_id"] for t in info["per_task"]] == ["nominal", "slippery-heavy", "light"]
    assert info["per_task"][1]["task_group"] == "hard" and keys <= set(info["per_task"][1])
    assert set(info["per_group"]) == {"nominal", "hard"} and info["suite"] == "tiny@1"
    assert write_suite_report(scripted_run).stat().st_size > 10_000


@pytest.mark.slow
def test_rerunning_a_finished_run_and_resume_checks(scripted_run, tmp_path):
    again = run_suite(ENV_ID, "scripted", SUITE, scripted_run.path, resume=True, workers=1, progress=False)
    pd.testing.assert_frame_equal(again.table, scripted_run.table)
    with pytest.raises(ValueError, match="already holds a suite run; continue it with resume=True"):
        run_suite(ENV_ID, "scripted", SUITE, scripted_run.path, workers=1, progress=False)
    with pytest.raises(ValueError, match="cannot resume .*: policy differs"):
        run_suite(ENV_ID, "flow", SUITE, scripted_run.path, resume=True, workers=1, progress=False)
    with pytest.raises(ValueError, match="cannot resume .*: suite_digest differs"):
        run_suite(ENV_ID, "scripted", {**SUITE, "seed": 4}, scripted_run.path, resume=True, workers=1, progress=False)
    with pytest.raises(ValueError, match="holds no suite run; check the path"):
        run_suite(ENV_ID, "scripted", SUITE, tmp_path / "nothing", resume=True, workers=1, progress=False)


@pytest.mark.slow
def test_cli_resume_reads_the_env_policy_and_suite_from_the_stored_run(scripted_run, tmp_path, capsys):
    assert main(["suite", "run", "--out", str(scripted_run.path), "--resume", "--workers", "1"]) == 0
    assert capsys.readouterr().out.startswith(f"scripted on tiny@1 ({ENV_ID}): 6 of 6 episodes")
    assert main(["suite", "run", "--out", str(scripted_run.path), "--resume", "--policy", "flow"]) == 2
    assert "cannot resume" in capsys.readouterr().err  # a flag given must match the stored run
    assert main(["suite", "run", "--out", str(tmp_path / "nothing"), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"robogate: error: cannot resume {tmp_path / 'nothing'}: it holds no suite run")
    assert main(["suite", "run", "--out", str(tmp_path / "new")]) == 2
    assert "the following arguments are required: --env, --policy (or --resume)" in capsys.readouterr().err


@pytest.mark.slow
def test_errored_episodes_are_left_out_and_exit_4(tmp_path, capsys):
    args = ["suite", "run", "--env", ENV_ID, "--policy", "tests.helpers:RaisingPolicy", "--suite", "robogate-68",
            "--out", str(tmp_path / "broken"), "--workers", "1", "--no-progress"]
    small = tmp_path / "one.json"
    small.write_text(json.dumps({**SUITE, "scenarios": SUITE["scenarios"][:1]}))
    args[args.index("robogate-68")] = str(small)
    assert main(args) == 4
    out = capsys.readouterr().out
    assert "2 episodes errored (a broken harness, left out of the rates); first: the policy raised RuntimeError: policy exploded" in out
    info = json.loads((tmp_path / "broken" / "eval_info.json").read_text())
    assert info["overall"]["n_episodes"] == 0 and info["overall"]["n_errors"] == 2


@pytest.mark.parametrize("argv, message", [
    (["--suite", "robogate-86"], "unknown suite 'robogate-86'; shipped suites: robogate-68"),
    (["--env", "robogate/Nope-v0"], "unknown env id 'robogate/Nope-v0'"),
    (["--policy", "nosuch:Policy"], "bad policy spec 'nosuch:Policy'"),
])
def test_cli_usage_errors_are_one_line(tmp_path, capsys, argv, message):
    base = {"--env": ENV_ID, "--policy": "scripted", "--suite": "robogate-68"}
    base.update(dict(zip(argv[::2], argv[1::2])))
    code = main(["suite", "run", *[a for kv in base.items() for a in kv], "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("robogate: error: ") and message in err and err.count("\n") == 1


def test_suite_list(capsys):
    assert main(["suite", "list"]) == 0
    assert capsys.readouterr().out.startswith("robogate-68@1: 68 scenarios (nominal 20, edge 15, adversarial 10, "
                                              "domain_randomization 23), 680 episodes")


# ----------------------------------------------------------------------------- kill, resume


KILL_SUITE = {**SUITE, "seeds": 4}


def suite_cli(out, suite_file, resume=False):
    script = [sys.executable, "-m", "robogate.cli"]
    args = ["suite", "run", "--env", ENV_ID, "--policy", "tests.helpers:GatedScriptedPolicy", "--suite",
            str(suite_file), "--out", str(out), "--workers", "2", "--no-progress"]
    return script + args + (["--resume"] if resume else [])


@pytest.mark.slow
def test_a_run_killed_midway_and_resumed_gives_the_same_table(tmp_path):
    suite_file = tmp_path / "kill.json"
    suite_file.write_text(json.dumps(KILL_SUITE))
    reference = run_suite(ENV_ID, "tests.helpers:GatedScriptedPolicy", KILL_SUITE, tmp_path / "reference",
                          workers=1, progress=False).table
    out, gate, finished = tmp_path / "run", tmp_path / "gate", 5
    gate.mkdir()
    env = {**os.environ, "ROBOGATE_TEST_GATE": f"{gate}:{finished}", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(suite_cli(out, suite_file), cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(list(gate.glob("blocked-*"))) == 2, "both workers to block", proc)
        wait_for(lambda: stored_rows(out) == finished, f"{finished} stored episodes", proc)
        workers = children(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stderr.close()
    wait_for(lambda: not any(alive(p) for p in workers), "the workers to exit", limit=120)
    killed = SweepStore.open(out).read()
    assert len(killed) == finished and not load_suite_run(out).complete
    env.pop("ROBOGATE_TEST_GATE")
    res = subprocess.run(suite_cli(out, suite_file, resume=True), cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr
    final = load_suite_run(out)
    assert final.complete and sorted(final.table["id"]) == list(range(12))
    pd.testing.assert_frame_equal(comparable(final.table), comparable(reference))
    kept = final.table.set_index("id").loc[killed["id"], "wall_time"]
    assert kept.tolist() == killed["wall_time"].tolist()  # finished before the kill: kept, not run again
    assert final.eval_info() == json.loads((out / "eval_info.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["local_pool", "ray_executor"])
def test_executors_give_the_same_table(scripted_run, tmp_path, request, executor):
    run = run_suite(ENV_ID, "scripted", SUITE, tmp_path / "run", executor=request.getfixturevalue(executor),
                    progress=False)
    pd.testing.assert_frame_equal(comparable(run.table), comparable(scripted_run.table))
