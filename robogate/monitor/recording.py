"""Record a policy's rollouts for the runtime monitor, and read them back as :class:`Rollout` objects.

Rollouts are stored as recorded episodes (:mod:`robogate.datasets.episodes`): one Parquet file with
a row per control step, or a LeRobot v3.0 dataset folder. Besides the observations and actions
they hold whatever the policy offers the monitor: its embedding and its sampled action chunks.
:func:`record_rollouts` runs the episodes on the executors (:mod:`robogate.execution.batch`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from robogate._utils.checks import check_int
from robogate._utils.seeding import check_seed, trial_seed
from robogate.datasets.episodes import check_destination, read_episodes, save_episodes
from robogate.datasets.stages import STAGE_BOUNDARY
from robogate.envs.outcomes import Outcome
from robogate.envs.scene import default_space
from robogate.execution.batch import Scenario, check_no_errors, record_episodes
from robogate.execution.episode import Capture
from robogate.execution.executors import Executor
from robogate.execution.specs import cached_policy, label_of, policy_reference
from robogate.execution.trial import cached_env, env_space, validate_env_id
from robogate.monitor.rollout import Rollout
from robogate.scenarios.env_contract import recording_facts, training_envelope
from robogate.scenarios.envelope import Envelope
from robogate.scenarios.shifts import one_factor_shifts
from robogate.scenarios.space import ParameterSpace

__all__ = ["DEFAULT_CHUNKS", "ROLLOUTS_FILE", "chosen_scenes", "load_rollouts", "record_rollouts", "rollout_scenarios",
           "training_rows"]

ROLLOUTS_FILE = "rollouts.parquet"
"""Name of the rollouts file inside a rollouts folder."""
DEFAULT_CHUNKS = 32
"""Action chunks per step to record for the scores that read them (``ace``, ``consistency``; the
predictor's chunk statistics): the B they were measured with. The default monitor reads none, so
:func:`record_rollouts` samples none unless asked."""


def rollout_scenarios(
    episodes: int, params: Any = None, seed: int = 0, envelope: Envelope | Mapping[str, Any] | None = None,
    space: ParameterSpace | None = None,
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
    envelope : Envelope or mapping, optional
        For ``params=None``: where the scenes are drawn (a mapping of limits holds the rest
        nominal); default the whole space.
    space : ParameterSpace, optional
        The env's scenario space; default the envelope's, else robogate's envs'.
    """
    episodes, seed = check_int(episodes, "episodes", minimum=1), check_seed(seed)
    if space is None:
        space = envelope.space if isinstance(envelope, Envelope) else default_space()
    seeds = [trial_seed(seed, i) for i in range(episodes)]
    if params is None:
        if not isinstance(envelope, Envelope):
            envelope = Envelope(space, envelope or {}, rest="nominal" if envelope else "free")
        rows = envelope.sample(episodes, seed)
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


def chosen_scenes(
    env_id: str, policy: Any, episodes: int, seed: int = 0, *, envelope: Any = None,
    shifted: bool = False, sweep: pd.DataFrame | None = None, failures_only: bool = False, balanced: bool = False,
) -> Any:
    """The ``params`` of :func:`record_rollouts` for the common choices of scenes.

    Parameters
    ----------
    env_id, policy, episodes, seed
        As for :func:`record_rollouts`.
    envelope : Envelope, mapping or sequence of str, optional
        Limits replacing those of the policy's (else the env's) training envelope, the rest kept; texts
        in the ``--envelope`` syntax (:meth:`~robogate.scenarios.envelope.Envelope.parse`) too.
    shifted : bool
        Scenes just outside that training envelope, one parameter at a time
        (:func:`~robogate.scenarios.shifts.one_factor_shifts`).
    sweep : DataFrame, optional
        A stored sweep (:func:`robogate.load_sweep`) whose scenes and seeds are replayed: its failures only,
        or a balanced training set for a failure predictor (:func:`training_rows`), or all of its rows.

    Returns
    -------
    None, list of dict or DataFrame
        None for the training envelope itself.

    Raises
    ------
    ValueError
        For shifted scenes where no training envelope is declared, or a sweep with fewer matching rows
        than ``episodes``.
    """
    if sweep is not None:
        rows = sweep[~sweep["success"].astype(bool)] if failures_only else (
            training_rows(sweep, episodes, seed) if balanced else sweep)
        if len(rows) < episodes:
            raise ValueError(f"the sweep has {len(rows)} matching experiments, fewer than the {episodes} episodes asked")
        return rows
    if envelope is None and not shifted:
        return None
    policy_envelope = getattr(cached_policy(policy_reference(policy)), "envelope", None)
    base = policy_envelope or training_envelope(cached_env(env_id))
    if shifted:
        if not base.limits:
            raise ValueError(f"shifted scenes lie just outside a training envelope, and neither the policy nor {env_id} "
                             "declares one: declare training_envelope on the env (e.g. "
                             "robogate.ScenarioWrapper(..., training_envelope=...))")
        return one_factor_shifts(base).sample(episodes, seed)
    if not isinstance(envelope, (Envelope, Mapping)):
        envelope = Envelope.parse(envelope, base.space)
    return base.updated(envelope).sample(episodes, seed)


def training_rows(sweep: pd.DataFrame, episodes: int, seed: int = 0) -> pd.DataFrame:
    """Rows of a sweep to replay as labelled training rollouts for a failure predictor.

    Failures and successes in equal numbers where the sweep has them (the rest filled from the
    other outcome), each drawn boundary (stage-2) rows first, where the same parameters sometimes
    succeed and sometimes fail and only the episode itself tells them apart, then the uniform rows.
    Errored experiments say nothing about failures and are never drawn.

    Parameters
    ----------
    sweep : DataFrame
        A sweep's rows (:func:`robogate.load_sweep`): parameters, ``seed``, ``success``, ``stage``, ``outcome``.
    episodes : int
        How many rows.
    seed : int
        Seeds the draw within each stage.

    Returns
    -------
    DataFrame
        The rows, failures first then successes; fewer than ``episodes`` only if the sweep has fewer usable rows.
    """
    episodes = check_int(episodes, "episodes", minimum=1)
    missing = [c for c in ("seed", "success", "stage", "outcome") if c not in sweep.columns]
    if missing:
        raise ValueError(f"a sweep table has columns {missing}; this table does not (load it with robogate.load_sweep)")
    rows = sweep[sweep["outcome"] != Outcome.ERROR.value]
    rng = np.random.default_rng(seed)

    def ordered(part: pd.DataFrame) -> pd.DataFrame:
        shuffled = part.iloc[rng.permutation(len(part))]
        return pd.concat([shuffled[shuffled["stage"] == STAGE_BOUNDARY], shuffled[shuffled["stage"] != STAGE_BOUNDARY]])

    failures, successes = ordered(rows[~rows["success"].astype(bool)]), ordered(rows[rows["success"].astype(bool)])
    half = episodes // 2
    n_fail = min(len(failures), max(half, episodes - len(successes)))
    n_success = min(len(successes), episodes - n_fail)
    return pd.concat([failures.iloc[:n_fail], successes.iloc[:n_success]])


def capture_for(policy: Any, n_chunks: int) -> Capture:
    """What to record of ``policy``: its embedding when it has ``embed(obs)``, and ``n_chunks`` sampled chunks.

    Raises
    ------
    ValueError
        When ``n_chunks`` > 0 is asked of a policy without ``sample_chunks``.
    """
    samples = callable(getattr(policy, "sample_chunks", None))
    n_chunks = check_int(n_chunks, "n_chunks")
    if n_chunks and not samples:
        raise ValueError(f"policy {type(policy).__name__} has no sample_chunks(obs, n), so it cannot record "
                         f"{n_chunks} action chunks per step; use n_chunks=0")
    return Capture(embed=callable(getattr(policy, "embed", None)), n_chunks=n_chunks)


def record_rollouts(
    env_id: str,
    policy: Any,
    episodes: int = 50,
    params: Any = None,
    seed: int = 0,
    n_chunks: int = 0,
    *,
    executor: str | Executor = "local",
    workers: int | None = 1,
    address: str | None = None,
    progress: bool | None = None,
    out: str | Path | None = None,
    format: str = "parquet",
) -> list[Rollout]:
    """Run a policy for ``episodes`` episodes and return what the monitor reads of each.

    Parameters
    ----------
    env_id : str
        A Gymnasium env id (see :func:`robogate.execution.trial.validate_env_id`): one of
        ``robogate.ENV_IDS`` or an env of your own; its scenarios are drawn in its own space.
    policy : str or policy object
        A spec such as ``"flow"`` or ``"scripted"``, or any policy object. Its observations
        are always recorded; its ``embed(obs)`` and ``sample_chunks(obs, n)`` when it has them
        (:class:`~robogate.policies.FlowPolicy` has both, the scripted controller neither).
    episodes : int
        Number of episodes.
    params : None, dict, list of dict or pandas.DataFrame
        None: scenarios spread over the policy's training envelope (its
        ``envelope`` attribute, else the env's declared one: for robogate's envs
        :data:`robogate.training.demonstrations.TRAINING_ENVELOPE`, for others their whole space
        unless they declare one); otherwise see :func:`rollout_scenarios`.
    seed : int
        Seed of the scenarios and episodes: the same call records the same rollouts.
    n_chunks : int
        Chunks B sampled per step with ``sample_chunks``, for the scores that read them (``ace``,
        ``consistency``; :data:`DEFAULT_CHUNKS` is what they were measured with). Default 0: the
        default monitor reads none, and sampling them costs more than the rest of a step.
    executor, workers, address
        Where the episodes run (see :func:`robogate.execution.batch.record_episodes`); the same
        rollouts come back whatever runs them.
    progress : bool or None
        Draw a progress bar on stderr (None: only when stderr is a terminal).
    out : str or Path, optional
        Also write the rollouts (with observations and actions) into this folder.
    format : {"parquet", "lerobot"}
        As ``out/rollouts.parquet``, or as a LeRobot v3.0 dataset in ``out`` (see
        :mod:`robogate.datasets.lerobot`): a labelled failure dataset ``LeRobotDataset`` loads.

    Returns
    -------
    list of Rollout
        One per episode, in order (an episode that ended before its first step is left out).

    Raises
    ------
    ValueError
        For bad arguments, and when an episode ended in ``error`` (the policy raised): a broken
        harness says nothing about failures, so nothing is returned or written.

    Examples
    --------
    >>> from robogate.monitor import record_rollouts
    >>> from robogate.policies import FlowPolicy
    >>> flow = FlowPolicy.pretrained("robogate/PickPlace-Panda-v0")
    >>> cal = record_rollouts("robogate/PickPlace-Panda-v0", flow, episodes=2, seed=0, n_chunks=8, progress=False)
    >>> cal[0].embeddings.shape[1], cal[0].action_chunks.shape[1]
    (64, 8)
    """
    facts = recording_facts(cached_env(validate_env_id(env_id)), env_id)
    if out is not None:
        check_destination(out, ROLLOUTS_FILE, format, facts)
    probe = cached_policy(policy_reference(policy)) if isinstance(policy, str) else policy
    capture = capture_for(probe, n_chunks)
    envelope = getattr(probe, "envelope", None) or training_envelope(cached_env(env_id))
    scenarios = rollout_scenarios(episodes, params, seed, envelope, env_space(env_id))
    recordings = record_episodes(env_id, policy, scenarios, capture=capture, executor=executor, workers=workers,
                                 address=address, progress=progress, desc="rollouts")
    check_no_errors(recordings, "rollouts")
    if out is not None:
        save_episodes(out, ROLLOUTS_FILE, recordings, {"env_id": env_id, "policy": label_of(policy), "seed": seed},
                      format, facts)
    return [Rollout.from_recording(r, facts["fps"]) for r in recordings if r.steps]


def load_rollouts(path: str | Path) -> list[Rollout]:
    """The :class:`Rollout` of every episode at ``path``: a rollout file, a folder holding one, or a
    LeRobot dataset folder written with ``format="lerobot"``.

    Raises
    ------
    ValueError
        As :func:`robogate.datasets.episodes.read_episodes`.
    """
    episodes, meta = read_episodes(path)
    return [Rollout.from_recording(e, meta.get("fps")) for e in episodes if e.steps]
