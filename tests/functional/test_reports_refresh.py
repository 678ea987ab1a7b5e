"""Each refresh draws its dataset's report from the tables it left and links it from its event.

The refresh function runs in process against the stand-in; the report is read back from S3 as a
user's browser or ``lake report`` would get it. What the report's figures are is checked against
pandas in tests/unit/test_reports.py; here: that the right report is stored where the event says,
one per as_of, and that it draws the refreshed tables (its customer counts are theirs).
"""

from __future__ import annotations

import collections
import re

import topology
from tests.conftest import Lake
from tests.functional.conftest import Invoke, InvokeRefresh, read_rows
from tests.functional.test_refresh import land, models_events, monthly_orders, orders_csv, refresh_all


def stored(lake: Lake, uri: str) -> tuple[str, dict[str, str], str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    got = lake.s3.get_object(Bucket=bucket, Key=key)
    return got["Body"].read().decode(), got["Metadata"], got["ContentType"]


def test_each_refresh_stores_a_report_per_as_of_and_links_it_from_its_event(
    lake: Lake, invoke: Invoke, invoke_refresh: InvokeRefresh
) -> None:
    # GIVEN two monthly orders exports, each refreshed after it lands
    reports = []
    for number, rows in enumerate(monthly_orders(months=2), start=1):
        land(lake, invoke, f"raw/orders/2026-0{number}.csv", orders_csv(rows))
        refresh_all(lake, invoke_refresh)
        [event] = models_events(lake, 1)
        assert event["detail-type"] == topology.DETAIL_TYPE_MODELS_UPDATED
        reports.append(event["detail"]["report"])
        reports_facts = event["detail"]["models"]
    # THEN each event links the report of its own as_of, and latest.html is the second one
    first, second = reports
    as_ofs = sorted({str(r["as_of"]) for r in read_rows(lake, "lake_curated", "customer_rfm").to_pylist()})
    assert [first["as_of"], second["as_of"]] == as_ofs, first["notes"]
    assert first["uri"] == f"s3://{lake.bucket}/reports/orders/{as_ofs[0]}.html"
    assert second["latest"] == f"s3://{lake.bucket}/reports/orders/latest.html"
    page, metadata, content_type = stored(lake, second["uri"])
    assert stored(lake, second["latest"])[0] == page
    assert stored(lake, first["uri"])[0] != page
    assert metadata == {"as-of": as_ofs[1]}
    assert content_type == "text/html; charset=utf-8"
    # AND the page is self-contained (no script, nothing fetched) and draws the refreshed segments
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)=["']https?:""", page)
    # counted here from customer_rfm (one row per customer), not from the segment table it draws
    segments = collections.Counter(
        r["segment_name"]
        for r in read_rows(lake, "lake_curated", "customer_rfm").to_pylist()
        if str(r["as_of"]) == as_ofs[1]
    )
    rows = re.findall(r"<tr>(.*?)</tr>", page, re.DOTALL)
    for name, count in segments.items():
        assert [r for r in rows if f">{name}<" in r and f">{count:,}<" in r], (name, count)
    assert as_ofs[1] in page and as_ofs[0] in page  # the change since the previous as_of
    # AND the page profiles the orders as the pipeline wrote them to dataset_profiles (every column of
    # the orders table, with each file's rows), never "no dataset_profiles table"
    assert not any("dataset_profiles" in note for note in second["notes"]), second["notes"]
    # with histograms of the orders view's values (each order once)
    assert not any("not among the tables" in note for note in second["notes"]), second["notes"]
    assert "marks-hist-0-0" in page and "numeric column of orders (" in page
    profiles = [r for r in read_rows(lake, "lake_curated", "dataset_profiles").to_pylist() if r["dataset"] == "orders"]
    assert sorted({r["source_key"] for r in profiles}) == ["raw/orders/2026-01.csv", "raw/orders/2026-02.csv"]
    per_file = {(r["source_key"], r["column"]): r["rows"] for r in profiles}
    for column in ("order_id", "customer_id", "order_date", "amount"):
        total = sum(n for (_, c), n in per_file.items() if c == column)
        assert [r for r in rows if f">{column}<" in r and f">{total:,}<" in r], column
    # AND the customer-value models' fitted parameters, which no table keeps, are in the page
    facts = {m["name"]: m["metrics"] for m in reports_facts}
    for name, title in (("clv_bg_nbd", "BG/NBD"), ("clv_gamma_gamma", "Gamma-Gamma")):
        fact = facts[name]
        assert [r for r in rows if f">{title}<" in r and str(fact["status"]).replace("_", " ") in r], name
        shown = [k for k in ("r", "alpha", "a", "b", "p", "q", "gamma") if isinstance(fact.get(k), int | float)]
        assert shown, fact
        for k in shown:
            assert f"{ {'alpha': 'α', 'gamma': 'γ'}.get(k, k) } = {fact[k]:.4g}" in page, k


def test_the_report_draws_the_quarantine_through_the_refresh_engine(
    lake: Lake, invoke: Invoke, invoke_refresh: InvokeRefresh
) -> None:
    # GIVEN an orders file with two rows the contract refuses (an unreadable date, a non-numeric amount)
    [rows] = monthly_orders(months=1)
    body = orders_csv(rows) + b"bad-1,c001,not-a-date,10.00\nbad-2,c002,2026-01-05,ten\n"
    event = land(lake, invoke, "raw/orders/2026-01.csv", body)
    quarantined = event["detail"]["quarantine"]
    assert quarantined["rows"] == 2, quarantined
    # WHEN the refresh draws the report
    refresh_all(lake, invoke_refresh)
    [models] = models_events(lake, 1)
    page, _, _ = stored(lake, models["detail"]["report"]["uri"])
    # THEN the quarantine section reads the quarantine table (another database) and names each reason
    reasons = {r["_reason_code"] for r in read_rows(lake, "lake_quarantine", "orders").to_pylist()}
    assert len(reasons) >= 1
    for reason in reasons:
        assert reason in page, reason
    notes = models["detail"]["report"]["notes"]
    assert not [n for n in notes if "could not be drawn" in n or "no quarantine table" in n], notes
