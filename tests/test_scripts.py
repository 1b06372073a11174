"""The scripts' flags: one helper turns a dataclass of arguments into a command line, and every script uses it."""

import runpy
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
WITH_FLAGS = sorted(p for p in SCRIPTS.glob("*.py") if p.stem not in ("flags", "rollout_cache"))


@pytest.fixture
def flags(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))  # as when a script runs: its folder comes first on sys.path
    import flags

    return flags


@dataclass
class Args:
    name: str = "panda"
    """Arm to run."""
    baseline: bool = True
    """Also run the scripted controller."""
    shifts: bool = False
    workers: Optional[int] = None
    """Parallel episodes (default: all cores)."""
    envs: tuple[str, ...] = ()
    band: tuple[float, float] = (0.3, 0.7)
    seeds: list[int] = None
    n_lhs: int = 10
    """Stage-1 budget, 95 % of it uniform."""


def test_defaults_and_types_parse_as_declared(flags):
    assert flags.parse(Args, argv=[]) == Args()
    got = flags.parse(Args, argv=["--name", "ur5e", "--no-baseline", "--shifts", "--workers", "3", "--envs", "a", "b",
                                  "--band", "0.1", "0.9", "--seeds", "4", "5", "--n-lhs", "7"])
    assert got == Args("ur5e", False, True, 3, ("a", "b"), (0.1, 0.9), [4, 5], 7)
    assert isinstance(got.band, tuple) and isinstance(got.seeds, list) and isinstance(got.band[0], float)
    assert flags.parse(Args, argv=["--baseline", "--no-shifts"]) == Args(baseline=True, shifts=False)


@pytest.mark.parametrize("argv, message", [
    (["--workers", "many"], "argument --workers: invalid int value: 'many'"),
    (["--baseline", "no"], "unrecognized arguments: no"),  # a boolean takes no value: --no-baseline says it
    (["--band", "0.1"], "argument --band: expected 2 arguments"),
    (["--n_lhs", "3"], "unrecognized arguments: --n_lhs"),
])
def test_bad_values_are_usage_errors(flags, capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        flags.parse(Args, argv=argv)
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_a_value_the_dataclass_rejects_is_a_usage_error(flags, capsys):
    @dataclass
    class Checked:
        episodes: int = 1

        def __post_init__(self):
            if self.episodes < 1:
                raise ValueError(f"--episodes must be positive, got {self.episodes}")

    with pytest.raises(SystemExit) as info:
        flags.parse(Checked, argv=["--episodes", "0"])
    assert info.value.code == 2 and "error: --episodes must be positive, got 0" in capsys.readouterr().err


def test_help_shows_each_fields_docstring_and_default(flags):
    text = " ".join(flags.build_parser(Args, "Run the arms.\n\nDetails.").format_help().split())
    assert "Run the arms." in text and "Details" not in text
    assert "--name STR Arm to run. (default: panda)" in text
    assert "--baseline, --no-baseline Also run the scripted controller. (default: --baseline)" in text
    assert "--shifts, --no-shifts (default: --no-shifts)" in text
    assert "--workers INT Parallel episodes (default: all cores). --envs" in text  # None: the docstring says it
    assert "--n-lhs INT Stage-1 budget, 95 % of it uniform. (default: 10)" in text


def test_unsupported_types_are_refused_when_the_parser_is_built(flags):
    @dataclass
    class Mixed:
        value: int | str = 1

    with pytest.raises(TypeError, match="only X | None"):
        flags.build_parser(Mixed)


@pytest.mark.parametrize("script", WITH_FLAGS, ids=lambda p: p.stem)
def test_every_script_prints_its_help(script, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    monkeypatch.setattr(sys, "argv", [str(script), "--help"])
    with pytest.raises(SystemExit) as info:
        runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out
    assert info.value.code == 0 and out.startswith(f"usage: {script.name}")
    assert "(default: " in out  # its flags come from the dataclass, with their defaults
