"""Vendor exports recognised by their header and mapped onto the built-in contracts, and the settings
that map any other export (``columns``, ``constants``)."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from analytics.errors import ContractError, MissingColumnsError, SettingsError
from analytics.exports import mapping_settings, normalise, recognise
from analytics.registry import get_pipeline, spec
from tests import export_fixtures as fx

from .conftest import RunCsv, assert_matches_spec


def _sum(table: pa.Table, column: str) -> float:
    return float(pc.sum(table.column(column)).as_py() or 0)


@pytest.mark.parametrize("export", fx.ALL, ids=lambda e: e.name)
def test_each_vendor_export_lands_with_the_exports_own_sums(export: fx.Export, run_csv: RunCsv) -> None:
    # GIVEN an export as its tool writes it (header and rows; the reader takes off titles and totals)
    pipeline = get_pipeline(export.dataset)
    # WHEN its dataset's pipeline runs on it, with no settings
    result, sink = run_csv(pipeline, export.csv(as_downloaded=False))
    # THEN it is recognised, nothing is quarantined and the curated table sums to the export's own totals
    assert result.source_format == export.source_format
    assert sink.quarantined_rows == 0, sink.quarantined().to_pylist()[:3]
    table = sink.table(export.dataset)
    assert table.num_rows == export.curated_rows
    for column, expected in export.sums.items():
        assert math.isclose(_sum(table, column), expected, rel_tol=1e-9), column
    if export.channel is not None:
        assert set(table.column("channel").to_pylist()) == {export.channel}


def test_a_shopify_export_folds_line_items_into_orders_and_keeps_them_in_order_items(run_csv: RunCsv) -> None:
    # GIVEN Shopify's export: one row per line item, the order's total on its first row only
    result, sink = run_csv(get_pipeline("orders"), fx.SHOPIFY_ORDERS.csv())
    orders = sink.table("orders").sort_by("order_id")
    # THEN one row per order, with the order's own total (shipping included), not a sum of line prices
    assert orders.column("order_id").to_pylist() == ["#1001", "#1002", "#1003"]
    assert orders.column("amount").to_pylist() == [73.80, 39.90, 120.00]
    assert orders.column("quantity").to_pylist() == [3, 1, 6]
    assert orders.column("channel").to_pylist() == ["web"] * 3
    assert orders.column("country").to_pylist() == ["FR"] * 3
    # AND the line items are kept, each with its order's customer and day
    items = sink.table("order_items").sort_by([("order_id", "ascending"), ("line_number", "ascending")])
    assert_matches_spec(items, spec("orders").tables[1])  # type: ignore[union-attr]
    assert items.num_rows == 6
    assert items.column("line_number").to_pylist() == [1, 2, 1, 1, 2, 3]
    assert items.column("product").to_pylist()[:2] == ["Bio-collagen mask", "Night cream"]
    assert items.column("price").to_pylist()[:2] == [34.90, 4.00]
    assert str(items.column("order_date")[1].as_py()) == "2026-01-05"
    assert items.column("customer_id")[1].as_py() == orders.column("customer_id")[0].as_py()
    assert result.export_facts["line_items"] == 6 and result.export_facts["orders"] == 3


def test_stripe_leaves_failed_payments_out_and_a_guest_is_its_email(run_csv: RunCsv) -> None:
    result, sink = run_csv(get_pipeline("orders"), fx.STRIPE_PAYMENTS.csv())
    orders = sink.table("orders").sort_by("order_id")
    assert "ch_3QabcA2" not in orders.column("order_id").to_pylist()
    assert orders.column("customer_id").to_pylist() == ["cus_RxA1", "guest@example.net", "cus_RxA1"]
    assert result.export_facts["not_sales"] == 1


def test_meta_spend_currency_comes_from_its_header(run_csv: RunCsv) -> None:
    _, sink = run_csv(get_pipeline("ad_performance"), fx.META_ADS.csv())
    assert set(sink.table("ad_performance").column("currency").to_pylist()) == {"EUR"}


def test_a_column_of_the_export_wins_over_what_the_platform_implies(run_csv: RunCsv) -> None:
    # GIVEN a Google Ads export someone added a channel column to
    text = fx.GOOGLE_ADS.csv(as_downloaded=False).replace("Campaign,Day", "Channel,Campaign,Day", 1)
    lines = text.split("\r\n")
    text = "\r\n".join([lines[0], *("google_search," + line for line in lines[1:] if line)]) + "\r\n"
    _, sink = run_csv(get_pipeline("ad_performance"), text)
    assert set(sink.table("ad_performance").column("channel").to_pylist()) == {"google_search"}


def test_an_unknown_export_is_mapped_by_the_settings_columns_and_constants(run_csv: RunCsv) -> None:
    # GIVEN a Pinterest export nobody declared: no channel, its own names for spend and clicks
    text = (
        "Date,Campaign name,Impressions,Pin clicks,Spend in account currency,Total conversions,Total order value\n"
        "2026-01-01,Boards,1000,20,12.50,1,40.00\n"
        "2026-01-02,Boards,1100,25,13.00,2,80.00\n"
    )
    pipeline = get_pipeline("ad_performance")
    # WHEN it lands without settings THEN the error names the mapping that would fit, as settings JSON
    with pytest.raises(ContractError) as refused:
        run_csv(pipeline, text)
    message = str(refused.value)
    assert "settings/ad_performance.json" in message and '"clicks": "Pin clicks"' in message
    # WHEN the settings map it
    settings = {
        "columns": {
            "clicks": "Pin clicks",
            "spend": "Spend in account currency",
            "conversions": "Total conversions",
            "revenue": "Total order value",
        },
        "constants": {"channel": "pinterest"},
    }
    result, sink = run_csv(pipeline, text, settings=settings)
    # THEN it lands, named as mapped by settings, with the constant channel
    table = sink.table("ad_performance")
    assert result.source_format == "settings"
    assert table.column("channel").to_pylist() == ["pinterest", "pinterest"]
    assert _sum(table, "clicks") == 45 and _sum(table, "revenue") == 120.0


def test_settings_naming_a_header_the_file_lacks_say_which_headers_it_has(run_csv: RunCsv) -> None:
    with pytest.raises(SettingsError, match=r"Pin clicks.*its headers"):
        run_csv(
            get_pipeline("ad_performance"),
            fx.GOOGLE_ADS.csv(as_downloaded=False),
            {"columns": {"clicks": "Pin clicks"}},
        )
    with pytest.raises(SettingsError, match="not a column of the ad_performance contract"):
        run_csv(get_pipeline("ad_performance"), fx.GOOGLE_ADS.csv(as_downloaded=False), {"constants": {"chanel": "x"}})


def test_the_suggested_mapping_is_settings_json_naming_the_closest_headers() -> None:
    contract = spec("orders").contract  # type: ignore[union-attr]
    header = ["Buyer e-mail", "Purchase timestamp", "Order Total (EUR)", "Notes"]
    suggestion = mapping_settings(contract, header)
    assert json.loads(json.dumps(suggestion)) == suggestion
    assert suggestion["columns"]["amount"] == "Order Total (EUR)"
    assert suggestion["columns"]["order_date"] == "Purchase timestamp"


@pytest.mark.parametrize("export", fx.ALL, ids=lambda e: e.name)
def test_each_export_is_recognised_as_itself_and_no_other(export: fx.Export) -> None:
    shapes = [s for d in ("ad_performance", "orders") for s in spec(d).exports]  # type: ignore[union-attr]
    header = [normalise(h) for h in export.header]
    assert [s.name for s in shapes if s.matches(header)] == [export.source_format]
    found = recognise(shapes, export.header)
    assert found is not None and found.name == export.source_format


def _shopify(rows: list[tuple[str, ...]]) -> str:
    return replace(fx.SHOPIFY_ORDERS, rows=tuple(rows)).csv()


def _set(row: tuple[str, ...], **values: str) -> tuple[str, ...]:
    out = list(row)
    for column, value in values.items():
        out[fx.SHOPIFY_ORDERS.header.index(column.replace("_", " "))] = value
    return tuple(out)


def test_shopify_lines_apart_from_their_order_still_belong_to_it(run_csv: RunCsv) -> None:
    # GIVEN #1001's second line moved to the end of the file, after #1003's lines
    rows = list(fx.SHOPIFY_ORDERS.rows)
    rows.append(rows.pop(1))
    _, sink = run_csv(get_pipeline("orders"), _shopify(rows))
    orders = sink.table("orders").sort_by("order_id")
    # THEN the quantities are the same as in the sorted file, and the line is #1001's, on its day
    assert orders.column("quantity").to_pylist() == [3, 1, 6]
    items = sink.table("order_items")
    moved = [r for r in items.to_pylist() if r["product"] == "Night cream"]
    assert [(r["order_id"], r["line_number"], str(r["order_date"])) for r in moved] == [("#1001", 2, "2026-01-05")]
    keys = [(r["order_id"], r["line_number"]) for r in items.to_pylist()]
    assert len(keys) == len(set(keys)) == 6


def test_a_shopify_order_without_a_name_is_not_merged_into_the_one_before(run_csv: RunCsv) -> None:
    rows = list(fx.SHOPIFY_ORDERS.rows)
    rows[2] = _set(rows[2], Name="")  # #1002's only row, its Name blank
    _, sink = run_csv(get_pipeline("orders"), _shopify(rows))
    orders = sink.table("orders")
    assert sorted(orders.column("amount").to_pylist()) == [39.90, 73.80, 120.00]
    assert sorted(orders.column("quantity").to_pylist()) == [1, 3, 6]


def test_a_rejected_shopify_order_is_quarantined_as_its_file_rows_with_their_numbers(run_csv: RunCsv) -> None:
    # GIVEN #1003 (file rows 4 to 6) with a date that is not one
    rows = list(fx.SHOPIFY_ORDERS.rows)
    rows[3] = _set(rows[3], Created_at="yesterday")
    pipeline = get_pipeline("orders")
    pipeline.tolerance = 0.9  # as settings/orders.json's tolerance would (the handler sets it)
    result, sink = run_csv(pipeline, _shopify(rows))
    # THEN its three file rows are in quarantine, each with its own number and values and the order's reason
    rejected = sink.quarantined().sort_by("_row_number")
    assert rejected.column("_row_number").to_pylist() == [4, 5, 6]
    assert rejected.column("_reason_code").to_pylist() == ["invalid_date"] * 3
    assert rejected.column("Lineitem quantity").to_pylist() == ["3", "1", "2"]
    # AND none of its lines is in order_items; the counts are the file's rows
    assert "#1003" not in sink.table("order_items").column("order_id").to_pylist()
    assert result.rows_in == 6 and result.rows_rejected == 3 and result.rejected_by_reason == {"invalid_date": 3}


def test_voided_and_refunded_shopify_orders_count_what_was_kept(run_csv: RunCsv) -> None:
    rows = list(fx.SHOPIFY_ORDERS.rows)
    rows[0] = _set(rows[0], Refunded_Amount="10.00")  # #1001: 73.80 less 10.00 refunded
    rows[2] = _set(rows[2], Financial_Status="voided")  # #1002: never charged
    rows[3] = _set(rows[3], Refunded_Amount="120.00", Financial_Status="refunded")  # #1003: all given back
    result, sink = run_csv(get_pipeline("orders"), _shopify(rows))
    orders = sink.table("orders")
    assert orders.column("order_id").to_pylist() == ["#1001"]
    assert orders.column("amount").to_pylist() == [63.80]
    assert result.export_facts["voided"] == 1 and result.export_facts["refunded"] == 1
    assert sink.quarantined_rows == 0


def test_a_refused_file_still_says_which_export_it_was(run_csv: RunCsv) -> None:
    text = fx.META_ADS.csv().replace("Link clicks", "Outbound clicks")
    with pytest.raises(MissingColumnsError) as refused:
        run_csv(get_pipeline("ad_performance"), text)
    assert refused.value.source_format == "meta_ads"  # type: ignore[attr-defined]
    # the columns it lists are the file's own (the channel the export implies is not the file's)
    assert "'channel'" not in str(refused.value) and "_constant_" not in str(refused.value)
    assert refused.value.suggestion == {"columns": {"clicks": "Outbound clicks"}}


def test_a_plain_file_of_a_built_in_dataset_is_named_generic(run_csv: RunCsv) -> None:
    from analytics import samples

    result, _ = run_csv(get_pipeline("orders"), samples.orders_csv(50, seed=1))
    assert result.source_format == "generic"


def test_a_constant_in_the_settings_wins_over_the_files_column_and_the_export(run_csv: RunCsv) -> None:
    # Shopify's Source column would be the channel; the dataset's settings say every order is "shop_eu"
    _, sink = run_csv(get_pipeline("orders"), fx.SHOPIFY_ORDERS.csv(), settings={"constants": {"channel": "shop_eu"}})
    assert set(sink.table("orders").column("channel").to_pylist()) == {"shop_eu"}


def test_a_file_refused_over_its_tolerance_still_says_which_export_it_was(run_csv: RunCsv) -> None:
    from analytics.errors import ToleranceExceededError

    rows = [
        _set(r, Created_at="yesterday") if r[fx.SHOPIFY_ORDERS.header.index("Total")] else r
        for r in fx.SHOPIFY_ORDERS.rows
    ]
    with pytest.raises(ToleranceExceededError) as refused:
        run_csv(get_pipeline("orders"), _shopify(rows))
    assert refused.value.source_format == "shopify_orders"  # type: ignore[attr-defined]
