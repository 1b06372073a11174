"""The sweep report: Markdown plus a self-contained HTML page, for one sweep or several side by side.

:func:`write_report` reads sweep folders and writes, as a
:class:`~robogate.reports.document.Document`, ``report.md`` (figures as PNG files beside
it) and ``report.html`` (the same figures embedded as base64 PNG, one file that
opens offline).  Sections, one function each: provenance, the run summary
(:func:`robogate.sweep.summary.summarize_sweep`), success per parameter with Clopper–Pearson
intervals and the sweep's stage-2 band, risk maps over parameter pairs with the
closed-form boundary and the sampled points, ROC and reliability curves on
held-out uniform rows, the risk model's coefficients and boundary equations,
danger zones (universal ones marked when several sweeps are compared), and the
gate verdict for an envelope.

Figures are drawn on :class:`matplotlib.figure.Figure` objects directly: no
pyplot state, no backend switch.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from robogate._utils.plotting import plain_log_labels
from robogate.analysis.gating import evidence, gate
from robogate.analysis.risk import INTERCEPT, MIN_PER_OUTCOME, FlexibleRiskModel, RiskModel, term_parameters
from robogate.analysis.stats import clopper_pearson
from robogate.analysis.suggestion import suggest_envelope
from robogate.analysis.zones import danger_zones, parameter_bins
from robogate.datasets.stages import STAGE_BOUNDARY, STAGE_GATE, STAGE_LHS, errored, first_error, uniform_rows
from robogate.reports.animation import row_params
from robogate.reports.colours import outcome_colours
from robogate.reports.document import Document, cell_text
from robogate.reports.gallery import TRIES, Shot, add_gallery, describe_scene
from robogate.scenarios.envelope import Envelope
from robogate.scenarios.space import Categorical, Continuous, Integer, ParameterSpace
from robogate.sweep.stored import load_sweep
from robogate.sweep.summary import summarize_sweep

__all__ = ["write_report"]

ARM_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
_WIDE_CATEGORY = 7
"""A category with more values than this gets a full row of the success figure (its labels stay readable)."""
_HEATMAP_PAIRS = 3
_TOP_ZONES = 15
_TOP_TERMS = 20
_VERSIONED = ("robogate", "numpy", "scipy", "pandas", "pyarrow", "scikit-learn", "matplotlib", "pybullet",
              "gymnasium")


# ------------------------------------------------------------------------------------ sweeps


@dataclass
class _Sweep:
    """One sweep folder, read once."""

    name: str
    path: Path
    df: pd.DataFrame
    settings: dict[str, Any]

    @property
    def space(self) -> ParameterSpace:
        return self.settings["space"]

    @property
    def judged(self) -> pd.DataFrame:
        """The rows that did not error: the evidence about the policy (an errored row is a broken harness)."""
        return self.df[~errored(self.df)]


def _arm(env_id: Any) -> str:
    """``"robogate/PickPlace-Panda-v0"`` -> ``"Panda"``."""
    text = str(env_id or "sweep").split("/")[-1]
    return text.split("-")[1] if text.count("-") >= 2 else text


def _read(sweeps: Any) -> list[_Sweep]:
    if isinstance(sweeps, (str, os.PathLike)):
        sweeps = [sweeps]
    named = dict(sweeps) if isinstance(sweeps, Mapping) else None
    paths = list(named.values()) if named is not None else list(sweeps)
    if not paths:
        raise ValueError("write_report needs at least one sweep folder")
    out = []
    for i, path in enumerate(paths):
        df = load_sweep(path)
        settings = df.attrs["settings"]
        name = list(named)[i] if named is not None else _arm(settings["env_id"])
        out.append(_Sweep(name, Path(path), df, settings))
    names = [s.name for s in out]
    for s in out:
        if names.count(s.name) > 1:
            s.name = f"{s.name} ({s.path.name})"
    first = out[0].space
    for s in out[1:]:
        if s.space != first:
            raise ValueError(f"cannot compare {out[0].path} and {s.path}: they sweep different parameter spaces")
    return out


# ---------------------------------------------------------------------------------- risk fits


@dataclass
class _RiskFit:
    """The risk map of one sweep and its held-out evaluation."""

    model: RiskModel
    test_failed: np.ndarray | None = None
    test_proba: dict[str, np.ndarray] = field(default_factory=dict)
    _aucs: dict[str, tuple[float, float, float]] = field(default_factory=dict)

    def auc(self, name: str, seed: int, n_boot: int = 500) -> tuple[float, float, float]:
        """AUC and its bootstrap 95 % interval on the held-out uniform rows (computed once)."""
        if name not in self._aucs:
            self._aucs[name] = self._bootstrap_auc(name, seed, n_boot)
        return self._aucs[name]

    def _bootstrap_auc(self, name: str, seed: int, n_boot: int) -> tuple[float, float, float]:
        from scipy.stats import rankdata
        from sklearn.metrics import roc_auc_score

        y, p = self.test_failed.astype(bool), self.test_proba[name]
        idx = np.random.default_rng(seed).integers(len(y), size=(n_boot, len(y)))
        boot_y = y[idx]
        positives = boot_y.sum(axis=1)
        both = (positives > 0) & (positives < len(y))  # a resample with one class has no AUC
        ranks = rankdata(p[idx][both], axis=1)  # Mann-Whitney: ties get the average rank
        n1, n0 = positives[both], len(y) - positives[both]
        boot = ((ranks * boot_y[both]).sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * n0)
        low, high = np.percentile(boot, [2.5, 97.5])
        return float(roc_auc_score(y, p)), float(low), float(high)


def _too_few_for_a_map(sweep: _Sweep) -> str | None:
    """Why the sweep cannot carry a risk map yet, or None."""
    failed = ~sweep.judged["success"].astype(bool).to_numpy()
    wins, losses = int((~failed).sum()), int(failed.sum())
    if min(wins, losses) >= MIN_PER_OUTCOME:
        return None
    among = (f"its {len(failed)} experiments" if len(failed) == len(sweep.df) else
             f"the {len(failed)} experiments that did not error")
    return (f"{sweep.name}: {wins} success{'es' * (wins != 1)} and {losses} failure{'s' * (losses != 1)} among "
            f"{among} are too few for a risk map (a logistic map needs at least {MIN_PER_OUTCOME} experiments of "
            "each outcome); sweep more.")


def _fit_risk(sweep: _Sweep, holdout: float, seed: int) -> _RiskFit | None:
    """Fit the map on every row that did not error; evaluate a second fit on held-out uniform rows."""
    if _too_few_for_a_map(sweep) is not None:
        return None
    df, space = sweep.judged, sweep.space
    failed = ~df["success"].astype(bool).to_numpy()
    fit = _RiskFit(RiskModel(space=space, random_state=seed).fit(df[space.names], failed))
    uniform = np.flatnonzero(df.index.isin(uniform_rows(df).index))
    rng = np.random.default_rng(seed)
    test = rng.permutation(uniform)[: int(round(holdout * len(uniform)))]
    train = np.setdiff1d(np.arange(len(df)), test)
    if len(test) < 20 or failed[test].all() or not failed[test].any() or failed[train].all() or not failed[train].any():
        return fit
    X = df[space.names]
    fit.test_failed = failed[test]
    for name, model in (("logistic", RiskModel(space=space, random_state=seed)),
                        ("boosting", FlexibleRiskModel(space=space, random_state=seed))):
        model.fit(X.iloc[train], failed[train])
        fit.test_proba[name] = model.predict_proba(X.iloc[test])[:, 1]
    return fit


def _importance(model: RiskModel) -> dict[str, float]:
    """Sum of |coefficient| over the terms of each parameter."""
    out: dict[str, float] = {}
    for term, coef in model.coefficients_.items():
        for name in term_parameters(str(term)):
            out[name] = out.get(name, 0.0) + abs(float(coef))
    return out


def _heatmap_pairs(space: ParameterSpace, fits: list[_RiskFit]) -> list[tuple[str, str]]:
    """Pairs of the three most important continuous parameters (integers if too few are continuous)."""
    numeric = [d.name for d in space if isinstance(d, Continuous)]
    if len(numeric) < 2:
        numeric += [d.name for d in space if not isinstance(d, (Continuous, Categorical))]
    score = {n: sum(_importance(f.model).get(n, 0.0) for f in fits) for n in numeric}
    top = sorted(numeric, key=lambda n: -score[n])[:3]
    return [(a, b) for i, a in enumerate(top) for b in top[i + 1:]][:_HEATMAP_PAIRS]


# ------------------------------------------------------------------------------------ figures


def _along(dim: Any) -> np.ndarray:
    """200 values spread over a numeric parameter's range, on its scale."""
    if isinstance(dim, Continuous):
        return dim.from_unit(np.linspace(0.0, 1.0, 200))
    return np.linspace(dim.low, dim.high, 200)


def _axis_values(dim: Any, n: int) -> np.ndarray:
    """``n`` values spread over a continuous range (on its scale), or every value of an integer."""
    return dim.from_unit(np.linspace(0.0, 1.0, n)) if isinstance(dim, Continuous) else np.arange(dim.low, dim.high + 1)


def _log_axis(ax: Any, dim: Any, which: str) -> None:
    if isinstance(dim, Continuous) and dim.log:
        (ax.set_xscale if which == "x" else ax.set_yscale)("log")
        plain_log_labels(ax.xaxis if which == "x" else ax.yaxis, dim.low, dim.high)


def stage_outcome_shares(df: pd.DataFrame) -> dict[int, dict[str, float]]:
    """Stage -> the share of each outcome among that stage's rows (gate runs included)."""
    return {int(stage): part["outcome"].astype(str).value_counts(normalize=True).to_dict()
            for stage, part in df.groupby("stage")}


def _fig_outcomes(sweeps: list[_Sweep]) -> Figure:
    labels, shares = [], []
    for s in sweeps:
        sizes = s.df["stage"].value_counts()
        for stage, share in stage_outcome_shares(s.df).items():
            labels.append(f"{s.name + ' · ' if len(sweeps) > 1 else ''}stage {stage} (n={sizes[stage]})")
            shares.append(share)
    present = {o for share in shares for o in share}
    colours = outcome_colours(present)
    fig = Figure(figsize=(10, 0.9 + 0.42 * len(labels)), layout="constrained")
    ax = fig.add_subplot()
    for i, share in enumerate(shares):
        left = 0.0
        for outcome, colour in colours.items():
            width = share.get(outcome, 0.0)
            ax.barh(i, width, left=left, color=colour, label=outcome if i == 0 else None)
            if width > 0.06:
                ax.text(left + width / 2, i, f"{width:.0%}", ha="center", va="center", fontsize=8, color="white")
            left += width
    ax.set_yticks(range(len(labels)), labels, fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of experiments")
    ax.legend(ncol=len(colours), fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    return fig


def _success_axes(fig: Figure, space: ParameterSpace) -> list[Any]:
    """One panel per parameter, four to a row; a category with many values gets a row of its own."""
    cols = 4
    wide = [d for d in space if isinstance(d, Categorical) and d.n_values > _WIDE_CATEGORY]
    narrow = [d for d in space if d not in wide]
    rows = -(-len(narrow) // cols) + len(wide)
    grid = fig.add_gridspec(rows, cols)
    axes = {}
    for i, dim in enumerate(narrow):
        axes[dim.name] = fig.add_subplot(grid[i // cols, i % cols])
    for j, dim in enumerate(wide):
        axes[dim.name] = fig.add_subplot(grid[-(-len(narrow) // cols) + j, :])
    return [axes[d.name] for d in space]


def _fig_success_by_parameter(sweeps: list[_Sweep]) -> Figure:
    space = sweeps[0].space
    wide = sum(isinstance(d, Categorical) and d.n_values > _WIDE_CATEGORY for d in space)
    rows = -(-(len(space) - wide) // 4) + wide
    fig = Figure(figsize=(11, 3.0 * rows), layout="constrained")
    several = len(sweeps) > 1
    band = sweeps[0].settings["band"]
    for ax, dim in zip(_success_axes(fig, space), space):
        reaches_band = False
        for k, s in enumerate(sweeps):
            rows_u = uniform_rows(s.judged)
            codes, bins = parameter_bins(rows_u[dim.name].to_numpy(), dim, 6)
            n = np.bincount(codes, minlength=len(bins))
            wins = np.bincount(codes, weights=rows_u["success"].astype(bool).to_numpy(), minlength=len(bins))
            keep = n > 0
            low, high = clopper_pearson(wins[keep], n[keep])
            rate = wins[keep] / n[keep]
            if band is not None:
                reaches_band |= bool(np.any((rate >= band[0]) & (rate <= band[1])))
            if isinstance(dim, Categorical):
                x = np.flatnonzero(keep) + (k - (len(sweeps) - 1) / 2) * 0.12
            else:
                x = np.array([b.centre for b in bins], dtype=float)[keep]
            ax.errorbar(x, rate, yerr=[rate - low, high - rate], fmt="o" if isinstance(dim, Categorical) else "o-",
                        ms=3.5, lw=1.2, capsize=2.5,  # named values have no order: no line between them
                        color=ARM_COLOURS[k % len(ARM_COLOURS)], label=s.name if several else None)
        if band is not None and reaches_band:  # the band only where some bin's rate lies in it
            ax.axhspan(*band, color="#ffbf00", alpha=0.18, lw=0)
        if isinstance(dim, Categorical):
            wide_axis = dim.n_values > _WIDE_CATEGORY
            ax.set_xticks(range(len(dim.choices)), dim.choices, rotation=25 if wide_axis else 40,
                          ha="right", fontsize=9 if wide_axis else 8)
            ax.set_xlim(-0.5, dim.n_values - 0.5)
        else:
            pad = 0.3 if isinstance(dim, Integer) else 0.0
            ax.set_xlim(dim.low - pad, dim.high + pad)  # the parameter's whole range, wherever the rows fell
            if isinstance(dim, Integer) and dim.n_values <= 10:
                ax.set_xticks(range(dim.low, dim.high + 1))
        _log_axis(ax, dim, "x")
        if dim.unit:
            ax.set_xlabel(dim.unit, fontsize=9)
        ax.set_ylim(-0.03, 1.03)
        ax.set_ylabel("success rate", fontsize=9)
        ax.set_title(dim.name, fontsize=10)
        ax.grid(alpha=0.25)
    if several:
        fig.axes[0].legend(fontsize=8)
    return fig


def _fig_outcomes_by_parameter(sweep: _Sweep) -> Figure:
    """The outcome mix of the uniform rows per bin or value of each parameter: stacked bars, one panel each."""
    space, rows = sweep.space, uniform_rows(sweep.df)
    outcomes = rows["outcome"].astype(str).to_numpy()
    colours = outcome_colours(outcomes)
    wide = sum(isinstance(d, Categorical) and d.n_values > _WIDE_CATEGORY for d in space)
    fig = Figure(figsize=(11, 3.0 * (-(-(len(space) - wide) // 4) + wide) + 0.3), layout="constrained")
    for ax, dim in zip(_success_axes(fig, space), space):
        codes, bins = parameter_bins(rows[dim.name].to_numpy(), dim, 6)
        n = np.bincount(codes, minlength=len(bins))
        if isinstance(dim, Continuous):  # bars span their bins on the parameter's own axis
            edges = dim.from_unit(np.linspace(0.0, 1.0, len(bins) + 1))
            x, width, align, centres = edges[:-1], np.diff(edges), "edge", [b.centre for b in bins]
        else:
            x, width, align, centres = np.arange(len(bins)), 0.8, "center", np.arange(len(bins))
        bottom = np.zeros(len(bins))
        for outcome, colour in colours.items():
            share = np.bincount(codes, weights=outcomes == outcome, minlength=len(bins)) / np.maximum(n, 1)
            ax.bar(x, share, width, bottom=bottom, align=align, color=colour, edgecolor="white", lw=0.6)
            bottom += share
        for centre, count in zip(centres, n):
            ax.text(centre, 1.015, str(count), ha="center", va="bottom", fontsize=7, color="#5a6470")
        if isinstance(dim, Continuous):
            ax.set_xlim(dim.low, dim.high)
            _log_axis(ax, dim, "x")
        else:
            wide_axis = isinstance(dim, Categorical) and dim.n_values > _WIDE_CATEGORY
            ax.set_xticks(x, [b.label for b in bins], rotation=25 if wide_axis else 40 if isinstance(dim, Categorical)
                          else 0, ha="right" if isinstance(dim, Categorical) else "center", fontsize=9 if wide_axis else 8)
            ax.set_xlim(-0.5, len(bins) - 0.5)
        if dim.unit:
            ax.set_xlabel(dim.unit, fontsize=9)
        ax.set_ylim(0, 1.12)
        ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
        ax.set_ylabel("share of experiments", fontsize=9)
        ax.set_title(dim.name, fontsize=10)
    fig.legend([Patch(color=c) for c in colours.values()], list(colours), loc="outside upper center",
               ncol=len(colours), fontsize=8, frameon=False)
    return fig


def _fig_heatmaps(panels: list[tuple[_Sweep, _RiskFit, str, str, str]]) -> Figure:
    """Risk maps in a row: P(failure) with the rest nominal, the closed-form boundary, the experiments."""
    fig = Figure(figsize=(min(11.0, 3.5 * len(panels) + 1.3), 4.1), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    mesh, handles = None, {}
    for ax, (s, fit, x, y, title) in zip(axes, panels):
        space = s.space
        dx, dy = space[x], space[y]
        gx, gy = np.meshgrid(_axis_values(dx, 120), _axis_values(dy, 120))
        grid = pd.DataFrame([space.nominal()] * gx.size)
        grid[x], grid[y] = gx.ravel(), gy.ravel()
        p = fit.model.predict_proba(grid[space.names])[:, 1].reshape(gx.shape)
        mesh = ax.pcolormesh(gx, gy, p, cmap="RdYlGn_r", vmin=0, vmax=1, shading="auto")
        along = _along(dy)
        curve = fit.model.boundary_curve(x, y, along)
        for r in range(curve.shape[1]):
            if np.isfinite(curve[:, r]).any():
                (line,) = ax.plot(curve[:, r], along, color="black", lw=2)
                handles["boundary P(failure) = 0.5 (closed form)"] = line
        if not np.isfinite(curve).any():
            ax.text(0.5, 0.97, "no P(failure) = 0.5 boundary in this range", transform=ax.transAxes, ha="center",
                    va="top", fontsize=8, bbox={"facecolor": "white", "alpha": 0.8, "lw": 0})
        df = s.judged
        ok = df["success"].astype(bool).to_numpy()
        stage2 = (df["stage"] == STAGE_BOUNDARY).to_numpy() if "stage" in df else np.zeros(len(df), bool)
        for mask, marker, label in ((~stage2 & ok, "o", "success"), (~stage2 & ~ok, "X", "failure"),
                                    (stage2 & ok, "^", "success, stage 2"), (stage2 & ~ok, "v", "failure, stage 2")):
            if mask.any():
                face = "white" if label.startswith("success") else "black"
                handles[label] = ax.scatter(df.loc[mask, x], df.loc[mask, y], s=8, marker=marker, c=face,
                                            edgecolors="#333333", linewidths=0.3, alpha=0.6)
        for dim, which in ((dx, "x"), (dy, "y")):
            _log_axis(ax, dim, which)
            if not isinstance(dim, Continuous):
                (ax.set_xticks if which == "x" else ax.set_yticks)(range(dim.low, dim.high + 1))
        ax.set_xlim(gx.min(), gx.max())
        ax.set_ylim(gy.min(), gy.max())
        ax.set_xlabel(dx.label)
        ax.set_ylabel(dy.label)
        ax.set_title(title, fontsize=10)
    fig.colorbar(mesh, ax=list(axes), label="P(failure), others nominal", shrink=0.85)
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=len(handles), fontsize=8,
               frameon=False, markerscale=1.8)
    return fig


def _fig_evaluation(sweeps: Sequence[_Sweep], fits: Sequence[_RiskFit], seed: int) -> Figure:
    """ROC curves (with AUC and its bootstrap interval) and a reliability plot on held-out uniform rows."""
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import brier_score_loss, roc_curve

    fig = Figure(figsize=(11, 4.6), layout="constrained")
    roc, rel = fig.subplots(1, 2)
    for ax in (roc, rel):
        ax.plot([0, 1], [0, 1], color="#999999", lw=1, ls=":")
        ax.grid(alpha=0.25)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
    several = len(sweeps) > 1
    for k, (s, fit) in enumerate(zip(sweeps, fits)):
        for j, (name, style, marker) in enumerate((("logistic", "-", "o"), ("boosting", "--", "s"))):
            # one colour per sweep when several are compared, else one per model; the marker and dash say the model
            colour = ARM_COLOURS[(k if several else j) % len(ARM_COLOURS)]
            p = fit.test_proba[name]
            who = f"{s.name} {name}" if several else name
            fpr, tpr, _ = roc_curve(fit.test_failed, p)
            auc, low, high = fit.auc(name, seed)
            roc.plot(fpr, tpr, ls=style, lw=1.6, color=colour, label=f"{who}: AUC {auc:.3f} [{low:.3f}, {high:.3f}]")
            bins = max(3, min(10, len(p) // 30))
            observed, predicted = calibration_curve(fit.test_failed, p, n_bins=bins, strategy="quantile")
            rel.plot(predicted, observed, marker=marker, ms=4, ls=style, lw=1.4, color=colour,
                     label=f"{who}: Brier {brier_score_loss(fit.test_failed, p):.3f}")
    roc.set_xlabel("false-positive rate (successes flagged)")
    roc.set_ylabel("true-positive rate (failures caught)")
    roc.set_title("ROC", fontsize=10)
    roc.legend(fontsize=7, loc="lower right", handlelength=3)
    rel.set_xlabel("predicted P(failure)")
    rel.set_ylabel("observed failure rate")
    rel.set_title("reliability (quantile bins)", fontsize=10)
    rel.legend(fontsize=7, loc="upper left", handlelength=3)
    return fig


# ------------------------------------------------------------------------------------ tables


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _provenance(sweeps: list[_Sweep]) -> pd.DataFrame:
    def row(what: str, get: Any) -> dict[str, str]:
        return {"": what, **{s.name: str(get(s)) for s in sweeps}}

    sampler = ("n_lhs", "n_boundary", "band", "batch_size", "n_candidates")
    swept_with = sorted({k for s in sweeps for k in s.settings["versions"]})
    rows = [
        row("folder", lambda s: s.path),
        row("env", lambda s: s.settings["env_id"]),
        row("policy", lambda s: s.settings["policy"]),
        row("sweep seed", lambda s: s.settings["seed"]),
        *[row(k, lambda s, k=k: s.settings["sampler"].get(k, "")) for k in sampler],
        row("stage-1 centred discrepancy", lambda s: cell_text(s.settings["lhs_discrepancy"] or float("nan"))),
        row("created", lambda s: s.settings["created"]),
        row("completed", lambda s: s.settings["completed"] or "not finished"),
        *[row(f"swept with {k}", lambda s, k=k: s.settings["versions"].get(k, "")) for k in swept_with],
    ]
    table = pd.DataFrame(rows)
    return table if len(sweeps) > 1 else table.rename(columns={sweeps[0].name: "value"})


def _environment(seed: int) -> str:
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    versions = ", ".join(f"{d} {_version(d)}" for d in _VERSIONED)
    return (f"Report written {now} with Python {platform.python_version()}, {versions}; "
            f"risk models fitted with random_state={seed}.")


def _space_table(space: ParameterSpace) -> pd.DataFrame:
    return pd.DataFrame([{"parameter": d.name, "kind": d.kind, "range": d.describe(), "unit": d.unit,
                          "nominal": d.nominal} for d in space])


def _summary_table(sweeps: list[_Sweep]) -> pd.DataFrame:
    rows = []
    for s in sweeps:
        summary = summarize_sweep(s.df)
        uniform = uniform_rows(s.judged)
        wins, n = int(uniform["success"].astype(bool).sum()), len(uniform)
        low, high = clopper_pearson(wins, n)
        row = {"sweep": s.name, "experiments": summary["rows"],
               "uniform success rate (95 % CI)": f"{wins / n:.3f} [{float(low):.3f}, {float(high):.3f}]" if n else "n/a"}
        for stage, count in summary["rows_by_stage"].items():
            rate = summary["success_rate_by_stage"][stage]  # among the experiments that did not error
            row[f"stage {stage}: rows, success"] = f"{count}, {'n/a' if np.isnan(rate) else f'{rate:.3f}'}"
        row["outcomes"] = ", ".join(f"{k} {v}" for k, v in summary["outcomes"].items())
        if any(errored(t.df).any() for t in sweeps):
            row["errored (left out)"] = summary["errors"]
        rows.append(row)
    return pd.DataFrame(rows).fillna("")


def _error_table(sweeps: list[_Sweep]) -> pd.DataFrame:
    """Errored experiments by sweep and message (its first line), most frequent first."""
    rows = []
    for s in sweeps:
        broken = s.df[errored(s.df)]
        if not len(broken):
            continue
        messages = broken["error"].fillna("").astype(str) if "error" in broken else pd.Series("", index=broken.index)
        first_lines = messages.map(lambda m: m.strip().splitlines()[0] if m.strip() else "no message recorded")
        for message, group in broken.groupby(first_lines.to_numpy(), sort=False):
            ids = group["id"].tolist() if "id" in group else []
            rows.append({"sweep": s.name, "experiments": len(group), "first id": min(ids) if ids else "",
                         "stages": ", ".join(map(str, sorted(group["stage"].unique()))) if "stage" in group else "",
                         "error": message})
    table = pd.DataFrame(rows)
    return table.sort_values("experiments", ascending=False, kind="stable") if len(table) else table


def _zone_rows(zones: pd.DataFrame) -> pd.DataFrame:
    def mix(outcomes: dict[str, int]) -> str:
        return ", ".join(f"{k} {v}" for k, v in outcomes.items())

    return pd.DataFrame({
        "zone": zones["zone"], "n": zones["n"], "failure rate": zones["failure_rate"],
        "CI": [f"[{lo:.2f}, {hi:.2f}]" for lo, hi in zip(zones["ci_low"], zones["ci_high"])],
        "rest of the space": zones["rest_failure_rate"], "difference": [f"{d:+.2f}" for d in zones["difference"]],
        "p (corrected)": zones["p_value"], "versus rest": zones["versus_rest"], "class": zones["class"],
        "outcomes": [mix(o) for o in zones["outcomes"]],
    })


def _zone_comparison(zones: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """One row per zone labelled on some arm: each arm's rate, interval and labels."""
    labelled = (zones["versus_rest"] != "unclear") | (zones["class"] != "boundary")
    rows = []
    for zone, group in zones[zones["zone"].isin(zones.loc[labelled, "zone"].unique())].groupby("zone", sort=False):
        by_arm = {r["arm"]: r for r in group.to_dict("records")}
        row = {"zone": zone, "universal": "universal" if group["universal"].any() else ""}
        for name in names:
            r = by_arm.get(name)
            row[name] = (f"{r['failure_rate']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}], rest "
                         f"{r['rest_failure_rate']:.2f}: {r['versus_rest']}, {r['class']}" if r is not None else "—")
        relative = min(group["p_value"])
        rows.append((not row["universal"], relative, row))
    rows.sort(key=lambda t: t[:2])
    return pd.DataFrame([r for *_, r in rows][: 2 * _TOP_ZONES])


def _coefficients(sweeps: list[_Sweep], fits: list[_RiskFit | None]) -> pd.DataFrame:
    series = {s.name: f.model.coefficients_ for s, f in zip(sweeps, fits) if f is not None}
    table = pd.DataFrame(series)
    order = table.drop(index=INTERCEPT, errors="ignore").abs().max(axis=1).sort_values(ascending=False).index
    table = table.loc[[INTERCEPT, *order[:_TOP_TERMS]]] if INTERCEPT in table.index else table.loc[order[:_TOP_TERMS]]
    table = table.reset_index().rename(columns={"index": "term"})
    return table.astype(object).where(table.notna(), "—")  # a term the arm's model did not select


# ------------------------------------------------------------------------------------- report


def write_report(
    sweeps: str | os.PathLike | Sequence[str | os.PathLike] | Mapping[str, str | os.PathLike],
    out: str | os.PathLike | None = None,
    *,
    envelope: Mapping[str, Any] | Sequence[str] | None = None,
    max_failure_rate: float = 0.05,
    confidence: float = 0.95,
    holdout: float = 0.3,
    seed: int = 0,
    gallery: bool = True,
) -> Path:
    """Write ``report.md`` and a self-contained ``report.html`` for one sweep or several compared.

    Parameters
    ----------
    sweeps : path, sequence of paths, or mapping of name to path
        Sweep folders.  Several are compared side by side (e.g. one per
        arm); they must sweep the same parameter space.  Without names, each
        is named after its env's robot.
    out : path, optional
        Folder to write into (created).  Default ``<first sweep>/report``
        for one sweep, ``<first sweep>/comparison`` for several.
    envelope : mapping or sequence of str, optional
        An operating envelope (see :class:`robogate.scenarios.envelope.Envelope`; strings
        as ``"friction=0.4:1.2"``): the report then states the gate's verdict
        for it on every sweep.
    max_failure_rate, confidence : float
        The limit and confidence of the gate (with ``envelope``) and of the suggested envelope.
    holdout : float, default 0.3
        Share of the uniform (stage-1) rows held out of fitting for the ROC
        and reliability curves.
    seed : int, default 0
        Seed of the held-out split, the bootstrap and the models' folds.
    gallery : bool, default True
        Replay one episode per failure mode and show frames around its failure step (a few
        seconds; needs an env that renders ``rgb_array`` frames, else the report says so).

    Returns
    -------
    pathlib.Path
        The HTML file; ``report.md`` and its PNG figures sit beside it.

    Raises
    ------
    ValueError
        For a folder without finished experiments, sweeps of different
        spaces, or a bad envelope or setting.
    """
    runs = _read(sweeps)
    space = runs[0].space
    several = len(runs) > 1
    out = Path(out) if out is not None else runs[0].path / ("comparison" if several else "report")
    gate_envelope = None
    if envelope is not None:
        gate_envelope = (Envelope.parse(list(envelope), space) if not isinstance(envelope, Mapping)
                         else Envelope(space, envelope))
    title = (f"{runs[0].settings['policy']} on {runs[0].settings['env_id']}" if not several else
             f"{runs[0].settings['policy']} on {', '.join(r.name for r in runs)}: comparison")
    doc = Document(title)

    fits = [_fit_risk(r, holdout, seed) for r in runs]
    usable = [(r, f) for r, f in zip(runs, fits) if f is not None]
    pairs = _heatmap_pairs(space, [f for _, f in usable]) if usable else []
    zones = danger_zones({r.name: r.df for r in runs} if several else runs[0].df, space)
    caveats = {
        "summary": _unfinished_caveats(runs),
        "gate": _envelope_caveats(usable, gate_envelope) if gate_envelope is not None else [],
        "zones": _zone_caveats(zones, space),
        "risk": [why for r in runs if (why := _too_few_for_a_map(r)) is not None] + _boundary_caveats(usable, pairs),
        "evaluation": _evaluation_caveats(usable, holdout, seed),
    }  # in the order of the sections

    _errors_section(doc, runs)
    _summary_section(doc, runs, caveats)
    if gate_envelope is not None:
        _gate_section(doc, runs, gate_envelope, max_failure_rate, confidence, caveats["gate"])
    _suggestion_section(doc, usable, max_failure_rate, confidence, 3 if gate_envelope is not None else 2)
    _zones_section(doc, runs, zones, caveats["zones"])
    _outcomes_section(doc, runs)
    if gallery:
        _gallery_section(doc, runs)
    _success_section(doc, runs)
    _risk_section(doc, runs, usable, pairs, caveats["risk"])
    if usable:
        _evaluation_section(doc, usable, holdout, seed, caveats["evaluation"])
    _provenance_section(doc, runs, seed)
    return doc.write(out)


# ----------------------------------------------------------------------------------- caveats

#: The section each kind of caveat is stated in.
_SECTIONS = {"gate": "Deployment gate", "zones": "Danger zones", "risk": "Risk map",
             "evaluation": "How well the map predicts"}


def _unfinished_caveats(runs: list[_Sweep]) -> list[str]:
    out = []
    for r in runs:
        if not r.settings["complete"]:
            done = int((r.df["stage"] != STAGE_GATE).sum()) if "stage" in r.df else len(r.df)
            out.append(f"{r.name}: the sweep in {r.path} is not finished ({done} of "
                       f"{r.settings['n_lhs'] + r.settings['n_boundary']} experiments); continue it with --resume "
                       "(resume=True), then write the report again.")
    return out


def _zone_caveats(zones: pd.DataFrame, space: ParameterSpace) -> list[str]:
    rows = zones.attrs["rows"]
    counts = rows.values() if isinstance(rows, dict) else [rows]
    if zones.attrs["tests"] == 0:
        return [f"No region of the space holds the 10 uniform experiments a zone test needs yet "
                f"({', '.join(map(str, counts))} uniform experiments over {len(space)} parameters): no zone can be "
                "called worse or better than the rest, danger or safe. Sweep more."]
    if not (zones["versus_rest"] != "unclear").any():
        return [f"No zone is surely worse or better than the rest of the space: at this budget none of the "
                f"{zones.attrs['tests']} regions tested differs from the rest beyond chance (simultaneous 95 %)."]
    return []


def _fmt_value(x: float) -> str:
    return f"{x:.3g}"


def _boundary_caveats(usable: list[tuple[_Sweep, _RiskFit]], pairs: list[tuple[str, str]]) -> list[str]:
    """A risk-map panel whose P(failure) = 0.5 boundary misses the parameter's range altogether."""
    out = []
    for r, f in usable:
        space = r.space
        nominal = space.nominal()
        for x, y in pairs:
            dx, dy = space[x], space[y]
            if np.isfinite(f.model.boundary_curve(x, y, _along(dy))).any():
                continue
            grid = pd.DataFrame([nominal])
            side = "above" if f.model.predict_proba(grid[space.names])[0, 1] > 0.5 else "below"
            roots = f.model.boundary_curve(x, y, [nominal[y]], in_range=False)[0]
            roots = roots[np.isfinite(roots)]
            where = (f"{x}* ≈ {' or '.join(map(_fmt_value, roots))} at {y} = {_fmt_value(nominal[y])}, outside {x}'s "
                     f"range {_fmt_value(dx.low)}–{_fmt_value(dx.high)}" if len(roots) else "no real root")
            out.append(f"{r.name}: the closed-form {x}–{y} boundary lies outside the map ({where}): with the other "
                       f"parameters nominal, the model puts P(failure) {side} 0.5 over the whole panel, so that "
                       "panel draws no boundary.")
    return out


def _evaluation_caveats(usable: list[tuple[_Sweep, _RiskFit]], holdout: float, seed: int) -> list[str]:
    out = []
    for r, f in usable:
        if f.test_failed is None:
            out.append(f"{r.name}: too few uniform experiments of both outcomes to hold {holdout:.0%} out, so how "
                       "well the risk map predicts is not measured.")
            continue
        auc, low, high = f.auc("logistic", seed)
        if low <= 0.5:
            out.append(f"{r.name}: the risk map's held-out AUC is {auc:.3f} [{low:.3f}, {high:.3f}], an interval "
                       f"that includes 0.5 (chance) on {len(f.test_failed)} held-out experiments: at this budget the "
                       "map does not surely rank failures above successes. Sweep more before reading it.")
    return out


def _envelope_caveats(usable: list[tuple[_Sweep, _RiskFit]], envelope: Envelope) -> list[str]:
    """Where the sweep measured the envelope (at least 10 uniform experiments), does the model agree?"""
    out = []
    for r, f in usable:
        rows = evidence(r.judged, r.space, envelope)
        if len(rows) < 10:
            continue
        predicted = float(f.model.predict_proba(rows[r.space.names])[:, 1].mean())
        failures = int((~rows["success"].astype(bool)).sum())
        low, high = (float(v) for v in clopper_pearson(failures, len(rows)))
        if not low <= predicted <= high:
            out.append(f"{r.name}: the risk map contradicts what was measured inside the envelope: it predicts a "
                       f"mean P(failure) of {predicted:.2f} for the {len(rows)} uniform experiments there, which "
                       f"failed {failures} times ({failures / len(rows):.2f}, 95 % CI [{low:.2f}, {high:.2f}]). Read "
                       "its P(failure) values as rough at this budget; the gate's verdict rests on the measured rows.")
    return out


# ---------------------------------------------------------------------------------- sections


def _errors_section(doc: Document, runs: list[_Sweep]) -> None:
    """First in the report when any experiment errored: a broken harness, not an unsafe policy."""
    broken = [(r, int(errored(r.df).sum())) for r in runs if errored(r.df).any()]
    if not broken:
        return
    doc.heading("Experiments that errored")
    for r, k in broken:
        doc.caveat(f"{r.name}: {k} of {len(r.df)} experiments errored (the policy raised or the simulation "
                   f"diverged); first error: {first_error(r.df)}. They are a broken harness, not failures of the "
                   "policy: rates, zones and the risk map below leave them out, and the gate gives no pass or fail "
                   "on an envelope that holds one.", "Errors")
    doc.table(_error_table(runs), "Each message's first line; the full traceback is in the sweep's 'error' column.")


def _summary_section(doc: Document, runs: list[_Sweep], caveats: Mapping[str, list[str]]) -> None:
    """The run summary, its own caveats, and where the other sections' caveats are."""
    doc.heading("Summary")
    doc.table(_summary_table(runs), "Rates that stand for the operating space come from the uniform (stage-1) rows; "
                                    "stage-2 rows over-sample the success band on purpose.")
    for text in caveats["summary"]:
        doc.caveat(text)
    where = [_SECTIONS[part] for part, texts in caveats.items() if texts and part != "summary"]
    if where:
        n = sum(len(texts) for part, texts in caveats.items() if part != "summary")
        doc.caveat(f"This report states {n} thing{'s' * (n != 1)} it cannot conclude yet; see {', '.join(where)}.")


def _gate_section(doc: Document, runs: list[_Sweep], envelope: Envelope, max_failure_rate: float,
                  confidence: float, caveats: list[str]) -> None:
    doc.heading("Deployment gate")
    doc.text(f"Envelope: {envelope.describe()}; limit {max_failure_rate:g} on the failure rate at "
             f"{confidence:g} confidence, from the uniform experiments inside the envelope.")
    for r in runs:
        doc.verdict(gate(r.df, r.space, envelope, max_failure_rate, confidence), r.name)
    for text in caveats:
        doc.caveat(text)


def _zones_section(doc: Document, runs: list[_Sweep], zones: pd.DataFrame, caveats: list[str]) -> None:
    several = len(runs) > 1
    doc.heading("Danger zones")
    for text in caveats:
        doc.caveat(text)
    if zones.attrs["tests"] == 0:
        return
    doc.text(
        "One- and two-parameter regions (bins of the uniform rows), each tested against the rest of the space "
        "(Fisher's exact test): worse when its failure rate is surely above that of the uniform experiments outside "
        "it, better when surely below, unclear otherwise. Beside that, its absolute class: danger when its "
        "Clopper–Pearson interval lies at or above 0.7, safe when below 0.3, boundary otherwise (neither surely high "
        f"nor surely low). Tests and intervals are simultaneous over all {zones.attrs['tests']} regions tested (each "
        f"interval at {zones.attrs['cell_confidence']:.6f}), so with 95 % confidence no zone below is labelled "
        "wrongly. A two-parameter region inside a one-parameter zone with the same labels is left out."
    )
    if zones.empty:
        return
    counts = zones.groupby((["arm"] if several else []) + ["versus_rest", "class"]).size()
    doc.text("Zones by label: " + "; ".join(f"{' '.join(map(str, k))}: {v}" for k, v in counts.items()) + ".")
    if several:
        doc.text("A zone is universal when it has the same labels on every sweep. Each cell: failure rate "
                 "[simultaneous interval], the rest's rate: versus rest, class.")
        doc.table(_zone_comparison(zones, [r.name for r in runs]))
        return
    groups = [("Worse than the rest of the space", zones["versus_rest"] == "worse"),
              ("Better than the rest of the space", zones["versus_rest"] == "better"),
              ("Surely high or low, but not surely different from the rest",
               (zones["versus_rest"] == "unclear") & (zones["class"] != "boundary"))]
    for heading, mask in groups:
        part = zones[mask]
        if len(part):
            doc.heading(f"{heading} ({len(part)}{f', top {_TOP_ZONES}' if len(part) > _TOP_ZONES else ''})", 3)
            doc.table(_zone_rows(part.head(_TOP_ZONES)))


def _outcomes_section(doc: Document, runs: list[_Sweep]) -> None:
    doc.heading("Outcomes")
    doc.figure("outcomes", _fig_outcomes(runs), "Outcome mix by stage.")
    for k, r in enumerate(runs):
        if len(uniform_rows(r.df)):
            doc.figure(f"outcomes_by_parameter{f'_{k + 1}' if len(runs) > 1 else ''}", _fig_outcomes_by_parameter(r),
                       f"{r.name + ': o' if len(runs) > 1 else 'O'}utcome mix of the uniform (stage-1) experiments per "
                       "bin or value of each parameter; the number above a bar is its experiments.")


def _gallery_section(doc: Document, runs: list[_Sweep]) -> None:
    """One replayed episode per failure mode (per sweep when several), stage-1 experiments first."""
    shots = []
    for r in runs:
        failed = r.judged[~r.judged["success"].astype(bool)]
        failed = failed.assign(_later=failed["stage"] != STAGE_LHS).sort_values(["_later", "id"])
        for outcome in outcome_colours(failed["outcome"].astype(str)):
            for _, row in failed[failed["outcome"].astype(str) == outcome].head(TRIES).iterrows():
                params = row_params(row, r.space.names)
                shots.append(Shot(f"{r.name}: {outcome}" if len(runs) > 1 else outcome, f"experiment {row['id']}",
                                  r.settings["env_id"], r.settings["policy"], params, int(row["seed"]), outcome,
                                  describe_scene(r.space, params), f"robogate replay {r.path} --id {row['id']}"))
    add_gallery(doc, shots, "One episode per failure mode, uniform (stage-1) experiments first.")


def _suggestion_section(doc: Document, usable: list[tuple[_Sweep, _RiskFit]], max_failure_rate: float,
                        confidence: float, level: int) -> None:
    """Where to deploy: the envelope the sweep's rows and risk map suggest, with the command that certifies it."""
    doc.heading("Where to deploy: a suggested envelope", level)
    if not usable:
        doc.text("No suggestion: the search for an envelope is guided by the risk map, and this sweep has none.")
        return
    doc.text(f"The largest envelope around nominal that the uniform rows pass at a {max_failure_rate:g} limit "
             f"({confidence:g} confidence) or, when no box does, that the rows do not fail and the risk map predicts "
             "under the limit. The search peels the whole space toward the nominal scene, each step cutting off the "
             "slice the risk map predicts fails most (a tenth of the way from a range's end to nominal, or one value "
             "of a category), and keeps the first box that qualifies.")
    for r, f in usable:
        s = suggest_envelope(r.df, max_failure_rate, confidence, space=r.space, model=f.model)
        who = f"{r.name}: " if len(usable) > 1 else ""
        if s.envelope is None:
            doc.text(who + s.basis_text())
            continue
        doc.text(f"{who}{s.basis_text()}:")
        whole = Envelope(r.space, {})
        doc.table(pd.DataFrame([{
            "parameter": d.label,
            "suggested": _entry(s.envelope, d.name) if d.name in s.envelope.limits else "free (full range)",
            "full range": f"{d.n_values} values" if isinstance(d, Categorical) else _entry(whole, d.name)}
            for d in r.space]))
        doc.text(s.evidence_text())
        doc.text("As flags, and the command that certifies it on fresh experiments only (gate --run on this sweep would "
                 "also count the rows that chose it):")
        doc.code(" \\\n".join(f"--envelope {flag}" for flag in s.flags) or "(the whole space: no --envelope flag)")
        doc.code(s.command(r.path, r.settings, wrap=True))


def _success_section(doc: Document, runs: list[_Sweep]) -> None:
    doc.heading("Success across each parameter")
    band = runs[0].settings["band"]
    if not any(len(uniform_rows(r.judged)) for r in runs):
        doc.text("No uniform experiment that did not error: nothing to show per parameter.")
        return
    doc.figure("success_by_parameter", _fig_success_by_parameter(runs),
               "Success rate of the uniform rows per bin or value, with 95 % Clopper–Pearson intervals"
               + (f"; the shaded band is the sweep's stage-2 target {band[0]:g}–{band[1]:g}, shaded on the "
                  "panels where some bin's rate lies in it." if band else "."))


def _risk_section(doc: Document, runs: list[_Sweep], usable: list[tuple[_Sweep, _RiskFit]],
                  pairs: list[tuple[str, str]], caveats: list[str]) -> None:
    several = len(runs) > 1
    doc.heading("Risk map")
    for text in caveats:
        doc.caveat(text)
    if not usable:
        return
    space = runs[0].space
    nominal = pd.DataFrame([space.nominal()])[space.names]
    at_nominal = ", ".join(f"{r.name} {f.model.predict_proba(nominal)[0, 1]:.2f}" if several else
                           f"{f.model.predict_proba(nominal)[0, 1]:.2f}" for r, f in usable)
    doc.text("RiskModel (logistic regression on log-scaled, standardised parameters, one-hot categories and the "
             "squares and interactions chosen by cross-validated log-loss), fitted on every experiment that did not "
             f"error. At nominal ({', '.join(f'{k}={_fmt_nominal(v)}' for k, v in space.nominal().items())}) it "
             f"predicts P(failure) = {at_nominal}.")
    drawn = any(np.isfinite(f.model.boundary_curve(x, y, _along(r.space[y]))).any()
                for r, f in usable for x, y in pairs)
    caption = ("P(failure) with the other parameters at their nominal values"
               + ("; the black line is the closed-form boundary P(failure) = 0.5 where it falls inside the panel"
                  if drawn else "; no panel holds a P(failure) = 0.5 boundary")
               + "; markers are the experiments, at any value of the other parameters (crosses and circles uniform, "
                 "triangles stage 2).")
    if several:
        for x, y in pairs:
            doc.figure(f"risk_{x}_{y}", _fig_heatmaps([(r, f, x, y, r.name) for r, f in usable]),
                       f"{x} × {y}: {caption}")
    elif pairs:
        r, f = usable[0]
        doc.figure("risk_map", _fig_heatmaps([(r, f, x, y, f"{x} × {y}") for x, y in pairs]), caption)
    doc.heading("Boundary equations", 3)
    doc.text("Each in the model's standardised units, then in physical units: the threshold at a few values of the "
             "other parameter, and where P(failure) exceeds 0.5, the remaining parameters nominal.")
    for r, f in usable:
        for x, y in pairs:
            doc.text(f"{r.name}: {x} as a function of {y}" if several else f"{x} as a function of {y}")
            doc.code(f.model.boundary_equation(x, y))
            doc.table(_thresholds(f.model, r.space, x, y))
    doc.heading("Coefficients", 3)
    doc.table(_coefficients([r for r, _ in usable], [f for _, f in usable]),
              f"Logit terms (encoded units) with the largest magnitude, at most {_TOP_TERMS}; positive "
              "raises P(failure); — marks a term a model did not select.")


def _entry(envelope: Envelope, name: str) -> str:
    """An envelope's limit on one parameter without the parameter's name: ``"0.4–1.2"``, ``"in {box, sphere}"``."""
    return envelope.describe_entry(name).removeprefix(name).strip()


def _thresholds(model: RiskModel, space: ParameterSpace, x: str, y: str) -> pd.DataFrame:
    """The boundary in physical units: the threshold x* at a few values of y, and where P(failure) > 0.5."""
    dx, dy = space[x], space[y]
    ys = (_axis_values(dy, 5) if isinstance(dy, Continuous) else
          np.unique(np.round(np.linspace(dy.low, dy.high, min(5, dy.n_values))).astype(int)))
    nominal = space.nominal()
    rows = []
    for value, roots in zip(ys, model.boundary_curve(x, y, ys)):
        cuts = [dx.low, *np.sort(roots[np.isfinite(roots)]), dx.high]
        pieces = list(zip(cuts[:-1], cuts[1:]))
        grid = pd.DataFrame([nominal] * len(pieces))
        grid[x] = [np.sqrt(a * b) if isinstance(dx, Continuous) and dx.log else (a + b) / 2 for a, b in pieces]
        grid[y] = value
        failing = model.predict_proba(grid[space.names])[:, 1] > 0.5
        rows.append({dy.label: _fmt_value(value),
                     f"{x}* ({dx.unit})" if dx.unit else f"{x}*": " and ".join(map(_fmt_value, cuts[1:-1]))
                     or "none in range",
                     f"{x} where P(failure) > 0.5": ", ".join(f"{_fmt_value(a)}–{_fmt_value(b)}" for (a, b), bad
                                                               in zip(pieces, failing) if bad) or "nowhere"})
    return pd.DataFrame(rows)


def _fmt_nominal(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _evaluation_section(doc: Document, usable: list[tuple[_Sweep, _RiskFit]], holdout: float, seed: int,
                        caveats: list[str]) -> None:
    several = len(usable) > 1
    doc.heading("How well the map predicts")
    for text in caveats:
        doc.caveat(text)
    evaluated = [(r, f) for r, f in usable if f.test_failed is not None]
    if not evaluated:
        return
    n_test = ", ".join(f"{r.name} {len(f.test_failed)}" if several else str(len(f.test_failed)) for r, f in evaluated)
    doc.text(f"Held-out uniform rows ({n_test}; {holdout:.0%} of stage 1, never used in fitting): models "
             "refitted on the remaining rows. Logistic is the RiskModel, boosting the FlexibleRiskModel "
             "(histogram gradient boosting) for comparison. AUC intervals: 95 % bootstrap.")
    aucs = [f"{r.name + ' ' if several else ''}{name} {auc:.3f} [{low:.3f}, {high:.3f}]" for r, f in evaluated
            for name in ("logistic", "boosting") for auc, low, high in [f.auc(name, seed)]]
    doc.text(f"Held-out AUC: {', '.join(aucs)} (0.5 is chance).")
    doc.figure("evaluation", _fig_evaluation(*zip(*evaluated), seed=seed),
               "ROC curves and reliability (observed failure rate per quantile bin of predicted P(failure)) "
               "on the held-out uniform rows.")


def _provenance_section(doc: Document, runs: list[_Sweep], seed: int) -> None:
    doc.heading("Provenance")
    doc.table(_provenance(runs))
    doc.text("Every experiment's own seed is stored with its row (results/ in each sweep folder, plain Parquet).")
    doc.heading("Parameter space", 3)
    doc.table(_space_table(runs[0].space))
    doc.text(_environment(seed))
