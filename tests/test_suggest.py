"""Where to deploy: the suggested envelope passes the gate on the sweep's uniform rows (never stage-2 ones), is as
large as the failures allow, prints as flags that `gate` reads back to the same verdict, and comes with a command
line that certifies it on fresh experiments; when the rows cannot decide, the map decides and says so."""

import shlex
import subprocess
import sys

import numpy as np
import pytest

import robogate
from robogate.analysis.suggestion import suggest_envelope
from robogate.cli.parser import build_parser, main
from robogate.datasets.store import SweepStore
from robogate.scenarios.envelope import Envelope
from robogate.scenarios.space import Categorical, Continuous, ParameterSpace
from tests.test_report import make_sweep

SPACE = ParameterSpace([Continuous("friction", 0.05, 1.2, log=True, nominal=0.8),
                        Continuous("mass", 0.05, 2.0, log=True, nominal=0.2),
                        Categorical("shape", ["box", "sphere", "cylinder"])])


def slips_or_too_heavy(rows):
    """Fails exactly where friction is under 0.3 or the mass over 1 kg: a logit of +-25."""
    return np.where((rows["friction"] < 0.3) | (rows["mass"] > 1.0), 25.0, -25.0)


def sweep_with(path, n_lhs, logit=slips_or_too_heavy):
    return make_sweep(path, space=SPACE, n_lhs=n_lhs, n_boundary=0, logit=logit)


@pytest.fixture(scope="module")
def clear(tmp_path_factory):
    """400 uniform rows, plus 30 stage-2 rows that failed in the middle of the safe region (no evidence)."""
    path = sweep_with(tmp_path_factory.mktemp("suggest") / "clear", 400)
    SweepStore.open(path).append([{"id": 400 + i, "stage": 2, "friction": 0.6, "mass": 0.3, "shape": "box",
                                   "success": False, "outcome": "collision", "seed": i} for i in range(30)])
    return path, robogate.load_sweep(path)


def test_the_envelope_passes_on_the_uniform_rows_and_is_as_large_as_the_failures_allow(clear):
    path, df = clear
    s = suggest_envelope(df, 0.05)
    assert s.basis == "rows" and s.decision.verdict == "pass" and s.decision.failures == 0
    limits = s.envelope.limits
    assert 0.3 <= limits["friction"][0] <= 0.46 and limits["friction"][1] == 1.2  # cut up to the failures, no more
    assert 0.79 <= limits["mass"][1] <= 1.0 and limits["mass"][0] == 0.05
    assert "shape" not in limits and s.envelope.contains(SPACE.nominal())  # shape never mattered
    inside = s.envelope.mask(df)
    assert (df.loc[inside, "stage"] == 2).sum() == 30  # the failed stage-2 rows are inside, and never counted
    assert s.decision.n == int(((df["stage"] == 1) & inside).sum())
    # the printed flags are the envelope: gate reads them back to the same verdict
    again = robogate.gate(df, SPACE, Envelope.parse(s.flags, SPACE), 0.05)
    assert again.verdict == "pass" and again.upper_bound == s.decision.upper_bound
    assert s.path["step"].tolist() == list(range(len(s.path))) and s.path["n"].is_monotonic_decreasing


@pytest.mark.slow
def test_the_cli_prints_flags_gate_accepts_and_a_fresh_certification_command(clear, capsys):
    path, df = clear
    assert main(["envelope", "suggest", str(path), "--max-failure-rate", "0.05"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("The largest envelope around nominal found that passes the gate on the sweep's")
    flags = shlex.split(lines[1])
    assert flags[0] == "--envelope" and main(["gate", str(path), *flags, "--max-failure-rate", "0.05"]) == 0
    assert capsys.readouterr().out.startswith("pass: ")
    assert "gate --run on this sweep would also count the rows that chose it" in lines[2]
    fresh, certify = lines[3].split(" && ")
    sweep = build_parser().parse_args(shlex.split(fresh)[1:])
    assert (sweep.command, sweep.n_lhs, sweep.n_boundary, sweep.seed) == ("sweep", 1, 0, 1)  # another seed
    assert sweep.env_id == df.attrs["settings"]["env_id"] and sweep.policy == "scripted"
    assert sweep.out == f"{path}-certify"
    gate = build_parser().parse_args(shlex.split(certify)[1:])
    assert (gate.command, gate.out, gate.run, gate.max_failure_rate) == ("gate", sweep.out, True, 0.05)
    assert Envelope.parse(gate.envelope, SPACE) == suggest_envelope(df, 0.05).envelope


def test_when_the_rows_cannot_decide_the_map_does_and_says_so(tmp_path):
    """60 rows: no box holds the 59 failure-free rows a 5 % pass needs, but the map sees where failures stop."""
    df = robogate.load_sweep(sweep_with(tmp_path / "small", 60))
    s = suggest_envelope(df, 0.05)
    assert s.basis == "map" and s.decision.verdict == "inconclusive" and s.decision.failures == 0
    assert s.predicted <= 0.05
    chosen = s.path[s.path["envelope"] == s.envelope.describe()].iloc[0]
    assert chosen["worst_slice"] <= 0.05  # no edge of the box is predicted to fail more than the limit either
    assert s.envelope.limits["friction"][0] >= 0.3 and s.envelope.contains(SPACE.nominal())
    text = s.summary()
    assert "No box of the search passes the gate on the sweep's uniform rows (a pass at 0.05 needs at least 59 " \
           "failure-free uniform experiments inside" in text
    assert "only fresh experiments inside it certify it" in text


@pytest.mark.slow
def test_no_suggestion_when_failures_are_everywhere(tmp_path, capsys):
    path = sweep_with(tmp_path / "coin", 200, logit=lambda rows: np.zeros(len(rows)))  # a coin flip anywhere
    s = suggest_envelope(robogate.load_sweep(path), 0.05)
    assert s.envelope is None and s.basis == "none" and s.flags == []
    assert main(["envelope", "suggest", str(path), "--max-failure-rate", "0.05"]) == 3
    out = capsys.readouterr().out
    assert out.startswith("No envelope around nominal qualifies at a 0.05 limit.") and out.count("\n") == 1
    assert "Sweep more" in out


def test_too_few_rows_for_a_map_is_one_line(tmp_path, capsys):
    path = sweep_with(tmp_path / "tiny", 12)
    assert main(["envelope", "suggest", str(path), "--max-failure-rate", "0.05"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "too few for a risk map to guide the search (at least 10 of each); sweep more" in err


@pytest.mark.slow
def test_the_same_sweep_gives_the_same_suggestion(clear):
    _, df = clear
    a, b = suggest_envelope(df, 0.05, seed=4), suggest_envelope(df, 0.05, seed=4)
    assert a.envelope == b.envelope and a.path.equals(b.path)


@pytest.mark.slow
def test_the_suggestion_needs_neither_pybullet_nor_torch():
    from tests.test_core_imports import SCRIPT

    res = subprocess.run([sys.executable, "-c", SCRIPT, "analysis.suggestion"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
