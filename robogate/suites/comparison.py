"""Compare two policies on the same scenes and seeds: paired, fixed-budget or sequential, with a CI verdict.

:func:`compare` pairs two runs episode by episode and decides whether the candidate is
``better``, ``worse``, ``not worse`` (with a non-inferiority margin) or ``undecided`` against
the baseline (statistics in :mod:`robogate.analysis.paired`). Each side is one of:

* a suite run (a :class:`~robogate.suites.run.SuiteRun` or its folder): pairs are the suite's
  episodes, identical scenes and seeds by construction;
* a sweep folder: two sweeps made with the same seed and space have identical stage-1 (uniform)
  rows, which pair by id;
* a policy spec to run now on the suite (``"flow:runs/new/policy.pt"``): its episodes run in the
  suite's shuffled order, in batches, until the sequential test decides or the suite is done; the
  run is kept under ``out`` and can be finished later with ``robogate suite run --resume``.

One rule decides, however the runs were made: when every episode of the suite is paired, the
fixed-budget test (exact McNemar, Tango's interval) gives the verdict; the sequential test (valid
however often it looked) gives it only when the pairs stop short of the suite: a run stopped as
soon as it was decided, or a stored run that is not finished. So two stored runs and the same
policies run now give one verdict on the same full suite, and :attr:`Comparison.reason` names the
test that decided. A run that could have stopped early and did not had two chances to err: its
error rate is at most the two tests' together (measured by ``scripts/eval_paired.py``). Pairs in
which either side errored are left out and make the comparison exit with status 4: a broken
harness is not a worse policy.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from robogate.analysis.paired import PairedDecision, check_margin, decide, sequential_verdicts
from robogate.analysis.stats import EXIT_CODES
from robogate.datasets.stages import errored, first_error
from robogate.execution.executors import using_executor
from robogate.execution.specs import validate_policy_spec
from robogate.execution.trial import env_space, validate_env_id
from robogate.suites.run import MANIFEST_KIND, SuiteRun, finish_run, load_suite_run, open_run, run_episodes
from robogate.suites.suite import Suite, load_suite

__all__ = ["Comparison", "compare"]

_SWEEP_CATEGORY = "stage 1 (uniform)"


@dataclass
class Comparison:
    """The paired comparison of a candidate with a baseline.

    Attributes
    ----------
    candidate, baseline : str
        What was compared (folders or policy specs).
    pairs : pandas.DataFrame
        One row per paired episode, in the order the sequential test looks at them: ``key``,
        ``category``, ``scenario``, ``episode``, ``seed``, ``scene``, ``candidate_outcome``,
        ``baseline_outcome``, ``candidate_success``, ``baseline_success``.
    decision : PairedDecision
        The verdict's evidence (fixed-budget or sequential, see ``method``).
    fixed : PairedDecision or None
        McNemar and Tango on every pair (None when the pairs stop short of the suite: the
        sequential test decided).
    stopped_after : int or None
        Pairs the sequential test needed to decide (None: it never did).
    looks : pandas.DataFrame
        The sequential test's look-by-look trace: ``pairs``, ``low``, ``high``, ``verdict``.
    errors : int
        Pairs left out because an episode errored; ``first_error`` is its first message.
    """

    candidate: str
    baseline: str
    pairs: pd.DataFrame
    decision: PairedDecision
    fixed: PairedDecision | None
    stopped_after: int | None
    looks: pd.DataFrame
    errors: int = 0
    first_error: str | None = None
    suite: str = ""
    env_ids: tuple[str, str] = ("", "")
    ran: dict[str, int] = field(default_factory=dict)
    categories: tuple[str, ...] = ()
    total: int = 0
    """Pairs the comparison could have (the suite's episodes, or the sweeps' shared stage-1 rows)."""

    def _category_order(self) -> list[str]:
        present = list(dict.fromkeys(self.pairs["category"]))
        return [c for c in self.categories if c in present] + [c for c in present if c not in self.categories]

    @property
    def verdict(self) -> str:
        """``"better"``, ``"worse"``, ``"not worse"`` or ``"undecided"``."""
        return self.decision.verdict

    @property
    def exit_code(self) -> int:
        """0 better or not worse, 1 worse, 3 undecided, 4 episodes errored."""
        return EXIT_CODES["error"] if self.errors else self.decision.exit_code

    @property
    def test(self) -> str:
        """Which test decided, in a few words."""
        total, paired = self.total or len(self.pairs) + self.errors, len(self.pairs) + self.errors
        if self.decision.method == "fixed":
            return f"the fixed-budget test (exact McNemar) on all {paired} pairs"
        if self.stopped_after is not None:
            return f"the sequential test, after {self.stopped_after} of the {total} pairs"
        return f"the sequential test, on the {paired} of the {total} pairs both runs hold"

    @property
    def reason(self) -> str:
        """The verdict and the test that decided it (naming errored episodes first)."""
        text = self.decision.reason()[:-1] + f"; the verdict of {self.test}."
        if self.errors:
            text = (f"{self.errors} paired episode{'s' * (self.errors != 1)} errored (the policy raised or the "
                    f"simulation diverged: a broken harness, not evidence about either policy) and "
                    f"{'are' if self.errors != 1 else 'is'} left out; first error: {self.first_error}. " + text)
        return text

    def by_category(self) -> pd.DataFrame:
        """Per category, then ``all`` (alone when there is one category): pairs, both success rates, wins,
        losses, the difference and its interval."""
        rows = []
        categories = self._category_order()
        groups = [(c, self.pairs[self.pairs["category"] == c]) for c in categories] if len(categories) > 1 else []
        for name, part in groups + [("all", self.pairs)]:
            wins = int((part["candidate_success"] & ~part["baseline_success"]).sum())
            losses = int((~part["candidate_success"] & part["baseline_success"]).sum())
            d = decide(wins, losses, len(part), self.decision.confidence, margin=self.decision.margin,
                       sequential=self.decision.method == "sequential")
            rows.append({"category": name, "pairs": len(part), "candidate": part["candidate_success"].mean(),
                         "baseline": part["baseline_success"].mean(), "wins": wins, "losses": losses,
                         "difference": d.difference, "low": d.low, "high": d.high,
                         "p_value": d.p_value})
        return pd.DataFrame(rows)

    def flipped(self) -> pd.DataFrame:
        """The pairs whose outcome flipped, by category, then lost (the baseline succeeded) before gained,
        then the failing side's outcome: ``category``, ``change``, ``outcome``, ``scenario``, ``episode``,
        ``seed``, ``scene``, ``baseline_outcome``, ``candidate_outcome``."""
        p = self.pairs
        flips = p[p["candidate_success"] != p["baseline_success"]].copy()
        flips["change"] = np.where(flips["baseline_success"], "lost", "gained")
        flips["outcome"] = np.where(flips["baseline_success"], flips["candidate_outcome"], flips["baseline_outcome"])
        order = {c: i for i, c in enumerate(self._category_order())}
        flips = flips.assign(_c=flips["category"].map(order), _k=flips["change"] != "lost")
        flips = flips.sort_values(["_c", "_k", "outcome", "scenario", "episode"], kind="stable")
        return flips[["category", "change", "outcome", "scenario", "episode", "seed", "scene", "baseline_outcome",
                      "candidate_outcome"]].reset_index(drop=True)

    def flip_summary(self) -> pd.DataFrame:
        """Counts of :meth:`flipped` per category, change (lost / gained) and outcome."""
        flips = self.flipped()
        if not len(flips):
            return pd.DataFrame(columns=["category", "change", "outcome", "pairs", "scenarios"])
        def most_often(scenarios: pd.Series) -> str:
            return ", ".join(f"{k} ×{v}" if v > 1 else k for k, v in scenarios.value_counts(sort=True).items())

        return (flips.groupby(["category", "change", "outcome"], sort=False)
                .agg(pairs=("scenario", "size"), scenarios=("scenario", most_often)).reset_index())


# ---------------------------------------------------------------------------------- sides


@dataclass
class _Side:
    """One side of a comparison: a stored suite run, a sweep, or a policy to run now."""

    label: str
    run: SuiteRun | None = None
    sweep: pd.DataFrame | None = None
    spec: str | None = None

    @property
    def env_id(self) -> str:
        if self.run is not None:
            return self.run.env_id
        return self.sweep.attrs["settings"]["env_id"] if self.sweep is not None else ""


def _side(value: Any, label: str) -> _Side:
    if isinstance(value, SuiteRun):
        return _Side(str(value.path), run=value)
    if not isinstance(value, (str, os.PathLike)):
        raise ValueError(f"{label} must be a suite run, a folder or a policy spec, got {type(value).__name__}")
    path = Path(value)
    if path.is_dir():
        from robogate.datasets.store import SweepStore

        kind = SweepStore.open(path).manifest.get("kind")
        if kind == MANIFEST_KIND:
            run = load_suite_run(path)
            if run.table.empty:
                raise ValueError(f"the suite run in {path} holds no finished episode yet: it stopped before its first "
                                 f"one finished; continue it with robogate suite run --out {path} --resume")
            return _Side(str(path), run=run)
        from robogate.sweep.stored import load_sweep

        return _Side(str(path), sweep=load_sweep(path))
    if path.exists():
        raise ValueError(f"{label} {path} is a file; give a suite run or sweep folder, or a policy spec")
    try:
        return _Side(str(value), spec=validate_policy_spec(str(value)))
    except ValueError as exc:
        raise ValueError(f"{label} {value!r} is neither a folder nor a policy spec ({exc})") from None


def _scene(row: Mapping[str, Any], names: list[str], nominal: Mapping[str, Any]) -> str:
    parts = [f"{n} {row[n]:.3g}" if isinstance(row[n], float) else f"{n} {row[n]}" for n in names
             if row[n] != nominal[n]]
    return ", ".join(parts) or "nominal"


def _outcomes(table: pd.DataFrame, prefix: str) -> pd.DataFrame:
    out = table[["outcome", "success", "error"]].rename(columns=lambda c: f"{prefix}_{c}")
    out[f"{prefix}_success"] = out[f"{prefix}_success"].astype(bool)
    return out


def _paired(left: pd.DataFrame, right: pd.DataFrame, space: Any, labels: tuple[str, str], what: str,
            hint: str = "") -> pd.DataFrame:
    """The rows of two tables (the same keys, in order) as pairs, checked to be the same scenes and seeds."""
    keys = list(left.index)
    for column in ["seed", *space.names]:
        differs = left[column].to_numpy() != right[column].to_numpy()
        if differs.any():
            i = keys[int(np.argmax(differs))]
            raise ValueError(f"the runs are not paired: {what} {i} has {column} {left.at[i, column]!r} in "
                             f"{labels[0]} and {right.at[i, column]!r} in {labels[1]}{hint}")
    nominal = space.nominal()
    pairs = pd.DataFrame({"key": keys, "seed": left["seed"].to_numpy(),
                          "scene": [_scene(r, space.names, nominal) for r in left[space.names].to_dict("records")]})
    return pd.concat([pairs, _outcomes(left, "candidate").reset_index(drop=True),
                      _outcomes(right, "baseline").reset_index(drop=True)], axis=1)


def _suite_pairs(suite: Suite, a: pd.DataFrame, b: pd.DataFrame, labels: tuple[str, str]) -> pd.DataFrame:
    """Episodes finished on both sides, in the suite's run order, checked to be the same scenes and seeds."""
    order = [i for i in suite.run_order() if i in a.index and i in b.index]
    if not order:  # a run with no finished episode yet has no columns either
        return pd.DataFrame(columns=["key", "category", "scenario", "episode", "seed", "scene",
                                     *[f"{side}_{c}" for side in ("candidate", "baseline")
                                       for c in ("outcome", "success", "error")]])
    left = a.loc[order]
    pairs = _paired(left, b.loc[order], suite.space, labels, "episode")
    for position, column in enumerate(("category", "scenario", "episode"), start=1):
        pairs.insert(position, column, left[column].to_numpy())
    return pairs


def _sweep_pairs(a: pd.DataFrame, b: pd.DataFrame, labels: tuple[str, str]) -> pd.DataFrame:
    """The stage-1 rows of two sweeps made with the same seed and space, paired by id."""
    from robogate.datasets.stages import STAGE_LHS

    sa, sb = a.attrs["settings"], b.attrs["settings"]
    if sa["space"] != sb["space"]:
        raise ValueError(f"the sweeps are not paired: {labels[0]} and {labels[1]} sweep different parameter spaces")
    if sa["seed"] != sb["seed"]:
        raise ValueError(f"the sweeps are not paired: {labels[0]} has seed {sa['seed']} and {labels[1]} seed "
                         f"{sb['seed']}; sweep both with the same --seed")
    left = a[a["stage"] == STAGE_LHS].set_index("id")
    right = b[b["stage"] == STAGE_LHS].set_index("id")
    ids = [i for i in left.index if i in right.index]
    if not ids:
        raise ValueError(f"the sweeps {labels[0]} and {labels[1]} share no finished stage-1 experiment")
    pairs = _paired(left.loc[ids], right.loc[ids], sa["space"], labels, "experiment", " (made with other budgets?)")
    for position, (column, values) in enumerate((("category", _SWEEP_CATEGORY),
                                                 ("scenario", [f"experiment {i}" for i in ids]), ("episode", 0)),
                                                start=1):
        pairs.insert(position, column, values)
    return pairs


# ------------------------------------------------------------------------------- deciding


def _looks(pairs: pd.DataFrame, confidence: float, margin: float | None, at: list[int] | None = None) -> pd.DataFrame:
    """The sequential test after each of the first pairs (or at the look sizes ``at``)."""
    from robogate.analysis.paired import confidence_sequence

    wins = np.cumsum((pairs["candidate_success"] & ~pairs["baseline_success"]).to_numpy())
    losses = np.cumsum((~pairs["candidate_success"] & pairs["baseline_success"]).to_numpy())
    n = np.arange(1, len(pairs) + 1)
    sizes = np.asarray(at if at is not None else n, dtype=int)
    sizes = sizes[(sizes >= 1) & (sizes <= len(pairs))]
    verdicts = sequential_verdicts(wins[sizes - 1], losses[sizes - 1], sizes, confidence, margin)
    step = max(1, len(sizes) // 200)  # bounds for the trace figure, at most a few hundred
    bounds = {int(s): confidence_sequence(int(wins[s - 1]), int(losses[s - 1]), int(s), confidence)
              for s in list(sizes[::step]) + list(sizes[-1:])}
    return pd.DataFrame({"pairs": sizes, "verdict": verdicts,
                         "low": [bounds.get(int(s), (np.nan, np.nan))[0] for s in sizes],
                         "high": [bounds.get(int(s), (np.nan, np.nan))[1] for s in sizes]})


def _decide(pairs: pd.DataFrame, confidence: float, margin: float | None, fixed_budget: bool,
            at: list[int] | None = None) -> tuple[PairedDecision, PairedDecision | None, int | None, pd.DataFrame]:
    looks = _looks(pairs, confidence, margin, at)
    decided = looks[looks["verdict"] != "undecided"]
    stopped = int(decided["pairs"].iloc[0]) if len(decided) else None
    wins = int((pairs["candidate_success"] & ~pairs["baseline_success"]).sum())
    losses = int((~pairs["candidate_success"] & pairs["baseline_success"]).sum())
    if fixed_budget:
        fixed = decide(wins, losses, len(pairs), confidence, margin=margin)
        return fixed, fixed, stopped, looks
    upto = pairs.iloc[: stopped if stopped is not None else len(pairs)]
    w = int((upto["candidate_success"] & ~upto["baseline_success"]).sum())
    lo = int((~upto["candidate_success"] & upto["baseline_success"]).sum())
    return decide(w, lo, len(upto), confidence, margin=margin, sequential=True), None, stopped, looks


def _split_errors(pairs: pd.DataFrame) -> tuple[pd.DataFrame, int, str | None]:
    sides = {side: errored(pd.DataFrame({"outcome": pairs[f"{side}_outcome"]})) for side in ("candidate", "baseline")}
    broken = sides["candidate"] | sides["baseline"]
    if not broken.any():
        return pairs, 0, None
    row = pairs[broken].iloc[0]
    side = "candidate" if sides["candidate"][np.flatnonzero(broken)[0]] else "baseline"
    message = first_error(pd.DataFrame({"outcome": ["error"], "error": [row[f"{side}_error"]]}))
    first = f"{side}, {row['scenario']} episode {row['episode']}: {message}"
    return pairs[~broken].reset_index(drop=True), int(broken.sum()), first


def compare(
    candidate: Any,
    baseline: Any,
    non_inferiority: float | None = None,
    *,
    confidence: float = 0.95,
    suite: str | os.PathLike | Mapping[str, Any] | Suite | None = None,
    env_id: str | None = None,
    out: str | os.PathLike | None = None,
    batch_size: int = 40,
    executor: Any = "local",
    workers: int | None = None,
    address: str | None = None,
    progress: bool | None = None,
) -> Comparison:
    """Compare a candidate policy with a baseline on the same scenes and seeds.

    Parameters
    ----------
    candidate, baseline : SuiteRun, folder or policy spec
        Two suite runs, two sweeps (same seed and space), or policies to run now on ``suite``
        (one side may be stored, the other run now).
    non_inferiority : float, optional
        Margin in (0, 1): the candidate passes as ``"not worse"`` unless its success rate is
        surely lower by more than this (``0.05`` is five points).
    confidence : float, default 0.95
    suite : optional
        The suite to run policies on (default: the stored side's suite, else ``"robogate-68"``),
        checked against the env's scenario space.
    env_id : str, optional
        The env to run policies on (default: the stored side's). Two stored runs of different
        envs are refused.
    out : path, optional
        Where policies run now are stored (``out/candidate``, ``out/baseline``); resumable.
    batch_size : int, default 40
        Pairs run between looks of the sequential test.
    executor, workers, address
        Where episodes run, as for :func:`robogate.sweep.run.run_sweep`.
    progress : bool, default True

    Returns
    -------
    Comparison
        ``.verdict``, ``.reason``, ``.exit_code``, ``.by_category()``, ``.flipped()``.

    Raises
    ------
    ValueError
        For runs that are not paired (other suites, scenes or seeds), a margin outside (0, 1),
        a side that is neither a run nor a policy, or a policy to run without ``out``.
    """
    margin = check_margin(non_inferiority)
    from robogate._utils.checks import check_int, check_level

    confidence = check_level(confidence, "confidence")
    batch_size = check_int(batch_size, "batch_size", 1)
    sides = [_side(candidate, "candidate"), _side(baseline, "baseline")]
    labels = (sides[0].label, sides[1].label)
    envs = [s.env_id for s in sides if s.spec is None]
    if len(envs) == 2 and envs[0] != envs[1]:
        raise ValueError(f"the runs are not paired: {labels[0]} ran on {envs[0]} and {labels[1]} on {envs[1]}; "
                         "compare runs of the same env")
    if envs and env_id is not None and env_id != envs[0]:
        raise ValueError(f"the runs are not paired: {sides[0].label if sides[0].spec is None else sides[1].label} "
                         f"ran on {envs[0]}, not on --env {env_id}")
    if any(s.sweep is not None for s in sides):
        if not all(s.sweep is not None for s in sides):
            raise ValueError("the runs are not paired: compare a sweep with another sweep (same seed and space), "
                             "or a suite run with a suite run")
        pairs, errors, first = _split_errors(_sweep_pairs(sides[0].sweep, sides[1].sweep, labels))
        decision, fixed, stopped, looks = _decide(pairs, confidence, margin, fixed_budget=True)
        return Comparison(labels[0], labels[1], pairs, decision, fixed, stopped, looks, errors, first,
                          suite="sweep stage 1", env_ids=(sides[0].env_id, sides[1].env_id), total=len(pairs) + errors)
    stored = [s for s in sides if s.run is not None]
    if len(stored) == 2 and stored[0].run.suite.digest != stored[1].run.suite.digest:
        raise ValueError(f"the runs are not paired: {labels[0]} ran {stored[0].run.suite.label} and {labels[1]} "
                         f"ran {stored[1].run.suite.label} (other scenes or seeds)")
    if len(stored) < 2:
        env_id = validate_env_id(env_id if env_id is not None else (stored[0].env_id if stored else None))
    space = stored[0].run.suite.space if stored else env_space(env_id)
    the_suite = (load_suite(suite, space) if suite is not None
                 else stored[0].run.suite if stored else load_suite("robogate-68", space))
    if stored and the_suite.digest != stored[0].run.suite.digest:
        raise ValueError(f"the runs are not paired: {stored[0].label} ran {stored[0].run.suite.label}, not the "
                         f"suite {the_suite.label} asked for")
    if len(stored) == 2:
        return _compare_runs(*[s.run for s in sides], labels, confidence, margin)
    if out is None:
        raise ValueError("running a policy to compare needs an out folder (--out) for its episodes")
    return _compare_running(sides, labels, the_suite, env_id, Path(out), confidence, margin, batch_size,
                            executor, workers, address, progress)


def _compare_runs(a: SuiteRun, b: SuiteRun, labels: tuple[str, str], confidence: float,
                  margin: float | None) -> Comparison:
    pairs, errors, first = _split_errors(_suite_pairs(a.suite, a.table, b.table, labels))
    full = len(pairs) + errors == len(a.suite.episodes())
    decision, fixed, stopped, looks = _decide(pairs, confidence, margin, fixed_budget=full)
    return Comparison(labels[0], labels[1], pairs, decision, fixed, stopped, looks, errors, first,
                      suite=a.suite.label, env_ids=(a.env_id, b.env_id), categories=tuple(a.suite.categories),
                      total=len(a.suite.episodes()))


def _compare_running(sides: list[_Side], labels: tuple[str, str], suite: Suite, env_id: str, out: Path,
                     confidence: float, margin: float | None, batch_size: int, executor: Any, workers: int | None,
                     address: str | None, progress: bool | None) -> Comparison:
    """Run the policies' episodes in the suite's order, a batch at a time, until the sequential test decides."""
    stores = {}
    for role, side in zip(("candidate", "baseline"), sides):
        if side.spec is not None:
            stores[role] = open_run(out / role, env_id, side.spec, suite, "allow")
    order, looks_at, ran = suite.run_order(), [], {role: 0 for role in stores}
    end = len(order)  # a suite already paired in full is decided as stored runs are
    full = len(_stored_pairs(stores, sides, suite, labels)) == len(order)
    with using_executor(executor, workers, address) as ex:
        for end in range(batch_size, len(order) + batch_size, batch_size) if not full else ():
            end = min(end, len(order))
            for role, store in stores.items():
                before = len(store.finished_ids())
                run_episodes(store, suite, env_id, sides[role == "baseline"].spec, order[:end], ex, progress,
                             desc=f"{role} {end}/{len(order)}")
                ran[role] += len(store.finished_ids()) - before
            raw = _upto(_stored_pairs(stores, sides, suite, labels), order[:end])
            pairs, errors, _ = _split_errors(raw)
            looks_at.append(len(pairs))
            if errors or len(raw) < end:
                break  # a broken harness, or a stored side that stops short: decide on what is paired
            if sequential_verdicts(*_counts(pairs), confidence, margin)[0] != "undecided":
                break
    runs = [finish_run(stores[r]) if r in stores else s.run
            for r, s in zip(("candidate", "baseline"), sides)]
    pairs, errors, first = _split_errors(_upto(_suite_pairs(suite, runs[0].table, runs[1].table, labels), order[:end]))
    every = len(pairs) + errors == len(order)
    decision, fixed, stopped, looks = _decide(pairs, confidence, margin, fixed_budget=every, at=looks_at or None)
    return Comparison(labels[0], labels[1], pairs, decision, fixed, stopped, looks, errors, first,
                      suite=suite.label, env_ids=(runs[0].env_id, runs[1].env_id), ran=ran,
                      categories=tuple(suite.categories), total=len(suite.episodes()))


def _stored_pairs(stores: dict, sides: list[_Side], suite: Suite, labels: tuple[str, str]) -> pd.DataFrame:
    runs = [load_suite_run(stores[r].path) if r in stores else s.run for r, s in zip(("candidate", "baseline"), sides)]
    return _suite_pairs(suite, runs[0].table, runs[1].table, labels)


def _upto(pairs: pd.DataFrame, keys: list[int]) -> pd.DataFrame:
    """The pairs among the episodes ``keys`` (the run order's first ones), in order."""
    return pairs[pairs["key"].isin(set(keys))].reset_index(drop=True)


def _counts(pairs: pd.DataFrame) -> tuple[list[int], list[int], list[int]]:
    wins = int((pairs["candidate_success"] & ~pairs["baseline_success"]).sum())
    losses = int((~pairs["candidate_success"] & pairs["baseline_success"]).sum())
    return [wins], [losses], [len(pairs)]
