"""A sweep report: Markdown summary plus figures of outcomes and success across the parameter space."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.stats import binomtest  # noqa: E402

from robogate.envs.outcomes import OUTCOMES  # noqa: E402
from robogate.space import Categorical, Continuous, ParameterSpace  # noqa: E402

OUTCOME_COLOURS = {
    "success": "#2ca02c",
    "grasp_miss": "#ff7f0e",
    "grip_loss": "#d62728",
    "collision": "#9467bd",
    "placement_error": "#8c564b",
    "timeout": "#7f7f7f",
    "error": "#000000",
}


def success_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Clopper–Pearson interval of a success rate."""
    if n == 0:
        return (0.0, 1.0)
    ci = binomtest(int(successes), int(n)).proportion_ci(confidence, method="exact")
    return float(ci.low), float(ci.high)


def success_by_value(df: pd.DataFrame, dim, bins: int = 6) -> pd.DataFrame:
    """Success rate with its 95 % interval per value (categories, integers) or per bin (continuous)."""
    values = df[dim.name]
    if isinstance(dim, Continuous):
        edges = np.geomspace(dim.low, dim.high, bins + 1) if dim.log else np.linspace(dim.low, dim.high, bins + 1)
        groups = pd.cut(values, edges, include_lowest=True)
        centres = np.sqrt(edges[:-1] * edges[1:]) if dim.log else (edges[:-1] + edges[1:]) / 2
        labels = dict(zip(groups.cat.categories, centres))
    else:
        groups = values
        labels = None
    rows = []
    for key, part in df.groupby(groups, observed=True):
        n, k = len(part), int(part["success"].sum())
        low, high = success_interval(k, n)
        rows.append({"value": labels[key] if labels else key, "n": n, "success_rate": k / n, "low": low, "high": high})
    table = pd.DataFrame(rows)
    if isinstance(dim, Categorical) and len(table):  # declared order: easiest first
        table = table.sort_values("value", key=lambda v: v.map(dim.choices.index)).reset_index(drop=True)
    return table


def plot_outcomes(df: pd.DataFrame, path: Path) -> None:
    stages = sorted(df["stage"].unique()) if "stage" in df else [None]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for i, stage in enumerate(stages):
        part = df if stage is None else df[df["stage"] == stage]
        shares = part["outcome"].value_counts(normalize=True)
        left = 0.0
        for outcome in OUTCOMES:
            width = float(shares.get(outcome, 0.0))
            ax.barh(i, width, left=left, color=OUTCOME_COLOURS[outcome], label=outcome if i == 0 else None)
            left += width
    ax.set_yticks(range(len(stages)), [f"stage {s}" if s is not None else "all" for s in stages])
    ax.set_xlabel("share of experiments")
    ax.legend(ncol=4, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.3))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_success_by_parameter(df: pd.DataFrame, space: ParameterSpace, path: Path) -> None:
    n = len(space)
    cols = 4
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.8 * rows), squeeze=False)
    for ax, dim in zip(axes.flat, space):
        table = success_by_value(df, dim)
        if isinstance(dim, Categorical):
            x = np.arange(len(table))
            ax.set_xticks(x, [str(v) for v in table["value"]], rotation=60, fontsize=7, ha="right")
        else:
            x = table["value"].to_numpy(dtype=float)
            if isinstance(dim, Continuous) and dim.log:
                ax.set_xscale("log")
        yerr = np.vstack([table["success_rate"] - table["low"], table["high"] - table["success_rate"]])
        ax.errorbar(x, table["success_rate"], yerr=yerr, fmt="o-", capsize=3, color="#1f77b4")
        ax.axhspan(0.3, 0.7, color="#ffbf00", alpha=0.15)
        ax.set_ylim(-0.05, 1.05)
        ax.set_title(dim.name, fontsize=10)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes[0, 0].set_ylabel("success rate (95 % CI)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_pair(df: pd.DataFrame, space: ParameterSpace, x: str, y: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4.5))
    markers = {1: "o", 2: "^"}
    for outcome in OUTCOMES:
        for stage, marker in markers.items():
            part = df[(df["outcome"] == outcome) & (df.get("stage", 1) == stage)]
            if len(part):
                ax.scatter(part[x], part[y], s=18, marker=marker, color=OUTCOME_COLOURS[outcome],
                           alpha=0.75, label=f"{outcome} (stage {stage})")
    for name, setter in ((x, ax.set_xscale), (y, ax.set_yscale)):
        if isinstance(space[name], Continuous) and space[name].log:
            setter("log")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(
    df: pd.DataFrame, space: ParameterSpace, out: str | Path, title: str = "robogate sweep", pair=None
) -> Path:
    """Write ``report.md`` and its figures into ``out``; return the Markdown file's path.

    Parameters
    ----------
    df : pandas.DataFrame
        Sweep rows: parameter columns, ``success``, ``outcome`` and optionally ``stage``.
    space : ParameterSpace
        The swept space (for scales and categories).
    out : path
        Folder to write into (created if missing).
    pair : tuple of str, optional
        Two parameters for the scatter plot; by default the first two continuous ones.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    missing = {"success", "outcome"} - set(df.columns)
    if missing:
        raise ValueError(f"report: the table lacks columns {sorted(missing)}")
    if pair is None:
        continuous = [d.name for d in space if isinstance(d, Continuous)]
        pair = tuple(continuous[:2]) if len(continuous) >= 2 else tuple(space.names[:2])
    plot_outcomes(df, out / "outcomes.png")
    plot_success_by_parameter(df, space, out / "success_by_parameter.png")
    plot_pair(df, space, pair[0], pair[1], out / "pair.png")

    n, k = len(df), int(df["success"].sum())
    low, high = success_interval(k, n)
    lines = [f"# {title}", "", f"{n} experiments, success rate {k / n:.3f} (95 % CI {low:.3f}–{high:.3f}).", ""]
    if "stage" in df:
        lines += ["| stage | experiments | success rate | 95 % CI |", "|---|---|---|---|"]
        for stage, part in df.groupby("stage"):
            s = int(part["success"].sum())
            lo, hi = success_interval(s, len(part))
            lines.append(f"| {stage} | {len(part)} | {s / len(part):.3f} | {lo:.3f}–{hi:.3f} |")
        lines.append("")
    lines += ["## Outcomes", "", "| outcome | count | share |", "|---|---|---|"]
    for outcome, count in df["outcome"].value_counts().items():
        lines.append(f"| {outcome} | {count} | {count / n:.3f} |")
    lines += ["", "![outcomes](outcomes.png)", "", "## Success across each parameter", "",
              "Success rate per value or bin with its Clopper–Pearson 95 % interval; the shaded band is 30–70 %.",
              "", "![success by parameter](success_by_parameter.png)", "",
              f"## {pair[0]} against {pair[1]}", "", "Each experiment, coloured by outcome; triangles are "
              "stage-2 (boundary-focused) samples.", "", "![pair](pair.png)", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
