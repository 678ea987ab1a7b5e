"""The ``ops`` report, drawn from the processing ledger: files and rows per day, failures by reason,
time per MB by dataset, and the estimated Lambda cost per GB from the measured durations.

Every figure reads the ledger deduplicated on ``event_key``: an outcome redelivered to a later
invocation is logged again (see docs/operations.md), and is counted once."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from reports import charts, page
from reports.base import Context, Section, rows, sql_date, sql_name
from topology import pricing

#: Days drawn, ending at the newest log_date (or the as_of asked for).
WINDOW_DAYS = 90
#: ``unchanged``: a stale or already-processed version; it wrote nothing, so it is left out of the
#: speed and cost figures (its size is not work done) and drawn as its own series of files per day.
FILE_STATUSES = ("processed", "unchanged", "replaced", "removed", "failed")
RECENT_FAILURES = 12


def lambda_price(architecture: str | None, region: str | None) -> tuple[float, str]:
    """US$ per GB-second of the deployed architecture in the deployed region (``topology.pricing``),
    and a sentence naming what was priced; an architecture the stack did not report is priced as
    the stack's default, and the sentence says so."""
    priced = pricing.prices_for(region)
    if architecture is None:
        arch, said = pricing.DEFAULT_ARCHITECTURE, " (the target reports no architecture: the stack's default)"
    else:
        arch, said = architecture, ""
    price = priced.prices.lambda_gb_second(arch)
    return price, f"Lambda {arch}{said} price, ${price:.10f} per GB-second: {priced.source}"


def sections(ctx: Context) -> list[Section]:
    table = ctx.sources.ledger()
    if table is None:
        s = Section("Processing ledger", "ledger")
        s.note("no processing_log table is readable here: the ledger is written as files are processed")
        return [s]
    t = deduplicated(sql_name(table))
    newest = ctx.query(f"SELECT max(log_date) AS newest FROM {t}").column("newest")[0].as_py()
    if newest is None:
        s = Section("Processing ledger", "ledger")
        s.note("processing_log has no rows yet: nothing was processed")
        return [s]
    end = min(newest, ctx.as_of) if ctx.as_of else newest
    start = end - dt.timedelta(days=WINDOW_DAYS - 1)
    window = f"log_date BETWEEN {sql_date(start)} AND {sql_date(end)}"
    return [
        _files(ctx, t, window, start, end),
        _failures(ctx, t, window),
        _speed(ctx, t, window),
        _cost(ctx, t, window),
    ]


def deduplicated(table: str) -> str:
    """``table`` (a qualified SQL name) as a derived table holding the first row of each ``event_key``
    by ``logged_at``; rows without an ``event_key`` are all kept."""
    return (
        "(SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY event_key ORDER BY logged_at, request_id) "
        f"AS nth_of_event FROM {table}) WHERE event_key IS NULL OR nth_of_event = 1) AS ledger"
    )


def _files(ctx: Context, t: str, window: str, start: dt.date, end: dt.date) -> Section:
    s = Section(
        "Files and rows per day",
        "files",
        f"Files handled per day over the ledger's last {WINDOW_DAYS} days ({start} to {end}), by what "
        "happened to them (processed, unchanged: a stale or already-processed version that wrote nothing, "
        "replaced by a new version, removed with their raw object, failed), and the rows they brought: read, "
        "written to the tables, set aside in quarantine. An outcome logged twice (redelivered) counts once.",
    )
    result = rows(
        ctx.query(
            f"""
            SELECT log_date AS day, status, count(*) AS files, sum(coalesce(rows_in, 0)) AS rows_in,
                   sum(coalesce(rows_written, 0)) AS rows_written,
                   sum(coalesce(rows_quarantined, 0)) AS rows_quarantined
            FROM {t} WHERE kind = 'file' AND {window} GROUP BY 1, 2 ORDER BY 1, 2
            """
        )
    )
    refreshes = rows(
        ctx.query(
            f"SELECT status, count(*) AS refreshes FROM {t} WHERE kind = 'refresh' AND {window} GROUP BY 1 ORDER BY 1"
        )
    )
    if not result:
        s.note(f"no file in the ledger between {start} and {end}")
    else:
        days = sorted({r["day"] for r in result})
        files: dict[str, dict[dt.date, int]] = defaultdict(dict)
        totals: dict[dt.date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for r in result:
            files[str(r["status"])][r["day"]] = int(r["files"])
            for k in ("rows_in", "rows_written", "rows_quarantined"):
                totals[r["day"]][k] += int(r[k])
        statuses = [st for st in FILE_STATUSES if st in files] + sorted(set(files) - set(FILE_STATUSES))
        if len(days) == 1:
            s.note(f"everything in the ledger happened on one day ({days[0]}): no change over time to see yet")

        def draw(figure: Any) -> None:
            top, bottom_ax = figure.subplots(2, 1, sharex=True)
            bottom = [0] * len(days)
            for k, status in enumerate(statuses):
                heights = [files[status].get(d, 0) for d in days]
                colour = charts.ALERT if status == "failed" else charts.colour(k)
                charts.mark(top.bar(days, heights, 0.8, bottom=bottom, color=colour, label=status), f"files-{status}")
                bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
            top.set_ylabel("files")
            top.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
            for k, (key, label) in enumerate(
                (("rows_in", "read"), ("rows_written", "written"), ("rows_quarantined", "quarantined"))
            ):
                ys = [totals[d][key] for d in days]
                charts.mark(
                    bottom_ax.plot(days, ys, "o-", color=charts.colour(k), label=label, markersize=3)[0], f"rows-{key}"
                )
            bottom_ax.set_ylabel("rows")
            bottom_ax.set_xlabel("day (UTC)")
            charts.counts(top)
            charts.counts(bottom_ax)
            bottom_ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
            charts.date_axis(bottom_ax)

        s.parts.append(
            page.figure(
                charts.svg(draw, slug="ops-files", height=4.4, label="files and rows per day"),
                "Files per day by status (top) and their rows (bottom)",
            )
        )
        s.parts.append(
            page.table(
                ["day", *statuses, "rows read", "rows written", "rows quarantined"],
                [
                    [
                        page.day(d),
                        *[page.number(files[st].get(d, 0)) for st in statuses],
                        page.number(totals[d]["rows_in"]),
                        page.number(totals[d]["rows_written"]),
                        page.number(totals[d]["rows_quarantined"]),
                    ]
                    for d in days[-30:]
                ],
                numeric=tuple(range(1, len(statuses) + 4)),
                caption="Newest 30 days",
            )
        )
    if refreshes:
        s.parts.append(
            page.paragraph(
                "Refreshes in the window: "
                + ", ".join(f"{int(r['refreshes']):,} {r['status']}" for r in refreshes)
                + "."
            )
        )
    return s


def _failures(ctx: Context, t: str, window: str) -> Section:
    s = Section(
        "Failures by reason",
        "failures",
        "Files and refreshes that failed, per day and error type. The table lists the newest with their "
        "message, which says what to do.",
    )
    result = rows(
        ctx.query(
            f"""
            SELECT log_date AS day, coalesce(error_type, '(no type recorded)') AS reason, count(*) AS failures
            FROM {t} WHERE status = 'failed' AND {window} GROUP BY 1, 2 ORDER BY 1, 2
            """
        )
    )
    if not result:
        s.parts.append(page.paragraph("No failures in the window.", "verdict good"))
        return s

    def draw(figure: Any) -> None:
        ax = figure.subplots()
        charts.stacked_by_reason(ax, result, "failures", "failures")
        ax.set_ylabel("failures")
        charts.counts(ax)
        ax.set_xlabel("day (UTC)")
        charts.date_axis(ax)
        ax.legend(title="error type", fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))

    s.parts.append(
        page.figure(
            charts.svg(draw, slug="ops-failures", height=2.8, label="failures per day by error type"),
            "Failures per day, by error type",
        )
    )
    recent = rows(
        ctx.query(
            f"""
            SELECT logged_at, kind, dataset, key, error_type, error_message FROM {t}
            WHERE status = 'failed' AND {window} ORDER BY logged_at DESC LIMIT {RECENT_FAILURES}
            """
        )
    )
    s.parts.append(
        page.table(
            ["when (UTC)", "kind", "dataset", "key", "error type", "message"],
            [
                [page.day(r["logged_at"]), r["kind"], r["dataset"], r["key"], r["error_type"], r["error_message"]]
                for r in recent
            ],
            caption=f"Newest {len(recent)} failures",
        )
    )
    return s


def _speed(ctx: Context, t: str, window: str) -> Section:
    s = Section(
        "Time per MB by dataset",
        "speed",
        "Seconds of function time per MB of raw file, over the files processed in the window (total time / total "
        "MB, so large files weigh more). A fixed cost per file dominates small files: a dataset of many small "
        "files shows a high figure. Unchanged outcomes (stale versions, nothing written) are not counted.",
    )
    result = rows(
        ctx.query(
            f"""
            SELECT dataset, count(*) AS files, sum(CAST(bytes AS double)) / 1e6 AS mb,
                   sum(duration_ms) / 1000.0 AS seconds
            FROM {t}
            WHERE kind = 'file' AND status IN ('processed', 'replaced') AND bytes > 0 AND duration_ms IS NOT NULL
              AND {window}
            GROUP BY 1 ORDER BY 1
            """
        )
    )
    if not result:
        s.note("no processed file in the window has both its size and its duration recorded")
        return s
    names = [str(r["dataset"]) for r in result]
    per_mb = [float(r["seconds"]) / float(r["mb"]) if r["mb"] else 0.0 for r in result]

    def draw(figure: Any) -> None:
        ax = figure.subplots()
        charts.mark(ax.barh(range(len(names)), per_mb, 0.6, color=charts.OKABE_ITO[0]), "speed")
        ax.set_yticks(range(len(names)), [charts.short(n, 24) for n in names])
        ax.invert_yaxis()
        ax.set_xlabel("seconds per MB of raw file")

    s.parts.append(
        page.figure(
            charts.svg(
                draw, slug="ops-speed", height=0.8 + 0.35 * max(len(names), 2), label="seconds per MB by dataset"
            ),
            "Function seconds per MB of raw file, by dataset",
        )
    )
    s.parts.append(
        page.table(
            ["dataset", "files", "MB", "seconds", "seconds per MB"],
            [
                [
                    r["dataset"],
                    page.number(r["files"]),
                    page.number(r["mb"], 2),
                    page.number(r["seconds"], 1),
                    page.number(v, 3),
                ]
                for r, v in zip(result, per_mb, strict=True)
            ],
            numeric=(1, 2, 3, 4),
        )
    )
    return s


_COSTED = "NOT (kind = 'file' AND status = 'unchanged')"


def _cost(ctx: Context, t: str, window: str) -> Section:
    s = Section(
        "Estimated cost per GB",
        "cost",
        "Lambda compute per GB of raw files, from what the ledger measured: GB-seconds = memory (MB) / 1024 × "
        "billed duration (or, where none is recorded, the measured duration) / 1000, times the GB-second price. "
        "Requests, S3, Glue and the rest of the stack are not in it (docs/deploy.md prices those). Unchanged "
        "outcomes (stale versions, nothing written) are left out: their size is not work done.",
    )
    price, source = lambda_price(ctx.architecture, ctx.region)
    result = rows(
        ctx.query(
            f"""
            SELECT dataset, kind, count(*) AS entries, sum(CAST(bytes AS double)) / 1e9 AS gb,
                   sum(CAST(memory_mb AS double) / 1024 * coalesce(CAST(billed_duration_ms AS double), duration_ms)
                       / 1000) AS gb_seconds,
                   sum(CASE WHEN billed_duration_ms IS NULL THEN 1 ELSE 0 END) AS unbilled
            FROM {t}
            WHERE memory_mb IS NOT NULL AND (billed_duration_ms IS NOT NULL OR duration_ms IS NOT NULL)
              AND {_COSTED} AND {window}
            GROUP BY 1, 2 ORDER BY 1, 2
            """
        )
    )
    unmeasured = (
        ctx.query(f"SELECT count(*) AS n FROM {t} WHERE memory_mb IS NULL AND {_COSTED} AND {window}")
        .column("n")[0]
        .as_py()
    )
    if unmeasured:
        s.note(
            f"{unmeasured:,} ledger rows have no function memory recorded (runs on this machine, outside Lambda): "
            "their GB-seconds, and so their cost, are unknown and left out"
        )
    s.parts.append(page.paragraph(f"Priced at the {source}."))
    if not result:
        s.note("no ledger row in the window has the function's memory and a duration: nothing to estimate from")
        return s
    if any(int(r["unbilled"] or 0) for r in result):
        s.note("some rows have no billed duration: their measured duration stands in for it")
    files = [r for r in result if r["kind"] == "file" and r["gb"]]
    if files:
        names = [str(r["dataset"]) for r in files]
        per_gb = [float(r["gb_seconds"] or 0.0) * price / float(r["gb"]) for r in files]

        def draw(figure: Any) -> None:
            ax = figure.subplots()
            charts.mark(ax.barh(range(len(names)), per_gb, 0.6, color=charts.OKABE_ITO[2]), "cost")
            ax.set_yticks(range(len(names)), [charts.short(n, 24) for n in names])
            ax.invert_yaxis()
            ax.set_xlabel("US$ of Lambda compute per GB of raw files")

        s.parts.append(
            page.figure(
                charts.svg(
                    draw, slug="ops-cost", height=0.8 + 0.35 * max(len(names), 2), label="cost per GB by dataset"
                ),
                "Estimated Lambda compute cost per GB of raw files, by dataset",
            )
        )
    else:
        s.note("no file with a size has its memory and duration recorded: the cost per GB needs both")
    s.parts.append(
        page.table(
            ["dataset", "kind", "entries", "GB", "GB-seconds", "cost (US$)", "US$ per GB"],
            [
                [
                    r["dataset"],
                    r["kind"],
                    page.number(r["entries"]),
                    page.number(r["gb"], 4),
                    page.number(r["gb_seconds"], 1),
                    page.number(float(r["gb_seconds"] or 0) * price, 4),
                    "unknown" if not r["gb"] else page.number(float(r["gb_seconds"] or 0) * price / r["gb"], 4),
                ]
                for r in result
            ],
            numeric=(2, 3, 4, 5, 6),
        )
    )
    return s
