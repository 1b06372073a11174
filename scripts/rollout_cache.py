"""Rollouts an experiment script records once and reads back on the next run (delete the folder to record anew)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robogate.datasets.episodes import read_episodes
from robogate.execution.specs import make_policy
from robogate.monitor import Rollout, record_rollouts
from robogate.monitor.recording import DEFAULT_CHUNKS, ROLLOUTS_FILE, rollout_scenarios


def cached_rollouts(folder: Path, env_id: str, policy: str, episodes: int, params: Any, seed: int,
                    workers: int, n_chunks: int = DEFAULT_CHUNKS) -> list[Rollout]:
    """The rollouts of these scenarios: read from ``folder`` when it holds exactly them, else recorded there.

    Raises ``ValueError`` when ``folder`` holds rollouts of other scenarios (never reused silently).
    """
    file = Path(folder) / ROLLOUTS_FILE
    if file.exists():
        wanted = rollout_scenarios(episodes, params, seed, getattr(make_policy(policy), "envelope", None))
        stored, meta = read_episodes(file)
        found = [(e.params, e.seed) for e in stored]
        if meta.get("env_id") != env_id or found != [(dict(p), s) for p, s in wanted]:
            raise ValueError(f"{folder} holds rollouts of other scenarios; delete it to record these")
        return [Rollout.from_recording(e, meta.get("fps")) for e in stored if e.steps]  # at the env's rate
    return record_rollouts(env_id, policy, episodes, params, seed, n_chunks, workers=workers, progress=True,
                           out=folder)
