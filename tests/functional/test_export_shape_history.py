"""Decisions that need history: a file whose dates are all ambiguous follows the day/month order an
earlier file of the same export shape (dataset + header + delimiter) proved."""

from __future__ import annotations

import datetime as dt
from typing import Any

from analytics.base import DateDecision
from handlers.adapters.export_shapes import ExportShapes, export_shape
from lake.standin.server import client
from tests.conftest import Lake
from tests.functional.conftest import Invoke, curated_rows, next_messages

META = "Day,Campaign name,Platform,Impressions,Link clicks,Amount spent,Results,Conversion value\n"
GOOGLE = "Date,Campaign,Network,Impr.,Clicks,Cost,Conversions,Revenue\n"


def ad_export(header: str, days: list[str]) -> bytes:
    return (header + "".join(f"{d},spring,meta,100,10,5.00,1,20.00\n" for d in days)).encode()


def process(lake: Lake, invoke: Invoke, key: str, body: bytes) -> dict[str, Any]:
    """Upload ``key``, run the handler on its message; the ``cleaning`` fact of its event."""
    lake.put(key, body)
    assert invoke(next_messages(lake)) == {"batchItemFailures": []}
    [event] = lake.events(1)
    assert event["detail-type"] == "Dataset Processed", event["detail"].get("error")
    facts = {m["name"]: m["metrics"] for m in event["detail"]["models"]}
    cleaning: dict[str, Any] = facts["cleaning"]
    return cleaning


def dates_of(lake: Lake, table: str, key: str, column: str) -> list[str]:
    return sorted(str(r[column]) for r in curated_rows(lake, table) if r["source_key"] == key)


def test_a_daily_export_with_only_ambiguous_dates_follows_the_order_an_earlier_file_proved(
    lake: Lake, invoke: Invoke
) -> None:
    # GIVEN last week's file of a Meta export proved day-first (13 and 14 cannot be months)
    first = "raw/ad_performance/2026-11-02.csv"
    proof = process(lake, invoke, first, ad_export(META, ["13/10/2026", "14/10/2026", "02/10/2026"]))
    assert proof["date_order"] == "DMY"
    assert proof["date_order_basis"] == "2 value(s) with a first part above 12"
    # WHEN today's file of the same export has only ambiguous dates
    second = "raw/ad_performance/2026-11-03.csv"
    cleaning = process(lake, invoke, second, ad_export(META, ["02/11/2026", "03/11/2026"]))
    # THEN its rows land day-first (November, not February and March), and the fact names the proof
    assert dates_of(lake, "ad_performance", second, "date") == ["2026-11-02", "2026-11-03"]
    assert cleaning["date_order"] == "DMY"
    assert cleaning["date_order_basis"] == f"history: {first} proved DMY (2 value(s) with a first part above 12)"
    # AND a file of another export shape (another header) does not borrow it: the US default holds
    other = "raw/ad_performance/google-2026-11-03.csv"
    google = process(lake, invoke, other, ad_export(GOOGLE, ["02/11/2026", "03/11/2026"]))
    assert dates_of(lake, "ad_performance", other, "date") == ["2026-02-11", "2026-03-11"]
    assert google["date_order_basis"] == "no value above 12; slash dates default to month-first (US)"
    # AND neither does the same header with another delimiter
    semicolons = "raw/ad_performance/2026-11-04.csv"
    body = ad_export(META, ["02/11/2026", "04/11/2026"]).decode().replace(",", ";").encode()
    assert process(lake, invoke, semicolons, body)["date_order"] == "MDY"


def test_a_newer_file_that_proves_the_other_order_wins_and_says_it_disagreed(lake: Lake, invoke: Invoke) -> None:
    header = "Customer ID,Order Date,Total,Order ID\n"

    def orders(days: list[str], start: int) -> bytes:
        return (header + "".join(f"c{i},{d},10.00,o{start + i}\n" for i, d in enumerate(days))).encode()

    # GIVEN an orders export whose first file proved day-first
    process(lake, invoke, "raw/orders/2026-01.csv", orders(["13/01/2026", "05/01/2026"], 0))
    # WHEN a later file of the same export proves month-first
    newer = "raw/orders/2026-02.csv"
    disagreeing = process(lake, invoke, newer, orders(["02/13/2026", "02/05/2026"], 10))
    # THEN it follows its own proof and says it disagreed with history
    assert dates_of(lake, "orders", newer, "order_date") == ["2026-02-05", "2026-02-13"]
    assert disagreeing["date_order"] == "MDY"
    basis = disagreeing["date_order_basis"]
    assert basis.startswith("1 value(s) with a second part above 12; disagrees with history: ")
    assert "raw/orders/2026-01.csv proved DMY" in basis
    # AND the next ambiguous file follows the newest proof
    ambiguous = "raw/orders/2026-03.csv"
    cleaning = process(lake, invoke, ambiguous, orders(["03/04/2026"], 20))
    assert dates_of(lake, "orders", ambiguous, "order_date") == ["2026-03-04"]
    assert cleaning["date_order_basis"] == f"history: {newer} proved MDY (1 value(s) with a second part above 12)"


def test_an_ambiguous_file_refused_as_a_whole_teaches_nothing(lake: Lake, invoke: Invoke) -> None:
    # GIVEN a file that proves day-first but is refused (every amount is bad), so nothing is committed
    header = "Customer ID,Order Date,Total\n"
    lake.put("raw/orders/bad.csv", (header + "c1,13/01/2026,lots\nc2,14/01/2026,many\n").encode())
    invoke(next_messages(lake))
    [refused] = lake.events(1)
    assert refused["detail-type"] == "Dataset Processing Failed"
    # WHEN a file of the same shape with only ambiguous dates arrives
    cleaning = process(lake, invoke, "raw/orders/good.csv", (header + "c1,03/04/2026,10.00\n").encode())
    # THEN it was not taught by the refused file
    assert cleaning["date_order"] == "MDY"
    assert cleaning["date_order_basis"].startswith("no value above 12")


def test_a_shape_record_that_cannot_be_read_or_written_never_fails_the_file(lake: Lake) -> None:
    # GIVEN the records' table is missing (as a real DynamoDB error from the server, not a fake)
    shapes = ExportShapes(client("dynamodb", lake.endpoints.endpoint_url), "no-such-table")
    shape = export_shape("ad_performance", ["Day", "Spend"], ",")
    # WHEN history is read, THEN it says why it is missing instead of raising
    history = shapes.date_history("ad_performance", shape)
    assert history.order is None
    assert history.unavailable is not None and "could not be read" in history.unavailable
    assert "ResourceNotFoundException" in history.unavailable
    # AND recording a proof reports that nothing was recorded
    decision = DateDecision("DMY", "1 value(s) with a first part above 12", "proof", "1 value(s)")
    assert not shapes.record_date_proof(
        "ad_performance", shape, columns=["Day", "Spend"], delimiter=",", decision=decision,
        key="raw/ad_performance/x.csv", version="v1", landed_at=dt.datetime.now(dt.UTC),
    )  # fmt: skip


def test_an_older_file_processed_late_does_not_overwrite_a_newer_proof(lake: Lake) -> None:
    table = lake.endpoints.topology.idempotency_table
    shapes = ExportShapes(client("dynamodb", lake.endpoints.endpoint_url), table)
    shape = export_shape("orders", ["Order Date"], ",")
    now = dt.datetime.now(dt.UTC)
    mdy = DateDecision("MDY", "", "proof", "1 value(s) with a second part above 12")
    dmy = DateDecision("DMY", "", "proof", "1 value(s) with a first part above 12")

    def record(decision: DateDecision, key: str, landed_at: dt.datetime) -> bool:
        return shapes.record_date_proof(
            "orders", shape, columns=["Order Date"], delimiter=",", decision=decision, key=key, version="v",
            landed_at=landed_at,
        )  # fmt: skip

    assert record(mdy, "raw/orders/new.csv", now)
    assert not record(dmy, "raw/orders/old.csv", now - dt.timedelta(days=1))
    history = shapes.date_history("orders", shape)
    assert (history.order, history.key) == ("MDY", "raw/orders/new.csv")
