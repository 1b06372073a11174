"""What ``make demo`` and ``make test`` install on a fresh clone (read with ``make -n``: nothing is run)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def planned(target, venv):
    """The commands ``make TARGET`` would run with its virtualenv at ``venv``."""
    res = subprocess.run(["make", "-n", target, f"VENV={venv}"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return [line for line in res.stdout.splitlines() if "pip install" in line]


def test_the_demo_installs_robogate_alone_and_the_tests_add_the_dev_extras(tmp_path):
    demo = planned("demo", tmp_path / "venv")
    assert demo[-2].endswith("install --quiet torch==2.13.0")  # the CPU build first
    assert demo[-1].endswith("install --quiet -e .")  # no extras: no Ray, no test tools
    test = planned("test", tmp_path / "venv")
    assert any(line.endswith('install --quiet -e ".[dev,examples]"') for line in test)
    # and the wheel, alone in a virtualenv of its own
    assert test[-1].startswith(".venv-wheel/bin/python -m pip install") and test[-1].endswith(".whl")


def test_after_the_demo_the_tests_only_add_the_extras(tmp_path):
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".installed").touch()  # as `make demo` leaves it
    os.utime(venv / ".installed", (2**31, 2**31))  # newer than pyproject.toml
    assert planned("demo", venv) == []
    into_venv = [line for line in planned("test", venv) if f"{venv}/bin" in line]
    assert into_venv == ['PYTHONWARNINGS="ignore:Editable installation" '
                         f'{venv}/bin/python -m pip install --quiet -e ".[dev,examples]"']
