"""The HTML of a report: one self-contained page, no script, nothing fetched.

Every value that comes from the data (names of campaigns, experiments, segments, columns, error
messages) passes through :func:`html.escape` here; charts are escaped by matplotlib's SVG writer, and
sparklines by :func:`reports.charts.sparkline_bars`; a :class:`Markup` table cell holds only those.
A Content-Security-Policy allowing no script and no fetch backs this up: were a name ever to slip
through unescaped, the browser would still refuse to run or load it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from html import escape
from typing import Any

from reports.base import Section

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_CSS = """
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: #1a1a1a; background: #fff; margin: 0; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { font-size: 1.25em; margin: 36px 0 6px; padding-top: 10px; border-top: 1px solid #ddd; }
h3 { font-size: 1.05em; margin: 22px 0 4px; }
p.meta { color: #555; margin: 0 0 14px; }
p.intro { color: #333; max-width: 78ch; margin: 4px 0 10px; }
nav ol { columns: 2; margin: 8px 0 0; padding-left: 22px; }
.notes { background: #fff8e6; border-left: 4px solid #E69F00; padding: 8px 14px; margin: 14px 0; }
.notes ul { margin: 4px 0; padding-left: 20px; }
.verdict { font-weight: 600; }
.verdict.bad { color: #b34700; }
.verdict.good { color: #00664d; }
figure { margin: 10px 0 14px; }
figcaption, caption { color: #555; font-size: 0.9em; }
caption { text-align: left; caption-side: top; padding: 2px 0; }
svg.chart { width: 100%; height: auto; display: block; }
svg.chart.spark { width: 160px; height: 32px; display: inline-block; vertical-align: middle; }
svg.chart text { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 0.92em; }
th, td { padding: 3px 10px; border-bottom: 1px solid #e3e3e3; text-align: left; vertical-align: top; }
th { background: #f4f4f4; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.up { color: #00664d; } td.down { color: #b34700; }
.wide { overflow-x: auto; }
code { background: #f4f4f4; padding: 0 3px; }
@media print {
  body { font-size: 10.5pt; }
  main { max-width: none; padding: 0; }
  nav { display: none; }
  h2 { break-before: auto; break-after: avoid; }
  figure, table, .notes { break-inside: avoid; }
  .wide { overflow: visible; }
  a { color: inherit; text-decoration: none; }
}
"""


def text(value: Any) -> str:
    """Any value as escaped HTML text."""
    return escape("" if value is None else str(value))


def number(value: Any, digits: int = 0, percent: bool = False, signed: bool = False) -> str:
    """A number for a table cell: thousands separated, ``–`` when missing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    v = float(value) * (100 if percent else 1)
    body = f"{v:,.{digits}f}"
    if body.startswith("-") and not body.strip("-0.,"):
        body = body[1:]  # a value that rounds to zero is shown as 0, never "-0.00"
    sign = "+" if signed and v > 0 and body.strip("0.,") else ""
    return f"{sign}{body}{'%' if percent else ''}"


def p_value(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return "< 0.0001" if value < 0.0001 else f"{value:.4f}"


def day(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    return text(value)


class Markup(str):
    """Trusted HTML for a table cell (a chart from :mod:`reports.charts`), placed as it is."""


def table(header: Sequence[str], body: Sequence[Sequence[Any]], numeric: Sequence[int] = (), caption: str = "") -> str:
    """A data table. Cells are escaped text; columns at ``numeric`` are right-aligned.

    A cell given as ``("class", text)`` gets that CSS class (``up`` / ``down`` for changes); a
    :class:`Markup` cell is placed unescaped.
    """
    numeric_set = set(numeric)
    head = "".join(
        f'<th scope="col"{" class=num" if i in numeric_set else ""}>{text(h)}</th>' for i, h in enumerate(header)
    )
    lines = []
    for row in body:
        cells = []
        for i, cell in enumerate(row):
            classes = ["num"] if i in numeric_set else []
            value = cell
            if isinstance(cell, tuple):
                classes.append(cell[0])
                value = cell[1]
            attr = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f"<td{attr}>{value if isinstance(value, Markup) else text(value)}</td>")
        lines.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{text(caption)}</caption>" if caption else ""
    return f'<div class="wide"><table>{cap}<thead><tr>{head}</tr></thead><tbody>{"".join(lines)}</tbody></table></div>'


def figure(svg: str, caption: str) -> str:
    """A chart (trusted SVG from :func:`reports.charts.svg`) with its caption (escaped)."""
    return f"<figure>{svg}<figcaption>{text(caption)}</figcaption></figure>"


def paragraph(content: str, css: str = "") -> str:
    """A paragraph of escaped text."""
    attr = f' class="{css}"' if css else ""
    return f"<p{attr}>{text(content)}</p>"


def heading(content: str) -> str:
    return f"<h3>{text(content)}</h3>"


def notes_box(notes: Sequence[str], title: str = "What cannot be drawn, and why") -> str:
    if not notes:
        return ""
    items = "".join(f"<li>{text(n)}</li>" for n in notes)
    return f'<div class="notes" role="note"><strong>{text(title)}</strong><ul>{items}</ul></div>'


def render(title: str, meta: str, sections: Sequence[Section], notes: Sequence[str]) -> str:
    """The whole page."""
    toc = "".join(f'<li><a href="#{text(s.anchor)}">{text(s.title)}</a></li>' for s in sections)
    body = []
    for s in sections:
        body.append(f'<section id="{text(s.anchor)}"><h2>{text(s.title)}</h2>')
        if s.intro:
            body.append(paragraph(s.intro, "intro"))
        body.append(notes_box(s.notes, "Not drawn here"))
        body.extend(s.parts)
        body.append("</section>")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{text(title)}</title><style>{_CSS}</style></head>"
        f'<body><main><h1>{text(title)}</h1><p class="meta">{text(meta)}</p>'
        f"{notes_box(notes)}"
        f'<nav aria-label="Sections"><strong>Sections</strong><ol>{toc}</ol></nav>'
        f"{''.join(body)}</main></body></html>\n"
    )
