"""Tests of the training envelope and of recording scripted demonstrations."""

import numpy as np
import pytest

from robogate.cli import main
from robogate.demos import (
    DEMOS_FILE,
    TRAINING_ENVELOPE,
    check_envelope,
    in_envelope,
    load_demos,
    record_demos,
    sample_envelope,
    sample_shifted,
    shifted_envelopes,
)
from robogate.space import default_space
from tests.helpers import ENV_ID


def test_default_envelope_is_a_valid_part_of_the_space():
    env = check_envelope(None)
    assert list(env) == default_space().names
    assert env["friction"] == (0.4, 1.2) and env["obstacles"] == (0, 0)
    assert env["shape"] == tuple(TRAINING_ENVELOPE["shape"])
    assert in_envelope(default_space().nominal())


def test_left_out_parameters_stay_nominal():
    env = check_envelope({"friction": (0.2, 0.5)})
    assert env["mass"] == (0.2, 0.2) and env["shape"] == ("box",) and env["placement"] == ("center",)
    for p in sample_envelope({"friction": (0.2, 0.5)}, 20, seed=1):
        assert 0.2 <= p["friction"] <= 0.5 and p["mass"] == 0.2 and p["shape"] == "box"


@pytest.mark.parametrize("bad, match", [
    ({"gravity": (0, 1)}, "unknown parameter"),
    ({"friction": (0.9, 0.4)}, "low 0.9 > high 0.4"),
    ({"friction": (0.01, 0.4)}, "friction"),
    ({"mass": 0.3}, "must be a \\(low, high\\) pair"),
    ({"shape": ["box", "torus"]}, "torus"),
    ({"shape": []}, "at least one value"),
    ({"obstacles": (0, 1.5)}, "obstacles"),
])
def test_bad_envelopes_name_the_parameter(bad, match):
    with pytest.raises(ValueError, match=match):
        check_envelope(bad)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_samples_lie_inside_and_spread_over_the_envelope(seed):
    rows = sample_envelope(None, 60, seed=seed)
    assert len(rows) == 60 and all(in_envelope(p) for p in rows)
    assert rows == sample_envelope(None, 60, seed=seed)
    assert rows != sample_envelope(None, 60, seed=seed + 10)
    friction = np.array([p["friction"] for p in rows])
    # Latin Hypercube on a log scale: every decile of log-friction holds exactly 6 points.
    unit = np.log(friction / 0.4) / np.log(1.2 / 0.4)
    assert np.all(np.bincount(np.minimum((unit * 10).astype(int), 9), minlength=10) == 6)
    assert {p["shape"] for p in rows} == set(TRAINING_ENVELOPE["shape"])
    assert not in_envelope({"friction": 0.1})
    assert not in_envelope({"shape": "plate"})


def test_record_demos_writes_every_episode(tmp_path):
    path = record_demos(ENV_ID, 3, tmp_path, seed=4, workers=1, progress=False)
    assert path == tmp_path / DEMOS_FILE
    episodes, meta = load_demos(tmp_path)
    assert len(episodes) == 3 and meta["env_id"] == ENV_ID and meta["policy"] == "scripted"
    assert meta["envelope"]["shape"] == list(TRAINING_ENVELOPE["shape"])
    for e in episodes:
        assert e.observations.shape == (e.steps, 43) and e.actions.shape == (e.steps, 5)
        assert in_envelope(e.params) and e.embeddings is None and e.action_chunks is None
        assert np.all(np.abs(e.actions) <= 1.0)
    assert [e.params for e in episodes] == sample_envelope(None, 3, seed=4)


def test_empty_demos_folder_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no demonstrations in .*robogate policy demos"):
        load_demos(tmp_path)


def test_cli_demos(tmp_path, capsys):
    code = main(["policy", "demos", "--env", ENV_ID, "--episodes", "2", "--out", str(tmp_path), "--workers", "1",
                 "--envelope", "friction=0.6:0.9", "shape=box", "--no-progress"])
    assert code == 0
    assert "2 episodes" in capsys.readouterr().out
    episodes, meta = load_demos(tmp_path)
    assert meta["envelope"]["friction"] == [0.6, 0.9] and meta["envelope"]["shape"] == ["box"]
    assert all(0.6 <= e.params["friction"] <= 0.9 and e.params["shape"] == "box" for e in episodes)
    assert main(["policy", "demos", "--env", ENV_ID, "--episodes", "1", "--out", str(tmp_path),
                 "--envelope", "friction=2:3"]) == 2
    assert "friction" in capsys.readouterr().err


def test_shifts_move_one_parameter_out_of_the_envelope():
    base = check_envelope(None)

    shifted = shifted_envelopes()
    assert list(shifted) == default_space().names  # the default envelope leaves room on every axis
    assert shifted["friction"]["friction"] == (0.05, 0.4)  # wider than 1.2-1.2 above it
    assert shifted["obstacles"]["obstacles"] == (1, 4)
    assert set(shifted["shape"]["shape"]) == {"capsule", "plate"}
    for name, env in shifted.items():
        assert {k: v for k, v in env.items() if k != name} == {k: v for k, v in base.items() if k != name}
    rows = sample_shifted(None, 24, seed=3)
    assert rows == sample_shifted(None, 24, seed=3) and not any(in_envelope(p) for p in rows)
    names = default_space().names
    for i, p in enumerate(rows):  # parameter i mod 8 is the one outside, the rest inside
        outside = [n for n in names if not in_envelope({**default_space().nominal(), n: p[n]})]
        assert outside == [names[i % 8]]
    full = {d.name: list(d.choices) if hasattr(d, "choices") else (d.low, d.high) for d in default_space()}
    assert shifted_envelopes(full) == {}
    with pytest.raises(ValueError, match="whole space"):
        sample_shifted(full, 2)
