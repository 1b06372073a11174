"""Recorded episodes as a LeRobot v3.0 dataset folder, the layout LeRobot's ``LeRobotDataset`` reads offline.

::

    DIR/meta/info.json                          codebase_version "v3.0", fps, robot_type, totals,
                                                path templates, every feature's dtype, shape and names
    DIR/meta/stats.json                         min, max, mean, std, count and quantiles per numeric feature
    DIR/meta/tasks.parquet                      the task's text and its task_index
    DIR/meta/episodes/chunk-000/file-000.parquet  one row per episode: length, tasks, where its frames lie
                                                (data/chunk_index, data/file_index, dataset_from_index,
                                                dataset_to_index), its own statistics, and robogate's
                                                outcome, success, params (JSON), seed and failure_step
    DIR/data/chunk-000/file-000.parquet          one row per control step

A frame holds LeRobot's ``index``, ``episode_index``, ``frame_index``, ``timestamp`` and
``task_index``, the ``observation.state`` and ``action`` vectors, ``next.done`` (true on an episode's
last frame) and ``next.success`` (true on the last frame of a successful episode), and robogate's
features: ``embedding`` (d floats) and ``action_chunks`` when recorded, and the episode's ``outcome``,
``params`` (JSON) and ``failure_step`` (the control step of the failure event, -1 when there is none) on
each of its frames. ``action_chunks`` holds the B sampled chunks of horizon H flattened to B*H*A
floats, chunk by chunk and step by step, as its names say (``chunk0.step0.dx``, ...); (B, H, A) is
``info["robogate"]["action_chunks_shape"]``. (A multi-dimensional feature would suit LeRobot too,
but lerobot-doctor 0.2 cannot check one whose name begins with ``action``.)

Episodes are never split across files; a data file is closed once it would pass
``data_files_size_in_mb`` and a chunk folder holds at most ``chunks_size`` files, as LeRobot
writes them. Feature names and the task's text come from the env (``observation_names``,
``action_names``, ``task_description`` on its class), the robot type from its registration; what
robogate knows of the recording (env id, policy, seed, envelope) is kept under ``info["robogate"]``.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from robogate.execution.episode import EpisodeRecording

__all__ = ["CODEBASE_VERSION", "is_lerobot_dataset", "lerobot_fps", "read_lerobot", "write_lerobot"]

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000
"""Files per chunk folder (LeRobot's default)."""
DATA_FILES_SIZE_IN_MB = 100
"""Size at which a data file is closed and the next begun (LeRobot's default)."""
VIDEO_FILES_SIZE_IN_MB = 500
"""LeRobot's default for video files; recorded here as LeRobot does, though no video is written."""
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
"""The quantiles LeRobot's statistics carry, as ``q01`` ... ``q99``."""
NO_FAILURE = -1
"""``failure_step`` of a frame whose episode had no failure event, a success or a timeout (a frame value may not
be null)."""


def is_lerobot_dataset(path: str | Path) -> bool:
    """Whether folder ``path`` holds a LeRobot dataset (its ``meta/info.json``)."""
    return (Path(path) / INFO_PATH).is_file()


# ------------------------------------------------------------------------------------------ writing


NO_FACTS = {"robot_type": None, "observation_names": None, "action_names": None, "task": None}
"""What a recording knows of an env it was not told about."""


def _features(first: EpisodeRecording, facts: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    def scalar(dtype: str) -> dict[str, Any]:
        return {"dtype": dtype, "shape": [1], "names": None}

    def vector(width: int, names: list[str] | None) -> dict[str, Any]:
        return {"dtype": "float32", "shape": [width], "names": names if names and len(names) == width else None}

    features = {
        "observation.state": vector(first.observations.shape[1], facts["observation_names"]),
        "action": vector(first.actions.shape[1], facts["action_names"]),
    }
    if first.embeddings is not None:
        features["embedding"] = vector(first.embeddings.shape[1], None)
    if first.action_chunks is not None:
        b, h, a = first.action_chunks.shape[1:]
        action = facts["action_names"] if facts["action_names"] and len(facts["action_names"]) == a else range(a)
        features["action_chunks"] = vector(b * h * a, [f"chunk{i}.step{j}.{k}" for i in range(b) for j in range(h)
                                                       for k in action])
    features.update({
        "next.success": scalar("bool"), "next.done": scalar("bool"),
        "outcome": scalar("string"), "failure_step": scalar("int64"), "params": scalar("string"),
        "timestamp": scalar("float32"), "frame_index": scalar("int64"), "episode_index": scalar("int64"),
        "index": scalar("int64"), "task_index": scalar("int64"),
    })
    return features


def _check_shapes(episodes: Sequence[EpisodeRecording]) -> None:
    def shapes(e: EpisodeRecording) -> tuple:
        return tuple(None if a is None else a.shape[1:]
                     for a in (e.observations, e.actions, e.embeddings, e.action_chunks))

    first = shapes(episodes[0])
    for e in episodes[1:]:
        if shapes(e) != first:
            raise ValueError(f"episodes differ in their array shapes: {shapes(e)} vs {first}")


def lerobot_fps(fps: Any, env_id: Any) -> int:
    """LeRobot's ``fps``: the env's control rate, a whole number of frames per second."""
    if fps is None:
        raise ValueError(f"a LeRobot dataset needs the env's control rate, and env {env_id} declares none: declare "
                         "metadata['render_fps'] or a control_hz attribute on it (control steps per second)")
    if float(fps) != round(float(fps)) or fps <= 0:
        raise ValueError(f"a LeRobot dataset's fps is a whole number of frames per second; env {env_id} runs at "
                         f"{fps} Hz: record it as Parquet (--format parquet) instead")
    return int(round(float(fps)))


def _frame_columns(episodes: Sequence[EpisodeRecording], features: Mapping[str, Any], fps: int) -> pa.Table:
    lengths = np.array([e.steps for e in episodes])
    frame = np.concatenate([np.arange(n) for n in lengths])
    last = np.concatenate([np.arange(n) == n - 1 for n in lengths])
    success = np.repeat([e.success for e in episodes], lengths)

    def stacked(name: str) -> np.ndarray:
        return np.concatenate([getattr(e, name) for e in episodes]).astype(np.float32)

    def fixed(values: np.ndarray) -> pa.Array:
        return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1), type=pa.float32()), values.shape[1])

    def per_episode(values: list, kind: pa.DataType) -> pa.Array:
        return pa.array(np.repeat(np.array(values, dtype=object), lengths).tolist(), type=kind)

    columns: dict[str, pa.Array] = {
        "observation.state": fixed(stacked("observations")),
        "action": fixed(stacked("actions")),
    }
    if "embedding" in features:
        columns["embedding"] = fixed(stacked("embeddings"))
    if "action_chunks" in features:
        columns["action_chunks"] = fixed(stacked("action_chunks").reshape(int(lengths.sum()), -1))
    columns.update({
        "next.success": pa.array(last & success),
        "next.done": pa.array(last),
        "outcome": per_episode([e.outcome for e in episodes], pa.string()),
        "failure_step": per_episode([NO_FAILURE if e.failure_step is None else e.failure_step for e in episodes],
                                    pa.int64()),
        "params": per_episode([json.dumps(e.params, sort_keys=True) for e in episodes], pa.string()),
        "timestamp": pa.array(frame / float(fps), type=pa.float32()),
        "frame_index": pa.array(frame, type=pa.int64()),
        "episode_index": pa.array(np.repeat(np.arange(len(episodes)), lengths), type=pa.int64()),
        "index": pa.array(np.arange(int(lengths.sum())), type=pa.int64()),
        "task_index": pa.array(np.zeros(int(lengths.sum()), dtype=np.int64)),
    })
    return pa.table(columns)


def _numeric(table: pa.Table, name: str, shape: Sequence[int], dtype: Any = np.float64) -> np.ndarray:
    """A numeric column as an array of shape (rows, *shape)."""
    column = table.column(name).combine_chunks()
    while pa.types.is_list(column.type) or pa.types.is_fixed_size_list(column.type):
        column = column.flatten()
    values = np.array(column.to_numpy(zero_copy_only=False), dtype=dtype)  # a writable copy
    return values.reshape(table.num_rows, *shape)


def _feature_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """LeRobot's statistics of one feature over frames (axis 0): one value per element; count = frames."""
    stats = {"min": values.min(axis=0), "max": values.max(axis=0), "mean": values.mean(axis=0),
             "std": values.std(axis=0), "count": np.array([len(values)])}
    for q, value in zip(QUANTILES, np.quantile(values, QUANTILES, axis=0)):
        stats[f"q{round(q * 100):02d}"] = value
    return stats


def _stats(table: pa.Table, features: Mapping[str, Any]) -> dict[str, dict[str, np.ndarray]]:
    return {name: _feature_stats(_numeric(table, name, ft["shape"]))
            for name, ft in features.items() if ft["dtype"] != "string"}


def _pack(sizes: Sequence[float], limit_bytes: float, chunks_size: int) -> list[tuple[int, int]]:
    """The (chunk_index, file_index) of each item, a new file begun when the current one would pass the limit."""
    out, chunk, file, used = [], 0, 0, 0.0
    for size in sizes:
        if used and used + size >= limit_bytes:
            chunk, file = (chunk + 1, 0) if file == chunks_size - 1 else (chunk, file + 1)
            used = 0.0
        out.append((chunk, file))
        used += size
    return out


def _write_files(table: pa.Table, lengths: np.ndarray, files: list[tuple[int, int]], template: str,
                 root: Path) -> None:
    """Write the rows of consecutive items (``lengths[i]`` rows each) into the file ``files[i]`` names."""
    starts = np.cumsum(lengths) - lengths
    for chunk_file in dict.fromkeys(files):
        members = [i for i, cf in enumerate(files) if cf == chunk_file]
        first, stop = int(starts[members[0]]), int(starts[members[-1]] + lengths[members[-1]])
        path = root / template.format(chunk_index=chunk_file[0], file_index=chunk_file[1])
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.slice(first, stop - first), path, compression="snappy", write_page_checksum=True)


def _episode_table(episodes: Sequence[EpisodeRecording], frames: pa.Table, features: Mapping[str, Any],
                   task: str, data_files: list[tuple[int, int]]) -> pa.Table:
    """One row per episode: LeRobot's index of where its frames lie, its statistics, robogate's labels."""
    lengths = np.array([e.steps for e in episodes])
    ends = np.cumsum(lengths)
    starts = ends - lengths
    columns: dict[str, pa.Array] = {
        "episode_index": pa.array(np.arange(len(episodes)), type=pa.int64()),
        "tasks": pa.array([[task]] * len(episodes), type=pa.list_(pa.string())),
        "length": pa.array(lengths, type=pa.int64()),
        "data/chunk_index": pa.array([c for c, _ in data_files], type=pa.int64()),
        "data/file_index": pa.array([f for _, f in data_files], type=pa.int64()),
        "dataset_from_index": pa.array(starts, type=pa.int64()),
        "dataset_to_index": pa.array(ends, type=pa.int64()),
    }
    own = [_stats(frames.slice(int(a), int(n)), features) for a, n in zip(starts, lengths)]
    for name in own[0]:
        for key in own[0][name]:
            columns[f"stats/{name}/{key}"] = pa.array([s[name][key].tolist() for s in own])
    columns.update({
        "outcome": pa.array([e.outcome for e in episodes], type=pa.string()),
        "success": pa.array([e.success for e in episodes], type=pa.bool_()),
        "params": pa.array([json.dumps(e.params, sort_keys=True) for e in episodes], type=pa.string()),
        "seed": pa.array([e.seed for e in episodes], type=pa.int64()),
        "failure_step": pa.array([e.failure_step for e in episodes], type=pa.int64()),
    })
    return pa.table(columns)


def write_lerobot(
    path: str | Path,
    episodes: Sequence[EpisodeRecording],
    metadata: Mapping[str, Any],
    *,
    facts: Mapping[str, Any] | None = None,
    data_files_size_in_mb: float = DATA_FILES_SIZE_IN_MB,
    chunks_size: int = CHUNKS_SIZE,
) -> Path:
    """Write recorded episodes as a LeRobot v3.0 dataset in folder ``path`` (see the module docstring).

    Parameters
    ----------
    path : str or Path
        The dataset's root folder (created). A dataset already there is replaced.
    episodes : sequence of EpisodeRecording
        Episodes without a step are left out. All must have the same sizes.
    metadata : mapping
        JSON-serialisable facts of the recording (``env_id``, ``policy``, ``fps``, ...), kept in
        ``info["robogate"]``; ``fps``, the env's control rate, is required (LeRobot's frame rate,
        a whole number).
    facts : mapping, optional
        What the env declares of itself (:func:`robogate.scenarios.env_contract.recording_facts`): the robot
        type, the feature names and the task's text (default: none; the task is the env id).
    data_files_size_in_mb : float
        A data file is closed once it would pass this size (uncompressed, as Arrow holds it).
    chunks_size : int
        Files per chunk folder.

    Returns
    -------
    Path
        The dataset's root folder.
    """
    episodes = [e for e in episodes if e.steps]
    if not episodes:
        raise ValueError("no episode with at least one step to write")
    _check_shapes(episodes)
    fps = lerobot_fps(metadata.get("fps"), metadata.get("env_id"))
    facts = {**NO_FACTS, **(facts or {})}
    facts["task"] = facts["task"] or metadata.get("env_id") or "recorded episodes"
    features = _features(episodes[0], facts)
    frames = _frame_columns(episodes, features, fps)
    row_bytes = frames.nbytes / frames.num_rows
    data_files = _pack([e.steps * row_bytes for e in episodes], data_files_size_in_mb * 2**20, chunks_size)
    episode_table = _episode_table(episodes, frames, features, facts["task"], data_files)
    episode_bytes = episode_table.nbytes / episode_table.num_rows
    meta_files = _pack([episode_bytes] * len(episodes), data_files_size_in_mb * 2**20, chunks_size)
    episode_table = episode_table.append_column("meta/episodes/chunk_index", pa.array([c for c, _ in meta_files]))
    episode_table = episode_table.append_column("meta/episodes/file_index", pa.array([f for _, f in meta_files]))
    info = {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": facts["robot_type"],
        "total_episodes": len(episodes),
        "total_frames": frames.num_rows,
        "total_tasks": 1,
        "chunks_size": chunks_size,
        "data_files_size_in_mb": data_files_size_in_mb,
        "video_files_size_in_mb": VIDEO_FILES_SIZE_IN_MB,
        "fps": fps,
        "splits": {"train": f"0:{len(episodes)}"},
        "data_path": DATA_PATH,
        "video_path": None,
        "features": features,
        "robogate": {**metadata, **({"action_chunks_shape": list(episodes[0].action_chunks.shape[1:])}
                                    if "action_chunks" in features else {})},
    }
    stats = {name: {k: v.tolist() for k, v in s.items()} for name, s in _stats(frames, features).items()}

    root = Path(path)
    staging = root.parent / f".{root.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        _write_files(frames, np.array([e.steps for e in episodes]), data_files, DATA_PATH, staging)
        _write_files(episode_table, np.ones(len(episodes), dtype=int), meta_files, EPISODES_PATH, staging)
        tasks = pd.DataFrame({"task_index": [0]}, index=pd.Index([facts["task"]], name="task"))
        tasks.to_parquet(staging / TASKS_PATH)
        (staging / STATS_PATH).write_text(json.dumps(stats, indent=2))
        (staging / "info.json").write_text(json.dumps(info, indent=2))
        _replace(root, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root


def _replace(root: Path, staging: Path) -> None:
    """Move the staged dataset into ``root``, its ``info.json`` (which makes it a dataset) last."""
    root.mkdir(parents=True, exist_ok=True)
    (root / INFO_PATH).unlink(missing_ok=True)
    for part in ("data", "meta"):
        shutil.rmtree(root / part, ignore_errors=True)
        (staging / part).rename(root / part)
    (staging / "info.json").rename(root / INFO_PATH)


# ------------------------------------------------------------------------------------------ reading


def _read_parquet(path: Path, root: Path) -> pa.Table:
    if not path.is_file():
        raise ValueError(f"{root} is damaged: {path.relative_to(root)} is missing")
    try:
        return pq.read_table(path, page_checksum_verification=True)
    except (pa.ArrowException, OSError) as exc:
        raise ValueError(f"{path} is not readable (truncated or corrupt?): {exc}") from None


def read_lerobot(path: str | Path) -> tuple[list[EpisodeRecording], dict[str, Any]]:
    """Read a dataset written by :func:`write_lerobot`.

    Returns
    -------
    (list of EpisodeRecording, dict)
        The episodes, in order, and the recording's metadata: ``info["robogate"]`` plus
        ``episodes``, ``frames``, ``fps`` and ``shapes``, as :func:`robogate.datasets.episodes.read_episodes` gives.

    Raises
    ------
    ValueError
        For a dataset of another LeRobot version, one robogate did not write, or one whose
        files are missing, corrupt or disagree with its metadata.
    """
    root = Path(path)
    try:
        info = json.loads((root / INFO_PATH).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{root / INFO_PATH} is not readable: {exc}") from None
    version = str(info.get("codebase_version", ""))
    if not version.startswith("v3"):
        raise ValueError(f"{root} is a LeRobot {version or 'unversioned'} dataset; robogate reads v3.0 "
                         "(convert it with LeRobot's convert_dataset_v21_to_v30)")
    features = info.get("features", {})
    meta_files = sorted((root / "meta" / "episodes").glob("*/*.parquet"))
    if not meta_files:
        raise ValueError(f"{root} is damaged: no episode metadata under meta/episodes")
    meta_table = pa.concat_tables([_read_parquet(f, root) for f in meta_files], promote_options="default")
    missing = [c for c in ("outcome", "params") if c not in meta_table.column_names]
    missing += [f for f in ("observation.state", "action") if f not in features]
    if missing:
        raise ValueError(f"{root} is a LeRobot dataset robogate did not write (it lacks {', '.join(missing)}); "
                         "robogate reads the datasets 'robogate rollouts record' and 'robogate policy demos' write")
    rows = sorted(meta_table.select([c for c in meta_table.column_names if not c.startswith("stats/")]).to_pylist(),
                  key=lambda r: r["episode_index"])
    bad = ValueError(f"{root} is damaged: its frames do not match its metadata "
                     f"({info.get('total_episodes')} episodes, {info.get('total_frames')} frames)")
    if [r["episode_index"] for r in rows] != list(range(len(rows))) or len(rows) != info.get("total_episodes"):
        raise bad
    data_paths = dict.fromkeys(info["data_path"].format(chunk_index=r["data/chunk_index"],
                                                        file_index=r["data/file_index"]) for r in rows)
    frames = pa.concat_tables([_read_parquet(root / p, root) for p in data_paths])
    if frames.num_rows != info.get("total_frames") or not np.array_equal(
            frames.column("index").to_numpy(), np.arange(frames.num_rows)):
        raise bad
    robogate = info.get("robogate", {})
    shapes = {name: tuple(features[name]["shape"]) for name in ("observation.state", "action", "embedding")
              if name in features}
    if "action_chunks" in features:
        shapes["action_chunks"] = tuple(robogate["action_chunks_shape"])
    arrays = {name: _numeric(frames, name, shape, np.float32) for name, shape in shapes.items()}
    episode = frames.column("episode_index").to_numpy()
    frame = frames.column("frame_index").to_numpy()
    episodes = []
    for r in rows:
        a, b = r["dataset_from_index"], r["dataset_to_index"]
        if b - a != r["length"] or not (np.all(episode[a:b] == r["episode_index"])
                                         and np.array_equal(frame[a:b], np.arange(b - a))):
            raise bad
        episodes.append(EpisodeRecording(
            observations=arrays["observation.state"][a:b],
            actions=arrays["action"][a:b],
            outcome=r["outcome"],
            params=json.loads(r["params"]),
            seed=r.get("seed"),
            failure_step=r.get("failure_step"),
            embeddings=arrays["embedding"][a:b] if "embedding" in arrays else None,
            action_chunks=arrays["action_chunks"][a:b] if "action_chunks" in arrays else None,
        ))
    meta = {**robogate, "episodes": len(episodes), "frames": frames.num_rows,
            "fps": info.get("fps"), "shapes": {k: list(v) for k, v in shapes.items()}}
    return episodes, meta
