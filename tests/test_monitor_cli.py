"""robogate monitor calibrate | eval, on rollout files in the recorded layout."""

import numpy as np
import pytest

from robogate.cli import main
from robogate.monitor import FailureMonitor
from robogate.monitor.recording import EpisodeRecording, write_episodes
from tests.monitor_synthetic import rollouts


def write(path, items):
    """Store synthetic rollouts as a rollout file (their embeddings stand in for observations)."""
    episodes = [
        EpisodeRecording(observations=r.embeddings, actions=np.zeros((r.steps, 5), dtype=np.float32),
                         outcome=r.outcome, failure_step=r.failure_step, embeddings=r.embeddings,
                         action_chunks=r.action_chunks)
        for r in items
    ]
    return str(write_episodes(path / "rollouts.parquet", episodes, {"env_id": "synthetic"}))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("rollouts")
    return {
        "cal": write(root / "cal", rollouts(10, 60)),
        "val": write(root / "val", rollouts(11, 30) + rollouts(12, 15, shifted=True)),
        "in": write(root / "in-distribution", rollouts(13, 40)),
        "shifted": write(root / "shifted", rollouts(14, 20, shifted=True)),
    }


def test_calibrate_then_eval_writes_the_monitor_and_the_report(files, tmp_path, capsys):
    out = tmp_path / "mon"
    assert main(["monitor", "calibrate", files["cal"], "--out", str(out), "--alpha", "0.1", "--epochs", "5",
                 "--validation", files["val"], "--windows", "1", "5", "--alphas", "0.1", "0.2"]) == 0
    printed = capsys.readouterr().out
    assert "chosen on 45 validation rollouts" in printed and "calibrated on 30 successful rollouts" in printed
    monitor = FailureMonitor.load(out)
    assert monitor.window in (1, 5) and monitor.alpha in (0.1, 0.2)
    report = tmp_path / "report"
    assert main(["monitor", "eval", str(out), files["in"], files["shifted"], "--report", str(report),
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out
    for variant in ("AND", "OR", "RND", "ACE"):
        assert variant in printed
    assert "in-distribution" in printed and "shifted" in printed and "all test rollouts" in printed
    html = (report / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and "FIPER" in html


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--combine", "xor"], "combine must be one of"),
        (["--threshold", "adaptive"], "threshold must be one of"),
        (["--alpha", "0.01"], "too few for alpha"),
    ],
)
def test_calibrate_reports_bad_settings_in_one_line(files, tmp_path, capsys, extra, message):
    assert main(["monitor", "calibrate", files["cal"], "--out", str(tmp_path / "m"), "--epochs", "1", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("robogate: error:") and message in err


def test_calibrate_on_failures_only_is_an_error(files, tmp_path, capsys):
    assert main(["monitor", "calibrate", files["shifted"], "--out", str(tmp_path / "m")]) == 2
    assert "none is successful" in capsys.readouterr().err
