"""A third-party env given a scenario space: robogate.ScenarioWrapper, and a lab's own wrapper or env.

Gymnasium's Pendulum stands in for a lab's simulator (``tests/lab_pendulum.py``): its swing-up
controller fails on a pendulum too heavy for its torque, and under noise or latency.
"""

import math
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import robogate
from robogate import Continuous, Integer, ParameterSpace, ScenarioWrapper
from robogate._utils.seeding import trial_seed
from robogate._utils.versions import versions
from robogate.monitor import FailureMonitor, MonitoredEnv, RetreatPolicy, load_rollouts, record_rollouts
from robogate.scenarios.env_contract import control_hz, hold_action, recording_facts, scenario_space
from robogate.sweep.run import run_sweep

TESTS = Path(__file__).resolve().parent
FORMS = ["lab_pendulum:ScenarioPendulum-v0", "lab_pendulum:WrappedPendulum-v0", "lab_pendulum:HoldingPendulum-v0"]
POLICY = "lab_pendulum:SwingUpPolicy"
CLI = [sys.executable, "-m", "robogate.cli"]


@pytest.fixture(scope="module", autouse=True)
def lab():
    """``lab_pendulum`` importable here and in every worker and subprocess."""
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(TESTS))
        mp.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH")) if p))
        import lab_pendulum

        yield lab_pendulum


def cli(*args):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=600)


def pendulum(**kwargs):
    from lab_pendulum import SPACE, set_pendulum, upright

    return ScenarioWrapper(gym.make("Pendulum-v1"), SPACE, apply=set_pendulum,
                           success=lambda env, obs, info: upright(env), **kwargs)


class Executed(gym.Wrapper):
    """Appends every action the wrapped env executes to ``log``."""

    def __init__(self, env, log):
        super().__init__(env)
        self.log = log

    def step(self, action):
        self.log.append(float(np.asarray(action).reshape(-1)[0]))
        return self.env.step(action)


def drive(env, actions, seed=0, params=None):
    obs, info = env.reset(seed=seed, options={"params": params or {}})
    observations, infos = [obs], [info]
    for a in actions:
        obs, _, terminated, truncated, info = env.step(np.asarray(a, dtype=np.float32))
        observations.append(obs)
        infos.append(info)
    return np.array(observations), infos


# ------------------------------------------------------------------------------------------ the wrapper


def test_the_space_gains_the_nuisance_parameters_asked_for_and_refuses_a_clash(lab):
    env = pendulum(obs_noise=0.1, latency=4)
    space = scenario_space(gym.wrappers.TimeLimit(env, 50))  # found through further wrappers
    assert space.names == ["mass", "length", "obs_noise", "latency"]
    assert space["obs_noise"] == Continuous("obs_noise", 0.0, 0.1, nominal=0.0)
    assert space["latency"] == Integer("latency", 0, 4, nominal=0)
    clash = ParameterSpace([Continuous("latency", 0.0, 1.0)])
    with pytest.raises(ValueError, match="already has a parameter named 'latency'"):
        ScenarioWrapper(gym.make("Pendulum-v1"), clash, latency=2)
    with pytest.raises(ValueError, match="action_noise needs a Box action space"):
        ScenarioWrapper(gym.make("CartPole-v1"), lab.SPACE, action_noise=0.1)


def test_apply_sets_the_scene_before_the_env_resets_with_a_seeded_generator(lab):
    seen = []

    def apply(env, params, rng):
        seen.append((env.unwrapped.__class__.__name__, dict(params), rng.random()))
        env.unwrapped.m = params["mass"]

    env = ScenarioWrapper(gym.make("Pendulum-v1"), lab.SPACE, apply=apply, success=lambda e, o, i: True)
    env.reset(seed=5, options={"params": {"mass": 2.0}})
    env.reset(seed=5, options={"params": {"mass": 2.0}})
    env.reset(seed=6)
    assert seen[0][0] == "PendulumEnv" and seen[0][1] == {"mass": 2.0, "length": 1.0}
    assert seen[0][2] == seen[1][2] != seen[2][2]  # the episode's generator is the seed's
    assert env.unwrapped.m == 1.0 and seen[2][1]["mass"] == 1.0  # left out: nominal
    with pytest.raises(ValueError, match="parameter 'mass'"):
        env.reset(options={"params": {"mass": 9.0}})


@pytest.mark.parametrize("flag", [True, 1.0, np.array(True), np.array([1.0])])
def test_success_is_read_from_the_envs_own_info_key(lab, flag):
    class Flagging(gym.Wrapper):
        def step(self, action):
            obs, reward, terminated, truncated, info = self.env.step(action)
            return obs, reward, terminated, truncated, {**info, "is_success": flag}

    env = ScenarioWrapper(Flagging(gym.make("Pendulum-v1", max_episode_steps=3)), lab.SPACE)
    _, infos = drive(env, [[0.0]] * 3)
    assert [i.get("success") for i in infos[1:]] == [None, None, True]
    assert infos[-1]["params"] == lab.SPACE.nominal()


def test_end_on_success_ends_an_env_that_runs_to_its_time_limit(lab):
    env = pendulum(end_on_success=True)
    obs, _ = env.reset(seed=0, options={"params": {"mass": 0.5}})
    policy, steps, terminated, truncated = lab.SwingUpPolicy(), 0, False, False
    while not (terminated or truncated):
        obs, _, terminated, truncated, info = env.step(policy.act(obs))
        steps += 1
    assert terminated and info["success"] is True and steps < 200


def test_a_dict_observation_flattens_in_the_declared_order(lab):
    env = ScenarioWrapper(lab.DictPendulum(gym.make("Pendulum-v1")), lab.SPACE, success=lambda e, o, i: False,
                          observation_keys=("angle", "velocity"))
    raw = lab.DictPendulum(gym.make("Pendulum-v1"))
    obs, _ = env.reset(seed=3)
    expected, _ = raw.reset(seed=3)
    np.testing.assert_array_equal(obs, np.concatenate([expected["angle"], expected["velocity"]]))
    assert env.observation_space.shape == (3,) and env.observation_space.contains(obs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the checker's advice on wrapped envs and action ranges
        check_env(gym.make("lab_pendulum:ScenarioPendulum-v0"), skip_render_check=True)
    with pytest.raises(ValueError, match=r"observation has the keys \['angle', 'velocity'\]"):
        ScenarioWrapper(lab.DictPendulum(gym.make("Pendulum-v1")), lab.SPACE, observation_keys=("position",))


def test_observation_noise_is_zero_at_nominal_seeded_and_inside_the_bounds(lab):
    env = pendulum(obs_noise=0.5)
    clean, _ = drive(gym.make("Pendulum-v1"), [[1.0]] * 5, seed=2)
    nominal, _ = drive(env, [[1.0]] * 5, seed=2)
    np.testing.assert_allclose(nominal, clean)
    noisy, _ = drive(env, [[1.0]] * 5, seed=2, params={"obs_noise": 0.5})
    again, _ = drive(env, [[1.0]] * 5, seed=2, params={"obs_noise": 0.5})
    np.testing.assert_array_equal(noisy, again)
    assert np.abs(noisy - clean).mean() > 0.1 and env.observation_space.contains(noisy[-1].astype(np.float32))


def test_latency_runs_each_action_that_many_steps_late_after_holding_still(lab):
    executed = []
    env = ScenarioWrapper(Executed(gym.make("Pendulum-v1"), executed), lab.SPACE, latency=3, success=lambda e, o, i: False)
    drive(env, [[0.5], [1.0], [1.5], [2.0], [-1.0]], params={"latency": 2})
    assert executed == [0.0, 0.0, 0.5, 1.0, 1.5]  # zeros: the default hold, clipped into the action space
    executed.clear()
    drive(env, [[0.5], [1.0]])
    assert executed == [0.5, 1.0]  # nominal: no latency


def test_action_noise_perturbs_the_executed_action_within_the_space(lab):
    executed = []
    env = ScenarioWrapper(Executed(gym.make("Pendulum-v1"), executed), lab.SPACE, action_noise=3.0,
                          success=lambda e, o, i: False)
    drive(env, [[0.0]] * 40, params={"action_noise": 0.5}, seed=1)
    assert len(set(executed)) == 40 and 0.3 < np.std(executed) < 0.7
    executed.clear()
    drive(env, [[1.9]] * 40, params={"action_noise": 3.0}, seed=1)
    assert min(executed) >= -2.0 and max(executed) <= 2.0 and executed.count(2.0) > 3  # clipped at the limit


def test_the_env_declares_its_clock_hold_and_facts_through_the_wrapper(lab):
    env = gym.make("lab_pendulum:ScenarioPendulum-v0")
    assert control_hz(env) == 20.0 and control_hz(gym.make("Pendulum-v1")) == 30.0  # its render rate
    np.testing.assert_array_equal(hold_action(env, None), [0.0])
    held = ScenarioWrapper(gym.make("Pendulum-v1"), lab.SPACE, hold_action=lambda last: np.array([1.5]))
    np.testing.assert_array_equal(hold_action(gym.wrappers.TimeLimit(held, 10), None), [1.5])
    facts = recording_facts(gym.make("lab_pendulum:HoldingPendulum-v0"), "lab_pendulum:HoldingPendulum-v0")
    assert facts["fps"] == 20.0 and facts["task"] == "lab_pendulum:HoldingPendulum-v0"
    raw = recording_facts(lab.DictPendulum(gym.make("Pendulum-v1")), "x")
    assert raw["observation_names"] == ["angle.0", "angle.1", "velocity.0"]  # Gymnasium's (sorted) order


@pytest.mark.slow
def test_provenance_names_the_envs_own_package_and_no_simulator_it_does_not_use(lab):
    recorded = versions(gym.make("lab_pendulum:ScenarioPendulum-v0"))
    assert recorded["gymnasium"] == robogate_version("gymnasium")  # Pendulum's package
    assert recorded["lab_pendulum"] == "not an installed distribution"
    assert "pybullet" not in recorded and "mujoco" not in recorded
    assert versions(gym.make("robogate/PickPlace-Panda-v0"))["pybullet"] == robogate_version("pybullet")


def robogate_version(dist):
    from importlib.metadata import version

    return version(dist)


# ------------------------------------------------------------------------------- the loop, three ways


@pytest.mark.slow
@pytest.mark.parametrize("env_id", FORMS)
def test_every_form_sweeps_reports_and_gates(lab, env_id, tmp_path):
    out = tmp_path / "sweep"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        df = run_sweep(env_id, POLICY, out, space=lab.SPACE, n_lhs=24, n_boundary=8, batch_size=4, workers=2,
                       progress=False)  # the lab's own parameters; the wrapper's nuisance ones stay nominal
    assert len(df) == 32 and set(df["outcome"]) <= {"success", "failure"}
    assert df["sim_time"].eq(10.0).all()  # 200 steps at the env's own 20 Hz
    heavy = df[(df["stage"] == 1) & (df["mass"] > 3.0)]
    light = df[(df["stage"] == 1) & (df["mass"] < 1.2) & (df["length"] < 1.2)]
    assert len(light) and light["success"].all() and len(heavy) and not heavy["success"].all()
    settings = robogate.load_sweep(out).attrs["settings"]
    assert settings["versions"]["gymnasium"] and "pybullet" not in settings["versions"]
    assert cli("report", out).returncode == 0 and (out / "report" / "report.html").is_file()
    gate = cli("gate", out, "--envelope", "mass=0.5:1.2", "--envelope", "length=0.6:1.2", "--max-failure-rate",
               "0.1", "--run", "--workers", 2, "--no-progress")
    assert gate.returncode == 0, gate.stdout + gate.stderr
    assert gate.stdout.startswith("pass")


@pytest.mark.slow
def test_a_sweep_of_a_policy_object_runs_on_workers_and_resumes_with_the_object(lab, tmp_path):
    out = tmp_path / "sweep"
    policy = lab.SwingUpPolicy()
    settings = dict(n_lhs=12, n_boundary=0, workers=2, progress=False)
    df = run_sweep(FORMS[1], policy, out, **settings)
    assert (df["policy"] == "<lab_pendulum.SwingUpPolicy object>").all() and len(df) == 12
    again = run_sweep(FORMS[1], lab.SwingUpPolicy(), out, resume=True, **settings)
    assert len(again) == 12
    res = cli("sweep", "--out", out, "--resume", "--no-progress")
    assert res.returncode == 2 and "pass that object again from Python" in res.stderr
    res = cli("gate", out, "--envelope", "mass=0.5:1", "--max-failure-rate", "0.1", "--run")
    assert res.returncode == 2 and "pass that object again from Python" in res.stderr


@pytest.mark.slow
def test_a_foreign_env_needs_its_policy_named(lab, tmp_path):
    res = cli("sweep", "--env", FORMS[0], "--n-lhs", 4, "--n-boundary", 0, "--out", tmp_path / "s")
    assert res.returncode == 2 and "name the policy to run on lab_pendulum:ScenarioPendulum-v0" in res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "s").exists()
    res = cli("rollouts", "record", "--env", FORMS[0], "--episodes", 2, "--out", tmp_path / "r")
    assert res.returncode == 2 and "--policy" in res.stderr


SUITE = """
name = "pendulum"
version = 1
seed = 4
seeds = 3

[[scenarios]]
id = "light"
category = "nominal"
params = { mass = 0.8 }

[[scenarios]]
id = "heavy-long"
category = "hard"
envelope = { mass = "3:4", length = "1.3:1.6" }
"""


@pytest.mark.slow
def test_suites_run_compare_and_refuse_another_envs_runs(lab, tmp_path):
    suite = tmp_path / "pendulum.toml"
    suite.write_text(SUITE)
    a = robogate.run_suite(FORMS[0], POLICY, suite=suite, out=tmp_path / "a", workers=2, progress=False)
    b = robogate.run_suite(FORMS[0], POLICY, suite=suite, out=tmp_path / "b", workers=1, progress=False)
    scenes = a.by_scenario().set_index("scenario")
    assert scenes.loc["light", "rate"] == 1.0 and scenes.loc["light", "scene"] == "mass 0.8"
    assert scenes.loc["heavy-long", "rate"] < 1.0
    result = robogate.compare(b, a)
    assert result.verdict == "undecided" and len(result.flipped()) == 0  # the same policy, the same episodes
    other = robogate.run_suite(FORMS[2], POLICY, suite=suite, out=tmp_path / "c", workers=1, progress=False)
    with pytest.raises(ValueError, match="ran on lab_pendulum:HoldingPendulum-v0"):
        robogate.compare(other, a)
    # robogate's own suite is checked against this env's space, and a refused run leaves nothing behind
    res = cli("suite", "run", "--env", FORMS[0], "--policy", POLICY, "--out", tmp_path / "d")
    assert res.returncode == 2 and "unknown parameter(s) ['placement']; valid names are ['mass'" in res.stderr
    assert not (tmp_path / "d").exists()


@pytest.mark.slow
def test_rollouts_monitor_and_every_alarm_response_on_a_dict_observation_env(lab, tmp_path):
    from robogate.monitor.scores import ObservationRND

    env_id = FORMS[0]
    cal = record_rollouts(env_id, POLICY, episodes=20, params={"mass": 0.8}, seed=0, workers=1, progress=False,
                          out=tmp_path / "cal", format="lerobot")
    assert all(r.observations.shape == (200, 3) and r.control_hz == 20.0 for r in cal)
    assert load_rollouts(tmp_path / "cal")[0].control_hz == 20.0
    monitor = FailureMonitor(alpha=0.1, scores=[ObservationRND(epochs=30)]).fit(cal)
    policy = lab.SwingUpPolicy()
    heavy = {"mass": 4.0, "length": 1.6}  # too heavy to swing up: it swings where the light one never did

    def episode(on_alarm, seed):
        env = MonitoredEnv(gym.make(env_id), policy, monitor, on_alarm=on_alarm)
        obs, info = env.reset(seed=seed, options={"params": heavy})
        actions, done = [], False
        while not done:
            obs, _, terminated, truncated, info = env.step(policy.act(obs))
            actions.append(info.get("action_source"))
            done = terminated or truncated
        return info, actions

    flags = [episode("flag", seed) for seed in range(6)]
    alarmed = [seed for seed, (info, _) in enumerate(flags) if info["alarm_step"] is not None]
    assert len(alarmed) >= 3 and not any(info["success"] for info, _ in flags)
    seed = alarmed[0]
    flagged, sources = flags[seed]
    assert set(sources) == {"policy"}
    held, sources = episode("hold", seed)  # the 1-D torque held at the env's hold action
    assert held["alarm_step"] == flagged["alarm_step"] and set(sources[flagged["alarm_step"]:]) == {"hold"}
    stopped, sources = episode("stop", seed)
    assert stopped["outcome"] == "stopped" and stopped["params"]["mass"] == 4.0 and sources[-1] == "stop"
    assert len(sources) == flagged["alarm_step"] + 1
    with pytest.raises(ValueError, match="RetreatPolicy cannot drive this env"):
        MonitoredEnv(gym.make(env_id), policy, monitor, on_alarm="fallback", fallback=RetreatPolicy())


def test_dict_observations_record_flat_in_the_spaces_order_and_feed_the_monitor(lab):
    env_id = "lab_pendulum:DictPendulum-v0"
    rollouts = record_rollouts(env_id, "lab_pendulum:DictSwingUpPolicy", episodes=4, params={"mass": 0.8}, seed=0,
                               workers=1, progress=False)
    first = rollouts[0]
    assert first.success and first.observations.shape == (200, 3)
    env = gym.make(env_id)
    obs, _ = env.reset(seed=trial_seed(0, 0), options={"params": {"mass": 0.8}})
    np.testing.assert_array_equal(first.observations[0], np.concatenate([obs["angle"], obs["velocity"]]))
    monitor = FailureMonitor(alpha=0.5, scores=["obs_rnd"]).fit(rollouts)
    policy = lab.DictSwingUpPolicy()
    monitored = MonitoredEnv(env, policy, monitor, on_alarm="flag")
    obs, _ = monitored.reset(seed=1)
    obs, _, _, _, info = monitored.step(policy.act(obs))
    assert set(info["monitor"].scores) == {"obs_rnd"}


@pytest.mark.slow
def test_rollouts_record_on_the_envs_training_envelope_and_its_shifts(lab, tmp_path):
    res = cli("rollouts", "record", "--env", FORMS[0], "--policy", POLICY, "--episodes", 4, "--envelope",
              "mass=2:3", "--out", tmp_path / "e", "--no-progress")
    assert res.returncode == 0, res.stderr
    assert all(2 <= r.params["mass"] <= 3 for r in load_rollouts(tmp_path / "e"))
    res = cli("rollouts", "record", "--env", FORMS[0], "--policy", POLICY, "--episodes", 4, "--shifted",
              "--out", tmp_path / "s", "--no-progress")
    assert res.returncode == 2 and "declare training_envelope" in res.stderr


def test_an_env_without_a_rate_warns_once_and_leaves_times_unknown(lab, tmp_path):
    from lab_pendulum import SPACE

    class NoClock(gym.Wrapper):
        metadata = {"render_modes": []}

        def __init__(self):
            super().__init__(gym.make("lab_pendulum:WrappedPendulum-v0"))
            self.parameter_space = SPACE

    gym.register("NoClockPendulum-v0", entry_point=NoClock)
    with pytest.warns(RuntimeWarning, match="declares no control rate.*metadata\\['render_fps'\\]"):
        df = run_sweep("NoClockPendulum-v0", POLICY, tmp_path / "s", n_lhs=3, n_boundary=0, workers=1,
                       progress=False)
    assert df["sim_time"].isna().all() and not df["success"].isna().any()
    with pytest.raises(ValueError, match="LeRobot dataset needs the env's control rate"):
        record_rollouts("NoClockPendulum-v0", POLICY, episodes=2, out=tmp_path / "r", format="lerobot", progress=False)
    assert not (tmp_path / "r").exists()


def test_errors_say_whether_the_policy_or_the_env_raised(lab):
    class Broken(gym.Wrapper):
        def step(self, action):
            raise RuntimeError("joint 3 encoder lost")

    env = ScenarioWrapper(Broken(gym.make("Pendulum-v1")), lab.SPACE)
    record = robogate.run_episode(env, lab.SwingUpPolicy(), seed=0)
    assert record["outcome"] == "error" and record["error"].startswith("the env raised RuntimeError: joint 3")

    class Raising(lab.SwingUpPolicy):
        def act(self, obs):
            raise ValueError(f"expected a 43-D observation, got {len(obs)}")

    record = robogate.run_episode(env, Raising(), seed=0)
    assert record["error"].startswith("the policy raised ValueError: expected a 43-D observation")


def test_the_clock_gives_lead_times_in_the_envs_seconds(lab):
    import pandas as pd

    from robogate.monitor.metrics import summarize

    table = pd.DataFrame({"success": [False, False, True], "outcome": ["failure"] * 2 + ["success"],
                          "steps": [200] * 3, "failure_step": [150.0, 120.0, np.nan],
                          "alarm_step": [110.0, 100.0, np.nan], "peak": [2.0, 1.5, 0.3], "control_hz": [20.0] * 3})
    assert summarize(table)["lead_time_median_s"] == pytest.approx(1.5)  # (40 + 20) / 2 steps at 20 Hz
    assert math.isnan(summarize(table.assign(control_hz=np.nan))["lead_time_median_s"])


@pytest.mark.slow
def test_a_killed_sweep_of_the_wrapped_env_resumes_row_for_row(lab, tmp_path):
    from tests.helpers import comparable
    from tests.test_sweep import kill_after

    args = ["sweep", "--env", FORMS[0], "--policy", "tests.helpers:gated_swing_up_policy", "--n-lhs", 16,
            "--n-boundary", 8, "--batch-size", 4, "--workers", 2, "--no-progress"]
    reference = run_sweep(FORMS[0], "tests.helpers:gated_swing_up_policy", tmp_path / "ref", n_lhs=16, n_boundary=8,
                          batch_size=4, workers=1, progress=False)
    out = tmp_path / "sweep"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)])}
    killed = kill_after(out, 2, 18, tmp_path, cmd=[*CLI, *map(str, args), "--out", str(out)], env=env)
    assert len(killed) == 18
    res = subprocess.run([*CLI, "sweep", "--out", str(out), "--resume", "--no-progress"], env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    final = robogate.load_sweep(out)
    import pandas as pd

    pd.testing.assert_frame_equal(comparable(final), comparable(reference))
    shutil.rmtree(tmp_path / "gate")


@pytest.mark.slow
def test_a_predictor_calibrates_on_rollouts_of_a_policy_without_embeddings(lab, tmp_path):
    record = ["rollouts", "record", "--env", FORMS[0], "--policy", POLICY, "--seed", 1, "--no-progress"]
    assert cli(*record, "--episodes", 16, "--envelope", "mass=0.5:4", "--out", tmp_path / "labelled").returncode == 0
    assert cli(*record, "--episodes", 12, "--params", '{"mass": 0.8}', "--out", tmp_path / "cal").returncode == 0
    train = cli("monitor", "train", tmp_path / "labelled", "--epochs", 20, "--out", tmp_path / "predictor")
    assert train.returncode == 0, train.stderr
    res = cli("monitor", "calibrate", tmp_path / "cal", "--predictor", tmp_path / "predictor", "--alpha", 0.2,
              "--out", tmp_path / "monitor")
    assert res.returncode == 0, res.stderr
    monitor = FailureMonitor.load(tmp_path / "monitor")
    assert list(monitor.scores_) == ["obs_rnd", "predictor"]  # the default scores these rollouts feed, and the predictor
