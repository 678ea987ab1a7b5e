"""Sections every dataset gets: its profile (columns, nulls, distinct counts, ranges, histograms) and
its quarantine reasons over time."""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from reports import charts, page
from reports.base import Context, Section, rows, sql_column, sql_name, sql_string

PROFILES = "dataset_profiles"
#: Numeric columns given a histogram; bins per histogram.
MAX_HISTOGRAMS = 12
BINS = 20
#: Columns every curated row carries (lineage): not the data's own.
LINEAGE = frozenset({"source_key", "source_version", "source_id", "ingested_at", "ingest_date"})


def data_table(dataset: str) -> str:
    """The table holding ``dataset``'s rows: its spec's own table (experiments → experiment_exposures)."""
    from analytics.registry import spec

    found = spec(dataset)
    return found.own_table if found else dataset


def sections(ctx: Context) -> list[Section]:
    return [draw(ctx) for _, _, draw in DRAWERS]


def _profile(ctx: Context) -> Section:
    s = Section(
        "Profile of the data",
        "profile",
        "One row per column over every file of the dataset: its type, how many values are missing, how many "
        "distinct values there are and its range. Numeric columns get a histogram of their values.",
    )
    if not ctx.sources.has(PROFILES):
        s.note(f"no {PROFILES} table: profiles are written as files are processed")
        profile: list[dict[str, Any]] = []
    else:
        ds = sql_string(ctx.dataset)
        profile = rows(
            ctx.query(
                f"""
                SELECT "column", min(position) AS position, count(DISTINCT source_id) AS files, sum(rows) AS total_rows,
                       sum(nulls) AS nulls, max(distinct_estimate) AS distinct_max,
                       min(min_number) AS min_number, max(max_number) AS max_number,
                       min(min_time) AS min_time, max(max_time) AS max_time,
                       min("min") AS min_text, max("max") AS max_text
                FROM dataset_profiles WHERE dataset = {ds}
                GROUP BY 1 ORDER BY 2, 1
                """
            )
        )
        types = rows(
            ctx.query(
                f"""SELECT "column", type, count(*) AS files FROM dataset_profiles WHERE dataset = {ds}
                GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2"""
            )
        )
        type_of: dict[str, list[str]] = defaultdict(list)
        for t in types:
            type_of[str(t["column"])].append(str(t["type"]))
        if not profile:
            s.note(f"{PROFILES} has no rows for {ctx.dataset}")
    if profile:
        names = [str(p["column"]) for p in profile]
        shares = [float(p["nulls"] or 0) / float(p["total_rows"]) if p["total_rows"] else 0.0 for p in profile]

        def draw(figure: Any) -> None:
            ax = figure.subplots()
            charts.mark(ax.barh(range(len(names)), [v * 100 for v in shares], 0.6, color=charts.OKABE_ITO[1]), "nulls")
            ax.set_yticks(range(len(names)), [charts.short(n, 24) for n in names])
            ax.invert_yaxis()
            ax.set_xlim(0, 100)
            ax.set_xlabel("missing values (% of rows)")

        s.parts.append(
            page.figure(
                charts.svg(
                    draw, slug="nulls", height=0.7 + 0.22 * max(len(names), 3), label="missing values per column"
                ),
                "Share of missing values per column, over every file",
            )
        )

        def bounds(p: dict[str, Any]) -> tuple[str, str]:
            if p["min_number"] is not None:
                return page.number(p["min_number"], 2), page.number(p["max_number"], 2)
            if p["min_time"] is not None:
                return page.day(p["min_time"]), page.day(p["max_time"])
            return str(p["min_text"] or ""), str(p["max_text"] or "")

        body = []
        for p, share in zip(profile, shares, strict=True):
            low, high = bounds(p)
            body.append(
                [
                    p["column"],
                    " | ".join(type_of.get(str(p["column"]), [])),
                    page.number(p["total_rows"]),
                    page.number(share, 1, percent=True),
                    page.number(p["distinct_max"]),
                    low,
                    high,
                    page.number(p["files"]),
                ]
            )
        s.parts.append(
            page.table(
                ["column", "type", "rows", "missing", "distinct (largest per file)", "min", "max", "files"],
                body,
                numeric=(2, 3, 4, 7),
            )
        )
    _histograms(ctx, s)
    return s


def _numeric(dtype: pa.DataType) -> bool:
    return pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype)


def _histograms(ctx: Context, s: Section) -> None:
    table = data_table(ctx.dataset)
    if not ctx.sources.has(table):
        s.note(f"the dataset's table {table} is not among the tables this report reads: no histograms of its values")
        return
    # A keyed dataset's table is a view showing each key once, from the newest file that has it (a
    # window over every file's rows): it is read twice in all, once for the bounds and once for every
    # column's bins, so a row a later file exported again counts once, whatever the number of columns.
    schema = ctx.query(f"SELECT * FROM {sql_name(table)} LIMIT 0").schema
    numeric = [f.name for f in schema if _numeric(f.type) and f.name not in LINEAGE and not f.name.startswith("_")]
    if not numeric:
        s.note(f"{table} has no numeric columns: no histograms to draw")
        return
    if len(numeric) > MAX_HISTOGRAMS:
        s.note(f"histograms of the first {MAX_HISTOGRAMS} of {len(numeric)} numeric columns are drawn")
        numeric = numeric[:MAX_HISTOGRAMS]
    found, edges = _bins(ctx, table, numeric)
    drawn = [i for i in range(len(numeric)) if i in found]
    empty = [numeric[i] for i in range(len(numeric)) if i not in found]
    if empty:
        s.note("no values to draw a histogram of in " + ", ".join(empty))
    if not drawn:
        return
    body = []
    for i in drawn:
        lo, hi = edges[i]
        width = (hi - lo) / BINS
        digits = _digits(width if hi > lo else abs(lo))
        if hi > lo:
            counts = [found[i].get(b, 0) for b in range(BINS)]
            ranges = [
                f"{page.number(lo + b * width, digits)} to {page.number(lo + (b + 1) * width, digits)}"
                for b in range(BINS)
            ]
            tips = [f"{r}: {page.number(n)} rows" for r, n in zip(ranges, counts, strict=True)]
            busiest = max(range(BINS), key=lambda b: counts[b])
            most = f"; most rows ({page.number(counts[busiest])}) {ranges[busiest]}"
        else:
            counts = [found[i].get(0, 0)]
            tips = [f"{page.number(lo, digits)}: {page.number(counts[0])} rows"]
            most = "; every value the same"
        low, high = page.number(lo, digits), page.number(hi, digits)
        label = f"histogram of {numeric[i]}: {page.number(sum(counts))} rows from {low} to {high}{most}"
        spark = charts.sparkline_bars(counts, slug=f"hist-{i}", label=label, tips=tips)
        body.append([numeric[i], page.Markup(spark), low, high, page.number(sum(counts))])
    s.parts.append(
        page.table(
            ["column", "values (min → max)", "min", "max", "rows counted"],
            body,
            numeric=(2, 3, 4),
            caption=f"Values of each numeric column of {table} ({BINS} equal-width bins between its min and max; "
            "rows per bin on hover)",
        )
    )


def _digits(step: float) -> int:
    """Decimals that tell bins ``step`` wide apart: two for steps of 0.1 and above, one more for
    each tenfold smaller step (0.0012 wide bins get four), at most ten."""
    if step <= 0 or not math.isfinite(step):
        return 2
    return min(10, max(2, 1 - math.floor(math.log10(step))))


def _bins(
    ctx: Context, table: str, numeric: list[str]
) -> tuple[dict[int, dict[int, int]], dict[int, tuple[float, float]]]:
    """Rows per bin of each of ``numeric`` (by position) and each one's (min, max): two statements,
    each reading ``table`` once (the bounds; then every column's bins by GROUPING SETS)."""
    # Doubles only, and non-finite values left out, so the bin arithmetic is the same in Athena and DuckDB.
    values = {i: f"CAST({sql_column(c)} AS double)" for i, c in enumerate(numeric)}
    finite = {i: f"{v} IS NOT NULL AND {v} = {v} AND abs({v}) < 1e308" for i, v in values.items()}
    bound_cols = ", ".join(
        f"min(CASE WHEN {finite[i]} THEN {v} END) AS lo_{i}, max(CASE WHEN {finite[i]} THEN {v} END) AS hi_{i}"
        for i, v in values.items()
    )
    bounds = rows(ctx.query(f"SELECT {bound_cols} FROM {sql_name(table)}"))[0]
    edges = {i: (float(bounds[f"lo_{i}"]), float(bounds[f"hi_{i}"])) for i in values if bounds[f"lo_{i}"] is not None}
    if not edges:
        return {}, {}
    bin_cols = []
    for i, (lo, hi) in edges.items():
        v = values[i]
        # repr() of a double reads back as the same double in both engines
        expr = (
            "0"
            if hi == lo
            else f"least(CAST(floor(({v} - ({lo!r})) / (({hi!r} - ({lo!r})) / {BINS})) AS bigint), {BINS - 1})"
        )
        bin_cols.append(f"CASE WHEN {finite[i]} THEN {expr} END AS bin_{i}")
    sets = ", ".join(f"(bin_{i})" for i in edges)
    listed = ", ".join(f"bin_{i}" for i in edges)
    result = rows(
        ctx.query(
            f"SELECT {listed}, count(*) AS n FROM (SELECT {', '.join(bin_cols)} FROM {sql_name(table)}) v "
            f"GROUP BY GROUPING SETS ({sets})"
        )
    )
    found: dict[int, dict[int, int]] = defaultdict(dict)
    for r in result:
        # Each row is one column's bin (the other columns' bins are null); a null bin is that
        # column's missing or non-finite values, which no bin draws.
        for i in edges:
            if r[f"bin_{i}"] is not None:
                found[i][int(r[f"bin_{i}"])] = int(r["n"])
    return found, edges


def _quarantine(ctx: Context) -> Section:
    s = Section(
        "Quarantined rows and why",
        "quarantine",
        "Rows set aside by day they landed, coloured by reason, and (where the profile knows each file's rows) "
        "the share of that day's rows they were. Query them: SELECT _reason, count(*) FROM the quarantine "
        "table GROUP BY 1.",
    )
    table = ctx.sources.quarantine(ctx.dataset)
    if table is None:
        s.note(f"no quarantine table for {ctx.dataset}: no row was ever set aside, or it is not readable here")
        return s
    result = rows(
        ctx.query(
            f"SELECT CAST(ingested_at AS date) AS day, _reason_code AS reason, count(*) AS quarantined "
            f"FROM {sql_name(table)} GROUP BY 1, 2 ORDER BY 1, 2"
        )
    )
    if not result:
        s.parts.append(page.paragraph(f"No rows of {ctx.dataset} are in quarantine."))
        return s
    totals: dict[dt.date, int] = {}
    if ctx.sources.has(PROFILES):
        ds = sql_string(ctx.dataset)
        # A file's rows are on each of its columns' rows: one per file, then per day.
        per_day = rows(
            ctx.query(
                f"""SELECT ingest_date AS day, sum(file_rows) AS total_rows FROM
                (SELECT source_id, ingest_date, max(rows) AS file_rows FROM dataset_profiles WHERE dataset = {ds}
                 GROUP BY 1, 2) f GROUP BY 1"""
            )
        )
        totals = {r["day"]: int(r["total_rows"] or 0) for r in per_day}
    days = sorted({r["day"] for r in result})

    def draw(figure: Any) -> None:
        ax = figure.subplots()
        charts.stacked_by_reason(ax, result, "quarantined", "quarantine")
        ax.set_ylabel("rows quarantined")
        ax.set_xlabel("day the file landed")
        charts.date_axis(ax)
        charts.counts(ax)
        ax.legend(title="reason", fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))

    s.parts.append(
        page.figure(
            charts.svg(draw, slug="quarantine", height=3.0, label="quarantined rows per day by reason"),
            "Rows quarantined per day, by reason",
        )
    )
    if len(days) == 1:
        s.note(f"every quarantined row landed on one day ({days[0]}): no change over time to see yet")
    s.parts.append(
        page.table(
            ["day", "reason", "rows quarantined", "rows that day", "share"],
            [
                [
                    page.day(r["day"]),
                    r["reason"],
                    page.number(r["quarantined"]),
                    page.number(totals.get(r["day"])),
                    page.number(int(r["quarantined"]) / totals[r["day"]], 1, percent=True)
                    if totals.get(r["day"])
                    else "–",
                ]
                for r in sorted(result, key=lambda r: (r["day"], -int(r["quarantined"])), reverse=False)[-40:]
            ],
            numeric=(2, 3, 4),
            caption="Newest 40 day × reason rows",
        )
    )
    return s


#: Every dataset's sections: (title, anchor, drawer); a drawer that fails leaves a titled note.
DRAWERS: tuple[tuple[str, str, Callable[[Context], Section]], ...] = (
    ("Profile of the data", "profile", _profile),
    ("Quarantined rows and why", "quarantine", _quarantine),
)
