"""What a sweep is: one frozen configuration that writes, reads and compares its manifest.

A :class:`SweepConfig` holds everything that decides a sweep's rows (env, policy, seed, space
and sampler settings). It is written into the store's ``manifest.json``, read back from it,
and a resumed sweep must have the same one: :meth:`SweepConfig.first_difference` names the
first field that differs, and that is the resume error.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robogate.scenarios.space import ParameterSpace
from robogate.sweep.sampler import BAND, TwoStageSampler

__all__ = ["MANIFEST_KIND", "SweepConfig", "check_space"]

#: The ``kind`` of a robogate sweep's manifest.
MANIFEST_KIND = "robogate-sweep"

#: Fields stored under the manifest's ``sampler`` key (the rest sit at its top level).
_SAMPLER_FIELDS = ("n_lhs", "n_boundary", "band", "batch_size", "n_candidates")


def check_space(space: Any, env_id: str) -> ParameterSpace:
    """The space to sweep, checked against the space the env declares (``env.unwrapped.parameter_space``).

    ``None`` is the env's space; a mapping is read with :meth:`ParameterSpace.from_dict`.

    Raises
    ------
    ValueError
        ``bad space: ...`` naming an unknown parameter, a wrong kind, or a range or category
        the env does not accept; or naming an env that declares no space.
    """
    from robogate.execution.trial import env_space

    declared = env_space(env_id)
    if space is None:
        return declared
    if isinstance(space, Mapping):
        try:
            space = ParameterSpace.from_dict(space)
        except ValueError as exc:
            raise ValueError(f"bad space: {exc}") from None
    if not isinstance(space, ParameterSpace):
        raise ValueError(f"bad space: expected a ParameterSpace, got {type(space).__name__}")
    for dim in space:
        if dim.name not in declared:
            raise ValueError(
                f"bad space: {dim.name!r} is not a parameter of {env_id}; valid names are {declared.names}"
            )
        ref = declared[dim.name]
        if dim.kind != ref.kind:
            raise ValueError(f"bad space: {dim.name!r} must be {ref.kind} for {env_id}, got {dim.kind}")
        for value in list(dim.choices) if dim.kind == "categorical" else [dim.low, dim.high]:
            try:
                ref.validate(value)
            except ValueError:
                raise ValueError(
                    f"bad space: {dim.name!r} takes {dim.describe()}, but {env_id} accepts {ref.describe()}"
                ) from None
    return space


@dataclass(frozen=True)
class SweepConfig:
    """The settings that decide a sweep's rows.

    Parameters
    ----------
    env_id : str
        The env swept.
    policy : str
        The policy spec (see :func:`robogate.execution.specs.make_policy`).
    seed : int
        Seed of the sampler and of every experiment.
    space : ParameterSpace
        The space swept.
    n_lhs, n_boundary, band, batch_size, n_candidates
        The :class:`~robogate.sweep.sampler.TwoStageSampler` settings, resolved (no ``None``).
    """

    env_id: str
    policy: str
    seed: int
    space: ParameterSpace
    n_lhs: int
    n_boundary: int
    band: tuple[float, float]
    batch_size: int
    n_candidates: int

    @classmethod
    def build(
        cls,
        env_id: str,
        policy: str,
        *,
        space: Any = None,
        n_lhs: int,
        n_boundary: int,
        band: tuple[float, float] = BAND,
        batch_size: int | None = None,
        n_candidates: int | None = None,
        seed: int = 0,
    ) -> SweepConfig:
        """A checked configuration, with the sampler's defaults filled in.

        Raises
        ------
        ValueError
            For a bad space (see :func:`check_space`) or sampler setting.
        """
        sampler = TwoStageSampler(check_space(space, env_id), n_lhs=n_lhs, n_boundary=n_boundary,
                                  band=band, batch_size=batch_size, n_candidates=n_candidates, seed=seed)
        return cls(env_id=env_id, policy=policy, seed=sampler.seed, space=sampler.space,
                   n_lhs=sampler.n_lhs, n_boundary=sampler.n_boundary, band=tuple(sampler.band),
                   batch_size=sampler.batch_size, n_candidates=sampler.n_candidates)

    def sampler(self) -> TwoStageSampler:
        """A fresh sampler with these settings (the same points for the same outcomes)."""
        return TwoStageSampler(self.space, n_lhs=self.n_lhs, n_boundary=self.n_boundary, band=self.band,
                               batch_size=self.batch_size, n_candidates=self.n_candidates, seed=self.seed)

    # -------------------------------------------------------------------------------- manifest

    def to_manifest(self) -> dict[str, Any]:
        """The manifest entries of this configuration (JSON-serialisable)."""
        return {
            "kind": MANIFEST_KIND,
            "env_id": self.env_id,
            "policy": self.policy,
            "seed": self.seed,
            "space": self.space.to_dict(),
            "sampler": {name: list(v) if name == "band" else v
                        for name in _SAMPLER_FIELDS for v in [getattr(self, name)]},
        }

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any], where: Any = "the sweep") -> SweepConfig:
        """Read the configuration back from a manifest.

        Raises
        ------
        ValueError
            If the manifest does not describe a robogate sweep or a field is missing or invalid.
        """
        if manifest.get("kind") != MANIFEST_KIND:
            raise ValueError(f"{where}: its manifest does not describe a robogate sweep")
        sampler = manifest.get("sampler")
        if not isinstance(sampler, Mapping):
            raise ValueError(f"{where}: its manifest has no sampler settings")
        values = {**{k: manifest.get(k) for k in ("env_id", "policy", "seed")},
                  **{k: sampler.get(k) for k in _SAMPLER_FIELDS}}
        missing = [k for k, v in values.items() if v is None]
        if missing:
            raise ValueError(f"{where}: its manifest lacks {', '.join(missing)}")
        try:
            space = ParameterSpace.from_dict(manifest.get("space") or {})
        except ValueError as exc:
            raise ValueError(f"{where}: its stored space is invalid ({exc})") from None
        values["band"] = tuple(float(b) for b in values["band"])
        return cls(space=space, **values)

    @classmethod
    def read(cls, path: str | os.PathLike) -> SweepConfig:
        """The configuration of the sweep stored at ``path``."""
        from robogate.datasets.store import SweepStore

        return cls.from_manifest(SweepStore.open(path).manifest, where=Path(path))

    def first_difference(self, other: SweepConfig) -> str | None:
        """A sentence naming the first field in which ``other`` differs from this one, or None."""
        for f in dataclasses.fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if mine == theirs:
                continue
            if f.name == "space":
                changed = [n for n in sorted(set(mine.names) | set(theirs.names))
                           if n not in mine or n not in theirs or mine[n] != theirs[n]]
                detail = f"parameters {changed} differ" if changed else "parameter order differs"
                return f"space differs ({detail})"
            return f"{f.name} differs (stored {mine!r}, requested {theirs!r})"
        return None
