"""``robogate policy demos|train``: demonstrations and behaviour cloning of the learned FlowPolicy."""

from __future__ import annotations

import argparse
from typing import Any

from robogate.cli.flags import (
    EXECUTOR,
    OUT,
    POLICY_HELP,
    PROGRESS,
    SEED,
    WORKERS,
    add_envelope_flag,
    add_format_flag,
    non_negative_int,
    positive_int,
    saved_at,
)


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
        parents=[OUT, SEED, WORKERS, EXECUTOR, PROGRESS],
        help="record a demonstrator's episodes (by default the scripted controller) over a training envelope",
        description=(
            "Run a demonstrator on scenarios spread over a training envelope (a Latin Hypercube; default: the "
            "env's own, robogate.training.demonstrations.TRAINING_ENVELOPE for robogate's envs) and store every episode in "
            "DIR/demos.parquet, or with --format lerobot as a LeRobot v3.0 dataset in DIR."
        ),
    )
    d.add_argument("--env", dest="env_id", required=True, metavar="ENV_ID",
                   help="env id, e.g. robogate/PickPlace-Panda-v0, or module:EnvId for an env of your own")
    d.add_argument("--policy", metavar="SPEC",
                   help=f"the demonstrator: {POLICY_HELP} (default scripted on robogate's envs; required on any other)")
    d.add_argument("--episodes", type=positive_int, required=True, metavar="N", help="episodes to record")
    add_format_flag(d, "demos.parquet")
    add_envelope_flag(d, "Replaces that entry of the default training envelope; the others keep theirs.")
    d.set_defaults(handler=_policy_demos)
    t = sub.add_parser(
        "train",
        parents=[OUT, PROGRESS],
        help="train a FlowPolicy on recorded demonstrations",
        description=(
            "Train a FlowPolicy on the successful episodes of DEMOS (validation split, early stopping) and "
            "write DIR/policy.pt, DIR/loss.png and DIR/training.json. The defaults are the recipe of the "
            "checkpoint shipped with robogate."
        ),
    )
    t.add_argument("demos", metavar="DEMOS", help="a folder written by 'robogate policy demos' (either --format)")
    t.add_argument("--epochs", type=positive_int, metavar="N", help="most epochs")
    t.add_argument("--patience", type=positive_int, metavar="N", help="epochs without improvement before stopping")
    t.add_argument("--horizon", type=positive_int, metavar="H", help="actions per chunk")
    t.add_argument("--n-action-steps", type=positive_int, metavar="K", help="actions executed per chunk")
    t.add_argument("--seed", type=non_negative_int, metavar="S", help="training seed (default 0)")
    t.add_argument("--threads", type=positive_int, default=1, metavar="T", help="torch threads (default 1)")
    t.set_defaults(handler=_policy_train)


def _policy_demos(args: argparse.Namespace) -> int:
    from robogate.training.demonstrations import DEMOS_FILE, load_demos, record_demos

    path = record_demos(args.env_id, args.episodes, args.out, policy=args.policy,
                        envelope=_training_envelope(args.envelope, args.env_id), seed=args.seed, executor=args.executor, workers=args.workers, address=args.address,
                        progress=args.progress, format=args.format)
    episodes, _ = load_demos(path)
    successes = sum(e.success for e in episodes)
    print(f"{len(episodes)} episodes, {successes} successes ({successes / len(episodes):.0%}), "
          f"{sum(e.steps for e in episodes)} steps")
    print(f"demos: {saved_at(args.out, DEMOS_FILE, args.format)}")
    return 0


def _policy_train(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from robogate.policies.flow import FlowConfig
    from robogate.training.flow import TrainConfig, train_flow_policy

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


def _training_envelope(texts: list[str] | None, env_id: str, base: Any = None) -> Any:
    """``base`` (default: the env's training envelope) with the ``--envelope`` entries replacing its own."""
    from robogate.scenarios.envelope import Envelope
    from robogate.training.demonstrations import training_envelope

    base = training_envelope(base, env_id)
    return base.updated(Envelope.parse(texts or [], base.space))
