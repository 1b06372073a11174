"""A lab's own env (tests/mylab_envs.py, outside the package) sweeps, resumes, reports and gates as robogate's do.

The env is named as Gymnasium names it, ``mylab_envs:Slide-v0``; with tests/ on the path (as a
lab's installed package would be) every worker process imports the module and finds it.
"""

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import pandas as pd
import pytest

import robogate
from robogate.datasets.store import SweepStore
from robogate.monitor import record_rollouts
from robogate.scenarios.envelope import Envelope
from robogate.sweep.run import run_sweep
from tests.helpers import comparable
from tests.test_sweep import REPO, kill_after

TESTS = Path(__file__).resolve().parent
ENV = "mylab_envs:Slide-v0"
POLICY = "tests.helpers:gated_slide_policy"  # mylab_envs.SlidePolicy, stoppable by the kill tests
SETTINGS = dict(n_lhs=40, n_boundary=16, batch_size=4, seed=3)
N = SETTINGS["n_lhs"] + SETTINGS["n_boundary"]
ENVELOPE = ["friction=0.45:1", "mass=0.2:1", "latency=0", "surface=dry"]
"""A dry, light puck and a latency-free sensor: where the lab's controller never failed in 2,000 tries."""


def lab_environ():
    """This process's environment with tests/ on PYTHONPATH, so that ``mylab_envs`` imports."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH")) if p)}


CLI = [sys.executable, "-m", "robogate.cli"]


def robogate_cli(*args, env=None):
    return subprocess.run([*CLI, *map(str, args)], cwd=REPO, env=env if env is not None else lab_environ(),
                          capture_output=True, text=True, timeout=600)


def sweep_args(out, workers):
    return ["sweep", "--env", ENV, "--policy", POLICY, "--n-lhs", str(SETTINGS["n_lhs"]),
            "--n-boundary", str(SETTINGS["n_boundary"]), "--batch-size", str(SETTINGS["batch_size"]),
            "--seed", str(SETTINGS["seed"]), "--workers", str(workers), "--out", str(out), "--no-progress"]


@pytest.fixture(scope="module")
def lab():
    """``mylab_envs`` importable in this process; its space, as the env declares it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(TESTS))
        env = gym.make(ENV)
        yield env.unwrapped.parameter_space
        env.close()


def python_sweep(out, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the sampler's band warnings
        return run_sweep(ENV, POLICY, out, workers=1, progress=False, **SETTINGS, **kwargs)


@pytest.fixture(scope="module")
def reference(lab, tmp_path_factory):
    """The sweep run from Python, uninterrupted: what every other way of running it must reproduce."""
    out = tmp_path_factory.mktemp("lab") / "sweep"
    return out, python_sweep(out)


@pytest.mark.slow
def test_the_sweep_uses_the_env_space_and_its_outcomes(lab, reference):
    out, df = reference
    assert df["id"].tolist() == list(range(N)) and set(df["stage"]) == {1, 2}
    assert (df["env_id"] == ENV).all()
    settings = robogate.load_sweep(out).attrs["settings"]
    assert settings["space"] == lab and settings["env_id"] == ENV
    assert df[lab.names].columns.tolist() == ["friction", "mass", "distance", "latency", "surface"]
    # the env names "fell_off"; its other failures are robogate's "failure"; success is info["success"]
    assert {"success", "failure", "fell_off"} <= set(df["outcome"]) <= {"success", "failure", "fell_off", "timeout"}
    assert (df["success"] == (df["outcome"] == "success")).all()
    # the failures come from the dynamics: a slipperier surface overshoots
    slippery = df[(df["surface"] == "dry") & (df["friction"] < 0.25)]
    assert len(slippery) and not slippery["success"].any()
    zones = robogate.danger_zones(df, lab)
    assert len(zones) and set(zones["class"]) <= {"danger", "boundary", "safe"}


@pytest.mark.slow
def test_stored_sweep_reads_and_reports_without_the_env(reference, tmp_path):
    out, df = reference
    no_lab = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = ("import sys, robogate; df = robogate.load_sweep(sys.argv[1]); "
            "assert 'mylab_envs' not in sys.modules; print(len(df), df.attrs['settings']['space'].names)")
    res = subprocess.run([sys.executable, "-c", code, str(out)], cwd=tmp_path, env=no_lab, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split()[0] == str(N) and "'surface'" in res.stdout
    report = robogate_cli("report", out, "--out", tmp_path / "report", env=no_lab)
    assert report.returncode == 0, report.stderr
    html = (tmp_path / "report" / "report.html").read_text()
    assert ENV in html and "fell_off" in html and "distance" in html


def test_rollouts_draw_scenes_in_the_env_space(lab):
    rollouts = record_rollouts(ENV, "mylab_envs:SlidePolicy", episodes=6, seed=1, progress=False)
    assert len(rollouts) == 6
    assert all(set(r.params) == set(lab.names) and lab.validate(r.params) == r.params for r in rollouts)
    assert len({r.params["friction"] for r in rollouts}) == 6  # a design over the env's whole space
    assert all(r.success == (r.outcome == "success") for r in rollouts)
    assert all((r.failure_step is None) == r.success for r in rollouts)


def check_resumed(out, reference, killed):
    final = SweepStore.open(out).read()
    assert final["id"].tolist() == list(range(N))  # none missing, none twice
    pd.testing.assert_frame_equal(comparable(final), comparable(reference[1]))
    kept = final.set_index("id").loc[killed["id"], "wall_time"]
    assert kept.tolist() == killed["wall_time"].tolist()  # finished before the kill: kept, not run again


@pytest.mark.slow
def test_cli_sweep_killed_in_stage_2_resumes_from_the_cli(reference, tmp_path):
    out = tmp_path / "sweep"
    finished = SETTINGS["n_lhs"] + SETTINGS["batch_size"] + 2
    killed = kill_after(out, 2, finished, tmp_path, cmd=[*CLI, *sweep_args(out, 2)], env=lab_environ())
    assert len(killed) == finished and (killed["stage"] == 2).sum() == SETTINGS["batch_size"] + 2
    res = robogate_cli("sweep", "--out", out, "--resume", "--workers", 2, "--no-progress")
    assert res.returncode == 0, res.stderr
    assert f"rows: {N}" in res.stdout and "fell_off" in res.stdout
    check_resumed(out, reference, killed)


@pytest.mark.slow
def test_cli_sweep_killed_in_stage_1_resumes_from_python(reference, tmp_path):
    out = tmp_path / "sweep"
    killed = kill_after(out, 1, 12, tmp_path, cmd=[*CLI, *sweep_args(out, 1)], env=lab_environ())
    assert len(killed) == 12 and (killed["stage"] == 1).all()
    df = python_sweep(out, resume=True)
    assert df.attrs["resumed"]
    check_resumed(out, reference, killed)


@pytest.mark.slow
def test_gate_and_gate_run(lab, reference, tmp_path):
    out = tmp_path / "sweep"
    shutil.copytree(reference[0], out)  # gate --run appends to the sweep
    limit = ["--max-failure-rate", "0.05"]
    flags = [f for entry in ENVELOPE for f in ("--envelope", entry)] + limit
    envelope = Envelope.parse(ENVELOPE, lab)
    before = robogate.gate(robogate.load_sweep(out), lab, envelope, max_failure_rate=0.05)
    res = robogate_cli("gate", out, *flags)
    assert res.returncode == before.exit_code and res.stdout.strip() == before.reason
    assert before.verdict == "inconclusive"  # a few dozen uniform rows hold few experiments inside

    run = robogate_cli("gate", out, *flags, "--run", "--workers", 2, "--batch-size", 20, "--no-progress")
    assert run.returncode == 0, run.stdout + run.stderr
    df = robogate.load_sweep(out)
    added = df[df["stage"] == 3]
    assert len(added) and added["env_id"].eq(ENV).all() and envelope.mask(added).all()
    assert robogate.gate(df, lab, envelope, max_failure_rate=0.05).verdict == "pass"
    assert robogate_cli("gate", out, *flags).returncode == 0


@pytest.mark.slow
def test_ray_workers_import_the_env_module(reference, tmp_path):
    pytest.importorskip("ray")
    out = tmp_path / "sweep"
    res = robogate_cli(*sweep_args(out, 2), "--executor", "ray")  # Ray workers start with PYTHONPATH too
    assert res.returncode == 0, res.stderr
    pd.testing.assert_frame_equal(comparable(robogate.load_sweep(out)), comparable(reference[1]))
