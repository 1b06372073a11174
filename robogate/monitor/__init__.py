"""Runtime failure prediction: recorded rollouts, plug-in failure scores, the conformal failure monitor
and its wrappers, and whether stopping on its alarm pays a production cell (the makespan, and a
production loop on the executors).

Names are imported on first use, so ``robogate.monitor.settings`` and
``robogate.monitor.conformal`` load without PyTorch.
"""

import importlib
from typing import Any

_EXPORTS = {
    "COMBINES": "robogate.monitor.settings",
    "DEFAULTS": "robogate.monitor.settings",
    "DEFAULT_SCORES": "robogate.monitor.settings",
    "EpisodeTimes": "robogate.monitor.makespan",
    "THRESHOLD_STYLES": "robogate.monitor.settings",
    "FailureMonitor": "robogate.monitor.monitor",
    "FailurePredictor": "robogate.monitor.scores.predictor",
    "Makespan": "robogate.monitor.makespan",
    "MakespanCheck": "robogate.monitor.makespan",
    "MakespanDecision": "robogate.monitor.makespan",
    "MakespanEstimate": "robogate.monitor.makespan",
    "MonitorDecision": "robogate.monitor.monitor",
    "MonitorTrace": "robogate.monitor.monitor",
    "MonitoredEnv": "robogate.monitor.wrappers",
    "MonitoredPolicy": "robogate.monitor.wrappers",
    "ON_ALARM": "robogate.monitor.wrappers",
    "PairedMakespan": "robogate.monitor.production",
    "ProductionRun": "robogate.monitor.production",
    "RetreatPolicy": "robogate.policies.retreat",
    "Rollout": "robogate.monitor.rollout",
    "check_decision": "robogate.monitor.makespan",
    "choose_threshold": "robogate.monitor.makespan",
    "estimate_makespan": "robogate.monitor.makespan",
    "expected_makespan": "robogate.monitor.makespan",
    "load_rollouts": "robogate.monitor.recording",
    "paired_makespan": "robogate.monitor.production",
    "record_rollouts": "robogate.monitor.recording",
    "run_production": "robogate.monitor.production",
}

__all__ = sorted([*_EXPORTS, "scores"])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    if name == "scores":
        return importlib.import_module("robogate.monitor.scores")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
