"""The monitor's settings: how scores combine, and the defaults of ``FailureMonitor()`` (no PyTorch here)."""

__all__ = ["COMBINES", "DEFAULTS", "DEFAULT_SCORES", "MODELS", "TARGETS"]

COMBINES = ("or", "and")
"""How the scores' alarms combine: any of them above its threshold, or all."""
DEFAULT_SCORES = ("rnd", "obs_rnd")
"""The scores of a monitor built with no ``scores``: those of them the rollouts carry signals for."""
DEFAULTS = {"alpha": 0.05, "confidence": None, "window": 1, "combine": "or", "threshold": "constant"}
"""The settings of ``FailureMonitor()``. With :data:`DEFAULT_SCORES` they are the monitor that wins on
validation rollouts of the shipped flow policy (``scripts/eval_monitor.py``); ``confidence`` None is the
marginal conformal threshold (ask for a training-conditional one with ``FailureMonitor(confidence=0.9)``)."""
TARGETS = ("episode", "horizon")
"""What a failure predictor labels a step with: its episode fails, or it fails within ``horizon`` steps."""
MODELS = ("mlp", "gru")
"""A failure predictor's network: per step on the step's features, or recurrent over the episode so far."""
