"""What a scene is, and how any env takes one, with no simulator: the parameter space, the one
:class:`Envelope`, shifted families of scenes, the contract robogate reads of a Gymnasium env, and
:class:`ScenarioWrapper`, which gives an existing env a scenario space.

Imports only :mod:`robogate._utils`.
"""

from robogate._utils.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "Categorical": "robogate.scenarios.space",
    "Continuous": "robogate.scenarios.space",
    "Integer": "robogate.scenarios.space",
    "ParameterSpace": "robogate.scenarios.space",
    "Envelope": "robogate.scenarios.envelope",
    "Shift": "robogate.scenarios.shifts",
    "one_factor_shifts": "robogate.scenarios.shifts",
    "ScenarioWrapper": "robogate.scenarios.wrapper",
})
