"""The sweep report: Markdown plus a self-contained HTML page, for one sweep or several side by side.

:func:`write_report` reads sweep folders and writes ``report.md`` (figures as
PNG files beside it) and ``report.html`` (the same figures embedded as base64
PNG, one file that opens offline).  Sections: provenance, the run summary
(:func:`robogate.sweep.summarize`), success per parameter with Clopper–Pearson
intervals and the sweep's stage-2 band, risk maps over parameter pairs with the
closed-form boundary and the sampled points, ROC and reliability curves on
held-out uniform rows, the risk model's coefficients and boundary equations,
danger zones (universal ones marked when several sweeps are compared), and the
gate verdict for an envelope.

Figures are drawn on :class:`matplotlib.figure.Figure` objects directly: no
pyplot state, no backend switch.
"""

from __future__ import annotations

import base64
import datetime
import html
import importlib.metadata
import io
import os
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from robogate.envs.outcomes import OUTCOMES
from robogate.envelope import Envelope
from robogate.gate import GateDecision, gate
from robogate.load import load_sweep
from robogate.risk import FlexibleRiskModel, RiskModel
from robogate.space import Categorical, Continuous, ParameterSpace
from robogate.sweep import summarize
from robogate.zones import clopper_pearson, danger_zones, parameter_bins, uniform_rows

__all__ = ["Document", "write_report"]

OUTCOME_COLOURS = {
    "success": "#2ca02c",
    "grasp_miss": "#ff7f0e",
    "grip_loss": "#d62728",
    "collision": "#9467bd",
    "placement_error": "#8c564b",
    "timeout": "#7f7f7f",
    "error": "#000000",
}
ARM_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
_DPI = 100
_HEATMAP_PAIRS = 3
_TOP_ZONES = 15
_TOP_TERMS = 20
_VERSIONED = ("robogate", "numpy", "scipy", "pandas", "pyarrow", "scikit-learn", "matplotlib", "pybullet",
              "gymnasium")


# ----------------------------------------------------------------------------------- document


@dataclass
class Document:
    """Blocks of a report, rendered to Markdown and to a self-contained HTML page from the same content.

    Add blocks with :meth:`heading`, :meth:`text`, :meth:`table`, :meth:`code`,
    :meth:`figure` (a :class:`matplotlib.figure.Figure`, kept as PNG bytes)
    and :meth:`verdict`; :meth:`write` puts ``report.md``, its PNG figures and
    ``report.html`` (figures embedded as base64) into a folder.
    """

    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)
    figures: dict[str, bytes] = field(default_factory=dict)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(("heading", (level, text)))

    def text(self, text: str) -> None:
        self.blocks.append(("text", text))

    def verdict(self, decision: GateDecision, who: str) -> None:
        """A verdict box: anything with ``verdict`` and ``reason`` (a gate decision, a policy comparison)."""
        self.blocks.append(("verdict", (decision, who)))

    def table(self, rows: pd.DataFrame, note: str | None = None) -> None:
        self.blocks.append(("table", (rows, note)))

    def code(self, text: str) -> None:
        self.blocks.append(("code", text))

    def figure(self, name: str, fig: Figure, caption: str) -> None:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=_DPI)
        self.figures[name] = buffer.getvalue()
        self.blocks.append(("figure", (name, caption)))

    # -- Markdown ---------------------------------------------------------------------------

    def markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for kind, value in self.blocks:
            if kind == "heading":
                out += [f"{'#' * value[0]} {value[1]}", ""]
            elif kind == "text":
                out += [value, ""]
            elif kind == "verdict":
                decision, who = value
                out += [f"**{who}: {decision.verdict.upper()}** — {decision.reason}", ""]
            elif kind == "table":
                rows, note = value
                out += [_markdown_table(rows), ""] + ([note, ""] if note else [])
            elif kind == "code":
                out += ["```", value, "```", ""]
            elif kind == "figure":
                name, caption = value
                out += [f"![{caption}]({name}.png)", "", f"*{caption}*", ""]
        return "\n".join(out)

    # -- HTML -------------------------------------------------------------------------------

    def html(self) -> str:
        body = []
        for kind, value in self.blocks:
            if kind == "heading":
                level, text = value
                body.append(f"<h{level}>{html.escape(text)}</h{level}>")
            elif kind == "text":
                body.append(f"<p>{html.escape(value)}</p>")
            elif kind == "verdict":
                decision, who = value
                body.append(
                    f'<p class="verdict {decision.verdict.replace(" ", "-")}"><span class="badge">{html.escape(who)}: '
                    f"{decision.verdict.upper()}</span> {html.escape(decision.reason)}</p>"
                )
            elif kind == "table":
                rows, note = value
                body.append(_html_table(rows))
                if note:
                    body.append(f'<p class="note">{html.escape(note)}</p>')
            elif kind == "code":
                body.append(f"<pre>{html.escape(value)}</pre>")
            elif kind == "figure":
                name, caption = value
                data = base64.b64encode(self.figures[name]).decode("ascii")
                body.append(
                    f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                    f"<figcaption>{html.escape(caption)}</figcaption></figure>"
                )
        return _HTML.format(title=html.escape(self.title), body="\n".join(body))

    def write(self, out: str | os.PathLike) -> Path:
        """Write ``report.md`` with its PNG figures and ``report.html`` into ``out``; return the HTML path."""
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        for name, png in self.figures.items():
            (folder / f"{name}.png").write_bytes(png)
        (folder / "report.md").write_text(self.markdown(), encoding="utf-8")
        path = folder / "report.html"
        path.write_text(self.html(), encoding="utf-8")
        return path


_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #1d2329;
       background: #f4f5f7; margin: 0; line-height: 1.5; }}
main {{ max-width: 1120px; margin: 0 auto; padding: 24px 32px 64px; background: #fff;
       box-shadow: 0 0 12px rgba(0, 0, 0, 0.06); }}
h1 {{ font-size: 1.8em; margin: 0.2em 0 0.6em; border-bottom: 3px solid #1f77b4; padding-bottom: 0.2em; }}
h2 {{ font-size: 1.35em; margin-top: 2em; border-bottom: 1px solid #d8dde3; padding-bottom: 0.15em; }}
h3 {{ font-size: 1.1em; margin-top: 1.5em; }}
p.note {{ color: #5a6470; font-size: 0.9em; margin-top: -0.4em; }}
table {{ border-collapse: collapse; margin: 0.8em 0; font-size: 0.88em; }}
th, td {{ border: 1px solid #d8dde3; padding: 4px 9px; text-align: left; vertical-align: top; }}
th {{ background: #eef1f5; }}
tr:nth-child(even) td {{ background: #fafbfc; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
td.danger {{ background: #fbe3e1 !important; color: #8f1d14; font-weight: 600; }}
td.safe {{ background: #e3f4e1 !important; color: #1e6b1a; font-weight: 600; }}
td.boundary {{ background: #fff4d6 !important; color: #7a5a00; }}
td.universal {{ font-weight: 700; color: #8f1d14; }}
figure {{ margin: 1em 0 1.6em; }}
figure img {{ max-width: 100%; height: auto; border: 1px solid #e3e6ea; }}
figcaption {{ color: #5a6470; font-size: 0.9em; margin-top: 0.3em; }}
pre {{ background: #f6f8fa; border: 1px solid #e3e6ea; padding: 10px; overflow-x: auto; font-size: 0.85em; }}
p.verdict {{ padding: 10px 14px; border-radius: 6px; border-left: 6px solid; }}
p.verdict.pass {{ background: #e3f4e1; border-color: #2ca02c; }}
p.verdict.fail {{ background: #fbe3e1; border-color: #d62728; }}
p.verdict.inconclusive {{ background: #fff4d6; border-color: #e0a800; }}
p.verdict.better, p.verdict.not-worse {{ background: #e3f4e1; border-color: #2ca02c; }}
p.verdict.worse {{ background: #fbe3e1; border-color: #d62728; }}
p.verdict.undecided {{ background: #fff4d6; border-color: #e0a800; }}
.badge {{ font-weight: 700; margin-right: 0.5em; }}
</style>
</head>
<body>
<main>
<h1>{title}</h1>
{body}
</main>
</body>
</html>
"""

_CELL_CLASSES = {"danger", "safe", "boundary"}


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if np.isnan(value) else f"{value:.3g}"
    return str(value)


def _markdown_table(rows: pd.DataFrame) -> str:
    def clean(value: Any) -> str:
        return _cell(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(clean(c) for c in rows.columns) + " |",
             "|" + "|".join("---" for _ in rows.columns) + "|"]
    lines += ["| " + " | ".join(clean(v) for v in row) + " |" for row in rows.itertuples(index=False)]
    return "\n".join(lines)


def _html_table(rows: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in rows.columns)
    body = []
    for row in rows.itertuples(index=False):
        cells = []
        for value in row:
            text = _cell(value)
            css = ("num" if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
                   else text if text in _CELL_CLASSES else "universal" if text == "universal" else "")
            cells.append(f'<td class="{css}">{html.escape(text)}</td>' if css else f"<td>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


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
        if df.empty or "success" not in df:
            raise ValueError(f"the sweep in {path} has no finished experiments yet")
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

    def auc(self, name: str, seed: int, n_boot: int = 500) -> tuple[float, float, float]:
        """AUC and its bootstrap 95 % interval on the held-out uniform rows."""
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


def _fit_risk(sweep: _Sweep, holdout: float, seed: int) -> _RiskFit | None:
    """Fit the map on every row; evaluate a second fit on held-out uniform rows (never trained on)."""
    df, space = sweep.df, sweep.space
    failed = ~df["success"].astype(bool).to_numpy()
    if failed.all() or not failed.any():
        return None
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
        if term == "intercept":
            continue
        for factor in str(term).split(":"):
            name = factor.split("=")[0].removesuffix("^2")
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


def _axis_values(dim: Any, n: int) -> np.ndarray:
    """``n`` values spread over a continuous range (on its scale), or every value of an integer."""
    return dim.from_unit(np.linspace(0.0, 1.0, n)) if isinstance(dim, Continuous) else np.arange(dim.low, dim.high + 1)


def _log_axis(ax: Any, dim: Any, which: str) -> None:
    if isinstance(dim, Continuous) and dim.log:
        (ax.set_xscale if which == "x" else ax.set_yscale)("log")


def _fig_outcomes(sweeps: list[_Sweep]) -> Figure:
    labels, shares = [], []
    for s in sweeps:
        for stage, part in s.df.groupby("stage"):
            summary = summarize(part)
            labels.append(f"{s.name + ' · ' if len(sweeps) > 1 else ''}stage {stage} (n={summary['rows']})")
            shares.append({k: v / summary["rows"] for k, v in summary["outcomes"].items()})
    fig = Figure(figsize=(10, 0.9 + 0.42 * len(labels)), layout="constrained")
    ax = fig.add_subplot()
    for i, share in enumerate(shares):
        left = 0.0
        for outcome in OUTCOMES:
            width = share.get(outcome, 0.0)
            ax.barh(i, width, left=left, color=OUTCOME_COLOURS[outcome], label=outcome if i == 0 else None)
            if width > 0.06:
                ax.text(left + width / 2, i, f"{width:.0%}", ha="center", va="center", fontsize=8, color="white")
            left += width
    ax.set_yticks(range(len(labels)), labels, fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of experiments")
    ax.legend(ncol=len(OUTCOMES), fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    return fig


def _fig_success_by_parameter(sweeps: list[_Sweep]) -> Figure:
    space = sweeps[0].space
    cols = 4
    rows = int(np.ceil(len(space) / cols))
    fig = Figure(figsize=(11, 2.9 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    several = len(sweeps) > 1
    for ax, dim in zip(axes.flat, space):
        band = sweeps[0].settings["band"]
        if band is not None:
            ax.axhspan(*band, color="#ffbf00", alpha=0.18, lw=0)
        for k, s in enumerate(sweeps):
            rows_u = uniform_rows(s.df)
            codes, bins = parameter_bins(rows_u[dim.name].to_numpy(), dim, 6)
            n = np.bincount(codes, minlength=len(bins))
            wins = np.bincount(codes, weights=rows_u["success"].astype(bool).to_numpy(), minlength=len(bins))
            keep = n > 0
            low, high = clopper_pearson(wins[keep], n[keep])
            rate = wins[keep] / n[keep]
            if isinstance(dim, Categorical):
                x = np.flatnonzero(keep) + (k - (len(sweeps) - 1) / 2) * 0.12
            else:
                x = np.array([b.centre for b in bins], dtype=float)[keep]
            ax.errorbar(x, rate, yerr=[rate - low, high - rate], fmt="o-", ms=3.5, lw=1.2, capsize=2.5,
                        color=ARM_COLOURS[k % len(ARM_COLOURS)], label=s.name if several else None)
        if isinstance(dim, Categorical):
            ax.set_xticks(range(len(dim.choices)), dim.choices, rotation=55, ha="right", fontsize=7)
        _log_axis(ax, dim, "x")
        ax.set_ylim(-0.03, 1.03)
        ax.set_title(dim.name, fontsize=10)
        ax.grid(alpha=0.25)
    for ax in list(axes.flat)[len(space):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("success rate")
    if several:
        axes.flat[0].legend(fontsize=8)
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
        along = dy.from_unit(np.linspace(0.0, 1.0, 200)) if isinstance(dy, Continuous) else np.linspace(dy.low, dy.high, 200)
        curve = fit.model.boundary_curve(x, y, along)
        for r in range(curve.shape[1]):
            (line,) = ax.plot(curve[:, r], along, color="black", lw=2)
            handles["boundary P(failure) = 0.5 (closed form)"] = line
        df = s.df
        ok = df["success"].astype(bool).to_numpy()
        stage2 = (df["stage"] == 2).to_numpy() if "stage" in df else np.zeros(len(df), bool)
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
        ax.set_xlabel(x)
        ax.set_ylabel(y)
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
    for k, (s, fit) in enumerate(zip(sweeps, fits)):
        colour = ARM_COLOURS[k % len(ARM_COLOURS)]
        for name, style in (("logistic", "-"), ("boosting", "--")):
            p = fit.test_proba[name]
            who = f"{s.name} {name}" if len(sweeps) > 1 else name
            fpr, tpr, _ = roc_curve(fit.test_failed, p)
            auc, low, high = fit.auc(name, seed)
            roc.plot(fpr, tpr, ls=style, lw=1.6, color=colour, label=f"{who}: AUC {auc:.3f} [{low:.3f}, {high:.3f}]")
            bins = max(3, min(10, len(p) // 30))
            observed, predicted = calibration_curve(fit.test_failed, p, n_bins=bins, strategy="quantile")
            rel.plot(predicted, observed, marker="o", ms=3.5, ls=style, lw=1.4, color=colour,
                     label=f"{who}: Brier {brier_score_loss(fit.test_failed, p):.3f}")
    roc.set_xlabel("false-positive rate (successes flagged)")
    roc.set_ylabel("true-positive rate (failures caught)")
    roc.set_title("ROC", fontsize=10)
    roc.legend(fontsize=7, loc="lower right")
    rel.set_xlabel("predicted P(failure)")
    rel.set_ylabel("observed failure rate")
    rel.set_title("reliability (quantile bins)", fontsize=10)
    rel.legend(fontsize=7, loc="upper left")
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
        row("stage-1 centred discrepancy", lambda s: _cell(s.settings["lhs_discrepancy"] or float("nan"))),
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
    return pd.DataFrame([{"parameter": d.name, "kind": d.kind, "range": d.describe(), "nominal": d.nominal}
                         for d in space])


def _summary_table(sweeps: list[_Sweep]) -> pd.DataFrame:
    rows = []
    for s in sweeps:
        summary = summarize(s.df)
        uniform = uniform_rows(s.df)
        wins, n = int(uniform["success"].astype(bool).sum()), len(uniform)
        low, high = clopper_pearson(wins, n)
        row = {"sweep": s.name, "experiments": summary["rows"],
               "uniform success rate (95 % CI)": f"{wins / n:.3f} [{float(low):.3f}, {float(high):.3f}]" if n else "n/a"}
        for stage, rate in summary["success_rate_by_stage"].items():
            row[f"stage {stage}: rows, success"] = f"{summary['rows_by_stage'][stage]}, {rate:.3f}"
        row["outcomes"] = ", ".join(f"{k} {v}" for k, v in summary["outcomes"].items())
        rows.append(row)
    return pd.DataFrame(rows).fillna("")


def _zone_rows(zones: pd.DataFrame) -> pd.DataFrame:
    def mix(outcomes: dict[str, int]) -> str:
        return ", ".join(f"{k} {v}" for k, v in outcomes.items())

    return pd.DataFrame({
        "zone": zones["zone"], "n": zones["n"], "failure rate": zones["failure_rate"],
        "CI": [f"[{lo:.2f}, {hi:.2f}]" for lo, hi in zip(zones["ci_low"], zones["ci_high"])],
        "class": zones["class"], "outcomes": [mix(o) for o in zones["outcomes"]],
    })


def _zone_comparison(zones: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """One row per zone that is danger or safe on some arm: each arm's rate, interval and class."""
    decided = zones[zones["class"] != "boundary"]["zone"].unique()
    rows = []
    for zone, group in zones[zones["zone"].isin(decided)].groupby("zone", sort=False):
        by_arm = {r["arm"]: r for r in group.to_dict("records")}
        row = {"zone": zone, "universal": "universal" if group["universal"].any() else ""}
        for name in names:
            r = by_arm.get(name)
            row[name] = (f"{r['failure_rate']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}] {r['class']}"
                         if r is not None else "—")
        surest = max(max(r["ci_low"], 1 - r["ci_high"]) for r in by_arm.values())
        rows.append((not row["universal"], -surest, row))
    rows.sort(key=lambda t: t[:2])
    return pd.DataFrame([r for *_, r in rows][: 2 * _TOP_ZONES])


def _coefficients(sweeps: list[_Sweep], fits: list[_RiskFit | None]) -> pd.DataFrame:
    series = {s.name: f.model.coefficients_ for s, f in zip(sweeps, fits) if f is not None}
    table = pd.DataFrame(series)
    order = table.drop(index="intercept", errors="ignore").abs().max(axis=1).sort_values(ascending=False).index
    table = table.loc[["intercept", *order[:_TOP_TERMS]]] if "intercept" in table.index else table.loc[order[:_TOP_TERMS]]
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
        An operating envelope (see :class:`robogate.envelope.Envelope`; strings
        as ``"friction=0.4:1.2"``): the report then states the gate's verdict
        for it on every sweep.
    max_failure_rate, confidence : float
        The gate's limit and confidence (with ``envelope``).
    holdout : float, default 0.3
        Share of the uniform (stage-1) rows held out of fitting for the ROC
        and reliability curves.
    seed : int, default 0
        Seed of the held-out split, the bootstrap and the models' folds.

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

    # -- summary ----------------------------------------------------------------------------
    doc.heading("Summary")
    doc.table(_summary_table(runs), "Rates that stand for the operating space come from the uniform (stage-1) rows; "
                                    "stage-2 rows over-sample the success band on purpose.")
    if gate_envelope is not None:
        doc.heading("Deployment gate")
        doc.text(f"Envelope: {gate_envelope.describe()}; limit {max_failure_rate:g} on the failure rate at "
                 f"{confidence:g} confidence, from the uniform experiments inside the envelope.")
        for r in runs:
            doc.verdict(gate(r.df, space, gate_envelope, max_failure_rate, confidence), r.name)

    # -- danger zones -----------------------------------------------------------------------
    zones = danger_zones({r.name: r.df for r in runs} if several else runs[0].df, space)
    doc.heading("Danger zones")
    doc.text(
        f"One- and two-parameter regions (bins of the uniform rows) whose failure rate is surely high (danger: "
        f"lower bound >= 0.7) or low (safe: upper bound < 0.3). The Clopper–Pearson intervals are simultaneous "
        f"over all {zones.attrs['tests']} regions tested (each at {zones.attrs['cell_confidence']:.6f}), so with 95 % "
        "confidence no zone below is labelled danger or safe wrongly. A two-parameter region inside a "
        "one-parameter zone of the same class is left out."
    )
    counts = zones.groupby(["arm", "class"] if several else ["class"]).size()
    doc.text("Zones by class: " + "; ".join(
        f"{' '.join(map(str, k)) if isinstance(k, tuple) else k}: {v}" for k, v in counts.items()) + ".")
    if several:
        names = [r.name for r in runs]
        doc.text("A zone is universal when it has the same class (danger or safe) on every sweep. Each cell: "
                 "failure rate [simultaneous interval] class.")
        doc.table(_zone_comparison(zones, names))
    else:
        for cls in ("danger", "safe"):
            part = zones[zones["class"] == cls].head(_TOP_ZONES)
            if len(part):
                doc.heading(f"{cls.capitalize()} zones ({(zones['class'] == cls).sum()}, top {len(part)})", 3)
                doc.table(_zone_rows(part))

    # -- success per parameter ------------------------------------------------------------
    doc.heading("Outcomes")
    doc.figure("outcomes", _fig_outcomes(runs), "Outcome mix by stage.")
    doc.heading("Success across each parameter")
    band = runs[0].settings["band"]
    doc.figure("success_by_parameter", _fig_success_by_parameter(runs),
               "Success rate of the uniform rows per bin or value, with 95 % Clopper–Pearson intervals"
               + (f"; the shaded band is the sweep's stage-2 target {band[0]:g}–{band[1]:g}." if band else "."))

    # -- risk map -----------------------------------------------------------------------------
    usable = [(r, f) for r, f in zip(runs, fits) if f is not None]
    doc.heading("Risk map")
    if not usable:
        doc.text("No risk model: every experiment had the same outcome.")
    else:
        doc.text("RiskModel (logistic regression on log-scaled, standardised parameters, one-hot categories and "
                 "the squares and interactions chosen by cross-validated log-loss), fitted on every row.")
        pairs = _heatmap_pairs(space, [f for _, f in usable])
        caption = ("P(failure) with the other parameters at their nominal values; the black line is the closed-form "
                   "boundary P(failure) = 0.5; markers are the experiments, at any value of the other parameters "
                   "(crosses and circles uniform, triangles stage 2).")
        if several:
            for x, y in pairs:
                doc.figure(f"risk_{x}_{y}", _fig_heatmaps([(r, f, x, y, r.name) for r, f in usable]),
                           f"{x} × {y}: {caption}")
        elif pairs:
            r, f = usable[0]
            doc.figure("risk_map", _fig_heatmaps([(r, f, x, y, f"{x} × {y}") for x, y in pairs]), caption)
        doc.heading("Boundary equations", 3)
        for r, f in usable:
            for x, y in pairs:
                doc.text(f"{r.name}: {x} as a function of {y}" if several else f"{x} as a function of {y}")
                doc.code(f.model.boundary_equation(x, y))
        doc.heading("Coefficients", 3)
        doc.table(_coefficients([r for r, _ in usable], [f for _, f in usable]),
                  f"Logit terms (encoded units) with the largest magnitude, at most {_TOP_TERMS}; positive "
                  "raises P(failure); — marks a term a model did not select.")

        evaluated = [(r, f) for r, f in usable if f.test_failed is not None]
        doc.heading("How well the map predicts")
        if not evaluated:
            doc.text("Too few uniform rows of both outcomes to hold some out: no held-out evaluation.")
        else:
            n_test = ", ".join(f"{r.name} {len(f.test_failed)}" if several else str(len(f.test_failed))
                               for r, f in evaluated)
            doc.text(f"Held-out uniform rows ({n_test}; {holdout:.0%} of stage 1, never used in fitting): models "
                     "refitted on the remaining rows. Logistic is the RiskModel, boosting the FlexibleRiskModel "
                     "(histogram gradient boosting) for comparison. AUC intervals: 95 % bootstrap.")
            doc.figure("evaluation", _fig_evaluation(*zip(*evaluated), seed=seed),
                       "ROC curves and reliability (observed failure rate per quantile bin of predicted P(failure)) "
                       "on the held-out uniform rows.")

    # -- provenance ---------------------------------------------------------------------------
    doc.heading("Provenance")
    doc.table(_provenance(runs))
    doc.text("Every experiment's own seed is stored with its row (results/ in each sweep folder, plain Parquet).")
    doc.heading("Parameter space", 3)
    doc.table(_space_table(space))
    doc.text(_environment(seed))

    return doc.write(out)
