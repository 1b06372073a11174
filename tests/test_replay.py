"""Replaying stored experiments: the outcome reproduces (and a changed one is said), the animation has every frame
and marks the failure, any env that renders can be filmed, and one that cannot is a one-line error."""

from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from PIL import Image

import robogate
from robogate._utils.seeding import trial_seed
from robogate.cli.parser import main
from robogate.datasets.store import SweepStore
from robogate.reports.animation import Replayer, replay, write_animation
from robogate.sweep.config import SweepConfig
from robogate.sweep.run import run_sweep
from tests.helpers import ENV_ID

TESTS = Path(__file__).resolve().parent
GRASP_MISS = {"friction": 0.1, "mass": 1.5}  # slippery and heavy: the scripted grasp slips (seed 0, 17 steps)
COLLISION = {"size": 0.11}  # wider than the gripper opens: the fingers press on it (seed 0, 7 steps)


def store_episodes(path, scenes, env_id=ENV_ID, policy="scripted", stored_outcomes=None):
    """A finished sweep store whose rows are the episodes ``scenes`` (params, seed) really run (stage 1).

    ``stored_outcomes`` overrides what is stored, to make a sweep whose outcomes no longer reproduce.
    """
    records = []
    env = gym.make(env_id)
    for i, (params, seed) in enumerate(scenes):
        record = robogate.run_episode(env, policy, params, seed)
        if stored_outcomes is not None:
            record.update(outcome=stored_outcomes[i], success=stored_outcomes[i] == "success")
        records.append({"id": i, "stage": 1, "batch": 0, **record, "env_id": env_id, "policy": policy})
    space = env.unwrapped.parameter_space
    env.close()
    config = SweepConfig(env_id=env_id, policy=policy, seed=0, space=space, n_lhs=len(records), n_boundary=0,
                         band=(0.3, 0.7), batch_size=10, n_candidates=1000)
    SweepStore.create(path, {**config.to_manifest(), "complete": True}).append(records)
    return path


def red_pixels(frame):
    rgb = np.asarray(frame.convert("RGB")).astype(int)
    return int(((rgb[..., 0] > 190) & (rgb[..., 1] < 80) & (rgb[..., 2] < 80)).sum())


def gif_frames(path):
    image = Image.open(path)
    frames, durations = [], []
    for k in range(image.n_frames):
        image.seek(k)
        frames.append(image.copy())
        durations.append(image.info["duration"])
    return frames, durations


@pytest.fixture(scope="module")
def lab():
    """tests/ on the path, so that ``mylab_envs`` and ``drawn_envs`` import, as a lab's own modules would."""
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(TESTS))
        yield


@pytest.mark.slow
def test_every_row_of_a_real_sweep_replays_to_its_stored_outcome(tmp_path, local_pool):
    """Workers reuse their env between episodes; a replay makes a fresh one with rendering on: same outcomes."""
    out = tmp_path / "sweep"
    df = run_sweep(ENV_ID, "scripted", out, n_lhs=10, n_boundary=0, seed=3, executor=local_pool, progress=False)
    replays = replay(out, df["id"].tolist())
    assert [r.id for r in replays] == df["id"].tolist()
    assert [r.outcome for r in replays] == df["outcome"].tolist() and all(r.reproduced for r in replays)
    assert [r.steps for r in replays] == df["steps"].tolist()
    assert [r.seed for r in replays] == [trial_seed(3, i) for i in df["id"]]
    assert all(r.frames == {} for r in replays)  # no --out: nothing rendered


@pytest.mark.slow
def test_the_animation_has_every_frame_and_marks_the_failure(tmp_path):
    sweep = store_episodes(tmp_path / "s", [({}, 0), (GRASP_MISS, 0), (COLLISION, 0)])
    (r,) = replay(sweep, outcome="grasp_miss", out=tmp_path / "films")
    assert r.id == 1 and r.reproduced and r.outcome == "grasp_miss" and r.failure_step is not None
    assert r.path == tmp_path / "films" / "experiment-1-grasp_miss.gif" and sorted(r.frames) == list(range(r.steps + 1))
    frames, durations = gif_frames(r.path)
    assert len(frames) == r.steps + 1  # the start, then one frame per control step
    fail = r.failure_step + 1
    assert durations[fail] >= 900 and max(durations[:fail]) <= 150  # the failure frame is held for a second
    before, failed = red_pixels(frames[fail - 1]), red_pixels(frames[fail])
    assert failed > before + 4000  # the red border appears at the failure frame
    assert red_pixels(frames[-1]) > before + 4000  # and stays
    assert frames[0].size[0] > 320  # the picture is not shrunk below the render


@pytest.mark.slow
def test_the_cli_replays_by_outcome_and_by_id(tmp_path, capsys):
    sweep = store_episodes(tmp_path / "s", [({}, 0), (COLLISION, 0), (COLLISION, 1)])
    assert main(["replay", str(sweep), "--outcome", "collision", "--count", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all("collision at step" in line and "(reproduced)" in line for line in lines)
    assert sorted(p.name for p in (sweep / "replay").iterdir()) == ["experiment-1-collision.gif",
                                                                   "experiment-2-collision.gif"]
    assert main(["replay", str(sweep), "--id", "2", "--out", str(tmp_path / "ok")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("experiment 2: collision at step") and (tmp_path / "ok" / "experiment-2-collision.gif").exists()


@pytest.mark.slow
def test_an_outcome_that_does_not_reproduce_is_said_and_exits_1(tmp_path, capsys):
    sweep = store_episodes(tmp_path / "s", [({}, 0)], stored_outcomes=["collision"])  # it succeeds
    assert main(["replay", str(sweep), "--id", "0"]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("experiment 0: NOT REPRODUCED: stored collision, replayed success")
    assert "1 of 1 replayed experiments did not end as stored" in captured.err


@pytest.mark.slow
@pytest.mark.parametrize("args, words", [
    ([], "say which experiments, by id (--id N) or by outcome"),
    (["--id", "7"], "no experiment with id 7 in this sweep (its ids run 0–0)"),
    (["--outcome", "fell_over"], "no experiment ended 'fell_over'; this sweep's outcomes are success (1)"),
    (["--id", "0", "--outcome", "success"], "give --id or --outcome, not both"),
])
def test_a_bad_selection_is_one_line(tmp_path, capsys, args, words):
    sweep = store_episodes(tmp_path / "s", [({}, 0)])
    assert main(["replay", str(sweep), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err


@pytest.mark.parametrize("env_id, why", [
    ("mylab_envs:Slide-v0", "gymnasium.make(..., render_mode='rgb_array') raised TypeError: SlideEnv.__init__() got "
                            "an unexpected keyword argument 'render_mode'"),
    ("drawn_envs:BlankSlide-v0", "render() returned None, not an RGB image"),  # said so, not a policy error
])
def test_an_env_that_cannot_render_is_one_line(lab, tmp_path, capsys, env_id, why):
    sweep = store_episodes(tmp_path / "s", [({}, 0)], env_id=env_id, policy="mylab_envs:SlidePolicy")
    assert main(["replay", str(sweep), "--id", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"env {env_id!r} cannot render frames: {why}" in err
    assert "render_mode='rgb_array'" in err and "Traceback" not in err


@pytest.mark.slow
def test_any_env_that_renders_is_filmed(lab, tmp_path, capsys):
    """A lab's own env with an rgb_array render: its failures replay and film like robogate's."""
    scenes = [({"friction": 0.2, "surface": "waxed"}, s) for s in range(3)]  # slippery: the puck overshoots
    sweep = store_episodes(tmp_path / "s", scenes, env_id="drawn_envs:DrawnSlide-v0", policy="mylab_envs:SlidePolicy")
    stored = pd.read_parquet(sweep / "results")
    failure = stored.loc[~stored["success"], "outcome"].iloc[0]
    assert main(["replay", str(sweep), "--outcome", str(failure)]) == 0
    (gif,) = (sweep / "replay").iterdir()
    frames, _ = gif_frames(gif)
    steps = int(stored.loc[stored["outcome"] == failure, "steps"].iloc[0])
    assert len(frames) == steps + 1 and "(reproduced)" in capsys.readouterr().out


def test_mp4_without_ffmpeg_is_a_clear_error(tmp_path, monkeypatch):
    from matplotlib.animation import FFMpegWriter

    monkeypatch.setattr(FFMpegWriter, "isAvailable", classmethod(lambda cls: False))
    with Replayer(ENV_ID, "scripted") as replayer:
        r = replayer.run(COLLISION, 0, "all")
    with pytest.raises(ValueError, match="MP4 needs ffmpeg on the PATH"):
        write_animation(r, tmp_path / "a.mp4")
    with pytest.raises(ValueError, match="must end in .gif or .mp4"):
        write_animation(r, tmp_path / "a.avi")
