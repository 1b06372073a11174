"""The sequential paired test against the fixed-budget McNemar test, on simulated paired Bernoulli outcomes.

For each (win, loss) probability per pair, runs the sequential test (a look after every pair, at
most ``--max-pairs``, the size of robogate-68) ``--runs`` times and prints how often it decides
wrongly or rightly, how many pairs it needs on average, and the exact power of McNemar's test on
that many pairs (equal expected budget) and on all ``--max-pairs``.

Then compare's rule with no difference between the policies: look every ``--batch-size`` pairs and
stop as soon as the sequential test decides, else the fixed-budget test on all ``--max-pairs``;
how often it decides wrongly, against the fixed-budget test alone.

    python scripts/eval_paired.py [--runs 2000] [--max-pairs 680] [--confidence 0.95] [--batch-size 40]
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from flags import parse
from robogate.analysis.paired import decide, mcnemar_power, sequential_verdicts, simulate_sequential

# (what it shows, p_win, p_loss, margin)
CASES = [
    ("no difference, 4 % discordant", 0.02, 0.02, None),
    ("no difference, 20 % discordant", 0.10, 0.10, None),
    ("no difference, 60 % discordant", 0.30, 0.30, None),
    ("worse by exactly the 5-point margin", 0.05, 0.10, 0.05),
    ("better by 15 points", 0.20, 0.05, None),
    ("better by 10 points", 0.15, 0.05, None),
    ("better by 6 points", 0.12, 0.06, None),
    ("better by 4 points", 0.08, 0.04, None),
    ("better by 2 points", 0.05, 0.03, None),
]


@dataclass
class Args:
    runs: int = 2000
    """Simulated sequential tests per case."""
    max_pairs: int = 680
    """Most pairs one test looks at (the size of robogate-68)."""
    confidence: float = 0.95
    """Confidence of both tests."""
    seed: int = 0
    """Base seed; case i uses seed + i."""
    batch_size: int = 40
    """Pairs between looks in compare's rule (robogate compare's default)."""


def compare_rule_errors(p_discordant: float, args: Args, seed: int) -> tuple[float, float]:
    """Wrong verdicts of compare's rule (stop when the sequential test decides at a look, else the fixed-budget
    test on every pair) and of the fixed-budget test alone, with no difference between the policies."""
    n = args.max_pairs
    kinds = np.random.default_rng(seed).choice(3, size=(args.runs, n), p=[p_discordant / 2, p_discordant / 2,
                                                                        1 - p_discordant])
    wins, losses = np.cumsum(kinds == 0, axis=1), np.cumsum(kinds == 1, axis=1)
    looks = np.arange(args.batch_size, n, args.batch_size)  # the looks before the last pair
    sizes = np.broadcast_to(looks, (args.runs, len(looks)))
    early = (sequential_verdicts(wins[:, looks - 1], losses[:, looks - 1], sizes, args.confidence)
             != "undecided").any(axis=1)
    fixed = np.array([decide(int(w), int(c), n, args.confidence).verdict != "undecided"
                      for w, c in zip(wins[:, -1], losses[:, -1])])
    return float((early | fixed).mean()), float(fixed.mean())


def main() -> None:
    args = parse(Args, __doc__)
    print(f"{args.runs} runs per case, a look after every pair, at most {args.max_pairs} pairs, "
          f"confidence {args.confidence}")
    print(f"{'case':<38} {'wrong':>6} {'right':>6} {'mean pairs':>10} {'McNemar at mean':>15} "
          f"{'McNemar at max':>14}  seconds")
    for i, (label, p_win, p_loss, margin) in enumerate(CASES):
        start = time.perf_counter()
        verdicts, stops = simulate_sequential(p_win, p_loss, args.max_pairs, args.runs, args.seed + i,
                                              args.confidence, margin)
        if margin is not None:  # at the margin, passing it ("not worse", "better") is the wrong verdict
            wrong = np.isin(verdicts, ["better", "not worse"]).mean()
            right, fixed_mean, fixed_max = float("nan"), "", ""
        elif p_win == p_loss:
            wrong = np.isin(verdicts, ["better", "worse"]).mean()
            right, fixed_mean, fixed_max = float("nan"), "", ""
        else:
            wrong, right = (verdicts == "worse").mean(), (verdicts == "better").mean()
            budget = int(math.ceil(stops.mean()))
            fixed_mean = f"{mcnemar_power(p_win, p_loss, budget, args.confidence):.3f}"
            fixed_max = f"{mcnemar_power(p_win, p_loss, args.max_pairs, args.confidence):.3f}"
        print(f"{label:<38} {wrong:6.3f} {right:6.3f} {stops.mean():10.0f} {fixed_mean:>15} {fixed_max:>14}"
              f"  {time.perf_counter() - start:6.1f}", flush=True)
    print(f"\ncompare's rule, no difference: a look every {args.batch_size} pairs, else McNemar at {args.max_pairs}")
    print(f"{'discordant':>10} {'wrong, the rule':>16} {'wrong, McNemar alone':>21}")
    for i, p_discordant in enumerate((0.04, 0.2, 0.6)):
        rule, alone = compare_rule_errors(p_discordant, args, args.seed + len(CASES) + i)
        print(f"{p_discordant:10.0%} {rule:16.3f} {alone:21.3f}", flush=True)


if __name__ == "__main__":
    main()
