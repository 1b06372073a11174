"""What robogate writes to stderr besides results: progress bars by the terminal rule, warnings one way."""

import io
import sys

import pytest

from robogate._utils.console import show_progress
from robogate.cli.parser import main
from robogate.monitor import record_rollouts
from robogate.policies import ScriptedPolicy
from robogate.scenarios.space import Continuous, ParameterSpace
from robogate.sweep.sampler import TwoStageSampler
from tests.helpers import ENV_ID


class Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self):
        return True


def on_a_terminal(monkeypatch):
    """Make stderr a terminal for the rest of the test (set in the test: pytest resets it after fixtures)."""
    stderr = Terminal()
    monkeypatch.setattr(sys, "stderr", stderr)
    return stderr


def test_the_rule_draws_only_on_a_terminal_unless_told(monkeypatch):
    on_a_terminal(monkeypatch)
    assert show_progress(None) and show_progress(True) and not show_progress(False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not show_progress(None) and show_progress(True) and not show_progress(False)


def test_the_python_api_draws_no_bar_into_a_log(capsys):
    record_rollouts(ENV_ID, ScriptedPolicy(), episodes=1)  # stderr is captured here: no terminal
    assert capsys.readouterr().err == ""


def test_the_python_api_draws_a_bar_on_a_terminal_and_obeys_progress(monkeypatch):
    terminal = on_a_terminal(monkeypatch)
    sampler = TwoStageSampler(ParameterSpace([Continuous("x", 0.0, 1.0)]), n_lhs=8, n_boundary=0, seed=0)
    sampler.run(lambda params: params["x"] > 0.5)
    assert "sweep" in terminal.getvalue() and "8/8" in terminal.getvalue()
    quiet = TwoStageSampler(ParameterSpace([Continuous("x", 0.0, 1.0)]), n_lhs=8, n_boundary=0, seed=0)
    before = terminal.getvalue()
    quiet.run(lambda params: params["x"] > 0.5, progress=False)
    assert terminal.getvalue() == before


@pytest.mark.slow
def test_a_warning_reads_the_same_on_a_terminal_as_in_a_pipe(tmp_path, monkeypatch):
    terminal = on_a_terminal(monkeypatch)
    # Every experiment of this sweep errors, so stage 2 has only failures to fit its surrogate on: a warning.
    argv = ["sweep", "--env", ENV_ID, "--policy", "tests.helpers:RaisingPolicy", "--n-lhs", "4", "--n-boundary", "2",
            "--workers", "1"]
    main([*argv, "--out", str(tmp_path / "terminal")])
    drawn = terminal.getvalue()
    assert "\r" in drawn  # the bar was drawn
    warnings = [line for line in drawn.replace("\r", "\n").splitlines() if "warning:" in line]
    assert warnings and all(line.startswith("robogate: warning: stage-2 surrogate") for line in warnings)
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # a pipe
    main([*argv, "--out", str(tmp_path / "pipe")])
    piped = sys.stderr.getvalue()
    assert "\r" not in piped
    assert [line for line in piped.splitlines() if "warning:" in line] == warnings[:1]
