"""Paired statistics by simulation on synthetic paired Bernoulli outcomes: error rates, power, coverage."""

import math

import numpy as np
import pytest
from scipy.stats import binom, binomtest

from robogate.analysis.paired import (
    confidence_sequence,
    decide,
    mcnemar,
    mcnemar_power,
    sequential_verdicts,
    simulate_sequential,
    tango_interval,
)

ALPHA = 0.05


def paired_counts(p_win, p_loss, pairs, runs, seed):
    """Cumulative (wins, losses, n) after every pair of ``runs`` independent paired experiments."""
    kinds = np.random.default_rng(seed).choice(3, size=(runs, pairs), p=[p_win, p_loss, 1 - p_win - p_loss])
    n = np.broadcast_to(np.arange(1, pairs + 1), (runs, pairs))
    return np.cumsum(kinds == 0, axis=1), np.cumsum(kinds == 1, axis=1), n


def run_sequential(p_win, p_loss, pairs, runs, seed, margin=None):
    return simulate_sequential(p_win, p_loss, pairs, runs, seed, 1 - ALPHA, margin)


def consistent_with_at_most(events, runs, rate):
    """An exact binomial test does not reject 'the rate is at most ``rate``' (at 0.1 %)."""
    return binomtest(int(events), runs, rate, alternative="greater").pvalue > 1e-3


# ------------------------------------------------------------------------------- sequential


@pytest.mark.slow
@pytest.mark.parametrize("p", [0.02, 0.1, 0.3])
@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_sequential_error_rate_holds_over_a_thousand_looks(p, seed):
    """No difference (wins and losses equally likely): a look after every pair, up to 1000, rarely decides."""
    verdicts, _ = run_sequential(p, p, 1000, 1000, seed)
    wrong = int((verdicts != "undecided").sum())
    assert consistent_with_at_most(wrong, len(verdicts), ALPHA), wrong


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_sequential_non_inferiority_error_rate_holds_at_the_margin(seed):
    """Worse by exactly the margin: 'not worse' is a wrong verdict, at most half the level (one side)."""
    verdicts, _ = run_sequential(0.05, 0.10, 1000, 1000, seed, margin=0.05)
    wrong = int(np.isin(verdicts, ["not worse", "better"]).sum())
    assert consistent_with_at_most(wrong, len(verdicts), ALPHA / 2), wrong


def test_looking_again_and_again_with_mcnemar_would_not_hold_the_level():
    """The checks above have teeth: the fixed test re-run after every 10 pairs decides wrongly too often."""
    wins, losses, _ = paired_counts(0.1, 0.1, 1000, 300, 11)
    looks = np.arange(9, 1000, 10)
    b, c = wins[:, looks], losses[:, looks]
    p_values = np.minimum(1.0, 2.0 * binom.cdf(np.minimum(b, c), b + c, 0.5))  # exact McNemar, vectorised
    assert p_values[0, -1] == pytest.approx(mcnemar(int(b[0, -1]), int(c[0, -1])))
    wrong = int((p_values < ALPHA).any(axis=1).sum())
    assert not consistent_with_at_most(wrong, 300, ALPHA), wrong


@pytest.mark.slow
@pytest.mark.parametrize("p_win, p_loss", [(0.20, 0.05), (0.15, 0.05), (0.12, 0.06)])
def test_sequential_beats_fixed_mcnemar_at_its_expected_budget(p_win, p_loss):
    """At most 1000 pairs: the sequential test's power beats McNemar's on as many pairs as it needs on average."""
    verdicts, stops = run_sequential(p_win, p_loss, 1000, 1000, 3)
    power, budget = float(np.mean(verdicts == "better")), int(math.ceil(stops.mean()))
    assert not (verdicts == "worse").any()
    assert power > mcnemar_power(p_win, p_loss, budget) + 0.05, (power, budget)


def test_same_outcomes_are_never_declared_different():
    """A policy against itself on the same scenes and seeds: every pair agrees, whatever the success rate."""
    for n in (1, 10, 100, 5000):
        for margin in (None, 0.05):
            assert decide(0, 0, n, margin=margin).verdict in ("undecided", "not worse")
            assert sequential_verdicts([0], [0], [n], 1 - ALPHA, margin)[0] in ("undecided", "not worse")
    assert decide(0, 0, 5000, margin=0.05).verdict == "not worse"
    assert decide(0, 0, 5000, sequential=True).verdict == "undecided"


# --------------------------------------------------------------------------------- intervals


@pytest.mark.parametrize("n, p_win, p_loss", [(50, 0.1, 0.02), (200, 0.02, 0.01), (200, 0.15, 0.05), (680, 0.08, 0.03)])
def test_tango_interval_covers_the_truth_at_its_level(n, p_win, p_loss):
    counts = np.random.default_rng(n).multinomial(n, [p_win, p_loss, 1 - p_win - p_loss], size=1500)
    distinct, index = np.unique(counts[:, :2], axis=0, return_inverse=True)
    covers = np.array([lo <= p_win - p_loss <= hi for lo, hi in (tango_interval(int(b), int(c), n) for b, c in distinct)])
    missed = int((~covers[index.ravel()]).sum())
    assert consistent_with_at_most(missed, len(counts), ALPHA), missed


@pytest.mark.slow
@pytest.mark.parametrize("p_win, p_loss", [(0.1, 0.1), (0.15, 0.05)])
def test_confidence_sequence_covers_the_truth_at_every_look(p_win, p_loss):
    wins, losses, n = paired_counts(p_win, p_loss, 600, 200, 5)
    looks = np.arange(29, 600, 60)
    missed = 0
    for r in range(len(wins)):
        bounds = [confidence_sequence(int(wins[r, t]), int(losses[r, t]), int(n[r, t])) for t in looks]
        missed += any(not lo <= p_win - p_loss <= hi for lo, hi in bounds)
    assert consistent_with_at_most(missed, len(wins), ALPHA), missed


def test_sequential_verdicts_agree_with_the_bounds():
    for b, c, n in [(40, 10, 200), (10, 40, 200), (5, 6, 300), (3, 20, 300), (0, 0, 10)]:
        low, high = confidence_sequence(b, c, n)
        plain = sequential_verdicts([b], [c], [n])[0]
        assert plain == ("better" if low > 0 else "worse" if high < 0 else "undecided")
        margin = sequential_verdicts([b], [c], [n], margin=0.05)[0]
        assert margin == ("better" if low > 0 else "not worse" if low > -0.05 else "worse" if high < -0.05
                          else "undecided")


def test_fixed_verdicts_and_their_sentences():
    better = decide(30, 8, 400)
    assert better.verdict == "better" and better.exit_code == 0 and better.low > 0 and better.p_value < 0.01
    assert better.reason().startswith("better: the candidate succeeds more often than the baseline; 30 wins and 8 "
                                      "losses in 400 paired episodes, success-rate difference +5.5 points")
    worse = decide(8, 30, 400, margin=0.02)
    assert worse.verdict == "worse" and worse.exit_code == 1 and worse.high < -0.02
    assert decide(8, 14, 400, margin=0.05).verdict == "not worse"  # surely lower, but by less than the margin
    assert decide(8, 14, 400).verdict == "undecided" and decide(8, 14, 400).exit_code == 3


@pytest.mark.parametrize("kwargs, message", [
    ({"margin": 0.0}, r"non_inferiority margin must be in \(0, 1\)"),
    ({"margin": 1.5}, r"non_inferiority margin must be in \(0, 1\)"),
    ({"confidence": 1.0}, r"confidence must be in \(0, 1\)"),
])
def test_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        decide(1, 2, 10, **kwargs)
    with pytest.raises(ValueError, match=r"wins \+ losses \(6 \+ 6\) cannot exceed"):
        decide(6, 6, 10)
