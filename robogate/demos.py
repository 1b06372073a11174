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

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import qmc

from robogate.checks import check_int
from robogate.runner import check_seed, trial_seed, validate_env_id
from robogate.space import Categorical, Continuous, Integer, ParameterSpace, default_space

__all__ = [
    "DEMOS_FILE",
    "TRAINING_ENVELOPE",
    "check_envelope",
    "in_envelope",
    "load_demos",
    "record_demos",
    "sample_envelope",
    "sample_shifted",
    "shifted_envelopes",
]

DEMOS_FILE = "demos.parquet"
"""Name of the demonstrations file inside a demos folder."""

TRAINING_ENVELOPE: dict[str, Any] = {
    "friction": (0.4, 1.2),
    "mass": (0.05, 0.5),
    "com_offset": (0.0, 0.1),
    "size": (0.03, 0.07),
    "ik_noise": (0.0, 0.003),
    "obstacles": (0, 0),
    "shape": ("box", "cylinder", "sphere"),
    "placement": ("center", "left", "right", "near", "far", "left_near", "right_near", "left_far", "right_far"),
}
"""The default training envelope: ranges of numeric parameters, allowed values of categorical ones."""


def check_envelope(envelope: Mapping[str, Any] | None, space: ParameterSpace | None = None) -> dict[str, Any]:
    """Validate an envelope against ``space`` (default: the 8-D space) and return its canonical form.

    Parameters
    ----------
    envelope : mapping or None
        ``name -> (low, high)`` for a numeric parameter, ``name -> [values]``
        for a categorical one. None means :data:`TRAINING_ENVELOPE`.
    space : ParameterSpace, optional

    Returns
    -------
    dict
        Every parameter of ``space``, in its order: ``(low, high)`` or a tuple
        of values; a parameter left out is fixed at its nominal value.

    Raises
    ------
    ValueError
        Naming the parameter, for an unknown name, a bad range or a value
        outside the space.
    """
    space = space if space is not None else default_space()
    envelope = TRAINING_ENVELOPE if envelope is None else envelope
    if not isinstance(envelope, Mapping):
        raise ValueError(f"envelope must be a mapping of parameter name to range, got {type(envelope).__name__}")
    unknown = [k for k in envelope if k not in space]
    if unknown:
        raise ValueError(f"envelope: unknown parameter(s) {unknown}; valid names are {space.names}")
    out: dict[str, Any] = {}
    for dim in space:
        value = envelope.get(dim.name)
        if isinstance(dim, Categorical):
            if value is None:
                out[dim.name] = (dim.nominal,)
                continue
            values = [value] if isinstance(value, str) else list(value)
            if not values:
                raise ValueError(f"envelope: {dim.name!r} needs at least one value, {dim.describe()}")
            out[dim.name] = tuple(dict.fromkeys(dim.validate(v) for v in values))
            continue
        if value is None:
            out[dim.name] = (dim.nominal, dim.nominal)
            continue
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
            raise ValueError(f"envelope: {dim.name!r} must be a (low, high) pair, got {value!r}")
        low, high = (dim.validate(v) for v in value)
        if low > high:
            raise ValueError(f"envelope: {dim.name!r} has low {low} > high {high}")
        out[dim.name] = (low, high)
    return out


def _varying_space(envelope: dict[str, Any], space: ParameterSpace) -> ParameterSpace | None:
    """The envelope's parameters that take more than one value, as a space of their own."""
    dims: list = []
    for dim in space:
        value = envelope[dim.name]
        if isinstance(dim, Categorical):
            if len(value) > 1:
                dims.append(Categorical(dim.name, value))
        elif value[0] < value[1]:
            if isinstance(dim, Integer):
                dims.append(Integer(dim.name, *value))
            else:
                dims.append(Continuous(dim.name, *value, log=dim.log))
    return ParameterSpace(dims) if dims else None


def sample_envelope(envelope: Mapping[str, Any] | None, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` scenarios spread over the envelope by a Latin Hypercube (log scales kept).

    Parameters
    ----------
    envelope : mapping or None
        See :func:`check_envelope` (None: :data:`TRAINING_ENVELOPE`).
    n : int
        Number of scenarios.
    seed : int
        Seed of the design.

    Returns
    -------
    list of dict
        Complete parameter dicts of the 8-D space.
    """
    space = default_space()
    n, seed = check_int(n, "n"), check_seed(seed)
    env = check_envelope(envelope, space)
    fixed = {name: value[0] for name, value in env.items()}
    varying = _varying_space(env, space)
    if varying is None:
        return [dict(fixed) for _ in range(n)]
    unit = qmc.LatinHypercube(d=len(varying), seed=np.random.default_rng(seed)).random(n)
    return [space.validate({**fixed, **row}) for row in varying.from_unit(unit)]


def shifted_envelopes(envelope: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """One-factor shifts: for each parameter, the envelope with that parameter moved out of it.

    A numeric parameter takes the wider (on its own scale) of the two stretches of
    its range that lie beyond the envelope; a categorical one takes the values the
    envelope leaves out. Parameters the envelope already spans fully get no shift.

    Returns
    -------
    dict
        Parameter name -> an envelope (canonical form), in the order of the space.
    """
    space = default_space()
    env = check_envelope(envelope, space)
    out: dict[str, dict[str, Any]] = {}
    for dim in space:
        allowed = env[dim.name]
        if isinstance(dim, Categorical):
            rest = tuple(c for c in dim.choices if c not in allowed)
            if rest:
                out[dim.name] = {**env, dim.name: rest}
            continue
        step = 1 if isinstance(dim, Integer) else 0
        below, above = (dim.low, allowed[0] - step), (allowed[1] + step, dim.high)
        stretches = [r for r in (below, above) if r[0] < r[1] or (step and r[0] == r[1])]
        if stretches:
            widest = max(stretches, key=lambda r: float(np.ptp(dim.to_unit(np.array(r, dtype=float)))))
            out[dim.name] = {**env, dim.name: widest}
    return out


def sample_shifted(envelope: Mapping[str, Any] | None, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` scenarios just outside the envelope, one factor at a time (see :func:`shifted_envelopes`).

    The parameters take turns: scenario ``i`` shifts parameter ``i mod k`` of the
    ``k`` that can be shifted, the others staying inside the envelope; each
    parameter's scenarios are a Latin Hypercube of their own.
    """
    n, seed = check_int(n, "n"), check_seed(seed)
    shifts = list(shifted_envelopes(envelope).values())
    if not shifts:
        raise ValueError("the envelope spans the whole space: nothing lies outside it")
    groups = [sample_envelope(shift, len(range(j, n, len(shifts))), trial_seed(seed, j))
              for j, shift in enumerate(shifts)]
    return [groups[i % len(shifts)][i // len(shifts)] for i in range(n)]


def in_envelope(params: Mapping[str, Any], envelope: Mapping[str, Any] | None = None) -> bool:
    """Whether the scenario ``params`` (nominal-filled) lies inside the envelope."""
    space = default_space()
    env = check_envelope(envelope, space)
    params = space.validate(params)
    for dim in space:
        value, allowed = params[dim.name], env[dim.name]
        inside = value in allowed if isinstance(dim, Categorical) else allowed[0] <= value <= allowed[1]
        if not inside:
            return False
    return True


def record_demos(
    env_id: str,
    episodes: int,
    out: str | Path,
    *,
    envelope: Mapping[str, Any] | None = None,
    seed: int = 0,
    executor: str = "local",
    workers: int | None = None,
    address: str | None = None,
    progress: bool = True,
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
    envelope : mapping, optional
        The training envelope (see :func:`check_envelope`); default :data:`TRAINING_ENVELOPE`.
    seed : int
        Seed of the scenario design and of every episode (``trial_seed(seed, i)``).
    executor : str
        Where the episodes run (``"local"``, ``"ray"`` or a registered executor).
    workers : int, optional
        Parallel episodes (default: all cores).
    address : str, optional
        For executors that take one (e.g. a Ray cluster).
    progress : bool
        Show a progress bar.
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
    env = check_envelope(envelope)
    scenarios = [(p, trial_seed(seed, i)) for i, p in enumerate(sample_envelope(env, episodes, seed))]
    recordings = record_episodes(env_id, "scripted", scenarios, executor=executor, workers=workers, address=address,
                                 progress=progress, desc="demos")
    check_no_errors(recordings, "demonstrations")
    meta = {"env_id": env_id, "policy": "scripted", "seed": seed, "envelope": _json_envelope(env)}
    return save_episodes(out, DEMOS_FILE, recordings, meta, format)


def _json_envelope(envelope: dict[str, Any]) -> dict[str, list]:
    return {name: list(value) for name, value in envelope.items()}


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
