"""Success of a learned policy at nominal parameters and over its training envelope, beside the scripted one.

For each arm asked for, runs N seeded episodes at the nominal scenario and N
episodes spread over the training envelope (a Latin Hypercube, one seed each)
with the learned policy and, on the very same scenarios and seeds, with the
scripted controller; prints success rates with 95 % Clopper-Pearson intervals
and the outcome mix. ``--shifts`` adds, per parameter, N scenarios with that
parameter moved just outside the envelope (``robogate.scenarios.shifts.one_factor_shifts``):
where the learned policy stops generalising and the scripted one does not.
The seeds default to a range no demonstration used.

    python scripts/eval_flow.py                                  # the shipped Panda checkpoint
    python scripts/eval_flow.py --policy flow:runs/flow/policy.pt --episodes 100 --workers 2
    python scripts/eval_flow.py --shifts --episodes 50
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

from scipy.stats import binomtest

from flags import parse
from robogate._utils.seeding import trial_seed
from robogate.execution.executors import LocalExecutor
from robogate.execution.specs import make_policy
from robogate.execution.trial import Trial
from robogate.scenarios.shifts import one_factor_shifts
from robogate.training.demonstrations import training_envelope

EVAL_SEED = 1000
"""Seed of the evaluation scenarios; demonstrations are recorded with small seeds (default 0)."""


@dataclass
class Args:
    policy: str = "flow"
    """Policy spec: 'flow' (the shipped checkpoint), 'flow:PATH' or 'package.module:Factory'."""
    env: tuple[str, ...] = ()
    """Env ids to evaluate on (default: the env the policy was trained on)."""
    episodes: int = 100
    """Episodes per set of scenarios."""
    seed: int = EVAL_SEED
    """Seed of the scenarios."""
    workers: int = 2
    """Parallel episodes."""
    baseline: bool = True
    """Also run the scripted controller on the same scenarios and seeds."""
    shifts: bool = False
    """Also each parameter moved just outside the envelope."""


def scenario_sets(episodes: int, seed: int, envelope, shifts: bool) -> dict[str, list[tuple[dict, int]]]:
    """Named sets of (params, seed): nominal, the envelope, and optionally one set per shifted parameter."""
    seeds = [trial_seed(seed, i) for i in range(episodes)]
    envelope = training_envelope(envelope)
    sets = {"nominal": [({}, s) for s in seeds], "envelope": list(zip(envelope.sample(episodes, seed), seeds))}
    if shifts:
        for name, shifted in one_factor_shifts(envelope).envelopes().items():
            sets[f"shift {shifted.describe_entry(name)}"] = list(zip(shifted.sample(episodes, seed), seeds))
    return sets


def evaluate(executor: LocalExecutor, env_id: str, policy: str, cases: list[tuple[dict, int]]) -> list[dict]:
    trials = [Trial(i, env_id, policy, p, s, 1, 0) for i, (p, s) in enumerate(cases)]
    return sorted(executor.imap_unordered(trials), key=lambda r: r["id"])


def line(label: str, records: list[dict], seconds: float) -> str:
    n, k = len(records), sum(r["success"] for r in records)
    ci = binomtest(k, n).proportion_ci(0.95, method="exact")
    mix = ", ".join(f"{o} {c}" for o, c in Counter(r["outcome"] for r in records).most_common())
    return f"{label:<60} {k / n:6.2f}  [{ci.low:.2f}, {ci.high:.2f}]  {seconds:6.0f} s   {mix}"


def main() -> None:
    args = parse(Args, __doc__)
    policy = make_policy(args.policy)
    envs = args.env or [policy.env_id or "robogate/PickPlace-Panda-v0"]
    print(f"{args.policy} (trained on {policy.env_id}); {args.episodes} episodes per set, seed {args.seed}")
    print(f"{'policy / env / scenarios':<60} {'success':>6}  95% CI         time    outcomes")
    sets = scenario_sets(args.episodes, args.seed, policy.envelope, args.shifts)
    with LocalExecutor(args.workers) as ex:
        for env_id in envs:
            for kind, cases in sets.items():
                specs = [args.policy] + (["scripted"] if args.baseline else [])
                for spec in specs:
                    start = time.perf_counter()
                    records = evaluate(ex, env_id, spec, cases)
                    arm = env_id.split("-")[1]
                    print(line(f"{spec.split(':')[0]} / {arm} / {kind}", records, time.perf_counter() - start),
                          flush=True)


if __name__ == "__main__":
    main()
