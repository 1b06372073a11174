"""The reports' document: blocks of content rendered to Markdown and to a self-contained HTML page.

:class:`Document` is what the sweep report (:mod:`robogate.reports.sweep`), the suite and
comparison reports (:mod:`robogate.reports.suite`, :mod:`robogate.reports.comparison`) and the monitor report
(:mod:`robogate.reports.monitor`) write: headings, paragraphs, tables, code, verdict
boxes, caveats and matplotlib figures, into ``report.md`` (figures as PNG files
beside it) and ``report.html`` (the same figures embedded as base64 PNG, one file
that opens offline).
"""

from __future__ import annotations

import base64
import html
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = ["Document", "Verdict", "cell_text"]

_DPI = 100


class Verdict(Protocol):
    """What a verdict box shows: a gate decision, a policy comparison."""

    verdict: str
    reason: str


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

    def verdict(self, decision: Verdict, who: str) -> None:
        """A verdict box: anything with ``verdict`` and ``reason`` (a gate decision, a policy comparison)."""
        self.blocks.append(("verdict", (decision, who)))

    def caveat(self, text: str, label: str = "Caveat") -> None:
        """A sentence on what the report cannot conclude (or, labelled "Errors", a broken harness), set apart."""
        self.blocks.append(("caveat", (label, text)))

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
                out += [f"**{who}: {decision.verdict.upper()}** — {_verdict_text(decision)}", ""]
            elif kind == "caveat":
                out += [f"> **{value[0]}:** {value[1]}", ""]
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
                    f"{decision.verdict.upper()}</span> {html.escape(_verdict_text(decision))}</p>"
                )
            elif kind == "caveat":
                label, text = value
                css = "caveat errors" if label == "Errors" else "caveat"
                body.append(f'<p class="{css}"><span class="badge">{html.escape(label)}:</span> '
                            f"{html.escape(text)}</p>")
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


def _verdict_text(decision: Verdict) -> str:
    """The reason without its leading ``"verdict: "``: the badge beside it already says it."""
    return decision.reason.removeprefix(f"{decision.verdict}: ")


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
td.worse {{ background: #fbe3e1 !important; color: #8f1d14; font-weight: 600; }}
td.better {{ background: #e3f4e1 !important; color: #1e6b1a; font-weight: 600; }}
td.universal {{ font-weight: 700; color: #8f1d14; }}
figure {{ margin: 1em 0 1.6em; }}
figure img {{ max-width: 100%; height: auto; border: 1px solid #e3e6ea; }}
figcaption {{ color: #5a6470; font-size: 0.9em; margin-top: 0.3em; }}
pre {{ background: #f6f8fa; border: 1px solid #e3e6ea; padding: 10px; overflow-x: auto; font-size: 0.85em; }}
p.verdict {{ padding: 10px 14px; border-radius: 6px; border-left: 6px solid; }}
p.verdict.pass {{ background: #e3f4e1; border-color: #2ca02c; }}
p.verdict.fail {{ background: #fbe3e1; border-color: #d62728; }}
p.verdict.inconclusive {{ background: #fff4d6; border-color: #e0a800; }}
p.verdict.error {{ background: #ececec; border-color: #000; }}
p.verdict.better, p.verdict.not-worse {{ background: #e3f4e1; border-color: #2ca02c; }}
p.verdict.worse {{ background: #fbe3e1; border-color: #d62728; }}
p.verdict.undecided {{ background: #fff4d6; border-color: #e0a800; }}
p.verdict.stop-on-alarm {{ background: #e3f4e1; border-color: #2ca02c; }}
p.verdict.run-to-the-end {{ background: #fff4d6; border-color: #e0a800; }}
p.caveat {{ padding: 8px 14px; border-radius: 6px; border-left: 6px solid #e0a800; background: #fffaf0; }}
p.caveat.errors {{ border-color: #000; background: #ececec; }}
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

_CELL_CLASSES = {"danger", "safe", "boundary", "worse", "better"}


def cell_text(value: Any) -> str:
    """How a table shows ``value``: floats to 3 significant digits (NaN as empty), anything else as ``str``."""
    if isinstance(value, float):
        return "" if np.isnan(value) else f"{value:.3g}"
    return str(value)


def _markdown_table(rows: pd.DataFrame) -> str:
    def clean(value: Any) -> str:
        return cell_text(value).replace("|", "\\|").replace("\n", " ")

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
            text = cell_text(value)
            css = ("num" if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
                   else text if text in _CELL_CLASSES else "universal" if text == "universal" else "")
            cells.append(f'<td class="{css}">{html.escape(text)}</td>' if css else f"<td>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
