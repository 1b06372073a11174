"""``robogate sweep``, ``report``, ``gate``, ``envelope suggest`` and ``replay``: a sweep, and what is read off it."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from robogate._utils.console import PROG
from robogate.cli.flags import (
    EXECUTOR,
    OUT,
    POLICY_HELP,
    PROGRESS,
    WORKERS,
    CLIError,
    add_envelope_flag,
    non_negative_int,
    positive_int,
    probability,
)


def add_sweep(subparsers: Any) -> None:
    """Register ``robogate sweep``."""
    p = subparsers.add_parser(
        "sweep",
        parents=[OUT, WORKERS, EXECUTOR, PROGRESS],
        usage=(f"{PROG} sweep --env ENV_ID --n-lhs N --n-boundary M --out DIR [options]\n"
               f"       {PROG} sweep --out DIR --resume [options]"),
        help="sweep a policy through the parameter space with the two-stage sampler",
        description=(
            "Run a two-stage sweep (Latin Hypercube, then boundary-focused sampling) of a policy "
            "on an env (robogate's, or any Gymnasium env that declares its parameter_space) and store every "
            "experiment under --out. A killed sweep continues "
            "with --resume; settings left out on resume are taken from the stored sweep. Exit status 4 when every "
            "experiment errored (a broken harness), 5 on an unexpected error."
        ),
    )
    p.add_argument("--env", dest="env_id", metavar="ENV_ID",
                   help="env id, e.g. robogate/PickPlace-Panda-v0, or module:EnvId for an env of your own "
                        "(required unless --resume)")
    p.add_argument("--policy", metavar="SPEC",
                   help=f"{POLICY_HELP} (default scripted on robogate's envs; required on any other)")
    p.add_argument("--n-lhs", type=non_negative_int, metavar="N",
                   help="stage-1 (Latin Hypercube) budget (required unless --resume)")
    p.add_argument("--n-boundary", type=non_negative_int, metavar="M",
                   help="stage-2 (boundary) budget (required unless --resume)")
    p.add_argument("--batch-size", type=positive_int, metavar="B", help="stage-2 points per surrogate refit")
    p.add_argument("--band", type=probability, nargs=2, metavar=("LO", "HI"),
                   help="success-probability band of stage 2 (default 0.3 0.7)")
    p.add_argument("--seed", type=non_negative_int, metavar="S", help="sweep seed (default 0)")
    p.add_argument("--resume", action="store_true",
                   help="continue the sweep stored in --out (an error if --out holds none)")
    p.set_defaults(handler=_sweep)


def _sweep(args: argparse.Namespace) -> int:
    from robogate.sweep.run import resolve_settings, run_sweep
    from robogate.sweep.summary import format_summary, summarize_sweep

    settings = resolve_settings(args.out, args.resume, env_id=args.env_id, policy=args.policy, n_lhs=args.n_lhs,
                                n_boundary=args.n_boundary, batch_size=args.batch_size, seed=args.seed,
                                band=tuple(args.band) if args.band else None)
    missing = [flag for key, flag in (("env_id", "--env"), ("n_lhs", "--n-lhs"), ("n_boundary", "--n-boundary"))
               if settings[key] is None]
    if missing:
        raise CLIError(f"the following arguments are required: {', '.join(missing)}")
    try:
        df = run_sweep(out=args.out, executor=args.executor, workers=args.workers, address=args.address,
                       resume=args.resume, progress=args.progress, **settings)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; finished experiments are stored in {args.out}, "
              "continue with --resume", file=sys.stderr)
        return 130
    summary = summarize_sweep(df)
    print(format_summary(summary))
    print(f"results: {args.out}")
    return _all_errored(summary)


def _all_errored(summary: dict[str, Any]) -> int:
    """0, or the gate's error status after one line on stderr when every experiment errored."""
    from robogate.analysis.stats import EXIT_CODES

    if not summary["rows"] or summary["errors"] < summary["rows"]:
        return 0
    print(f"{PROG}: error: every one of the {summary['rows']} experiments errored, so the sweep says nothing about "
          f"the policy; first error: {summary['first_error']}", file=sys.stderr)
    return EXIT_CODES["error"]


def add_report(subparsers: Any) -> None:
    """Register ``robogate report``."""
    p = subparsers.add_parser(
        "report",
        help="write the report (Markdown + self-contained HTML) of one sweep, or compare several",
        description=(
            "Read the sweeps stored in DIR ... and write report.md (figures beside it) and a self-contained "
            "report.html: provenance, outcomes, success per parameter, risk maps with the closed-form boundary, "
            "ROC and reliability on held-out uniform rows, coefficients, danger zones, a suggested envelope to "
            "deploy in, a failure gallery and, with --envelope, the gate's verdict. Several folders (e.g. one per "
            "arm) are compared side by side and the zones they share are marked universal."
        ),
    )
    p.add_argument("dirs", nargs="+", metavar="DIR", help="sweep folders written by 'robogate sweep'")
    p.add_argument("--out", metavar="OUT",
                   help="folder to write (default DIR/report, or FIRST_DIR/comparison for several)")
    add_envelope_flag(p, "An operating envelope to gate; parameters left out keep their full range.")
    p.add_argument("--max-failure-rate", type=probability, metavar="RATE",
                   help="the limit of the gate (required with --envelope, as for 'gate') and of the suggested "
                        "envelope (default 0.05), e.g. 0.05")
    p.add_argument("--confidence", type=probability, default=0.95, metavar="C",
                   help="the confidence of the gate and of the suggested envelope (default 0.95)")
    p.add_argument("--no-gallery", dest="gallery", action="store_false",
                   help="leave out the failure gallery (it replays one episode per failure mode)")
    p.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    from robogate.reports.sweep import write_report

    if args.envelope and args.max_failure_rate is None:
        raise CLIError("--envelope needs --max-failure-rate (the gate's limit, e.g. 0.05)")
    rate = {} if args.max_failure_rate is None else {"max_failure_rate": args.max_failure_rate}
    path = write_report(args.dirs, args.out, envelope=args.envelope, confidence=args.confidence, gallery=args.gallery,
                        **rate)
    print(f"report: {path} and {path.with_name('report.md')}")
    return 0


def add_gate(subparsers: Any) -> None:
    """Register ``robogate gate``."""
    p = subparsers.add_parser(
        "gate",
        parents=[WORKERS, EXECUTOR, PROGRESS],
        help="decide whether the policy may be deployed in an operating envelope (exit 0 pass, 1 fail, "
             "3 inconclusive, 4 the experiments errored, 5 an unexpected error)",
        description=(
            "Bound the failure rate inside an operating envelope from the sweep's uniform experiments "
            "(never its boundary-focused stage-2 ones) and print the verdict in one sentence. Exit status: "
            "0 pass (upper confidence bound below the limit), 1 fail (lower bound above it), 3 inconclusive, "
            "2 usage error, 4 experiments inside the envelope errored (the policy raised or the simulation "
            "diverged: a broken harness, not an unsafe policy), 5 an unexpected error (a bug, never a verdict). "
            "With --run, experiments are sampled uniformly inside the envelope and run in "
            "batches until the verdict is decided, with a sequential (anytime-valid) bound; they are "
            "appended to the sweep as stage-3 rows."
        ),
    )
    p.add_argument("out", metavar="DIR", help="a sweep folder written by 'robogate sweep'")
    add_envelope_flag(p, "Parameters left out keep their full range.")
    p.add_argument("--max-failure-rate", type=probability, required=True, metavar="RATE",
                   help="largest acceptable failure rate, e.g. 0.05")
    p.add_argument("--confidence", type=probability, default=0.95, metavar="C",
                   help="confidence of the verdict (default 0.95)")
    p.add_argument("--run", action="store_true",
                   help="run experiments inside the envelope until decided (on --executor, with --workers)")
    p.add_argument("--max-experiments", type=non_negative_int, default=1000, metavar="N",
                   help="with --run: run at most N experiments (default 1000)")
    p.add_argument("--batch-size", type=positive_int, default=20, metavar="B",
                   help="with --run: experiments between looks (default 20)")
    p.set_defaults(handler=_gate)


def _gate(args: argparse.Namespace) -> int:
    from robogate.analysis.gating import gate
    from robogate.scenarios.envelope import Envelope
    from robogate.sweep.gate_run import run_gate
    from robogate.sweep.stored import load_sweep

    df = load_sweep(args.out)
    envelope = Envelope.parse(args.envelope or [], df.attrs["settings"]["space"])
    if args.run:
        decision = run_gate(
            args.out, envelope, args.max_failure_rate, args.confidence, max_experiments=args.max_experiments,
            batch_size=args.batch_size, executor=args.executor, workers=args.workers, address=args.address,
            progress=args.progress,
        )
    else:
        decision = gate(df, envelope.space, envelope, args.max_failure_rate, args.confidence)
    print(decision.reason)
    return decision.exit_code


def add_replay(subparsers: Any) -> None:
    """Register ``robogate replay``."""
    from robogate.reports import ANIMATION_FORMATS

    p = subparsers.add_parser(
        "replay",
        usage=(f"{PROG} replay SWEEP --id N [N ...] [options]\n"
               f"       {PROG} replay SWEEP --outcome NAME [--count K] [options]"),
        help="re-run experiments of a sweep from their stored seeds, check the outcome, and film them",
        description=(
            "Re-run experiments of a stored sweep from their stored parameters and seeds on the sweep's env and "
            "policy, say whether each ended as stored, and write an animated GIF (or MP4) per experiment with the "
            "outcome in the caption, the failure step marked on a timeline and a red border from the failure "
            "frame on. The env is made with render_mode='rgb_array' (any env that supports it). Exit status: 0 "
            "every outcome reproduced, 1 some did not, 2 usage error (an env that cannot render included)."
        ),
    )
    p.add_argument("sweep", metavar="SWEEP", help="a sweep folder written by 'robogate sweep'")
    p.add_argument("--id", dest="ids", type=non_negative_int, nargs="+", action="extend", metavar="N",
                   help="experiment ids to replay")
    p.add_argument("--outcome", metavar="NAME", help="replay experiments that ended so, e.g. collision")
    p.add_argument("--count", type=positive_int, default=1, metavar="K",
                   help="with --outcome: how many, the first by id (default 1)")
    p.add_argument("--out", metavar="DIR", help="folder for the animations (default SWEEP/replay)")
    p.add_argument("--format", choices=ANIMATION_FORMATS, default="gif", help="gif (default) or mp4 (needs ffmpeg)")
    p.add_argument("--policy", metavar="SPEC", help=f"replay with this policy instead of the sweep's: {POLICY_HELP}")
    p.set_defaults(handler=_replay)


def _replay(args: argparse.Namespace) -> int:
    from pathlib import Path

    from robogate.reports.animation import replay

    if args.ids and args.outcome:
        raise CLIError("give --id or --outcome, not both")
    out = args.out or str(Path(args.sweep) / "replay")
    replays = replay(args.sweep, args.ids, outcome=args.outcome, count=args.count, policy=args.policy, out=out,
                     format=args.format)
    for r in replays:
        print(f"{r.describe()}: {r.path}")
    missed = sum(not r.reproduced for r in replays)
    if missed:
        print(f"{PROG}: {missed} of {len(replays)} replayed experiments did not end as stored: the env, the policy or "
              "a library has changed since the sweep, or the episode is not deterministic", file=sys.stderr)
    return 1 if missed else 0


def add_envelope(subparsers: Any) -> None:
    """Register ``robogate envelope suggest``."""
    p = subparsers.add_parser(
        "envelope",
        help="suggest where to deploy: the largest envelope around nominal a sweep says should pass",
        description="Operating envelopes read from a sweep.",
    )
    sub = p.add_subparsers(dest="envelope_command", metavar="ACTION", required=True)
    s = sub.add_parser(
        "suggest",
        help="the largest envelope around nominal that the sweep's uniform rows and risk map say should pass",
        description=(
            "Peel the parameter space toward the nominal scene, each step cutting off the slice the risk map "
            "predicts fails most, and print the first box that passes the gate on the sweep's uniform (stage-1) "
            "rows or, when none does, that its rows do not fail and the map predicts under the limit, as --envelope "
            "flags. The box is chosen on the sweep's own rows, so the command also prints the command line that "
            "certifies it on fresh experiments only. Exit status: 0 an envelope is suggested, 3 none qualifies, "
            "2 usage error."
        ),
    )
    s.add_argument("sweep", metavar="SWEEP", help="a sweep folder written by 'robogate sweep'")
    s.add_argument("--max-failure-rate", type=probability, required=True, metavar="RATE",
                   help="the gate's limit, e.g. 0.05")
    s.add_argument("--confidence", type=probability, default=0.95, metavar="C",
                   help="the gate's confidence (default 0.95)")
    s.set_defaults(handler=_envelope_suggest)


def _envelope_suggest(args: argparse.Namespace) -> int:
    from robogate.analysis.suggestion import suggest_envelope
    from robogate.sweep.stored import load_sweep

    df = load_sweep(args.sweep)
    suggestion = suggest_envelope(df, args.max_failure_rate, args.confidence)
    print(suggestion.summary())
    if suggestion.envelope is None:
        return 3
    print(" ".join(f"--envelope {flag}" for flag in suggestion.flags) or "(the whole space: no --envelope flag)")
    print("certify it on fresh experiments only (gate --run on this sweep would also count the rows that chose it):")
    print(suggestion.command(args.sweep, df.attrs["settings"]))
    return 0
