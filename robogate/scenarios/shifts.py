"""Scenes outside an envelope: named families of shifts, the one owner of every shifted-scenario table.

A :class:`Shift` is a family of scenes just outside an :class:`~robogate.scenarios.envelope.Envelope`
(usually a policy's training envelope): each scene starts inside the envelope and moves some
parameters into their *regions*, which lie outside it. How many parameters one scene moves
is its ``factors``:

* one factor (``factors=1``) -- the parameters take turns, scene ``i`` moving parameter
  ``i mod k`` (a balanced design, each parameter's scenes a Latin Hypercube of its own);
  :func:`one_factor_shifts` builds the family that moves each parameter into the widest
  stretch of its range beyond the envelope;
* several factors (``factors=(1, 2)``) -- each scene moves a random one or two of them.

Families are built from the tables below, or from any regions: a monitor evaluation names
*benign* and *failing* families by the regions it gives them.

Tables
------
:data:`SHIFT_REGIONS`
    Where the monitor evaluation moves each parameter, outside the default training envelope.
:data:`DEMO_SHIFT`
    The scene of ``robogate demo``'s monitored rollout: a place target on a high platform.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robogate._utils.checks import check_int
from robogate._utils.seeding import trial_seed
from robogate.scenarios.envelope import Envelope
from robogate.scenarios.space import Categorical, Continuous, Integer

__all__ = ["DEMO_SHIFT", "SHIFT_REGIONS", "Shift", "one_factor_shifts"]

SHIFT_REGIONS: dict[str, Any] = {
    "friction": (0.12, 0.35),
    "mass": (0.6, 1.6),
    "com_offset": (0.15, 0.4),
    "size": (0.075, 0.1),
    "ik_noise": (0.006, 0.025),
    "obstacles": (1, 3),
    "shape": ["capsule", "plate"],
    "placement": ["raised_low", "raised_high", "edge", "reach_limit", "reach_limit_raised"],
}
"""Where a shifted scene of the monitor evaluation moves each parameter: outside
:data:`robogate.training.demonstrations.TRAINING_ENVELOPE`, near enough that some scenes still succeed."""

DEMO_SHIFT: dict[str, Any] = {"placement": "raised_high"}
"""The scene of ``robogate demo``'s monitored rollout (the rest nominal): a place target on a high
platform, in the ``placement`` region of :data:`SHIFT_REGIONS`, which the shipped policy never saw."""


@dataclass(frozen=True, eq=False)
class Shift:
    """A family of scenes outside an envelope: ``factors`` of its parameters moved into their regions.

    Parameters
    ----------
    envelope : Envelope
        Where the scenes start (the in-distribution region).
    regions : mapping
        Parameter name -> where a shifted scene moves it, written as an envelope entry
        (``(low, high)`` or allowed values); each must lie outside ``envelope`` on that
        parameter (continuous ranges may touch its ends).
    factors : int or (int, int), default 1
        How many parameters one scene moves: exactly that many, or a random number in the range.
    name : str, default "shift"
        What the family is called (e.g. ``"benign"``, ``"failing"``).

    Raises
    ------
    ValueError
        For no regions, a region that overlaps the envelope, or factors outside ``1..len(regions)``.

    Examples
    --------
    >>> from robogate.training.demonstrations import TRAINING_ENVELOPE
    >>> shift = Shift(TRAINING_ENVELOPE, {"friction": (0.12, 0.35), "obstacles": (1, 3)}, factors=(1, 2))
    >>> scenes = shift.sample(10, seed=0)
    >>> all(shift.contains(s) for s in scenes), any(TRAINING_ENVELOPE.contains(s) for s in scenes)
    (True, False)
    """

    envelope: Envelope
    regions: Mapping[str, Any] = field(default_factory=dict)
    factors: int | tuple[int, int] = 1
    name: str = "shift"

    def __post_init__(self) -> None:
        if not isinstance(self.envelope, Envelope):
            raise ValueError(f"shift: envelope must be an Envelope, got {type(self.envelope).__name__}")
        if not self.regions:
            raise ValueError("shift: give at least one region to move a parameter into")
        limits = Envelope(self.envelope.space, self.regions).limits
        object.__setattr__(self, "regions", {n: limits[n] for n in self.regions})
        for name, region in self.regions.items():
            if _overlaps(self.envelope.allowed(name), region):
                raise ValueError(
                    f"shift {self.name!r}: the {name} region {Envelope(self.envelope.space, {name: region}).describe_entry(name)} "
                    f"overlaps the envelope ({self.envelope.describe_entry(name)}); a shifted scene must lie outside it"
                )
        low, high = (self.factors, self.factors) if not isinstance(self.factors, tuple) else self.factors
        low, high = check_int(low, "factors", 1), check_int(high, "factors", 1)
        if not low <= high <= len(self.regions):
            raise ValueError(f"shift {self.name!r}: factors must lie in 1..{len(self.regions)} (one per region), "
                             f"got {self.factors!r}")
        object.__setattr__(self, "factors", low if low == high else (low, high))

    @property
    def factor_range(self) -> tuple[int, int]:
        """The fewest and most parameters one scene moves."""
        return (self.factors, self.factors) if isinstance(self.factors, int) else self.factors

    def envelopes(self) -> dict[str, Envelope]:
        """Per region, the envelope with that one parameter moved into it (a one-factor family's parts)."""
        return {name: self.envelope.updated({name: region}) for name, region in self.regions.items()}

    def sample(self, n: int, seed: int = 0) -> list[dict[str, Any]]:
        """``n`` scenes of the family (complete parameter dicts), the same for the same seed.

        One factor: scene ``i`` moves the ``i mod k``-th region's parameter, and each
        parameter's scenes are a Latin Hypercube of :meth:`envelopes` (seeded
        ``trial_seed(seed, j)``). Several: every scene is a Latin Hypercube scene of the
        envelope with ``factors`` random parameters (a random number of them when ``factors``
        is a range) drawn uniformly from their regions.
        """
        n, seed = check_int(n, "n"), check_int(seed, "seed")
        if self.factors == 1:
            parts = list(self.envelopes().values())
            groups = [part.sample(len(range(j, n, len(parts))), trial_seed(seed, j)) for j, part in enumerate(parts)]
            return [groups[i % len(parts)][i // len(parts)] for i in range(n)]
        low, high = self.factor_range
        rng = np.random.default_rng(seed)
        space, names, scenes = self.envelope.space, list(self.regions), []
        for base in self.envelope.sample(n, seed):
            scene = dict(base)
            count = low if low == high else int(rng.integers(low, high + 1))
            for name in rng.choice(names, size=count, replace=False):
                dim, region = space[name], self.regions[name]
                if isinstance(dim, Categorical):
                    scene[name] = str(rng.choice(region))
                elif isinstance(dim, Integer):
                    scene[name] = int(region[rng.integers(0, len(region))])
                else:
                    scene[name] = float(rng.uniform(*region))
            scenes.append(space.validate(scene))
        return scenes

    def moved(self, params: Mapping[str, Any]) -> list[str]:
        """The parameters on which the scene ``params`` (nominal-filled) leaves the envelope."""
        return self.envelope.outside(params)

    def contains(self, params: Mapping[str, Any]) -> bool:
        """True if ``params`` is a scene of this family: between ``factors`` parameters in their regions, the rest inside."""
        moved = self.moved(params)
        low, high = self.factor_range
        if not low <= len(moved) <= high or any(n not in self.regions for n in moved):
            return False
        point = self.envelope.space.validate(params)
        return all(Envelope(self.envelope.space, {n: self.regions[n]}).contains({n: point[n]}) for n in moved)

    def describe(self) -> str:
        """The family in a sentence."""
        regions = "; ".join(Envelope(self.envelope.space, {n: r}).describe_entry(n) for n, r in self.regions.items())
        low, high = self.factor_range
        count = f"{low}" if low == high else f"{low} to {high}"
        return f"{self.name}: {count} of [{regions}] moved out of {self.envelope.describe()}"


def _overlaps(allowed: Any, region: Any) -> bool:
    """Whether an envelope's allowed values and a region share a value (continuous ranges may touch)."""
    if isinstance(allowed, tuple):
        if allowed[0] == allowed[1]:
            return region[0] < allowed[0] < region[1] or region[0] == region[1] == allowed[0]
        return region[0] < allowed[1] and allowed[0] < region[1]
    return bool(allowed & set(region))


def one_factor_shifts(envelope: Envelope, name: str = "one-factor") -> Shift:
    """The one-factor family that moves each parameter into the widest stretch of its range beyond ``envelope``.

    A numeric parameter takes the wider, on its own scale, of the two stretches of its range
    that lie beyond the envelope; a categorical one the values the envelope leaves out.
    Parameters the envelope spans fully get no region.

    Raises
    ------
    ValueError
        When the envelope spans the whole space (nothing lies outside it).
    """
    regions: dict[str, Any] = {}
    for dim in envelope.space:
        allowed = envelope.allowed(dim.name)
        if isinstance(dim, Categorical):
            rest = [c for c in dim.choices if c not in allowed]
            if rest:
                regions[dim.name] = rest
            continue
        if isinstance(dim, Continuous):
            stretches = [r for r in ((dim.low, allowed[0]), (allowed[1], dim.high)) if r[0] < r[1]]
        else:
            stretches = [r for r in ((dim.low, min(allowed) - 1), (max(allowed) + 1, dim.high)) if r[0] <= r[1]]
        if stretches:
            regions[dim.name] = max(stretches, key=lambda r: float(np.ptp(dim.to_unit(np.array(r, dtype=float)))))
    if not regions:
        raise ValueError("the envelope spans the whole space: nothing lies outside it")
    return Shift(envelope, regions, factors=1, name=name)
