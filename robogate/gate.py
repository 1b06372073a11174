"""The deployment gate: may the policy run in this operating envelope?

An **envelope** (:class:`robogate.envelope.Envelope`) restricts some parameters
of the swept space (a range per numeric parameter, a set of allowed values per
category); given as a mapping, the parameters it leaves out keep their full
range (``rest="free"``).  Its evidence is the **uniform** experiments that fall inside it:
stage-1 rows of the sweep, and stage-3 rows that :func:`run_gate` sampled
uniformly in an envelope containing it.  Stage-2 rows are never evidence: they
over-sample the failure boundary.

Verdicts, for a limit ``L`` on the failure rate and a confidence ``c``:

* ``pass`` -- the upper confidence bound of the failure rate is below ``L``;
* ``fail`` -- the lower confidence bound is above ``L``;
* ``inconclusive`` -- otherwise, with how many more failure-free experiments
  inside the envelope would pass it;
* ``error`` -- some experiment inside the envelope errored (the policy raised,
  the simulation diverged): a broken harness says nothing about the policy's
  safety, so there is no pass or fail, only the first error message.

The verdict's sentence names the parameters the envelope leaves free over
their full range.

On a fixed set of experiments the bounds are one-sided Clopper–Pearson bounds
at ``c``: each wrong verdict has probability at most ``1 - c``.  Experiments
run sequentially until the verdict is decided (:func:`sequential_gate`,
:func:`run_gate`) would break those bounds by looking again and again, so
there the bounds come from a **confidence sequence** valid at every look at
once: the set of rates ``p`` whose Beta-mixture likelihood ratio

    M_n(p) = B(a + k, b + n - k) / B(a, b) / (p**k * (1 - p)**(n - k))

stays below ``1 / (1 - c)``.  ``M_n(p)`` is a non-negative martingale with
mean 1 at the true rate, so by Ville's inequality the true rate leaves the set
at *any* look with probability at most ``1 - c``, however many batches run.
The prior is Beta(1/2, (1 - L) / (2 L)), whose mean is the limit ``L``.  The
price of looking after every batch: 81 failure-free experiments pass a 5 %
limit at 95 % (a fixed design needs 59).
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import betaln

from robogate.checks import check_int, check_level
from robogate.envelope import Envelope
from robogate.executors import Executor, make_executor
from robogate.load import sweep_settings
from robogate.runner import Trial, trial_seed
from robogate.space import ParameterSpace
from robogate.store import SweepStore
from robogate.sweep_config import STAGE_GATE
from robogate.zones import UNIFORM_STAGES, clopper_pearson, errored, first_error

__all__ = [
    "EXIT_CODES",
    "GateDecision",
    "confidence_sequence",
    "decide",
    "evidence",
    "gate",
    "run_gate",
    "sequential_gate",
]

#: Exit status of ``robogate gate`` per verdict (2 is a usage error; 4: the experiments errored).
EXIT_CODES = {"pass": 0, "fail": 1, "inconclusive": 3, "error": 4}
METHODS = ("clopper-pearson", "confidence sequence")


# ---------------------------------------------------------------------------------- decision


@dataclass(frozen=True)
class GateDecision:
    """The gate's answer for one envelope.

    Attributes
    ----------
    verdict : {"pass", "fail", "inconclusive", "error"}
        ``"error"`` when experiments inside the envelope errored (the
        policy raised, the simulation diverged): no pass or fail then.
    upper_bound, lower_bound : float
        Confidence bounds of the failure rate inside the envelope.
    n, failures : int
        Uniform experiments inside the envelope, and how many failed.
    more_needed : int
        More failure-free experiments inside the envelope that would pass it
        (0 unless inconclusive).
    reason : str
        One sentence saying why.
    max_failure_rate, confidence : float
        The limit and the confidence asked for.
    method : {"clopper-pearson", "confidence sequence"}
        How the bounds were computed (fixed or sequential evidence).
    ran : int
        Experiments :func:`run_gate` ran for this decision (0 for :func:`gate`).
    errors : int
        Experiments inside the envelope that errored.
    first_error : str or None
        The first line of the first one's error message.
    """

    verdict: str
    upper_bound: float
    lower_bound: float
    n: int
    failures: int
    more_needed: int
    reason: str
    max_failure_rate: float
    confidence: float
    method: str
    ran: int = 0
    errors: int = 0
    first_error: str | None = None

    @property
    def exit_code(self) -> int:
        """Exit status of ``robogate gate``: 0 pass, 1 fail, 3 inconclusive, 4 the experiments errored."""
        return EXIT_CODES[self.verdict]


def _prior(limit: float) -> tuple[float, float]:
    return 0.5, 0.5 * (1.0 - limit) / limit


def _log_ratio(failures: Any, n: Any, p: Any, limit: float) -> Any:
    """log M_n(p) of the Beta mixture whose prior mean is ``limit``."""
    a, b = _prior(limit)
    k = np.asarray(failures, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        loglik = np.where(k > 0, k * np.log(p), 0.0) + np.where(n > k, (n - k) * np.log1p(-p), 0.0)
    return betaln(a + k, b + n - k) - betaln(a, b) - loglik


def confidence_sequence(failures: int, n: int, confidence: float, max_failure_rate: float) -> tuple[float, float]:
    """Bounds of the anytime-valid confidence sequence of a failure rate.

    Parameters
    ----------
    failures, n : int
        Failures among ``n`` experiments so far.
    confidence : float
        Probability that the true rate stays inside the bounds at every ``n`` at once.
    max_failure_rate : float
        The gate's limit (the mixture's prior mean).

    Returns
    -------
    low, high : float
    """
    level = math.log(1.0 / (1.0 - confidence))
    if n == 0:
        return 0.0, 1.0
    centre = failures / n

    def excess(p: float) -> float:
        return float(_log_ratio(failures, n, p, max_failure_rate)) - level

    def root(lo: float, hi: float, edge: float) -> float:
        return brentq(excess, lo, hi, xtol=1e-10) if excess(hi if edge == 1.0 else lo) > 0 else edge

    eps = 1e-15
    high = root(centre, 1.0 - eps, 1.0) if failures < n else 1.0
    low = root(eps, centre, 0.0) if failures > 0 else 0.0
    return low, high


def _bounds(failures: int, n: int, confidence: float, limit: float, sequential: bool) -> tuple[float, float]:
    if sequential:
        return confidence_sequence(failures, n, confidence, limit)
    low = float(clopper_pearson(failures, n, confidence, "greater")[0])
    high = float(clopper_pearson(failures, n, confidence, "less")[1])
    return low, high


_TIE = 1e-9
"""Relative margin by which a bound must clear the limit: one equal to it up to rounding decides nothing."""


def _verdict(failures: int, n: int, confidence: float, limit: float, sequential: bool) -> str:
    """``"pass"``, ``"fail"`` or ``"inconclusive"``, without computing the bounds themselves.

    The confidence sequence is the set where the convex ``log M_n(p)`` stays
    below ``log(1 / (1 - confidence))``, an interval around ``failures / n``:
    the limit is outside it exactly when ``log M_n(limit)`` reaches that level.
    """
    if not sequential:
        low, high = _bounds(failures, n, confidence, limit, sequential)
        # a bound that only equals the limit (up to rounding) decides nothing
        return ("pass" if high < limit * (1 - _TIE) else "fail" if low > limit * (1 + _TIE)
                else "inconclusive")
    level = math.log(1.0 / (1.0 - confidence))
    if n == 0 or float(_log_ratio(failures, n, limit, limit)) < level + _TIE:
        return "inconclusive"
    return "pass" if failures < limit * n else "fail" if failures > limit * n else "inconclusive"


def _failure_free_to_pass(failures: int, n: int, confidence: float, limit: float, sequential: bool) -> int:
    """Fewest failure-free experiments after which the upper bound falls below ``limit``."""

    def passes(m: int) -> bool:
        return _verdict(failures, n + m, confidence, limit, sequential) == "pass"

    # Below ceil(failures / limit) experiments the estimate itself is over the limit.
    lo = max(0, math.ceil(failures / limit) - n - 1)
    hi = lo + 1
    while not passes(hi):
        lo, hi = hi, 2 * hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if passes(mid):
            hi = mid
        else:
            lo = mid
    return hi


def _pct(x: float) -> str:
    return f"{100 * x:.3g} %"


def _pct_beside(x: float, limit: float) -> str:
    """``x`` as a percentage with enough digits not to read as the limit (59.97 %, not 60 %, beside 60 %)."""
    for digits in range(3, 8):
        text = f"{100 * x:.{digits}g} %"
        if text != f"{100 * limit:.{digits}g} %":
            return text
    return text


def decide(
    failures: int, n: int, max_failure_rate: float = 0.05, confidence: float = 0.95, *, sequential: bool = False
) -> GateDecision:
    """The gate's verdict from ``failures`` among ``n`` uniform experiments inside the envelope.

    Parameters
    ----------
    failures, n : int
    max_failure_rate : float, default 0.05
        The limit on the failure rate, in (0, 1).
    confidence : float, default 0.95
        In (0, 1).
    sequential : bool, default False
        The experiments were run until the verdict was decided: use the
        confidence sequence instead of Clopper–Pearson bounds.

    Returns
    -------
    GateDecision

    Examples
    --------
    >>> decide(0, 59).verdict, decide(0, 58).more_needed
    ('pass', 1)
    >>> decide(0, 59, sequential=True).more_needed
    22
    """
    n = check_int(n, "n")
    failures = check_int(failures, "failures")
    if failures > n:
        raise ValueError(f"failures ({failures}) cannot exceed n ({n})")
    limit = check_level(max_failure_rate, "max_failure_rate")
    confidence = check_level(confidence, "confidence")
    verdict = _verdict(failures, n, confidence, limit, sequential)
    low, high = _bounds(failures, n, confidence, limit, sequential)
    conf = _pct(confidence)
    evidence = (f"{failures} failure{'s' * (failures != 1)} in {n} uniform experiment{'s' * (n != 1)} "
                "inside the envelope")
    more = 0
    if verdict == "pass":
        reason = (f"pass: {evidence} put the failure rate below {_pct_beside(high, limit)} with {conf} "
                  f"confidence, under the {_pct(limit)} limit.")
    elif verdict == "fail":
        reason = (f"fail: {evidence} put the failure rate above {_pct_beside(low, limit)} with {conf} "
                  f"confidence, over the {_pct(limit)} limit.")
    else:
        more = _failure_free_to_pass(failures, n, confidence, limit, sequential)
        found = ("no uniform experiment of the sweep lies inside the envelope" if n == 0 else
                 f"{evidence} put the failure rate's {conf} upper bound at {_pct_beside(high, limit)}, "
                 f"{'equal to' if high <= limit else 'over'} the {_pct(limit)} limit, and its lower bound at "
                 f"{_pct_beside(low, limit)}, {'equal to' if low >= limit else 'under'} it")
        reason = (f"inconclusive: {found}; {more} more failure-free experiment{'s' * (more != 1)} inside the "
                  "envelope would pass it.")
    return GateDecision(verdict=verdict, upper_bound=float(high), lower_bound=float(low), n=n, failures=failures,
                        more_needed=more, reason=reason, max_failure_rate=limit, confidence=confidence,
                        method=METHODS[sequential])


# ------------------------------------------------------------------------------------- gate


def _as_envelope(envelope: Any, space: ParameterSpace) -> Envelope:
    if isinstance(envelope, Envelope):
        if envelope.space != space:
            raise ValueError("envelope: it was made for a different parameter space")
        return envelope
    return Envelope(space, {} if envelope is None else envelope)


def evidence(df: pd.DataFrame, space: ParameterSpace, envelope: Envelope) -> pd.DataFrame:
    """The uniform rows of a sweep inside ``envelope``: stage 1, and stage-3 rows sampled in an envelope containing it.

    A table without a ``stage`` column is taken as uniform throughout.
    """
    missing = [c for c in [*space.names, "success"] if c not in df]
    if missing:
        raise ValueError(f"the sweep table lacks columns {missing}")
    inside = envelope.mask(df)
    if "stage" not in df:
        return df[inside]
    stage = df["stage"].to_numpy()
    usable = np.isin(stage, UNIFORM_STAGES)
    gate_rows = np.flatnonzero(stage == STAGE_GATE)
    if len(gate_rows):
        if "envelope" not in df:
            raise ValueError(f"stage-{STAGE_GATE} rows lack the 'envelope' they were sampled in")
        sampled_in = {text: Envelope.from_json(text, space).contains(envelope)
                      for text in df["envelope"].iloc[gate_rows].unique()}
        usable[gate_rows] = df["envelope"].iloc[gate_rows].map(sampled_in).to_numpy(dtype=bool)
    return df[inside & usable]


def gate(
    df: pd.DataFrame,
    space: ParameterSpace,
    envelope: Mapping[str, Any] | Envelope | None,
    max_failure_rate: float = 0.05,
    confidence: float = 0.95,
) -> GateDecision:
    """Decide whether a policy may be deployed in an operating envelope.

    Parameters
    ----------
    df : pandas.DataFrame
        A sweep table (parameter columns, ``success``, ``stage``).
    space : ParameterSpace
        The swept space.
    envelope : mapping or Envelope
        Parameter name -> ``(low, high)`` or a list of allowed values; see
        :class:`Envelope`.  ``None`` or ``{}`` is the whole space.
    max_failure_rate : float, default 0.05
        The largest acceptable failure rate, in (0, 1).
    confidence : float, default 0.95
        Confidence of the verdict, in (0, 1).

    Returns
    -------
    GateDecision
        Evidence is the uniform rows inside the envelope (stage 1, and
        stage-3 rows of :func:`run_gate` sampled in an envelope containing
        it); never stage-2 rows.  With stage-3 rows among them the bounds
        come from the confidence sequence (they were collected sequentially),
        otherwise from Clopper–Pearson.

    Raises
    ------
    ValueError
        For a bad envelope (naming the parameter and the problem), a limit or
        confidence outside (0, 1), or a table without the space's columns.

    Examples
    --------
    >>> import pandas as pd
    >>> from robogate import Continuous, ParameterSpace
    >>> space = ParameterSpace([Continuous("friction", 0.05, 1.2, log=True)])
    >>> df = pd.DataFrame({"friction": [0.5] * 60, "success": [True] * 60, "stage": [1] * 60})
    >>> gate(df, space, {"friction": (0.4, 1.2)}).verdict
    'pass'
    """
    envelope = _as_envelope(envelope, space)
    rows = evidence(df, space, envelope)
    sequential = bool("stage" in rows and (rows["stage"] == STAGE_GATE).any())
    failures = int((~rows["success"].astype(bool)).sum())
    decision = decide(failures, len(rows), max_failure_rate, confidence, sequential=sequential)
    return _name_free(_harness_check(decision, df[envelope.mask(df)]), envelope)


def _harness_check(decision: GateDecision, inside: pd.DataFrame) -> GateDecision:
    """``decision``, or an ``"error"`` verdict if any experiment in ``inside`` errored."""
    broken = errored(inside)
    if not broken.any():
        return decision
    k, total = int(broken.sum()), len(inside)
    if k < total:
        counted = f"{k} of the {total} experiments"
    else:
        counted = "the one experiment" if total == 1 else f"all {total} experiments"
    reason = (f"error: {counted} inside the envelope errored (the policy "
              "raised or the simulation diverged), which is a broken harness, not evidence about the policy's "
              f"safety; first error: {first_error(inside)}.")
    return dataclasses.replace(decision, verdict="error", more_needed=0, reason=reason, errors=k,
                               first_error=first_error(inside))


def _name_free(decision: GateDecision, envelope: Envelope) -> GateDecision:
    """The decision with its sentence naming the parameters the envelope leaves out: free over their full
    range (``rest="free"``) or held at nominal (``rest="nominal"``)."""
    left = envelope.left_out
    if not left:
        return decision
    names = left[0] if len(left) == 1 else f"{', '.join(left[:-1])} and {left[-1]}"
    its = "its" if len(left) == 1 else "their"
    if envelope.rest == "nominal":
        clause = f"the envelope holds {names} at {its} nominal value{'s' * (len(left) != 1)}"
    elif not envelope.limits:
        clause = "the envelope limits no parameter, so every one ranges over its full range"
    else:
        clause = f"the envelope leaves {names} free over {its} full range"
    return dataclasses.replace(decision, reason=f"{decision.reason[:-1]}; {clause}.")


def sequential_gate(
    draw: Callable[[int], Any],
    max_failure_rate: float = 0.05,
    confidence: float = 0.95,
    *,
    n: int = 0,
    failures: int = 0,
    batch_size: int = 20,
    max_experiments: int = 1000,
    on_look: Callable[[int, int], None] | None = None,
) -> GateDecision:
    """Run experiments in batches until the gate's verdict is decided.

    Every look (the evidence so far, then after each batch) uses the
    confidence sequence, so the chance of a wrong pass or fail stays at most
    ``1 - confidence`` however many batches run.

    Parameters
    ----------
    draw : callable
        ``draw(m)`` runs ``m`` new uniform experiments inside the envelope and
        returns their failures (``m`` booleans, True = failed).
    max_failure_rate, confidence : float
        As for :func:`gate`.
    n, failures : int, default 0
        Evidence already at hand.
    batch_size : int, default 20
        Experiments per look.
    max_experiments : int, default 1000
        At most this many are run; the verdict may then stay inconclusive.
    on_look : callable, optional
        Called as ``on_look(failures, n)`` at every look.

    Returns
    -------
    GateDecision
        With ``ran`` the number of experiments run.
    """
    batch_size = check_int(batch_size, "batch_size", 1)
    max_experiments = check_int(max_experiments, "max_experiments")
    n, failures = check_int(n, "n"), check_int(failures, "failures")
    limit = check_level(max_failure_rate, "max_failure_rate")
    confidence = check_level(confidence, "confidence")
    ran = 0
    while True:
        if on_look is not None:
            on_look(failures, n)
        if ran >= max_experiments or _verdict(failures, n, confidence, limit, True) != "inconclusive":
            break
        m = min(batch_size, max_experiments - ran)
        failed = np.asarray(draw(m), dtype=bool)
        if failed.shape != (m,):
            raise ValueError(f"draw({m}) must return {m} booleans, got shape {failed.shape}")
        n, failures, ran = n + m, failures + int(failed.sum()), ran + m
    decision = decide(failures, n, limit, confidence, sequential=True)
    reason = decision.reason
    if ran:
        stop = ", the most allowed" if decision.verdict == "inconclusive" else ""
        reason = reason[:-1] + f" (after running {ran} experiments{stop})."
    return dataclasses.replace(decision, ran=ran, reason=reason)


# ------------------------------------------------------------------------------ on a sweep


def _row_seed(sweep_seed: int, index: int) -> np.random.SeedSequence:
    """Seed of the envelope point of gate experiment ``index`` (its episode seed is ``trial_seed``)."""
    return np.random.SeedSequence(sweep_seed, spawn_key=(index, STAGE_GATE))


def run_gate(
    path: str | os.PathLike,
    envelope: Mapping[str, Any] | Envelope | None,
    max_failure_rate: float = 0.05,
    confidence: float = 0.95,
    *,
    max_experiments: int = 1000,
    batch_size: int = 20,
    executor: Any = "local",
    workers: int | None = None,
    address: str | None = None,
    progress: bool = True,
) -> GateDecision:
    """Run experiments inside an envelope until the gate's verdict is decided.

    Points are drawn uniformly inside the envelope, run on the sweep's env
    and policy, and appended to the sweep store as stage-3 rows (ids after
    the sweep's, the episode seed :func:`~robogate.runner.trial_seed` of the
    sweep seed and the id, and an ``envelope`` column), after each batch.  The
    existing uniform evidence counts too, and every look uses the confidence
    sequence (see :func:`sequential_gate`).  A killed run loses at most the
    batch in flight; running again continues from the stored rows.

    Parameters
    ----------
    path : str or os.PathLike
        A finished sweep's folder.
    envelope, max_failure_rate, confidence
        As for :func:`gate`.
    max_experiments : int, default 1000
        At most this many new experiments.
    batch_size : int, default 20
        Experiments between looks.
    executor, workers, address
        As for :func:`robogate.sweep.run_sweep`.
    progress : bool, default True
        Show a progress bar on stderr.

    Returns
    -------
    GateDecision
        ``ran`` is the number of experiments run.  An errored experiment
        (already inside the envelope, or in a batch) stops the run with an
        ``"error"`` verdict.

    Raises
    ------
    ValueError
        For a bad envelope or setting, or a sweep that is not finished (its
        ids would clash with the rows the gate adds).
    """
    from tqdm import tqdm

    settings = sweep_settings(path)
    space = settings["space"]
    envelope = _as_envelope(envelope, space)
    check_level(max_failure_rate, "max_failure_rate")
    check_level(confidence, "confidence")
    batch_size = check_int(batch_size, "batch_size", 1)
    max_experiments = check_int(max_experiments, "max_experiments")
    if not settings["complete"]:
        raise ValueError(
            f"the sweep in {path} is not finished; finish it first (robogate sweep --out {path} --resume) "
            "so that the gate's experiments do not take ids it still needs"
        )
    store = SweepStore.open(path)
    df = store.read()
    rows = evidence(df, space, envelope)
    failures = int((~rows["success"].astype(bool)).sum())
    broken = _harness_check(decide(failures, len(rows), max_failure_rate, confidence, sequential=True),
                            df[envelope.mask(df)])
    if broken.verdict == "error":  # no experiment is run on a broken harness
        return _name_free(broken, envelope)
    planned = store.planned()
    next_id = int(max(df["id"].max() if len(df) else -1, planned["id"].max() if len(planned) else -1)) + 1
    next_batch = int(max(df["batch"].max() if "batch" in df and len(df) else -1,
                         planned["batch"].max() if "batch" in planned and len(planned) else -1)) + 1
    if not isinstance(executor, (str, Executor)):
        raise ValueError(f"executor must be a name or an Executor, got {type(executor).__name__}")
    own = isinstance(executor, str)
    ex = make_executor(executor, workers, address) if own else executor
    bar = tqdm(total=max_experiments, desc="gate", unit="ep", file=sys.stderr, disable=not progress,
               dynamic_ncols=True)
    label = envelope.to_json()

    def draw(m: int) -> np.ndarray:
        nonlocal next_id, next_batch
        ids = range(next_id, next_id + m)
        points = envelope.points([_row_seed(settings["seed"], i) for i in ids])
        trials = [Trial(id=i, env_id=settings["env_id"], policy=settings["policy"], params=p,
                        seed=trial_seed(settings["seed"], i), stage=STAGE_GATE, batch=next_batch)
                  for i, p in zip(ids, points)]
        records = []
        for record in ex.imap_unordered(trials):
            records.append({**record, "envelope": label})
            bar.update(1)
        store.append(records)
        next_id, next_batch = next_id + m, next_batch + 1
        run_so_far.extend(records)
        if errored(pd.DataFrame(records)).any():
            raise _HarnessError
        by_id = {r["id"]: not r["success"] for r in records}
        return np.array([by_id[i] for i in ids])

    def show(failures: int, n: int) -> None:
        bar.set_postfix_str(f"{failures} of {n} failed", refresh=False)

    run_so_far: list[dict] = []  # every record draw() stored, for the verdict on an errored batch
    try:
        decision = sequential_gate(
            draw, max_failure_rate, confidence, n=len(rows), failures=failures, batch_size=batch_size,
            max_experiments=max_experiments, on_look=show,
        )
    except _HarnessError:
        batch = pd.DataFrame(run_so_far)
        new_failures = int((~batch["success"].astype(bool)).sum())
        decision = _harness_check(
            decide(failures + new_failures, len(rows) + len(batch), max_failure_rate, confidence, sequential=True),
            pd.concat([df[envelope.mask(df)], batch], ignore_index=True))
        decision = dataclasses.replace(
            decision, ran=len(batch), reason=decision.reason[:-1] + f" (after running {len(batch)} experiments).")
    finally:
        bar.close()
        if own:
            ex.close()
    return _name_free(decision, envelope)


class _HarnessError(Exception):
    """A batch of :func:`run_gate` held an errored experiment: the run stops there."""
