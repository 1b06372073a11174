"""robogate monitor calibrate | eval, on rollout files in the recorded layout."""

import sys

import numpy as np
import pytest

from robogate.cli.parser import main
from robogate.datasets.episodes import write_episodes
from robogate.execution.episode import EpisodeRecording
from robogate.monitor import FailureMonitor
from tests.monitor_synthetic import rollouts


def write(path, items):
    """Store synthetic rollouts as a rollout file."""
    episodes = [
        EpisodeRecording(observations=r.observations, actions=np.zeros((r.steps, 5), dtype=np.float32),
                         outcome=r.outcome, failure_step=r.failure_step, embeddings=r.embeddings,
                         action_chunks=r.action_chunks)
        for r in items
    ]
    return str(write_episodes(path / "rollouts.parquet", episodes, {"env_id": "synthetic", "fps": 10}))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("rollouts")
    return {
        "cal": write(root / "cal", rollouts(10, 60)),
        "val": write(root / "val", rollouts(11, 30) + rollouts(12, 15, shifted=True)),
        "in": write(root / "in-envelope", rollouts(13, 40)),
        "shifted": write(root / "shifted", rollouts(14, 20, shifted=True)),
    }


@pytest.mark.slow
def test_calibrate_with_defaults_saves_the_default_monitor(files, tmp_path, capsys):
    assert main(["monitor", "calibrate", files["cal"], "--out", str(tmp_path / "mon")]) == 0
    assert "rnd OR obs_rnd" in capsys.readouterr().out
    monitor = FailureMonitor.load(tmp_path / "mon")
    default = FailureMonitor()
    assert monitor.scores_ == ("rnd", "obs_rnd") and monitor.selection_ is None
    assert (monitor.alpha, monitor.window, monitor.combine) == (default.alpha, default.window, default.combine)


@pytest.mark.slow
def test_calibrate_chooses_scores_and_settings_on_validation_then_eval_reports_them(files, tmp_path, capsys):
    out = tmp_path / "mon"
    assert main(["monitor", "calibrate", files["cal"], "--out", str(out), "--alpha", "0.1",
                 "--validation", files["val"]]) == 0
    printed = capsys.readouterr().out
    assert "chosen on validation: 45 rollouts (15 failures)" in printed
    monitor = FailureMonitor.load(out)
    assert monitor.alpha == 0.1  # given, so kept
    assert monitor.selection_["validation"] == {"name": "validation", "rollouts": 45, "failures": 15}
    assert len(monitor.selection_["searched"]["scores"]) > 10  # score sets and combinations were searched
    report = tmp_path / "report"
    assert main(["monitor", "eval", str(out), files["shifted"], "--in-envelope", files["in"], "--report",
                 str(report), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "as saved" in printed and "in-envelope" in printed and "shifted" in printed
    html = (report / "report.html").read_text()
    assert "Chosen on 45 validation rollouts (15 failures)" in html
    assert "False alarms on held-out in-envelope successes" in html and "Successful rollouts of in-envelope" in html
    assert html.count("data:image/png;base64,") == 3 and "FIPER" in html and "SAFE" in html


@pytest.mark.slow
def test_eval_without_validation_says_the_settings_were_given(files, tmp_path, capsys):
    out = tmp_path / "mon"
    assert main(["monitor", "calibrate", files["cal"], "--out", str(out), "--scores", "rnd", "ace",
                 "--combine", "and"]) == 0
    assert main(["monitor", "eval", str(out), files["shifted"], "--report", str(tmp_path / "r"), "--no-progress"]) == 0
    html = (tmp_path / "r" / "report.html").read_text()
    assert "chosen on the validation" not in html and "were given, not chosen" in html
    assert "rnd AND ace" in html  # the saved monitor is what the report describes and draws
    assert "guarantee is not checked here" in html  # no in-envelope test set: no guarantee claimed


@pytest.mark.parametrize("extra", [["--combine", "xor"], ["--threshold", "adaptive"]])
def test_calibrate_choices_are_checked_by_the_parser(files, tmp_path, capsys, extra):
    with pytest.raises(SystemExit) as exited:
        main(["monitor", "calibrate", files["cal"], "--out", str(tmp_path / "m"), *extra])
    assert exited.value.code == 2 and f"invalid choice: '{extra[1]}'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--scores", "rnd", "entropy"], "unknown score 'entropy'"),
        (["--alpha", "0.01"], "too few for alpha=0.01"),
        (["--alpha", "0.05", "--confidence", "0.9"], "too few for alpha=0.05 at confidence 0.9"),
        (["--miss-rate", "0.1"], "--miss-rate and --failures go together"),
    ],
)
def test_calibrate_reports_bad_settings_in_one_line(files, tmp_path, capsys, extra, message):
    assert main(["monitor", "calibrate", files["cal"], "--out", str(tmp_path / "m"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("robogate: error:") and message in err and err.count("\n") == 1


def test_a_bad_score_name_is_refused_before_any_rollout_is_read(tmp_path, capsys):
    missing = str(tmp_path / "nowhere")
    assert main(["monitor", "calibrate", missing, "--out", str(tmp_path / "m"), "--scores", "rnd", "entropy"]) == 2
    assert "unknown score 'entropy'" in capsys.readouterr().err  # not "no recorded episodes at nowhere"


def test_calibrate_on_failures_only_or_a_sweep_folder_is_an_error(files, tmp_path, capsys):
    assert main(["monitor", "calibrate", files["shifted"], "--out", str(tmp_path / "m")]) == 2
    assert "none is successful" in capsys.readouterr().err
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "manifest.json").write_text("{}")
    assert main(["monitor", "calibrate", str(tmp_path / "sweep"), "--out", str(tmp_path / "m")]) == 2
    assert "is a sweep folder, not recorded episodes" in capsys.readouterr().err


@pytest.mark.slow
def test_eval_of_a_damaged_monitor_is_one_line(files, tmp_path, capsys):
    out = tmp_path / "mon"
    assert main(["monitor", "calibrate", files["cal"], "--out", str(out)]) == 0
    (out / "arrays.npz").write_bytes(b"hello")
    assert main(["monitor", "eval", str(out), files["shifted"]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "damaged FailureMonitor" in err


@pytest.mark.slow
def test_building_the_parser_does_not_import_torch():
    import subprocess

    code = "import sys, robogate.cli.parser as c; c.build_parser(); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_monitor_train_takes_no_progress_like_the_others(tmp_path, monkeypatch):
    from tests.monitor_synthetic import labelled
    from tests.test_console import on_a_terminal

    train = write(tmp_path / "rollouts", labelled(20, 20))
    terminal = on_a_terminal(monkeypatch)
    assert main(["monitor", "train", train, "--out", str(tmp_path / "bar"), "--epochs", "3"]) == 0
    assert "train: 100%" in terminal.getvalue() and "3/3" in terminal.getvalue()
    terminal = on_a_terminal(monkeypatch)
    assert main(["monitor", "train", train, "--out", str(tmp_path / "quiet"), "--epochs", "3", "--no-progress"]) == 0
    assert terminal.getvalue() == ""


@pytest.mark.slow
def test_train_a_predictor_then_calibrate_with_it(tmp_path, capsys):
    from tests.monitor_synthetic import labelled

    root = tmp_path / "rollouts"
    train = write(root / "train", labelled(20, 60))
    cal = write(root / "cal", rollouts(21, 60))
    assert main(["monitor", "train", train, "--out", str(tmp_path / "pred"), "--epochs", "20"]) == 0
    printed = capsys.readouterr().out
    assert "trained on 30 successes and 30 failures" in printed and (tmp_path / "pred" / "loss.png").is_file()
    assert main(["monitor", "calibrate", cal, "--predictor", str(tmp_path / "pred"), "--scores", "rnd",
                 "--out", str(tmp_path / "mon")]) == 0
    monitor = FailureMonitor.load(tmp_path / "mon")
    assert monitor.scores_ == ("rnd", "predictor")
    assert main(["monitor", "train", cal, "--out", str(tmp_path / "p2")]) == 2
    assert "0 failures" in capsys.readouterr().err
    assert main(["monitor", "calibrate", cal, "--predictor", str(tmp_path / "nowhere"), "--out", str(tmp_path / "m")]) == 2
    assert "holds no trained FailurePredictor" in capsys.readouterr().err


@pytest.mark.slow
def test_calibrate_with_a_stated_confidence_or_a_miss_rate_and_eval_gives_both_error_rates(files, tmp_path, capsys):
    stated = tmp_path / "stated"
    assert main(["monitor", "calibrate", files["cal"], "--out", str(stated), "--alpha", "0.1",
                 "--confidence", "0.9"]) == 0
    assert "alpha 0.1 at confidence 0.9" in capsys.readouterr().out
    assert FailureMonitor.load(stated).confidence == 0.9
    bounded = tmp_path / "bounded"
    assert main(["monitor", "calibrate", files["cal"], "--out", str(bounded), "--miss-rate", "0.1",
                 "--failures", files["shifted"], files["val"]]) == 0
    printed = capsys.readouterr().out
    assert "misses at most 0.1 of such failures on average" in printed and "calibration successes" in printed
    assert FailureMonitor.load(bounded).miss_bound_.failures == 35
    report = tmp_path / "report"
    assert main(["monitor", "eval", str(stated), files["shifted"], "--in-envelope", files["in"], "--report",
                 str(report), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "both error rates" in printed and "tpr_lower" in printed and "false_alarm_upper" in printed
    assert "cut after" in printed and "90 % predictive range" in printed
    html = (report / "report.html").read_text()
    assert "Both error rates, per family" in html and "Length-free" in html and "Which number is which" in html
