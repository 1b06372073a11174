"""Tests of the ``robogate`` command line."""

import subprocess
import sys
from pathlib import Path

import pytest

import robogate
from robogate.cli.parser import build_parser, main
from robogate.datasets.store import SweepStore
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
    assert any(line.strip().startswith("stage 1: ") and line.endswith("of 6 (uniform)") for line in lines)
    assert any(line.strip().startswith("stage 2: ") and line.endswith("of 2 (boundary-focused)") for line in lines)
    assert any(line.startswith("outcomes: ") for line in lines)
    assert any(line.startswith("elapsed: ") for line in lines)
    assert lines[-1] == f"results: {out}"
    assert BANNER not in res.stdout and BANNER not in res.stderr
    # stderr is a pipe here, not a terminal: no progress bar redrawn with carriage returns
    assert res.stderr == ""
    assert len(SweepStore.open(out)) == 8


def on_a_terminal(argv, timeout=300):
    """Run the console script with stderr on a pseudo-terminal (80 columns); return what it drew there."""
    import fcntl
    import os
    import pty
    import struct
    import termios

    cmd = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "robogate.cli"]
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen([*cmd, *argv], cwd=REPO, stdout=subprocess.DEVNULL, stderr=terminal)
    os.close(terminal)
    drawn = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        drawn += chunk
    os.close(controller)
    assert proc.wait(timeout=timeout) == 0
    return drawn.decode(errors="replace")


@pytest.mark.slow
def test_the_progress_bar_shows_on_a_terminal_with_one_rate(tmp_path):
    drawn = on_a_terminal(sweep_args(tmp_path / "s", "--workers", "2"))
    frames = [f for f in drawn.replace("\n", "\r").split("\r") if f.startswith("sweep")]
    assert frames and "8/8" in frames[-1] and "fail" in frames[-1]
    assert all(f.count("ep/s") <= 1 for f in frames)  # tqdm's rate only, no second one in the postfix


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


@pytest.mark.parametrize("argv, usage, hint", [
    (["sweep", "--env", "E", "--n-lsh", "10", "--out", "D"], "usage: robogate sweep ", "did you mean --n-lhs?"),
    (["suite", "run", "--out", "D", "--resume", "--polcy", "flow"], "usage: robogate suite run ",
     "did you mean --policy?"),
    (["monitor", "calibrate", "R", "--out", "D", "--alhpa=0.1", "--windw", "3"], "usage: robogate monitor calibrate ",
     "did you mean --alpha and --window?"),
    (["gate", "D", "E", "--max-failure-rate", "0.1"], "usage: robogate gate ", "unrecognized arguments: E\n"),
])
def test_a_mistyped_flag_gets_the_subcommands_usage_and_the_closest_flag(capsys, argv, usage, hint):
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.startswith(usage) and hint in err
    assert f"{usage.split(' ', 1)[1].strip()}: error: unrecognized arguments: " in err


@pytest.mark.parametrize("argv, module, function", [
    (["sweep", "--env", ENV_ID, "--n-lhs", "2", "--n-boundary", "0", "--out", "D"], "robogate.sweep.run", "run_sweep"),
    (["gate", "D", "--max-failure-rate", "0.1"], "robogate.sweep.stored", "load_sweep"),
    (["suite", "run", "--env", ENV_ID, "--policy", "scripted", "--out", "D"], "robogate.suites.run", "run_suite"),
    (["compare", "A", "B", "--out", "D"], "robogate.suites.comparison", "compare"),
])
def test_an_unexpected_error_in_a_deciding_command_is_no_verdict(capsys, monkeypatch, argv, module, function):
    import importlib

    def crash(*args, **kwargs):
        return {}["seed"]

    monkeypatch.setattr(importlib.import_module(module), function, crash)
    code, stdout, err = run_main(capsys, argv)
    assert code == 5 and code not in (0, 1, 3)
    assert err.startswith("robogate: internal error: KeyError: 'seed' (in crash, test_cli.py line ")
    assert err.count("\n") == 1 and "Traceback" not in err


def half_made(tmp_path):
    """A suite run and a sweep each left with a manifest and no finished experiment, as a failed run leaves them."""
    from robogate.suites.run import open_run
    from robogate.suites.suite import load_suite
    from robogate.sweep.config import SweepConfig

    open_run(tmp_path / "run", ENV_ID, "scripted", load_suite("robogate-68"), False)  # a plan, no results
    config = SweepConfig.build(ENV_ID, "scripted", n_lhs=4, n_boundary=0, seed=0)
    SweepStore.create(tmp_path / "sweep", {**config.to_manifest(), "complete": True})  # not even a plan
    return tmp_path / "run", tmp_path / "sweep"


def test_an_incomplete_run_or_sweep_folder_is_refused_naming_it(tmp_path, capsys):
    run, sweep = half_made(tmp_path)
    for argv, folder in [(["compare", str(run), str(run)], run), (["compare", str(sweep), str(sweep)], sweep),
                         (["gate", str(sweep), "--max-failure-rate", "0.1"], sweep), (["report", str(sweep)], sweep),
                         (["rollouts", "record", "--env", ENV_ID, "--episodes", "1", "--from-sweep", str(sweep),
                           "--out", str(tmp_path / "r")], sweep)]:
        code, stdout, err = run_main(capsys, argv)
        assert code == 2 and err.count("\n") == 1, (argv, err)
        assert err.startswith(f"robogate: error: the {'suite run' if folder == run else 'sweep'} in {folder} holds no "
                              f"finished ") and "--resume" in err


EPISODE_COMMANDS = [("sweep",), ("gate",), ("suite", "run"), ("compare",), ("policy", "demos"),
                    ("rollouts", "record")]
COMMANDS = [*EPISODE_COMMANDS, ("report",), ("suite",), ("suite", "list"), ("demo",), ("policy",),
            ("policy", "train"), ("rollouts",), ("monitor",), ("monitor", "calibrate"), ("monitor", "train"),
            ("monitor", "eval"), ("monitor", "makespan"), ("replay",), ("envelope",), ("envelope", "suggest")]


def test_every_command_prints_its_help_and_the_shared_flags_alike(capsys):
    helps = {}
    for command in [(), *COMMANDS]:
        with pytest.raises(SystemExit) as info:
            main([*command, "--help"])
        out = capsys.readouterr().out
        helps[command] = " ".join(out.split())
        assert info.value.code == 0 and helps[command].startswith(" ".join(["usage: robogate", *command]))
        listed = {line.split()[0] for line in out.splitlines() if line.startswith("    ") and line[4] != " "}
        assert listed == {c[len(command)] for c in COMMANDS if c[:len(command)] == command and len(c) > len(command)}
    workers = "--workers K parallel episodes (default: all cores)"
    for command in EPISODE_COMMANDS:  # one definition of where episodes run, one help text
        assert f"how it runs: {workers} --executor NAME where episodes run:" in helps[command]
        assert "--address ADDR where the executor runs" in helps[command] and "--no-progress" in helps[command]
    assert workers in helps[("demo",)] and "--executor" not in helps[("demo",)]


@pytest.mark.parametrize("command", EPISODE_COMMANDS + [("demo",)])
def test_shared_flags_parse_alike_in_every_command(command):
    parser = build_parser()
    required = {("sweep",): ["--out", "DIR"], ("gate",): ["DIR", "--max-failure-rate", "0.1"], ("demo",): [],
                ("suite", "run"): ["--env", "E", "--policy", "P", "--out", "DIR"], ("compare",): ["A", "B"],
                ("policy", "demos"): ["--env", "E", "--episodes", "1", "--out", "DIR"],
                ("rollouts", "record"): ["--env", "E", "--episodes", "1", "--out", "DIR"]}[command]
    defaults = parser.parse_args([*command, *required])
    assert defaults.workers is None and defaults.progress is None  # None: a bar only on a terminal
    given = parser.parse_args([*command, *required, "--workers", "3", "--no-progress"])
    assert given.workers == 3 and given.progress is False and given.handler is defaults.handler
    if command != ("demo",):
        assert defaults.executor == "local" and defaults.address is None
        given = parser.parse_args([*command, *required, "--executor", "ray", "--address", "auto"])
        assert (given.executor, given.address) == ("ray", "auto")
    with pytest.raises(SystemExit) as info:
        parser.parse_args([*command, *required, "--workers", "0"])
    assert info.value.code == 2


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
            "--max-failure-rate", "0.5", "--no-gallery", *envelope_args(entries)]


def run_demos(tmp_path, entries):
    return ["policy", "demos", "--env", ENV_ID, "--episodes", "1", "--out", str(tmp_path / "demos"), "--workers", "1",
            "--no-progress", *envelope_args(entries)]


def run_rollouts(tmp_path, entries):
    return ["rollouts", "record", "--env", ENV_ID, "--episodes", "1", "--chunks", "2", "--workers", "1",
            "--out", str(tmp_path / "rollouts"), "--no-progress", *envelope_args(entries)]


def used_by_gate(tmp_path, out):
    from robogate.scenarios.envelope import Envelope

    rows = robogate.load_sweep(tmp_path / "sweep")
    inside = Envelope.parse(ENTRIES, rows.attrs["settings"]["space"]).mask(rows[rows["stage"] == 1]).sum()
    return f"in {inside} uniform experiments inside the envelope" in out


def used_by_report(tmp_path, out):
    text = (tmp_path / "report" / "report.md").read_text()
    return "Envelope: friction 0.5–1, obstacles in {0, 1}, shape box; free: mass, com_offset, size" in text


def used_by_demos(tmp_path, out):
    from robogate.scenarios.envelope import Envelope
    from robogate.training.demonstrations import TRAINING_ENVELOPE, load_demos

    _, meta = load_demos(tmp_path / "demos")
    wanted = TRAINING_ENVELOPE.updated(Envelope.parse(ENTRIES, TRAINING_ENVELOPE.space))
    return Envelope.from_dict(meta["envelope"], TRAINING_ENVELOPE.space) == wanted  # the three entries replaced, the rest kept


def used_by_rollouts(tmp_path, out):
    from robogate.monitor.recording import load_rollouts
    from robogate.policies import FlowPolicy
    from robogate.scenarios.envelope import Envelope

    base = FlowPolicy.pretrained().envelope
    wanted = base.updated(Envelope.parse(ENTRIES, base.space))
    return all(wanted.contains(r.params) for r in load_rollouts(tmp_path / "rollouts"))


@pytest.mark.slow
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

# ------------------------------------------------------------------ what a new user meets


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"robogate {robogate.__version__}"


def test_sweep_help_shows_what_is_required_and_every_policy_spec(capsys):
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    text = capsys.readouterr().out
    assert text.startswith("usage: robogate sweep --env ENV_ID --n-lhs N --n-boundary M --out DIR [options]")
    assert "robogate sweep --out DIR --resume" in text
    assert "'flow:PATH'" in " ".join(text.split()) and "'flow'" in text


@pytest.mark.parametrize("holds, why", [
    (None, "there is no such folder"),
    ([], "the folder is empty"),
    (["rollouts.parquet"], "the folder holds no robogate sweep (no manifest.json)"),  # a rollouts folder
])
def test_resume_of_a_folder_without_a_sweep_names_it(tmp_path, capsys, holds, why):
    folder = tmp_path / "runs"
    if holds is not None:
        folder.mkdir()
        for name in holds:
            (folder / name).write_text("x")
    for extra in ([], ["--env", ENV_ID, "--n-lhs", "2", "--n-boundary", "0"]):  # with the flags too: never afresh
        code, stdout, err = run_main(capsys, ["sweep", "--out", str(folder), "--resume", *extra])
        assert code == 2 and stdout == ""
        assert err == f"robogate: error: cannot resume {folder}: {why}; check the path, or leave out --resume " \
                      "(resume=False) to start a new sweep there\n"
    assert not (folder / "manifest.json").exists()


@pytest.mark.slow
def test_report_envelope_needs_the_gate_limit(tmp_path, capsys):
    from tests.test_report import make_sweep

    sweep = make_sweep(tmp_path / "s")
    code, _, err = run_main(capsys, ["report", str(sweep), "--envelope", "friction=0.4:1.2"])
    assert code == 2 and err == "robogate: error: --envelope needs --max-failure-rate (the gate's limit, e.g. 0.05)\n"
    code, _, err = run_main(capsys, ["report", str(sweep), "--max-failure-rate", "0.07", "--no-gallery"])
    assert code == 0, err  # alone, the limit is the suggested envelope's
    assert "Where to deploy: a suggested envelope" in (sweep / "report" / "report.md").read_text()
    assert "at a 0.07 limit" in (sweep / "report" / "report.md").read_text()


def test_policy_train_on_a_folder_without_demos_names_the_file(tmp_path, capsys):
    code, _, err = run_main(capsys, ["policy", "train", str(tmp_path / "nope"), "--out", str(tmp_path / "t")])
    assert code == 2 and err.count("\n") == 1
    assert f"expected {tmp_path / 'nope' / 'demos.parquet'}" in err


@pytest.mark.parametrize("spec, words", [
    ("flow:README.md", "README.md is not a FlowPolicy checkpoint: torch.load cannot read it"),
    ("flow:tests", "no FlowPolicy checkpoint in tests: expected tests/policy.pt"),
])
def test_bad_checkpoint_specs_are_one_short_line(tmp_path, capsys, monkeypatch, spec, words):
    monkeypatch.chdir(REPO)
    code, _, err = run_main(capsys, sweep_args(tmp_path / "s", policy=spec))
    assert code == 2 and err.count("\n") == 1 and words in err
    assert len(err) < 400 and "weights_only" not in err


@pytest.fixture(scope="module")
def raising_sweep(tmp_path_factory):
    """A sweep of a policy whose act() raises, through the console script (so its stderr is what a user sees)."""
    out = tmp_path_factory.mktemp("raising") / "sweep"
    cmd = [sys.executable, "-m", "robogate.cli"]  # -m puts the repository on the path: tests.helpers imports
    res = subprocess.run([*cmd, "sweep", "--env", ENV_ID, "--policy", "tests.helpers:RaisingPolicy", "--n-lhs", "6",
                          "--n-boundary", "4", "--batch-size", "2", "--workers", "2", "--out", str(out)],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    return out, res


@pytest.mark.slow
def test_a_sweep_where_everything_errored_exits_4_with_the_first_error(raising_sweep):
    out, res = raising_sweep
    assert res.returncode == 4
    errors = [line for line in res.stdout.splitlines() if line.startswith("errors: ")]
    assert errors == ["errors: 10 of 10 experiments errored (the policy raised or the simulation diverged: a broken "
                      "harness, not a failure of the policy); first: the policy raised RuntimeError: policy exploded on purpose"]
    lines = res.stderr.splitlines()
    assert lines[-1] == ("robogate: error: every one of the 10 experiments errored, so the sweep says nothing about "
                         "the policy; first error: the policy raised RuntimeError: policy exploded on purpose")
    # the sampler's warning, once, in the CLI's own format: no Python source line, no repeats
    assert lines[:-1] == ["robogate: warning: stage-2 surrogate cannot be fitted (only failures told so far); "
                          "falling back to space-filling points"]


@pytest.mark.slow
def test_the_gate_on_a_broken_harness_is_no_unsafe_verdict(raising_sweep, capsys):
    out, _ = raising_sweep
    code, stdout, _ = run_main(capsys, ["gate", str(out), "--envelope", "size=0.02:0.12", "--max-failure-rate", "0.05"])
    assert code == 4 and stdout.startswith("error: all 10 experiments inside the envelope errored")
    assert "first error: the policy raised RuntimeError: policy exploded on purpose" in stdout and stdout.count("\n") == 1
    assert "fail" not in stdout.split(";")[0]


@pytest.mark.slow
def test_the_report_of_a_broken_harness_shows_the_errors_first(raising_sweep, capsys):
    from tests.test_report import parse

    out, _ = raising_sweep
    code, _, err = run_main(capsys, ["report", str(out)])
    assert code == 0, err
    _, text = parse(out / "report" / "report.html")
    assert text.index("Experiments that errored") < text.index("Summary")
    assert "10 of 10 experiments errored" in text and "the policy raised RuntimeError: policy exploded on purpose" in text
    assert "cannot carry a risk map" not in text and "too few for a risk map" in text


@pytest.mark.slow
def test_the_demo_ends_on_a_decided_gate(tmp_path, capsys, monkeypatch):
    """The demo's gate runs experiments in its envelope until decided (a smaller sweep here, the same gate)."""
    from robogate.cli import demo

    monkeypatch.setitem(demo.DEMO, "n_lhs", 20)
    monkeypatch.setitem(demo.DEMO, "n_boundary", 10)

    class Watched:  # the monitored rollout that ends the demo has tests of its own
        def summary(self):
            return "monitored rollout under {...}"

    def watched(*args, status, **kwargs):
        status("monitor calibration: ...")
        status("monitored rollout: ...")
        return Watched()

    monkeypatch.setattr(demo, "monitored_demo", watched)
    code, stdout, err = run_main(capsys, ["demo", "--out", str(tmp_path / "demo"), "--workers", "2"])
    assert code == 0, err
    phases = [line.split(":")[0] for line in stdout.splitlines() if line.startswith("[")]
    assert phases == ["[1/5] sweep", "[2/5] gate", "[3/5] report", "[4/5] monitor calibration",
                      "[5/5] monitored rollout"]  # one status line as each phase starts
    gate_line = next(line for line in stdout.splitlines() if line.startswith("gate: "))
    assert gate_line.startswith(("gate: pass: ", "gate: fail: ")) and "after running" in gate_line
    assert "the envelope leaves com_offset free over its full range" in gate_line
    assert (tmp_path / "demo" / "report" / "report.html").exists()
    assert stdout.splitlines()[-1].startswith("monitored rollout under ")
    assert "\r" not in err  # the test's stderr is no terminal: no progress bars
