"""Iceberg tables written with pyiceberg straight onto the stand-in, shaped as the lake's writer
shapes them (lineage columns, hidden partitioning, one commit per source, a per-key view), so the
read side can be tested without the pipeline."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from pyiceberg.expressions import EqualTo
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.transforms import MonthTransform
from pyiceberg.types import DateType, DoubleType, LongType, NestedField, StringType, TimestamptzType

from handlers.adapters.table_properties import table_properties
from handlers.adapters.views import put_view
from query.catalog import glue_catalog
from tests.conftest import Lake

ORDERS_SCHEMA = Schema(
    NestedField(1, "order_id", LongType(), required=False),
    NestedField(2, "order_date", DateType(), required=False),
    NestedField(3, "channel", StringType(), required=False),
    NestedField(4, "amount", DoubleType(), required=False),
    NestedField(5, "source_key", StringType(), required=False),
    NestedField(6, "source_version", StringType(), required=False),
    NestedField(7, "source_id", StringType(), required=False),
    NestedField(8, "ingested_at", TimestamptzType(), required=False),
)
ORDERS_SPEC = PartitionSpec(
    PartitionField(source_id=2, field_id=1000, transform=MonthTransform(), name="order_date_month")
)
ARROW = pa.schema(
    [
        ("order_id", pa.int64()),
        ("order_date", pa.date32()),
        ("channel", pa.string()),
        ("amount", pa.float64()),
        ("source_key", pa.string()),
        ("source_version", pa.string()),
        ("source_id", pa.string()),
        ("ingested_at", pa.timestamp("us", tz="UTC")),
    ]
)

#: The view the writer registers for a dataset with a business key: each order once, newest source first.
ORDERS_VIEW_SQL = (
    "SELECT order_id, order_date, channel, amount, source_key, source_version, source_id, ingested_at FROM ("
    "SELECT *, row_number() OVER (PARTITION BY order_id ORDER BY ingested_at DESC, source_key DESC) AS lake_rank "
    "FROM lake_curated.orders_sources) WHERE lake_rank = 1"
)
ORDERS_VIEW_COLUMNS = [
    ("order_id", "bigint"),
    ("order_date", "date"),
    ("channel", "varchar"),
    ("amount", "double"),
    ("source_key", "varchar"),
    ("source_version", "varchar"),
    ("source_id", "varchar"),
    ("ingested_at", "timestamp(6) with time zone"),
]


def order(order_id: int, day: dt.date, channel: str, amount: float) -> dict[str, Any]:
    return {"order_id": order_id, "order_date": day, "channel": channel, "amount": amount}


def source_rows(key: str, version: str, ingested_at: dt.datetime, rows: list[dict[str, Any]]) -> pa.Table:
    """``rows`` of raw object ``key`` at ``version`` with the lineage columns filled in."""
    lineage = {"source_key": key, "source_version": version, "source_id": key.rsplit("/", 1)[-1][:8],
               "ingested_at": ingested_at}  # fmt: skip
    return pa.Table.from_pylist([{**row, **lineage} for row in rows], schema=ARROW)


JAN = [order(1, dt.date(2026, 1, 5), "web", 10.0), order(2, dt.date(2026, 1, 9), "shop", 20.0),
       order(3, dt.date(2026, 1, 20), "web", 30.0)]  # fmt: skip
FEB = [order(4, dt.date(2026, 2, 2), "web", 40.0), order(5, dt.date(2026, 2, 14), "shop", 50.0)]
#: A corrected January export (same key, a new version): order 3 changed, order 6 added.
JAN_V2 = [order(1, dt.date(2026, 1, 5), "web", 10.0), order(2, dt.date(2026, 1, 9), "shop", 20.0),
          order(3, dt.date(2026, 1, 20), "web", 33.0), order(6, dt.date(2026, 1, 31), "shop", 60.0)]  # fmt: skip
#: A late re-export that overlaps February (order 5 again, with a refund).
LATE = [order(5, dt.date(2026, 2, 14), "shop", 45.0)]


@dataclass
class OrdersTable:
    """``lake_curated.orders_sources`` after four commits, and the ``lake_curated.orders`` view."""

    table: Table
    #: Snapshot id after each commit, with the (order_id, amount) rows the table had then, sorted.
    history: list[tuple[int, list[tuple[int, float]]]] = field(default_factory=list)


def write_orders(lake: Lake) -> OrdersTable:
    catalog = glue_catalog(lake.glue, lake.endpoints.region, lake.endpoints.endpoint_url)
    table = catalog.create_table(
        "lake_curated.orders_sources",
        schema=ORDERS_SCHEMA,
        location=f"s3://{lake.bucket}/curated/orders_sources/",
        partition_spec=ORDERS_SPEC,
        properties=table_properties(),
    )
    result = OrdersTable(table)
    start = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
    sources: dict[str, list[dict[str, Any]]] = {}

    def commit(key: str, version: str, rows: list[dict[str, Any]], minutes: int) -> None:
        # One commit per source, replacing the key's rows, as the writer does.
        table.overwrite(
            source_rows(key, version, start + dt.timedelta(minutes=minutes), rows),
            overwrite_filter=EqualTo("source_key", key),
        )
        sources[key] = rows
        state = sorted((r["order_id"], r["amount"]) for rows in sources.values() for r in rows)
        result.history.append((table.current_snapshot().snapshot_id, state))  # type: ignore[union-attr]

    commit("raw/orders/jan.csv", "v1", JAN, 0)
    commit("raw/orders/feb.csv", "v1", FEB, 1)
    commit("raw/orders/jan.csv", "v2", JAN_V2, 2)
    commit("raw/orders/late.csv", "v1", LATE, 3)  # order 5 now twice in the table: feb.csv and late.csv
    put_view(lake.glue, "lake_curated", "orders", ORDERS_VIEW_SQL, ORDERS_VIEW_COLUMNS)
    return result
