"""Demonstrations for behaviour cloning, recorded over a training envelope.

A *training envelope* is the part of the operational space a learned policy
is taught in: a range per numeric parameter, a list of allowed values per
categorical one, anything left out held at its nominal value. An env declares
its own (``training_envelope``, see :mod:`robogate.scenarios.env_contract`); robogate's,
:data:`TRAINING_ENVELOPE`, lies around nominal — moderate friction, mass and
size, a few millimetres of calibration error at most, no obstacles, the
upright shapes and the flat place targets — where the scripted controller
succeeds about 97 % of the time. :func:`record_demos` runs a demonstrator (the
scripted controller on robogate's envs) there, scenarios from a Latin Hypercube
over the envelope, and stores every episode in ``DIR/demos.parquet``, in the
rollout layout of :mod:`robogate.datasets.episodes`, or as a LeRobot v3.0 dataset in
``DIR``; training reads either and keeps the successes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from robogate._utils.checks import check_int
from robogate._utils.seeding import check_seed, trial_seed
from robogate.envs.scene import TRAINING_ENVELOPE
from robogate.execution.specs import default_policy, label_of
from robogate.execution.trial import cached_env, validate_env_id
from robogate.scenarios.env_contract import recording_facts
from robogate.scenarios.env_contract import training_envelope as declared_envelope
from robogate.scenarios.envelope import Envelope

__all__ = ["DEMOS_FILE", "TRAINING_ENVELOPE", "load_demos", "record_demos", "sample_envelope", "training_envelope"]

DEMOS_FILE = "demos.parquet"
"""Name of the demonstrations file inside a demos folder."""

def training_envelope(envelope: Envelope | Mapping[str, Any] | None = None, env_id: str | None = None) -> Envelope:
    """A training envelope in an env's space.

    Parameters
    ----------
    envelope : Envelope, mapping or None
        None: the env's declared training envelope (:func:`robogate.scenarios.env_contract.training_envelope`);
        a mapping: limits in the env's space, the parameters left out held at nominal.
    env_id : str, optional
        The env (default: robogate's envs, whose envelope is :data:`TRAINING_ENVELOPE`).

    Raises
    ------
    ValueError
        Naming the parameter, for an unknown name, a bad range or a value outside the space.
    """
    if isinstance(envelope, Envelope):
        return envelope
    base = TRAINING_ENVELOPE if env_id is None else declared_envelope(cached_env(env_id))
    return base if envelope is None else Envelope(base.space, envelope, rest="nominal")


def sample_envelope(envelope: Envelope | Mapping[str, Any] | None, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` scenarios spread over a training envelope by a Latin Hypercube (see :meth:`Envelope.sample`).

    Parameters
    ----------
    envelope : Envelope, mapping or None
        See :func:`training_envelope`.
    n : int
        Number of scenarios.
    seed : int
        Seed of the design.

    Returns
    -------
    list of dict
        Complete parameter dicts of the 8-D space.
    """
    return training_envelope(envelope).sample(n, check_seed(seed))


def record_demos(
    env_id: str,
    episodes: int,
    out: str | Path,
    *,
    policy: Any = None,
    envelope: Envelope | Mapping[str, Any] | None = None,
    seed: int = 0,
    executor: str = "local",
    workers: int | None = None,
    address: str | None = None,
    progress: bool | None = None,
    format: str = "parquet",
) -> Path:
    """Record a demonstrator's episodes over a training envelope into folder ``out``.

    Parameters
    ----------
    env_id : str
        A Gymnasium env id: one of ``robogate.ENV_IDS``, or an env of your own.
    episodes : int
        Episodes to record (successes and failures alike; training keeps the successes).
    out : str or Path
        Folder to write (created if missing).
    policy : str or policy object, optional
        The demonstrator: a spec or an object (default: the scripted controller, on robogate's
        envs only).
    envelope : Envelope or mapping, optional
        The training envelope (see :func:`training_envelope`); default the env's own.
    seed : int
        Seed of the scenario design and of every episode (``trial_seed(seed, i)``).
    executor : str
        Where the episodes run (``"local"``, ``"ray"`` or a registered executor).
    workers : int, optional
        Parallel episodes (default: all cores).
    address : str, optional
        For executors that take one (e.g. a Ray cluster).
    progress : bool or None
        Draw a progress bar on stderr (None: only when stderr is a terminal).
    format : {"parquet", "lerobot"}
        As ``out/demos.parquet``, or as a LeRobot v3.0 dataset in ``out`` (see :mod:`robogate.datasets.lerobot`).

    Returns
    -------
    Path
        The demonstrations file, or the dataset folder.
    """
    from robogate.datasets.episodes import check_destination, save_episodes
    from robogate.execution.batch import check_no_errors, record_episodes

    env_id = validate_env_id(env_id)
    facts = recording_facts(cached_env(env_id), env_id)
    check_destination(out, DEMOS_FILE, format, facts)
    episodes, seed = check_int(episodes, "episodes", minimum=1), check_seed(seed)
    policy = default_policy(env_id) if policy is None else policy
    region = training_envelope(envelope, env_id)
    scenarios = [(p, trial_seed(seed, i)) for i, p in enumerate(region.sample(episodes, seed))]
    recordings = record_episodes(env_id, policy, scenarios, executor=executor, workers=workers, address=address,
                                 progress=progress, desc="demos")
    check_no_errors(recordings, "demonstrations")
    meta = {"env_id": env_id, "policy": label_of(policy), "seed": seed, "envelope": region.to_dict()}
    return save_episodes(out, DEMOS_FILE, recordings, meta, format, facts)


def load_demos(path: str | Path) -> tuple[list, dict[str, Any]]:
    """The recorded demonstrations of a demos folder (or file, or LeRobot dataset) and their metadata.

    Returns
    -------
    (list of EpisodeRecording, dict)
        Every recorded episode and the recording's metadata (``env_id``, ``envelope``, ...).

    Raises
    ------
    ValueError
        If the folder holds no demonstrations, or they are unreadable.
    """
    from robogate.datasets.episodes import read_episodes
    from robogate.datasets.lerobot import is_lerobot_dataset

    path = Path(path)
    as_is = path.is_file() or path.suffix == ".parquet" or is_lerobot_dataset(path)
    file = path if as_is else path / DEMOS_FILE
    if not file.exists():
        raise ValueError(f"no demonstrations in {path}: expected {file} or a LeRobot dataset there "
                         f"(record them with 'robogate policy demos --out {path}')")
    return read_episodes(file)
