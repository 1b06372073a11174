"""The unit of work of a sweep: one trial, run by a pure, picklable function.

A :class:`Trial` says everything a worker needs (env id, policy spec,
parameters, seed); :func:`run_trial` runs it and returns a flat record.  Each
worker process keeps the envs and policies it has made in a module-level cache,
so the simulator is loaded once per process and reused (its saved state is
restored on every reset), never reloaded per episode.

Policy specs are strings, so they travel to any worker:

* ``"scripted"`` -- :class:`robogate.policies.ScriptedPolicy`;
* ``"flow"`` -- :class:`robogate.policies.FlowPolicy`, the Panda checkpoint
  shipped with robogate; ``"flow:PATH"`` -- a FlowPolicy checkpoint file, or
  the folder ``robogate policy train`` wrote (a worker loads it once and
  keeps it);
* ``"package.module:Factory"`` -- ``Factory`` imported from ``package.module``
  and called with no arguments; it must return an object with ``reset()`` and
  ``act(obs)``.

A policy *object* travels as a :class:`PolicyPayload`: pickled once by the caller, unpickled
once per worker and cached there by its digest, so a policy built in a script runs on any
executor and any number of workers. Its label (the ``policy`` column, a sweep's manifest) is
``<module.Class object>``, which no spec looks like: a stored run names what it ran, and asks
for the object again to continue.

Whichever way a policy comes, its episodes run torch on one thread (see :mod:`robogate.threads`).
"""

from __future__ import annotations

import hashlib
import importlib
import pickle
import warnings
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from robogate.checks import check_int
from robogate.env_contract import control_hz, no_rate_warning, scenario_space
from robogate.envs import ENV_IDS
from robogate.episode import Capture, missing_policy_methods, record_episode, run_episode
from robogate.space import ParameterSpace

__all__ = [
    "BUILTIN_POLICIES",
    "PolicyPayload",
    "Trial",
    "cached_env",
    "cached_policy",
    "check_clock",
    "check_seed",
    "default_policy",
    "env_space",
    "is_object_label",
    "label_of",
    "make_policy",
    "policy_label",
    "policy_reference",
    "run_trial",
    "trial_seed",
    "validate_env_id",
    "validate_policy",
    "validate_policy_spec",
]

#: Policy specs that name a built-in policy rather than ``module:factory``.
BUILTIN_POLICIES = ("scripted", "flow")
FLOW_PREFIX = "flow:"
"""A spec starting with this names a FlowPolicy checkpoint file (not a module called ``flow``)."""

# Per-process caches: a worker makes each env / policy once and reuses it.
_ENVS: dict[str, Any] = {}
_POLICIES: dict[str, Any] = {}


@dataclass(frozen=True)
class PolicyPayload:
    """A policy object packed to travel to worker processes (see the module docstring).

    Attributes
    ----------
    blob : bytes
        The pickled policy.
    key : str
        Its SHA-256 digest: workers cache the unpacked policy under it.
    label : str
        ``<module.Class object>``, stored in records as the ``policy`` column.
    """

    blob: bytes = field(repr=False)
    key: str
    label: str

    @classmethod
    def of(cls, policy: Any) -> PolicyPayload:
        """Pack ``policy``; a ``ValueError`` says so when it cannot be pickled."""
        try:
            blob = pickle.dumps(policy, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise ValueError(
                f"policy {type(policy).__name__} cannot be sent to worker processes ({type(exc).__name__}: "
                f"{exc}); run with workers=1, or pass a spec such as 'package.module:Factory'"
            ) from None
        return cls(blob, hashlib.sha256(blob).hexdigest(), label_of(policy))

    def unpack(self) -> Any:
        """The policy (a fresh copy)."""
        return pickle.loads(self.blob)


def policy_reference(policy: Any) -> str | PolicyPayload:
    """What a :class:`Trial` carries for ``policy``: a spec string as it is, an object packed."""
    if isinstance(policy, str):
        return policy
    missing = missing_policy_methods(policy)
    if missing:
        raise ValueError(f"policy must be a spec string or an object with reset() and act(obs); "
                         f"{type(policy).__name__} has no {' or '.join(missing)}")
    return PolicyPayload.of(policy)


def policy_label(policy: str | PolicyPayload) -> str:
    """The ``policy`` column of a record: the spec, or the packed policy's label."""
    return policy if isinstance(policy, str) else policy.label


def label_of(policy: Any) -> str:
    """How records and manifests name ``policy``: a spec as it is, an object as ``<module.Class object>``."""
    if isinstance(policy, str):
        return policy
    kind = type(policy)
    return f"<{kind.__module__}.{kind.__qualname__} object>"


def is_object_label(label: str) -> bool:
    """Whether a stored policy label names a policy object (which no spec can rebuild)."""
    return label.startswith("<") and label.endswith(" object>")


def default_policy(env_id: str, builtin: str = "scripted") -> str:
    """The built-in policy a command runs when none is named: only on robogate's own envs, the only ones
    its built-in policies drive.

    Raises
    ------
    ValueError
        For any other env: its policy must be named.
    """
    if env_id in ENV_IDS:
        return builtin
    raise ValueError(f"name the policy to run on {env_id} (--policy package.module:Factory, or a policy object "
                     f"from Python): robogate's built-in policies ({', '.join(BUILTIN_POLICIES)}) drive only "
                     "robogate's own envs")


@dataclass(frozen=True)
class Trial:
    """One experiment of a sweep.

    Parameters
    ----------
    id : int
        Sequential experiment id, unique within the sweep.
    env_id : str
        A Gymnasium env id (see :func:`validate_env_id`), e.g. one of ``robogate.ENV_IDS``.
    policy : str or PolicyPayload
        A policy spec (``"scripted"``, ``"flow"``, ``"package.module:Factory"``) or a packed object.
    params : dict
        Scenario parameters; omitted ones take their nominal values.
    seed : int
        Seed of the episode's nuisance variation.
    stage : int
        Sampler stage (1 = Latin Hypercube, 2 = boundary-focused).
    batch : int
        Index of the sampler batch the trial belongs to.
    capture : Capture, optional
        Record every step too (see :func:`robogate.episode.record_episode`): the record then
        carries the :class:`~robogate.episode.EpisodeRecording` under ``"recording"``.
    episode : callable, optional
        Runs the episode instead of :func:`robogate.run_episode`: a picklable
        ``episode(env, policy, params, seed)`` returning its flat record (e.g. an attempt
        watched by a failure monitor, :mod:`robogate.monitor.production`).
    """

    id: int
    env_id: str
    policy: str | PolicyPayload
    params: dict = field(hash=False)
    seed: int
    stage: int
    batch: int
    capture: Capture | None = None
    episode: Any = None

    def plan_row(self) -> dict[str, Any]:
        """The trial as a flat row of a sweep plan (``id``, ``stage``, ``batch``, ``seed``, params)."""
        return {"id": self.id, "stage": self.stage, "batch": self.batch, "seed": self.seed, **self.params}


def check_seed(value: Any, name: str = "seed") -> int:
    """Return ``value`` as an int if it is a non-negative integer (not a bool), else raise ``ValueError``."""
    return check_int(value, name)


def trial_seed(sweep_seed: int, index: int) -> int:
    """Seed of experiment ``index`` of a sweep seeded with ``sweep_seed``.

    Parameters
    ----------
    sweep_seed : int
        Non-negative seed of the whole sweep.
    index : int
        Non-negative experiment index (its id).

    Returns
    -------
    int
        ``SeedSequence(sweep_seed).spawn(n)[index].generate_state(1)[0]`` for any
        ``n > index``, as a Python int in ``[0, 2**32)``.
    """
    sweep_seed, index = check_seed(sweep_seed, "sweep_seed"), check_seed(index, "index")
    child = np.random.SeedSequence(sweep_seed, spawn_key=(index,))
    return int(child.generate_state(1)[0])


def validate_env_id(env_id: Any) -> str:
    """Return ``env_id`` if Gymnasium knows it.

    Any registered id, or ``module:EnvId``: as :func:`gymnasium.make` does, the module is
    imported first (it registers ``EnvId``), so every worker process finds the env too.

    Raises
    ------
    ValueError
        Naming the id and why it is unknown.
    """
    if not isinstance(env_id, str) or not env_id.strip():
        raise ValueError(f"env id must be a non-empty string such as {ENV_IDS[0]!r}, got {env_id!r}")
    module, sep, name = env_id.rpartition(":")
    if sep:
        try:
            importlib.import_module(module)
        except Exception as exc:
            raise ValueError(f"unknown env id {env_id!r}: cannot import module {module!r} "
                             f"({type(exc).__name__}: {exc})") from None
    try:
        gym.spec(name)
    except gym.error.Error:
        raise ValueError(f"unknown env id {env_id!r}: Gymnasium has no env {name!r} registered; robogate's are "
                         f"{', '.join(ENV_IDS)}, and an env of your own is named 'module:EnvId' "
                         "(the module registers EnvId)") from None
    return env_id


def env_space(env_id: str) -> ParameterSpace:
    """The scenario space the env declares (see :func:`robogate.env_contract.scenario_space`).

    The env is made once per process and kept for the trials run here.

    Raises
    ------
    ValueError
        For an unknown env id, or an env that declares no :class:`~robogate.space.ParameterSpace`.
    """
    return scenario_space(cached_env(env_id), env_id)


def _spec_error(spec: str, why: str) -> ValueError:
    return ValueError(
        f"bad policy spec {spec!r}: {why} (a spec is one of {', '.join(map(repr, BUILTIN_POLICIES))}, "
        "'flow:PATH' or 'package.module:Factory')"
    )


def make_policy(spec: Any) -> Any:
    """Build a fresh policy from its spec.

    Parameters
    ----------
    spec : str
        ``"scripted"``, ``"flow"``, ``"flow:PATH"`` (a FlowPolicy checkpoint) or
        ``"package.module:Factory"`` (``Factory`` may be a dotted attribute
        path; it is called with no arguments).

    Returns
    -------
    object
        The policy, with callable ``reset()`` and ``act(obs)``.

    Raises
    ------
    ValueError
        Naming the spec, if it is malformed, its module or attribute is
        missing, the factory fails, or the result is not a policy.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"policy spec must be a non-empty string, got {spec!r}")
    if spec == "scripted":
        from robogate.policies import ScriptedPolicy

        return ScriptedPolicy()
    if spec == "flow" or spec.startswith(FLOW_PREFIX):
        return _make_flow_policy(spec)
    module_name, sep, attr_path = spec.partition(":")
    if not sep or not module_name or not attr_path or ":" in attr_path:
        raise _spec_error(spec, "not a known policy name and not of the form 'package.module:Factory'")
    try:
        obj = importlib.import_module(module_name)
    except ImportError as exc:
        raise _spec_error(spec, f"cannot import module {module_name!r} ({exc})") from None
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise _spec_error(spec, f"{module_name!r} has no attribute {attr_path!r}") from None
    if not callable(obj):
        raise _spec_error(spec, f"{attr_path!r} is not callable")
    try:
        policy = obj()
    except Exception as exc:
        raise _spec_error(spec, f"calling {attr_path}() raised {type(exc).__name__}: {exc}") from None
    missing = missing_policy_methods(policy)
    if missing:
        raise _spec_error(spec, f"{attr_path}() returned a {type(policy).__name__} without {' and '.join(missing)}")
    return policy


def _make_flow_policy(spec: str) -> Any:
    from robogate.policies import FlowPolicy

    if spec == "flow":
        return FlowPolicy.pretrained()
    path = spec[len(FLOW_PREFIX):]
    if not path:
        raise _spec_error(spec, "'flow:' needs a checkpoint path, e.g. 'flow:runs/flow' or 'flow:runs/flow/policy.pt'")
    try:
        return FlowPolicy.load(path)
    except ValueError as exc:
        raise _spec_error(spec, str(exc)) from None


def validate_policy_spec(spec: Any) -> str:
    """Check that ``spec`` builds a policy (see :func:`make_policy`) and return it.

    The policy built is cached for this process, so checking up front costs
    nothing later when trials run in-process.

    Raises
    ------
    ValueError
        Naming the spec and what is wrong with it; for the label of a policy object (a stored
        run's), saying to pass the object again.
    """
    if isinstance(spec, str) and is_object_label(spec):
        raise ValueError(f"this run's policy was an object, {spec}, which no spec rebuilds: pass that object "
                         "again from Python (e.g. run_sweep(..., policy=obj, resume=True))")
    cached_policy(spec)
    return spec


def validate_policy(policy: Any) -> str | PolicyPayload:
    """What trials carry for ``policy``: a checked spec (:func:`validate_policy_spec`) or a packed object.

    Raises
    ------
    ValueError
        For a bad spec, or an object that is not a policy or cannot be sent to workers.
    """
    if isinstance(policy, str):
        return validate_policy_spec(policy)
    return policy_reference(policy)


def cached_policy(spec: str | PolicyPayload) -> Any:
    """The policy of ``spec`` built once per process (a worker reuses it for every trial)."""
    key = spec if isinstance(spec, str) else spec.key
    policy = _POLICIES.get(key)
    if policy is None:
        policy = _POLICIES[key] = make_policy(spec) if isinstance(spec, str) else spec.unpack()
    return policy


def check_clock(env_id: str) -> float | None:
    """The env's control rate; when it declares none, one warning saying what to declare."""
    rate = control_hz(cached_env(env_id))
    if rate is None:
        warnings.warn(no_rate_warning(env_id), RuntimeWarning, stacklevel=3)
    return rate


def cached_env(env_id: str) -> gym.Env:
    """The env of ``env_id``, made once per process and reused (its scenario space checked once).

    Raises
    ------
    ValueError
        For an unknown env id, or an env that declares no scenario space.
    """
    env = _ENVS.get(env_id)
    if env is None:
        validate_env_id(env_id)
        env = gym.make(env_id)
        try:
            scenario_space(env, env_id)
        except ValueError:
            env.close()
            raise
        _ENVS[env_id] = env
    return env


def run_trial(trial: Trial) -> dict[str, Any]:
    """Run one trial in this process, reusing its cached env and policy.

    Parameters
    ----------
    trial : Trial
        What to run.

    Returns
    -------
    dict
        ``id``, ``stage``, ``batch``, then the :func:`robogate.run_episode`
        record (parameters, ``env_id``, ``seed``, ``outcome``, ``success``,
        ``steps``, ``sim_time``, ``wall_time``, ``physics_time``, ``error``)
        and ``policy``, plus ``recording`` when the trial captures its steps.  A
        policy that raises gives an ``outcome == "error"`` record with the
        message in ``error``.

    Raises
    ------
    ValueError
        For an unknown env id, a bad policy spec or invalid parameters.
    """
    env = cached_env(trial.env_id)
    policy = cached_policy(trial.policy)
    recording = None
    try:
        if trial.episode is not None:
            record = trial.episode(env, policy, trial.params, trial.seed)
        elif trial.capture is None:
            record = run_episode(env, policy, trial.params, trial.seed)
        else:
            record, recording = record_episode(env, policy, trial.params, trial.seed, trial.capture)
    except ValueError:
        raise
    except BaseException:
        # The env may be left mid-reset: make a fresh one next time.
        broken = _ENVS.pop(trial.env_id, None)
        if broken is not None:
            try:
                broken.close()
            except Exception:  # pragma: no cover - best effort
                pass
        raise
    out = {"id": int(trial.id), "stage": int(trial.stage), "batch": int(trial.batch)}
    for key, value in record.items():
        out[key] = trial.env_id if key == "env_id" else value  # the id as given, "module:EnvId" included
        if key == "env_id":
            out["policy"] = policy_label(trial.policy)
    if recording is not None:
        out["recording"] = recording
    return out

