"""Abort and retry: does stopping on the monitor's alarm save a production cell time, and at which threshold?

A cell attempts a task until one attempt succeeds; every attempt that does not succeed is followed
by a reset. With a failure monitor in the loop the cell can stop an attempt when the monitor
raises an alarm, reset, and try again. Stopping a failing attempt early saves the rest of it; a
false alarm throws away an attempt that would have succeeded. :func:`expected_makespan` gives the
expected time per completed task under both policies in closed form; :func:`estimate_makespan`
fills its inputs in from labelled rollouts (bootstrap intervals over episodes); and
:func:`choose_threshold` sweeps the monitor's alpha, picks the one with the shortest predicted
makespan, and says "stop on alarm" only when the saving's interval lies above zero.

The decision follows the published trial-and-error analysis of robotic assembly (2023), which
derives the makespan from the predictor's confusion matrix and the attempts' durations and adopts
preemption only where it saves time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from robogate._utils.checks import check_int, check_level
from robogate.monitor.settings import MAKESPAN_ALPHAS

__all__ = ["RUN_TO_END", "STOP_ON_ALARM", "VERDICTS", "EpisodeTimes", "Makespan", "MakespanCheck",
           "MakespanDecision", "MakespanEstimate", "check_decision", "choose_threshold", "episode_times",
           "estimate_makespan", "expected_makespan", "feasible_alphas"]

STOP_ON_ALARM = "stop on alarm"
RUN_TO_END = "run to the end"
VERDICTS = (STOP_ON_ALARM, RUN_TO_END)
EXIT_CODES = {STOP_ON_ALARM: 0, RUN_TO_END: 1}
"""Exit status of ``robogate monitor makespan`` for each verdict."""



@dataclass(frozen=True)
class Makespan:
    """Expected seconds per completed task under each policy (arrays when the inputs were arrays).

    Attributes
    ----------
    run_to_end : float
        Every attempt runs to its end.
    stop_on_alarm : float
        An alarm stops the attempt, the cell resets and tries again.
    """

    run_to_end: Any
    stop_on_alarm: Any

    @property
    def saving(self) -> Any:
        """``run_to_end - stop_on_alarm``: positive when stopping on alarm saves time (NaN when both are infinite)."""
        with np.errstate(invalid="ignore"):
            out = np.asarray(self.run_to_end, dtype=float) - np.asarray(self.stop_on_alarm, dtype=float)
        return float(out) if out.ndim == 0 else out

    @property
    def relative_saving(self) -> Any:
        """The saving as a share of ``run_to_end``."""
        with np.errstate(invalid="ignore", divide="ignore"):
            out = self.saving / np.asarray(self.run_to_end, dtype=float)
        return float(out) if np.ndim(out) == 0 else out


def _array(value: Any, name: str, *, rate: bool = False, allow_nan: bool = False) -> np.ndarray:
    array = np.asarray(value, dtype=float)
    bad = np.isinf(array) | (array < 0) | (rate & (array > 1))
    if not allow_nan:
        bad |= np.isnan(array)
    if np.any(bad):
        what = "a probability in [0, 1]" if rate else "a non-negative number of seconds"
        raise ValueError(f"expected_makespan: {name} must be {what}, got {value!r}")
    return array


def _weighted(weight: np.ndarray, time: np.ndarray) -> np.ndarray:
    """``weight * time``, zero where the weight is zero (a mean time of an empty class is NaN)."""
    return np.where(weight > 0, weight * np.nan_to_num(time, nan=0.0), 0.0)


def expected_makespan(
    *,
    p_success: Any,
    t_success: Any,
    t_failure: Any,
    reset: Any,
    tpr: Any = 0.0,
    t_alarm_failure: Any = np.nan,
    fpr: Any = 0.0,
    t_alarm_success: Any = np.nan,
    t_success_unstopped: Any = None,
    t_failure_unstopped: Any = None,
) -> Makespan:
    """Expected time per completed task, running every attempt to its end or stopping it on the monitor's alarm.

    Model (the assumptions):

    - attempts are independent and alike: each succeeds with probability ``p_success``, and the
      monitor alarms on a successful attempt with probability ``fpr`` and on a failing one with
      probability ``tpr``;
    - the monitor only watches until it alarms: an attempt it does not stop runs exactly as
      without it;
    - every attempt that does not end in a success is followed by a reset of ``reset`` seconds
      before the next one (a stopped attempt too, whether it would have failed or succeeded);
    - attempts continue until one succeeds (no attempt budget);
    - times are means, in seconds of simulated time: a success takes ``t_success``, a failure
      ``t_failure``; a stopped attempt ends at its alarm, on average ``t_alarm_success`` into a
      success and ``t_alarm_failure`` into a failure. The attempts the monitor lets through may
      differ on average from all of them: ``t_success_unstopped`` and ``t_failure_unstopped``
      (default ``t_success`` and ``t_failure``).

    Derivation (renewal-reward): one attempt is a cycle. Its expected length is ``C`` and it
    completes a task with probability ``q``; the tasks completed form a renewal process, so the
    long-run time per completed task is ``C / q`` (and, by Wald's identity, so is the expected
    time to complete one task: the number of attempts is geometric with mean ``1 / q``).
    Running to the end, ``C = p t_s + (1 - p)(t_f + r)`` and ``q = p``. Stopping on alarm,
    ``C = p (1 - fpr) t_s' + p fpr (t_as + r) + (1 - p) tpr (t_af + r) + (1 - p)(1 - tpr)(t_f' + r)``
    and ``q = p (1 - fpr)``. With ``t_s' = t_s`` and ``t_f' = t_f`` the saving is

    ``(1 - p) tpr (t_f - t_af) / (p (1 - fpr))  -  fpr / (1 - fpr) (t_as + r + M_end - t_s)``:

    the time the caught failures would still have run, per completed task, less what the false
    alarms cost (each throws away ``t_as``, pays a reset, and starts the task over).

    Parameters
    ----------
    p_success : float or array
        Probability that an attempt succeeds.
    t_success, t_failure : float or array
        Mean duration of a successful and of a failing attempt (s).
    reset : float or array
        Time to reset the cell after an attempt that did not succeed (s).
    tpr, fpr : float or array
        Probability that the monitor alarms on a failing / a successful attempt.
    t_alarm_failure, t_alarm_success : float or array
        Mean time of the alarm into a failing / a successful attempt it alarmed on (s); NaN
        (the default) only when its rate is 0.
    t_success_unstopped, t_failure_unstopped : float or array, optional
        Mean duration of the successes and failures the monitor does not stop.

    Returns
    -------
    Makespan
        ``run_to_end`` and ``stop_on_alarm`` in seconds per completed task (infinite when no
        attempt can complete the task), and their difference ``saving``. Arrays broadcast.

    Raises
    ------
    ValueError
        For a probability outside [0, 1], a negative or infinite time, or a missing alarm time
        where its rate is positive.

    Examples
    --------
    >>> from robogate.monitor import expected_makespan
    >>> m = expected_makespan(p_success=0.7, t_success=4.0, t_failure=5.5, reset=2.0,
    ...                       tpr=0.9, t_alarm_failure=1.2, fpr=0.05, t_alarm_success=2.0)
    >>> round(m.run_to_end, 2), round(m.stop_on_alarm, 2), round(m.saving, 2)
    (7.21, 5.85, 1.37)
    """
    p = _array(p_success, "p_success", rate=True)
    tpr_, fpr_ = _array(tpr, "tpr", rate=True), _array(fpr, "fpr", rate=True)
    r = _array(reset, "reset")
    t_s, t_f = _array(t_success, "t_success", allow_nan=True), _array(t_failure, "t_failure", allow_nan=True)
    t_af = _array(t_alarm_failure, "t_alarm_failure", allow_nan=True)
    t_as = _array(t_alarm_success, "t_alarm_success", allow_nan=True)
    t_su = t_s if t_success_unstopped is None else _array(t_success_unstopped, "t_success_unstopped", allow_nan=True)
    t_fu = t_f if t_failure_unstopped is None else _array(t_failure_unstopped, "t_failure_unstopped", allow_nan=True)
    fail = 1.0 - p
    # A mean time may be unknown (NaN) only where nothing takes it: no attempt of that kind.
    for weight, time, name, where in (
            (p, t_s, "t_success", "attempts succeed"), (fail, t_f, "t_failure", "attempts fail"),
            (fail * tpr_, t_af, "t_alarm_failure", "the monitor alarms on failures (tpr above 0)"),
            (p * fpr_, t_as, "t_alarm_success", "the monitor alarms on successes (fpr above 0)"),
            (p * (1.0 - fpr_), t_su, "t_success_unstopped", "successes go unstopped"),
            (fail * (1.0 - tpr_), t_fu, "t_failure_unstopped", "failures go unstopped")):
        if np.any((weight > 0) & np.isnan(time)):
            raise ValueError(f"expected_makespan: {name} is needed where {where}: give the mean time in seconds")
    cycle_end = _weighted(p, t_s) + _weighted(fail, t_f + r)
    done_stop = p * (1.0 - fpr_)
    cycle_stop = (_weighted(done_stop, t_su) + _weighted(p * fpr_, t_as + r) + _weighted(fail * tpr_, t_af + r)
                  + _weighted(fail * (1.0 - tpr_), t_fu + r))
    with np.errstate(divide="ignore", invalid="ignore"):
        end = np.where(p > 0, cycle_end / np.where(p > 0, p, 1.0), np.inf)
        stop = np.where(done_stop > 0, cycle_stop / np.where(done_stop > 0, done_stop, 1.0), np.inf)
    return Makespan(_scalar(end), _scalar(stop))


def _scalar(array: np.ndarray) -> Any:
    return float(array) if np.ndim(array) == 0 else array


# --------------------------------------------------------------------------------- from rollouts


@dataclass(frozen=True, eq=False)
class EpisodeTimes:
    """What the makespan needs of each labelled episode, as arrays of shape (n,).

    Attributes
    ----------
    success : array of bool
        Whether the episode succeeded.
    duration : array of float
        Its length in seconds of simulated time (steps / control rate).
    alarm : array of float
        When the monitor first alarmed, in seconds (steps before the alarm / control rate;
        the attempt stops there); NaN without an alarm.
    """

    success: np.ndarray
    duration: np.ndarray
    alarm: np.ndarray

    def __post_init__(self) -> None:
        success = np.asarray(self.success, dtype=bool)
        duration = np.asarray(self.duration, dtype=float)
        alarm = np.asarray(self.alarm, dtype=float)
        if not success.ndim == duration.ndim == alarm.ndim == 1 or not len(success) == len(duration) == len(alarm):
            raise ValueError("EpisodeTimes: success, duration and alarm must be 1-D arrays of one length")
        if not len(success):
            raise ValueError("the makespan needs labelled episodes, got none")
        if np.any(~np.isfinite(duration) | (duration < 0)) or np.any(alarm < 0):
            raise ValueError("EpisodeTimes: durations must be finite and non-negative, alarm times non-negative or NaN")
        object.__setattr__(self, "success", success)
        object.__setattr__(self, "duration", duration)
        object.__setattr__(self, "alarm", alarm)

    def __len__(self) -> int:
        return len(self.success)

    def inputs(self, weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The inputs of :func:`expected_makespan`, estimated from these episodes (each weighted by
        ``weights``, shape (n,) or (B, n) for B bootstrap resamples; default 1 each).

        With the unstopped attempts' own mean durations, the closed form reproduces exactly the
        episodes' own renewal-reward ratio: total time over completed tasks.
        """
        w = np.ones(len(self)) if weights is None else np.asarray(weights, dtype=float)
        alarmed = ~np.isnan(self.alarm)
        alarm = np.nan_to_num(self.alarm)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = {"p_success": (w @ self.success) / w.sum(axis=-1)}
            for word, rate, member in (("success", "fpr", self.success), ("failure", "tpr", ~self.success)):
                n, stopped = w @ member, w @ (member & alarmed)
                out[rate] = np.where(n > 0, stopped / n, 0.0)
                out[f"t_{word}"] = (w @ (member * self.duration)) / n
                out[f"t_alarm_{word}"] = (w @ ((member & alarmed) * alarm)) / stopped
                out[f"t_{word}_unstopped"] = (w @ ((member & ~alarmed) * self.duration)) / (w @ (member & ~alarmed))
        return out


def episode_times(rollouts: Sequence[Any], monitor: Any = None, control_hz: float | None = None) -> EpisodeTimes:
    """The :class:`EpisodeTimes` of labelled rollouts under ``monitor`` (None: no alarms).

    Parameters
    ----------
    rollouts : sequence of Rollout
        Labelled rollouts (successes and failures), each at its env's control rate.
    monitor : FailureMonitor, optional
        A fitted monitor; its first alarm in each rollout (run offline, :meth:`FailureMonitor.trace`)
        is where the attempt would stop.
    control_hz : float, optional
        Control steps per second, for rollouts that carry none.

    Raises
    ------
    ValueError
        No rollouts, or a rollout with no control rate and none given.
    """
    rollouts = list(rollouts)
    if not rollouts:
        raise ValueError("the makespan needs labelled rollouts (successes and failures), got none")
    rates = np.array([r.control_hz if r.control_hz is not None else (control_hz or np.nan) for r in rollouts])
    if np.any(np.isnan(rates)):
        raise ValueError("the rollouts carry no control rate, so their durations are unknown: record them from an env "
                         "that declares control_hz (or metadata['render_fps']), or give control_hz")
    steps = np.array([r.steps for r in rollouts], dtype=float)
    alarms = np.full(len(rollouts), np.nan)
    if monitor is not None:
        alarms = np.array([np.nan if (a := monitor.trace(r).alarm_step) is None else a for r in rollouts], dtype=float)
    return EpisodeTimes(np.array([r.success for r in rollouts]), steps / rates, alarms / rates)


def _interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """The percentile interval of bootstrap replicates (NaN replicates, both policies infinite, left out)."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if not values.size:
        return (float("nan"), float("nan"))
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail], method="inverted_cdf")
    return (float(low), float(high))


def _resamples(n: int, n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap weights over n episodes: how often each is drawn in each of ``n_boot`` resamples, shape (n_boot, n)."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)


@dataclass(frozen=True, eq=False)
class MakespanEstimate:
    """The expected makespan estimated from labelled episodes, with bootstrap intervals over episodes.

    Attributes
    ----------
    makespan : Makespan
        The point estimate (seconds per completed task).
    intervals : dict
        ``run_to_end``, ``stop_on_alarm`` and ``saving``: (low, high) percentile intervals.
    inputs : dict
        The estimated inputs of :func:`expected_makespan` (and ``reset``).
    confidence : float
    episodes, failures : int
    lead : float
        Mean time a caught failure still had to run after its alarm (s); NaN without one.
    """

    makespan: Makespan
    intervals: dict[str, tuple[float, float]]
    inputs: dict[str, float]
    confidence: float
    episodes: int
    failures: int
    lead: float

    @property
    def run_to_end(self) -> float:
        return self.makespan.run_to_end

    @property
    def stop_on_alarm(self) -> float:
        return self.makespan.stop_on_alarm

    @property
    def saving(self) -> float:
        return self.makespan.saving

    def describe(self) -> str:
        """Both makespans and the saving with its interval, in one line."""
        low, high = self.intervals["saving"]
        return (f"run to the end {self.run_to_end:.2f}, stop on alarm {self.stop_on_alarm:.2f}; saving "
                f"{self.saving:.2f} s ({self.makespan.relative_saving:.1%}), {self.confidence:.0%} interval "
                f"[{low:.2f}, {high:.2f}] s, on {self.episodes} rollouts ({self.failures} failures)")

    def row(self) -> dict[str, float]:
        """The estimate as one flat row (a table of them compares thresholds or scene mixes)."""
        out = {"episodes": self.episodes, "failures": self.failures}
        for name in ("run_to_end", "stop_on_alarm", "saving"):
            low, high = self.intervals[name]
            out.update({name: getattr(self, name), f"{name}_low": low, f"{name}_high": high})
        out.update(tpr=self.inputs["tpr"], fpr=self.inputs["fpr"], lead=self.lead)
        return out


def _check_reset(reset: Any) -> float:
    try:
        value = float(reset)
    except (TypeError, ValueError):
        value = float("nan")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"reset must be a non-negative number of seconds, got {reset!r}")
    return value


def _times(rollouts: Any, monitor: Any, control_hz: float | None) -> EpisodeTimes:
    return rollouts if isinstance(rollouts, EpisodeTimes) else episode_times(rollouts, monitor, control_hz)


def _estimate(times: EpisodeTimes, reset: float, weights: np.ndarray, confidence: float) -> MakespanEstimate:
    point = {k: float(v) for k, v in times.inputs().items()}
    if point["p_success"] == 0:
        raise ValueError(f"none of the {len(times)} episodes succeeded, so no task would ever complete: the makespan "
                         "needs labelled episodes that include successes")
    makespan = expected_makespan(**point, reset=reset)
    boot = expected_makespan(**times.inputs(weights), reset=reset)
    intervals = {"run_to_end": _interval(boot.run_to_end, confidence),
                 "stop_on_alarm": _interval(boot.stop_on_alarm, confidence),
                 "saving": _interval(boot.saving, confidence)}
    caught = ~times.success & ~np.isnan(times.alarm)
    lead = float(np.mean(times.duration[caught] - times.alarm[caught])) if caught.any() else float("nan")
    return MakespanEstimate(makespan, intervals, {**point, "reset": reset}, confidence, len(times),
                            int((~times.success).sum()), lead)


def estimate_makespan(
    rollouts: Sequence[Any] | EpisodeTimes,
    monitor: Any = None,
    reset: float = 0.0,
    *,
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
    control_hz: float | None = None,
) -> MakespanEstimate:
    """The expected makespan of labelled rollouts with ``monitor`` at its threshold, with bootstrap intervals.

    The inputs of :func:`expected_makespan` are estimated from the rollouts: the success rate,
    the monitor's alarm rates on successes and failures (run offline on each rollout), the mean
    durations and alarm times. Intervals are percentile intervals of the same estimate over
    ``n_boot`` resamples of the episodes, paired: the saving is computed within each resample.

    The rollouts stand for the cell's attempts, so draw them as the cell draws them: where scenes
    differ in how often they fail and a task retries one scene, the attempts of a production run
    (:func:`robogate.monitor.production.run_production` with ``record=True``) weight each scene
    as retries do.

    Parameters
    ----------
    rollouts : sequence of Rollout, or EpisodeTimes
        Labelled rollouts (successes and failures).
    monitor : FailureMonitor, optional
        A fitted monitor (None: it never alarms; only ``run_to_end`` is then of interest).
    reset : float
        Seconds to reset the cell after an attempt that did not succeed.
    confidence : float
        Of the intervals.
    n_boot : int
        Bootstrap resamples.
    seed : int
        Seeds the resampling.
    control_hz : float, optional
        Control rate for rollouts that carry none.

    Raises
    ------
    ValueError
        No rollouts, none successful, no control rate, or bad settings.
    """
    reset, confidence = _check_reset(reset), check_level(confidence, "confidence")
    n_boot, seed = check_int(n_boot, "n_boot", minimum=1), check_int(seed, "seed")
    times = _times(rollouts, monitor, control_hz)
    return _estimate(times, reset, _resamples(len(times), n_boot, seed), confidence)


@dataclass(frozen=True, eq=False)
class MakespanDecision:
    """Stop on alarm or run to the end, and at which threshold (see :func:`choose_threshold`).

    Attributes
    ----------
    verdict : str
        ``"stop on alarm"`` when the saving's interval at the chosen threshold lies above zero,
        else ``"run to the end"``.
    alpha : float
        The chosen threshold: the alpha with the shortest predicted makespan when stopping on alarm.
    monitor : FailureMonitor
        The monitor recalibrated at ``alpha`` (its fitted scores shared).
    estimate : MakespanEstimate
        The estimate at ``alpha``.
    curve : DataFrame
        One row per alpha swept (:meth:`MakespanEstimate.row` and ``alpha``, ``chosen``).
    reason : str
        Why, in a sentence or two: what stopping gains and loses, and for "run to the end" which
        of the lead, the false alarms or the reset stops it from paying.
    """

    verdict: str
    alpha: float
    monitor: Any = field(repr=False)
    estimate: MakespanEstimate = field(repr=False)
    curve: pd.DataFrame = field(repr=False)
    reason: str = ""

    @property
    def exit_code(self) -> int:
        """0 for "stop on alarm", 1 for "run to the end" (``robogate monitor makespan``)."""
        return EXIT_CODES[self.verdict]


def feasible_alphas(monitor: Any, alphas: Sequence[float] = MAKESPAN_ALPHAS) -> list[float]:
    """The alphas among ``alphas`` that ``monitor``'s calibration rollouts are enough for, ascending."""
    from robogate.monitor.conformal import conformal_rank

    out = []
    for alpha in sorted({check_level(a, "alpha") for a in alphas}):
        try:
            conformal_rank(monitor.n_calibration_, alpha, monitor.confidence)
        except ValueError:
            continue
        out.append(alpha)
    if not out:
        raise ValueError(f"the monitor's {monitor.n_calibration_} calibration rollouts are too few for every alpha in "
                         f"{list(alphas)}; give larger alphas or calibrate on more successful rollouts")
    return out


def _reason(verdict: str, estimate: MakespanEstimate, alpha: float) -> str:
    x = estimate.inputs
    low, high = estimate.intervals["saving"]
    level = f"{estimate.confidence:.0%}"
    if estimate.failures:
        lead = f", on average {estimate.lead:.1f} s before they would have ended" if np.isfinite(estimate.lead) else ""
        caught = (f"it stops {x['tpr']:.0%} of the failing attempts ({1 - x['p_success']:.0%} of attempts fail){lead}, "
                  f"and {x['fpr']:.0%} of the successful ones")
    else:
        caught = f"no attempt failed, and it stops {x['fpr']:.0%} of the successful ones"
    if verdict == STOP_ON_ALARM:
        return (f"At alpha {alpha:g} stopping on alarm saves {estimate.saving:.2f} s per completed task "
                f"({estimate.makespan.relative_saving:.0%} of {estimate.run_to_end:.2f} s; {level} interval "
                f"[{low:.2f}, {high:.2f}] s): {caught}.")
    inputs = {k: v for k, v in x.items() if k != "reset"}
    no_false_alarms = expected_makespan(**{**inputs, "fpr": 0.0, "t_success_unstopped": x["t_success"]},
                                        reset=x["reset"]).saving
    free_reset = expected_makespan(**inputs, reset=0.0).saving
    if not no_false_alarms > 0.01 * estimate.run_to_end:
        why = (f"the lead is too short or failures too rare: even without a single false alarm stopping would save "
               f"{max(no_false_alarms, 0.0):.2f} s per task")
    elif not free_reset > 0:
        why = ("there are too many false alarms: each stopped success throws the attempt away and starts the task over, "
               "and even with a free reset they cost more than the early stops save")
    elif not estimate.saving > 0:
        breakeven = free_reset * x["p_success"] * (1.0 - x["fpr"]) / x["fpr"]
        why = (f"the reset is too expensive: at {x['reset']:g} s a reset after each false alarm costs more than the "
               f"early stops save; stopping would pay with resets under {breakeven:.2f} s")
    else:
        why = (f"the saving is not sure: {estimate.saving:.2f} s per task, but its {level} interval "
               f"[{low:.2f}, {high:.2f}] s reaches zero; more labelled rollouts would decide")
    return (f"{why[0].upper()}{why[1:]}. At the best threshold (alpha {alpha:g}) {caught}; predicted "
            f"{estimate.stop_on_alarm:.2f} s per task stopping on alarm against {estimate.run_to_end:.2f} s running "
            "to the end.")


def _sweep(rollouts: Sequence[Any], monitor: Any, reset: float, alphas: Sequence[float], confidence: float,
           n_boot: int, seed: int, control_hz: float | None) -> tuple[pd.DataFrame, list[MakespanEstimate], list[Any]]:
    """The estimate at every feasible alpha, on one set of resamples: the table, the estimates and the monitors."""
    reset, confidence = _check_reset(reset), check_level(confidence, "confidence")
    n_boot, seed = check_int(n_boot, "n_boot", minimum=1), check_int(seed, "seed")
    if not hasattr(monitor, "thresholds_"):
        raise ValueError("sweeping the threshold needs a fitted FailureMonitor (fit it, or load a saved one)")
    rollouts = list(rollouts)
    base = episode_times(rollouts, None, control_hz)
    weights = _resamples(len(base), n_boot, seed)
    raw = [monitor.step_scores(r) for r in rollouts]
    rates = base.duration / np.array([r.steps for r in rollouts], dtype=float)  # seconds per step
    rows, estimates, variants = [], [], []
    for alpha in feasible_alphas(monitor, alphas):
        variant = monitor.recalibrate(alpha=alpha)
        steps = np.array([np.nan if (a := variant.trace(r, s).alarm_step) is None else a
                          for r, s in zip(rollouts, raw)], dtype=float)
        estimate = _estimate(EpisodeTimes(base.success, base.duration, steps * rates), reset, weights, confidence)
        rows.append({"alpha": alpha, **estimate.row()})
        estimates.append(estimate)
        variants.append(variant)
    return pd.DataFrame(rows), estimates, variants


def choose_threshold(
    rollouts: Sequence[Any],
    monitor: Any,
    reset: float,
    *,
    alphas: Sequence[float] = MAKESPAN_ALPHAS,
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
    control_hz: float | None = None,
) -> MakespanDecision:
    """Sweep the monitor's alpha on labelled validation rollouts, pick the one with the shortest predicted
    makespan, and decide whether stopping on alarm pays.

    Every alpha is a recalibration of the same fitted scores (:meth:`FailureMonitor.recalibrate`),
    so a larger alpha alarms earlier and more often. The chosen alpha minimises the predicted
    makespan when stopping on alarm; the verdict is "stop on alarm" only when the saving's
    ``confidence`` interval there (bootstrap over episodes, :func:`estimate_makespan`) lies
    above zero. Choosing the best of several alphas on the same rollouts flatters the winner a
    little: check the verdict on test rollouts (:func:`check_decision`, whose ``curve`` shows how
    every alpha holds up there, or a production run).

    Parameters
    ----------
    rollouts : sequence of Rollout
        Labelled validation rollouts (successes and failures), drawn as the cell draws attempts.
    monitor : FailureMonitor
        A fitted monitor.
    reset : float
        Seconds to reset the cell after an attempt that did not succeed.
    alphas : sequence of float
        Thresholds to sweep (those the monitor's calibration rollouts are too few for are skipped).
    confidence, n_boot, seed, control_hz
        As for :func:`estimate_makespan`; every alpha is judged on the same resamples.

    Returns
    -------
    MakespanDecision

    Raises
    ------
    ValueError
        As :func:`estimate_makespan`, and for an unfitted monitor or alphas it cannot be calibrated at.
    """
    curve, estimates, variants = _sweep(rollouts, monitor, reset, alphas, confidence, n_boot, seed, control_hz)
    best = int(np.argmin(curve["stop_on_alarm"].to_numpy()))
    curve["chosen"] = np.arange(len(curve)) == best
    estimate = estimates[best]
    verdict = STOP_ON_ALARM if estimate.intervals["saving"][0] > 0 else RUN_TO_END
    alpha = float(curve["alpha"].iloc[best])
    return MakespanDecision(verdict, alpha, variants[best], estimate, curve, _reason(verdict, estimate, alpha))


@dataclass(frozen=True, eq=False)
class MakespanCheck:
    """A :class:`MakespanDecision` checked on test rollouts (see :func:`check_decision`).

    Attributes
    ----------
    alpha : float
        The decision's threshold.
    saving : float
        The saving at ``alpha`` estimated on the test rollouts (seconds per completed task).
    interval : (float, float)
        Its bootstrap interval, at the decision's confidence.
    episodes : int
        Test rollouts.
    holds : bool
        Whether they confirm the verdict: the interval lies above zero exactly when the verdict
        is "stop on alarm".
    curve : DataFrame
        The decision's sweep on the test rollouts, one row per alpha of its ``curve``.
    """

    alpha: float
    saving: float
    interval: tuple[float, float]
    episodes: int
    holds: bool
    curve: pd.DataFrame = field(repr=False)

    def describe(self) -> str:
        """The saving at the threshold and whether the verdict holds, in one line."""
        low, high = self.interval
        return (f"at alpha {self.alpha:g}: saving {self.saving:.2f} s, interval [{low:.2f}, {high:.2f}] s "
                f"({self.episodes} rollouts): "
                + ("the verdict holds" if self.holds else "the test rollouts do not confirm the verdict"))


def check_decision(
    decision: MakespanDecision,
    rollouts: Sequence[Any],
    *,
    n_boot: int = 2000,
    seed: int = 0,
    control_hz: float | None = None,
) -> MakespanCheck:
    """Check a decision of :func:`choose_threshold` on labelled test rollouts.

    The decision's sweep runs again on ``rollouts``: every alpha of its ``curve``, the same reset
    and confidence, each a recalibration of ``decision.monitor``'s fitted scores (so the same
    monitors the decision compared).

    Parameters
    ----------
    decision : MakespanDecision
        From :func:`choose_threshold` on validation rollouts.
    rollouts : sequence of Rollout
        Labelled test rollouts, kept apart from the validation ones.
    n_boot, seed, control_hz
        As for :func:`estimate_makespan`.

    Raises
    ------
    ValueError
        As :func:`estimate_makespan`.
    """
    curve, _, _ = _sweep(rollouts, decision.monitor, decision.estimate.inputs["reset"], decision.curve["alpha"],
                         decision.estimate.confidence, n_boot, seed, control_hz)
    row = curve[curve["alpha"] == decision.alpha].iloc[0]
    holds = bool(row["saving_low"] > 0) == (decision.verdict == STOP_ON_ALARM)
    return MakespanCheck(decision.alpha, float(row["saving"]), (float(row["saving_low"]), float(row["saving_high"])),
                         int(row["episodes"]), holds, curve)
