"""Runtime failure prediction: recorded rollouts, plug-in failure scores, the conformal failure monitor
and its wrappers.

Names are imported on first use, so ``robogate.monitor.settings`` and
``robogate.monitor.conformal`` load without PyTorch.
"""

import importlib
from typing import Any

_EXPORTS = {
    "COMBINES": "robogate.monitor.settings",
    "DEFAULTS": "robogate.monitor.settings",
    "DEFAULT_SCORES": "robogate.monitor.settings",
    "THRESHOLD_STYLES": "robogate.monitor.conformal",
    "FailureMonitor": "robogate.monitor.monitor",
    "FailurePredictor": "robogate.monitor.scores.predictor",
    "MonitorDecision": "robogate.monitor.monitor",
    "MonitorTrace": "robogate.monitor.monitor",
    "MonitoredEnv": "robogate.monitor.wrappers",
    "MonitoredPolicy": "robogate.monitor.wrappers",
    "ON_ALARM": "robogate.monitor.wrappers",
    "RetreatPolicy": "robogate.policies.retreat",
    "Rollout": "robogate.monitor.rollout",
    "load_rollouts": "robogate.monitor.recording",
    "record_rollouts": "robogate.monitor.recording",
}

__all__ = sorted([*_EXPORTS, "scores"])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    if name == "scores":
        return importlib.import_module("robogate.monitor.scores")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
