"""Does the sweep teach the monitor? The failure predictor on unseen scenes and an unseen arm, beside the
unsupervised scores and SAFE's published figures.

1. Sweep the policy (``--sweep-lhs`` + ``--sweep-boundary`` experiments of the 8-D space) and replay
   a balanced training set of its rows as labelled rollouts (failures and successes alike,
   boundary rows first): ``robogate rollouts record --from-sweep DIR --balanced`` from Python.
2. Choose the predictor's target and model by cross-validation over scene cells (shape and
   placement): each fold holds a third of the cells out of training, so the choice rewards what
   carries over to scenes not trained on; never on a test set.
3. Unseen scenes: for each held-out region (capsules and plates; two or more obstacles; heavy
   objects; the raised targets) train on the training rollouts outside it and test on scenes of
   that region alone (the training envelope with that parameter moved into the region).
4. Unseen arm: train on every Panda training rollout, test on the UR5e and the xArm6 (in-envelope
   scenes and one-factor shifts) with the same policy checkpoint.
5. Every threshold is split-conformal on successful in-envelope rollouts of the test's arm, kept
   apart from every training set. Beside the predictor, on the same test rollouts: the predictor
   OR the dynamics score, each unsupervised score and the library's default monitor, fitted on
   those successes. Every ROC-AUC, TPR and share caught before the failure event is also given
   on episodes cut to a common horizon (``_cut``: the length nine in ten successful test
   episodes reach), so that no figure rests on episode length.
6. A learning curve over 50, 100, 200 and 400 training failures (random subsets), and the
   predictor's per-step cost.

Every predictor is trained with three seeds (weights, batches and early-stopping split); its rows
give the mean and the range over them.

Prints every table and writes them as CSV under ``--out``.

    python scripts/eval_predictor.py [--out runs/predictor_eval]
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold

from flags import parse
from robogate.monitor import FailureMonitor, FailurePredictor, scores
from robogate.monitor.metrics import common_horizon, episode_table, summarize
from robogate.monitor.recording import training_rows
from robogate.monitor.scores import Step
from robogate.reports.monitor import SAFE
from robogate.scenarios.shifts import one_factor_shifts
from robogate.sweep.run import run_sweep
from robogate.sweep.stored import load_sweep
from robogate.training.demonstrations import TRAINING_ENVELOPE
from rollout_cache import cached_rollouts

PANDA, OTHER_ARMS = "robogate/PickPlace-Panda-v0", ("robogate/PickPlace-UR5e-v0", "robogate/PickPlace-XArm6-v0")
REGIONS = {
    "capsules and plates": ("shape", ("capsule", "plate")),
    "2+ obstacles": ("obstacles", (2, 4)),
    "heavy objects": ("mass", (1.0, 2.0)),
    "raised targets": ("placement", ("raised_low", "raised_high", "reach_limit_raised")),
}
"""Held-out scene regions: a parameter and where it lies in the region."""
CANDIDATES = [{"model": "mlp", "target": "episode"}, {"model": "mlp", "target": "horizon", "horizon": 10},
              {"model": "mlp", "target": "horizon", "horizon": 20}, {"model": "gru", "target": "horizon", "horizon": 10}]
"""Predictor configurations compared by cross-validation over scene cells."""
CELL = ("shape", "placement")
"""The parameters whose combination names a scene cell for the cross-validation."""
FOLDS, SEEDS = 3, (0, 1, 2)
CURVE = (50, 100, 200, 400)


@dataclass
class Args:
    out: str = "runs/predictor_eval"
    """Folder for the sweep, the rollouts and the tables."""
    policy: str = "flow"
    """Policy spec."""
    sweep_lhs: int = 1200
    """Stage-1 experiments of the sweep."""
    sweep_boundary: int = 600
    """Stage-2 experiments of the sweep."""
    train: int = 1000
    """Labelled training rollouts replayed from the sweep."""
    calibration: int = 150
    """In-envelope rollouts per arm whose successes calibrate every threshold."""
    region_test: int = 150
    """Test rollouts per held-out region."""
    arm_test: int = 100
    """In-envelope test rollouts per arm; one-factor shifts 1.5 times as many."""
    workers: int = 2
    """Parallel episodes."""
    seed: int = 0
    """Base seed."""


def in_region(params: dict, region: str) -> bool:
    name, where = REGIONS[region]
    value = params[name]
    return value in where if isinstance(where[0], str) else where[0] <= value <= where[1]


def region_scenes(region: str, n: int, seed: int) -> list[dict]:
    """The training envelope with the region's parameter moved into the region."""
    name, where = REGIONS[region]
    return TRAINING_ENVELOPE.updated({name: where}).sample(n, seed)


def evaluate_scores(predictors: list[FailurePredictor], calibration: list, test: list) -> list[dict]:
    """The predictor alone and OR the dynamics score (mean and range over its seeds), each unsupervised score
    and the default monitor, every one calibrated on ``calibration``."""
    unsupervised = FailureMonitor(scores=scores.usable([r for r in calibration if r.success])).fit(calibration)
    monitors = {name: unsupervised.as_default().recalibrate(scores=(name,)) for name in unsupervised.score_objects_}
    monitors["default monitor (rnd OR obs_rnd)"] = unsupervised.as_default()
    horizon = common_horizon(test)

    def row(monitor: FailureMonitor) -> dict:
        s, cut = summarize(episode_table(monitor, test)), summarize(episode_table(monitor, test, horizon=horizon))
        return {"episodes": s["episodes"], "failures": s["failures"], "roc_auc": s["roc_auc"], "tpr": s["tpr"],
                "tpr_lower": s["tpr_lower"], "tnr": s["tnr"], "alarm_before_failure": s["early_tpr"],
                "lead_time_median_s": s["lead_time_median_s"], "roc_auc_cut": cut["roc_auc"], "tpr_cut": cut["tpr"],
                "alarm_before_failure_cut": cut["early_tpr"], "horizon": horizon}

    rows = []
    for name, extra in (("predictor", []), ("predictor OR dynamics", ["dynamics"])):  # dynamics fitted beside it
        seeds = pd.DataFrame([row(FailureMonitor(scores=[p, *extra]).fit(calibration)) for p in predictors])
        rows.append({"score": f"{name} ({len(predictors)} seeds)", **seeds.mean().to_dict(),
                     "auc_min": seeds["roc_auc"].min(), "auc_max": seeds["roc_auc"].max()})
    return rows + [{"score": name, **row(monitor)} for name, monitor in monitors.items()]


def trained(settings: dict, rollouts: list) -> list[FailurePredictor]:
    """One predictor per seed of :data:`SEEDS`."""
    return [FailurePredictor(seed=seed, **settings).fit(rollouts) for seed in SEEDS]


def auc(predictor: FailurePredictor, rollouts: list) -> float:
    """ROC-AUC of the max-so-far predicted failure probability."""
    return float(roc_auc_score([not r.success for r in rollouts], [predictor.score(r).max() for r in rollouts]))


def show(title: str, rows) -> pd.DataFrame:
    table = pd.DataFrame(rows)
    print(f"\n{title}\n{table.to_string(index=False, float_format='{:.3f}'.format)}")
    return table


def choose_model(labelled: list, seed: int) -> dict:
    """Target and model, chosen by cross-validation over held-out scene cells."""
    cells = [tuple(r.params[name] for name in CELL) for r in labelled]
    folds = list(GroupKFold(n_splits=FOLDS).split(labelled, groups=[str(c) for c in cells]))
    rows = []
    for candidate in CANDIDATES:
        start, aucs = time.perf_counter(), []
        for fit_part, val_part in folds:
            predictor = FailurePredictor(seed=seed, **candidate).fit([labelled[i] for i in fit_part])
            aucs.append(auc(predictor, [labelled[i] for i in val_part]))
        rows.append({**candidate, "validation_auc": float(np.mean(aucs)), "fold_min": min(aucs),
                     "fold_max": max(aucs), "train_s": (time.perf_counter() - start) / FOLDS})
    held_out = np.mean([len({cells[i] for i in val}) for _, val in folds])
    return show(f"target and model: ROC-AUC on held-out scene cells ({FOLDS} folds, {held_out:.0f} cells "
                "held out in each)", rows)


def unseen_scenes(chosen: dict, labelled: list, calibration: list, record, n: int, base: int) -> pd.DataFrame:
    """Trained without each region, tested on it alone."""
    rows = []
    for i, region in enumerate(REGIONS):
        outside = [r for r in labelled if not in_region(r.params, region)]
        test = record(f"region-{i}", PANDA, n, region_scenes(region, n, base + 10 + i), base + 10 + i)
        for row in evaluate_scores(trained(chosen, outside), calibration, test):
            rows.append({"held out": region, "trained on": len(outside), **row})
    return show("unseen scenes: trained without the region, tested on it alone", rows)


def unseen_arms(predictors: list, calibration: dict, record, n: int, base: int) -> tuple[pd.DataFrame, dict]:
    """The Panda-trained predictors on each arm (the Panda for reference); also returns each arm's test rollouts."""
    rows, tests = [], {}
    for i, env in enumerate((PANDA, *OTHER_ARMS)):
        arm = env.split("-")[1]
        shifted = one_factor_shifts(TRAINING_ENVELOPE).sample(int(1.5 * n), base + 30 + i)
        tests[env] = (record(f"test-in-{arm}", env, n, None, base + 20 + i)
                      + record(f"test-shift-{arm}", env, int(1.5 * n), shifted, base + 30 + i))
        for row in evaluate_scores(predictors, calibration[env], tests[env]):
            rows.append({"arm": arm + (" (trained on)" if env == PANDA else " (unseen)"), **row})
    table = show("unseen arm: trained on Panda rollouts, same checkpoint on each arm", rows)
    print(f"SAFE (published): unseen-task ROC-AUC {SAFE['roc_auc'][0]:.2f}-{SAFE['roc_auc'][1]:.2f} in simulation, "
          "0.64-0.88 on real robots")
    return table, tests


def learning_curve(chosen: dict, labelled: list, arm_tests: dict, seed: int) -> pd.DataFrame:
    """ROC-AUC of predictors trained on growing numbers of failures (and as many successes)."""
    failures = [r for r in labelled if not r.success]
    successes = [r for r in labelled if r.success]
    unseen = [r for env in OTHER_ARMS for r in arm_tests[env]]
    rng = np.random.default_rng(seed)
    rows = []
    for n in CURVE:
        if n > len(failures):
            print(f"learning curve: only {len(failures)} training failures, {n} skipped")
            continue
        subset = ([failures[i] for i in rng.choice(len(failures), n, replace=False)]
                  + [successes[i] for i in rng.choice(len(successes), min(n, len(successes)), replace=False)])
        small = FailurePredictor(seed=seed, **chosen).fit(subset)
        rows.append({"failures": n, "successes": min(n, len(successes)), "auc_unseen_arms": auc(small, unseen),
                     "auc_panda": auc(small, arm_tests[PANDA])})
    return show("learning curve: ROC-AUC of the max-so-far score against training failures", rows)


def step_cost(predictor: FailurePredictor, calibration: list, rollouts: list) -> None:
    """Print the median time of one streaming update, the predictor's against the default monitor's."""
    steps = [Step(t, observations=o, embeddings=e, action_chunks=c) for r in rollouts
             for t, (o, e, c) in enumerate(zip(r.observations, r.embeddings, r.action_chunks))]
    default = FailureMonitor().fit(calibration)
    cost = {}
    for name, stream_of in (("predictor", predictor.stream), ("default monitor", None)):
        times = []
        stream = None
        for step in steps:
            if step.step == 0:
                stream = stream_of() if stream_of else None
                default.reset()
            start = time.perf_counter()
            if stream is not None:
                stream.update(step)
            else:
                default.update(step.embeddings, observation=step.observations)
            times.append(time.perf_counter() - start)
        cost[name] = float(np.median(times))
    print(f"\nper step on one core: predictor {cost['predictor'] * 1e6:.0f} us, default monitor "
          f"{cost['default monitor'] * 1e6:.0f} us (ratio {cost['predictor'] / cost['default monitor']:.2f})")


def main() -> None:
    args = parse(Args, __doc__)
    out = Path(args.out)
    sweep_dir = out / "sweep"
    run_sweep(PANDA, args.policy, sweep_dir, n_lhs=args.sweep_lhs, n_boundary=args.sweep_boundary, seed=args.seed,
              workers=args.workers, resume=(sweep_dir / "manifest.json").exists())
    sweep = load_sweep(sweep_dir)
    picked = training_rows(sweep, args.train, args.seed)
    print(f"sweep: {len(sweep)} experiments, {int(sweep['success'].sum())} successes; training set: "
          f"{int((~picked['success'].astype(bool)).sum())} failures, {int(picked['success'].sum())} successes")

    def record(name: str, env_id: str, episodes: int, params, seed: int) -> list:
        return cached_rollouts(out / "rollouts" / name, env_id, args.policy, episodes, params, seed, args.workers)

    base = 1000 * args.seed
    labelled = record("train", PANDA, len(picked), picked, base + 1)
    calibration = {env: record(f"calibration-{env.split('-')[1]}", env, args.calibration, None, base + 2 + i)
                   for i, env in enumerate((PANDA, *OTHER_ARMS))}
    choice = choose_model(labelled, args.seed)
    chosen = CANDIDATES[int(choice["validation_auc"].idxmax())]
    print(f"chosen: {chosen}")
    regions = unseen_scenes(chosen, labelled, calibration[PANDA], record, args.region_test, base)
    predictors = trained(chosen, labelled)
    arms, arm_tests = unseen_arms(predictors, calibration, record, args.arm_test, base)
    curve = learning_curve(chosen, labelled, arm_tests, args.seed)
    step_cost(predictors[0], calibration[PANDA], arm_tests[PANDA][:30])
    for name, table in (("choice", choice), ("regions", regions), ("arms", arms), ("curve", curve)):
        table.to_csv(out / f"{name}.csv", index=False)
    predictors[0].save(out / "predictor")
    print(f"\ntables: {out}/*.csv; predictor trained on every Panda rollout (seed {SEEDS[0]}): {out / 'predictor'}")


if __name__ == "__main__":
    main()
