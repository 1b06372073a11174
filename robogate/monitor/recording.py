"""Record a policy's rollouts and store them as Parquet, one row per control step.

The layout follows LeRobot's datasets: ``episode_index``, ``frame_index``,
``timestamp``, ``observation.state`` and ``action``, plus what the runtime
monitor reads — ``embedding`` (d floats) and ``action_chunks`` (the B sampled
chunks of horizon H, flattened to B*H*A floats; the shape is in the file's
metadata) — and, repeated on every row of an episode, its ``outcome``,
``success``, ``params`` (JSON), ``seed`` and ``failure_step`` (the control step
of the failure event, null for a success). The file is a plain Parquet table
(pandas, DuckDB, Polars read it); :func:`load_rollouts` turns it into
:class:`~robogate.monitor.Rollout` objects. Pages carry checksums, so a
corrupt file is reported, never silently read.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from robogate.checks import check_int
from robogate.envs.pick_place_env import CONTROL_HZ
from robogate.monitor.rollout import Rollout

__all__ = [
    "ROLLOUTS_FILE",
    "EpisodeRecording",
    "load_rollouts",
    "read_episodes",
    "record_episode",
    "record_episodes",
    "record_rollouts",
    "rollout_scenarios",
    "write_episodes",
]

ROLLOUTS_FILE = "rollouts.parquet"
"""Name of the rollouts file inside a rollouts folder."""
METADATA_KEY = b"robogate.rollouts"
FORMAT_VERSION = 1
Scenario = tuple[dict[str, Any], int]
"""Scenario parameters and the episode seed."""


@dataclass(frozen=True, eq=False)
class EpisodeRecording:
    """Everything recorded about one episode.

    Parameters
    ----------
    observations : array (T, obs_size)
        The observation the policy acted on at each control step.
    actions : array (T, A)
        The action it took.
    outcome : str
        How the episode ended.
    params : dict
        Its scenario parameters.
    seed : int or None
        Its seed.
    failure_step : int or None
        The control step of the failure event; None for a success.
    embeddings : array (T, d), optional
        The policy's observation embedding at each step.
    action_chunks : array (T, B, H, A), optional
        The B chunks the policy sampled at each step.
    """

    observations: np.ndarray
    actions: np.ndarray
    outcome: str
    params: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    failure_step: int | None = None
    embeddings: np.ndarray | None = None
    action_chunks: np.ndarray | None = None

    @property
    def success(self) -> bool:
        return self.outcome == "success"

    @property
    def steps(self) -> int:
        return int(self.observations.shape[0])

    def to_rollout(self) -> Rollout:
        """The :class:`Rollout` the monitor reads (needs embeddings)."""
        if self.embeddings is None:
            raise ValueError("this recording has no embeddings: record it with a policy that has embed(obs)")
        return Rollout(
            embeddings=self.embeddings, action_chunks=self.action_chunks, success=self.success,
            outcome=self.outcome, params=dict(self.params), failure_step=self.failure_step,
        )


# ------------------------------------------------------------------------------------ recording


def record_episode(
    env: Any, policy: Any, params: Mapping[str, Any] | None = None, seed: int | None = None,
    *, embed: bool = False, n_chunks: int = 0,
) -> EpisodeRecording:
    """Run one episode with :func:`robogate.run_episode` and record every step.

    Parameters
    ----------
    env : str or gymnasium.Env
    policy : Policy
        With ``embed(obs)`` if ``embed``, with ``sample_chunks(obs, n)`` if ``n_chunks``.
    params, seed
        The scenario and the episode seed.
    embed : bool
        Record ``policy.embed(obs)`` at every step.
    n_chunks : int
        Record ``policy.sample_chunks(obs, n_chunks)`` at every step (0: none).

    Returns
    -------
    EpisodeRecording
        ``failure_step`` is the env's (``info["failure_step"]``); for a policy
        error, the last recorded step.
    """
    from robogate.episode import run_episode

    obs, actions, embeddings, chunks = [], [], [], []
    last_info: dict[str, Any] = {}

    def on_step(o: np.ndarray, action: np.ndarray, info: dict) -> None:
        if embed:
            embeddings.append(policy.embed(o))
        if n_chunks:
            chunks.append(policy.sample_chunks(o, n_chunks))
        obs.append(np.asarray(o, dtype=np.float32))
        actions.append(np.asarray(action, dtype=np.float32))
        last_info.update(info)

    record = run_episode(env, policy, params, seed, on_step=on_step)
    steps = len(obs)
    failure_step = last_info.get("failure_step")
    if record["outcome"] != "success" and failure_step is None and steps:
        failure_step = steps - 1
    return EpisodeRecording(
        observations=np.array(obs, dtype=np.float32).reshape(steps, -1),
        actions=np.array(actions, dtype=np.float32).reshape(steps, -1),
        outcome=record["outcome"],
        params={k: record[k] for k in _param_names()},
        seed=seed,
        failure_step=None if failure_step is None else int(failure_step),
        embeddings=np.array(embeddings, dtype=np.float32) if embed else None,
        action_chunks=np.array(chunks, dtype=np.float32) if n_chunks else None,
    )


def _param_names() -> list[str]:
    from robogate.space import default_space

    return default_space().names


_WORKER: dict[str, Any] = {}


def _init_worker(env_id: str, policy: Any) -> None:
    import gymnasium as gym

    import robogate  # noqa: F401  (registers the envs)
    from robogate.executors import init_local_worker

    init_local_worker()
    _WORKER["env"] = gym.make(env_id)
    _WORKER["policy"] = _make_policy(policy)
    if "torch" in sys.modules:  # small nets: one thread per worker process beats contention
        sys.modules["torch"].set_num_threads(1)


def _make_policy(policy: Any) -> Any:
    if isinstance(policy, str):
        from robogate.runner import make_policy

        return make_policy(policy)
    return policy


def _record_in_worker(index: int, params: dict, seed: int, embed: bool, n_chunks: int) -> tuple[int, EpisodeRecording]:
    return index, record_episode(_WORKER["env"], _WORKER["policy"], params, seed, embed=embed, n_chunks=n_chunks)


def record_episodes(
    env_id: str,
    policy: Any,
    scenarios: Sequence[Scenario],
    *,
    embed: bool = False,
    n_chunks: int = 0,
    workers: int | None = 1,
    progress: bool = False,
    desc: str = "episodes",
) -> list[EpisodeRecording]:
    """Record one episode per ``(params, seed)`` scenario, in parallel worker processes.

    Parameters
    ----------
    env_id : str
    policy : str or Policy
        A policy spec (see :func:`robogate.runner.make_policy`) or a policy
        object (sent once to each worker, so it must pickle when ``workers > 1``).
    scenarios : sequence of (dict, int)
    embed, n_chunks
        See :func:`record_episode`.
    workers : int, optional
        Worker processes (None: all cores; 1: in this process).
    progress : bool
        Show a progress bar.
    desc : str
        Its label.

    Returns
    -------
    list of EpisodeRecording
        In the order of ``scenarios``.
    """
    from robogate.runner import validate_env_id

    env_id = validate_env_id(env_id)
    workers = (os.cpu_count() or 1) if workers is None else check_int(workers, "workers", minimum=1)
    workers = min(workers, max(1, len(scenarios)))
    results: list[EpisodeRecording | None] = [None] * len(scenarios)
    bar = tqdm(total=len(scenarios), desc=desc, unit="ep", disable=not progress)
    try:
        if workers == 1:
            import gymnasium as gym

            env, pol = gym.make(env_id), _make_policy(policy)
            try:
                for i, (params, seed) in enumerate(scenarios):
                    results[i] = record_episode(env, pol, params, seed, embed=embed, n_chunks=n_chunks)
                    bar.update()
            finally:
                env.close()
        else:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                     initargs=(env_id, policy)) as pool:
                futures = [pool.submit(_record_in_worker, i, dict(p), s, embed, n_chunks)
                           for i, (p, s) in enumerate(scenarios)]
                try:
                    for fut in as_completed(futures):
                        i, rec = fut.result()
                        results[i] = rec
                        bar.update()
                finally:
                    for fut in futures:
                        fut.cancel()
    finally:
        bar.close()
    return [r for r in results if r is not None]


def rollout_scenarios(
    episodes: int, params: Any = None, seed: int = 0, envelope: Mapping[str, Any] | None = None
) -> list[Scenario]:
    """The ``(params, seed)`` of each episode to record.

    Parameters
    ----------
    episodes : int
        How many.
    params : None, dict, list of dict or pandas.DataFrame
        None: a Latin Hypercube over ``envelope``; a dict: every episode;
        a list or a table: one row per episode (its first ``episodes`` rows;
        a ``seed`` column, as in a sweep's results, replays those seeds).
    seed : int
        Seed of the design and of the episodes (``trial_seed(seed, i)``).
    envelope : mapping, optional
        For ``params=None`` (default :data:`robogate.demos.TRAINING_ENVELOPE`).
    """
    from robogate.demos import sample_envelope
    from robogate.runner import check_seed, trial_seed
    from robogate.space import default_space

    episodes, seed = check_int(episodes, "episodes", minimum=1), check_seed(seed)
    space = default_space()
    seeds = [trial_seed(seed, i) for i in range(episodes)]
    if params is None:
        rows = sample_envelope(envelope, episodes, seed)
    elif isinstance(params, Mapping):
        rows = [space.validate(params)] * episodes
    else:
        if isinstance(params, pd.DataFrame):
            if "seed" in params.columns:
                seeds = [check_seed(int(s)) for s in params["seed"].iloc[:episodes]]
            missing = [n for n in space.names if n not in params.columns]
            if missing:
                raise ValueError(f"params table is missing parameter column(s) {missing}")
            params = params[space.names].astype(object).to_dict("records")
        rows = [space.validate(p) for p in list(params)[:episodes]]
        if len(rows) < episodes:
            raise ValueError(f"params lists {len(rows)} scenarios, fewer than episodes={episodes}")
    return list(zip(rows, seeds))


def record_rollouts(
    env_id: str,
    policy: Any,
    episodes: int = 50,
    params: Any = None,
    seed: int = 0,
    n_chunks: int = 32,
    *,
    workers: int | None = 1,
    progress: bool = True,
    out: str | Path | None = None,
) -> list[Rollout]:
    """Run a policy for ``episodes`` episodes and return what the monitor reads of each.

    Parameters
    ----------
    env_id : str
        One of ``robogate.ENV_IDS``.
    policy : str or policy object
        With ``embed(obs)`` and, if ``n_chunks``, ``sample_chunks(obs, n)``
        (e.g. :class:`~robogate.policies.FlowPolicy`), or a spec such as ``"flow"``.
    episodes : int
        Number of episodes.
    params : None, dict, list of dict or pandas.DataFrame
        None: scenarios spread over the policy's training envelope (its
        ``envelope`` attribute, else :data:`robogate.demos.TRAINING_ENVELOPE`);
        otherwise see :func:`rollout_scenarios`.
    seed : int
        Seed of the scenarios and episodes: the same call records the same rollouts.
    n_chunks : int
        Chunks B sampled per step (0: none; the rollouts then carry no chunks).
    workers : int, optional
        Worker processes (None: all cores; 1: in this process).
    progress : bool
        Show a progress bar.
    out : str or Path, optional
        Also write the rollouts (with observations and actions) to
        ``out/rollouts.parquet``.

    Returns
    -------
    list of Rollout
        One per episode, in order (an episode that ended before its first step is left out).

    Examples
    --------
    >>> from robogate.monitor import record_rollouts
    >>> from robogate.policies import FlowPolicy
    >>> flow = FlowPolicy.pretrained("robogate/PickPlace-Panda-v0")
    >>> cal = record_rollouts("robogate/PickPlace-Panda-v0", flow, episodes=2, seed=0, n_chunks=8)
    >>> cal[0].embeddings.shape[1], cal[0].action_chunks.shape[1]
    (64, 8)
    """
    n_chunks = check_int(n_chunks, "n_chunks")
    probe = _make_policy(policy)
    needed = ["embed"] + (["sample_chunks"] if n_chunks else [])
    missing = [m for m in needed if not callable(getattr(probe, m, None))]
    if missing:
        raise ValueError(
            f"policy {type(probe).__name__} has no {' or '.join(m + '()' for m in missing)}: the monitor reads "
            "the policy's observation embedding and its sampled action chunks"
        )
    _check_observation_size(env_id, probe)
    scenarios = rollout_scenarios(episodes, params, seed, getattr(probe, "envelope", None))
    recordings = record_episodes(
        env_id, policy if isinstance(policy, str) and workers != 1 else probe, scenarios,
        embed=True, n_chunks=n_chunks, workers=workers, progress=progress, desc="rollouts",
    )
    if out is not None:
        meta = {"env_id": env_id, "policy": policy if isinstance(policy, str) else type(probe).__name__,
                "seed": seed}
        write_episodes(Path(out) / ROLLOUTS_FILE, recordings, meta)
    return [r.to_rollout() for r in recordings if r.steps]


def _check_observation_size(env_id: str, policy: Any) -> None:
    """Embed one observation of the env before any work: a policy made for another
    observation size raises its own ``ValueError`` here, not in every episode."""
    import gymnasium as gym

    from robogate.runner import validate_env_id

    env = gym.make(validate_env_id(env_id))
    try:
        policy.embed(env.observation_space.sample())
    finally:
        env.close()


# ------------------------------------------------------------------------------------- storage


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
        JSON-serialisable facts stored with the file (env id, policy, ...).

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
    fps = metadata.get("fps", CONTROL_HZ)
    lengths = np.array([e.steps for e in episodes])
    frames = np.concatenate([np.arange(n) for n in lengths])
    columns: dict[str, pa.Array] = {
        "episode_index": pa.array(np.repeat(np.arange(len(episodes)), lengths), type=pa.int64()),
        "frame_index": pa.array(frames, type=pa.int64()),
        "timestamp": pa.array(frames / float(fps), type=pa.float32()),
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


def _resolve(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.parquet"))
        if len(files) != 1:
            raise ValueError(f"{path} holds {len(files)} Parquet files; pass the rollout file itself")
        path = files[0]
    if not path.is_file():
        raise ValueError(f"no rollout file at {path}")
    return path


def read_episodes(path: str | Path) -> tuple[list[EpisodeRecording], dict[str, Any]]:
    """Read a file written by :func:`write_episodes` (or a folder holding one).

    Returns
    -------
    (list of EpisodeRecording, dict)
        The episodes, in order, and the file's metadata.

    Raises
    ------
    ValueError
        If the file is missing, truncated or corrupt, or its rows disagree
        with its metadata (a missing episode or step).
    """
    path = _resolve(path)
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


def load_rollouts(path: str | Path) -> list[Rollout]:
    """The :class:`Rollout` of every episode in a rollout file (or a folder holding one).

    Raises
    ------
    ValueError
        As :func:`read_episodes`, or if the file holds no embeddings.
    """
    episodes, _ = read_episodes(path)
    return [e.to_rollout() for e in episodes]
