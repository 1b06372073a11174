"""Recorded episodes as one Parquet file, one row per control step.

The layout follows LeRobot's datasets: ``episode_index``, ``frame_index``, ``timestamp``,
``observation.state`` and ``action``, plus, when recorded, ``embedding`` (d floats) and
``action_chunks`` (the B sampled chunks of horizon H, flattened to B*H*A floats; the shape is
in the file's metadata) and, repeated on every row of an episode, its ``outcome``,
``success``, ``params`` (JSON), ``seed`` and ``failure_step`` (the control step of the
failure event, null for a success). The file is a plain Parquet table (pandas, DuckDB,
Polars read it). It is written atomically and its pages carry checksums, so a corrupt file
is reported, never silently read.

Episodes may instead be a LeRobot v3.0 dataset folder (:mod:`robogate.datasets.lerobot`). This module is
the one place that says which of the two is at a path (:func:`resolve_episode_file`), reads
either (:func:`read_episodes`) and writes either (:func:`save_episodes`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from robogate.datasets import EPISODE_FORMATS
from robogate.datasets.lerobot import is_lerobot_dataset, lerobot_fps, read_lerobot, write_lerobot
from robogate.execution.episode import EpisodeRecording

__all__ = ["check_destination", "read_episodes", "resolve_episode_file", "save_episodes",
           "write_episodes"]

METADATA_KEY = b"robogate.rollouts"
FORMAT_VERSION = 1


def _fixed_list(values: np.ndarray, width: int) -> pa.FixedSizeListArray:
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1), type=pa.float32()), width)


def write_episodes(path: str | Path, episodes: Sequence[EpisodeRecording], metadata: Mapping[str, Any]) -> Path:
    """Write recorded episodes to one Parquet file, atomically (see the module docstring).

    Parameters
    ----------
    path : str or Path
        The file to write (its folder is created).
    episodes : sequence of EpisodeRecording
        Episodes without a step are left out. All must have the same sizes.
    metadata : mapping
        JSON-serialisable facts stored with the file (env id, policy, ``fps``: the env's control
        rate, None or absent when unknown: timestamps are then NaN).

    Returns
    -------
    Path
    """
    episodes = [e for e in episodes if e.steps]
    if not episodes:
        raise ValueError("no episode with at least one step to write")
    first = episodes[0]
    has_emb, has_chunks = first.embeddings is not None, first.action_chunks is not None
    shapes = {
        "observation.state": first.observations.shape[1:],
        "action": first.actions.shape[1:],
        "embedding": first.embeddings.shape[1:] if has_emb else None,
        "action_chunks": first.action_chunks.shape[1:] if has_chunks else None,
    }
    for e in episodes:
        got = {
            "observation.state": e.observations.shape[1:], "action": e.actions.shape[1:],
            "embedding": e.embeddings.shape[1:] if e.embeddings is not None else None,
            "action_chunks": e.action_chunks.shape[1:] if e.action_chunks is not None else None,
        }
        if got != shapes:
            raise ValueError(f"episodes differ in their array shapes: {got} vs {shapes}")
    fps = metadata.get("fps")
    lengths = np.array([e.steps for e in episodes])
    frames = np.concatenate([np.arange(n) for n in lengths])
    columns: dict[str, pa.Array] = {
        "episode_index": pa.array(np.repeat(np.arange(len(episodes)), lengths), type=pa.int64()),
        "frame_index": pa.array(frames, type=pa.int64()),
        "timestamp": pa.array(frames / float(fps) if fps else np.full(len(frames), np.nan), type=pa.float32()),
        "observation.state": _fixed_list(np.concatenate([e.observations for e in episodes]), shapes["observation.state"][0]),
        "action": _fixed_list(np.concatenate([e.actions for e in episodes]), shapes["action"][0]),
    }
    if has_emb:
        columns["embedding"] = _fixed_list(np.concatenate([e.embeddings for e in episodes]), shapes["embedding"][0])
    if has_chunks:
        width = int(np.prod(shapes["action_chunks"]))
        columns["action_chunks"] = _fixed_list(np.concatenate([e.action_chunks for e in episodes]), width)
    per_episode = {
        "outcome": (pa.string(), [e.outcome for e in episodes]),
        "success": (pa.bool_(), [e.success for e in episodes]),
        "params": (pa.string(), [json.dumps(e.params, sort_keys=True) for e in episodes]),
        "seed": (pa.int64(), [e.seed for e in episodes]),
        "failure_step": (pa.int64(), [e.failure_step for e in episodes]),
    }
    for name, (kind, values) in per_episode.items():
        columns[name] = pa.array(np.repeat(np.array(values, dtype=object), lengths).tolist(), type=kind)
    meta = {
        **metadata,
        "format_version": FORMAT_VERSION,
        "episodes": len(episodes),
        "frames": int(lengths.sum()),
        "fps": fps,
        "shapes": {k: list(v) for k, v in shapes.items() if v is not None},
    }
    table = pa.table(columns).replace_schema_metadata({METADATA_KEY: json.dumps(meta).encode()})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd", write_page_checksum=True)
    tmp.replace(path)
    return path


def _check_format(format: str) -> str:
    if format not in EPISODE_FORMATS:
        raise ValueError(f"format must be one of {', '.join(map(repr, EPISODE_FORMATS))}, got {format!r}")
    return format


def check_destination(folder: str | Path, file_name: str, format: str, facts: Mapping[str, Any] | None = None
                      ) -> None:
    """Raise ``ValueError`` before recording when ``folder`` already holds episodes in the other format
    (writing one beside the other would leave a folder no reader can tell the meaning of), or when a
    LeRobot dataset is asked of an env whose control rate (``facts["fps"]``) it cannot record."""
    folder = Path(folder)
    if _check_format(format) == "lerobot" and (folder / file_name).is_file():
        raise ValueError(f"{folder} already holds {file_name}; record the LeRobot dataset into another folder")
    if format == "parquet" and is_lerobot_dataset(folder):
        raise ValueError(f"{folder} already holds a LeRobot dataset; record {file_name} into another folder")
    if format == "lerobot" and facts is not None:
        lerobot_fps(facts.get("fps"), facts.get("env_id"))


def save_episodes(
    folder: str | Path, file_name: str, episodes: Sequence[EpisodeRecording], metadata: Mapping[str, Any],
    format: str = "parquet", facts: Mapping[str, Any] | None = None,
) -> Path:
    """Write episodes into ``folder``: as ``folder/file_name`` or as a LeRobot v3.0 dataset in ``folder``.

    ``facts`` (:func:`robogate.scenarios.env_contract.recording_facts`) give the frame rate, stored as
    ``fps``, and the feature names, robot and task a LeRobot dataset records.

    Returns
    -------
    Path
        What :func:`read_episodes` reads them back from: the file, or the dataset folder.
    """
    check_destination(folder, file_name, format)
    metadata = {**metadata, "fps": (facts or {}).get("fps", metadata.get("fps"))}
    if format == "lerobot":
        return write_lerobot(folder, episodes, metadata, facts=facts)
    return write_episodes(Path(folder) / file_name, episodes, metadata)


def resolve_episode_file(path: str | Path) -> Path:
    """What holds the recorded episodes at ``path``: a Parquet file, or a LeRobot dataset folder.

    ``path`` is a Parquet file, a LeRobot v3.0 dataset folder (with ``meta/info.json``), or a
    folder holding one Parquet file.

    Raises
    ------
    ValueError
        Naming the folder and what to do: it is missing, a sweep folder, empty, or holds
        several Parquet files, or both a LeRobot dataset and a Parquet file.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.parquet"))
        if is_lerobot_dataset(path):
            if files:
                raise ValueError(f"{path} holds both a LeRobot dataset and {files[0].name}; pass the .parquet file "
                                 "to read that, or keep the two in separate folders")
            return path
        if not files:
            if (path / "manifest.json").is_file():
                raise ValueError(f"{path} is a sweep folder, not recorded episodes; replay its scenarios with "
                                 f"'robogate rollouts record --from-sweep {path} --out DIR'")
            raise ValueError(f"no recorded episodes in {path}: expected a .parquet file or a LeRobot dataset "
                             "written by 'robogate rollouts record' or 'robogate policy demos'")
        if len(files) != 1:
            names = ", ".join(f.name for f in files)
            raise ValueError(f"{path} holds {len(files)} Parquet files ({names}); pass the one you mean")
        path = files[0]
    if not path.is_file():
        raise ValueError(f"no recorded episodes at {path}: no such file or folder")
    return path


def read_episodes(path: str | Path) -> tuple[list[EpisodeRecording], dict[str, Any]]:
    """Read the episodes at ``path`` in either format (see :func:`resolve_episode_file`).

    Returns
    -------
    (list of EpisodeRecording, dict)
        The episodes, in order, and the recording's metadata (``env_id``, ``policy``, ...,
        ``episodes``, ``frames``, ``fps``, ``shapes``).

    Raises
    ------
    ValueError
        If nothing is there, or a file is missing, truncated or corrupt, or its rows disagree
        with its metadata (a missing episode or step).
    """
    path = resolve_episode_file(path)
    if path.is_dir():
        return read_lerobot(path)
    try:
        table = pq.read_table(path, page_checksum_verification=True)
    except (pa.ArrowException, OSError) as exc:
        raise ValueError(f"{path} is not a readable rollout file (truncated or corrupt?): {exc}") from None
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise ValueError(f"{path} is a Parquet file but not a robogate rollout file (no {METADATA_KEY.decode()} metadata)")
    meta = json.loads(raw)
    shapes = {k: tuple(v) for k, v in meta["shapes"].items()}
    bad = ValueError(f"{path} is damaged: its rows do not match its metadata "
                     f"({meta['episodes']} episodes, {meta['frames']} steps)")
    if table.num_rows != meta["frames"]:
        raise bad

    def column(name: str, shape: tuple[int, ...]) -> np.ndarray:
        values = np.array(table.column(name).combine_chunks().flatten().to_numpy(zero_copy_only=False))
        return values.reshape(table.num_rows, *shape)

    episode = table.column("episode_index").to_numpy()
    frame = table.column("frame_index").to_numpy()
    starts = np.flatnonzero(frame == 0)
    bounds = list(starts) + [table.num_rows]
    if len(starts) != meta["episodes"] or not np.array_equal(episode[starts], np.arange(len(starts))):
        raise bad
    data = {name: column(name, shape) for name, shape in shapes.items()}
    scalars = {n: table.column(n).to_pylist() for n in ("outcome", "params", "seed", "failure_step")}
    episodes = []
    for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        if not (np.all(episode[a:b] == i) and np.array_equal(frame[a:b], np.arange(b - a))):
            raise bad
        episodes.append(EpisodeRecording(
            observations=data["observation.state"][a:b],
            actions=data["action"][a:b],
            outcome=scalars["outcome"][a],
            params=json.loads(scalars["params"][a]),
            seed=scalars["seed"][a],
            failure_step=scalars["failure_step"][a],
            embeddings=data["embedding"][a:b] if "embedding" in data else None,
            action_chunks=data["action_chunks"][a:b] if "action_chunks" in data else None,
        ))
    return episodes, meta
