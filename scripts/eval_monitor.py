"""Evaluate the failure monitor on a learned policy's rollouts, over families of scenes, beside FIPER and SAFE.

Records (or reuses, from ``--out/rollouts/<set>/rollouts.parquet``) rollouts of the policy:

- ``fit``: episodes spread over the policy's training envelope; their successes fit every
  registered score (one half) and calibrate the thresholds (the other half);
- ``validation``: envelope episodes, one-factor shifts (each parameter in turn moved just
  outside the envelope), two-factor shifts and the physical families below; every variant
  chooses its settings here, the best variant its scores and combination too, and the
  dynamics score its inputs, target and variance floor;
- ``test``: fresh envelope episodes (their successes test the false-alarm guarantee),
  one-factor and two-factor shifts, and a far shift (a 9.5 cm cylinder, 0.9 kg, three
  obstacles, the high raised target), reported only; a further pool of envelope episodes
  for the re-splits;
- physical families, a validation and a test set each: slips (a low-friction, heavy object),
  calibration errors (a 15 mm ``ik_noise``), sensor noise (encoder- and camera-sized noise on
  every observation, :mod:`robogate.envs.sensor_noise`) and an object wider than the gripper
  (``size`` 0.11).

Shifted episodes that succeed are the *benign* shifts (the TNR on them says whether the monitor
mistakes novelty for failure); those that fail are the *failing* shifts. Every set has its own
seeds. Prints the test table (also on episodes cut to a common horizon), both error rates per
family with one-sided bounds and the share caught before the failure event (beside the trained
failure predictor with and without the dynamics score, given ``--predictor``), detection per
failure type, thresholds that bound the miss rate and what they cost, the false-alarm rate on
held-out in-envelope successes against alpha beside the range the calibration size implies and
the rate over re-splits of real rollouts (marginal and at a stated confidence), and writes
``--out/report/report.html``, ``results.csv``, ``families.csv``, ``resplits.csv``,
``validation_grid.csv`` and the monitor with the library's default settings to ``--out/monitor``.

    python scripts/eval_monitor.py [--env robogate/PickPlace-Panda-v0] [--policy flow] [--predictor DIR]
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from flags import parse
from robogate.analysis.stats import clopper_pearson
from robogate.execution.specs import make_policy
from robogate.monitor import DEFAULT_SCORES, FailureMonitor, FailurePredictor, scores
from robogate.monitor.evaluation import ALL, BEST, ScoredSet, evaluate, headline, outcome_rates, select_settings
from robogate.monitor.guarantee import resplit_false_alarms
from robogate.monitor.metrics import common_horizon, episode_table, summarize
from robogate.monitor.misses import detection_table
from robogate.monitor.scores import DynamicsConsistency
from robogate.reports.monitor import COLUMNS, FIPER, SAFE, false_alarm_table, write_monitor_report
from robogate.scenarios.shifts import SHIFT_REGIONS as TWO_FACTOR
from robogate.scenarios.shifts import Shift, one_factor_shifts
from robogate.training.demonstrations import training_envelope
from rollout_cache import cached_rollouts

FAR = {"shape": "cylinder", "size": 0.095, "mass": 0.9, "obstacles": 3, "placement": "raised_high"}
"""A scene far outside the envelope, in every dimension the policy's geometry depends on."""
SLIPS = {"friction": (0.15, 0.3), "mass": (0.8, 1.6)}
"""Slips: a low-friction, heavy object (both moved at once), which slides out of the grasp."""
CALIBRATION_ERROR = 0.015
"""Calibration errors: ``ik_noise`` of 15 mm, the arm's unseen offset drawn per episode."""
WIDE = 0.11
"""The blind spot: an object wider than the gripper's reach around it (``size`` 0.11 m)."""
SENSOR_NOISE_ENV = "robogate.envs.sensor_noise:robogate/PickPlace-{arm}-SensorNoise-v0"
"""Sensor noise: the same env with encoder- and camera-sized noise on every observation."""
FAMILIES = ("slips", "calibration errors", "sensor noise", "wide object")
"""The physical families, each a validation and a test set of its own."""


VALIDATION_SIZES = {"slips": 0.6, "calibration errors": 1.0, "sensor noise": 0.6, "wide object": 0.3}
"""Validation episodes of each family, per ``--validation`` envelope episode."""
TEST_SIZES = {"slips": 0.5, "calibration errors": 0.75, "sensor noise": 0.5, "wide object": 0.25}
"""Test episodes of each family, per ``--test`` envelope episode."""
DYNAMICS = [{"inputs": inputs, "target": target, "floor": floor} for inputs in ("observation+action", "observation")
            for target in ("next", "object") for floor in (0.1, 0.3)]
"""The dynamics score's configurations, one chosen on validation."""
MISS_RATE = 0.1
"""The miss rate the family thresholds are asked to bound."""
PHYSICAL = ("slips", "calibration errors", "wide object")
"""The failing families a threshold bounding the miss rate is set for."""


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
    predictor: str | None = None
    """A FailurePredictor folder ('robogate monitor train', e.g. scripts/eval_predictor.py's) to report beside
    the scores, alone and OR the dynamics score; its threshold is calibrated on the fit set's successes."""
    repeats: int = 2000
    """Re-splits of the in-envelope successes per setting."""


def one_factor(n: int, envelope, seed: int) -> list[dict]:
    """Envelope scenarios with one parameter at a time moved just outside the envelope."""
    return one_factor_shifts(training_envelope(envelope)).sample(n, seed)


def two_factor(n: int, envelope: dict | None, seed: int) -> list[dict]:
    """Envelope scenarios with two parameters moved into :data:`TWO_FACTOR`."""
    return Shift(training_envelope(envelope), TWO_FACTOR, factors=2).sample(n, seed)


def rollouts(args: Args, name: str, episodes: int, params, seed: int, env: str | None = None) -> list:
    """The rollouts of set ``name`` (recorded once under ``--out/rollouts/<name>``)."""
    return cached_rollouts(Path(args.out) / "rollouts" / name, env or args.env, args.policy, episodes, params, seed,
                           args.workers)


def family_scenes(family: str, n: int, envelope, seed: int) -> list[dict] | None:
    """The scenes of a physical family (None: the training envelope itself, as for sensor noise)."""
    base = training_envelope(envelope)
    if family == "slips":
        return Shift(base, SLIPS, factors=2, name=family).sample(n, seed)
    if family == "calibration errors":
        return [{**scene, "ik_noise": CALIBRATION_ERROR} for scene in base.sample(n, seed)]
    if family == "wide object":
        return [{**scene, "size": WIDE} for scene in base.sample(n, seed)]
    return None


def family_sets(args: Args, envelope, part: str, sizes: dict[str, int], base: int) -> dict[str, list]:
    """The rollouts of each physical family for ``part`` ("validation" or "test")."""
    out = {}
    for i, family in enumerate(FAMILIES):
        seed = base + 2 * i + (9 if part == "validation" else 10)
        arm = args.env.split("PickPlace-")[-1].split("-")[0]
        env = SENSOR_NOISE_ENV.format(arm=arm) if family == "sensor noise" else None
        out[f"{part} {family}" if part == "validation" else family] = rollouts(
            args, f"{part}-{family.replace(' ', '-')}", sizes[family],
            family_scenes(family, sizes[family], envelope, seed), seed, env)
    return out


def outcome_mix(items) -> str:
    return ", ".join(f"{k} {v}" for k, v in Counter(r.outcome for r in items).most_common())


def dynamics_name(config: dict) -> str:
    return f"dynamics[{config['inputs']}, {config['target']}, floor {config['floor']:g}]"


def choose_dynamics(fit: list, validation_sets: dict[str, list], seed: int) -> tuple[dict, pd.DataFrame]:
    """The dynamics configuration whose score alone does best on validation: settings by balanced accuracy
    with failures counted only when caught at or before their event (and TNR)."""
    candidates = []
    for config in DYNAMICS:
        score = DynamicsConsistency(**config, seed=seed)
        score.name = dynamics_name(config)
        candidates.append(score)
    monitor = FailureMonitor(scores=candidates, seed=seed).fit(fit)
    validation = ScoredSet.join("validation", [ScoredSet.score(monitor, n, r) for n, r in validation_sets.items()])
    rows = []
    for config, score in zip(DYNAMICS, candidates):
        chosen, grid = select_settings(monitor, validation, {"scores": (score.name,), "combine": "or"},
                                       objective="early_balanced_accuracy")
        best = grid[grid["chosen"]].iloc[0]
        rows.append({**config, "window": chosen.window, "alpha": chosen.alpha, "threshold": chosen.threshold,
                     "early_balanced_accuracy": best["early_balanced_accuracy"], "early_tpr": best["early_tpr"],
                     "tnr": best["tnr"], "roc_auc": best["roc_auc"]})
    table = pd.DataFrame(rows)
    return DYNAMICS[int(table["early_balanced_accuracy"].idxmax())], table


def family_rows(monitors: dict[str, FailureMonitor], families: list[ScoredSet], horizon: int) -> pd.DataFrame:
    """Both error rates per family for each monitor, on whole episodes and cut at the common horizon."""
    parts = []
    for name, monitor in monitors.items():
        full = detection_table(monitor, families)
        cut = detection_table(monitor, families, horizon)
        full.insert(1, "monitor", name)
        full["early_tpr_cut"], full["tpr_cut"], full["false_alarm_rate_cut"] = (
            cut["early_tpr"], cut["tpr"], cut["false_alarm_rate"])
        parts.append(full)
    return pd.concat(parts, ignore_index=True)


def miss_thresholds(monitor: FailureMonitor, validation: dict[str, list], tests: dict[str, ScoredSet],
                    in_envelope: ScoredSet) -> pd.DataFrame:
    """For each failing family: a threshold bounding the miss rate set on its validation failures, tested."""
    rows = []
    for family in PHYSICAL:
        try:
            bounded = monitor.bound_misses(validation[family], MISS_RATE)
        except ValueError as exc:  # too few validation failures for the rate
            print(f"{family}: {exc}")
            continue
        bound = bounded.miss_bound_
        test = tests[family]
        table = test.table(bounded)
        failed = ~table["success"].to_numpy(dtype=bool)
        missed = int(table["alarm_step"].isna().to_numpy()[failed].sum())
        inside = in_envelope.table(bounded)
        inside = inside[inside["success"]]
        alarms = int(inside["alarm_step"].notna().sum())
        rows.append({"family": family, "validation failures": bound.failures, "rank": bound.rank,
                     "miss rate asked": MISS_RATE, "test failures": int(failed.sum()),
                     "test miss rate": missed / max(int(failed.sum()), 1),
                     "miss upper (95 %)": float(clopper_pearson(missed, int(failed.sum()), 0.95, "less")[1]),
                     "caught before event": summarize(table)["early_tpr"],
                     "false alarms, calibration": bound.false_alarm_rate,
                     "false alarms, held-out in-envelope": alarms / max(len(inside), 1)})
    return pd.DataFrame(rows)


def show(title: str, table: pd.DataFrame) -> None:
    print(f"\n{title}\n{table.to_string(index=False, float_format='{:.3f}'.format)}")


def record_sets(args: Args, envelope) -> dict[str, list]:
    """Every set of rollouts: fit, validation (in-envelope, families, shifts) and test (the same, and a pool)."""
    base = 1000 * args.seed
    n_val, n_test = args.validation, args.test
    sets = {
        "fit": rollouts(args, "fit", args.fit, None, base + 1),
        "validation in-envelope": rollouts(args, "validation-in", n_val, None, base + 2),
    }
    sets.update(family_sets(args, envelope, "validation", {k: int(v * n_val) for k, v in VALIDATION_SIZES.items()},
                            base))
    sets.update({
        "validation one-factor": rollouts(args, "validation-one-factor", int(1.6 * n_val),
                                          one_factor(int(1.6 * n_val), envelope, base + 3), base + 3),
        "validation two-factor": rollouts(args, "validation-two-factor", n_val, two_factor(n_val, envelope, base + 4),
                                          base + 4),
        "in-envelope": rollouts(args, "test-in", n_test, None, base + 5),
    })
    sets.update(family_sets(args, envelope, "test", {k: int(v * n_test) for k, v in TEST_SIZES.items()}, base))
    sets.update({
        "one-factor shifts": rollouts(args, "test-one-factor", int(1.2 * n_test),
                                      one_factor(int(1.2 * n_test), envelope, base + 6), base + 6),
        "two-factor shifts": rollouts(args, "test-two-factor", int(0.75 * n_test),
                                      two_factor(int(0.75 * n_test), envelope, base + 7), base + 7),
        "far shift": rollouts(args, "test-far", 50, FAR, base + 8),
        "in-envelope pool": rollouts(args, "test-in-pool", int(1.5 * n_test), None, base + 17),
    })
    for name, items in sets.items():
        print(f"{name:>30}: {len(items)} rollouts ({outcome_mix(items)})")
    return sets


def predictor_rows(args: Args, config: dict, alpha: float, fit: list, families: list[ScoredSet],
                   horizon: int) -> list[pd.DataFrame]:
    """Both error rates of the supervised predictor alone, with the dynamics score (in the configuration chosen
    on validation) and with the default scores (as 'robogate monitor calibrate --predictor' makes it), per family;
    the scores beside it are fitted here."""
    if not args.predictor:
        return []
    predictor = FailurePredictor.load(args.predictor)
    dynamics = DynamicsConsistency(**config, seed=args.seed)
    parts = []
    for name, chosen_scores in (("predictor", [predictor]), ("predictor OR dynamics", [predictor, dynamics]),
                                ("default OR predictor", [*DEFAULT_SCORES, predictor])):
        monitor = FailureMonitor(alpha=alpha, scores=chosen_scores, seed=args.seed).fit(fit)
        rescored = [ScoredSet.score(monitor, s.name, s.rollouts, s.in_envelope) for s in families]
        parts.append(family_rows({name: monitor}, rescored, horizon))
    return parts


def false_alarms(args: Args, default: FailureMonitor, chosen: dict, sets: dict[str, list],
                 held_out: ScoredSet) -> pd.DataFrame:
    """False alarms on held-out in-envelope successes: the test pool, re-splits, and a stated confidence."""
    print("\nfalse alarms on held-out in-envelope successes:")
    print(false_alarm_table(chosen, held_out).to_string(index=False, float_format="{:.3f}".format))
    resplits = resplit_false_alarms(default, sets["in-envelope"] + sets["in-envelope pool"], alphas=(0.05, 0.1),
                                    confidences=(None, 0.9), repeats=args.repeats, seed=args.seed)
    show(f"the default monitor's false-alarm rate over {args.repeats} re-splits of {int(resplits['calibration'][0])} "
         f"calibration + {int(resplits['test'][0])} held-out in-envelope successes", resplits)
    stated = FailureMonitor(alpha=0.1, confidence=0.9, seed=args.seed).fit(sets["fit"])
    inside = episode_table(stated, [r for r in sets["in-envelope"] if r.success])
    print(f"FailureMonitor(alpha=0.1, confidence=0.9): {stated.describe()}; false alarms on the held-out "
          f"in-envelope successes {inside['alarm_step'].notna().mean():.3f}")
    return resplits


def report_notes(args: Args, sets: dict[str, list], fitted: FailureMonitor, config: dict) -> list[str]:
    return [f"Policy {args.policy} on {args.env}; rollouts recorded with 32 sampled chunks per step.",
            "Sets: " + "; ".join(f"{name}: {len(items)} rollouts ({outcome_mix(items)})" for name, items in sets.items()),
            f"Scores fitted on {fitted.n_fit_} successes of 'fit' and calibrated on the other {fitted.n_calibration_}. "
            "One-factor shifts move one parameter at a time to the widest stretch of its range outside the training "
            f"envelope; two-factor shifts move two parameters into {dict(TWO_FACTOR)}; the far shift is {FAR}. "
            f"Families: slips {SLIPS}, calibration errors ik_noise {CALIBRATION_ERROR}, sensor noise "
            f"(robogate.envs.sensor_noise), wide object size {WIDE}.",
            f"The dynamics score's configuration, chosen on validation: {dynamics_name(config)}."]


def main() -> None:
    args = parse(Args, __doc__)
    sets = record_sets(args, getattr(make_policy(args.policy), "envelope", None))
    validation_sets = {n: r for n, r in sets.items() if n.startswith("validation")}
    config, dynamics_choice = choose_dynamics(sets["fit"], validation_sets, args.seed)
    show("dynamics score, each configuration alone on validation (settings chosen there; by early balanced "
         "accuracy)", dynamics_choice)
    print(f"chosen: {dynamics_name(config)}")

    every = [DynamicsConsistency(**config, seed=args.seed) if name == "dynamics" else name
             for name in scores.usable([r for r in sets["fit"] if r.success])]
    fitted = FailureMonitor(scores=every, seed=args.seed).fit(sets["fit"])
    default = fitted.as_default()
    print(f"scores {list(fitted.score_objects_)} fitted on {fitted.n_fit_} and calibrated on "
          f"{fitted.n_calibration_} successes; library default: {default.describe()}")
    validation = ScoredSet.join("validation", [ScoredSet.score(fitted, n, r) for n, r in validation_sets.items()])
    shift_names = ("in-envelope", "one-factor shifts", "two-factor shifts", "far shift")
    tests = [ScoredSet.score(fitted, name, sets[name], in_envelope=name == "in-envelope") for name in shift_names]
    families = {name: ScoredSet.score(fitted, name, sets[name]) for name in FAMILIES}
    horizon = common_horizon([r for name in (*shift_names, *FAMILIES) for r in sets[name]])
    chosen, results, grids = evaluate(default, tests, validation, progress=True, horizon=horizon)

    print()
    print(results[[c for c in COLUMNS if c in results.columns]].to_string(index=False, float_format="{:.3f}".format))
    show("headline (test)", headline(chosen, tests))
    show(f"headline on episodes cut after {horizon} steps (the common horizon)", headline(chosen, tests, horizon))
    print(f"\nFIPER (published, AND, mean of five tasks): accuracy {FIPER['accuracy']:.2f}, TPR {FIPER['tpr']:.2f}; "
          f"SAFE (published, unseen tasks, simulation): ROC-AUC {SAFE['roc_auc'][0]:.2f}-{SAFE['roc_auc'][1]:.2f}")
    print(f"best on validation: {chosen[BEST].describe()}")
    show("detection per failure type (library default, all test rollouts)",
         outcome_rates(default, ScoredSet.join(ALL, tests)))

    with_dynamics = "rnd OR obs_rnd OR dynamics"
    watched = {"default (rnd OR obs_rnd)": default, "dynamics": chosen["dynamics"], with_dynamics: chosen[with_dynamics],
               BEST: chosen[BEST]}
    every_family = [*tests, *families.values()]
    family_table = pd.concat([family_rows(watched, every_family, horizon),
                              *predictor_rows(args, config, default.alpha, sets["fit"], every_family, horizon)], ignore_index=True)
    show(f"both error rates per family (one-sided 95 % bounds; _cut: episodes cut after {horizon} steps)",
         family_table)
    misses = miss_thresholds(chosen[with_dynamics], {family: sets[f"validation {family}"] for family in PHYSICAL},
                             families, tests[0])
    show(f"thresholds bounding the miss rate at {MISS_RATE:g} ({with_dynamics}, set on each family's validation "
         "failures)", misses)
    resplits = false_alarms(args, default, chosen, sets, tests[0])

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    default.save(out / "monitor")
    path = write_monitor_report(out / "report", chosen, results, grids, tests, title=f"Failure monitor on {args.env}",
                                notes=report_notes(args, sets, fitted, config), families=every_family, horizon=horizon,
                                resplits=resplits, misses=misses)
    for name, table in (("results", results), ("families", family_table), ("resplits", resplits),
                        ("dynamics_choice", dynamics_choice), ("validation_grid", grids[BEST])):
        table.to_csv(out / f"{name}.csv", index=False)
    print(f"\nreport: {path}")


if __name__ == "__main__":
    main()
