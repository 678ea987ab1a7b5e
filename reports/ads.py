"""The ``ad_performance`` report: KPI series per campaign with anomalies marked, and the top anomalies."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from analytics.base import covering_rows_sql
from reports import charts, page
from reports.base import Context, Section, as_of_dates, choose_as_of, rows, sql_date, sql_string

KPIS = "campaign_kpis_history"
ANOMALIES = "kpi_anomalies_history"
#: Campaigns drawn (most anomalies first, then most spend); the page stays small with any number.
MAX_CAMPAIGNS = 6
#: Days of each series drawn, ending at as_of.
WINDOW_DAYS = 120
TOP_ANOMALIES = 15
#: Campaigns listed in the overview table (all are counted).
MAX_LISTED = 50
#: The panels: column, axis label, scale.
PANELS = (
    ("spend", "spend / day\n(export currency)", 1.0),
    ("ctr", "CTR (%)", 100.0),
    ("cpa", "CPA\n(per conversion)", 1.0),
    ("roas", "ROAS\n(revenue / spend)", 1.0),
)


_ANOMALY_COLUMNS = ("channel", "campaign", "date", "metric", "value", "expected", "robust_z", "baseline", "reason")
_KPI_COLUMNS = ("channel", "campaign", "date", "spend", "ctr", "cpa", "roas")


def _as_of(table: str, columns: tuple[str, ...], as_of: dt.date) -> str:
    """The table's rows as of ``as_of``: each day from the newest snapshot up to it that scored the day
    (a daily refresh writes only the days it scored)."""
    return f"({covering_rows_sql(table, KPIS, columns, as_of=as_of)})"


def sections(ctx: Context) -> tuple[list[Section], dt.date | None]:
    if not ctx.sources.has(KPIS):
        s = Section("Campaign KPIs", "campaigns")
        s.note(f"no {KPIS} table yet: daily KPIs over history are written by the ad_performance refresh")
        return [s], None
    available = as_of_dates(ctx.query, KPIS)
    as_of = choose_as_of(ctx.dataset, KPIS, available, ctx.as_of)
    if as_of is None:
        s = Section("Campaign KPIs", "campaigns")
        s.note(f"{KPIS} has no rows yet")
        return [s], None
    d = sql_date(as_of)
    anomalies_as_of = _as_of(ANOMALIES, _ANOMALY_COLUMNS, as_of)
    has_anomalies = ctx.sources.has(ANOMALIES)
    top = (
        rows(
            ctx.query(
                f"""
                SELECT channel, campaign, date, metric, value, expected, robust_z, baseline, reason
                FROM {anomalies_as_of} x
                ORDER BY CASE WHEN robust_z IS NULL THEN 1 ELSE 0 END DESC, abs(robust_z) DESC, date DESC,
                         channel, campaign, metric
                LIMIT {TOP_ANOMALIES}
                """
            )
        )
        if has_anomalies
        else []
    )
    anomaly_counts = (
        f"""LEFT JOIN (SELECT channel, campaign, count(*) AS anomalies FROM {anomalies_as_of} x
                      GROUP BY 1, 2) a ON a.channel = k.channel AND a.campaign = k.campaign"""
        if has_anomalies
        else ""
    )
    campaigns = rows(
        ctx.query(
            f"""
            SELECT k.channel, k.campaign, sum(k.spend) AS spend, count(*) AS days, min(k.date) AS first_day,
                   max(k.date) AS last_day, {"max(coalesce(a.anomalies, 0))" if has_anomalies else "0"} AS anomalies,
                   count(*) OVER () AS campaigns
            FROM {_as_of(KPIS, _KPI_COLUMNS, as_of)} k {anomaly_counts}
            GROUP BY 1, 2
            ORDER BY 7 DESC, 3 DESC, 1, 2
            LIMIT {MAX_LISTED}
            """
        )
    )
    total = int(campaigns[0]["campaigns"]) if campaigns else 0
    overview = Section(
        "Campaigns and their anomalies",
        "campaigns",
        "Every campaign-day whose KPI is far from the campaign's own earlier days (the trailing 28 days, or the "
        "same weekday of the last 8 weeks) is an anomaly; the table lists the strongest. The charts below draw "
        f"the campaigns with the most anomalies (up to {MAX_CAMPAIGNS}), each anomaly a vermillion point with "
        "its number (hover for the reason).",
    )
    if not has_anomalies:
        overview.note(f"no {ANOMALIES} table: anomalies cannot be marked")
    elif not top:
        overview.parts.append(page.paragraph(f"No anomalies as of {as_of}."))
    else:
        overview.parts.append(
            page.table(
                ["#", "day", "channel", "campaign", "metric", "value", "expected", "robust z", "reason"],
                [
                    [
                        i + 1,
                        page.day(a["date"]),
                        a["channel"],
                        a["campaign"],
                        a["metric"],
                        page.number(a["value"], 4 if a["metric"] in ("ctr", "cvr") else 2),
                        page.number(a["expected"], 4 if a["metric"] in ("ctr", "cvr") else 2),
                        "no spread" if a["robust_z"] is None else page.number(a["robust_z"], 1),
                        a["reason"],
                    ]
                    for i, a in enumerate(top)
                ],
                numeric=(0, 5, 6, 7),
                caption=f"Top anomalies as of {as_of} (strongest first)",
            )
        )
    overview.parts.append(
        page.table(
            ["channel", "campaign", "days", "first day", "last day", "spend", "anomalies"],
            [
                [
                    c["channel"],
                    c["campaign"],
                    page.number(c["days"]),
                    page.day(c["first_day"]),
                    page.day(c["last_day"]),
                    page.number(c["spend"], 2),
                    page.number(c["anomalies"]),
                ]
                for c in campaigns
            ],
            numeric=(2, 5, 6),
            caption=f"{total:,} campaigns as of {as_of}"
            + (f", the {len(campaigns)} with most anomalies, then spend, listed" if total > len(campaigns) else ""),
        )
    )
    out = [overview]
    drawn = campaigns[:MAX_CAMPAIGNS]
    if total > MAX_CAMPAIGNS:
        overview.note(
            f"{total - MAX_CAMPAIGNS:,} campaigns are not drawn (a page draws {MAX_CAMPAIGNS}); their "
            "figures are in campaign_kpis_history"
        )
    if not drawn:
        return out, as_of
    keys = " OR ".join(
        f"(channel = {sql_string(str(c['channel']))} AND campaign = {sql_string(str(c['campaign']))})" for c in drawn
    )
    window = f"date > {d} - INTERVAL '{WINDOW_DAYS}' DAY"
    series = rows(
        ctx.query(
            f"SELECT channel, campaign, date, spend, ctr, cpa, roas FROM {_as_of(KPIS, _KPI_COLUMNS, as_of)} x "
            f"WHERE {window} AND ({keys}) ORDER BY channel, campaign, date"
        )
    )
    marks = (
        rows(
            ctx.query(
                f"SELECT channel, campaign, date, metric, value, reason FROM {anomalies_as_of} x "
                f"WHERE {window} AND ({keys}) ORDER BY channel, campaign, date, metric"
            )
        )
        if has_anomalies
        else []
    )
    by_campaign: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in series:
        by_campaign[(str(r["channel"]), str(r["campaign"]))].append(r)
    anomalies: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in marks:
        anomalies[(str(r["channel"]), str(r["campaign"]))].append(r)
    for n, c in enumerate(drawn):
        key = (str(c["channel"]), str(c["campaign"]))
        out.append(_campaign(n, key, by_campaign.get(key, []), anomalies.get(key, []), int(c["days"]), as_of))
    return out, as_of


def _campaign(
    n: int,
    key: tuple[str, str],
    days: list[dict[str, Any]],
    anomalies: list[dict[str, Any]],
    total_days: int,
    as_of: dt.date,
) -> Section:
    channel, campaign = key
    s = Section(f"{campaign} ({channel})", f"campaign-{n}")
    if total_days > len(days):
        s.note(f"the last {WINDOW_DAYS} days up to {as_of} are drawn; the campaign has {total_days} days in all")
    if len(days) < 2:
        s.note(
            f"{campaign} has {len(days)} day of data: no series to draw a line through, and no earlier days to "
            "flag anomalies against"
        )
    slug = f"camp{n}"
    drawn_metrics = {p[0] for p in PANELS}
    numbered = [a for a in anomalies if a["metric"] in drawn_metrics]
    other = [a for a in anomalies if a["metric"] not in drawn_metrics]
    titles = {f"marks-{slug}-anomaly-{i}": f"{a['date']} {a['reason']}" for i, a in enumerate(numbered)}

    def draw(figure: Any) -> None:
        axes = figure.subplots(len(PANELS), 1, sharex=True)
        xs = [r["date"] for r in days]
        for k, (ax, (metric, label, scale)) in enumerate(zip(axes, PANELS, strict=True)):
            ys = [None if r[metric] is None else r[metric] * scale for r in days]
            values = [float("nan") if y is None else y for y in ys]
            line = ax.plot(xs, values, "-", color=charts.colour(k), linewidth=1.3, marker="o" if len(xs) < 3 else None)
            charts.mark(line[0], f"{slug}-{metric}")
            ax.set_ylabel(label, fontsize=8)
            for i, a in enumerate(numbered):
                if a["metric"] != metric or a["value"] is None:
                    continue
                point = ax.plot(
                    [a["date"]],
                    [a["value"] * scale],
                    "o",
                    color=charts.ALERT,
                    markersize=6,
                    markeredgecolor="black",
                    markeredgewidth=0.5,
                )
                charts.mark(point[0], f"{slug}-anomaly-{i}")
                ax.annotate(
                    str(i + 1),
                    (a["date"], a["value"] * scale),
                    textcoords="offset points",
                    xytext=(4, 4),
                    fontsize=8,
                    color=charts.ALERT,
                    fontweight="bold",
                )
        charts.date_axis(axes[-1])
        axes[-1].set_xlabel("day")

    s.parts.append(
        page.figure(
            charts.svg(draw, slug=slug, height=5.4, label=f"KPIs of {campaign}", titles=titles),
            f"Daily spend, CTR, CPA and ROAS of {campaign} ({channel}); vermillion points are anomalies",
        )
    )
    if numbered or other:
        s.parts.append(
            page.table(
                ["#", "day", "metric", "reason"],
                [[i + 1, page.day(a["date"]), a["metric"], a["reason"]] for i, a in enumerate(numbered)]
                + [
                    ["", page.day(a["date"]), a["metric"], f"{a['reason']} (not drawn: no {a['metric']} panel)"]
                    for a in other
                ],
                numeric=(0,),
            )
        )
    return s
