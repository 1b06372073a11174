"""``robogate rollouts record`` and ``robogate monitor calibrate|train|eval|makespan``: the runtime failure monitor."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from robogate.cli.flags import (
    EXECUTOR,
    OUT,
    POLICY_HELP,
    PROGRESS,
    SEED,
    WORKERS,
    CLIError,
    add_envelope_flag,
    add_format_flag,
    non_negative_int,
    non_negative_seconds,
    positive_int,
    probability,
    saved_at,
)


def add_rollouts(subparsers: Any) -> None:
    """Register ``robogate rollouts record``."""
    p = subparsers.add_parser(
        "rollouts",
        help="record a policy's rollouts (observations, embeddings, sampled action chunks, outcomes) for the monitor",
        description=("Rollouts of any policy, stored as Parquet or as a LeRobot v3.0 dataset: its observations "
                     "always, its embedding when it has embed(obs), and sampled action chunks when asked for "
                     "(--chunks) of a policy with sample_chunks(obs, n)."),
    )
    sub = p.add_subparsers(dest="rollouts_command", metavar="ACTION", required=True)
    r = sub.add_parser(
        "record",
        parents=[OUT, SEED, WORKERS, EXECUTOR, PROGRESS],
        help="run a policy and store every step as DIR/rollouts.parquet or a LeRobot dataset",
        description=(
            "Run a policy for N episodes and store, per control step, the observation and action, the policy's "
            "embedding when it offers one and, with --chunks B, B sampled action chunks, with each episode's "
            "outcome, parameters and failure step. "
            "Scenarios: by default spread over the policy's training envelope (--envelope overrides "
            "entries of it); --shifted moves one parameter at a time just outside it; --params fixes "
            "them; --from-sweep replays a sweep's scenarios and seeds. With --format lerobot, DIR becomes a "
            "LeRobot v3.0 dataset with next.success/next.done and robogate's labels, to share or load with "
            "LeRobotDataset."
        ),
    )
    r.add_argument("--policy", metavar="SPEC",
                   help=f"{POLICY_HELP} (default flow on robogate's envs; required on any other)")
    r.add_argument("--env", dest="env_id", required=True, metavar="ENV_ID",
                   help="env id, e.g. robogate/PickPlace-Panda-v0, or module:EnvId for an env of your own")
    r.add_argument("--episodes", type=positive_int, required=True, metavar="N", help="episodes to record")
    source = r.add_mutually_exclusive_group()
    source.add_argument("--params", metavar="JSON", help='fixed scenario, e.g. \'{"friction": 0.2}\'')
    add_envelope_flag(source, "Replaces that entry of the policy's training envelope; the others keep theirs.")
    source.add_argument("--shifted", action="store_true",
                        help="scenarios just outside the training envelope, one parameter at a time in turn")
    source.add_argument("--from-sweep", metavar="DIR", help="replay the scenarios (and seeds) of a stored sweep")
    pick = r.add_mutually_exclusive_group()
    pick.add_argument("--failures-only", action="store_true", help="with --from-sweep: only its failed experiments")
    pick.add_argument("--balanced", action="store_true",
                      help="with --from-sweep: a training set for 'monitor train': failures and successes in equal "
                           "numbers where the sweep has them, boundary (stage-2) rows first")
    r.add_argument("--chunks", type=non_negative_int, default=0, metavar="B",
                   help="chunks sampled per step, for the scores that read them (ace, consistency; 32 is what they "
                        "were measured with); default 0: the default monitor reads none")
    add_format_flag(r, "rollouts.parquet")
    r.set_defaults(handler=_rollouts_record)


def _rollouts_record(args: argparse.Namespace) -> int:
    import json
    from collections import Counter

    from robogate.execution.specs import default_policy
    from robogate.monitor.recording import ROLLOUTS_FILE, chosen_scenes, record_rollouts
    from robogate.sweep.stored import load_sweep

    for flag, given in (("--failures-only", args.failures_only), ("--balanced", args.balanced)):
        if given and not args.from_sweep:
            raise CLIError(f"{flag} needs --from-sweep")
    policy = args.policy if args.policy is not None else default_policy(args.env_id, "flow")
    if args.params:
        try:
            params = json.loads(args.params)
        except json.JSONDecodeError as exc:
            raise CLIError(f"--params is not valid JSON: {exc}") from None
    else:
        params = chosen_scenes(args.env_id, policy, args.episodes, args.seed, envelope=args.envelope,
                               shifted=args.shifted, sweep=load_sweep(args.from_sweep) if args.from_sweep else None,
                               failures_only=args.failures_only, balanced=args.balanced)
    rollouts = record_rollouts(
        args.env_id, policy, args.episodes, params, args.seed, args.chunks, executor=args.executor,
        workers=args.workers, address=args.address, progress=args.progress, out=args.out, format=args.format,
    )
    counts = Counter(r.outcome for r in rollouts)
    print(f"{len(rollouts)} rollouts: " + ", ".join(f"{k} {v}" for k, v in counts.most_common()))
    print(f"rollouts: {saved_at(args.out, ROLLOUTS_FILE, args.format)}")
    return 0


def add_monitor(subparsers: Any) -> None:
    """Register ``robogate monitor calibrate|train|eval|makespan``.

    Choices and defaults come from :mod:`robogate.monitor.settings` and
    :mod:`robogate.monitor.conformal`, which load without PyTorch; score names are checked
    against the registry before any rollout is read.
    """
    p = subparsers.add_parser(
        "monitor",
        help="calibrate the runtime failure monitor on recorded rollouts and evaluate it",
        description="The conformal failure monitor: plug-in failure scores calibrated on successful rollouts only.",
    )
    sub = p.add_subparsers(dest="monitor_command", metavar="ACTION", required=True)
    _add_calibrate(sub)
    _add_train(sub)
    _add_eval(sub)
    _add_makespan(sub)


def _add_calibrate(sub: Any) -> None:
    from robogate.monitor.settings import COMBINES, DEFAULT_SCORES, DEFAULTS, THRESHOLD_STYLES

    c = sub.add_parser(
        "calibrate",
        parents=[OUT],
        help="fit and calibrate a FailureMonitor on successful rollouts and save it",
        description=(
            "Fit the monitor's scores on one share of the successful episodes of ROLLOUTS, calibrate its "
            "conformal thresholds on the rest (or on --calibration) and save it in --out. The defaults are the monitor that won on "
            "validation rollouts of the shipped flow policy. With --validation (successes and failures, in and "
            "out of the training envelope), the scores, their combination, the window, alpha and the threshold "
            "style are chosen on those rollouts by balanced accuracy; any of them given here is kept fixed."
        ),
    )
    c.add_argument("rollouts", nargs="+", metavar="ROLLOUTS", help="rollout files or folders ('robogate rollouts record')")
    c.add_argument("--alpha", type=probability, metavar="A", help=f"false-alarm rate (default {DEFAULTS['alpha']})")
    c.add_argument("--confidence", type=probability, metavar="C",
                   help="calibrate training-conditionally: the monitor's own false-alarm rate exceeds alpha with "
                        "probability at most 1-C (default: marginal, at most alpha on average over calibrations); "
                        "with --miss-rate, the confidence of the miss-rate bound")
    c.add_argument("--miss-rate", type=probability, metavar="B",
                   help="set the threshold from the failures of --failures instead, so that a failure like them is "
                        "missed at most B of the time; prints the false-alarm rate that costs")
    c.add_argument("--failures", nargs="+", metavar="ROLLOUTS",
                   help="labelled rollouts whose failures set the --miss-rate threshold (e.g. a sweep's replay)")
    c.add_argument("--window", type=positive_int, metavar="W", help=f"steps summed (default {DEFAULTS['window']})")
    c.add_argument("--combine", choices=COMBINES,
                   help=f"'or': any score over its threshold, 'and': all (default {DEFAULTS['combine']})")
    c.add_argument("--threshold", choices=THRESHOLD_STYLES, help=f"threshold style (default {DEFAULTS['threshold']})")
    c.add_argument("--scores", nargs="+", metavar="SCORE",
                   help="registered score names, e.g. rnd obs_rnd ace consistency density "
                        f"(default: {' and '.join(DEFAULT_SCORES)}, those the rollouts carry signals for)")
    c.add_argument("--predictor", metavar="DIR",
                   help="a FailurePredictor written by 'robogate monitor train', used as one more score "
                        "(its threshold is calibrated here; keep its training rollouts apart from ROLLOUTS)")
    c.add_argument("--calibration", nargs="+", metavar="ROLLOUTS", help="separate calibration rollouts")
    c.add_argument("--validation", nargs="+", metavar="ROLLOUTS", help="rollouts to choose the settings on")
    c.add_argument("--seed", type=non_negative_int, default=0, metavar="S", help="seed of the split (default 0)")
    c.set_defaults(handler=_monitor_calibrate)


def _add_train(sub: Any) -> None:
    from robogate.monitor.settings import MODELS, TARGETS

    t = sub.add_parser(
        "train",
        parents=[OUT, SEED, PROGRESS],
        help="train a FailurePredictor on labelled rollouts (successes and failures)",
        description=(
            "Train a FailurePredictor, a failure score learnt from rollouts of both outcomes (e.g. replayed from "
            "a sweep with 'robogate rollouts record --from-sweep DIR --balanced'), and write DIR/predictor.json, "
            "DIR/predictor.pt and DIR/loss.png. Use it with 'robogate monitor calibrate --predictor DIR': its "
            "conformal threshold comes from successful rollouts kept apart from these."
        ),
    )
    t.add_argument("rollouts", nargs="+", metavar="ROLLOUTS", help="labelled rollout files or folders")
    t.add_argument("--target", choices=TARGETS, default=TARGETS[0],
                   help="label of a step: its episode fails, or it fails within --horizon steps (default episode)")
    t.add_argument("--horizon", type=non_negative_int, default=10, metavar="K",
                   help="with --target horizon: steps before the failure event (default 10)")
    t.add_argument("--model", choices=MODELS, default=MODELS[0], help="network (default mlp)")
    t.add_argument("--epochs", type=positive_int, default=200, metavar="N", help="most epochs (default 200)")
    t.set_defaults(handler=_monitor_train)


def _add_eval(sub: Any) -> None:
    e = sub.add_parser(
        "eval",
        parents=[PROGRESS],
        help="evaluate a saved monitor on test rollouts and write an HTML report",
        description=(
            "Evaluate the monitor saved in DIR on each TEST_ROLLOUTS file (e.g. shifted scenes) and each "
            "--in-envelope file (held-out rollouts drawn like the calibration ones: their successes test the "
            "false-alarm guarantee): TPR, TNR, accuracy, balanced accuracy, ROC-AUC, detection and lead time, "
            "per failure type. With --validation, variants (each score alone, FIPER's AND, the best score set) "
            "choose their settings on those rollouts first. Writes --report (default DIR/report)."
        ),
    )
    e.add_argument("monitor", metavar="DIR", help="a folder written by 'robogate monitor calibrate'")
    e.add_argument("tests", nargs="*", metavar="TEST_ROLLOUTS", help="rollout files or folders, one test set each")
    e.add_argument("--in-envelope", nargs="+", default=[], metavar="ROLLOUTS",
                   help="held-out test rollouts from the calibration distribution")
    e.add_argument("--validation", nargs="+", metavar="ROLLOUTS", help="rollouts the variants choose settings on")
    e.add_argument("--report", metavar="OUT", help="report folder (default DIR/report)")
    e.set_defaults(handler=_monitor_eval)


def _add_makespan(sub: Any) -> None:
    from robogate.monitor.settings import MAKESPAN_ALPHAS

    m = sub.add_parser(
        "makespan",
        parents=[SEED],
        help="decide whether stopping on alarm and retrying saves a production cell time, and at which threshold",
        description=(
            "A cell attempts each task until it succeeds and resets after every attempt that does not. Predict "
            "its makespan (seconds per completed task) from labelled ROLLOUTS (successes and failures, drawn as the "
            "cell draws attempts) running every attempt to its end, and stopping each on the monitor's alarm, for "
            "each alpha of the saved monitor; pick the alpha with the shortest makespan, and say 'stop on alarm' "
            "only when the saving's interval lies above zero (--seed seeds its bootstrap). Exit status 0: stop on "
            "alarm; 1: run to the end; 2: usage error."
        ),
    )
    m.add_argument("rollouts", nargs="+", metavar="ROLLOUTS", help="labelled rollout files or folders (validation)")
    m.add_argument("--monitor", required=True, metavar="DIR", help="a monitor saved by 'robogate monitor calibrate'")
    m.add_argument("--reset-time", required=True, type=non_negative_seconds, metavar="S",
                   help="seconds to reset the cell after an attempt that did not succeed")
    m.add_argument("--test", nargs="+", metavar="ROLLOUTS", help="test rollouts to check the verdict on")
    m.add_argument("--alphas", nargs="+", type=probability, default=MAKESPAN_ALPHAS, metavar="A",
                   help=f"thresholds to sweep (default {MAKESPAN_ALPHAS[0]:g} to {MAKESPAN_ALPHAS[-1]:g}; those the monitor's "
                        "calibration is too small for are skipped)")
    m.add_argument("--confidence", type=probability, default=0.95, metavar="C",
                   help="of the intervals (default 0.95)")
    m.add_argument("--report", metavar="DIR", help="write a report with the makespan against the threshold")
    m.add_argument("--save", metavar="DIR", help="save the monitor recalibrated at the chosen alpha")
    m.set_defaults(handler=_monitor_makespan)


def _load_rollout_files(paths: Sequence[str]) -> list:
    from robogate.monitor.recording import load_rollouts

    return [r for path in paths for r in load_rollouts(path)]


def _set_name(path: str) -> str:
    from pathlib import Path

    p = Path(path)
    return p.name if p.is_dir() else (p.parent.name or p.stem)


def _monitor_calibrate(args: argparse.Namespace) -> int:
    from robogate.datasets.episodes import resolve_episode_file
    from robogate.monitor import FailurePredictor
    from robogate.monitor.calibration import SETTINGS, calibrate_monitor, monitor_settings

    given = {k: getattr(args, k) for k in SETTINGS if getattr(args, k) is not None}
    if (args.miss_rate is None) != (args.failures is None):
        raise CLIError("--miss-rate and --failures go together: the failures set the threshold that bounds the miss rate")
    monitor_settings(args.scores, args.confidence, args.miss_rate, **given)  # before any rollout is read
    predictor = FailurePredictor.load(args.predictor) if args.predictor else None
    for path in [*args.rollouts, *(args.calibration or []), *(args.validation or []), *(args.failures or [])]:
        resolve_episode_file(path)
    optional = {name: _load_rollout_files(getattr(args, name)) for name in ("calibration", "validation", "failures")
                if getattr(args, name)}
    result = calibrate_monitor(_load_rollout_files(args.rollouts), **optional, scores=args.scores, predictor=predictor,
                               confidence=args.confidence, miss_rate=args.miss_rate, seed=args.seed, **given)
    monitor = result.monitor
    if result.choices is not None:
        row = result.choices[result.choices["chosen"]].iloc[0]
        print(f"chosen on {result.validation.describe()}: {monitor.describe()} (there TPR {row['tpr']:.2f}, "
              f"TNR {row['tnr']:.2f}, balanced accuracy {row['balanced_accuracy']:.2f})")
    if args.miss_rate is not None:
        print(f"miss rate: {monitor.miss_bound_.describe()}")
    path = monitor.save(args.out)
    print(f"monitor: {monitor.describe()}")
    print(f"saved: {path}")
    return 0


def _monitor_train(args: argparse.Namespace) -> int:
    from collections import Counter

    from robogate.datasets.episodes import resolve_episode_file
    from robogate.monitor import FailurePredictor

    predictor = FailurePredictor(target=args.target, horizon=args.horizon, model=args.model, epochs=args.epochs,
                                 seed=args.seed)
    for path in args.rollouts:
        resolve_episode_file(path)
    rollouts = _load_rollout_files(args.rollouts)
    outcomes = Counter("success" if r.success else "failure" for r in rollouts)
    predictor.fit(rollouts, progress=args.progress)
    path = predictor.save(args.out)
    best = min(predictor.history_, key=lambda h: h["val_loss"])
    print(f"{predictor!r}: trained on {outcomes['success']} successes and {outcomes['failure']} failures, best "
          f"epoch {best['epoch']} of {len(predictor.history_)} (validation loss {best['val_loss']:.4f})")
    print(f"predictor: {path}")
    return 0


def _monitor_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from robogate.monitor import FailureMonitor
    from robogate.monitor.conformal import false_alarm_range
    from robogate.monitor.evaluation import ScoredSet, evaluate
    from robogate.monitor.metrics import common_horizon
    from robogate.monitor.misses import detection_table
    from robogate.monitor.recording import load_rollouts
    from robogate.reports.monitor import COLUMNS, write_monitor_report

    if not args.tests and not args.in_envelope:
        raise CLIError("give at least one test set: TEST_ROLLOUTS or --in-envelope ROLLOUTS")
    monitor = FailureMonitor.load(args.monitor)
    tests = [ScoredSet.score(monitor, _set_name(p), load_rollouts(p), in_envelope=True) for p in args.in_envelope]
    tests += [ScoredSet.score(monitor, _set_name(p), load_rollouts(p)) for p in args.tests]
    validation = (ScoredSet.score(monitor, "validation", _load_rollout_files(args.validation))
                  if args.validation else None)
    horizon = common_horizon([r for t in tests for r in t.rollouts])
    chosen, results, grids = evaluate(monitor, tests, validation, progress=args.progress, horizon=horizon)
    float3 = "{:.3f}".format
    print(results[[c for c in COLUMNS if c in results.columns]].to_string(index=False, float_format=float3))
    print("\nboth error rates of the monitor as saved (one-sided 95 % bounds), whole episodes:")
    print(detection_table(monitor, tests).to_string(index=False, float_format=float3))
    print(f"the same on episodes cut after {horizon} steps (the common horizon):")
    print(detection_table(monitor, tests, horizon).to_string(index=False, float_format=float3))
    implied = false_alarm_range(monitor.n_calibration_, monitor.alpha, monitor.confidence)
    print(f"calibrated on {implied.n} successes (rank {implied.rank}): its false-alarm rate has mean {implied.mean:.3f}, "
          f"90 % predictive range [{implied.low:.3f}, {implied.high:.3f}], above alpha {implied.alpha:g} with "
          f"probability {implied.p_above:.2f}")
    out = Path(args.report) if args.report else Path(args.monitor) / "report"
    path = write_monitor_report(out, chosen, results, grids, tests, title=f"Failure monitor: {args.monitor}",
                                notes=["Test sets: " + "; ".join(t.describe() for t in tests) + "."], horizon=horizon)
    print(f"report: {path}")
    return 0


def _monitor_makespan(args: argparse.Namespace) -> int:
    from robogate.datasets.episodes import resolve_episode_file
    from robogate.monitor import FailureMonitor
    from robogate.monitor.makespan import check_decision, choose_threshold
    from robogate.reports.makespan import write_makespan_report

    monitor = FailureMonitor.load(args.monitor)
    for path in [*args.rollouts, *(args.test or [])]:
        resolve_episode_file(path)
    decision = choose_threshold(_load_rollout_files(args.rollouts), monitor, args.reset_time, alphas=args.alphas,
                                confidence=args.confidence, seed=args.seed)
    print(f"decision: {decision.verdict} (threshold: alpha {decision.alpha:g})")
    print(f"predicted seconds per completed task: {decision.estimate.describe()}")
    print(decision.reason)
    test_curve = None
    if args.test:
        check = check_decision(decision, _load_rollout_files(args.test), seed=args.seed)
        print(f"on the test rollouts {check.describe()}")
        test_curve = check.curve
    if args.save:
        print(f"monitor at alpha {decision.alpha:g}: {decision.monitor.save(args.save)}")
    if args.report:
        notes = [f"Monitor {args.monitor}: {monitor.describe()}. Validation: {', '.join(args.rollouts)}"
                 + (f"; test: {', '.join(args.test)}." if args.test else ".")]
        print(f"report: {write_makespan_report(args.report, decision, test_curve=test_curve, notes=notes)}")
    return decision.exit_code
