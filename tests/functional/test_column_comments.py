"""Column descriptions reach the Glue catalog: what Athena's DESCRIBE and the Glue console show."""

from __future__ import annotations

from analytics.orders import CUSTOMER_RFM, ORDERS
from handlers.adapters.staging import LINEAGE_DOCS
from tests.conftest import Lake
from tests.functional.conftest import Invoke, InvokeRefresh, iceberg_table
from tests.functional.test_refresh import land, monthly_orders, orders_csv, refresh_all


def glue_comments(lake: Lake, table: str) -> dict[str, str | None]:
    columns = lake.glue.get_table(DatabaseName="lake_curated", Name=table)["Table"]["StorageDescriptor"]["Columns"]
    return {c["Name"]: c.get("Comment") for c in columns}


def test_a_curated_table_and_a_model_table_carry_their_specs_column_descriptions(
    lake: Lake, invoke: Invoke, invoke_refresh: InvokeRefresh
) -> None:
    # GIVEN an orders file, processed, then its dataset refreshed
    [january] = monthly_orders(months=1)
    land(lake, invoke, "raw/orders/2026-01.csv", orders_csv(january))
    refresh_all(lake, invoke_refresh)
    # THEN the Glue columns of the curated table say what the spec says, lineage columns included
    orders = glue_comments(lake, "orders_sources")
    assert orders["amount"] == ORDERS.column_docs()["amount"] == "order amount"
    assert orders["order_month"] == ORDERS.column_docs()["order_month"]
    assert orders["source_key"] == LINEAGE_DOCS["source_key"]
    assert orders["source_id"] == LINEAGE_DOCS["source_id"]  # declared by the spec, described as lineage
    # AND so do the model table's, which the refresh created
    rfm = glue_comments(lake, "customer_rfm")
    assert rfm["r_score"] == CUSTOMER_RFM.column_docs()["r_score"] == "recency quintile 1–5, 5 = most recent"
    assert rfm["as_of"] == CUSTOMER_RFM.column_docs()["as_of"]


def test_a_table_whose_descriptions_are_stale_gets_the_specs_at_its_next_commit(lake: Lake, invoke: Invoke) -> None:
    # GIVEN an orders table whose column says something else (created before its spec described it,
    # or described in other words since)
    january, february = monthly_orders(months=2)
    land(lake, invoke, "raw/orders/2026-01.csv", orders_csv(january))
    table = iceberg_table(lake, "lake_curated", "orders_sources")
    with table.update_schema() as update:
        update.update_column("amount", doc="stale words")
    assert glue_comments(lake, "orders_sources")["amount"] == "stale words"
    # WHEN another file lands in it
    land(lake, invoke, "raw/orders/2026-02.csv", orders_csv(february))
    # THEN the column says what the spec says again, and both files' rows are there
    assert glue_comments(lake, "orders_sources")["amount"] == "order amount"
    assert len(iceberg_table(lake, "lake_curated", "orders_sources").scan().to_arrow()) == len(january) + len(february)
