"""Runtime failure prediction: recorded rollouts, the conformal failure monitor, and its wrappers."""

from robogate.monitor.rollout import Rollout

__all__ = ["Rollout"]
