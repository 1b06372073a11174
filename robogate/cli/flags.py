"""The flags and argument types the command groups share, each defined once, and the one-line error.

How a command runs (``--workers``, ``--executor`` and ``--address``, ``--no-progress``) and its
``--out`` and ``--seed`` are parent parsers (``parents=[...]``); argparse merges the parents'
groups of one title into a single group in each command's help.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

__all__ = ["CLIError", "ENVELOPE_METAVAR", "EXECUTOR", "OUT", "POLICY_HELP", "PROGRESS", "RUN_GROUP", "SEED", "WORKERS",
           "add_envelope_flag", "add_format_flag", "int_at_least", "non_negative_int", "non_negative_seconds",
           "positive_int", "probability", "run_flags", "saved_at"]


POLICY_HELP = ("'scripted', 'flow' (the learned policy shipped with robogate), 'flow:PATH' (a FlowPolicy "
               "checkpoint, or the folder 'policy train' wrote) or 'package.module:Factory'")


class CLIError(Exception):
    """An error to report as one line, with exit status 2."""


def int_at_least(minimum: int, words: str) -> Callable[[str], int]:
    """An argparse type for integers >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a {words} integer, got {text!r}")
        return value

    return parse


positive_int = int_at_least(1, "positive")
non_negative_int = int_at_least(0, "non-negative")


def probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}")
    return value


def non_negative_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0.0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a non-negative number of seconds, got {text!r}")
    return value


def add_format_flag(p: argparse.ArgumentParser, file_name: str) -> None:
    from robogate.datasets import EPISODE_FORMATS

    p.add_argument("--format", choices=EPISODE_FORMATS, default="parquet",
                   help=f"'parquet' (default): DIR/{file_name}; 'lerobot': DIR becomes a LeRobot v3.0 dataset "
                        "(meta/, data/) that LeRobotDataset loads")


def saved_at(out: str, file_name: str, format: str) -> str:
    """Where ``--format`` put the recorded episodes, for the last line a command prints."""
    from pathlib import Path

    return f"{out} (LeRobot v3.0 dataset)" if format == "lerobot" else str(Path(out) / file_name)


ENVELOPE_METAVAR = "NAME=LOW:HIGH|NAME=A,B"


def add_envelope_flag(parser: argparse.ArgumentParser, rest: str) -> None:
    """The one ``--envelope`` option (see :meth:`robogate.scenarios.envelope.Envelope.parse`); ``rest`` says what
    the command does with the parameters it does not name."""
    parser.add_argument("--envelope", action="append", metavar=ENVELOPE_METAVAR,
                        help="limit one parameter: a range (friction=0.4:1.2, obstacles=0:2; LOW=HIGH fixes it) "
                             f"or allowed values (shape=box,cylinder, obstacles=0,2); repeat for more. {rest}")


# Flags several commands share, each defined once in a parent parser (``parents=[...]``). Those of how a
# command runs form one group in its help: argparse merges the parents' groups of the same title.
RUN_GROUP = "how it runs"


def run_flags() -> tuple[argparse.ArgumentParser, ...]:
    """The parents of how a command runs: ``--workers``; ``--executor`` and ``--address``; ``--no-progress``."""
    workers, executor, progress = (argparse.ArgumentParser(add_help=False) for _ in range(3))
    workers.add_argument_group(RUN_GROUP).add_argument(
        "--workers", type=positive_int, metavar="K", help="parallel episodes (default: all cores)")
    group = executor.add_argument_group(RUN_GROUP)
    group.add_argument("--executor", default="local", metavar="NAME",
                       help="where episodes run: 'local' (a process pool, default), 'ray', or an executor "
                            "registered with robogate.execution.executors.register or an entry point")
    group.add_argument("--address", metavar="ADDR", help="where the executor runs, e.g. a Ray cluster address")
    progress.add_argument_group(RUN_GROUP).add_argument(
        "--no-progress", dest="progress", action="store_false", default=None,
        help="hide the progress bar (drawn by default only when stderr is a terminal)")
    return workers, executor, progress


WORKERS, EXECUTOR, PROGRESS = run_flags()

OUT = argparse.ArgumentParser(add_help=False)
"""The folder a command writes (its description says what goes there)."""
OUT.add_argument("--out", required=True, metavar="DIR", help="output folder")

SEED = argparse.ArgumentParser(add_help=False)
SEED.add_argument("--seed", type=non_negative_int, default=0, metavar="S", help="seed (default 0)")


