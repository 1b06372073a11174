"""The monitor's settings: how scores combine, and the defaults of ``FailureMonitor()`` (no PyTorch here)."""

__all__ = ["COMBINES", "DEFAULTS", "DEFAULT_SCORES"]

COMBINES = ("or", "and")
"""How the scores' alarms combine: any of them above its threshold, or all."""
DEFAULT_SCORES = ("rnd", "obs_rnd")
"""The scores of a monitor built with no ``scores``: those of them the rollouts carry signals for."""
DEFAULTS = {"alpha": 0.05, "window": 1, "combine": "or", "threshold": "constant"}
"""The settings of ``FailureMonitor()``. With :data:`DEFAULT_SCORES` they are the monitor that wins on
validation rollouts of the shipped flow policy (``scripts/eval_monitor.py``)."""
