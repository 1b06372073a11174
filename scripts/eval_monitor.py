"""Evaluate the failure monitor on a learned policy's rollouts, beside FIPER's published figures.

Records (or reuses, from ``--out/rollouts/<set>/rollouts.parquet``) rollouts of the policy:

- ``fit``: episodes spread over the policy's training envelope; their successes fit the
  monitor's scores (one half) and calibrate its thresholds (the other half);
- ``validation``: envelope episodes plus shifted ones; each alarm variant (AND, OR, RND alone,
  ACE alone) chooses its window, alpha and threshold style here;
- ``test``: fresh envelope ("in-distribution") and shifted episodes, reported only.

A shifted episode starts from an envelope scenario and moves one or two parameters outside
the envelope (ranges in ``SHIFTS``): some of those episodes still succeed (benign novelty),
the rest fail through the physics. Every set has its own seeds. Prints the test table, the
false-alarm rate on held-out successes against alpha and the median lead time, and writes
``--out/report/report.html`` and the chosen AND monitor to ``--out/monitor``.

    python scripts/eval_monitor.py [--env robogate/PickPlace-Panda-v0] [--policy flow]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import dataclass, fields
from pathlib import Path

from robogate.demos import training_envelope
from robogate.monitor import FailureMonitor
from robogate.monitor.evaluation import ALL, ScoredSet, evaluate
from robogate.monitor.recording import ROLLOUTS_FILE, load_rollouts, record_rollouts
from robogate.monitor.report import COLUMNS, FIPER, false_alarm_table, write_monitor_report
from robogate.runner import make_policy
from robogate.shifts import SHIFT_REGIONS as SHIFTS, Shift


@dataclass
class Args:
    env: str = "robogate/PickPlace-Panda-v0"
    """Env id."""
    policy: str = "flow"
    """Policy spec: 'flow' (the shipped checkpoint), 'flow:PATH' or 'package.module:Factory'."""
    out: str = "runs/monitor_eval"
    """Folder for the rollouts, the monitor and the report."""
    fit: int = 120
    """Envelope episodes whose successes fit and calibrate the monitor."""
    validation: int = 60
    """Envelope episodes and, as many again, shifted episodes for choosing settings."""
    test: int = 150
    """Envelope episodes and, as many again, shifted episodes for the report."""
    chunks: int = 32
    """Action chunks sampled per step (B)."""
    workers: int = 2
    """Recording processes."""
    seed: int = 0
    """Base seed of every set."""


def parse_args() -> Args:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for f in fields(Args):
        parser.add_argument(f"--{f.name}", type=type(f.default), default=f.default)
    return Args(**vars(parser.parse_args()))


def shifted_scenarios(n: int, envelope: dict | None, seed: int) -> list[dict]:
    """Envelope scenarios with one or two parameters moved into :data:`SHIFTS`."""
    return Shift(training_envelope(envelope), SHIFTS, factors=(1, 2)).sample(n, seed)


def rollouts(args: Args, name: str, episodes: int, params, seed: int) -> list:
    """The rollouts of set ``name``: read from its file when recorded before, else recorded now."""
    folder = Path(args.out) / "rollouts" / name
    if (folder / ROLLOUTS_FILE).exists():
        found = load_rollouts(folder)
        if len(found) >= episodes:
            return found[:episodes]
    recorded = record_rollouts(args.env, args.policy, episodes, params, seed, args.chunks,
                               workers=args.workers, progress=True, out=folder)
    return recorded


def outcome_mix(items) -> str:
    return ", ".join(f"{k} {v}" for k, v in Counter(r.outcome for r in items).most_common())


def main() -> None:
    args = parse_args()
    envelope = getattr(make_policy(args.policy), "envelope", None)
    base = 1000 * args.seed
    sets = {
        "fit": rollouts(args, "fit", args.fit, None, base + 1),
        "validation-in": rollouts(args, "validation-in", args.validation, None, base + 2),
        "validation-shifted": rollouts(args, "validation-shifted", args.validation,
                                       shifted_scenarios(args.validation, envelope, base + 3), base + 3),
        "in-distribution": rollouts(args, "in-distribution", args.test, None, base + 4),
        "shifted": rollouts(args, "shifted", args.test, shifted_scenarios(args.test, envelope, base + 5), base + 5),
    }
    for name, items in sets.items():
        print(f"{name:>18}: {len(items)} rollouts ({outcome_mix(items)})")

    monitor = FailureMonitor(alpha=0.05, window=5, seed=args.seed).fit(sets["fit"])
    print(f"monitor fitted on {monitor.n_fit_} and calibrated on {monitor.n_calibration_} successes; "
          f"scores {list(monitor.scores_)}")
    validation = ScoredSet.join("validation", [ScoredSet.score(monitor, "validation-in", sets["validation-in"]),
                                               ScoredSet.score(monitor, "validation-shifted",
                                                               sets["validation-shifted"])])
    tests = [ScoredSet.score(monitor, name, sets[name]) for name in ("in-distribution", "shifted")]
    chosen, results, grids = evaluate(monitor, tests, validation, progress=True)

    print()
    print(results[[c for c in COLUMNS if c in results.columns]].to_string(index=False, float_format="{:.3f}".format))
    main_rows = results[results["test_set"] == ALL].set_index("variant")
    print(f"\nFIPER (published, AND, mean of five tasks): accuracy {FIPER['accuracy']:.2f}, TPR {FIPER['tpr']:.2f}")
    for variant, row in main_rows.iterrows():
        print(f"{variant:>4} here ({ALL}): accuracy {row['accuracy']:.3f}, balanced {row['balanced_accuracy']:.3f}, "
              f"TPR {row['tpr']:.3f}, TNR {row['tnr']:.3f}, ROC-AUC {row['roc_auc']:.3f}, "
              f"median lead {row['lead_time_median_s']:.2f} s")
    print("\nfalse alarms on held-out in-distribution successes:")
    print(false_alarm_table(chosen, tests[0]).to_string(index=False, float_format="{:.3f}".format))

    out = Path(args.out)
    chosen["AND" if "AND" in chosen else next(iter(chosen))].save(out / "monitor")
    notes = [f"Policy {args.policy} on {args.env}; rollouts recorded with B = {args.chunks} sampled chunks per step.",
             "Sets: " + "; ".join(f"{name}: {len(items)} rollouts ({outcome_mix(items)})" for name, items in sets.items()),
             f"Monitor scores fitted on {monitor.n_fit_} successes of 'fit' and calibrated on the other "
             f"{monitor.n_calibration_}. Shifted episodes move one or two parameters out of the training envelope: "
             + json.dumps({k: list(v) for k, v in SHIFTS.items()})]
    path = write_monitor_report(out / "report", chosen, results, grids, tests, title=f"Failure monitor on {args.env}",
                                notes=notes)
    results.to_csv(out / "results.csv", index=False)
    print(f"\nreport: {path}")


if __name__ == "__main__":
    main()
