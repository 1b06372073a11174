"""Everything that reads or writes stored data (sweeps, suite runs, rollouts, demonstrations, their
analysis and reports) imports and works on a machine without the simulators and torch."""

import subprocess
import sys
import textwrap

import pytest

CORE = ("scenarios.space", "scenarios.envelope", "scenarios.shifts", "datasets.stages", "datasets.store",
        "datasets.episodes", "datasets.lerobot", "analysis.stats", "analysis.paired", "analysis.risk", "analysis.zones",
        "analysis.gating", "analysis.suggestion", "sweep.sampler", "sweep.config", "sweep.stored", "sweep.summary",
        "suites.suite", "suites.run", "suites.comparison", "monitor.rollout", "monitor.recording", "monitor.makespan",
        "training.demonstrations", "reports.document", "reports.sweep", "reports.suite", "reports.comparison",
        "reports.makespan")

# Run in a fresh interpreter where importing pybullet or torch raises, as on a machine without them.
SCRIPT = textwrap.dedent(
    """
    import importlib, importlib.abc, sys

    class Missing(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("pybullet", "pybullet_data", "torch", "mujoco"):
                raise ModuleNotFoundError(f"No module named {name!r}")
            return None

    sys.meta_path.insert(0, Missing())
    for blocked in ("pybullet", "torch"):
        try:
            importlib.import_module(blocked)
        except ModuleNotFoundError:
            pass
        else:
            raise SystemExit(f"{blocked} was not blocked")
    for name in sys.argv[1:]:
        importlib.import_module("robogate." + name)

    import numpy as np
    import pandas as pd
    import robogate

    space = robogate.default_space()  # robogate's envs declare it, without their simulator
    rng = np.random.default_rng(0)
    df = pd.DataFrame(space.from_unit(rng.random((300, len(space)))))
    df["success"] = df["friction"] > 0.2
    df["stage"] = 1
    model = robogate.RiskModel(space=space).fit(df[space.names], ~df["success"])
    decision = robogate.gate(df, space, {"friction": (0.4, 1.2)}, max_failure_rate=0.05)
    print(space.names[0], round(float(model.predict_proba(df[space.names])[:, 1].mean()), 2), decision.verdict)
    """
)


@pytest.mark.slow
def test_core_imports_and_works_without_pybullet_and_torch():
    res = subprocess.run([sys.executable, "-c", SCRIPT, *CORE], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    name, mean_risk, verdict = res.stdout.split()
    assert name == "friction"
    assert 0.0 < float(mean_risk) < 1.0
    assert verdict == "pass"  # 300 uniform rows: enough failure-free experiments with friction above 0.4
