"""Runtime failure prediction: recorded rollouts, the conformal failure monitor, and its wrappers."""

from robogate.monitor.ace import ActionChunkEntropy
from robogate.monitor.conformal import THRESHOLD_STYLES
from robogate.monitor.fallback import RetreatPolicy
from robogate.monitor.monitor import COMBINES, SCORES, FailureMonitor, MonitorDecision, MonitorTrace
from robogate.monitor.recording import load_rollouts, record_rollouts
from robogate.monitor.rnd import RNDScorer
from robogate.monitor.rollout import Rollout
from robogate.monitor.wrappers import ON_ALARM, MonitoredEnv, MonitoredPolicy

__all__ = [
    "COMBINES",
    "ON_ALARM",
    "SCORES",
    "THRESHOLD_STYLES",
    "ActionChunkEntropy",
    "FailureMonitor",
    "MonitorDecision",
    "MonitorTrace",
    "MonitoredEnv",
    "MonitoredPolicy",
    "RNDScorer",
    "RetreatPolicy",
    "Rollout",
    "load_rollouts",
    "record_rollouts",
]
