"""The ``robogate`` command line.

Each subcommand is a function ``add_<name>(subparsers)`` that builds its parser
and sets ``handler``; :data:`SUBCOMMANDS` lists them.  A handler gets the
parsed arguments and returns an exit code.  Expected errors (bad input, an
unusable out folder) print one ``robogate: error: ...`` line and exit with 2.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from robogate.console import PROG, warning_printer

__all__ = ["main", "build_parser", "SUBCOMMANDS"]

POLICY_HELP = ("'scripted', 'flow' (the learned policy shipped with robogate), 'flow:PATH' (a FlowPolicy "
               "checkpoint, or the folder 'policy train' wrote) or 'package.module:Factory'")


EXIT_INTERNAL = 5
"""Exit status of an unexpected error (a bug in robogate, or in the env or policy it ran): never 0, 1 or 3,
which a CI pipeline reads as verdicts."""


class CLIError(Exception):
    """An error to report as one line, with exit status 2."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose subcommands refuse what they do not know themselves: with their own usage
    and, for a mistyped flag, the closest one (argparse would leave it to the top-level parser)."""

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> tuple[argparse.Namespace, list[str]]:
        namespace, extras = super().parse_known_args(args, namespace)
        if extras and self.get_default("handler") is not None:  # the subcommand the arguments were for
            flags = [s for action in self._actions for s in action.option_strings]
            hints = [close[0] for given in extras if given.startswith("-")
                     for close in [difflib.get_close_matches(given.split("=", 1)[0], flags, n=1)] if close]
            hint = f"; did you mean {' and '.join(dict.fromkeys(hints))}?" if hints else ""
            self.error(f"unrecognized arguments: {' '.join(extras)}{hint}")
        return namespace, extras


def _int_at_least(minimum: int, words: str) -> Callable[[str], int]:
    """An argparse type for integers >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a {words} integer, got {text!r}")
        return value

    return parse


_positive_int = _int_at_least(1, "positive")
_non_negative_int = _int_at_least(0, "non-negative")


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0.0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a non-negative number of seconds, got {text!r}")
    return value


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}")
    return value


def _add_format_flag(p: argparse.ArgumentParser, file_name: str) -> None:
    from robogate.episode_file import EPISODE_FORMATS

    p.add_argument("--format", choices=EPISODE_FORMATS, default="parquet",
                   help=f"'parquet' (default): DIR/{file_name}; 'lerobot': DIR becomes a LeRobot v3.0 dataset "
                        "(meta/, data/) that LeRobotDataset loads")


def _saved_at(out: str, file_name: str, format: str) -> str:
    """Where ``--format`` put the recorded episodes, for the last line a command prints."""
    from pathlib import Path

    return f"{out} (LeRobot v3.0 dataset)" if format == "lerobot" else str(Path(out) / file_name)


ENVELOPE_METAVAR = "NAME=LOW:HIGH|NAME=A,B"


def _add_envelope(parser: argparse.ArgumentParser, rest: str) -> None:
    """The one ``--envelope`` option (see :meth:`robogate.envelope.Envelope.parse`); ``rest`` says what
    the command does with the parameters it does not name."""
    parser.add_argument("--envelope", action="append", metavar=ENVELOPE_METAVAR,
                        help="limit one parameter: a range (friction=0.4:1.2, obstacles=0:2; LOW=HIGH fixes it) "
                             f"or allowed values (shape=box,cylinder, obstacles=0,2); repeat for more. {rest}")


# Flags several commands share, each defined once in a parent parser (``parents=[...]``). Those of how a
# command runs form one group in its help: argparse merges the parents' groups of the same title.
_RUN_GROUP = "how it runs"


def _run_flags() -> tuple[argparse.ArgumentParser, ...]:
    """The parents of how a command runs: ``--workers``; ``--executor`` and ``--address``; ``--no-progress``."""
    workers, executor, progress = (argparse.ArgumentParser(add_help=False) for _ in range(3))
    workers.add_argument_group(_RUN_GROUP).add_argument(
        "--workers", type=_positive_int, metavar="K", help="parallel episodes (default: all cores)")
    group = executor.add_argument_group(_RUN_GROUP)
    group.add_argument("--executor", default="local", metavar="NAME",
                       help="where episodes run: 'local' (a process pool, default), 'ray', or an executor "
                            "registered with robogate.executors.register or an entry point")
    group.add_argument("--address", metavar="ADDR", help="where the executor runs, e.g. a Ray cluster address")
    progress.add_argument_group(_RUN_GROUP).add_argument(
        "--no-progress", dest="progress", action="store_false", default=None,
        help="hide the progress bar (drawn by default only when stderr is a terminal)")
    return workers, executor, progress


_WORKERS, _EXECUTOR, _PROGRESS = _run_flags()

_OUT = argparse.ArgumentParser(add_help=False)
"""The folder a command writes (its description says what goes there)."""
_OUT.add_argument("--out", required=True, metavar="DIR", help="output folder")

_SEED = argparse.ArgumentParser(add_help=False)
_SEED.add_argument("--seed", type=_non_negative_int, default=0, metavar="S", help="seed (default 0)")


# ------------------------------------------------------------------------------------ sweep


def add_sweep(subparsers: Any) -> None:
    """Register ``robogate sweep``."""
    p = subparsers.add_parser(
        "sweep",
        parents=[_OUT, _WORKERS, _EXECUTOR, _PROGRESS],
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
    p.add_argument("--n-lhs", type=_non_negative_int, metavar="N",
                   help="stage-1 (Latin Hypercube) budget (required unless --resume)")
    p.add_argument("--n-boundary", type=_non_negative_int, metavar="M",
                   help="stage-2 (boundary) budget (required unless --resume)")
    p.add_argument("--batch-size", type=_positive_int, metavar="B", help="stage-2 points per surrogate refit")
    p.add_argument("--band", type=_probability, nargs=2, metavar=("LO", "HI"),
                   help="success-probability band of stage 2 (default 0.3 0.7)")
    p.add_argument("--seed", type=_non_negative_int, metavar="S", help="sweep seed (default 0)")
    p.add_argument("--resume", action="store_true",
                   help="continue the sweep stored in --out (an error if --out holds none)")
    p.set_defaults(handler=_sweep)


def _sweep(args: argparse.Namespace) -> int:

    from robogate.runner import default_policy
    from robogate.sampling import BAND
    from robogate.sweep import check_resumable, format_summary, run_sweep, summarize
    from robogate.sweep_config import SweepConfig

    given = {"env_id": args.env_id, "policy": args.policy, "n_lhs": args.n_lhs, "n_boundary": args.n_boundary,
             "batch_size": args.batch_size, "band": tuple(args.band) if args.band else None, "seed": args.seed}
    if args.resume:
        check_resumable(args.out)
    stored = SweepConfig.read(args.out) if args.resume else None
    if stored is not None:  # settings left out are the stored sweep's
        settings = {k: getattr(stored, k) if v is None else v for k, v in given.items()}
    else:
        settings = {"band": BAND, "seed": 0, **{k: v for k, v in given.items() if v is not None}}
    flags = {"env_id": "--env", "n_lhs": "--n-lhs", "n_boundary": "--n-boundary"}
    missing = [flag for key, flag in flags.items() if settings.get(key) is None]
    if missing:
        raise CLIError(f"the following arguments are required: {', '.join(missing)}")
    if settings.get("policy") is None:
        settings["policy"] = default_policy(settings["env_id"])
    try:
        df = run_sweep(
            settings["env_id"],
            settings["policy"],
            args.out,
            space=stored.space if stored is not None else None,
            n_lhs=settings["n_lhs"],
            n_boundary=settings["n_boundary"],
            band=tuple(settings["band"]),
            batch_size=settings.get("batch_size"),
            seed=settings["seed"],
            executor=args.executor,
            workers=args.workers,
            address=args.address,
            resume=args.resume,
            progress=args.progress,
        )
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; finished experiments are stored in {args.out}, "
              "continue with --resume", file=sys.stderr)
        return 130
    summary = summarize(df)
    print(format_summary(summary))
    print(f"results: {args.out}")
    return _all_errored(summary)


def _all_errored(summary: dict[str, Any]) -> int:
    """0, or the gate's error status after one line on stderr when every experiment errored."""
    from robogate.stats import EXIT_CODES

    if not summary["rows"] or summary["errors"] < summary["rows"]:
        return 0
    print(f"{PROG}: error: every one of the {summary['rows']} experiments errored, so the sweep says nothing about "
          f"the policy; first error: {summary['first_error']}", file=sys.stderr)
    return EXIT_CODES["error"]


# ----------------------------------------------------------------------------------- report


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
    _add_envelope(p, "An operating envelope to gate; parameters left out keep their full range.")
    p.add_argument("--max-failure-rate", type=_probability, metavar="RATE",
                   help="the limit of the gate (required with --envelope, as for 'gate') and of the suggested "
                        "envelope (default 0.05), e.g. 0.05")
    p.add_argument("--confidence", type=_probability, default=0.95, metavar="C",
                   help="the confidence of the gate and of the suggested envelope (default 0.95)")
    p.add_argument("--no-gallery", dest="gallery", action="store_false",
                   help="leave out the failure gallery (it replays one episode per failure mode)")
    p.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    from robogate.report import write_report

    if args.envelope and args.max_failure_rate is None:
        raise CLIError("--envelope needs --max-failure-rate (the gate's limit, e.g. 0.05)")
    rate = {} if args.max_failure_rate is None else {"max_failure_rate": args.max_failure_rate}
    path = write_report(args.dirs, args.out, envelope=args.envelope, confidence=args.confidence, gallery=args.gallery,
                        **rate)
    print(f"report: {path} and {path.with_name('report.md')}")
    return 0


# ------------------------------------------------------------------------------------- gate


def add_gate(subparsers: Any) -> None:
    """Register ``robogate gate``."""
    p = subparsers.add_parser(
        "gate",
        parents=[_WORKERS, _EXECUTOR, _PROGRESS],
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
    _add_envelope(p, "Parameters left out keep their full range.")
    p.add_argument("--max-failure-rate", type=_probability, required=True, metavar="RATE",
                   help="largest acceptable failure rate, e.g. 0.05")
    p.add_argument("--confidence", type=_probability, default=0.95, metavar="C",
                   help="confidence of the verdict (default 0.95)")
    p.add_argument("--run", action="store_true",
                   help="run experiments inside the envelope until decided (on --executor, with --workers)")
    p.add_argument("--max-experiments", type=_non_negative_int, default=1000, metavar="N",
                   help="with --run: run at most N experiments (default 1000)")
    p.add_argument("--batch-size", type=_positive_int, default=20, metavar="B",
                   help="with --run: experiments between looks (default 20)")
    p.set_defaults(handler=_gate)


def _gate(args: argparse.Namespace) -> int:
    from robogate.envelope import Envelope
    from robogate.gating import gate
    from robogate.load import load_sweep
    from robogate.sweep import run_gate

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


# ------------------------------------------------------------------------------------- demo

DEMO = {"env_id": "robogate/PickPlace-Panda-v0", "policy": "scripted", "n_lhs": 160, "n_boundary": 80,
        "batch_size": 20, "seed": 0,
        "envelope": ["friction=0.4:1.2", "mass=0.05:0.5", "size=0.03:0.07", "ik_noise=0:0.003", "obstacles=0",
                     "shape=box", "placement=center,left,right,near,far,left_near,right_near,left_far,right_far"],
        "max_failure_rate": 0.1, "gate_experiments": 300}
"""The embedded demo: a small two-stage sweep of the scripted controller on the Panda; the gate for a
box-handling cell, run until decided (``gate --run``); the report; then a monitored rollout of the
learned policy."""
DEMO_PHASES = 5
"""The demo's phases, one status line each: sweep, gate, report, monitor calibration, monitored rollout."""


def add_demo(subparsers: Any) -> None:
    """Register ``robogate demo``."""
    p = subparsers.add_parser(
        "demo",
        parents=[_WORKERS, _PROGRESS],
        help="sweep the scripted controller on the Panda (240 episodes), gate an envelope until decided, write "
             "the report, then watch the learned policy fail under a shift with the runtime monitor",
        description=(
            f"Run a {DEMO['n_lhs']}+{DEMO['n_boundary']} two-stage sweep of the scripted controller on "
            f"{DEMO['env_id']} over the 8-D default space; run experiments inside the envelope "
            f"{' '.join(DEMO['envelope'])} until the gate is decided at a {DEMO['max_failure_rate']:.0%} limit "
            f"(as 'robogate gate --run' does, at most {DEMO['gate_experiments']}); write DIR/report/report.html "
            "with that verdict; then calibrate a failure monitor on successful rollouts of the shipped flow policy "
            "and run one monitored episode outside its training envelope. Re-running continues an interrupted demo."
        ),
    )
    p.add_argument("--out", default="runs/demo", metavar="DIR", help="results folder (default runs/demo)")
    p.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from robogate.envelope import Envelope
    from robogate.executors import make_executor
    from robogate.monitor.demo import monitored_demo
    from robogate.report import write_report
    from robogate.space import default_space
    from robogate.sweep import RESUME_ALLOW, format_summary, run_gate, run_sweep, summarize

    phases = iter(range(1, DEMO_PHASES + 1))

    def status(text: str) -> None:  # one line as each phase starts, seen at once in a log too
        print(f"[{next(phases)}/{DEMO_PHASES}] {text}", flush=True)

    with make_executor("local", args.workers) as executor:  # one pool of workers for every phase
        status(f"sweep: {DEMO['n_lhs']} uniform + {DEMO['n_boundary']} boundary-focused experiments of the "
               f"{DEMO['policy']} controller on {DEMO['env_id']}, stored in {args.out}")
        df = run_sweep(
            DEMO["env_id"], DEMO["policy"], args.out, n_lhs=DEMO["n_lhs"], n_boundary=DEMO["n_boundary"],
            batch_size=DEMO["batch_size"], seed=DEMO["seed"], executor=executor, resume=RESUME_ALLOW,
            progress=args.progress,
        )
        print(format_summary(summarize(df)), flush=True)
        space = default_space()  # the demo sweeps the default space
        status(f"gate: experiments inside a box-handling envelope until its {DEMO['max_failure_rate']:.0%} limit "
               f"is decided (at most {DEMO['gate_experiments']})")
        decision = run_gate(args.out, Envelope.parse(DEMO["envelope"], space), DEMO["max_failure_rate"],
                            max_experiments=DEMO["gate_experiments"], executor=executor, progress=args.progress)
        print(f"gate: {decision.reason}", flush=True)
        status("report: risk map, danger zones and the gate's verdict")
        path = write_report([args.out], None, envelope=DEMO["envelope"], max_failure_rate=DEMO["max_failure_rate"])
        print(f"report: {path} and {path.with_name('report.md')}", flush=True)
        watched = monitored_demo(Path(args.out) / "monitor", DEMO["env_id"], progress=args.progress, status=status,
                                 executor=executor)  # the sweep's workers, their simulators loaded
    print(watched.summary())
    return 0


# ----------------------------------------------------------------------------------- policy


def _training_envelope(texts: list[str] | None, env_id: str, base: Any = None) -> Any:
    """``base`` (default: the env's training envelope) with the ``--envelope`` entries replacing its own."""
    from robogate.demos import training_envelope
    from robogate.envelope import Envelope

    base = training_envelope(base, env_id)
    return base.updated(Envelope.parse(texts or [], base.space))


def add_policy(subparsers: Any) -> None:
    """Register ``robogate policy demos|train``."""
    p = subparsers.add_parser(
        "policy",
        help="record scripted demonstrations and train the learned FlowPolicy on them",
        description="Behaviour cloning of robogate's learned action-chunk policy (conditional flow matching).",
    )
    sub = p.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    d = sub.add_parser(
        "demos",
        parents=[_OUT, _SEED, _WORKERS, _EXECUTOR, _PROGRESS],
        help="record a demonstrator's episodes (by default the scripted controller) over a training envelope",
        description=(
            "Run a demonstrator on scenarios spread over a training envelope (a Latin Hypercube; default: the "
            "env's own, robogate.demos.TRAINING_ENVELOPE for robogate's envs) and store every episode in "
            "DIR/demos.parquet, or with --format lerobot as a LeRobot v3.0 dataset in DIR."
        ),
    )
    d.add_argument("--env", dest="env_id", required=True, metavar="ENV_ID",
                   help="env id, e.g. robogate/PickPlace-Panda-v0, or module:EnvId for an env of your own")
    d.add_argument("--policy", metavar="SPEC",
                   help=f"the demonstrator: {POLICY_HELP} (default scripted on robogate's envs; required on any other)")
    d.add_argument("--episodes", type=_positive_int, required=True, metavar="N", help="episodes to record")
    _add_format_flag(d, "demos.parquet")
    _add_envelope(d, "Replaces that entry of the default training envelope; the others keep theirs.")
    d.set_defaults(handler=_policy_demos)
    t = sub.add_parser(
        "train",
        parents=[_OUT, _PROGRESS],
        help="train a FlowPolicy on recorded demonstrations",
        description=(
            "Train a FlowPolicy on the successful episodes of DEMOS (validation split, early stopping) and "
            "write DIR/policy.pt, DIR/loss.png and DIR/training.json. The defaults are the recipe of the "
            "checkpoint shipped with robogate."
        ),
    )
    t.add_argument("demos", metavar="DEMOS", help="a folder written by 'robogate policy demos' (either --format)")
    t.add_argument("--epochs", type=_positive_int, metavar="N", help="most epochs")
    t.add_argument("--patience", type=_positive_int, metavar="N", help="epochs without improvement before stopping")
    t.add_argument("--horizon", type=_positive_int, metavar="H", help="actions per chunk")
    t.add_argument("--n-action-steps", type=_positive_int, metavar="K", help="actions executed per chunk")
    t.add_argument("--seed", type=_non_negative_int, metavar="S", help="training seed (default 0)")
    t.add_argument("--threads", type=_positive_int, default=1, metavar="T", help="torch threads (default 1)")
    t.set_defaults(handler=_policy_train)


def _policy_demos(args: argparse.Namespace) -> int:
    from robogate.demos import DEMOS_FILE, load_demos, record_demos

    path = record_demos(args.env_id, args.episodes, args.out, policy=args.policy,
                        envelope=_training_envelope(args.envelope, args.env_id), seed=args.seed, executor=args.executor, workers=args.workers, address=args.address,
                        progress=args.progress, format=args.format)
    episodes, _ = load_demos(path)
    successes = sum(e.success for e in episodes)
    print(f"{len(episodes)} episodes, {successes} successes ({successes / len(episodes):.0%}), "
          f"{sum(e.steps for e in episodes)} steps")
    print(f"demos: {_saved_at(args.out, DEMOS_FILE, args.format)}")
    return 0


def _policy_train(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from robogate.policies.flow import FlowConfig
    from robogate.training import TrainConfig, train_flow_policy

    arch = {"horizon": args.horizon, "n_action_steps": args.n_action_steps}
    opt = {"epochs": args.epochs, "patience": args.patience, "seed": args.seed}
    config = replace(FlowConfig(), **{k: v for k, v in arch.items() if v is not None})
    train = replace(TrainConfig(), **{k: v for k, v in opt.items() if v is not None})
    result = train_flow_policy(args.demos, args.out, config=config, train=train, threads=args.threads,
                               progress=args.progress)
    best = result.history.set_index("epoch").loc[result.best_epoch]
    print(f"trained on {result.train_episodes} episodes (validation {result.val_episodes}) in "
          f"{result.seconds:.0f} s; best epoch {result.best_epoch} of {len(result.history)}, "
          f"validation loss {best['val_loss']:.4f}")
    print(f"policy: {result.path}")
    return 0


# --------------------------------------------------------------------------------- rollouts


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
        parents=[_OUT, _SEED, _WORKERS, _EXECUTOR, _PROGRESS],
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
    r.add_argument("--episodes", type=_positive_int, required=True, metavar="N", help="episodes to record")
    source = r.add_mutually_exclusive_group()
    source.add_argument("--params", metavar="JSON", help='fixed scenario, e.g. \'{"friction": 0.2}\'')
    _add_envelope(source, "Replaces that entry of the policy's training envelope; the others keep theirs.")
    source.add_argument("--shifted", action="store_true",
                        help="scenarios just outside the training envelope, one parameter at a time in turn")
    source.add_argument("--from-sweep", metavar="DIR", help="replay the scenarios (and seeds) of a stored sweep")
    pick = r.add_mutually_exclusive_group()
    pick.add_argument("--failures-only", action="store_true", help="with --from-sweep: only its failed experiments")
    pick.add_argument("--balanced", action="store_true",
                      help="with --from-sweep: a training set for 'monitor train': failures and successes in equal "
                           "numbers where the sweep has them, boundary (stage-2) rows first")
    r.add_argument("--chunks", type=_non_negative_int, default=0, metavar="B",
                   help="chunks sampled per step, for the scores that read them (ace, consistency; 32 is what they "
                        "were measured with); default 0: the default monitor reads none")
    _add_format_flag(r, "rollouts.parquet")
    r.set_defaults(handler=_rollouts_record)


def _rollouts_record(args: argparse.Namespace) -> int:
    import json
    from collections import Counter

    from robogate.monitor.recording import ROLLOUTS_FILE, record_rollouts
    from robogate.runner import cached_policy, default_policy

    for flag, given in (("--failures-only", args.failures_only), ("--balanced", args.balanced)):
        if given and not args.from_sweep:
            raise CLIError(f"{flag} needs --from-sweep")
    if args.policy is None:
        args.policy = default_policy(args.env_id, "flow")
    params: Any = None
    if args.params:
        try:
            params = json.loads(args.params)
        except json.JSONDecodeError as exc:
            raise CLIError(f"--params is not valid JSON: {exc}") from None
    elif args.envelope or args.shifted:
        from robogate.demos import training_envelope
        from robogate.shifts import one_factor_shifts

        base = training_envelope(getattr(cached_policy(args.policy), "envelope", None), args.env_id)
        if args.shifted and not base.limits:
            raise CLIError(f"--shifted records scenes just outside a training envelope, and neither the policy nor "
                           f"{args.env_id} declares one: declare training_envelope on the env (e.g. "
                           "robogate.ScenarioWrapper(..., training_envelope=...))")
        if args.shifted:
            params = one_factor_shifts(base).sample(args.episodes, args.seed)
        else:
            params = _training_envelope(args.envelope, args.env_id, base).sample(args.episodes, args.seed)
    elif args.from_sweep:
        from robogate.load import load_sweep

        params = load_sweep(args.from_sweep)
        if args.failures_only:
            params = params[~params["success"].astype(bool)]
        elif args.balanced:
            from robogate.monitor.recording import training_rows

            params = training_rows(params, args.episodes, args.seed)
        if len(params) < args.episodes:
            raise CLIError(f"the sweep in {args.from_sweep} has {len(params)} matching experiments, "
                           f"fewer than --episodes {args.episodes}")
    rollouts = record_rollouts(
        args.env_id, args.policy, args.episodes, params, args.seed, args.chunks, executor=args.executor,
        workers=args.workers, address=args.address, progress=args.progress, out=args.out, format=args.format,
    )
    counts = Counter(r.outcome for r in rollouts)
    print(f"{len(rollouts)} rollouts: " + ", ".join(f"{k} {v}" for k, v in counts.most_common()))
    print(f"rollouts: {_saved_at(args.out, ROLLOUTS_FILE, args.format)}")
    return 0


# ---------------------------------------------------------------------------------- monitor


def add_monitor(subparsers: Any) -> None:
    """Register ``robogate monitor calibrate|train|eval|makespan``.

    Choices and defaults come from :mod:`robogate.monitor.settings` and
    :mod:`robogate.monitor.conformal`, which load without PyTorch; score names are checked
    against the registry before any rollout is read.
    """
    from robogate.monitor.conformal import THRESHOLD_STYLES
    from robogate.monitor.settings import COMBINES, DEFAULT_SCORES, DEFAULTS, MODELS, TARGETS

    p = subparsers.add_parser(
        "monitor",
        help="calibrate the runtime failure monitor on recorded rollouts and evaluate it",
        description="The conformal failure monitor: plug-in failure scores calibrated on successful rollouts only.",
    )
    sub = p.add_subparsers(dest="monitor_command", metavar="ACTION", required=True)
    c = sub.add_parser(
        "calibrate",
        parents=[_OUT],
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
    c.add_argument("--alpha", type=_probability, metavar="A", help=f"false-alarm rate (default {DEFAULTS['alpha']})")
    c.add_argument("--window", type=_positive_int, metavar="W", help=f"steps summed (default {DEFAULTS['window']})")
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
    c.add_argument("--seed", type=_non_negative_int, default=0, metavar="S", help="seed of the split (default 0)")
    c.set_defaults(handler=_monitor_calibrate)
    t = sub.add_parser(
        "train",
        parents=[_OUT, _SEED, _PROGRESS],
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
    t.add_argument("--horizon", type=_non_negative_int, default=10, metavar="K",
                   help="with --target horizon: steps before the failure event (default 10)")
    t.add_argument("--model", choices=MODELS, default=MODELS[0], help="network (default mlp)")
    t.add_argument("--epochs", type=_positive_int, default=200, metavar="N", help="most epochs (default 200)")
    t.set_defaults(handler=_monitor_train)
    e = sub.add_parser(
        "eval",
        parents=[_PROGRESS],
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
    m = sub.add_parser(
        "makespan",
        help="decide whether stopping on alarm and retrying saves a production cell time, and at which threshold",
        description=(
            "A cell attempts each task until it succeeds and resets after every attempt that does not. Predict "
            "its makespan (seconds per completed task) from labelled ROLLOUTS (successes and failures, drawn as the "
            "cell draws attempts) running every attempt to its end, and stopping each on the monitor's alarm, for "
            "each alpha of the saved monitor; pick the alpha with the shortest makespan, and say 'stop on alarm' "
            "only when the saving's interval lies above zero. Exit status 0: stop on alarm; 1: run to the end; "
            "2: usage error."
        ),
    )
    m.add_argument("rollouts", nargs="+", metavar="ROLLOUTS", help="labelled rollout files or folders (validation)")
    m.add_argument("--monitor", required=True, metavar="DIR", help="a monitor saved by 'robogate monitor calibrate'")
    m.add_argument("--reset-time", required=True, type=_non_negative_float, metavar="S",
                   help="seconds to reset the cell after an attempt that did not succeed")
    m.add_argument("--test", nargs="+", metavar="ROLLOUTS", help="test rollouts to check the verdict on")
    m.add_argument("--alphas", nargs="+", type=_probability, metavar="A",
                   help="thresholds to sweep (default 0.01 to 0.5; those the monitor's calibration is too small for "
                        "are skipped)")
    m.add_argument("--confidence", type=_probability, default=0.95, metavar="C",
                   help="of the intervals (default 0.95)")
    m.add_argument("--report", metavar="DIR", help="write a report with the makespan against the threshold")
    m.add_argument("--save", metavar="DIR", help="save the monitor recalibrated at the chosen alpha")
    m.add_argument("--seed", type=_non_negative_int, default=0, metavar="S", help="seed of the bootstrap (default 0)")
    m.set_defaults(handler=_monitor_makespan)


def _load_rollout_files(paths: Sequence[str]) -> list:
    from robogate.monitor.recording import load_rollouts

    return [r for path in paths for r in load_rollouts(path)]


def _set_name(path: str) -> str:
    from pathlib import Path

    p = Path(path)
    return p.name if p.is_dir() else (p.parent.name or p.stem)


def _monitor_calibrate(args: argparse.Namespace) -> int:
    from robogate.episode_file import resolve_episode_file
    from robogate.monitor import FailureMonitor, FailurePredictor
    from robogate.monitor import scores as registry
    from robogate.monitor.evaluation import ScoredSet, search_grid, select_settings
    from robogate.monitor.settings import DEFAULT_SCORES

    given = {k: getattr(args, k) for k in ("alpha", "window", "combine", "threshold") if getattr(args, k) is not None}
    FailureMonitor(**given, scores=args.scores)  # settings and score names are checked before any rollout is read
    predictor = FailurePredictor.load(args.predictor) if args.predictor else None
    for path in [*args.rollouts, *(args.calibration or []), *(args.validation or [])]:
        resolve_episode_file(path)
    rollouts = _load_rollout_files(args.rollouts)
    calibration = _load_rollout_files(args.calibration) if args.calibration else None
    candidates = args.scores
    if (args.validation or predictor) and candidates is None:
        # With validation rollouts, every score the rollouts carry signals for is a candidate; else the defaults
        # they carry signals for.
        usable = registry.usable([r for r in rollouts if r.success])
        candidates = usable if args.validation else [name for name in DEFAULT_SCORES if name in usable]
    if predictor is not None:
        candidates = [*candidates, predictor]
    monitor = FailureMonitor(**given, scores=candidates, seed=args.seed).fit(rollouts, calibration)
    if args.validation:
        validation = ScoredSet.score(monitor, "validation", _load_rollout_files(args.validation))
        grid = search_grid(monitor, fixed_scores=args.scores is not None, **given)
        monitor, table = select_settings(monitor, validation, grid=grid)
        row = table[table["chosen"]].iloc[0]
        print(f"chosen on {validation.describe()}: {monitor.describe()} (there TPR {row['tpr']:.2f}, "
              f"TNR {row['tnr']:.2f}, balanced accuracy {row['balanced_accuracy']:.2f})")
    path = monitor.save(args.out)
    print(f"monitor: {monitor.describe()}")
    print(f"saved: {path}")
    return 0


def _monitor_train(args: argparse.Namespace) -> int:
    from collections import Counter

    from robogate.episode_file import resolve_episode_file
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
    from robogate.monitor.evaluation import ScoredSet, evaluate
    from robogate.monitor.recording import load_rollouts
    from robogate.monitor.report import COLUMNS, write_monitor_report

    if not args.tests and not args.in_envelope:
        raise CLIError("give at least one test set: TEST_ROLLOUTS or --in-envelope ROLLOUTS")
    monitor = FailureMonitor.load(args.monitor)
    tests = [ScoredSet.score(monitor, _set_name(p), load_rollouts(p), in_envelope=True) for p in args.in_envelope]
    tests += [ScoredSet.score(monitor, _set_name(p), load_rollouts(p)) for p in args.tests]
    validation = (ScoredSet.score(monitor, "validation", _load_rollout_files(args.validation))
                  if args.validation else None)
    chosen, results, grids = evaluate(monitor, tests, validation, progress=args.progress)
    print(results[[c for c in COLUMNS if c in results.columns]].to_string(index=False, float_format="{:.3f}".format))
    out = Path(args.report) if args.report else Path(args.monitor) / "report"
    path = write_monitor_report(out, chosen, results, grids, tests, title=f"Failure monitor: {args.monitor}",
                                notes=["Test sets: " + "; ".join(t.describe() for t in tests) + "."])
    print(f"report: {path}")
    return 0


def _monitor_makespan(args: argparse.Namespace) -> int:
    from robogate.episode_file import resolve_episode_file
    from robogate.monitor import FailureMonitor
    from robogate.monitor.makespan import ALPHAS, STOP_ON_ALARM, choose_threshold
    from robogate.monitor.makespan_report import write_makespan_report

    monitor = FailureMonitor.load(args.monitor)
    for path in [*args.rollouts, *(args.test or [])]:
        resolve_episode_file(path)
    alphas = args.alphas or ALPHAS
    settings = dict(alphas=alphas, confidence=args.confidence, seed=args.seed)
    decision = choose_threshold(_load_rollout_files(args.rollouts), monitor, args.reset_time, **settings)
    e = decision.estimate
    print(f"decision: {decision.verdict} (threshold: alpha {decision.alpha:g})")
    low, high = e.intervals["saving"]
    print(f"predicted seconds per completed task: run to the end {e.run_to_end:.2f}, stop on alarm "
          f"{e.stop_on_alarm:.2f}; saving {e.saving:.2f} s ({e.makespan.relative_saving:.1%}), "
          f"{e.confidence:.0%} interval [{low:.2f}, {high:.2f}] s, on {e.episodes} rollouts ({e.failures} failures)")
    print(decision.reason)
    test_curve = None
    if args.test:
        test_curve = choose_threshold(_load_rollout_files(args.test), monitor, args.reset_time, **settings).curve
        row = test_curve[test_curve["alpha"] == decision.alpha].iloc[0]
        holds = (row["saving_low"] > 0) == (decision.verdict == STOP_ON_ALARM)
        print(f"on the test rollouts at alpha {decision.alpha:g}: saving {row['saving']:.2f} s, interval "
              f"[{row['saving_low']:.2f}, {row['saving_high']:.2f}] s ({int(row['episodes'])} rollouts): "
              + ("the verdict holds" if holds else "the test rollouts do not confirm the verdict"))
    if args.save:
        print(f"monitor at alpha {decision.alpha:g}: {decision.monitor.save(args.save)}")
    if args.report:
        notes = [f"Monitor {args.monitor}: {monitor.describe()}. Validation: {', '.join(args.rollouts)}"
                 + (f"; test: {', '.join(args.test)}." if args.test else ".")]
        print(f"report: {write_makespan_report(args.report, decision, test_curve=test_curve, notes=notes)}")
    return decision.exit_code


# ------------------------------------------------------------------------------------ suite


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
        parents=[_OUT, _WORKERS, _EXECUTOR, _PROGRESS],
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
    from robogate.stats import EXIT_CODES
    from robogate.suite_run import EVAL_INFO, run_suite, stored_settings

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
    print(f"report: {run.path / 'report' / 'report.html'}")
    return EXIT_CODES["error"] if len(run.errors) else 0


def _suite_list(args: argparse.Namespace) -> int:
    from robogate.suite import load_suite, suite_names

    for name in suite_names():
        suite = load_suite(name)
        counts = ", ".join(f"{c} {sum(s.category == c for s in suite.scenarios)}" for c in suite.categories)
        print(f"{suite.label}: {len(suite.scenarios)} scenarios ({counts}), {len(suite.episodes())} episodes")
    return 0


# ---------------------------------------------------------------------------------- compare


def add_compare(subparsers: Any) -> None:
    """Register ``robogate compare``."""
    p = subparsers.add_parser(
        "compare",
        parents=[_WORKERS, _EXECUTOR, _PROGRESS],
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
    p.add_argument("--batch-size", type=_positive_int, default=40, metavar="B",
                   help="paired episodes run between looks of the sequential test (default 40)")
    p.set_defaults(handler=_compare)


def _compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from robogate.compare import compare

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
    print(f"report: {result.write_report(Path(out) / 'report')}")
    return result.exit_code


# ----------------------------------------------------------------------------------- replay


def add_replay(subparsers: Any) -> None:
    """Register ``robogate replay``."""
    from robogate.replay import FORMATS

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
    p.add_argument("--id", dest="ids", type=_non_negative_int, nargs="+", action="extend", metavar="N",
                   help="experiment ids to replay")
    p.add_argument("--outcome", metavar="NAME", help="replay experiments that ended so, e.g. collision")
    p.add_argument("--count", type=_positive_int, default=1, metavar="K",
                   help="with --outcome: how many, the first by id (default 1)")
    p.add_argument("--out", metavar="DIR", help="folder for the animations (default SWEEP/replay)")
    p.add_argument("--format", choices=FORMATS, default="gif", help="gif (default) or mp4 (needs ffmpeg)")
    p.add_argument("--policy", metavar="SPEC", help=f"replay with this policy instead of the sweep's: {POLICY_HELP}")
    p.set_defaults(handler=_replay)


def _replay(args: argparse.Namespace) -> int:
    from pathlib import Path

    from robogate.replay import replay

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


# --------------------------------------------------------------------------------- envelope


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
    s.add_argument("--max-failure-rate", type=_probability, required=True, metavar="RATE",
                   help="the gate's limit, e.g. 0.05")
    s.add_argument("--confidence", type=_probability, default=0.95, metavar="C",
                   help="the gate's confidence (default 0.95)")
    s.set_defaults(handler=_envelope_suggest)


def _envelope_suggest(args: argparse.Namespace) -> int:
    from robogate.load import load_sweep
    from robogate.suggest import suggest_envelope

    df = load_sweep(args.sweep)
    suggestion = suggest_envelope(df, args.max_failure_rate, args.confidence)
    print(suggestion.summary())
    if suggestion.envelope is None:
        return 3
    print(" ".join(f"--envelope {flag}" for flag in suggestion.flags) or "(the whole space: no --envelope flag)")
    print("certify it on fresh experiments only (gate --run on this sweep would also count the rows that chose it):")
    print(suggestion.command(args.sweep, df.attrs["settings"]))
    return 0


# ------------------------------------------------------------------------------------- main

#: Functions registering the subcommands, in help order.
SUBCOMMANDS: list[Callable[[Any], None]] = [add_sweep, add_report, add_gate, add_suite, add_compare, add_demo,
                                             add_policy, add_rollouts, add_monitor, add_replay,
                                             add_envelope]


def build_parser() -> argparse.ArgumentParser:
    """The ``robogate`` argument parser with every subcommand."""
    parser = _Parser(
        prog=PROG, description="Find where a robot manipulation policy fails before deployment.",
        epilog="Exit status: 0 done (gate: pass; compare: better or not worse; monitor makespan: stop on alarm); "
               "1 gate: fail, compare: worse, monitor makespan: run to the end; "
               "2 usage error; 3 gate: inconclusive, compare: undecided; 4 the experiments errored (the policy "
               "raised: a broken harness, not a verdict); 5 an unexpected error (a bug, never a verdict); "
               "130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(PROG)
    except PackageNotFoundError:  # pragma: no cover - run from a source tree that is not installed
        from robogate import __version__

        return __version__


def _expected_errors() -> tuple[type[BaseException], ...]:
    from concurrent.futures.process import BrokenProcessPool

    from robogate.store import StoreError

    return (ValueError, StoreError, ImportError, ConnectionError, BrokenProcessPool, CLIError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``robogate`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 on success, 2 on an error (reported in one line on
        stderr), 130 when interrupted; ``gate`` adds 1 fail and 3
        inconclusive, ``compare`` 1 worse and 3 undecided, and ``gate``,
        ``sweep``, ``suite run`` and ``compare`` give 4 when the experiments
        themselves errored.  An unexpected error (a bug, never a verdict) is
        one line and :data:`EXIT_INTERNAL`, 5.  Progress bars are drawn only
        when stderr is a terminal; warnings print as one ``robogate: warning:``
        line each.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = warning_printer(set())
            return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except _expected_errors() as exc:
        print(f"{PROG}: error: {_one_line(exc) or type(exc).__name__}", file=sys.stderr)
        return 2
    except Exception as exc:  # a crash must not read as a verdict
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        print(f"{PROG}: internal error: {type(exc).__name__}: {_one_line(exc)} (in {frame.name}, "
              f"{os.path.basename(frame.filename)} line {frame.lineno}); a bug, not a verdict: exit status "
              f"{EXIT_INTERNAL}", file=sys.stderr)
        return EXIT_INTERNAL


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


if __name__ == "__main__":
    sys.exit(main())
