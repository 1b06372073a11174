"""Sweeping a policy: the two-stage sampler, what a sweep is (its configuration and manifest), running it
resumably on an executor, running its gate until decided, reading a stored one, and its summary.

Imports every layer below: :mod:`robogate._utils` through :mod:`robogate.analysis`.
"""

from robogate._utils.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "TwoStageSampler": "robogate.sweep.sampler",
    "SweepConfig": "robogate.sweep.config",
    "run_sweep": "robogate.sweep.run",
    "run_gate": "robogate.sweep.gate_run",
    "load_sweep": "robogate.sweep.stored",
    "sweep_settings": "robogate.sweep.stored",
    "summarize_sweep": "robogate.sweep.summary",
    "format_summary": "robogate.sweep.summary",
})
