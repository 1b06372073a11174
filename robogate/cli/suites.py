"""``robogate suite run|list`` and ``robogate compare``: fixed scenario suites and paired policy comparison."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from robogate._utils.console import PROG
from robogate.cli.flags import EXECUTOR, OUT, POLICY_HELP, PROGRESS, WORKERS, CLIError, positive_int


def add_suite(subparsers: Any) -> None:
    """Register ``robogate suite run|list``."""
    p = subparsers.add_parser(
        "suite",
        help="run a policy on a fixed, versioned scenario suite (e.g. robogate-68)",
        description="Scenario suites: named, versioned files of fixed scenes and seeds that every policy runs on.",
    )
    sub = p.add_subparsers(dest="suite_command", metavar="ACTION", required=True)
    r = sub.add_parser(
        "run",
        parents=[OUT, WORKERS, EXECUTOR, PROGRESS],
        usage=(f"{PROG} suite run --env ENV_ID --policy SPEC [--suite NAME|FILE] --out DIR [options]\n"
               f"       {PROG} suite run --out DIR --resume [options]"),
        help="run a policy on every episode of a suite; write eval_info.json and an HTML report",
        description=(
            "Run a policy on every episode of a suite (in the suite's shuffled order, on an executor) and store "
            "each record under --out as it finishes. Prints success per category with 95 % Wilson intervals and "
            "writes DIR/eval_info.json (LeRobot's keys) and DIR/report/report.html. A killed run continues "
            "with --resume, which reads the env, the policy and the suite from the stored run (any given must "
            "match). Exit status 4 when episodes errored (the policy raised: a broken harness), 5 on an unexpected "
            "error."
        ),
    )
    r.add_argument("--env", dest="env_id", metavar="ENV_ID",
                   help="env id, e.g. robogate/PickPlace-Panda-v0 (required unless --resume)")
    r.add_argument("--policy", metavar="SPEC", help=f"{POLICY_HELP} (required unless --resume)")
    r.add_argument("--suite", metavar="NAME|FILE",
                   help="a shipped suite (robogate suite list) or a .toml / .json suite file (default robogate-68)")
    r.add_argument("--resume", action="store_true",
                   help="continue the run stored in --out, with its settings (an error if --out holds none)")
    r.set_defaults(handler=_suite_run)
    ls = sub.add_parser("list", help="list the shipped suites", description="The suites shipped with robogate.")
    ls.set_defaults(handler=_suite_list)


def _suite_run(args: argparse.Namespace) -> int:
    from robogate.analysis.stats import EXIT_CODES
    from robogate.reports.suite import write_suite_report
    from robogate.suites.run import EVAL_INFO, run_suite, stored_settings

    given = {"env_id": args.env_id, "policy": args.policy, "suite": args.suite}
    if args.resume:  # settings left out are the stored run's; those given must match it
        settings = {k: stored if given[k] is None else given[k] for k, stored in stored_settings(args.out).items()}
    else:
        settings = {**given, "suite": args.suite or "robogate-68"}
    missing = [flag for key, flag in (("env_id", "--env"), ("policy", "--policy")) if settings[key] is None]
    if missing:
        raise CLIError(f"the following arguments are required: {', '.join(missing)} (or --resume)")
    try:
        run = run_suite(settings["env_id"], settings["policy"], settings["suite"], args.out, executor=args.executor,
                        workers=args.workers, address=args.address, resume=args.resume, progress=args.progress)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; finished episodes are stored in {args.out}, continue with --resume",
              file=sys.stderr)
        return 130
    print(run.summary())
    print(f"eval_info: {run.path / EVAL_INFO}")
    print(f"report: {write_suite_report(run)}")
    return EXIT_CODES["error"] if len(run.errors) else 0


def _suite_list(args: argparse.Namespace) -> int:
    from robogate.suites.suite import load_suite, suite_names

    for name in suite_names():
        suite = load_suite(name)
        counts = ", ".join(f"{c} {sum(s.category == c for s in suite.scenarios)}" for c in suite.categories)
        print(f"{suite.label}: {len(suite.scenarios)} scenarios ({counts}), {len(suite.episodes())} episodes")
    return 0


def add_compare(subparsers: Any) -> None:
    """Register ``robogate compare``."""
    p = subparsers.add_parser(
        "compare",
        parents=[WORKERS, EXECUTOR, PROGRESS],
        help="compare a candidate policy with a baseline on the same scenes and seeds (exit 0 pass, 1 worse, "
             "3 undecided, 4 episodes errored, 5 an unexpected error)",
        description=(
            "Pair two runs episode by episode (the same scenes and seeds) and decide whether the candidate is "
            "better, worse, or, with --non-inferiority, not worse than the baseline by more than the margin. "
            "CANDIDATE and BASELINE are suite-run folders ('robogate suite run'), sweep folders made with the same "
            "seed and space (their uniform stage-1 rows pair), or policy specs to run now on --suite: their episodes "
            "run in batches until the sequential test decides. Exit status: 0 better or not worse, 1 worse, "
            "3 undecided, 4 some episodes errored (a broken harness), 2 usage error, 5 an unexpected error (a bug, "
            "never a verdict). Writes a report listing the "
            "scenarios whose outcome flipped."
        ),
    )
    p.add_argument("candidate", metavar="CANDIDATE", help="the new policy: a run folder or a policy spec")
    p.add_argument("baseline", metavar="BASELINE", help="the policy it must match: a run folder or a policy spec")
    p.add_argument("--non-inferiority", type=float, metavar="MARGIN",
                   help="pass unless the candidate is surely worse by more than MARGIN, e.g. 0.05 (five points)")
    p.add_argument("--confidence", type=float, default=0.95, metavar="C", help="confidence (default 0.95)")
    p.add_argument("--suite", metavar="NAME|FILE", help="suite to run policy specs on (default: the stored run's, "
                                                        "else robogate-68)")
    p.add_argument("--env", dest="env_id", metavar="ENV_ID", help="env to run policy specs on (default: the stored "
                                                                 "run's)")
    p.add_argument("--out", metavar="DIR", help="folder for the runs of policy specs (DIR/candidate, DIR/baseline) "
                                                "and the report (DIR/report); default CANDIDATE/comparison")
    p.add_argument("--batch-size", type=positive_int, default=40, metavar="B",
                   help="paired episodes run between looks of the sequential test (default 40)")
    p.set_defaults(handler=_compare)


def _compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from robogate.reports.comparison import write_comparison_report
    from robogate.suites.comparison import compare

    out = args.out
    if out is None:
        if not Path(args.candidate).is_dir():
            raise CLIError("--out is needed to run a policy (its episodes and the report are stored there)")
        out = str(Path(args.candidate) / "comparison")
    result = compare(args.candidate, args.baseline, args.non_inferiority, confidence=args.confidence,
                     suite=args.suite, env_id=args.env_id, out=out, batch_size=args.batch_size,
                     executor=args.executor, workers=args.workers, address=args.address, progress=args.progress)
    print(result.reason)
    table = result.by_category()
    if table["p_value"].isna().all():  # sequential: no fixed-budget p-value
        table = table.drop(columns="p_value")
    print(table.to_string(index=False, float_format="{:.3f}".format))
    flips = result.flip_summary()
    if len(flips):
        print("flipped (lost: only the baseline succeeded; gained: only the candidate):")
        print(flips.to_string(index=False, max_colwidth=60))
    print(f"report: {write_comparison_report(result, Path(out) / 'report')}")
    return result.exit_code
