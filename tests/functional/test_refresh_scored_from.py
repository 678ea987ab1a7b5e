"""A daily ad refresh scores only the days that changed; the current views still answer over every day.

The independent reference is :func:`analytics.kpi_history.kpi_history` over the whole history, as a
full refresh computes it.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pyarrow as pa
import pytest

from analytics.kpi_history import kpi_history
from lake.engine import run_query
from lake.target import resolve
from tests.conftest import Lake
from tests.functional.conftest import Invoke, InvokeRefresh, read_rows
from tests.functional.test_refresh import AD_HEADER, land, models_events, refresh_all

START = dt.date(2026, 1, 5)  # a Monday
CAMPAIGNS = (("google", "brand", 100.0), ("meta", "promo", 60.0))


def day_rows(day: dt.date, spends: dict[str, float]) -> list[dict[str, Any]]:
    """Each campaign's day in two ad groups, as a file has them."""
    rows = []
    for channel, campaign, _ in CAMPAIGNS:
        for group in ("g1", "g2"):
            half = spends[campaign] / 2
            impressions = round(half * 100)
            clicks = round(impressions * 0.03)
            rows.append(
                {"date": day, "channel": channel, "campaign": campaign, "ad_group": group, "impressions": impressions,
                 "clicks": clicks, "spend": round(half, 2), "conversions": clicks // 10, "revenue": round(half * 5, 2)}
            )  # fmt: skip
    return rows


def csv(rows: list[dict[str, Any]]) -> bytes:
    columns = AD_HEADER.split(",")
    lines = [",".join(str(r[c].isoformat() if c == "date" else r[c]) for c in columns) for r in rows]
    return ("\n".join([AD_HEADER, *lines]) + "\n").encode()


def history(days: int, seed: int = 11) -> dict[dt.date, list[dict[str, Any]]]:
    rng = random.Random(seed)
    return {
        START + dt.timedelta(d): day_rows(
            START + dt.timedelta(d), {c: base * (1 + rng.gauss(0, 0.04)) for _, c, base in CAMPAIGNS}
        )
        for d in range(days)
    }


def reference(by_day: dict[dt.date, list[dict[str, Any]]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A full recompute: kpi_history over every day's rows (ad groups summed), without as_of."""
    sums: dict[tuple[Any, ...], dict[str, float]] = {}
    for rows in by_day.values():
        for r in rows:
            s = sums.setdefault((r["date"], r["channel"], r["campaign"]), dict.fromkeys(SUMMED, 0.0))
            for c in SUMMED:
                s[c] += r[c]
    daily = pa.Table.from_pylist([{"date": d, "channel": ch, "campaign": ca, **s} for (d, ch, ca), s in sums.items()])
    full = kpi_history(daily)
    return strip(full.kpis.to_pylist()), strip(full.anomalies.to_pylist())


SUMMED = ("impressions", "clicks", "spend", "conversions", "revenue")


def strip(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(
        ({k: v for k, v in r.items() if k != "as_of"} for r in rows), key=lambda r: sorted(r.items()).__str__()
    )


def assert_same(shown: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert len(shown) == len(expected)
    key = ("channel", "campaign", "date", "metric")
    by_key = {tuple(r.get(k) for k in key): r for r in expected}
    for row in shown:
        want = by_key[tuple(row.get(k) for k in key)]
        for column, value in want.items():
            if isinstance(value, float):
                assert row[column] == pytest.approx(value, rel=1e-9, abs=1e-9), column
            elif column != "reason":  # its figures are rounded from the values compared above
                assert row[column] == value, column


def kpi_fact(event: dict[str, Any]) -> dict[str, Any]:
    [fact] = [m for m in event["detail"]["models"] if m["name"] == "kpi_anomalies_history"]
    return dict(fact["metrics"])


def current_views(lake: Lake) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    target = resolve(endpoint_url=lake.endpoints.endpoint_url)
    return (
        strip(run_query(target, "SELECT * FROM campaign_kpis").to_pylist()),
        strip(run_query(target, "SELECT * FROM kpi_anomalies").to_pylist()),
    )


def test_a_daily_refresh_scores_only_the_new_day_and_a_re_export_rescores_from_its_day(
    lake: Lake, invoke: Invoke, invoke_refresh: InvokeRefresh
) -> None:
    # GIVEN 69 days of two campaigns in one export, refreshed in full
    days = history(70)
    first = dict(list(days.items())[:69])
    land(lake, invoke, "raw/ad_performance/history.csv", csv([r for rows in first.values() for r in rows]))
    refresh_all(lake, invoke_refresh)
    [full] = models_events(lake, 1)
    assert full["detail"]["status"] == "succeeded", full["detail"].get("error")
    assert kpi_fact(full)["scored_from"] is None and kpi_fact(full)["campaign_days"] == 69 * 2

    # WHEN the next day's export lands, with a spend spike, and the refresh runs
    last = START + dt.timedelta(69)
    days[last] = day_rows(last, {"brand": 400.0, "promo": 60.0})
    land(lake, invoke, "raw/ad_performance/day-70.csv", csv(days[last]))
    refresh_all(lake, invoke_refresh)
    [daily] = models_events(lake, 1)
    assert daily["detail"]["status"] == "succeeded", daily["detail"].get("error")
    # THEN it scored and wrote that day only
    fact = kpi_fact(daily)
    assert fact["scored_from"] == last.isoformat() and fact["campaign_days"] == 2
    outputs = {o["table"]: o for o in daily["detail"]["outputs"]}
    assert outputs["campaign_kpis_history"]["rows"] == 2
    # AND the history table grows by the new day, not by another copy of every day
    assert read_rows(lake, "lake_curated", "campaign_kpis_history").num_rows == 70 * 2
    # AND the current views show every day, with the figures a full recompute gives (the spike among them)
    kpis, anomalies = current_views(lake)
    want_kpis, want_anomalies = reference(days)
    assert_same(kpis, want_kpis)
    assert_same(anomalies, want_anomalies)
    assert {"date": last, "metric": "spend", "campaign": "brand"} in [
        {k: a[k] for k in ("date", "metric", "campaign")} for a in anomalies
    ]

    # WHEN a late re-export changes an old day (day 41's promo spend quadrupled) and the refresh runs
    old = START + dt.timedelta(40)
    brand = sum(r["spend"] for r in days[old] if r["campaign"] == "brand")
    days[old] = day_rows(old, {"brand": brand, "promo": 240.0})
    land(lake, invoke, "raw/ad_performance/day-41-fixed.csv", csv(days[old]))
    refresh_all(lake, invoke_refresh)
    [rescored] = models_events(lake, 1)
    assert rescored["detail"]["status"] == "succeeded", rescored["detail"].get("error")
    # THEN it scored from that day (the snapshot of the same as_of now starts there)
    fact = kpi_fact(rescored)
    assert fact["scored_from"] == old.isoformat() and fact["campaign_days"] == (70 - 40) * 2
    # AND the current views again match a full recompute of the corrected history: the changed day is an
    # anomaly now, and the days after it were scored against it
    kpis, anomalies = current_views(lake)
    want_kpis, want_anomalies = reference(days)
    assert_same(kpis, want_kpis)
    assert_same(anomalies, want_anomalies)
    assert {"date": old, "metric": "spend", "campaign": "promo"} in [
        {k: a[k] for k in ("date", "metric", "campaign")} for a in anomalies
    ]
    assert read_rows(lake, "lake_curated", "campaign_kpis_history").num_rows == 69 * 2 + 30 * 2
