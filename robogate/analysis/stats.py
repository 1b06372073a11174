"""Binomial statistics: the gate's exact bounds, its anytime-valid confidence sequence and verdict, and
Wilson intervals for reported success rates (:func:`wilson`).

Verdicts on a failure rate, for a limit ``L`` and a confidence ``c``, from
``failures`` among ``n`` uniform experiments (:func:`decide`):

* ``pass`` -- the upper confidence bound of the failure rate is below ``L``;
* ``fail`` -- the lower confidence bound is above ``L``;
* ``inconclusive`` -- otherwise, with how many more failure-free experiments
  would pass it;
* ``error`` -- set by :func:`robogate.gate` when some experiment errored (the
  policy raised, the simulation diverged): a broken harness says nothing about
  the policy's safety, so there is no pass or fail.

On a fixed set of experiments the bounds are one-sided Clopper–Pearson bounds
at ``c`` (:func:`clopper_pearson`): each wrong verdict has probability at most
``1 - c``.  Experiments run sequentially until the verdict is decided
(:func:`sequential_gate`) would break those bounds by looking again and again,
so there the bounds come from a **confidence sequence**
(:func:`confidence_sequence`) valid at every look at once: the set of rates
``p`` whose Beta-mixture likelihood ratio

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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import brentq
from scipy.special import betaln
from scipy.stats import beta, binomtest

from robogate._utils.checks import check_int, check_level

__all__ = [
    "EXIT_CODES",
    "GateDecision",
    "clopper_pearson",
    "confidence_sequence",
    "decide",
    "sequential_gate",
    "wilson",
]

#: Exit status of ``robogate gate`` per verdict (2 is a usage error; 4: the experiments errored).
EXIT_CODES = {"pass": 0, "fail": 1, "inconclusive": 3, "error": 4}
METHODS = ("clopper-pearson", "confidence sequence")


def clopper_pearson(
    k: Any, n: Any, confidence: float = 0.95, alternative: str = "two-sided"
) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper–Pearson) confidence interval of a binomial proportion.

    Parameters
    ----------
    k, n : int or array of int
        Events and trials (``0 <= k <= n``); vectorised.
    confidence : float, default 0.95
        Coverage of the interval.
    alternative : {"two-sided", "less", "greater"}
        ``"less"`` gives the one-sided upper bound ``[0, high]``, ``"greater"``
        the one-sided lower bound ``[low, 1]``.

    Returns
    -------
    low, high : ndarray of float
        With ``n == 0`` the interval is ``[0, 1]``.

    Examples
    --------
    >>> float(clopper_pearson(0, 59, 0.95, "less")[1]) < 0.05   # 59 failure-free trials
    True
    """
    confidence = check_level(confidence, "confidence")
    if alternative not in ("two-sided", "less", "greater"):
        raise ValueError(f"alternative must be 'two-sided', 'less' or 'greater', got {alternative!r}")
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    if np.any(k < 0) or np.any(k > n):
        raise ValueError("clopper_pearson needs 0 <= k <= n")
    tail = 1.0 - confidence if alternative != "two-sided" else (1.0 - confidence) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(k > 0, beta.ppf(tail, k, n - k + 1), 0.0)
        high = np.where(k < n, beta.ppf(1.0 - tail, k + 1, n - k), 1.0)
    if alternative == "less":
        low = np.zeros_like(low)
    elif alternative == "greater":
        high = np.ones_like(high)
    return low, high


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
        Experiments :func:`robogate.sweep.gate_run.run_gate` ran for this decision (0 for :func:`robogate.gate`).
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


# ------------------------------------------------------------------------------- sequential


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
        As for :func:`robogate.gate`.
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


def wilson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of ``k`` successes in ``n`` (``(nan, nan)`` for ``n == 0``)."""
    if n == 0:
        return float("nan"), float("nan")
    ci = binomtest(int(k), int(n)).proportion_ci(confidence, method="wilson")
    return float(ci.low), float(ci.high)
