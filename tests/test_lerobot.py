"""Tests of rollouts and demonstrations as LeRobot v3.0 datasets: the files as a plain Parquet reader sees
them, the round trip into robogate, a third-party validator (lerobot-doctor) and LeRobot's own loader."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from robogate.cli.parser import main
from robogate.datasets.episodes import read_episodes, resolve_episode_file
from robogate.datasets.lerobot import NO_FAILURE, write_lerobot
from robogate.envs.interface import ACTION_NAMES, CONTROL_HZ, OBS_NAMES
from robogate.execution.episode import EpisodeRecording
from robogate.monitor import load_rollouts, record_rollouts
from robogate.monitor.recording import ROLLOUTS_FILE
from robogate.policies.flow import FlowConfig
from robogate.scenarios.env_contract import recording_facts
from robogate.training.demonstrations import load_demos, record_demos
from robogate.training.flow import TrainConfig, train_flow_policy
from tests.helpers import ENV_ID

# Two scenes the shipped flow policy succeeds in and two it fails in (collision, grasp_miss) with seed 1.
SCENES = [{}, {"mass": 1.9}, {"size": 0.11}, {"friction": 0.1, "mass": 1.0}]
FRAME_COLUMNS = {"index", "episode_index", "frame_index", "timestamp", "task_index", "observation.state", "action",
                 "next.success", "next.done", "embedding", "action_chunks", "outcome", "failure_step", "params"}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Flow-policy rollouts written as a LeRobot dataset, and the rollouts record_rollouts returned."""
    out = tmp_path_factory.mktemp("lerobot") / "rollouts"
    rollouts = record_rollouts(ENV_ID, "flow", episodes=len(SCENES), params=SCENES, seed=1, n_chunks=4, out=out,
                               progress=False, format="lerobot")
    assert {r.success for r in rollouts} == {True, False}  # the dataset carries both labels
    return out, rollouts


def panda_facts():
    """What a recording of the Panda env says of it."""
    return recording_facts(gym.make(ENV_ID), ENV_ID)


def write(path, episodes, metadata=None, **kwargs):
    """``write_lerobot`` as robogate's recorders call it: the env's rate in the metadata, its facts beside."""
    facts = panda_facts()
    return write_lerobot(path, episodes, {"env_id": ENV_ID, "fps": facts["fps"], **(metadata or {})}, facts=facts,
                         **kwargs)


def synthetic(lengths, seed=0):
    rng = np.random.default_rng(seed)
    outcomes = ["success", "grip_loss", "collision"]
    return [EpisodeRecording(
        observations=rng.normal(size=(n, 43)).astype(np.float32),
        actions=rng.uniform(-1, 1, size=(n, 5)).astype(np.float32),
        outcome=outcomes[i % 3], params={"friction": 0.2 + i / 10, "shape": "box"}, seed=i,
        failure_step=None if i % 3 == 0 else n - 2, embeddings=rng.normal(size=(n, 6)).astype(np.float32),
        action_chunks=rng.normal(size=(n, 3, 4, 5)).astype(np.float32),
    ) for i, n in enumerate(lengths)]


@pytest.mark.slow
def test_files_read_back_with_pyarrow_as_written(recorded):
    root, rollouts = recorded
    info = json.loads((root / "meta/info.json").read_text())
    total = sum(r.steps for r in rollouts)
    assert info["codebase_version"] == "v3.0" and info["fps"] == CONTROL_HZ and info["robot_type"] == "panda"
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (len(rollouts), total, 1)
    assert info["chunks_size"] == 1000 and info["data_files_size_in_mb"] == 100
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["robogate"]["env_id"] == ENV_ID and info["robogate"]["action_chunks_shape"] == [4, 8, 5]

    features = info["features"]
    frames = pq.read_table(root / "data/chunk-000/file-000.parquet")
    assert set(frames.column_names) == set(features) == FRAME_COLUMNS
    for name, ft in features.items():
        assert {"dtype", "shape", "names"} <= set(ft), name
        width = int(np.prod(ft["shape"]))
        column = frames.column(name).combine_chunks()
        assert (column.type.list_size if width > 1 else 1) == width, name
    assert features["observation.state"] == {"dtype": "float32", "shape": [43], "names": list(OBS_NAMES)}
    assert features["action"]["names"] == list(ACTION_NAMES)
    assert features["action_chunks"]["shape"] == [4 * 8 * 5]
    assert features["action_chunks"]["names"][:6] == ["chunk0.step0.dx", "chunk0.step0.dy", "chunk0.step0.dz",
                                                      "chunk0.step0.dyaw", "chunk0.step0.grip", "chunk0.step1.dx"]
    assert (features["next.success"]["dtype"], features["outcome"]["dtype"]) == ("bool", "string")

    tasks = pd.read_parquet(root / "meta/tasks.parquet")
    assert tasks["task_index"].tolist() == [0] and tasks.index[0] == "Pick up the object and place it on the target."

    df = frames.to_pandas()
    episodes = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pandas()
    assert df["index"].tolist() == list(range(total))
    for i, r in enumerate(rollouts):
        ep, rows = episodes.iloc[i], df[df["episode_index"] == i]
        assert ep["episode_index"] == i and ep["length"] == r.steps == len(rows)
        assert list(ep["tasks"]) == [tasks.index[0]]
        assert (ep["dataset_from_index"], ep["dataset_to_index"]) == (rows["index"].iloc[0], rows["index"].iloc[-1] + 1)
        assert (ep["data/chunk_index"], ep["data/file_index"]) == (0, 0)
        assert (ep["outcome"], ep["success"], json.loads(ep["params"])) == (r.outcome, r.success, r.params)
        assert (None if pd.isna(ep["failure_step"]) else ep["failure_step"]) == r.failure_step
        assert rows["frame_index"].tolist() == list(range(r.steps))
        np.testing.assert_allclose(rows["timestamp"], np.arange(r.steps) / CONTROL_HZ, rtol=1e-6)
        np.testing.assert_array_equal(np.stack(rows["observation.state"]), r.observations)
        np.testing.assert_array_equal(np.stack(rows["action"]), r.actions)
        np.testing.assert_array_equal(np.stack(rows["embedding"]), r.embeddings)
        np.testing.assert_array_equal(np.stack(rows["action_chunks"]), r.action_chunks.reshape(r.steps, -1))
        done = np.arange(r.steps) == r.steps - 1
        assert rows["next.done"].tolist() == done.tolist()
        assert rows["next.success"].tolist() == (done & r.success).tolist()
        assert set(rows["outcome"]) == {r.outcome} and set(rows["params"]) == {ep["params"]}
        assert set(rows["failure_step"]) == {NO_FAILURE if r.failure_step is None else r.failure_step}

    stats = json.loads((root / "meta/stats.json").read_text())
    assert set(stats) == {n for n, ft in features.items() if ft["dtype"] != "string"}
    state = np.stack(df["observation.state"]).astype(np.float64)
    np.testing.assert_allclose(stats["observation.state"]["mean"], state.mean(axis=0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(stats["observation.state"]["std"], state.std(axis=0), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(stats["observation.state"]["min"], state.min(axis=0))
    np.testing.assert_allclose(stats["observation.state"]["q50"], np.median(state, axis=0))
    assert stats["action"]["count"] == [total] and stats["next.done"]["mean"] == [len(rollouts) / total]
    first = episodes.iloc[0]
    np.testing.assert_allclose(np.stack(first["stats/action/max"]), np.stack(df["action"][:rollouts[0].steps]).max(0))


def test_load_rollouts_reads_the_dataset_folder(recorded):
    root, rollouts = recorded
    assert resolve_episode_file(root) == root
    back = load_rollouts(root)
    assert len(back) == len(rollouts)
    for a, b in zip(back, rollouts):
        for name in ("observations", "actions", "embeddings", "action_chunks"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        assert (a.outcome, a.success, a.params, a.failure_step) == (b.outcome, b.success, b.params, b.failure_step)


def test_many_files_round_trip_exactly_and_a_rewrite_leaves_nothing_stale(tmp_path):
    episodes = synthetic([30, 2, 41, 17, 25, 9])
    root = write(tmp_path / "ds", episodes, {"policy": "test"}, data_files_size_in_mb=0.02, chunks_size=2)
    data_files = sorted(p.relative_to(root).as_posix() for p in (root / "data").rglob("*.parquet"))
    assert len(data_files) >= 3 and "data/chunk-001/file-000.parquet" in data_files  # chunk folders roll over
    index = pd.concat(pd.read_parquet(p) for p in sorted((root / "meta/episodes").rglob("*.parquet")))
    for _, ep in index.iterrows():  # each episode's frames lie whole in the file its metadata names
        chunk, file = ep["data/chunk_index"], ep["data/file_index"]
        frames = pd.read_parquet(root / f"data/chunk-{chunk:03d}/file-{file:03d}.parquet")
        assert (frames["episode_index"] == ep["episode_index"]).sum() == ep["length"]
    back, meta = read_episodes(root)
    assert meta["env_id"] == ENV_ID and meta["episodes"] == 6 and meta["frames"] == 124
    for a, b in zip(episodes, back):
        for name in ("observations", "actions", "embeddings", "action_chunks"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        assert (a.outcome, a.params, a.seed, a.failure_step) == (b.outcome, b.params, b.seed, b.failure_step)

    write(root, episodes[:1])
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*.parquet")) == [
        "data/chunk-000/file-000.parquet", "meta/episodes/chunk-000/file-000.parquet", "meta/tasks.parquet"]
    assert len(read_episodes(root)[0]) == 1 and not list(tmp_path.glob(".*tmp"))


def test_damaged_or_foreign_datasets_give_clear_errors(tmp_path):
    root = write(tmp_path / "ds", synthetic([5, 6]))
    damaged = shutil.copytree(root, tmp_path / "damaged")
    (damaged / "data/chunk-000/file-000.parquet").unlink()
    with pytest.raises(ValueError, match="is damaged: data/chunk-000/file-000.parquet is missing"):
        load_rollouts(damaged)
    short = shutil.copytree(root, tmp_path / "short")
    path = short / "data/chunk-000/file-000.parquet"
    pq.write_table(pq.read_table(path).slice(0, 8), path)
    with pytest.raises(ValueError, match="frames do not match its metadata"):
        load_rollouts(short)
    old = shutil.copytree(root, tmp_path / "old")
    info = json.loads((old / "meta/info.json").read_text())
    (old / "meta/info.json").write_text(json.dumps({**info, "codebase_version": "v2.1"}))
    with pytest.raises(ValueError, match="LeRobot v2.1 dataset; robogate reads v3.0"):
        load_rollouts(old)
    (root / ROLLOUTS_FILE).write_bytes(b"")
    with pytest.raises(ValueError, match="holds both a LeRobot dataset and rollouts.parquet"):
        load_rollouts(root)
    with pytest.raises(ValueError, match="already holds rollouts.parquet; record the LeRobot dataset"):
        record_rollouts(ENV_ID, "scripted", episodes=1, out=root, format="lerobot")
    with pytest.raises(ValueError, match="format must be one of 'parquet', 'lerobot'"):
        record_rollouts(ENV_ID, "scripted", episodes=1, out=tmp_path / "x", format="hdf5")


@pytest.mark.slow
def test_demos_as_lerobot_train_the_policy_like_parquet_demos(tmp_path, capsys):
    assert main(["policy", "demos", "--env", ENV_ID, "--episodes", "4", "--out", str(tmp_path / "lerobot"),
                 "--format", "lerobot", "--workers", "1", "--no-progress"]) == 0
    assert f"demos: {tmp_path / 'lerobot'} (LeRobot v3.0 dataset)" in capsys.readouterr().out
    record_demos(ENV_ID, 4, tmp_path / "parquet", workers=1, progress=False)
    (a, meta_a), (b, meta_b) = load_demos(tmp_path / "lerobot"), load_demos(tmp_path / "parquet")
    assert meta_a["envelope"] == meta_b["envelope"] and meta_a["env_id"] == ENV_ID
    assert [e.params for e in a] == [e.params for e in b] and [e.outcome for e in a] == [e.outcome for e in b]
    tiny, once = FlowConfig(hidden=32, embed_dim=16, depth=2, flow_steps=4), TrainConfig(epochs=2, batch_size=64)
    from_lerobot = train_flow_policy(tmp_path / "lerobot", config=tiny, train=once, progress=False)
    from_parquet = train_flow_policy(tmp_path / "parquet", config=tiny, train=once, progress=False)
    assert from_lerobot.policy.envelope == from_parquet.policy.envelope
    np.testing.assert_array_equal(from_lerobot.history["val_loss"], from_parquet.history["val_loss"])


def lerobot_doctor() -> str:
    exe = Path(sys.executable).with_name("lerobot-doctor")
    found = str(exe) if exe.is_file() else shutil.which("lerobot-doctor")
    assert found, "lerobot-doctor is not installed: it comes with robogate's dev extras ('make test' installs them)"
    return found


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["rollouts", "demos"])
def test_lerobot_doctor_reports_no_fail(kind, recorded, tmp_path):
    if kind == "rollouts":
        root = recorded[0]
    else:
        root = tmp_path / "demos"
        assert main(["policy", "demos", "--env", ENV_ID, "--episodes", "3", "--out", str(root), "--format", "lerobot",
                     "--workers", "1", "--no-progress"]) == 0
    done = subprocess.run([lerobot_doctor(), "check", str(root), "--ci", "--fail-on", "fail"],
                          capture_output=True, text=True, timeout=300)
    report = json.loads(done.stdout)
    fails = [f"{c['name']}: {m['message']}" for c in report["checks"] for m in c["messages"]
             if m["severity"] == "FAIL"]
    assert done.returncode == 0 and not fails, (done.returncode, fails, done.stderr[-2000:])
    assert report["format_version"] == "v3" and report["summary"]["FAIL"] == 0
    assert report["total_episodes"] == json.loads((root / "meta/info.json").read_text())["total_episodes"]


def import_lerobot_dataset():
    """LeRobot's LeRobotDataset from ``lerobot`` or the standalone ``lerobot-dataset``, or skip the test."""
    errors = []
    for module in ("lerobot.datasets.lerobot_dataset", "ledataset.datasets.lerobot_dataset"):
        try:
            return __import__(module, fromlist=["LeRobotDataset"]).LeRobotDataset
        except Exception as exc:  # torchvision beside a torch it was not built for fails with RuntimeError
            errors.append(f"{module}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    pytest.skip("LeRobot's LeRobotDataset does not import here (" + "; ".join(errors) + ")")


def test_lerobot_dataset_loads_it_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    LeRobotDataset = import_lerobot_dataset()
    import torch

    episodes = synthetic([12, 7, 20])
    root = write(tmp_path / "ds", episodes, data_files_size_in_mb=0.01)
    ds = LeRobotDataset("robogate/test", root=root)
    assert (len(ds), ds.num_episodes, ds.fps, ds.meta.robot_type) == (39, 3, CONTROL_HZ, "panda")
    last = ds[11]
    np.testing.assert_array_equal(last["observation.state"].numpy(), episodes[0].observations[-1])
    np.testing.assert_array_equal(last["action_chunks"].numpy(), episodes[0].action_chunks[-1].reshape(-1))
    assert bool(last["next.done"]) and bool(last["next.success"]) and last["outcome"] == "success"
    assert last["task"] == "Pick up the object and place it on the target."
    failed = ds[12 + 6]
    assert bool(failed["next.done"]) and not bool(failed["next.success"]) and int(failed["failure_step"]) == 5
    np.testing.assert_allclose(ds.meta.stats["action"]["mean"],
                               np.concatenate([e.actions for e in episodes]).mean(axis=0), rtol=1e-6)
    window = LeRobotDataset("robogate/test", root=root, episodes=[1], delta_timestamps={"action": [0.0, 0.1, 0.2]})
    item = window[len(window) - 1]
    assert item["action"].shape == (3, 5) and item["action_is_pad"].tolist() == [False, True, True]
    assert torch.equal(item["action"][0], torch.from_numpy(episodes[1].actions[-1]))
