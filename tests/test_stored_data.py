"""What robogate 0.1 stored still loads: a sweep, a suite run, rollouts and a saved monitor (tests/data/stored_0.1)."""

import shutil
from pathlib import Path

import robogate
from robogate.monitor import FailureMonitor, load_rollouts
from robogate.suites.run import load_suite_run

STORED = Path(__file__).parent / "data" / "stored_0.1"


def test_a_stored_sweep_loads_and_gates(tmp_path):
    sweep = shutil.copytree(STORED / "sweep", tmp_path / "sweep")  # reading may tidy the folder
    df = robogate.load_sweep(sweep)
    settings = df.attrs["settings"]
    assert len(df) == 16 and settings["env_id"] == "robogate/PickPlace-Panda-v0" and settings["complete"]
    assert settings["space"] == robogate.default_space()
    assert robogate.gate(df, settings["space"], {"friction": (0.4, 1.2)}, 0.1).verdict in ("pass", "fail",
                                                                                            "inconclusive")


def test_a_stored_suite_run_loads_in_robogates_space(tmp_path):
    run = load_suite_run(shutil.copytree(STORED / "suite", tmp_path / "suite"))  # 0.1 stored no space
    assert run.complete and len(run.table) == 4 and run.suite.space == robogate.default_space()
    assert run.by_scenario()["scene"].tolist() == ["nominal", "friction 0.1, mass 1.5"]


def test_stored_rollouts_and_a_saved_monitor_load_and_score():
    rollouts = load_rollouts(STORED / "rollouts")
    assert len(rollouts) == 10 and rollouts[0].control_hz == 10  # robogate's envs' rate, stored as fps
    monitor = FailureMonitor.load(STORED / "monitor")
    assert list(monitor.scores_) == ["obs_rnd"]
    trace = monitor.trace(rollouts[0])
    assert len(trace.scores["obs_rnd"]) == rollouts[0].steps
