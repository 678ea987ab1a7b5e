"""Vendor exports dropped as downloaded land through the real handler, with the export's own sums."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tests import export_fixtures as fx
from tests.conftest import Lake
from tests.functional.conftest import Invoke, curated_rows, next_messages, quarantine_rows


def _land(lake: Lake, invoke: Invoke, key: str, body: bytes) -> dict[str, Any]:
    lake.put(key, body)
    assert invoke(next_messages(lake)) == {"batchItemFailures": []}
    [event] = lake.events(1, where=lambda e: e["detail-type"].startswith("Dataset Process"))
    return dict(event["detail"])


@pytest.mark.parametrize("export", fx.ALL, ids=lambda e: e.name)
def test_a_vendor_export_dropped_as_downloaded_lands_with_its_own_sums(
    export: fx.Export, lake: Lake, invoke: Invoke
) -> None:
    # GIVEN an export exactly as its tool downloads it (titles, totals rows and all)
    # WHEN it is dropped into its dataset's raw/ folder
    detail = _land(lake, invoke, f"raw/{export.dataset}/{export.name}.csv", export.csv().encode())
    # THEN the event names the export, nothing is quarantined, and the curated rows sum as the export does
    assert detail["status"] == "succeeded", detail.get("error")
    assert detail["source_format"] == export.source_format
    assert detail["quarantine"]["rows"] == 0 and quarantine_rows(lake, export.dataset) == []
    rows = curated_rows(lake, export.dataset)
    assert len(rows) == export.curated_rows
    for column, expected in export.sums.items():
        assert math.isclose(sum(r[column] or 0 for r in rows), expected, rel_tol=1e-9), column
    if export.channel is not None:
        assert {r["channel"] for r in rows} == {export.channel}


def test_shopify_line_items_land_in_order_items_beside_one_row_per_order(lake: Lake, invoke: Invoke) -> None:
    detail = _land(lake, invoke, "raw/orders/shopify.csv", fx.SHOPIFY_ORDERS.csv().encode())
    assert detail["export"]["line_items"] == 6 and detail["export"]["order_items"] == 6
    outputs = {o["table"]: o["rows"] for o in detail["outputs"]}
    assert outputs["orders_sources"] == 3 and outputs["order_items_sources"] == 6
    items = curated_rows(lake, "order_items")
    orders = {r["order_id"]: r for r in curated_rows(lake, "orders")}
    # each line item belongs to an order the lake kept, with that order's customer
    assert {i["order_id"] for i in items} == set(orders)
    assert all(i["customer_id"] == orders[i["order_id"]]["customer_id"] for i in items)


def test_customers_in_exports_land_as_pseudonyms_that_join_across_exports(lake: Lake, invoke: Invoke) -> None:
    # GIVEN a Shopify export whose customer wrote her e-mail in two cases, and a WooCommerce
    # download whose customer is a person's name
    shopify = _land(lake, invoke, "raw/orders/shopify.csv", fx.SHOPIFY_ORDERS.csv().encode())
    woo = _land(lake, invoke, "raw/orders/woo.csv", fx.WOOCOMMERCE_ORDERS.csv().encode())
    assert shopify["status"] == woo["status"] == "succeeded"
    rows = curated_rows(lake, "orders")
    customers = {r["order_id"]: r["customer_id"] for r in rows}
    # THEN no e-mail or name is stored, the same person is one customer, the names are pseudonyms too
    assert not any("@" in c or " " in c for c in customers.values()), customers
    assert customers["#1001"] == customers["#1003"] != customers["#1002"]
    assert customers["2281"] == customers["2284"] != customers["2282"]
    assert "Jordan Smith" not in str(curated_rows(lake, "order_items")) + str(rows)


def test_ga4_and_search_console_downloads_read_cleanly_as_generic_datasets(lake: Lake, invoke: Invoke) -> None:
    from tests.exports import ga4_csv

    # GIVEN a GA4 report download (comment preamble) and a Search Console "Queries" export
    ga4 = ga4_csv(
        ["Page title and screen class", "Views", "Active users", "Event count", "Bounce rate"],
        [["Home", "1,204", "811", "5,120", "0.41"], ["Shoes | Demo Shop", "533", "402", "2,017", "0.38"]],
    )
    console = (
        "Top queries,Clicks,Impressions,CTR,Position\nrunning shoes,120,4013,2.99%,7.4\ntrail shoes,44,1800,2.44%,9.1\n"
    )
    # WHEN each lands in a dataset of its own
    first = _land(lake, invoke, "raw/ga4_pages/pages.csv", ga4.encode())
    second = _land(lake, invoke, "raw/search_queries/Queries.csv", console.encode())
    # THEN every row lands, nothing is quarantined, the comments are counted as preamble
    assert first["status"] == second["status"] == "succeeded"
    assert first["rows"]["preamble"] >= 8 and first["quarantine"]["rows"] == 0 == second["quarantine"]["rows"]
    pages = {r["page_title_and_screen_class"]: r["views"] for r in curated_rows(lake, "ga4_pages")}
    assert pages == {"Home": 1204, "Shoes | Demo Shop": 533}
    queries = {r["top_queries"]: r["ctr"] for r in curated_rows(lake, "search_queries")}
    assert queries["running shoes"] == pytest.approx(0.0299)
