"""Tests of run_sweep: reproducibility, kill-and-resume, input checks, summaries."""

import glob
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest

import robogate
from robogate._utils.seeding import trial_seed
from robogate.datasets.stages import STAGE_GATE
from robogate.datasets.store import StoreError, SweepStore
from robogate.envs.scene import default_space
from robogate.scenarios.space import Categorical, Continuous, ParameterSpace
from robogate.sweep.config import SweepConfig
from robogate.sweep.run import run_sweep
from robogate.sweep.sampler import TwoStageSampler
from robogate.sweep.summary import format_summary, summarize_sweep
from tests.helpers import ENV_ID, comparable

REPO = Path(__file__).resolve().parents[1]
BANNER = "pybullet build time"
SMALL = dict(n_lhs=12, n_boundary=6, batch_size=3, seed=11)
# The sweep killed and resumed by the CLI tests.
KILL = dict(n_lhs=32, n_boundary=12, batch_size=4, seed=5)
N_KILL = KILL["n_lhs"] + KILL["n_boundary"]


def sweep(out, executor, **overrides):
    kwargs = {**SMALL, "executor": executor, "progress": False, **overrides}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the sampler's band warnings
        return run_sweep(ENV_ID, kwargs.pop("policy", "scripted"), out, **kwargs)


@pytest.fixture(scope="module")
def local_runs(tmp_path_factory, local_pool):
    root = tmp_path_factory.mktemp("local")
    a = sweep(root / "a", local_pool)
    b = sweep(root / "b", local_pool)
    return root / "a", a, b


# ------------------------------------------------------------------------- reproducibility


@pytest.mark.slow
def test_sweep_table_layout(local_runs):
    _, df, _ = local_runs
    n = SMALL["n_lhs"] + SMALL["n_boundary"]
    assert df["id"].tolist() == list(range(n))
    assert (df["stage"] == 1).sum() == SMALL["n_lhs"] and (df["stage"] == 2).sum() == SMALL["n_boundary"]
    assert df.loc[df["stage"] == 1, "batch"].eq(0).all()
    assert df.loc[df["stage"] == 2, "batch"].tolist() == [1, 1, 1, 2, 2, 2]
    assert df["seed"].tolist() == [trial_seed(SMALL["seed"], i) for i in range(n)]
    assert (df["env_id"] == ENV_ID).all() and (df["policy"] == "scripted").all()
    for col in [*default_space().names, "outcome", "success", "steps", "sim_time", "wall_time",
                "physics_time", "error"]:
        assert col in df.columns
    assert df["success"].dtype == bool
    assert df.attrs["elapsed"] > 0
    # the stage-1 rows are the sampler's Latin Hypercube, in order
    lhs = TwoStageSampler(default_space(), n_lhs=12, n_boundary=6, batch_size=3, seed=11).ask()
    assert df.loc[df["stage"] == 1, default_space().names].to_dict("records") == lhs
    manifest = SweepStore.open(local_runs[0]).manifest
    assert manifest["complete"] is True and manifest["env_id"] == ENV_ID and manifest["seed"] == 11
    assert manifest["sampler"] == {"n_lhs": 12, "n_boundary": 6, "band": [0.3, 0.7], "batch_size": 3,
                                   "n_candidates": 20000}
    assert ParameterSpace.from_dict(manifest["space"]) == default_space()
    assert set(manifest["versions"]) == {"robogate", "pybullet", "numpy"} and manifest["created"]


@pytest.mark.slow
def test_local_sweep_reproduces_row_by_row(local_runs):
    _, a, b = local_runs
    pd.testing.assert_frame_equal(comparable(a), comparable(b))
    assert a["outcome"].nunique() > 1  # a real mix, not a degenerate table


@pytest.mark.slow
def test_ray_sweep_reproduces_and_equals_local(local_runs, ray_executor, tmp_path):
    c = sweep(tmp_path / "c", ray_executor)
    d = sweep(tmp_path / "d", ray_executor)
    pd.testing.assert_frame_equal(comparable(c), comparable(d))
    pd.testing.assert_frame_equal(comparable(c), comparable(local_runs[1]))


@pytest.mark.slow
def test_resuming_a_complete_sweep_runs_nothing(local_runs, local_pool):
    out, a, _ = local_runs
    before = sorted(os.listdir(out / "results"))
    again = sweep(out, local_pool, resume=True)
    pd.testing.assert_frame_equal(again, a)  # timing columns included: nothing re-ran
    assert sorted(os.listdir(out / "results")) == before


@pytest.mark.slow
def test_resuming_keeps_the_rows_a_gate_run_added(tmp_path, local_pool):
    out = tmp_path / "sweep"
    df = sweep(out, local_pool, n_lhs=4, n_boundary=0)
    gate_row = {**df.iloc[0].to_dict(), "id": 4, "stage": STAGE_GATE, "batch": 1, "envelope": "{}"}
    SweepStore.open(out).append([gate_row])
    again = sweep(out, local_pool, n_lhs=4, n_boundary=0, resume=True)
    assert again["id"].tolist() == [0, 1, 2, 3, 4] and again["stage"].tolist() == [1, 1, 1, 1, STAGE_GATE]
    pd.testing.assert_frame_equal(again.iloc[:4].drop(columns="envelope"), df)


def test_resume_needs_a_stored_sweep(tmp_path):
    """resume=True never silently starts afresh: a mistyped folder is an error naming it."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "rollouts").mkdir()
    (tmp_path / "rollouts" / "rollouts.parquet").write_bytes(b"PAR1")
    for folder, why in (("missing", "there is no such folder"), ("empty", "the folder is empty"),
                        ("rollouts", r"the folder holds no robogate sweep \(no manifest.json\)")):
        with pytest.raises(ValueError, match=f"cannot resume .*{folder}: {why}; check the path, or leave out"):
            sweep(tmp_path / folder, "local", workers=1, n_lhs=2, n_boundary=0, resume=True)
    assert not (tmp_path / "missing").exists() and not any((tmp_path / "empty").iterdir())


@pytest.mark.slow
def test_resume_allow_continues_or_starts(tmp_path, local_pool):
    first = sweep(tmp_path / "new", local_pool, n_lhs=2, n_boundary=0, resume="allow")
    assert first["id"].tolist() == [0, 1] and not first.attrs["resumed"]
    again = sweep(tmp_path / "new", local_pool, n_lhs=2, n_boundary=0, resume="allow")
    assert again.attrs["resumed"] and again["id"].tolist() == [0, 1]
    with pytest.raises(ValueError, match="resume must be True, False or 'allow'"):
        sweep(tmp_path / "other", local_pool, n_lhs=2, n_boundary=0, resume="yes")


# ---------------------------------------------------------------------- kill and resume


# The killed sweeps run this policy: the scripted controller with a gate the test sets (see helpers).
GATED = "tests.helpers:GatedScriptedPolicy"


@pytest.fixture(scope="module")
def reference(tmp_path_factory, local_pool):
    """The uninterrupted sweep that the killed-and-resumed ones must reproduce."""
    return sweep(tmp_path_factory.mktemp("ref") / "sweep", local_pool, policy=GATED, **KILL)


def cli(out, workers, resume=False):
    cmd = [sys.executable, "-m", "robogate.cli", "sweep", "--env", ENV_ID, "--policy", GATED,
           "--n-lhs", str(KILL["n_lhs"]), "--n-boundary", str(KILL["n_boundary"]),
           "--batch-size", str(KILL["batch_size"]), "--seed", str(KILL["seed"]),
           "--workers", str(workers), "--out", str(out)]
    return cmd + (["--resume"] if resume else [])


def children(pid):
    pids = set()
    for path in glob.glob(f"/proc/{pid}/task/*/children"):
        try:
            pids.update(int(p) for p in Path(path).read_text().split())
        except OSError:
            pass
    return pids


def alive(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for(condition, what, proc=None, limit=600):
    """Poll ``condition()`` until it holds (the limit only turns a hang into a failure)."""
    deadline = time.monotonic() + limit
    while not condition():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the sweep ended while waiting for {what}: {proc.stderr.read()}")
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def stored_rows(out):
    try:
        return len(SweepStore.open(out).read())
    except (StoreError, FileNotFoundError):
        return 0


def kill_after(out, workers, finished, tmp_path, cmd=None, env=None):
    """Run the CLI sweep (``cmd``, default :func:`cli`; ``env``, default this process's) until exactly
    ``finished`` episodes are stored and every worker is blocked at the gate, SIGKILL it there, and
    return the store's rows."""
    gate = tmp_path / "gate"
    gate.mkdir()
    env = {**(os.environ if env is None else env), "ROBOGATE_TEST_GATE": f"{gate}:{finished}"}
    proc = subprocess.Popen(cmd or cli(out, workers), cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(list(gate.glob("blocked-*"))) == workers, "every worker to block", proc)
        wait_for(lambda: stored_rows(out) == finished, f"{finished} stored experiments", proc)
        worker_pids = children(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None and proc.returncode is None:
            proc.kill()
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    # the killed sweep's workers notice and exit on their own
    wait_for(lambda: not any(alive(p) for p in worker_pids), "the workers to exit", limit=120)
    return SweepStore.open(out).read()


def resume_and_check(out, workers, reference, killed):
    env = {k: v for k, v in os.environ.items() if k != "ROBOGATE_TEST_GATE"}
    res = subprocess.run(cli(out, workers, resume=True), cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert f"rows: {N_KILL}" in res.stdout and "success rate" in res.stdout
    assert BANNER not in res.stdout + res.stderr
    final = SweepStore.open(out).read()
    assert final["id"].tolist() == list(range(N_KILL))  # no duplicates, none missing
    pd.testing.assert_frame_equal(comparable(final), comparable(reference))
    # experiments finished before the kill were kept, not run again
    kept = final.set_index("id").loc[killed["id"], "wall_time"]
    assert kept.tolist() == killed["wall_time"].tolist()
    assert SweepStore.open(out).manifest["complete"] is True


@pytest.mark.slow
def test_kill_in_stage_1_then_resume(tmp_path, reference):
    out = tmp_path / "sweep"
    killed = kill_after(out, 2, 10, tmp_path)
    assert len(killed) == 10 and (killed["stage"] == 1).all()
    assert SweepStore.open(out).planned()["batch"].max() == 0
    resume_and_check(out, 2, reference, killed)


@pytest.mark.slow
def test_kill_in_stage_2_then_resume(tmp_path, reference):
    out = tmp_path / "sweep"
    finished = KILL["n_lhs"] + KILL["batch_size"] + 2  # stage 1, a boundary batch, half the next
    killed = kill_after(out, 1, finished, tmp_path)
    assert len(killed) == finished and (killed["stage"] == 2).sum() == KILL["batch_size"] + 2
    assert SweepStore.open(out).planned()["batch"].max() == 2
    resume_and_check(out, 1, reference, killed)


# ------------------------------------------------------------------------- input checks


def test_unknown_env_id(tmp_path):
    with pytest.raises(ValueError, match="unknown env id 'robogate/Nope-v0'") as info:
        run_sweep("robogate/Nope-v0", "scripted", tmp_path / "x", n_lhs=2, n_boundary=0)
    assert all(e in str(info.value) for e in robogate.ENV_IDS)
    assert not (tmp_path / "x").exists()


def test_unknown_policy(tmp_path):
    with pytest.raises(ValueError, match="bad policy spec 'nosuch.module:Policy'"):
        run_sweep(ENV_ID, "nosuch.module:Policy", tmp_path / "x", n_lhs=2, n_boundary=0)
    with pytest.raises(ValueError, match="bad policy spec 'magic'"):
        run_sweep(ENV_ID, "magic", tmp_path / "x", n_lhs=2, n_boundary=0)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "space, message",
    [
        (ParameterSpace([Continuous("gravity", 1.0, 10.0)]), "'gravity' is not a parameter"),
        (ParameterSpace([Continuous("friction", 0.01, 3.0, log=True)]), "'friction' takes .* accepts"),
        (ParameterSpace([Categorical("shape", ["box", "torus"])]), "'shape' takes .*'torus'"),
        (ParameterSpace([Continuous("obstacles", 0.0, 4.0)]), "'obstacles' must be integer"),
        ("friction", "expected a ParameterSpace"),
        ({"dimensions": [{"kind": "blob", "name": "x"}]}, "unknown dimension kind"),
    ],
)
def test_bad_space(tmp_path, space, message):
    with pytest.raises(ValueError, match="bad space: " + message):
        run_sweep(ENV_ID, "scripted", tmp_path / "x", space=space, n_lhs=2, n_boundary=0)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"n_lhs": -1}, "n_lhs"),
        ({"band": (0.7, 0.3)}, "band"),
        ({"seed": -3}, "seed"),
        ({"executor": "dask"}, "unknown executor"),
        ({"workers": 0}, "workers"),
        ({"address": "auto"}, "only used by the 'ray' executor"),
    ],
)
def test_bad_settings(tmp_path, overrides, message):
    kwargs = {"n_lhs": 2, "n_boundary": 0, **overrides}
    with pytest.raises(ValueError, match=message):
        run_sweep(ENV_ID, "scripted", tmp_path / "x", **kwargs)
    assert not (tmp_path / "x").exists()


def test_unwritable_out(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="not writable"):
        run_sweep(ENV_ID, "scripted", blocker / "sweep", n_lhs=2, n_boundary=0)
    with pytest.raises(StoreError, match="not a folder"):
        run_sweep(ENV_ID, "scripted", blocker, n_lhs=2, n_boundary=0)


@pytest.mark.slow
def test_existing_out_needs_resume(local_runs, tmp_path):
    out = local_runs[0]
    with pytest.raises(ValueError, match=r"already holds a sweep; continue it with resume=True \(--resume\)"):
        run_sweep(ENV_ID, "scripted", out, **SMALL)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="not empty and holds no sweep"):
        run_sweep(ENV_ID, "scripted", tmp_path / "other", **SMALL)


@pytest.mark.slow
@pytest.mark.parametrize(
    "change, field",
    [
        ({"env_id": "robogate/PickPlace-UR5e-v0"}, "env_id"),
        ({"policy": "tests.helpers:RaisingPolicy"}, "policy"),
        ({"seed": 12}, "seed"),
        ({"n_lhs": 13}, "n_lhs"),
        ({"n_boundary": 7}, "n_boundary"),
        ({"band": (0.2, 0.8)}, "band"),
        ({"batch_size": 2}, "batch_size"),
        ({"space": ParameterSpace([Continuous("friction", 0.05, 1.2, log=True)])}, "space"),
    ],
)
def test_resume_with_other_settings_is_refused(local_runs, change, field):
    out = local_runs[0]
    kwargs = {**SMALL, "env_id": ENV_ID, "policy": "scripted", **change}
    env_id, policy = kwargs.pop("env_id"), kwargs.pop("policy")
    with pytest.raises(ValueError, match=f"cannot resume .*: {field} differs"):
        run_sweep(env_id, policy, out, resume=True, **kwargs)


def test_resume_checks_the_plan_against_the_sampler(tmp_path):
    out = tmp_path / "sweep"
    config = SweepConfig.build(ENV_ID, "scripted", n_lhs=4, n_boundary=0, seed=0)
    store = SweepStore.create(out, config.to_manifest())
    points = config.sampler().ask()
    points[2] = {**points[2], "mass": 1.0}
    store.plan([{"id": i, "stage": 1, "batch": 0, "seed": trial_seed(0, i), **p} for i, p in enumerate(points)])
    with pytest.raises(ValueError, match="experiment 2 was planned as .* but the sampler now gives"):
        run_sweep(ENV_ID, "scripted", out, n_lhs=4, n_boundary=0, seed=0, resume=True,
                  executor="local", workers=1, progress=False)
    assert len(SweepStore.open(out)) == 0


def test_raising_policy_gives_error_rows_and_the_sweep_goes_on(tmp_path, local_pool):
    df = sweep(tmp_path / "sweep", local_pool, policy="tests.helpers:RaisingPolicy",
               n_lhs=4, n_boundary=2, batch_size=2)
    assert len(df) == 6 and (df["outcome"] == "error").all() and not df["success"].any()
    assert df["error"].str.contains("the policy raised RuntimeError: policy exploded on purpose").all()
    summary = summarize_sweep(df)
    assert summary["errors"] == 6 and summary["first_error"] == "the policy raised RuntimeError: policy exploded on purpose"
    line = [t for t in format_summary(summary).splitlines() if t.startswith("errors: ")]
    assert line == ["errors: 6 of 6 experiments errored (the policy raised or the simulation diverged: a broken "
                    "harness, not a failure of the policy); first: the policy raised RuntimeError: policy exploded on purpose"]


# ------------------------------------------------------------------------------ summary


def test_summarize():
    df = pd.DataFrame({
        "id": range(6),
        "stage": [1, 1, 1, 1, 2, 2],
        "success": [True, False, False, True, True, False],
        "outcome": ["success", "grasp_miss", "grasp_miss", "success", "success", "error"],
    })
    s = summarize_sweep(df, elapsed=3.0)
    assert s["rows"] == 6 and s["success_rate"] == 0.5 and s["uniform_rows"] == 4  # over the uniform rows
    assert s["success_rate_by_stage"] == {1: 0.5, 2: 1.0}  # the errored experiment is neither success nor failure
    assert s["rows_by_stage"] == {1: 4, 2: 2}
    assert s["outcomes"] == {"success": 3, "grasp_miss": 2, "error": 1} and s["gate_outcomes"] == {}
    assert s["errors"] == 1 and s["elapsed"] == 3.0 and s["episodes_per_second"] == 2.0
    text = format_summary(s)
    assert "rows: 6" in text and "stage 2: 100.0% of 2 (boundary-focused)" in text and "grasp_miss 2 (33%)" in text
    assert "success rate: 50.0% of the 4 uniform (stage-1) experiments, errored experiments left out" in text
    assert "elapsed: 3.0 s" in text
    empty = summarize_sweep(df.iloc[:0])
    assert empty["rows"] == 0 and empty["outcomes"] == {} and empty["elapsed"] is None
    assert "rows: 0" in format_summary(empty)


def test_the_gates_runs_leave_the_headline_alone():
    sweep = pd.DataFrame({"id": range(6), "stage": [1, 1, 1, 1, 2, 2], "success": [True, False, False, False, True, True],
                          "outcome": ["success", "collision", "collision", "grasp_miss", "success", "success"]})
    gate = pd.DataFrame({"id": range(6, 16), "stage": 3, "success": True, "outcome": "success"})
    before, after = summarize_sweep(sweep), summarize_sweep(pd.concat([sweep, gate], ignore_index=True))
    assert after["success_rate"] == before["success_rate"] == 0.25
    assert after["outcomes"] == before["outcomes"] and after["gate_outcomes"] == {"success": 10}
    text = format_summary(after)
    assert "success rate: 25.0% of the 4 uniform (stage-1) experiments" in text
    assert "gate runs, apart: success 10 (100%)" in text
