"""Tests of the training envelope and of recording scripted demonstrations."""

import numpy as np
import pytest

from robogate.cli.parser import main
from robogate.envs.scene import default_space
from robogate.scenarios.envelope import Envelope
from robogate.training.demonstrations import (
    DEMOS_FILE,
    TRAINING_ENVELOPE,
    load_demos,
    record_demos,
    sample_envelope,
    training_envelope,
)
from tests.helpers import ENV_ID


def test_default_envelope_is_a_valid_part_of_the_space():
    env = training_envelope(None)
    assert env is TRAINING_ENVELOPE and env.rest == "nominal" and env.left_out == []
    assert env.allowed("friction") == (0.4, 1.2) and env.allowed("obstacles") == {0}
    assert env.allowed("shape") == {"box", "cylinder", "sphere"}
    assert env.contains(default_space().nominal())


def test_left_out_parameters_stay_nominal():
    env = training_envelope({"friction": (0.2, 0.5)})
    assert env.allowed("mass") == (0.2, 0.2) and env.allowed("shape") == {"box"} and env.allowed("placement") == {"center"}
    for p in sample_envelope({"friction": (0.2, 0.5)}, 20, seed=1):
        assert 0.2 <= p["friction"] <= 0.5 and p["mass"] == 0.2 and p["shape"] == "box"


@pytest.mark.parametrize("bad, match", [
    ({"gravity": (0, 1)}, "unknown parameter"),
    ({"friction": (0.9, 0.4)}, "friction range 0.9:0.4 is empty"),
    ({"friction": (0.01, 0.4)}, "friction"),
    ({"mass": 0.3}, "mass is continuous and needs a range"),
    ({"shape": ["box", "torus"]}, "torus"),
    ({"shape": []}, "allows no value"),
    ({"obstacles": (0, 1.5)}, "obstacles"),
])
def test_bad_envelopes_name_the_parameter(bad, match):
    with pytest.raises(ValueError, match=match):
        training_envelope(bad)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_samples_lie_inside_and_spread_over_the_envelope(seed):
    rows = sample_envelope(None, 60, seed=seed)
    assert len(rows) == 60 and all(TRAINING_ENVELOPE.contains(p) for p in rows)
    assert rows == sample_envelope(None, 60, seed=seed)
    assert rows != sample_envelope(None, 60, seed=seed + 10)
    friction = np.array([p["friction"] for p in rows])
    # Latin Hypercube on a log scale: every decile of log-friction holds exactly 6 points.
    unit = np.log(friction / 0.4) / np.log(1.2 / 0.4)
    assert np.all(np.bincount(np.minimum((unit * 10).astype(int), 9), minlength=10) == 6)
    assert {p["shape"] for p in rows} == TRAINING_ENVELOPE.allowed("shape")
    assert TRAINING_ENVELOPE.outside({"friction": 0.1}) == ["friction"]
    assert not TRAINING_ENVELOPE.contains({"shape": "plate"})


def test_record_demos_writes_every_episode(tmp_path):
    path = record_demos(ENV_ID, 3, tmp_path, seed=4, workers=1, progress=False)
    assert path == tmp_path / DEMOS_FILE
    episodes, meta = load_demos(tmp_path)
    assert len(episodes) == 3 and meta["env_id"] == ENV_ID and meta["policy"] == "scripted"
    assert Envelope.from_dict(meta["envelope"], default_space()) == TRAINING_ENVELOPE
    for e in episodes:
        assert e.observations.shape == (e.steps, 43) and e.actions.shape == (e.steps, 5)
        assert TRAINING_ENVELOPE.contains(e.params) and e.embeddings is None and e.action_chunks is None
        assert np.all(np.abs(e.actions) <= 1.0)
    assert [e.params for e in episodes] == sample_envelope(None, 3, seed=4)


def test_empty_demos_folder_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no demonstrations in .*robogate policy demos"):
        load_demos(tmp_path)


def test_cli_demos(tmp_path, capsys):
    code = main(["policy", "demos", "--env", ENV_ID, "--episodes", "2", "--out", str(tmp_path), "--workers", "1",
                 "--envelope", "friction=0.6:0.9", "--envelope", "shape=box", "--envelope", "obstacles=0,1",
                 "--no-progress"])
    assert code == 0
    assert "2 episodes" in capsys.readouterr().out
    episodes, meta = load_demos(tmp_path)
    envelope = Envelope.from_dict(meta["envelope"], default_space())  # both entries kept, the rest the training envelope's
    assert envelope == TRAINING_ENVELOPE.updated({"friction": (0.6, 0.9), "shape": ["box"], "obstacles": [0, 1]})
    assert all(0.6 <= e.params["friction"] <= 0.9 and e.params["shape"] == "box" for e in episodes)
    assert main(["policy", "demos", "--env", ENV_ID, "--episodes", "1", "--out", str(tmp_path),
                 "--envelope", "friction=2:3"]) == 2
    assert "friction" in capsys.readouterr().err
