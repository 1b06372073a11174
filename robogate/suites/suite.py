"""Scenario suites: named, versioned files of fixed scenes that every policy is run on.

A suite is a TOML (or JSON) file::

    name = "my-cell"
    version = 1
    seed = 7                 # fixes every scene's seed (and the points of envelope scenarios)
    seeds = 10               # episodes per scenario, unless a scenario says otherwise

    [categories.nominal]
    target = [0.95, 1.0]     # the success band the category is meant to land in (optional)
    description = "..."

    [[scenarios]]
    id = "box-center"
    category = "nominal"
    params = { shape = "box", placement = "center" }       # a scene; the rest nominal

    [[scenarios]]
    id = "light-objects"
    category = "nominal"
    envelope = { mass = "0.05:0.3", shape = "box,cylinder" }   # a small envelope (the --envelope syntax)
    rest = "nominal"         # what parameters the envelope leaves out do (default "nominal")
    seeds = 20

A scenario's episodes are fixed by the file: episode ``j`` of scenario ``id`` has the seed
``SeedSequence(seed, spawn_key=(crc32(id), j))`` and, for an envelope scenario, the ``j``-th
point of a Latin Hypercube over the envelope (seeded by the scenario's id), so every policy
sees the same scenes, and adding or reordering scenarios changes no other scenario's scenes.
:meth:`Suite.run_order` shuffles the episodes once (seeded), the order runs and sequential
comparisons use. A bad file is refused with the scenario and the field named.

Shipped suites live in ``robogate/suites`` (:func:`suite_names`); ``robogate-68`` follows
ROBOGATE's four categories and counts (see ``docs/robogate-68.md``).
"""

from __future__ import annotations

import hashlib
import json
import sys
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from robogate._utils.checks import is_integer, is_real
from robogate.envs.scene import default_space
from robogate.scenarios.envelope import RESTS, Envelope
from robogate.scenarios.space import ParameterSpace

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["Category", "Episode", "Scenario", "Suite", "load_suite", "suite_names"]

SUITE_PACKAGE = "robogate.suites"
SUFFIXES = (".toml", ".json")
_SUITE_FIELDS = {"name", "version", "description", "seed", "seeds", "categories", "scenarios"}
_SCENARIO_FIELDS = {"id", "category", "params", "envelope", "rest", "seeds", "description"}
_CATEGORY_FIELDS = {"target", "description"}


class SuiteError(ValueError):
    """A suite file that cannot be used, naming the scenario and the field."""


@dataclass(frozen=True)
class Category:
    """A group of scenarios reported together.

    Attributes
    ----------
    name : str
    target : (float, float) or None
        The success band the category is meant to land in.
    description : str
    """

    name: str
    target: tuple[float, float] | None = None
    description: str = ""


@dataclass(frozen=True)
class Scenario:
    """One scenario of a suite: a scene (``params``) or a small envelope, with a category and a number of seeds."""

    id: str
    category: str
    seeds: int
    params: dict | None = None
    envelope: Envelope | None = None
    description: str = ""

    def describe(self, space: ParameterSpace) -> str:
        """The scene in a few words (its parameters that differ from nominal in ``space``, or its envelope)."""
        if self.envelope is not None:
            entries = ", ".join(self.envelope.describe_entry(n) for n in self.envelope.limits)
            return entries + (" (the rest free)" if self.envelope.rest == "free" else "")
        changed = {k: v for k, v in self.params.items() if v != space[k].nominal}
        return ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in changed.items()) or "nominal"


@dataclass(frozen=True)
class Episode:
    """One episode of a suite: which scenario, which of its episodes, the scene and the seed."""

    index: int
    scenario: str
    category: str
    episode: int
    params: dict
    seed: int


@dataclass(frozen=True, eq=False)
class Suite:
    """A named, versioned set of scenarios (see the module docstring), in the scenario space of an env.

    Use :func:`load_suite` to read one.
    """

    name: str
    version: int
    seed: int
    categories: dict[str, Category]
    scenarios: tuple[Scenario, ...]
    space: ParameterSpace
    description: str = ""
    source: str = ""

    @property
    def label(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"

    def episodes(self) -> list[Episode]:
        """Every episode, scenario by scenario in file order (``index`` counts them)."""
        out: list[Episode] = []
        for scenario in self.scenarios:
            key = zlib.crc32(scenario.id.encode())
            seeds = [int(np.random.SeedSequence(self.seed, spawn_key=(key, j)).generate_state(1)[0])
                     for j in range(scenario.seeds)]
            if scenario.envelope is not None:
                design = int(np.random.SeedSequence(self.seed, spawn_key=(key,)).generate_state(1)[0])
                points = scenario.envelope.sample(scenario.seeds, design)
            else:
                points = [scenario.params] * scenario.seeds
            first = len(out)
            out += [Episode(first + j, scenario.id, scenario.category, j, dict(p), s)
                    for j, (p, s) in enumerate(zip(points, seeds))]
        return out

    def run_order(self) -> list[int]:
        """Episode indices in the suite's fixed shuffled order (what runs first, what pairs are looked at first)."""
        return np.random.default_rng(self.seed).permutation(sum(s.seeds for s in self.scenarios)).tolist()

    @property
    def digest(self) -> str:
        """SHA-256 (first 16 hex digits) of every episode's scenario, category, scene and seed."""
        rows = [[e.scenario, e.category, e.episode, e.params, e.seed] for e in self.episodes()]
        return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """The suite as a suite file's content (JSON-ready): :func:`load_suite` reads it back."""
        scenarios = []
        for s in self.scenarios:
            item: dict[str, Any] = {"id": s.id, "category": s.category, "seeds": s.seeds}
            if s.envelope is not None:
                item["envelope"] = s.envelope.to_dict()["limits"]
                item["rest"] = s.envelope.rest
            else:
                item["params"] = s.params
            if s.description:
                item["description"] = s.description
            scenarios.append(item)
        categories = {c.name: {**({"target": list(c.target)} if c.target else {}),
                               **({"description": c.description} if c.description else {})}
                      for c in self.categories.values()}
        return {"name": self.name, "version": self.version, "description": self.description, "seed": self.seed,
                "categories": categories, "scenarios": scenarios}


# ---------------------------------------------------------------------------------- reading


def suite_names() -> list[str]:
    """Names of the suites shipped with robogate."""
    folder = resources.files(SUITE_PACKAGE)
    return sorted(p.name.rsplit(".", 1)[0] for p in folder.iterdir() if p.name.endswith(SUFFIXES))


def load_suite(suite: str | Path | Mapping[str, Any] | Suite, space: ParameterSpace | None = None) -> Suite:
    """A suite by shipped name (``"robogate-68"``), from a file (TOML or JSON), or from a mapping,
    checked against the scenario space of the env it runs on.

    Parameters
    ----------
    suite : str, Path, mapping or Suite
    space : ParameterSpace, optional
        The env's scenario space (default: robogate's envs', :func:`~robogate.scenarios.space.default_space`).

    Raises
    ------
    ValueError
        For an unknown name (listing the shipped ones), an unreadable file, a bad field
        (naming the scenario and the field), or a parameter the space does not have.
    """
    space = space if space is not None else default_space()
    if isinstance(suite, Suite):
        if suite.space != space:
            raise SuiteError(f"suite {suite.label} was built for another scenario space ({', '.join(suite.space.names)}),"
                             f" not this env's ({', '.join(space.names)}); load it with load_suite(..., space)")
        return suite
    if isinstance(suite, Mapping):
        return _build(suite, "the suite given", space)
    text = str(suite)
    path = Path(text)
    if not path.suffix and not path.exists():
        names = suite_names()
        if text not in names:
            raise SuiteError(f"unknown suite {text!r}; shipped suites: {', '.join(names)} (or give a .toml or "
                             ".json file)")
        with resources.as_file(resources.files(SUITE_PACKAGE) / f"{text}.toml") as shipped:
            return _build(_read(shipped), shipped.name, space)
    if not path.is_file():
        raise SuiteError(f"no suite file at {path}")
    return _build(_read(path), path.name, space)


def _read(path: Path) -> Mapping[str, Any]:
    if path.suffix not in SUFFIXES:
        raise SuiteError(f"suite {path.name}: expected a .toml or .json file")
    try:
        if path.suffix == ".json":
            return json.loads(path.read_text(encoding="utf-8"))
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SuiteError(f"suite {path.name}: not valid {path.suffix[1:].upper()}: {exc}") from None


def _positive_int(value: Any, where: str) -> int:
    if not is_integer(value) or value < 1:
        raise SuiteError(f"{where} must be a positive integer, got {value!r}")
    return int(value)


def _build(data: Any, source: str, space: ParameterSpace) -> Suite:
    if not isinstance(data, Mapping):
        raise SuiteError(f"suite {source}: expected a table of fields, got {type(data).__name__}")
    unknown = sorted(set(data) - _SUITE_FIELDS)
    if unknown:
        raise SuiteError(f"suite {source}: unknown field(s) {unknown}; expected {sorted(_SUITE_FIELDS)}")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise SuiteError(f"suite {source}: field 'name' must be a non-empty string, got {name!r}")
    version = _positive_int(data.get("version"), f"suite {source}: field 'version'")
    seed = data.get("seed")
    if not is_integer(seed) or seed < 0:
        raise SuiteError(f"suite {source}: field 'seed' must be a non-negative integer, got {seed!r}")
    default_seeds = _positive_int(data.get("seeds", 1), f"suite {source}: field 'seeds'")
    categories = _categories(data.get("categories", {}), source)
    raw = data.get("scenarios")
    if not isinstance(raw, list) or not raw:
        raise SuiteError(f"suite {source}: field 'scenarios' must be a non-empty list of scenarios")
    scenarios, seen = [], set()
    for i, item in enumerate(raw):
        scenario = _scenario(item, i, source, space, default_seeds, categories)
        if scenario.id in seen:
            raise SuiteError(f"suite {source}: scenario {scenario.id!r}: field 'id' is used twice")
        seen.add(scenario.id)
        scenarios.append(scenario)
    for s in scenarios:
        categories.setdefault(s.category, Category(s.category))
    return Suite(name=name, version=version, seed=int(seed), categories=categories, scenarios=tuple(scenarios),
                 space=space, description=str(data.get("description", "")), source=source)


def _categories(raw: Any, source: str) -> dict[str, Category]:
    if not isinstance(raw, Mapping):
        raise SuiteError(f"suite {source}: field 'categories' must be a table of categories")
    out = {}
    for name, item in raw.items():
        where = f"suite {source}: category {name!r}"
        if not isinstance(item, Mapping):
            raise SuiteError(f"{where} must be a table (target, description)")
        unknown = sorted(set(item) - _CATEGORY_FIELDS)
        if unknown:
            raise SuiteError(f"{where}: unknown field(s) {unknown}; expected {sorted(_CATEGORY_FIELDS)}")
        target = item.get("target")
        if target is not None:
            ok = (isinstance(target, list) and len(target) == 2 and all(is_real(t) for t in target)
                  and 0 <= target[0] <= target[1] <= 1)
            if not ok:
                raise SuiteError(f"{where}: field 'target' must be [low, high] with 0 <= low <= high <= 1, "
                                 f"got {target!r}")
            target = (float(target[0]), float(target[1]))
        out[str(name)] = Category(str(name), target, str(item.get("description", "")))
    return out


def _scenario(item: Any, i: int, source: str, space: ParameterSpace, default_seeds: int,
              categories: dict[str, Category]) -> Scenario:
    if not isinstance(item, Mapping):
        raise SuiteError(f"suite {source}: scenario {i + 1} must be a table of fields")
    sid = item.get("id")
    if not isinstance(sid, str) or not sid.strip():
        raise SuiteError(f"suite {source}: scenario {i + 1}: field 'id' must be a non-empty string, got {sid!r}")
    where = f"suite {source}: scenario {sid!r}"
    unknown = sorted(set(item) - _SCENARIO_FIELDS)
    if unknown:
        raise SuiteError(f"{where}: unknown field(s) {unknown}; expected {sorted(_SCENARIO_FIELDS)}")
    category = item.get("category")
    if not isinstance(category, str) or not category.strip():
        raise SuiteError(f"{where}: field 'category' must be a non-empty string, got {category!r}")
    if categories and category not in categories:
        raise SuiteError(f"{where}: field 'category': unknown category {category!r}; the suite declares "
                         f"{', '.join(categories)}")
    seeds = _positive_int(item.get("seeds", default_seeds), f"{where}: field 'seeds'")
    if "params" in item and "envelope" in item:
        raise SuiteError(f"{where}: give either 'params' (a scene) or 'envelope', not both")
    if "rest" in item and "envelope" not in item:
        raise SuiteError(f"{where}: field 'rest' needs an 'envelope'")
    description = str(item.get("description", ""))
    if "envelope" in item:
        return Scenario(sid, category, seeds, envelope=_envelope(item, where, space), description=description)
    params = item.get("params", {})
    if not isinstance(params, Mapping):
        raise SuiteError(f"{where}: field 'params' must be a table of parameter values, got {params!r}")
    try:
        params = space.validate(params)
    except ValueError as exc:
        raise SuiteError(f"{where}: field 'params': {exc}") from None
    return Scenario(sid, category, seeds, params=params, description=description)


def _envelope(item: Mapping[str, Any], where: str, space: ParameterSpace) -> Envelope:
    raw, rest = item["envelope"], item.get("rest", "nominal")
    if not isinstance(raw, Mapping) or not raw:
        raise SuiteError(f"{where}: field 'envelope' must be a non-empty table of parameter limits")
    if rest not in RESTS:
        raise SuiteError(f"{where}: field 'rest' must be 'nominal' or 'free', got {rest!r}")
    try:
        limits = {k: Envelope.parse([f"{k}={v}"], space).limits[k] if isinstance(v, str) else v
                  for k, v in raw.items()}
        return Envelope(space, limits, rest)
    except ValueError as exc:
        raise SuiteError(f"{where}: field 'envelope': {exc}") from None

