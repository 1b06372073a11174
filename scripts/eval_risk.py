"""Honest evaluation of the risk map: two-stage against an equal-budget Latin Hypercube sweep.

Runs (or resumes) three sweeps of the scripted controller on one arm -- a two-stage sweep
(2,000 LHS + 1,000 boundary), an LHS-only sweep of the same 3,000-experiment budget and a
separate 1,000-experiment uniform test sweep, each with its own seed -- then fits the logistic
RiskModel and the flexible (boosting) model on three training sets (stage 1 of the two-stage
sweep, all of it, the LHS-only sweep) and scores them on data they never saw:

* held-out AUC on the uniform test sweep with a bootstrap 95 % interval, the paired difference
  to the LHS-only model, and the Brier score; a reliability plot;
* near the boundary: ~200 points picked by models fitted on the test sweep (so on none of the
  training sets) where their predicted success lies in 30-70 %, each run with 10 seeds; the
  side accuracy (does the model put the point on the side of 50 % its observed success rate is
  on), the Brier score and the AUC on those repeated episodes.

Prints the table (Markdown), a plain verdict on where the two-stage design wins, and the
friction x mass boundary equation of the two-stage model; writes the tables and figures to
``--out``.  Sweeps are stored under ``--runs`` and resumed, so re-running reuses finished work.

    python scripts/eval_risk.py --runs runs/eval --out runs/eval/results
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, roc_auc_score
from threadpoolctl import threadpool_limits

from flags import parse
from robogate._utils.console import progress_bar
from robogate._utils.seeding import trial_seed
from robogate.analysis.risk import FlexibleRiskModel, RiskModel
from robogate.datasets.stages import errored, first_error
from robogate.envs.scene import default_space
from robogate.execution.executors import LocalExecutor
from robogate.execution.trial import Trial
from robogate.sweep.run import RESUME_ALLOW, run_sweep
from robogate.sweep.sampler import BAND, TwoStageSampler

MODELS = {"logistic": RiskModel, "flexible": FlexibleRiskModel}


@dataclass
class Args:
    env: str = "robogate/PickPlace-Panda-v0"
    """Env id."""
    runs: str = "runs/eval"
    """Folder of the sweep stores (resumed when present)."""
    out: str = "runs/eval/results"
    """Folder for the tables and figures."""
    n_lhs: int = 2000
    """Stage-1 experiments of the two-stage sweep."""
    n_boundary: int = 1000
    """Stage-2 experiments of the two-stage sweep (the LHS-only sweep runs n_lhs + n_boundary)."""
    n_test: int = 1000
    """Experiments of the uniform test sweep."""
    n_near: int = 200
    """Near-boundary test points."""
    repeats: int = 10
    """Seeds per near-boundary point."""
    bootstrap: int = 1000
    """Bootstrap resamples of every interval."""
    workers: int = 2
    """Parallel episodes."""
    seed: int = 0
    """Seeds: two-stage ``seed``, LHS-only ``seed + 1``, test ``seed + 2``, near-boundary ``seed + 3``."""


# ------------------------------------------------------------------------------------------ data


def sweeps(args: Args, executor: LocalExecutor) -> dict[str, pd.DataFrame]:
    """The three sweeps (run or resumed): two-stage, LHS-only of equal budget, uniform test."""
    budget = args.n_lhs + args.n_boundary
    plans = {
        "two_stage": dict(n_lhs=args.n_lhs, n_boundary=args.n_boundary, seed=args.seed),
        "lhs_only": dict(n_lhs=budget, n_boundary=0, seed=args.seed + 1),
        "test": dict(n_lhs=args.n_test, n_boundary=0, seed=args.seed + 2),
    }
    out = {}
    for name, plan in plans.items():
        print(f"sweep {name}: {plan}", file=sys.stderr)
        out[name] = run_sweep(args.env, "scripted", Path(args.runs) / name, executor=executor,
                              resume=RESUME_ALLOW, **plan)
        if errored(out[name]).any():  # a broken harness would pass for failures of the controller
            sys.exit(f"{int(errored(out[name]).sum())} experiments of sweep {name} errored; first: "
                     f"{first_error(out[name])}")
    return out


def near_boundary(args: Args, test: pd.DataFrame, space, executor: LocalExecutor) -> pd.DataFrame:
    """Repeated-seed episodes at points near the boundary, chosen by models fitted on the test sweep.

    Candidates are a Latin Hypercube of 20,000 points; the points kept are those whose success
    predicted by both the logistic and the flexible model (their mean) lies in 30-70 %, a seeded
    random subset of ``n_near`` (the nearest to 50 % if too few are in the band).  Each runs ``repeats`` times; results are cached in the runs folder.
    """
    path = Path(args.runs) / "near_boundary.parquet"
    X, y = test[space.names], ~test["success"].astype(bool)
    models = [cls(space=space, random_state=0).fit(X, y) for cls in MODELS.values()]
    pool = space.to_frame(TwoStageSampler(space, n_lhs=20_000, n_boundary=0, seed=args.seed + 3).ask())
    p_success = 1.0 - np.mean([m.predict_proba(pool)[:, 1] for m in models], axis=0)
    inside = np.flatnonzero((p_success >= BAND[0]) & (p_success <= BAND[1]))
    rng = np.random.default_rng(args.seed + 3)
    if inside.size >= args.n_near:
        chosen = rng.choice(inside, size=args.n_near, replace=False)
    else:  # too few predicted in the band: the candidates nearest to 50 %
        print(f"only {inside.size} candidates predicted in 30-70 %; taking the {args.n_near} nearest to 50 %",
              file=sys.stderr)
        chosen = np.argsort(np.abs(p_success - 0.5), kind="stable")[: args.n_near]
    points = pool.iloc[np.sort(chosen)]
    trials = [
        Trial(id=i * args.repeats + r, env_id=args.env, policy="scripted", params=params,
              seed=trial_seed(args.seed + 3, i * args.repeats + r), stage=1, batch=i)
        for i, params in enumerate(points.astype(object).to_dict("records")) for r in range(args.repeats)
    ]
    plan = pd.DataFrame([{"id": t.id, "point": t.batch, "seed": t.seed, **t.params} for t in trials])
    if path.exists():
        cached = pd.read_parquet(path)
        if cached[plan.columns].astype(str).equals(plan.astype(str)):
            return cached
    print(f"near-boundary points: {len(points)} x {args.repeats} seeds", file=sys.stderr)
    success = {}
    for record in progress_bar(None, iterable=executor.imap_unordered(trials), total=len(trials),
                               desc="near boundary"):
        success[record["id"]] = bool(record["success"])
    plan["success"] = plan["id"].map(success)
    path.parent.mkdir(parents=True, exist_ok=True)
    plan.to_parquet(path)
    return plan


# ------------------------------------------------------------------------------------- metrics


def _auc(y, p, idx):
    return roc_auc_score(y[idx], p[idx])


def evaluate(args: Args, data: dict[str, pd.DataFrame], near: pd.DataFrame, space):
    """Fit every model on every training set; score on the test sweep and near the boundary."""
    two = data["two_stage"]
    training = {
        "stage 1 only": two[two["stage"] == 1],
        "two-stage": two,
        "LHS-only": data["lhs_only"],
    }
    test = data["test"]
    y_test = (~test["success"].astype(bool)).to_numpy()
    y_near = (~near["success"].astype(bool)).to_numpy()
    fail_rate = 1.0 - near.groupby("point")["success"].mean()
    point_of = near["point"].to_numpy()
    points = fail_rate.index.to_numpy()
    decided = fail_rate.to_numpy() != 0.5  # ties say nothing about the side

    rng = np.random.default_rng(args.seed + 4)
    boot_test = [rng.integers(0, len(test), len(test)) for _ in range(args.bootstrap)]
    boot_points = [rng.integers(0, len(points), len(points)) for _ in range(args.bootstrap)]

    fitted, rows, preds = {}, [], {}
    for kind, cls in MODELS.items():
        for name, df in training.items():
            t0 = time.perf_counter()
            with threadpool_limits(limits=1):
                model = cls(space=space, random_state=0).fit(df[space.names], ~df["success"].astype(bool))
            fit_s = time.perf_counter() - t0
            fitted[kind, name] = model
            p_test = model.predict_proba(test[space.names])[:, 1]
            p_point = pd.Series(model.predict_proba(near.drop_duplicates("point")[space.names])[:, 1], index=points)
            p_near = p_point.loc[point_of].to_numpy()
            side = (p_point.to_numpy() > 0.5) == (fail_rate.to_numpy() > 0.5)
            preds[kind, name] = (p_test, side)
            auc_b = np.array([_auc(y_test, p_test, i) for i in boot_test])
            acc_b = np.array([side[i][decided[i]].mean() for i in boot_points])
            rows.append({
                "model": kind, "training set": name, "rows": len(df),
                "added terms": len(model.selection_) - 1 if kind == "logistic" else None,
                "test AUC": roc_auc_score(y_test, p_test), "AUC lo": np.quantile(auc_b, 0.025),
                "AUC hi": np.quantile(auc_b, 0.975), "test Brier": brier_score_loss(y_test, p_test),
                "near side acc": side[decided].mean(), "acc lo": np.quantile(acc_b, 0.025),
                "acc hi": np.quantile(acc_b, 0.975), "near Brier": brier_score_loss(y_near, p_near),
                "near AUC": roc_auc_score(y_near, p_near), "fit s": fit_s,
            })
    table = pd.DataFrame(rows)
    verdicts = []
    for kind in MODELS:
        ref_test, ref_side = preds[kind, "LHS-only"]
        for name in ("two-stage", "stage 1 only"):
            p_test, side = preds[kind, name]
            d_auc = np.array([_auc(y_test, p_test, i) - _auc(y_test, ref_test, i) for i in boot_test])
            d_acc = np.array([side[i][decided[i]].mean() - ref_side[i][decided[i]].mean() for i in boot_points])
            for metric, diff, point in (
                ("test AUC", d_auc, roc_auc_score(y_test, p_test) - roc_auc_score(y_test, ref_test)),
                ("near-boundary side accuracy", d_acc, side[decided].mean() - ref_side[decided].mean()),
            ):
                lo, hi = np.quantile(diff, [0.025, 0.975])
                word = "wins" if lo > 0 else "loses" if hi < 0 else "no clear difference"
                verdicts.append({"model": kind, "training set": name, "metric": metric, "difference": point,
                                 "lo": lo, "hi": hi, "vs LHS-only": word})
    return table, pd.DataFrame(verdicts), fitted, training, {"near points": len(points), "decided": int(decided.sum())}


# ------------------------------------------------------------------------------------- figures


def reliability_figure(fitted, test, space, path: Path) -> None:
    y = ~test["success"].astype(bool)
    fig = Figure(figsize=(10, 4.5))
    for ax, kind in zip(fig.subplots(1, 2), MODELS):
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        for (k, name), model in fitted.items():
            if k != kind:
                continue
            frac, mean = calibration_curve(y, model.predict_proba(test[space.names])[:, 1], n_bins=10, strategy="quantile")
            ax.plot(mean, frac, marker="o", ms=3, label=name)
        ax.set(title=f"{kind} model on the uniform test sweep", xlabel="predicted P(failure)",
               ylabel="observed failure rate", xlim=(0, 1), ylim=(0, 1))
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def boundary_figure(model: RiskModel, df: pd.DataFrame, path: Path) -> None:
    """The two-stage sweep over friction x mass with the model's boundary (the rest at nominal)."""
    fig = Figure(figsize=(6, 5))
    ax = fig.subplots()
    for stage, marker in ((1, "o"), (2, "^")):
        part = df[df["stage"] == stage]
        ok = part["success"].astype(bool)
        ax.scatter(part.loc[ok, "friction"], part.loc[ok, "mass"], s=6, marker=marker, c="#2ca02c", alpha=0.4,
                   label=f"stage {stage} success")
        ax.scatter(part.loc[~ok, "friction"], part.loc[~ok, "mass"], s=6, marker=marker, c="#d62728", alpha=0.4,
                   label=f"stage {stage} failure")
    mass = np.geomspace(0.05, 2.0, 200)
    curve = model.boundary_curve("friction", "mass", mass)
    for j in range(curve.shape[1]):
        ax.plot(curve[:, j], mass, color="black", lw=2, label="P(failure) = 0.5 at nominal" if j == 0 else None)
    ax.set(xscale="log", yscale="log", xlabel="friction", ylabel="mass [kg]",
           title="two-stage sweep and its friction x mass boundary")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def markdown(table: pd.DataFrame, verdicts: pd.DataFrame) -> str:
    lines = ["| model | training set | rows | added terms | test AUC [95 % CI] | test Brier | near-boundary side "
             "accuracy [95 % CI] | near Brier | near AUC |", "|---|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples(index=False):
        terms = "" if pd.isna(r[3]) else int(r[3])
        lines.append(
            f"| {r.model} | {r[1]} | {r.rows} | {terms} | {r[4]:.3f} [{r[5]:.3f}, {r[6]:.3f}] | {r[7]:.3f} | "
            f"{r[8]:.3f} [{r[9]:.3f}, {r[10]:.3f}] | {r[11]:.3f} | {r[12]:.3f} |"
        )
    lines += ["", "| model | training set | metric | difference to LHS-only [95 % CI] | verdict |", "|---|---|---|---|---|"]
    for r in verdicts.itertuples(index=False):
        lines.append(f"| {r.model} | {r[1]} | {r.metric} | {r.difference:+.3f} [{r.lo:+.3f}, {r.hi:+.3f}] | {r[6]} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse(Args, __doc__, argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    space = default_space()
    with LocalExecutor(args.workers) as executor:  # one pool of workers for every episode
        data = sweeps(args, executor)
        near = near_boundary(args, data["test"], space, executor)
    table, verdicts, fitted, training, counts = evaluate(args, data, near, space)
    text = markdown(table, verdicts)
    two = fitted["logistic", "two-stage"]
    equation = two.boundary_equation("friction", "mass")
    wins = verdicts[(verdicts["training set"] == "two-stage") & (verdicts["vs LHS-only"] == "wins")]
    if len(wins):
        verdict = "Two-stage beats the equal-budget LHS-only sweep on: " + "; ".join(
            f"{r.model} {r.metric} ({r.difference:+.3f})" for r in wins.itertuples())
    else:
        verdict = ("Two-stage does not beat the equal-budget LHS-only sweep on any measure here "
                   "(no 95 % interval of a difference excludes zero in its favour).")
    success = {k: float(v["success"].mean()) for k, v in data.items()}
    report = "\n".join([
        f"# Risk-map evaluation: {args.env}, scripted controller", "",
        f"Training: two-stage {args.n_lhs} + {args.n_boundary} (seed {args.seed}); LHS-only "
        f"{args.n_lhs + args.n_boundary} (seed {args.seed + 1}). Test: uniform sweep of {args.n_test} "
        f"(seed {args.seed + 2}); {counts['near points']} near-boundary points x {args.repeats} seeds "
        f"({counts['decided']} with a decided side). Bootstrap: {args.bootstrap} resamples.",
        "Success rates: " + ", ".join(f"{k} {v:.3f}" for k, v in success.items()) +
        f", near-boundary episodes {near['success'].mean():.3f}.", "",
        text, "", verdict, "", "Friction x mass boundary of the logistic model on the two-stage sweep:", "",
        "```", equation, "```", "", "Selected terms (two-stage, logistic):", "",
        "```", two.coefficients_.round(4).to_string(), "```",
    ])
    print(report)
    (out / "eval_risk.md").write_text(report + "\n", encoding="utf-8")
    table.to_csv(out / "eval_table.csv", index=False)
    verdicts.to_csv(out / "eval_verdicts.csv", index=False)
    two.save(out / "risk_model_two_stage.json")
    reliability_figure(fitted, data["test"], space, out / "reliability.png")
    boundary_figure(two, data["two_stage"], out / "boundary_friction_mass.png")
    print(f"\nwritten: {out}/eval_risk.md, eval_table.csv, eval_verdicts.csv, reliability.png, "
          "boundary_friction_mass.png, risk_model_two_stage.json", file=sys.stderr)


if __name__ == "__main__":
    main()
