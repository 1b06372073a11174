"""The ``robogate`` command's parser and :func:`main`.

Each subcommand is a function ``add_<name>(subparsers)`` in its group's module that builds its
parser and sets ``handler``; :data:`SUBCOMMANDS` lists them. A handler gets the parsed arguments
and returns an exit code. Expected errors (bad input, an unusable out folder) print one
``robogate: error: ...`` line and exit with 2; an unexpected one, one line and
:data:`EXIT_INTERNAL`.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from robogate._utils.console import PROG, warning_printer
from robogate.cli.demo import add_demo
from robogate.cli.flags import CLIError
from robogate.cli.monitor import add_monitor, add_rollouts
from robogate.cli.policy import add_policy
from robogate.cli.suites import add_compare, add_suite
from robogate.cli.sweeps import add_envelope, add_gate, add_replay, add_report, add_sweep

__all__ = ["SUBCOMMANDS", "build_parser", "main"]


EXIT_INTERNAL = 5
"""Exit status of an unexpected error (a bug in robogate, or in the env or policy it ran): never 0, 1 or 3,
which a CI pipeline reads as verdicts."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose subcommands refuse what they do not know themselves: with their own usage
    and, for a mistyped flag, the closest one (argparse would leave it to the top-level parser)."""

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> tuple[argparse.Namespace, list[str]]:
        namespace, extras = super().parse_known_args(args, namespace)
        if extras and self.get_default("handler") is not None:  # the subcommand the arguments were for
            flags = [s for action in self._actions for s in action.option_strings]
            hints = [close[0] for given in extras if given.startswith("-")
                     for close in [difflib.get_close_matches(given.split("=", 1)[0], flags, n=1)] if close]
            hint = f"; did you mean {' and '.join(dict.fromkeys(hints))}?" if hints else ""
            self.error(f"unrecognized arguments: {' '.join(extras)}{hint}")
        return namespace, extras


# ------------------------------------------------------------------------------------- main

#: Functions registering the subcommands, in help order.
SUBCOMMANDS: list[Callable[[Any], None]] = [add_sweep, add_report, add_gate, add_suite, add_compare, add_demo,
                                             add_policy, add_rollouts, add_monitor, add_replay,
                                             add_envelope]


def build_parser() -> argparse.ArgumentParser:
    """The ``robogate`` argument parser with every subcommand."""
    parser = _Parser(
        prog=PROG, description="Find where a robot manipulation policy fails before deployment.",
        epilog="Exit status: 0 done (gate: pass; compare: better or not worse; monitor makespan: stop on alarm); "
               "1 gate: fail, compare: worse, monitor makespan: run to the end; "
               "2 usage error; 3 gate: inconclusive, compare: undecided; 4 the experiments errored (the policy "
               "raised: a broken harness, not a verdict); 5 an unexpected error (a bug, never a verdict); "
               "130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(PROG)
    except PackageNotFoundError:  # pragma: no cover - run from a source tree that is not installed
        from robogate import __version__

        return __version__


def _expected_errors() -> tuple[type[BaseException], ...]:
    from concurrent.futures.process import BrokenProcessPool

    from robogate.datasets.store import StoreError

    return (ValueError, StoreError, ImportError, ConnectionError, BrokenProcessPool, CLIError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``robogate`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 on success, 2 on an error (reported in one line on
        stderr), 130 when interrupted; ``gate`` adds 1 fail and 3
        inconclusive, ``compare`` 1 worse and 3 undecided, ``monitor
        makespan`` 0 stop on alarm and 1 run to the end, and ``gate``,
        ``sweep``, ``suite run`` and ``compare`` give 4 when the experiments
        themselves errored.  An unexpected error (a bug, never a verdict) is
        one line and :data:`EXIT_INTERNAL`, 5.  Progress bars are drawn only
        when stderr is a terminal; warnings print as one ``robogate: warning:``
        line each.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = warning_printer(set())
            return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except _expected_errors() as exc:
        print(f"{PROG}: error: {_one_line(exc) or type(exc).__name__}", file=sys.stderr)
        return 2
    except Exception as exc:  # a crash must not read as a verdict
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        print(f"{PROG}: internal error: {type(exc).__name__}: {_one_line(exc)} (in {frame.name}, "
              f"{os.path.basename(frame.filename)} line {frame.lineno}); a bug, not a verdict: exit status "
              f"{EXIT_INTERNAL}", file=sys.stderr)
        return EXIT_INTERNAL


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


if __name__ == "__main__":
    sys.exit(main())
