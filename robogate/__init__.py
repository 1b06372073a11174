"""robogate: find where a manipulation policy fails before deployment, and warn while it runs."""

from robogate.compare import compare
from robogate.envelope import Envelope
from robogate.envs import ENV_IDS
from robogate.envs.scene import default_space
from robogate.episode import run_episode
from robogate.gating import gate
from robogate.load import load_sweep
from robogate.risk import RiskModel
from robogate.sampling import TwoStageSampler
from robogate.scenario_wrapper import ScenarioWrapper
from robogate.space import Categorical, Continuous, Integer, ParameterSpace
from robogate.suite_run import run_suite
from robogate.zones import danger_zones

__version__ = "0.1.0"

__all__ = [
    "ENV_IDS",
    "Categorical",
    "Continuous",
    "Envelope",
    "Integer",
    "ParameterSpace",
    "RiskModel",
    "ScenarioWrapper",
    "TwoStageSampler",
    "compare",
    "danger_zones",
    "default_space",
    "gate",
    "load_sweep",
    "run_episode",
    "run_suite",
]
