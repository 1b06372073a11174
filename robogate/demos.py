"""Scripted demonstrations for behaviour cloning, recorded over a training envelope.

A *training envelope* is the part of the operational space a learned policy
is taught in: a range per numeric parameter, a list of allowed values per
categorical one, anything left out held at its nominal value. The default,
:data:`TRAINING_ENVELOPE`, lies around nominal — moderate friction, mass and
size, a few millimetres of calibration error at most, no obstacles, the
upright shapes and the flat place targets — where the scripted controller
succeeds about 97 % of the time. :func:`record_demos` runs the scripted
controller there (scenarios from a Latin Hypercube over the envelope) and
stores every episode in ``DIR/demos.parquet``, in the rollout layout of
:mod:`robogate.episode_file`, or as a LeRobot v3.0 dataset in ``DIR``;
training reads either and keeps the successes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from robogate.checks import check_int
from robogate.envelope import Envelope
from robogate.runner import check_seed, trial_seed, validate_env_id
from robogate.space import default_space

__all__ = ["DEMOS_FILE", "TRAINING_ENVELOPE", "load_demos", "record_demos", "sample_envelope", "training_envelope"]

DEMOS_FILE = "demos.parquet"
"""Name of the demonstrations file inside a demos folder."""

TRAINING_ENVELOPE = Envelope(
    default_space(),
    {
        "friction": (0.4, 1.2),
        "mass": (0.05, 0.5),
        "com_offset": (0.0, 0.1),
        "size": (0.03, 0.07),
        "ik_noise": (0.0, 0.003),
        "obstacles": (0, 0),
        "shape": ["box", "cylinder", "sphere"],
        "placement": ["center", "left", "right", "near", "far", "left_near", "right_near", "left_far", "right_far"],
    },
    rest="nominal",
)
"""The default training envelope (every parameter limited; anything left out of an envelope
derived from it with :meth:`~robogate.envelope.Envelope.updated` keeps these limits)."""


def training_envelope(envelope: Envelope | Mapping[str, Any] | None = None) -> Envelope:
    """A training envelope: ``None`` is :data:`TRAINING_ENVELOPE`; a mapping holds left-out parameters at nominal.

    Raises
    ------
    ValueError
        Naming the parameter, for an unknown name, a bad range or a value outside the space.
    """
    if envelope is None:
        return TRAINING_ENVELOPE
    if isinstance(envelope, Envelope):
        return envelope
    return Envelope(default_space(), envelope, rest="nominal")


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
    envelope: Envelope | Mapping[str, Any] | None = None,
    seed: int = 0,
    executor: str = "local",
    workers: int | None = None,
    address: str | None = None,
    progress: bool | None = None,
    format: str = "parquet",
) -> Path:
    """Record scripted-controller episodes over a training envelope into folder ``out``.

    Parameters
    ----------
    env_id : str
        One of ``robogate.ENV_IDS``.
    episodes : int
        Episodes to record (successes and failures alike; training keeps the successes).
    out : str or Path
        Folder to write (created if missing).
    envelope : Envelope or mapping, optional
        The training envelope (see :func:`training_envelope`); default :data:`TRAINING_ENVELOPE`.
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
        As ``out/demos.parquet``, or as a LeRobot v3.0 dataset in ``out`` (see :mod:`robogate.lerobot`).

    Returns
    -------
    Path
        The demonstrations file, or the dataset folder.
    """
    from robogate.episode_file import check_destination, save_episodes
    from robogate.recording import check_no_errors, record_episodes

    check_destination(out, DEMOS_FILE, format)
    env_id = validate_env_id(env_id)
    episodes, seed = check_int(episodes, "episodes", minimum=1), check_seed(seed)
    env = training_envelope(envelope)
    scenarios = [(p, trial_seed(seed, i)) for i, p in enumerate(env.sample(episodes, seed))]
    recordings = record_episodes(env_id, "scripted", scenarios, executor=executor, workers=workers, address=address,
                                 progress=progress, desc="demos")
    check_no_errors(recordings, "demonstrations")
    meta = {"env_id": env_id, "policy": "scripted", "seed": seed, "envelope": env.to_dict()}
    return save_episodes(out, DEMOS_FILE, recordings, meta, format)


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
    from robogate.episode_file import read_episodes
    from robogate.lerobot import is_lerobot_dataset

    path = Path(path)
    as_is = path.is_file() or path.suffix == ".parquet" or is_lerobot_dataset(path)
    file = path if as_is else path / DEMOS_FILE
    if not file.exists():
        raise ValueError(f"no demonstrations in {path}: expected {file} or a LeRobot dataset there "
                         f"(record them with 'robogate policy demos --out {path}')")
    return read_episodes(file)
