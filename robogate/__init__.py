"""robogate: find where a manipulation policy fails before deployment, and warn while it runs.

``import robogate`` registers robogate's envs (:data:`ENV_IDS`) and nothing more: every other public
name is imported when it is first used, so a risk map of a stored sweep loads no simulator and no
torch. The layers, each importing only those before it::

    _utils < scenarios < envs < policies < execution < datasets < analysis < sweep
           < {suites | monitor | training} < reports < cli
"""

from robogate._utils.lazy import lazy_exports
from robogate.envs import ENV_IDS

__version__ = "0.1.0"

__getattr__, __dir__, _names = lazy_exports(__name__, {
    "Categorical": "robogate.scenarios.space",
    "Continuous": "robogate.scenarios.space",
    "Integer": "robogate.scenarios.space",
    "ParameterSpace": "robogate.scenarios.space",
    "default_space": "robogate.envs.scene",
    "Envelope": "robogate.scenarios.envelope",
    "ScenarioWrapper": "robogate.scenarios.wrapper",
    "run_episode": "robogate.execution.episode",
    "RiskModel": "robogate.analysis.risk",
    "danger_zones": "robogate.analysis.zones",
    "gate": "robogate.analysis.gating",
    "TwoStageSampler": "robogate.sweep.sampler",
    "load_sweep": "robogate.sweep.stored",
    "run_sweep": "robogate.sweep.run",
    "run_gate": "robogate.sweep.gate_run",
    "run_suite": "robogate.suites.run",
    "compare": "robogate.suites.comparison",
})
__all__ = ["ENV_IDS", "__version__", *_names]
