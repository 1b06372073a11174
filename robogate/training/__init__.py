"""Teaching the learned policy: demonstrations recorded over a training envelope, and behaviour cloning of
:class:`~robogate.policies.FlowPolicy` on them.

Imports the layers up to :mod:`robogate.sweep`; not :mod:`robogate.suites` or :mod:`robogate.monitor`.
"""

from robogate._utils.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "record_demos": "robogate.training.demonstrations",
    "load_demos": "robogate.training.demonstrations",
    "train_flow_policy": "robogate.training.flow",
    "TrainConfig": "robogate.training.flow",
})
