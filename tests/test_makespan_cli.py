"""robogate monitor makespan: the decision and the threshold from labelled rollout files, as an exit status."""

import pytest

from robogate.cli import main
from robogate.monitor import FailureMonitor
from tests.monitor_synthetic import rollouts
from tests.test_monitor_cli import write


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("makespan")
    FailureMonitor(alpha=0.1, scores=["rnd"]).fit(rollouts(0, 80, chunks=False)).save(root / "monitor")
    return {
        "monitor": str(root / "monitor"),
        # Failures drift for many steps before they end, and the monitor sees the drift early.
        "val": write(root / "val", rollouts(1, 60, chunks=False) + rollouts(2, 60, shifted=True, chunks=False)),
        "test": write(root / "test", rollouts(3, 60, chunks=False) + rollouts(4, 60, shifted=True, chunks=False)),
        "successes": write(root / "successes", rollouts(5, 60, chunks=False)),
    }


def run(files, *extra):
    return main(["monitor", "makespan", files["val"], "--monitor", files["monitor"], "--reset-time", "0.5", *extra])


def test_stop_on_alarm_exits_0_with_the_threshold_checked_on_test_rollouts(files, tmp_path, capsys):
    assert run(files, "--test", files["test"], "--report", str(tmp_path / "report"), "--save",
               str(tmp_path / "chosen")) == 0
    out = capsys.readouterr().out
    assert out.startswith("decision: stop on alarm (threshold: alpha ")
    alpha = float(out.split("alpha ", 1)[1].split(")", 1)[0])
    assert "the verdict holds" in out
    assert FailureMonitor.load(tmp_path / "chosen").alpha == alpha
    html = (tmp_path / "report" / "report.html").read_text()
    assert "STOP ON ALARM" in html and "data:image/png;base64" in html
    assert (tmp_path / "report" / "makespan.png").is_file()


def test_run_to_the_end_exits_1(files, capsys):
    code = main(["monitor", "makespan", files["successes"], "--monitor", files["monitor"], "--reset-time", "2"])
    out = capsys.readouterr().out
    assert code == 1 and out.startswith("decision: run to the end (threshold: alpha ")
    assert "failures too rare" in out


def exit_status(argv):
    """What the command line exits with: a handler's return value, or argparse's SystemExit."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize("args, words", [
    ([], "the following arguments are required: --reset-time"),
    (["--reset-time", "-1"], "non-negative number of seconds"),
    (["--reset-time", "2", "--alphas", "1.5"], "expected a number in (0, 1)"),
    (["--reset-time", "2", "--monitor", "/nonexistent/monitor"], "holds no saved FailureMonitor"),
])
def test_usage_errors_exit_2_in_one_line(files, capsys, args, words):
    assert exit_status(["monitor", "makespan", files["val"], "--monitor", files["monitor"], *args]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_rollouts_without_a_control_rate_are_refused(files, tmp_path, capsys):
    from robogate.datasets.episodes import write_episodes
    from robogate.execution.episode import EpisodeRecording

    items = rollouts(6, 3, chunks=False)
    episodes = [EpisodeRecording(observations=r.observations, actions=r.observations[:, :2], outcome=r.outcome,
                                 embeddings=r.embeddings) for r in items]
    path = write_episodes(tmp_path / "rollouts.parquet", episodes, {"env_id": "synthetic", "fps": None})
    assert exit_status(["monitor", "makespan", str(path), "--monitor", files["monitor"], "--reset-time", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no control rate" in err and "\n" not in err
