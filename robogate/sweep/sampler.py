"""Two-stage, boundary-focused sampling of a parameter space.

Stage 1 spreads ``n_lhs`` points over the space with a Latin Hypercube design
(:class:`scipy.stats.qmc.LatinHypercube` in the unit cube, mapped through
:meth:`ParameterSpace.from_unit`).  Stage 2 spends ``n_boundary`` more points
where the outcome is most uncertain: the :class:`~robogate.analysis.risk.RiskModel`
(logistic regression on terms and a regularisation chosen by cross-validated
log-loss, so its probabilities stay calibrated for both sharp and noisy
boundaries) is fitted on everything told so far as the surrogate of
P(success), a large seeded candidate pool is scored, and the candidates predicted
inside the success band (30-70 % by default) are spread out by greedy
farthest-point selection, repelled by the points already run and mildly pulled
toward the middle of the band.  Stage 2 runs in batches and refits the
surrogate between batches.  If the surrogate cannot be fitted (a single class
so far) the batch is space-filling instead, and if too few candidates fall in
the band the band is widened; both emit a ``RuntimeWarning``.

The sampler is driven by ask/tell or by :meth:`TwoStageSampler.run`.  It is
deterministic: the same seed and the same sequence of ``ask(n)`` / ``tell``
calls with the same outcomes give bit-identical points, so a killed sweep can be
resumed by replaying its history.
"""

from __future__ import annotations

import math
import warnings
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import qmc
from sklearn.metrics import pairwise_distances_argmin_min
from threadpoolctl import threadpool_limits

from robogate._utils.checks import check_int, is_integer
from robogate._utils.console import progress_bar
from robogate.analysis.risk import RiskModel
from robogate.datasets.stages import STAGE_BOUNDARY, STAGE_LHS
from robogate.scenarios.space import Categorical, ParameterSpace, bin_index

__all__ = ["BAND", "TwoStageSampler"]

#: The default band of predicted success probability that stage 2 samples in.
BAND = (0.3, 0.7)

#: Stage 2 scores up to this many candidate pools per batch to find enough in-band points.
_POOL_ROUNDS = 4
#: How strongly stage 2 prefers the middle of the band (0 = plain farthest-point).
_CENTRE_PULL = 0.5

#: Stage-1 points evaluated per chunk in run() (outcomes are told chunk by chunk).
_RUN_CHUNK = 100

#: Result columns the sampler owns; an evaluator's extra fields never override them.
_RESERVED = ("success", "stage")


def _as_success(value: Any, where: str) -> bool:
    """Coerce a success flag (bool, numpy bool, or the integers 0/1)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if is_integer(value) and int(value) in (0, 1):
        return bool(value)
    raise ValueError(f"{where}: a success flag must be a bool (True = success), got {value!r}")


class TwoStageSampler:
    """Latin Hypercube exploration followed by boundary-focused sampling.

    Parameters
    ----------
    space : ParameterSpace
        The space to sample.
    n_lhs : int, default 2000
        Stage-1 (Latin Hypercube) budget.
    n_boundary : int, default 1000
        Stage-2 (boundary-focused) budget.
    band : (float, float), default (0.3, 0.7)
        Predicted success-probability band targeted by stage 2, ``0 < lo < hi < 1``.
    batch_size : int, optional
        Stage-2 points per surrogate refit; default ``max(1, n_boundary // 10)``.
    n_candidates : int, optional
        Size of the random candidate pool scored per stage-2 batch; default
        ``max(20000, 50 * batch_size)``.  When fewer than a batch of candidates
        fall in the band, up to three more pools are scored before the band is
        widened (with a warning).
    seed : int or None, default 0
        Seed of every random choice.  ``None`` draws fresh entropy, stored in
        :attr:`seed` so the run can be replayed.

    Attributes
    ----------
    surrogate_ : RiskModel or None
        The risk model fitted for the latest stage-2 batch (its
        ``predict_proba(X)[:, 1]`` is P(failure)).

    Notes
    -----
    Stage-1 points are the rows of one Latin Hypercube design of size
    ``n_lhs``, handed out in order.  Stage-2 randomness for batch ``b`` comes
    from ``numpy.random.default_rng([seed, 2, b])`` only, so the points depend
    on the seed, the batch index and the outcomes told, nothing else.

    Examples
    --------
    >>> from robogate.scenarios.space import ParameterSpace, Continuous
    >>> space = ParameterSpace([Continuous("x", 0.0, 1.0), Continuous("y", 0.0, 1.0)])
    >>> sampler = TwoStageSampler(space, n_lhs=40, n_boundary=20, batch_size=10, seed=1)
    >>> df = sampler.run(lambda p: p["x"] + p["y"] < 1.0)
    >>> len(df), sorted(df["stage"].unique().tolist())
    (60, [1, 2])
    """

    def __init__(
        self,
        space: ParameterSpace,
        n_lhs: int = 2000,
        n_boundary: int = 1000,
        band: tuple[float, float] = BAND,
        batch_size: int | None = None,
        n_candidates: int | None = None,
        seed: int | None = 0,
    ):
        if not isinstance(space, ParameterSpace):
            raise ValueError(f"space must be a ParameterSpace, got {type(space).__name__}")
        self.space = space
        self.n_lhs = check_int(n_lhs, "n_lhs", 0)
        self.n_boundary = check_int(n_boundary, "n_boundary", 0)
        if self.n_lhs + self.n_boundary == 0:
            raise ValueError("n_lhs + n_boundary must be > 0 (nothing to sample)")
        try:
            lo, hi = (float(b) for b in band)
        except (TypeError, ValueError):
            raise ValueError(f"band must be a pair (lo, hi) with 0 < lo < hi < 1, got {band!r}") from None
        if not (0.0 < lo < hi < 1.0):
            raise ValueError(f"band must satisfy 0 < lo < hi < 1, got {band!r}")
        self.band = (lo, hi)
        if batch_size is None:
            batch_size = max(1, self.n_boundary // 10)
        self.batch_size = check_int(batch_size, "batch_size", 1)
        if n_candidates is None:
            n_candidates = max(20000, 50 * self.batch_size)
        self.n_candidates = check_int(n_candidates, "n_candidates", 1)
        if seed is None:
            seed = int(np.random.SeedSequence().entropy)
        self.seed = check_int(seed, "seed", 0)

        d = len(space)
        self._cat_cols = [j for j, dim in enumerate(space) if isinstance(dim, Categorical)]
        self._num_cols = [j for j in range(d) if j not in self._cat_cols]
        self._cat_sizes = [space.dims[j].n_values for j in self._cat_cols]

        # Stage 1: one Latin Hypercube design, handed out in order.
        if self.n_lhs:
            rng = np.random.default_rng([self.seed, 1])
            engine = _latin_hypercube(d, rng)
            self._lhs_unit = engine.random(self.n_lhs)
        else:
            self._lhs_unit = np.empty((0, d))
        self._lhs_unit.setflags(write=False)
        self._lhs_params = space.from_unit(self._lhs_unit)
        self._discrepancy: float | None = None

        self._n_asked = [0, 0]  # per stage
        self._n_batches = 0
        self._next_id = 0
        self._pending: dict[int, tuple[tuple, int, dict]] = {}  # id -> (key, stage, params)
        self._pending_by_key: dict[tuple, deque] = {}

        self._told_params: list[dict] = []
        self._told_success: list[bool] = []
        self._told_stage: list[int] = []
        self._told_extras: list[dict] = []
        self._told_unit = np.empty((0, d))
        self._history: pd.DataFrame | None = None
        self.surrogate_: RiskModel | None = None
        self._surrogate_n = 0

    # ------------------------------------------------------------------------------------------
    # state
    # ------------------------------------------------------------------------------------------

    @property
    def n_total(self) -> int:
        """Total budget ``n_lhs + n_boundary``."""
        return self.n_lhs + self.n_boundary

    @property
    def stage(self) -> int:
        """Stage (1 or 2) of the next :meth:`ask`."""
        return STAGE_LHS if self._n_asked[0] < self.n_lhs else STAGE_BOUNDARY

    @property
    def n_asked(self) -> int:
        """Points handed out so far."""
        return self._n_asked[0] + self._n_asked[1]

    @property
    def n_told(self) -> int:
        """Outcomes received so far."""
        return len(self._told_success)

    @property
    def n_pending(self) -> int:
        """Points asked but not yet told."""
        return len(self._pending)

    @property
    def done(self) -> bool:
        """True once the whole budget has been asked and told."""
        return self.n_told >= self.n_total

    @property
    def lhs_unit(self) -> np.ndarray:
        """The stage-1 design in the unit cube, shape ``(n_lhs, d)`` (read-only)."""
        return self._lhs_unit

    @property
    def discrepancy(self) -> float:
        """Centered L2 discrepancy of the stage-1 unit design (lower is more uniform)."""
        if self._discrepancy is None:
            if self.n_lhs == 0:
                self._discrepancy = float("nan")
            else:
                self._discrepancy = float(qmc.discrepancy(self._lhs_unit, method="CD"))
        return self._discrepancy

    @property
    def history(self) -> pd.DataFrame:
        """Told experiments in tell order: parameter columns, ``success`` and ``stage``."""
        if self._history is None:
            df = self.space.to_frame(self._told_params)
            df["success"] = pd.Series(self._told_success, dtype=bool)
            df["stage"] = pd.Series(self._told_stage, dtype="int64")
            self._history = df
        return self._history.copy()

    def config(self) -> dict:
        """JSON-serialisable sampler settings (enough to rebuild an identical sampler)."""
        return {
            "space": self.space.to_dict(),
            "n_lhs": self.n_lhs,
            "n_boundary": self.n_boundary,
            "band": list(self.band),
            "batch_size": self.batch_size,
            "n_candidates": self.n_candidates,
            "seed": self.seed,
        }

    def __repr__(self) -> str:
        return (
            f"TwoStageSampler(n_lhs={self.n_lhs}, n_boundary={self.n_boundary}, "
            f"band={self.band}, batch_size={self.batch_size}, seed={self.seed}; "
            f"asked={self.n_asked}, told={self.n_told})"
        )

    # ------------------------------------------------------------------------------------------
    # ask / tell
    # ------------------------------------------------------------------------------------------

    def ask(self, n: int | None = None) -> list[dict]:
        """Return the next points to run.

        Parameters
        ----------
        n : int, optional
            Stage 1: up to ``n`` of the remaining Latin Hypercube points, in
            order (default all of them).  Stage 2: one batch of ``n`` points
            (default :attr:`batch_size`).  Never crosses from stage 1 into stage 2
            and never exceeds the remaining budget.

        Returns
        -------
        list of dict
            Parameter dictionaries; an empty list once the budget is spent.

        Raises
        ------
        RuntimeError
            If a stage-2 batch is requested while asked points are still untold
            (the surrogate must see every outcome first).
        """
        if n is not None:
            n = check_int(n, "n", 0)
        if self._n_asked[0] < self.n_lhs:
            start = self._n_asked[0]
            k = self.n_lhs - start if n is None else min(n, self.n_lhs - start)
            points = [dict(p) for p in self._lhs_params[start : start + k]]
            self._n_asked[0] += k
            self._register(points, stage=STAGE_LHS)
            return points

        remaining = self.n_boundary - self._n_asked[1]
        k = min(self.batch_size if n is None else n, remaining)
        if k <= 0:
            return []
        if self._pending:
            raise RuntimeError(
                f"cannot start a stage-2 batch: {len(self._pending)} asked point(s) have not "
                "been told yet; tell() every outcome before asking for the next batch"
            )
        # Single-threaded BLAS: the problems are small (threads only add overhead),
        # and the floating-point results then do not depend on the machine's core count.
        with threadpool_limits(limits=1):
            points = self._boundary_batch(k, self._n_batches)
        self._n_batches += 1
        self._n_asked[1] += k
        self._register(points, stage=STAGE_BOUNDARY)
        return [dict(p) for p in points]

    def tell(self, params: Sequence[Mapping[str, Any]] | pd.DataFrame, successes: Sequence[Any]) -> None:
        """Report the outcomes of asked points.

        Parameters
        ----------
        params : list of dict or pandas.DataFrame
            Points previously returned by :meth:`ask` (any order, any subset).
        successes : sequence of bool
            ``True`` where the experiment succeeded.

        Raises
        ------
        ValueError
            On a length mismatch, a non-boolean outcome, or a point that was
            not asked (or was already told).  Nothing is recorded on error.
        """
        self._tell(params, successes, None)

    def run(self, evaluate: Callable[[dict], Any], progress: bool | None = None) -> pd.DataFrame:
        """Run the whole budget serially with ``evaluate``.

        Parameters
        ----------
        evaluate : callable
            ``evaluate(params: dict)`` returns a bool (``True`` = success) or a
            dict with a ``"success"`` key; its other keys become extra columns
            (keys equal to a parameter name, ``"success"`` or ``"stage"`` are
            not copied).  Any black-box callable works.
        progress : bool or None
            Draw a progress bar on stderr (None: only when stderr is a terminal).

        Returns
        -------
        pandas.DataFrame
            One row per experiment told to this sampler, in tell order: a
            column per parameter, ``success`` (bool), ``stage`` (1 or 2), plus
            the extra fields.

        Notes
        -----
        Points already asked but not told (for instance after ``evaluate``
        raised in an earlier call) are evaluated first.  If ``evaluate``
        raises, the outcomes finished so far are told before the error
        propagates.
        """
        if not callable(evaluate):
            raise ValueError(f"evaluate must be callable, got {type(evaluate).__name__}")
        bar = progress_bar(progress, total=self.n_total, initial=self.n_told, desc="sweep", unit="exp")
        try:
            while True:
                if self._pending:
                    points = [dict(p) for (_, _, p) in self._pending.values()]
                else:
                    # stage 1 in chunks (told as they finish), stage 2 one batch at a time
                    points = self.ask(max(self.batch_size, _RUN_CHUNK) if self.stage == STAGE_LHS else None)
                    if not points:
                        break
                done_params, done_succ, done_extra = [], [], []
                try:
                    for p in points:
                        succ, extra = self._parse_result(evaluate(dict(p)))
                        done_params.append(p)
                        done_succ.append(succ)
                        done_extra.append(extra)
                finally:
                    if done_params:
                        self._tell(done_params, done_succ, done_extra)
                        bar.update(len(done_params))
        finally:
            bar.close()
        return self.results()

    def results(self) -> pd.DataFrame:
        """:attr:`history` plus the extra fields returned by ``evaluate`` in :meth:`run`."""
        df = self.history
        extras = pd.DataFrame.from_records(self._told_extras, index=df.index)
        if extras.shape[1]:
            df = pd.concat([df, extras], axis=1)
        return df

    def predict_proba(self, rows: Sequence[Mapping[str, Any]] | pd.DataFrame) -> np.ndarray:
        """P(success) of parameter points under the latest surrogate.

        The surrogate is refitted on the current history if needed.  Returns an
        array of shape ``(n,)``; raises ``RuntimeError`` if no surrogate can be
        fitted yet (no data or a single class).
        """
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with threadpool_limits(limits=1):
                model = self._fit_surrogate()
        if model is None:
            raise RuntimeError("no surrogate yet: both successes and failures must be told")
        if not isinstance(rows, pd.DataFrame):
            rows = self.space.to_frame(rows)
        return model.predict_proba(rows)[:, 0]

    # ------------------------------------------------------------------------------------------
    # internals
    # ------------------------------------------------------------------------------------------

    def _key(self, params: Mapping[str, Any]) -> tuple:
        return tuple(params[n] for n in self.space.names)

    def _register(self, points: list[dict], stage: int) -> None:
        for p in points:
            key = self._key(p)
            pid = self._next_id
            self._next_id += 1
            self._pending[pid] = (key, stage, dict(p))
            self._pending_by_key.setdefault(key, deque()).append(pid)

    def _tell(self, params: Any, successes: Any, extras: list[dict] | None) -> None:
        if isinstance(params, pd.DataFrame):
            missing = [n for n in self.space.names if n not in params.columns]
            if missing:
                raise ValueError(f"params DataFrame is missing parameter column(s) {missing}")
            params = params[self.space.names].astype(object).to_dict("records")
        if isinstance(params, Mapping):
            raise ValueError("tell() expects a list of parameter dicts (wrap a single point in a list)")
        params = list(params)
        if isinstance(successes, (bool, np.bool_)) or np.ndim(successes) == 0:
            raise ValueError("tell() expects a sequence of success flags, one per point")
        successes = list(np.asarray(successes, dtype=object).ravel()) if isinstance(
            successes, np.ndarray
        ) else list(successes)
        if len(params) != len(successes):
            raise ValueError(
                f"tell() got {len(params)} points but {len(successes)} success flags"
            )
        if not params:
            return
        canon = [self.space.validate(p) for p in params]
        flags = [_as_success(s, f"tell() outcome {i}") for i, s in enumerate(successes)]

        # match every point to a pending ask before changing any state
        used: dict[tuple, int] = {}
        ids = []
        for p in canon:
            key = self._key(p)
            queue = self._pending_by_key.get(key, ())
            k = used.get(key, 0)
            if k >= len(queue):
                raise ValueError(
                    f"tell() got a point that is not awaiting an outcome (never asked, or "
                    f"already told): {p}"
                )
            ids.append(queue[k])
            used[key] = k + 1
        for key, k in used.items():
            queue = self._pending_by_key[key]
            for _ in range(k):
                queue.popleft()
            if not queue:
                del self._pending_by_key[key]
        stages = [self._pending.pop(i)[1] for i in ids]

        self._told_params.extend(canon)
        self._told_success.extend(flags)
        self._told_stage.extend(stages)
        self._told_extras.extend(extras if extras is not None else [{} for _ in canon])
        self._told_unit = np.vstack([self._told_unit, self.space.to_unit(canon)])
        self._history = None

    def _parse_result(self, result: Any) -> tuple[bool, dict]:
        if isinstance(result, Mapping):
            if "success" not in result:
                raise ValueError(
                    "evaluate() returned a dict without a 'success' key; return a bool or "
                    "a dict containing 'success'"
                )
            succ = _as_success(result["success"], "evaluate() result")
            reserved = set(self.space.names).union(_RESERVED)
            extra = {k: v for k, v in result.items() if k not in reserved}
            return succ, extra
        return _as_success(result, "evaluate() result"), {}

    # -- surrogate -------------------------------------------------------------------------------

    def _frame(self, U: np.ndarray) -> pd.DataFrame:
        """Points of the unit cube as a parameter table (a column per parameter)."""
        return pd.DataFrame({dim.name: dim.from_unit(U[:, j]) for j, dim in enumerate(self.space)})

    def _fit_surrogate(self) -> RiskModel | None:
        """The risk model fitted on the told history; ``None`` (with a warning) if impossible."""
        if self.surrogate_ is not None and self._surrogate_n == self.n_told:
            return self.surrogate_
        y = np.asarray(self._told_success, dtype=bool)
        if y.size == 0 or y.all() or not y.any():
            what = "no outcomes" if y.size == 0 else (
                "only successes" if y.all() else "only failures"
            )
            warnings.warn(
                f"stage-2 surrogate cannot be fitted ({what} told so far); "
                "falling back to space-filling points",
                RuntimeWarning,
                stacklevel=4,
            )
            return None
        model = RiskModel(space=self.space, random_state=self.seed % (2**32))
        try:
            model.fit(self.history[self.space.names], ~y)  # y = 1 means failure
        except Exception as exc:  # never crash a sweep on a surrogate problem
            warnings.warn(
                f"stage-2 surrogate fit failed ({exc!r}); falling back to space-filling points",
                RuntimeWarning,
                stacklevel=4,
            )
            return None
        self.surrogate_, self._surrogate_n = model, self.n_told
        return model

    # -- stage 2 ---------------------------------------------------------------------------------

    def _embed(self, U: np.ndarray) -> np.ndarray:
        """Coordinates for distances: numeric unit coordinates, categoricals one-hot.

        Two different categories are 0.5 apart (half the range of a numeric axis).
        """
        cols = [U[:, self._num_cols]] if self._num_cols else []
        for j, n in zip(self._cat_cols, self._cat_sizes):
            codes = bin_index(U[:, j], n)
            onehot = np.zeros((U.shape[0], n))
            onehot[np.arange(U.shape[0]), codes] = 0.5 / math.sqrt(2.0)
            cols.append(onehot)
        return np.hstack(cols)

    def _snap(self, U: np.ndarray) -> np.ndarray:
        """Move discrete coordinates to their bin centres (what the points really are)."""
        U = U.copy()
        for j, dim in enumerate(self.space):
            if not hasattr(dim, "n_values"):
                continue
            U[:, j] = (bin_index(U[:, j], dim.n_values) + 0.5) / dim.n_values
        return U

    def _boundary_batch(self, k: int, batch_index: int) -> list[dict]:
        rng = np.random.default_rng([self.seed, 2, batch_index])
        d = len(self.space)
        lo, hi = self.band
        llo, lhi = math.log(lo / (1 - lo)), math.log(hi / (1 - hi))

        model = self._fit_surrogate()
        if model is None:
            C = self._snap(rng.random((self.n_candidates, d)))
            chosen = self._maximin(C, k)
            return self.space.from_unit(C[chosen])

        # Score candidate pools until k of them are predicted inside the band
        # (at most _POOL_ROUNDS pools of n_candidates each).
        blocks, logits = [], []
        n_inside = 0
        for _ in range(_POOL_ROUNDS):
            block = self._snap(rng.random((self.n_candidates, d)))
            logit = -model.decision_function(self._frame(block))  # logit of P(success)
            blocks.append(block)
            logits.append(logit)
            n_inside += int(np.sum((logit >= llo) & (logit <= lhi)))
            if n_inside >= k:
                break
        C = np.vstack(blocks)
        logit = np.concatenate(logits)
        inside = np.flatnonzero((logit >= llo) & (logit <= lhi))
        if inside.size >= k:
            pool = inside
            # mild preference for the middle of the band, where a surrogate error
            # is least likely to put the point outside the true band
            dev = np.abs(logit[pool] - 0.5 * (llo + lhi)) / (0.5 * (lhi - llo))
            weight = 1.0 - _CENTRE_PULL * np.minimum(dev, 1.0) ** 2
        else:
            # widen toward the band: the candidates nearest to it, in logit units
            gap = np.maximum(np.maximum(llo - logit, logit - lhi), 0.0)
            m = min(C.shape[0], max(2 * k, inside.size))
            pool = np.argsort(gap, kind="stable")[:m]
            weight = None
            warnings.warn(
                f"only {inside.size} of {C.shape[0]} candidates have predicted success in "
                f"the band [{lo:g}, {hi:g}] (need {k}); using the {m} nearest to the band",
                RuntimeWarning,
                stacklevel=3,
            )
        chosen = self._maximin(C[pool], k, weight)
        return self.space.from_unit(C[pool[chosen]])

    def _maximin(self, P: np.ndarray, k: int, weight: np.ndarray | None = None) -> np.ndarray:
        """Greedy farthest-point choice of ``k`` rows of ``P``, repelled by told points.

        Each step takes the row maximising ``weight * distance`` to the nearest
        told or already chosen point.
        """
        E = self._embed(P)
        mind = np.full(E.shape[0], np.inf)  # squared distance to the nearest told / chosen point
        if self._told_unit.shape[0]:
            _, nearest = pairwise_distances_argmin_min(E, self._embed(self._told_unit))
            mind = nearest**2
        w = np.ones(E.shape[0]) if weight is None else np.asarray(weight, dtype=float)
        taken = np.zeros(E.shape[0], dtype=bool)
        chosen = []
        for _ in range(min(k, E.shape[0])):
            score = np.sqrt(mind) * w
            score[taken] = -np.inf
            j = int(np.argmax(score))
            chosen.append(j)
            taken[j] = True
            np.minimum(mind, np.sum((E - E[j]) ** 2, axis=1), out=mind)
        while len(chosen) < k:  # fewer candidates than requested: repeat the best ones
            chosen.append(chosen[len(chosen) % max(1, E.shape[0])])
        return np.asarray(chosen, dtype=np.int64)


def _latin_hypercube(d: int, rng: np.random.Generator) -> qmc.LatinHypercube:
    """A scrambled LatinHypercube engine driven by ``rng`` (scipy's ``rng`` or older ``seed``)."""
    try:
        return qmc.LatinHypercube(d=d, rng=rng)
    except TypeError:  # scipy < 1.15
        return qmc.LatinHypercube(d=d, seed=rng)
