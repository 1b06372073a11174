"""The examples a lab copies (examples/): panda-gym's pick-and-place on PyBullet and gymnasium-robotics'
Fetch push on MuJoCo, each a third-party env wrapped with robogate.ScenarioWrapper, through every command:
sweep, kill -9 and resume, report, gate --run, a suite, compare, rollouts, the monitor and MonitoredEnv.

The examples are named as Gymnasium names them (``panda_pick_place:PickPlace-v0``); with examples/ on
the path, as a lab's own package would be installed, every worker process imports them.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from dataclasses import dataclass

import gymnasium as gym
import gymnasium_robotics
import numpy as np
import pandas as pd
import pytest

import robogate
from robogate.datasets.store import SweepStore
from robogate.execution.specs import make_policy
from robogate.monitor import FailureMonitor, MonitoredEnv, record_rollouts
from robogate.reports.suite import write_suite_report
from robogate.scenarios.envelope import Envelope
from robogate.sweep.run import run_sweep
from tests.helpers import comparable
from tests.test_sweep import REPO, kill_after

pytestmark = pytest.mark.slow  # every example runs a real third-party simulator

gym.register_envs(gymnasium_robotics)
EXAMPLES = REPO / "examples"
CLI = [sys.executable, "-m", "robogate.cli"]
SETTINGS = dict(n_lhs=16, n_boundary=8, batch_size=4, seed=2)
N = SETTINGS["n_lhs"] + SETTINGS["n_boundary"]


@dataclass(frozen=True)
class Example:
    """One example and what its tests need to know of it."""

    module: str
    env_id: str
    policy: str
    obs_size: int
    engine: tuple[str, str]
    """The env's distribution and its physics engine's, as the sweep's provenance names them."""
    failing: tuple[dict, ...]
    """Scenes where the controller fails, each for a reason of its own."""
    safe: tuple[str, ...]
    """An envelope (the --envelope syntax) where the controller does not fail."""
    suite: str
    novel: dict
    """A scene the monitor, calibrated in the training envelope, alarms on mid-episode."""
    gated: str
    """The controller, stoppable by the kill test (see tests.helpers.GatedPolicy)."""
    slowed: str
    """The controller retuned too cautiously: the candidate compare finds worse."""


SUITE = """
name = "{name}"
version = 1
seed = 21
seeds = 5

[categories.nominal]
target = [0.9, 1.0]

[categories.adversarial]
target = [0.0, 0.5]

[[scenarios]]
id = "nominal"
category = "nominal"
params = {{ mass = {mass} }}

[[scenarios]]
id = "reliable"
category = "nominal"
envelope = {{ {safe} }}

[[scenarios]]
id = "hostile"
category = "adversarial"
params = {{ {hostile} }}
"""

PANDA = Example(
    "panda_pick_place", "panda_pick_place:PickPlace-v0", "panda_pick_place:PickPlacePolicy", 22,
    ("panda-gym", "pybullet"),
    failing=({"mass": 8.0, "friction": 0.05}, {"obs_noise": 0.015}),
    safe=("mass=0.3:3", "friction=0.2:1", "obs_noise=0", "action_noise=0", "latency=0"),
    suite=SUITE.format(name="pick-place-mini", mass=1.0, safe='mass = "0.3:3", friction = "0.2:1"',
                       hostile="mass = 8.0, friction = 0.05"),
    novel={"latency": 4}, gated="tests.helpers:gated_pick_place_policy", slowed="tests.helpers:slowed_pick_place_policy",
)
FETCH = Example(
    "fetch_push", "fetch_push:Push-v0", "fetch_push:PushPolicy", 28,
    ("gymnasium-robotics", "mujoco"),
    failing=({"friction": 0.05}, {"size": 0.08}),
    safe=("mass=0.5:10", "friction=0.5:2", "size=0.03:0.05", "obs_noise=0", "action_noise=0", "latency=0"),
    suite=SUITE.format(name="push-mini", mass=2.0, safe='mass = "0.5:10", friction = "0.5:2"',
                       hostile="friction = 0.05"),
    novel={"latency": 3}, gated="tests.helpers:gated_push_policy", slowed="tests.helpers:slowed_push_policy",
)
EXAMPLE_PARAMS = [pytest.param(PANDA, id="panda"), pytest.param(FETCH, id="fetch")]


def examples_environ(**extra):
    """This process's environment with examples/ on PYTHONPATH."""
    path = os.pathsep.join(p for p in (str(EXAMPLES), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


def robogate_cli(*args):
    return subprocess.run([*CLI, *map(str, args)], cwd=REPO, env=examples_environ(), capture_output=True,
                          text=True, timeout=600)


def sweep_args(example, out, policy, workers):
    return ["sweep", "--env", example.env_id, "--policy", policy, "--n-lhs", SETTINGS["n_lhs"],
            "--n-boundary", SETTINGS["n_boundary"], "--batch-size", SETTINGS["batch_size"], "--seed",
            SETTINGS["seed"], "--workers", workers, "--out", out, "--no-progress"]


@pytest.fixture(scope="module", autouse=True)
def examples_on_path():
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(EXAMPLES))
        yield


@pytest.fixture(scope="module", params=EXAMPLE_PARAMS)
def example(request):
    return request.param


@pytest.fixture(scope="module")
def space(example):
    env = gym.make(example.env_id)
    yield env.get_wrapper_attr("parameter_space")
    env.close()


def python_sweep(example, out, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the sampler's band warnings
        return run_sweep(example.env_id, example.policy, out, workers=1, progress=False, **SETTINGS, **kwargs)


@pytest.fixture(scope="module")
def reference(example, space, tmp_path_factory):
    """The example swept from Python, uninterrupted."""
    out = tmp_path_factory.mktemp(example.module) / "sweep"
    return out, python_sweep(example, out)


# ------------------------------------------------------------------------- the examples themselves

def wrapper_lines(example):
    """The lines of code (not blank, not comments) the example adds to its controller for robogate."""
    text = (EXAMPLES / f"{example.module}.py").read_text()
    part = text.split("# --- robogate:", 1)[1].splitlines()[1:]
    return [line for line in part if line.strip() and not line.strip().startswith("#")]


@pytest.mark.parametrize("example", EXAMPLE_PARAMS)
def test_the_wrapper_is_at_most_25_lines_on_top_of_the_controller(example):
    lines = wrapper_lines(example)
    assert len(lines) <= 25, "\n".join(lines)
    assert any("ScenarioWrapper(" in line for line in lines) and any("gym.register(" in line for line in lines)


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLE_PARAMS)
def test_the_controller_succeeds_at_nominal_and_the_physics_makes_it_fail(example):
    env = gym.make(example.env_id)
    policy = make_policy(example.policy)
    nominal = [robogate.run_episode(env, policy, {}, seed=s) for s in range(10)]
    assert sum(r["success"] for r in nominal) >= 9, [r["outcome"] for r in nominal]
    for scene in example.failing:
        records = [robogate.run_episode(env, policy, scene, seed=s) for s in range(10)]
        assert sum(r["success"] for r in records) <= 3, (scene, [r["outcome"] for r in records])
        assert all(r["error"] is None for r in records)  # failures of the task, not of the harness
    env.close()


def test_wrapper_flattens_a_float64_dict_observation_into_float32_without_a_warning():
    space = robogate.ParameterSpace([robogate.Continuous("mass", 0.2, 50.0, log=True, nominal=2.0)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Gymnasium warns when a Box's bounds lose precision
        env = robogate.ScenarioWrapper(gym.make("FetchPush-v4"), space, observation_keys=("observation", "desired_goal"))
    obs, _ = env.reset(seed=0)
    assert env.observation_space.shape == (28,) and env.observation_space.dtype == np.float32
    assert obs.dtype == np.float32 and env.observation_space.contains(obs)
    env.close()


# ------------------------------------------------------------------------- sweep, resume, report, gate

@pytest.mark.slow
def test_the_sweep_runs_in_the_env_space_with_its_clock_and_provenance(example, space, reference):
    out, df = reference
    assert df["id"].tolist() == list(range(N)) and set(df["stage"]) == {1, 2}
    assert (df["env_id"] == example.env_id).all() and (df["error"].isna()).all()
    settings = robogate.load_sweep(out).attrs["settings"]
    assert settings["space"] == space and settings["env_id"] == example.env_id
    assert set(space.names) >= {"mass", "friction", "obs_noise", "action_noise", "latency"}
    assert set(df["outcome"]) == {"success", "failure"}  # the env names no failure modes of its own
    np.testing.assert_allclose(df["sim_time"], df["steps"] / 25.0)  # both run at 25 control steps a second
    package, engine = example.engine
    assert package in settings["versions"] and engine in settings["versions"]
    assert ("pybullet" in settings["versions"]) == (engine == "pybullet")


@pytest.mark.slow
def test_report_reads_the_stored_sweep(example, reference, tmp_path):
    res = robogate_cli("report", reference[0], "--out", tmp_path / "report")
    assert res.returncode == 0, res.stderr
    html = (tmp_path / "report" / "report.html").read_text()
    assert example.env_id in html and "friction" in html and "latency" in html


@pytest.mark.slow
def test_gate_run_passes_the_envelope_where_the_controller_is_reliable(example, space, reference, tmp_path):
    out = tmp_path / "sweep"
    shutil.copytree(reference[0], out)  # gate --run appends to the sweep
    flags = [f for entry in example.safe for f in ("--envelope", entry)] + ["--max-failure-rate", "0.1"]
    res = robogate_cli("gate", out, *flags, "--run", "--workers", 1, "--batch-size", 20, "--no-progress")
    assert res.returncode == 0, res.stdout + res.stderr
    envelope = Envelope.parse(example.safe, space)
    df = robogate.load_sweep(out)
    added = df[df["stage"] == 3]
    assert len(added) >= 29 and envelope.mask(added).all()  # 29 failure-free trials bound 10 % at 95 %
    assert robogate.gate(df, space, envelope, max_failure_rate=0.1).verdict == "pass"


@pytest.mark.slow
def test_a_cli_sweep_killed_in_stage_2_resumes_row_for_row(example, reference, tmp_path):
    out = tmp_path / "sweep"
    finished = SETTINGS["n_lhs"] + SETTINGS["batch_size"] + 1
    cmd = [*CLI, *map(str, sweep_args(example, out, example.gated, 2))]
    killed = kill_after(out, 2, finished, tmp_path, cmd=cmd, env=examples_environ())
    assert len(killed) == finished and (killed["stage"] == 2).sum() == SETTINGS["batch_size"] + 1
    res = robogate_cli("sweep", "--out", out, "--resume", "--workers", 2, "--no-progress")
    assert res.returncode == 0, res.stderr
    assert f"rows: {N}" in res.stdout
    final = SweepStore.open(out).read()
    assert final["id"].tolist() == list(range(N))  # none missing, none twice
    reference_rows = comparable(reference[1]).assign(policy=example.gated)
    pd.testing.assert_frame_equal(comparable(final), reference_rows)
    kept = final.set_index("id").loc[killed["id"], "wall_time"]
    assert kept.tolist() == killed["wall_time"].tolist()  # finished before the kill: kept, not run again


# ------------------------------------------------------------------------- suites and compare

@pytest.fixture(scope="module")
def suite_runs(example, tmp_path_factory):
    """The controller and a too-cautious retune of it, each run on a small suite of the env's own space."""
    folder = tmp_path_factory.mktemp(f"{example.module}-suite")
    path = folder / "suite.toml"
    path.write_text(textwrap.dedent(example.suite))
    runs = {name: robogate.run_suite(example.env_id, policy, suite=path, out=folder / name, workers=1,
                                     progress=False)
            for name, policy in (("baseline", example.policy), ("candidate", example.slowed))}
    return path, runs


@pytest.mark.slow
def test_a_suite_of_the_env_space_runs_and_reports(example, suite_runs):
    path, runs = suite_runs
    baseline = runs["baseline"]
    assert baseline.complete and len(baseline.table) == 15 and baseline.env_id == example.env_id
    info = json.loads((baseline.path / "eval_info.json").read_text())
    assert info["overall"]["n_episodes"] == 15
    rates = baseline.table.groupby("scenario")["success"].mean()
    assert rates["nominal"] >= 0.8 and rates["reliable"] >= 0.8 and rates["hostile"] <= 0.4
    assert write_suite_report(baseline) == baseline.path / "report" / "report.html"


def test_a_suite_naming_another_space_is_refused_and_leaves_nothing_behind(example, tmp_path):
    path = tmp_path / "suite.toml"
    path.write_text(textwrap.dedent(SUITE.format(name="other", mass=1.0, safe='placement = "center"',
                                                 hostile="shape = \"box\"")))
    with pytest.raises(ValueError, match="placement"):
        robogate.run_suite(example.env_id, example.policy, suite=path, out=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_compare_pairs_the_two_runs_and_finds_the_retune_worse(example, suite_runs):
    _, runs = suite_runs
    result = robogate.compare(runs["candidate"], runs["baseline"])
    assert result.verdict == "worse"
    pairs = result.pairs
    assert len(pairs) == 15 and set(result.env_ids) == {example.env_id}
    by_id = runs["baseline"].table.set_index("seed")
    assert pairs["baseline_success"].tolist() == by_id.loc[pairs["seed"], "success"].tolist()
    assert pairs["candidate_success"].sum() < pairs["baseline_success"].sum()


# ------------------------------------------------------------------------- rollouts and the monitor

@pytest.fixture(scope="module")
def calibrated(example):
    """Rollouts of the controller in the env's declared training envelope, and a monitor calibrated on them."""
    rollouts = record_rollouts(example.env_id, example.policy, episodes=12, seed=1, progress=False)
    return rollouts, FailureMonitor(alpha=0.2, scores=["obs_rnd"]).fit(rollouts)


@pytest.mark.slow
def test_rollouts_are_drawn_in_the_declared_training_envelope(example, space, calibrated):
    rollouts, _ = calibrated
    envelope = gym.make(example.env_id).get_wrapper_attr("training_envelope")
    assert len(rollouts) == 12 and sum(r.success for r in rollouts) >= 10
    for r in rollouts:
        assert space.validate(r.params) == r.params
        assert all(low <= r.params[name] <= high for name, (low, high) in envelope.items())
        assert r.params["latency"] == 0 and r.params["obs_noise"] == 0.0  # the rest nominal
        assert r.observations.shape[1] == example.obs_size and r.embeddings is None
    assert len({r.params["mass"] for r in rollouts}) == 12  # spread over the envelope


def monitored_episode(example, monitor, on_alarm):
    """One episode in a control loop, in a scene the monitor has not seen (late commands)."""
    env = MonitoredEnv(gym.make(example.env_id), make_policy(example.policy), monitor,
                       on_alarm=on_alarm)
    policy = env.controller.policy
    obs, info = env.reset(seed=0, options={"params": example.novel})
    steps, hands = [], []
    while True:
        obs, _, terminated, truncated, info = env.step(policy.act(obs))
        steps.append(info)
        hands.append(np.asarray(obs[:3]))  # the hand's position
        if terminated or truncated:
            env.close()
            return steps, np.array(hands)


def test_monitored_env_holds_the_robot_still_on_its_4d_action(example, calibrated):
    steps, hands = monitored_episode(example, calibrated[1], "hold")
    alarm, latency = steps[-1]["alarm_step"], example.novel["latency"]
    assert alarm is not None and len(steps) > alarm + latency + 5
    assert [s["action_source"] for s in steps[alarm:]] == ["hold"] * (len(steps) - alarm)
    # the hold action is zero displacement: once the commands already on their way have run, the hand stays
    moving = np.abs(np.diff(hands[:alarm], axis=0)).max()
    held = hands[alarm + latency + 1:]
    assert moving > 0.01 and np.abs(held - held[0]).max() < 0.005


def test_monitored_env_stops_at_the_alarm(example, calibrated):
    steps, _ = monitored_episode(example, calibrated[1], "stop")
    last = steps[-1]
    assert last["alarm_step"] is not None and last["outcome"] == "stopped" and last["success"] is False
    assert last["action_source"] == "stop" and len(steps) == last["alarm_step"] + 1
    assert last["params"]["latency"] == example.novel["latency"]


def test_monitored_env_flags_and_lets_the_policy_go_on(example, calibrated):
    steps, _ = monitored_episode(example, calibrated[1], "flag")
    last = steps[-1]
    assert last["alarm_step"] is not None and last["alarm_step"] < len(steps) - 1
    assert all(s["action_source"] == "policy" for s in steps)
    assert last["success"] is not None and "outcome" not in last  # the episode ran to the env's own end
