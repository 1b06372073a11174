"""Tests of the ``robogate`` command line."""

import subprocess
import sys
from pathlib import Path

import pytest

import robogate
from robogate.cli import build_parser, main
from robogate.store import SweepStore
from tests.helpers import ENV_ID

REPO = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).with_name("robogate")
BANNER = "pybullet build time"
ARGS = ["--n-lhs", "6", "--n-boundary", "2", "--batch-size", "2", "--seed", "3"]


def sweep_args(out, *extra, env=ENV_ID, policy="scripted"):
    return ["sweep", "--env", env, "--policy", policy, *ARGS, "--out", str(out), *extra]


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """A real sweep through the installed console script, with two worker processes."""
    out = tmp_path_factory.mktemp("cli") / "sweep"
    cmd = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "robogate.cli"]
    res = subprocess.run([*cmd, *sweep_args(out, "--workers", "2")], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    return out, res


def run_main(capsys, argv):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.slow
def test_cli_sweep_prints_the_summary_and_no_banner(cli_run):
    out, res = cli_run
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "rows: 8"
    assert any(line.startswith("success rate: ") for line in lines)
    assert any(line.strip().startswith("stage 1: ") and line.endswith("of 6") for line in lines)
    assert any(line.strip().startswith("stage 2: ") and line.endswith("of 2") for line in lines)
    assert any(line.startswith("outcomes: ") for line in lines)
    assert any(line.startswith("elapsed: ") for line in lines)
    assert lines[-1] == f"results: {out}"
    assert BANNER not in res.stdout and BANNER not in res.stderr
    assert "Traceback" not in res.stderr
    assert "sweep" in res.stderr and "ep/s" in res.stderr and "fail" in res.stderr  # the progress bar
    assert len(SweepStore.open(out)) == 8


@pytest.mark.slow
def test_cli_resume_takes_settings_from_the_store(cli_run, capsys):
    out, _ = cli_run
    code, stdout, err = run_main(capsys, ["sweep", "--out", str(out), "--resume", "--no-progress"])
    assert code == 0, err
    assert stdout.splitlines()[0] == "rows: 8"
    assert err == ""


@pytest.mark.slow
def test_cli_resume_with_other_settings_names_the_field(cli_run, capsys):
    out, _ = cli_run
    code, stdout, err = run_main(capsys, ["sweep", "--out", str(out), "--resume", "--seed", "4"])
    assert code == 2 and stdout == ""
    assert err.startswith("robogate: error: cannot resume") and "seed differs" in err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.slow
def test_cli_existing_out_suggests_resume(cli_run, capsys):
    out, _ = cli_run
    code, _, err = run_main(capsys, sweep_args(out))
    assert code == 2 and "already holds a sweep" in err and "--resume" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (lambda out: sweep_args(out, env="robogate/Nope-v0"), "unknown env id 'robogate/Nope-v0'"),
        (lambda out: sweep_args(out, policy="nosuch:Policy"), "bad policy spec 'nosuch:Policy'"),
        (lambda out: sweep_args(out / "file" / "sub"), "not writable"),
        (lambda out: sweep_args(out, "--address", "auto"), "only used by the 'ray' executor"),
        (lambda out: sweep_args(out, "--executor", "dask"), "unknown executor 'dask'; expected one of: local, ray"),
        (lambda out: ["sweep", "--out", str(out)], "required: --env, --n-lhs, --n-boundary"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, capsys, argv, message):
    (tmp_path / "file").write_text("x")
    code, stdout, err = run_main(capsys, argv(tmp_path))
    assert code == 2 and stdout == ""
    assert err.startswith("robogate: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    if "unknown env id" in message:
        assert all(e in err for e in robogate.ENV_IDS)


@pytest.mark.parametrize(
    "extra", [["--band", "0.3", "1.5"], ["--workers", "0"], ["--n-lhs", "x"]]
)
def test_cli_rejects_malformed_arguments(tmp_path, capsys, extra):
    with pytest.raises(SystemExit) as info:
        main(sweep_args(tmp_path / "x", *extra))
    assert info.value.code == 2
    assert "robogate sweep: error:" in capsys.readouterr().err


def test_parser_lists_the_sweep_subcommand():
    parser = build_parser()
    assert "sweep" in parser.format_help()
    with pytest.raises(SystemExit):
        parser.parse_args([])


# ----------------------------------------------------------------------- one envelope syntax

ENTRIES = ["friction=0.5:1", "obstacles=0,1", "shape=box"]


def envelope_args(entries):
    return [a for entry in entries for a in ("--envelope", entry)]


def envelope_sweep(path):
    from tests.test_compare import stored_sweep

    return stored_sweep(path, 0, lambda rows, rng: rng.random(len(rows)) < 0.7, n=320)


def run_gate(tmp_path, entries):
    return ["gate", str(envelope_sweep(tmp_path / "sweep")), "--max-failure-rate", "0.5", *envelope_args(entries)]


def run_report(tmp_path, entries):
    return ["report", str(envelope_sweep(tmp_path / "sweep")), "--out", str(tmp_path / "report"),
            "--max-failure-rate", "0.5", *envelope_args(entries)]


def run_demos(tmp_path, entries):
    return ["policy", "demos", "--env", ENV_ID, "--episodes", "1", "--out", str(tmp_path / "demos"), "--workers", "1",
            "--no-progress", *envelope_args(entries)]


def run_rollouts(tmp_path, entries):
    return ["rollouts", "record", "--env", ENV_ID, "--episodes", "1", "--chunks", "2", "--workers", "1",
            "--out", str(tmp_path / "rollouts"), "--no-progress", *envelope_args(entries)]


def used_by_gate(tmp_path, out):
    from robogate.envelope import Envelope

    rows = robogate.load_sweep(tmp_path / "sweep")
    inside = Envelope.parse(ENTRIES, rows.attrs["settings"]["space"]).mask(rows[rows["stage"] == 1]).sum()
    return f"in {inside} uniform experiments inside the envelope" in out


def used_by_report(tmp_path, out):
    text = (tmp_path / "report" / "report.md").read_text()
    return "Envelope: friction 0.5–1, obstacles in {0, 1}, shape box; free: mass, com_offset, size" in text


def used_by_demos(tmp_path, out):
    from robogate.demos import TRAINING_ENVELOPE, load_demos
    from robogate.envelope import Envelope

    _, meta = load_demos(tmp_path / "demos")
    wanted = TRAINING_ENVELOPE.updated(Envelope.parse(ENTRIES, TRAINING_ENVELOPE.space))
    return Envelope.from_dict(meta["envelope"]) == wanted  # the three entries replaced, the rest kept


def used_by_rollouts(tmp_path, out):
    from robogate.envelope import Envelope
    from robogate.monitor.recording import load_rollouts
    from robogate.policies import FlowPolicy

    base = FlowPolicy.pretrained().envelope
    wanted = base.updated(Envelope.parse(ENTRIES, base.space))
    return all(wanted.contains(r.params) for r in load_rollouts(tmp_path / "rollouts"))


@pytest.mark.parametrize("argv, used", [(run_gate, used_by_gate), (run_report, used_by_report),
                                        (run_demos, used_by_demos), (run_rollouts, used_by_rollouts)],
                         ids=["gate", "report", "policy demos", "rollouts record"])
def test_every_command_reads_one_envelope_syntax(tmp_path, capsys, argv, used):
    code, out, err = run_main(capsys, argv(tmp_path, ENTRIES))
    assert code in (0, 1, 3), err
    assert used(tmp_path, out)
    code, out, err = run_main(capsys, argv(tmp_path / "bad", ["friction=0.5:1", "obstacles=0:9"]))
    assert code == 2 and err.startswith("robogate: error: envelope: obstacles value 9 is outside the space")
    assert err.count("\n") == 1
    code, out, err = run_main(capsys, argv(tmp_path / "twice", ["shape=box", "shape=sphere"]))
    assert code == 2 and "envelope: parameter 'shape' is given twice" in err
