"""Evaluate the failure monitor on a learned policy's rollouts, over families of scenes, beside FIPER and SAFE.

Records (or reuses, from ``--out/rollouts/<set>/rollouts.parquet``) rollouts of the policy:

- ``fit``: episodes spread over the policy's training envelope; their successes fit every
  registered score (one half) and calibrate the thresholds (the other half);
- ``validation``: envelope episodes, one-factor shifts (each parameter in turn moved just
  outside the envelope) and two-factor shifts; every variant chooses its settings here, and
  the best variant its scores and combination too;
- ``test``: fresh envelope episodes (their successes test the false-alarm guarantee),
  one-factor and two-factor shifts, and a far shift (a 9.5 cm cylinder, 0.9 kg, three
  obstacles, the high raised target), reported only.

Shifted episodes that succeed are the *benign* shifts (the TNR on them says whether the monitor
mistakes novelty for failure); those that fail are the *failing* shifts. Every set has its own
seeds. Prints the test table, detection per failure type, the false-alarm rate on held-out
in-envelope successes against alpha, and writes ``--out/report/report.html``, ``results.csv``,
``validation_grid.csv`` and the monitor with the library's default settings to ``--out/monitor``.

    python scripts/eval_monitor.py [--env robogate/PickPlace-Panda-v0] [--policy flow]
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from flags import parse
from robogate.execution.specs import make_policy
from robogate.monitor import FailureMonitor, scores
from robogate.monitor.evaluation import ALL, BEST, ScoredSet, evaluate, headline, outcome_rates
from robogate.monitor.metrics import episode_table
from robogate.reports.monitor import COLUMNS, FIPER, SAFE, false_alarm_table, write_monitor_report
from robogate.scenarios.shifts import SHIFT_REGIONS as TWO_FACTOR
from robogate.scenarios.shifts import Shift, one_factor_shifts
from robogate.training.demonstrations import training_envelope
from rollout_cache import cached_rollouts

FAR = {"shape": "cylinder", "size": 0.095, "mass": 0.9, "obstacles": 3, "placement": "raised_high"}
"""A scene far outside the envelope, in every dimension the policy's geometry depends on."""


@dataclass
class Args:
    env: str = "robogate/PickPlace-Panda-v0"
    """Env id."""
    policy: str = "flow"
    """Policy spec: 'flow' (the shipped checkpoint), 'flow:PATH' or 'package.module:Factory'."""
    out: str = "runs/monitor_eval"
    """Folder for the rollouts, the monitor and the report."""
    fit: int = 200
    """Envelope episodes whose successes fit and calibrate the monitor."""
    validation: int = 100
    """Envelope episodes for choosing settings; 1.6x as many one-factor and as many two-factor shifts."""
    test: int = 200
    """Envelope episodes for the report; 1.2x as many one-factor, 0.75x two-factor shifts, 50 far."""
    workers: int = 2
    """Recording processes."""
    seed: int = 0
    """Base seed of every set."""


def one_factor(n: int, envelope, seed: int) -> list[dict]:
    """Envelope scenarios with one parameter at a time moved just outside the envelope."""
    return one_factor_shifts(training_envelope(envelope)).sample(n, seed)


def two_factor(n: int, envelope: dict | None, seed: int) -> list[dict]:
    """Envelope scenarios with two parameters moved into :data:`TWO_FACTOR`."""
    return Shift(training_envelope(envelope), TWO_FACTOR, factors=2).sample(n, seed)


def rollouts(args: Args, name: str, episodes: int, params, seed: int) -> list:
    """The rollouts of set ``name`` (recorded once under ``--out/rollouts/<name>``)."""
    return cached_rollouts(Path(args.out) / "rollouts" / name, args.env, args.policy, episodes, params, seed,
                           args.workers)


def pool_swap(pools: dict[str, list], seed: int) -> pd.DataFrame:
    """The default monitor calibrated on each in-envelope pool in turn, its false-alarm rate on the
    successes of the others: how far one calibration pool's rate scatters around alpha."""
    rows = []
    for cal_name, cal in pools.items():
        monitor = FailureMonitor(seed=seed).fit(cal)
        for test_name, test in pools.items():
            if test_name != cal_name:
                successes = [r for r in test if r.success]
                alarms = int(episode_table(monitor, successes)["alarm_step"].notna().sum())
                rows.append({"calibrated on": cal_name, "tested on": test_name, "successes": len(successes),
                             "false_alarms": alarms, "rate": alarms / len(successes)})
    return pd.DataFrame(rows)


def outcome_mix(items) -> str:
    return ", ".join(f"{k} {v}" for k, v in Counter(r.outcome for r in items).most_common())


def main() -> None:
    args = parse(Args, __doc__)
    envelope = getattr(make_policy(args.policy), "envelope", None)
    base = 1000 * args.seed
    n_val, n_test = args.validation, args.test
    sets = {
        "fit": rollouts(args, "fit", args.fit, None, base + 1),
        "validation in-envelope": rollouts(args, "validation-in", n_val, None, base + 2),
        "validation one-factor": rollouts(args, "validation-one-factor", int(1.6 * n_val),
                                          one_factor(int(1.6 * n_val), envelope, base + 3), base + 3),
        "validation two-factor": rollouts(args, "validation-two-factor", n_val, two_factor(n_val, envelope, base + 4),
                                          base + 4),
        "in-envelope": rollouts(args, "test-in", n_test, None, base + 5),
        "one-factor shifts": rollouts(args, "test-one-factor", int(1.2 * n_test),
                                      one_factor(int(1.2 * n_test), envelope, base + 6), base + 6),
        "two-factor shifts": rollouts(args, "test-two-factor", int(0.75 * n_test),
                                      two_factor(int(0.75 * n_test), envelope, base + 7), base + 7),
        "far shift": rollouts(args, "test-far", 50, FAR, base + 8),
    }
    for name, items in sets.items():
        print(f"{name:>24}: {len(items)} rollouts ({outcome_mix(items)})")

    every = scores.usable([r for r in sets["fit"] if r.success])
    fitted = FailureMonitor(scores=every, seed=args.seed).fit(sets["fit"])
    default = fitted.as_default()
    print(f"scores {list(fitted.score_objects_)} fitted on {fitted.n_fit_} and calibrated on "
          f"{fitted.n_calibration_} successes; library default: {default.describe()}")
    validation = ScoredSet.join("validation", [ScoredSet.score(fitted, name, sets[name]) for name in sets
                                               if name.startswith("validation")])
    tests = [ScoredSet.score(fitted, name, sets[name], in_envelope=name == "in-envelope")
             for name in ("in-envelope", "one-factor shifts", "two-factor shifts", "far shift")]
    chosen, results, grids = evaluate(default, tests, validation, progress=True)

    print()
    print(results[[c for c in COLUMNS if c in results.columns]].to_string(index=False, float_format="{:.3f}".format))
    print()
    print(headline(chosen, tests).to_string(index=False, float_format="{:.3f}".format))
    print(f"\nFIPER (published, AND, mean of five tasks): accuracy {FIPER['accuracy']:.2f}, TPR {FIPER['tpr']:.2f}; "
          f"SAFE (published, unseen tasks, simulation): ROC-AUC {SAFE['roc_auc'][0]:.2f}-{SAFE['roc_auc'][1]:.2f}")
    print(f"best on validation: {chosen[BEST].describe()}")
    joined = ScoredSet.join(ALL, tests)
    print("\ndetection per failure type (library default, all test rollouts):")
    print(outcome_rates(default, joined).to_string(index=False, float_format="{:.3f}".format))
    print("\nfalse alarms on held-out in-envelope successes:")
    print(false_alarm_table(chosen, tests[0]).to_string(index=False, float_format="{:.3f}".format))

    swap = pool_swap({"fit": sets["fit"], "validation in-envelope": sets["validation in-envelope"],
                      "in-envelope": sets["in-envelope"]}, args.seed)
    print(f"\nthe default monitor (alpha {default.alpha:g}) calibrated on each in-envelope pool, tested on the others "
          f"(mean rate {swap['rate'].mean():.3f}):")
    print(swap.to_string(index=False, float_format="{:.3f}".format))

    out = Path(args.out)
    default.save(out / "monitor")
    notes = [f"Policy {args.policy} on {args.env}; rollouts recorded with 32 sampled chunks per step.",
             "Sets: " + "; ".join(f"{name}: {len(items)} rollouts ({outcome_mix(items)})" for name, items in sets.items()),
             f"Scores fitted on {fitted.n_fit_} successes of 'fit' and calibrated on the other {fitted.n_calibration_}. "
             "One-factor shifts move one parameter at a time to the widest stretch of its range outside the training "
             "envelope; two-factor shifts move two parameters into " + json.dumps({k: list(v) for k, v in
                                                                                   TWO_FACTOR.items()})
             + f"; the far shift is {FAR}.",
             f"Calibration pools: the default monitor (alpha {default.alpha:g}) calibrated on each of the three "
             "in-envelope pools in turn has false-alarm rates "
             + ", ".join(f"{r['rate']:.3f}" for _, r in swap.iterrows())
             + f" on the successes of the other two (mean {swap['rate'].mean():.3f}): one pool's rate scatters "
             "around alpha, as a marginal guarantee allows."]
    path = write_monitor_report(out / "report", chosen, results, grids, tests, title=f"Failure monitor on {args.env}",
                                notes=notes)
    results.to_csv(out / "results.csv", index=False)
    grids[BEST].to_csv(out / "validation_grid.csv", index=False)
    print(f"\nreport: {path}")


if __name__ == "__main__":
    main()
