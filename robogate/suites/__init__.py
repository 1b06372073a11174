"""Fixed scenario suites and paired comparison: a suite as data (the shipped ``robogate-68.toml`` lies
here), a policy's run on it, and :func:`compare`, which pairs two runs scene by scene and seed by seed.

Imports the layers up to :mod:`robogate.sweep`; not :mod:`robogate.monitor` or :mod:`robogate.training.flow`.
"""

from robogate._utils.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "Suite": "robogate.suites.suite",
    "load_suite": "robogate.suites.suite",
    "suite_names": "robogate.suites.suite",
    "SuiteRun": "robogate.suites.run",
    "load_suite_run": "robogate.suites.run",
    "run_suite": "robogate.suites.run",
    "Comparison": "robogate.suites.comparison",
    "compare": "robogate.suites.comparison",
})
