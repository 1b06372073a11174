"""Abort and retry, measured: does stopping on the monitor's alarm shorten a production cell's makespan?

The shipped flow policy on the Panda, watched by the default monitor (``FailureMonitor()`` fitted on
``--fit`` rollouts of the training envelope). For each scene mix a production cell attempts every task
until it succeeds (new seeds of the task's scene, a ``--reset`` after every attempt that does not
succeed, at most ``--max-attempts``):

- ``validation``: ``--validation`` tasks run to the end and recorded: the labelled rollouts the closed
  form's inputs, the threshold and the verdict come from (:func:`choose_threshold`);
- ``test``: ``--test`` fresh tasks run three ways on the same seeds: to the end, stopping on the default
  monitor's alarm, and stopping at the threshold chosen on validation. Their paired difference is the
  measured saving; nothing measured here chose anything.

Mixes: the training envelope; a benign shift (friction or mass outside the envelope, where the policy
still succeeds); a failing shift (a calibration error of 6-25 mm, ``ik_noise``); and a mix of the two
with ``--mix-share`` of its tasks from the failing shift. On the mix the default monitor also runs at
every ``--curve-alphas`` for the report's measured curve. Prints the tables and writes
``--out/report/report.html``; production runs are kept under ``--out/runs`` and reused.

    python scripts/eval_makespan.py [--test 300] [--workers 2]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from flags import parse
from robogate.datasets.episodes import read_episodes, save_episodes
from robogate.execution.executors import LocalExecutor
from robogate.execution.trial import cached_env
from robogate.monitor import FailureMonitor, ProductionRun, choose_threshold, estimate_makespan, paired_makespan
from robogate.monitor import run_production as production
from robogate.reports.document import Document
from robogate.reports.makespan import MEASURED_COLUMNS, add_makespan_section
from robogate.scenarios.env_contract import recording_facts
from robogate.scenarios.shifts import SHIFT_REGIONS, Shift
from robogate.training.demonstrations import training_envelope
from rollout_cache import cached_rollouts

ROLLOUTS = "rollouts.parquet"


@dataclass
class Args:
    env: str = "robogate/PickPlace-Panda-v0"
    """Env id."""
    policy: str = "flow"
    """Policy spec."""
    out: str = "runs/makespan_eval"
    """Folder for the rollouts, the production runs and the report."""
    fit: int = 200
    """Envelope episodes whose successes fit and calibrate the default monitor."""
    validation: int = 200
    """Validation tasks per mix (run to the end, recorded)."""
    test: int = 300
    """Test tasks per mix (each run three ways on the same seeds)."""
    reset: float = 2.0
    """Seconds to reset the cell after an attempt that did not succeed."""
    max_attempts: int = 20
    """Attempt budget per task."""
    mix_share: float = 0.2
    """Share of the mix's tasks drawn from the failing shift (the rest from the envelope)."""
    curve_alphas: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2, 0.3)
    """Alphas the default monitor also runs at on the mix's test tasks (the report's measured curve)."""
    resets: tuple[float, ...] = (0.0, 1.0, 2.0, 5.0, 10.0)
    """Reset times the measured runs are also accounted at."""
    workers: int = 2
    """Worker processes."""
    seed: int = 0
    """Base seed."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.mix_share <= 1.0:
            raise ValueError(f"--mix-share must lie in [0, 1], got {self.mix_share}")


def mixes(share: float) -> dict:
    """Scene generators ``f(n, seed) -> list of params`` of each mix."""
    envelope = training_envelope(None)
    benign = Shift(envelope, {k: SHIFT_REGIONS[k] for k in ("friction", "mass")}, name="benign")
    failing = Shift(envelope, {"ik_noise": SHIFT_REGIONS["ik_noise"]}, name="failing")

    def mix(n: int, seed: int) -> list[dict]:
        inside, outside = envelope.sample(n, seed), failing.sample(n, seed + 1)
        pick = np.random.default_rng(seed + 2).random(n) < share
        return [outside[i] if pick[i] else inside[i] for i in range(n)]

    return {"in-envelope": envelope.sample, "benign shift": benign.sample, "failing shift": failing.sample,
            f"mix ({share:.0%} failing shift)": mix}


def cached_run(folder: Path, args: Args, pool, scenes: list[dict], seed: int, monitor=None,
               record: bool = False) -> ProductionRun:
    """A production run, read back from ``folder`` when it holds exactly this run, else run and stored there."""
    key = {"env": args.env, "policy": args.policy, "monitor": None if monitor is None else
           {"describe": monitor.describe(), "thresholds": {n: t.to_dict() for n, t in monitor.thresholds_.items()}},
           "tasks": len(scenes), "seed": seed, "max_attempts": args.max_attempts, "record": record,
           "scenes": json.loads(pd.DataFrame(scenes).to_json(orient="records"))}
    meta = folder / "run.json"
    if meta.is_file() and json.loads(meta.read_text())["key"] == key:
        stored = json.loads(meta.read_text())
        recordings = read_episodes(folder / ROLLOUTS)[0] if record else None
        return ProductionRun(stored["env_id"], stored["policy"], stored["monitor"], args.reset, args.max_attempts,
                             stored["control_hz"], pd.read_parquet(folder / "attempts.parquet"),
                             pd.read_parquet(folder / "tasks.parquet"), recordings).with_reset(args.reset)
    run = production(args.env, args.policy, monitor, tasks=len(scenes), params=scenes, seed=seed,
                     reset_time=args.reset, max_attempts=args.max_attempts, record=record, executor=pool,
                     progress=True)
    folder.mkdir(parents=True, exist_ok=True)
    run.attempts.to_parquet(folder / "attempts.parquet")
    run.tasks.to_parquet(folder / "tasks.parquet")
    if record:
        (folder / ROLLOUTS).unlink(missing_ok=True)
        save_episodes(folder, ROLLOUTS, run.recordings, {"env_id": args.env, "policy": args.policy},
                      facts=recording_facts(cached_env(args.env), args.env))
    meta.write_text(json.dumps({"key": key, "env_id": run.env_id, "policy": run.policy, "monitor": run.monitor,
                                "control_hz": run.control_hz}))
    return run


def interval(low: float, high: float, digits: int = 2) -> str:
    return f"[{low:.{digits}f}, {high:.{digits}f}]"


def inside(value: float, bounds: tuple[float, float]) -> bool:
    return bool(bounds[0] <= value <= bounds[1])


def measured_row(alpha: float, paired) -> dict:
    return dict(zip(MEASURED_COLUMNS, (alpha, paired.baseline, *paired.baseline_interval, paired.candidate,
                                       *paired.candidate_interval)))


def main() -> None:
    args = parse(Args, __doc__)
    out = Path(args.out)
    base = 1000 * args.seed
    fit = cached_rollouts(out / "rollouts" / "fit", args.env, args.policy, args.fit, None, base + 1, args.workers,
                          n_chunks=0)
    default = FailureMonitor(seed=args.seed).fit(fit)
    print(f"default monitor: {default.describe()}")
    headline, decisions, resets, reports = [], [], [], []
    with LocalExecutor(args.workers) as pool:
        for index, (name, scenes_of) in enumerate(mixes(args.mix_share).items()):
            slug = name.split(" (")[0].replace(" ", "-")
            val_seed, test_seed = base + 10 + index, base + 20 + index
            val = cached_run(out / "runs" / slug / "validation", args, pool, scenes_of(args.validation, val_seed),
                             val_seed, record=True)
            test_scenes = scenes_of(args.test, test_seed)
            none = cached_run(out / "runs" / slug / "test-run-to-end", args, pool, test_scenes, test_seed, record=True)
            watched = cached_run(out / "runs" / slug / f"test-alpha-{default.alpha:g}", args, pool, test_scenes,
                                 test_seed, default)
            predicted = estimate_makespan(val.rollouts, default, args.reset, seed=args.seed)
            decision = choose_threshold(val.rollouts, default, args.reset, seed=args.seed)
            chosen = watched if decision.alpha == default.alpha else cached_run(
                out / "runs" / slug / f"test-alpha-{decision.alpha:g}", args, pool, test_scenes, test_seed,
                decision.monitor)
            paired = paired_makespan(none, watched, seed=args.seed)
            paired_chosen = paired_makespan(none, chosen, seed=args.seed)
            test_curve = choose_threshold(none.rollouts, default, args.reset, seed=args.seed).curve
            at_chosen = test_curve[test_curve["alpha"] == decision.alpha].iloc[0]
            failing = 1.0 - none.attempts["success"].mean()
            headline.append({
                "mix": name, "tasks": args.test, "failing attempts": f"{failing:.0%}",
                "run to the end (s)": f"{paired.baseline:.2f} {interval(*paired.baseline_interval)}",
                "predicted": f"{predicted.run_to_end:.2f}",
                f"stop on alarm, alpha {default.alpha:g} (s)": f"{paired.candidate:.2f} "
                                                             f"{interval(*paired.candidate_interval)}",
                "predicted ": f"{predicted.stop_on_alarm:.2f}",
                "saving (s)": f"{paired.saving:+.2f} {interval(*paired.interval)}",
                "saving (%)": f"{paired.relative_saving:+.1%} {interval(*paired.relative_interval, 3)}",
                "predicted saving (s)": f"{predicted.saving:+.2f} {interval(*predicted.intervals['saving'])}",
                "prediction inside": "/".join("yes" if ok else "no" for ok in (
                    inside(predicted.run_to_end, paired.baseline_interval),
                    inside(predicted.stop_on_alarm, paired.candidate_interval),
                    inside(predicted.saving, paired.interval))),
            })
            decisions.append({
                "mix": name, "tool (validation)": decision.verdict, "alpha": decision.alpha,
                "predicted saving (s)": f"{decision.estimate.saving:+.2f} "
                                        f"{interval(*decision.estimate.intervals['saving'])}",
                "test rollouts (s)": f"{at_chosen['saving']:+.2f} {interval(at_chosen['saving_low'], at_chosen['saving_high'])}",
                "measured saving (s)": f"{paired_chosen.saving:+.2f} {interval(*paired_chosen.interval)}",
                "measured (%)": f"{paired_chosen.relative_saving:+.1%} {interval(*paired_chosen.relative_interval, 3)}",
                "stopped / attempts": f"{int(chosen.attempts['stopped'].sum())} / {len(chosen.attempts)}",
                "unfinished tasks": f"{int((~none.tasks['completed']).sum())} / {int((~chosen.tasks['completed']).sum())}",
            })
            print(f"\n{name}: {decision.verdict} at alpha {decision.alpha:g}. {decision.reason}")
            for reset in args.resets:
                at = paired_makespan(none.with_reset(reset), watched.with_reset(reset), seed=args.seed)
                guess = estimate_makespan(val.rollouts, default, reset, seed=args.seed)
                resets.append({"mix": name, "reset (s)": reset,
                               "measured saving (%)": f"{at.relative_saving:+.1%} {interval(*at.relative_interval, 3)}",
                               "predicted saving (%)": f"{guess.makespan.relative_saving:+.1%}"})
            measured = [measured_row(default.alpha, paired)]
            if decision.alpha != default.alpha:
                measured.append(measured_row(decision.alpha, paired_chosen))
            if name.startswith("mix"):
                for alpha in args.curve_alphas:
                    if alpha in (default.alpha, decision.alpha):
                        continue
                    run = cached_run(out / "runs" / slug / f"test-alpha-{alpha:g}", args, pool, test_scenes,
                                     test_seed, default.recalibrate(alpha=alpha))
                    measured.append(measured_row(alpha, paired_makespan(none, run, seed=args.seed)))
            reports.append((name, decision, test_curve, pd.DataFrame(measured).sort_values("alpha")))

    pd.set_option("display.width", 250)
    print(f"\nMeasured on {args.test} test tasks per mix (reset {args.reset:g} s, at most {args.max_attempts} attempts; "
          f"95 % paired bootstrap intervals over tasks); predicted from {args.validation} validation tasks run to the "
          "end. 'prediction inside': run to the end / stop on alarm / saving inside the measured interval.")
    print(pd.DataFrame(headline).to_string(index=False))
    print("\nThe tool's verdict and threshold (chosen on validation), checked on the test tasks "
          "(unfinished tasks: run to the end / stopping at the chosen alpha):")
    print(pd.DataFrame(decisions).to_string(index=False))
    print(f"\nThe default monitor (alpha {default.alpha:g}) with other reset times (the same runs, accounted again):")
    print(pd.DataFrame(resets).pivot(index="reset (s)", columns="mix").to_string())

    doc = Document(f"Abort and retry: {args.policy} on {args.env}")
    doc.text(f"Default monitor: {default.describe()}. Each mix: {args.validation} validation tasks run to the end "
             f"(the labelled rollouts of the prediction and the decision) and {args.test} test tasks run to the end "
             "and stopping on alarm on the same seeds (measured). Reset "
             f"{args.reset:g} s, at most {args.max_attempts} attempts per task.")
    doc.heading("Measured and predicted")
    doc.table(pd.DataFrame(headline))
    doc.table(pd.DataFrame(decisions))
    for name, decision, test_curve, measured in reports:
        add_makespan_section(doc, decision, test_curve=test_curve, measured=measured, heading=name,
                             figure="makespan-" + name.split(" (")[0].replace(" ", "-"))
    print(f"\nreport: {doc.write(out / 'report')}")


if __name__ == "__main__":
    main()
