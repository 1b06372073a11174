"""A table in, a model or a verdict out: the risk map (:class:`RiskModel`), danger zones, the gate and
its statistics, paired statistics for comparisons, and the suggested envelope.

Imports :mod:`robogate._utils`, :mod:`robogate.scenarios` and :mod:`robogate.datasets`; never a
simulator or torch.
"""

from robogate._utils.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "RiskModel": "robogate.analysis.risk",
    "FlexibleRiskModel": "robogate.analysis.risk",
    "danger_zones": "robogate.analysis.zones",
    "gate": "robogate.analysis.gating",
    "GateDecision": "robogate.analysis.stats",
    "suggest_envelope": "robogate.analysis.suggestion",
})
