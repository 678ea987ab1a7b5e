"""Charts: matplotlib figures drawn to inline SVG, and sparklines written directly
(:func:`sparkline_bars`).

Why matplotlib: its SVG needs no script and no font (``svg.fonttype = none`` keeps text as text, so
a chart is a few KB, prints sharply and can be searched), where Plotly's or Vega's runtimes are
0.8-3.5 MB of JavaScript inlined, or need the internet. Figures are built with
``matplotlib.figure.Figure`` on the Agg canvas, never pyplot, whose global figure registry is not
safe in a long-lived function. The few settings that must be global (rcParams) are set under a lock
for the drawing of one chart.
"""

from __future__ import annotations

import io
import re
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from html import escape
from typing import Any

#: Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour-vision deficiency.
OKABE_ITO = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#F0E442",  # yellow
    "#000000",  # black
)
GREY = "#999999"
#: Anomalies and failures: vermillion stands out on every series colour above.
ALERT = "#D55E00"
#: Sequential colour map made for colour-vision deficiency (Nuñez, Anderton & Renslow 2018).
SEQUENTIAL = "cividis"

_LOCK = threading.Lock()
_SVG_OPEN = re.compile(r"<svg\b[^>]*>")
_PROLOG = re.compile(r"^.*?(?=<svg\b)", re.DOTALL)
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.DOTALL)
#: Every text element repeats the font family; the page's CSS sets it once (a third of a chart's bytes).
_FONT_FAMILY = re.compile(r"font-family: [^;\"]*;\s*")
#: Path coordinates: matplotlib writes six decimals of a point; two are finer than a screen pixel.
_PATH = re.compile(r'\sd="([^"]*)"')
_DECIMALS = re.compile(r"(\d+\.\d\d)\d+")


def colour(i: int) -> str:
    return OKABE_ITO[i % len(OKABE_ITO)]


@contextmanager
def _settings(salt: str) -> Iterator[None]:
    import matplotlib as mpl
    from cycler import cycler

    with (
        _LOCK,
        mpl.rc_context(
            {
                "svg.fonttype": "none",
                # Ids of clip paths and markers are hashed with this: stable output, and distinct per
                # chart so two charts inlined in one page never share an id.
                "svg.hashsalt": salt,
                # "$" in a campaign name is text, not the start of a formula.
                "text.parse_math": False,
                "font.family": "sans-serif",
                "font.sans-serif": ["DejaVu Sans", "Helvetica", "Arial", "sans-serif"],
                "font.size": 9,
                "axes.titlesize": 10,
                "axes.spines.top": False,
                "axes.spines.right": False,
                "axes.grid": True,
                "grid.color": "#dddddd",
                "grid.linewidth": 0.6,
                "axes.prop_cycle": cycler(color=list(OKABE_ITO)),
            }
        ),
    ):
        yield


def svg(
    draw: Callable[[Any], None],
    *,
    slug: str,
    width: float = 8.0,
    height: float = 3.2,
    label: str = "",
    titles: dict[str, str] | None = None,
) -> str:
    """The figure ``draw(figure)`` fills, as an ``<svg>`` element to inline in a page.

    ``titles`` maps a gid set by ``draw`` to a tooltip: the group gets an SVG ``<title>`` (escaped).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with _settings(slug):
        figure = Figure(figsize=(width, height), layout="constrained")
        FigureCanvasAgg(figure)
        draw(figure)
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = _METADATA.sub("", _PROLOG.sub("", buffer.getvalue(), count=1), count=1)
    text = _FONT_FAMILY.sub("", text)
    text = _PATH.sub(lambda m: ' d="' + _DECIMALS.sub(r"\1", m.group(1)) + '"', text)
    # The page sizes charts with CSS (full column width, height from the viewBox).
    opening = _SVG_OPEN.search(text)
    if opening is not None:
        tag = re.sub(r'\s(width|height)="[^"]*"', "", opening.group(0))
        tag = tag.replace("<svg", f'<svg role="img" aria-label="{escape(label)}" class="chart"', 1)
        text = text[: opening.start()] + tag + text[opening.end() :]
    for gid, tip in (titles or {}).items():
        text = text.replace(f'<g id="{gid}">', f'<g id="{gid}"><title>{escape(tip)}</title>', 1)
    return text.strip()


def mark(artist: Any, gid: str) -> Any:
    """Name a drawn data artist ``marks-…`` (what the browser test looks for); bars per patch."""
    patches = getattr(artist, "patches", None)
    if patches is not None:
        for i, patch in enumerate(patches):
            patch.set_gid(f"marks-{gid}-{i}")
        return artist
    if isinstance(artist, list):
        for i, item in enumerate(artist):
            item.set_gid(f"marks-{gid}-{i}")
        return artist
    artist.set_gid(f"marks-{gid}")
    return artist


def date_axis(axes: Any) -> None:
    """Readable dates: as few characters as the span allows (ConciseDateFormatter)."""
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def thousands(axes: Any, axis: str = "y") -> None:
    from matplotlib.ticker import FuncFormatter

    formatter = FuncFormatter(lambda v, _pos: f"{v:,.0f}" if abs(v) >= 1000 or v == int(v) else f"{v:,.2g}")
    (axes.yaxis if axis == "y" else axes.xaxis).set_major_formatter(formatter)


def counts(axes: Any, axis: str = "y") -> None:
    """An axis of counts: whole-number ticks, thousands separated (never "0.2 failures")."""
    from matplotlib.ticker import MaxNLocator

    (axes.yaxis if axis == "y" else axes.xaxis).set_major_locator(MaxNLocator(integer=True))
    thousands(axes, axis)


def compact(value: float) -> str:
    """A number in a few characters for a chart's cell: 950, 12.3k, 4.5M."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.0f}"


def short(text: str, limit: int = 28) -> str:
    """A label that fits an axis: long names cut with an ellipsis (the table beside shows them whole)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


#: Reasons drawn in a colour of their own in :func:`stacked_by_reason`; the rest are "other".
MAX_REASONS = 6


def stacked_by_reason(axes: Any, result: list[dict[str, Any]], count: str, slug: str) -> None:
    """Bars per ``day`` of ``result``'s rows stacked by ``reason`` (each row adds its ``count``): the
    :data:`MAX_REASONS` largest reasons in their own colours, the rest together as "other"."""
    by_reason: dict[str, int] = defaultdict(int)
    for r in result:
        by_reason[str(r["reason"])] += int(r[count])
    shown = sorted(by_reason, key=lambda k: (-by_reason[k], k))[:MAX_REASONS]
    days = sorted({r["day"] for r in result})
    stack: dict[str, dict[Any, int]] = defaultdict(lambda: defaultdict(int))
    for r in result:
        stack[str(r["reason"]) if str(r["reason"]) in shown else "other"][r["day"]] += int(r[count])
    bottom = [0] * len(days)
    for k, reason in enumerate([*shown, *(["other"] if "other" in stack else [])]):
        heights = [stack[reason].get(d, 0) for d in days]
        bar_colour = GREY if reason == "other" else colour(k)
        mark(axes.bar(days, heights, 0.8, bottom=bottom, color=bar_colour, label=short(reason, 30)), f"{slug}-{k}")
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]


_SLUG = re.compile(r"[A-Za-z0-9_-]+")


def sparkline_bars(
    counts: list[int], *, slug: str, label: str, tips: list[str], width: int = 160, height: int = 32
) -> str:
    """A small bar chart without axes, as an ``<svg>`` element to inline in a table cell: one bar per
    count, scaled to the largest, above a grey baseline. A count above zero is at least one pixel
    high, so a bin holding a few rows among millions still shows. Each bin's ``tips`` entry
    (escaped) is its tooltip, over the bin's whole column, so an empty bin can be hovered too; the
    drawn bars alone carry the ``marks-`` ids.

    Written directly, not with matplotlib: a sparkline has no axis, tick or legend to lay out, and
    the figure machinery costs a tenth of a second for what is a row of rectangles.
    """
    if not _SLUG.fullmatch(slug):
        raise ValueError(f"a chart's slug is letters, digits, _ and -, not {slug!r}")
    top = max(counts, default=0) or 1
    step = width / max(len(counts), 1)
    room = height - 1  # the bottom pixel row is the baseline
    bins = []
    for i, (n, tip) in enumerate(zip(counts, tips, strict=True)):
        h = 0.0 if n <= 0 else max(1.0, room * n / top)
        x = f"{i * step:.2f}"
        bins.append(
            f"<g><title>{escape(tip)}</title>"
            f'<rect x="{x}" y="0" width="{step:.2f}" height="{room}" fill="transparent"/>'
            f'<rect id="marks-{slug}-{i}" x="{x}" y="{room - h:.2f}" width="{max(step - 1, 0.5):.2f}" '
            f'height="{h:.2f}" fill="{OKABE_ITO[0]}"/></g>'
        )
    return (
        f'<svg role="img" aria-label="{escape(label)}" class="chart spark" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
        f'<line x1="0" y1="{height - 0.5}" x2="{width}" y2="{height - 0.5}" stroke="{GREY}" stroke-width="1"/>'
        f"{''.join(bins)}</svg>"
    )
