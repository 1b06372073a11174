"""Policy specs: how a policy is named so that it travels to any worker, and how it is built there.

Specs are strings:

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
"""

from __future__ import annotations

import hashlib
import importlib
import pickle
from dataclasses import dataclass, field
from typing import Any

from robogate.envs import ENV_IDS
from robogate.policies import Policy

__all__ = [
    "BUILTIN_POLICIES",
    "PolicyPayload",
    "as_policy",
    "cached_policy",
    "default_policy",
    "is_object_label",
    "label_of",
    "make_policy",
    "missing_policy_methods",
    "policy_label",
    "policy_reference",
    "validate_policy",
    "validate_policy_spec",
]

#: Policy specs that name a built-in policy rather than ``module:factory``.
BUILTIN_POLICIES = ("scripted", "flow")
FLOW_PREFIX = "flow:"
"""A spec starting with this names a FlowPolicy checkpoint file (not a module called ``flow``)."""

_POLICIES: dict[str, Any] = {}
"""Per-process cache: a worker builds each policy once and reuses it."""


def missing_policy_methods(obj: Any) -> list[str]:
    """Which of ``reset()`` and ``act()`` ``obj`` lacks (an empty list for a policy)."""
    return [f"{m}()" for m in ("reset", "act") if not callable(getattr(obj, m, None))]


def as_policy(policy: Any) -> Policy:
    """``policy`` itself if it has callable ``reset()`` and ``act(obs)``; a spec string built into one.

    Raises
    ------
    ValueError
        For a bad spec, or an object without ``reset()`` or ``act(obs)``.
    """
    if isinstance(policy, str):
        return make_policy(policy)
    missing = missing_policy_methods(policy)
    if missing:
        raise ValueError(f"not a policy: a {type(policy).__name__} without {' and '.join(missing)} "
                         "(a policy has reset() and act(obs); or pass a spec such as 'scripted')")
    return policy


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
