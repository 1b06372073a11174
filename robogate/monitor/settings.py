"""The monitor's settings: how scores combine, the threshold styles, the defaults of ``FailureMonitor()`` and
the alphas a makespan decision sweeps (plain data: the CLI builds its parser from them without loading scipy
or PyTorch)."""

__all__ = ["COMBINES", "DEFAULTS", "DEFAULT_SCORES", "MAKESPAN_ALPHAS", "MODELS", "TARGETS", "THRESHOLD_STYLES"]

COMBINES = ("or", "and")
"""How the scores' alarms combine: any of them above its threshold, or all."""
THRESHOLD_STYLES = ("constant", "time_varying", "functional")
"""The threshold styles :func:`robogate.monitor.conformal.calibrate_threshold` knows."""
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
MAKESPAN_ALPHAS = (0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)
"""The monitor thresholds (alphas) :func:`robogate.monitor.makespan.choose_threshold` sweeps by default; those
the monitor's calibration rollouts are too few for are left out."""
