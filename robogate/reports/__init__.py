"""What people look at: the Markdown and self-contained HTML reports of a sweep, a suite run, a comparison,
a monitor's evaluation and its makespan decision, their shared renderer and colours, and the replays and
galleries that show failures happening.

Imports every layer below it; only the CLI imports it.
"""

from robogate._utils.lazy import lazy_exports

ANIMATION_FORMATS = ("gif", "mp4")
"""The files a replay is filmed into (plain data: the CLI builds its parser from it without loading the
simulator)."""

__getattr__, __dir__, _exported = lazy_exports(__name__, {
    "write_report": "robogate.reports.sweep",
    "write_suite_report": "robogate.reports.suite",
    "write_comparison_report": "robogate.reports.comparison",
    "write_monitor_report": "robogate.reports.monitor",
    "write_makespan_report": "robogate.reports.makespan",
})
__all__ = ["ANIMATION_FORMATS", *_exported]
