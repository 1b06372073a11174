"""What is written and read back: a sweep's crash-safe store, the stages of its rows, recorded
episodes as one Parquet file or as a LeRobot v3.0 dataset.

Imports :mod:`robogate._utils`, :mod:`robogate.scenarios`, robogate's envs and
:mod:`robogate.execution`.
"""

from robogate._utils.lazy import lazy_exports

EPISODE_FORMATS = ("parquet", "lerobot")
"""How recorded episodes are saved: one Parquet file, or a LeRobot v3.0 dataset (plain data: the CLI
builds its parser from it without loading pyarrow)."""

__getattr__, __dir__, _exported = lazy_exports(__name__, {
    "SweepStore": "robogate.datasets.store",
    "StoreError": "robogate.datasets.store",
    "read_episodes": "robogate.datasets.episodes",
    "save_episodes": "robogate.datasets.episodes",
    "read_lerobot": "robogate.datasets.lerobot",
    "write_lerobot": "robogate.datasets.lerobot",
})
__all__ = ["EPISODE_FORMATS", *_exported]
