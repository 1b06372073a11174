"""The whole loop on an installed wheel, with no source tree on the path: what a user's ``pip install`` gets.

``make test`` builds the wheel, installs it into a fresh virtualenv and runs this file there from an
empty folder. Every step imports what a user imports; a module or data file the wheel lacks fails here.
"""

import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import gymnasium as gym


def main() -> None:
    import robogate
    from robogate.monitor import FailureMonitor, MonitoredEnv, record_rollouts
    from robogate.policies import FlowPolicy, ScriptedPolicy
    from robogate.reports.sweep import write_report
    from robogate.suites.suite import suite_names
    from robogate.sweep.run import run_sweep

    installed = Path(sysconfig.get_paths()["purelib"]).resolve()
    assert installed in Path(robogate.__file__).resolve().parents, f"robogate imported from {robogate.__file__}"
    out = Path(tempfile.mkdtemp())
    env_id = "robogate/PickPlace-UR5e-v0"  # the arm described by the wheel's own URDF

    df = run_sweep(env_id, "scripted", out / "sweep", n_lhs=6, n_boundary=2, batch_size=2, workers=1, progress=False)
    assert len(df) == 8 and set(df["stage"]) == {1, 2}, df
    report = write_report([out / "sweep"])
    assert report.is_file() and "<img" in report.read_text()

    cal = record_rollouts(env_id, ScriptedPolicy(), episodes=8, params={}, seed=0, workers=1, progress=False)
    monitor = FailureMonitor(alpha=0.2, scores=["obs_rnd"]).fit(cal)
    env = MonitoredEnv(gym.make(env_id), ScriptedPolicy(), monitor, on_alarm="hold")
    policy = env.controller.policy
    obs, info = env.reset(seed=1, options={"params": {"placement": "raised_high"}})
    done = False
    while not done:
        obs, _, terminated, truncated, info = env.step(policy.act(obs))
        done = terminated or truncated
    assert "alarm_step" in info and info["outcome"]

    flow = FlowPolicy.pretrained("robogate/PickPlace-Panda-v0")  # the shipped checkpoint
    assert flow.embed(obs).shape == (64,)
    assert "robogate-68" in suite_names()
    cli = subprocess.run([Path(sys.executable).with_name("robogate"), "--version"], capture_output=True, text=True)
    assert cli.returncode == 0 and cli.stdout.startswith("robogate "), cli
    print(f"installed loop: sweep of {len(df)}, report, monitor on {len(cal)} rollouts, one monitored episode "
          f"({info['outcome']}, alarm at {info['alarm_step']}): ok")


if __name__ == "__main__":
    main()
