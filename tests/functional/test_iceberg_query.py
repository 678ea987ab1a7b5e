"""``lake query`` and ``lake tables`` on Iceberg tables written with pyiceberg onto the stand-in:
results, the per-key view, time travel, partition pruning and the errors a user can meet."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest

from lake.cli.tables import list_tables, read_table
from lake.engine import run_query
from lake.target import CliError, Target, resolve
from tests.conftest import Lake
from tests.e2e.cli import lake as run_lake
from tests.functional.iceberg_tables import FEB, JAN_V2, LATE, OrdersTable, write_orders


@pytest.fixture
def orders(lake: Lake) -> OrdersTable:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pyiceberg: "Delete operation did not match any records"
        return write_orders(lake)


@pytest.fixture
def target(lake: Lake) -> Target:
    return resolve(endpoint_url=lake.endpoints.endpoint_url)


def query(target: Target, sql: str) -> list[dict[str, Any]]:
    return run_query(target, sql).to_pylist()


def one_line(error: pytest.ExceptionInfo[CliError]) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_a_query_reads_the_current_snapshot_with_athenas_names_and_types(orders: OrdersTable, target: Target) -> None:
    rows = query(
        target,
        "SELECT channel, count(*), sum(amount) AS total, sum(order_id) / count(*) AS per_row "
        "FROM lake_curated.orders_sources GROUP BY channel ORDER BY channel",
    )
    current = orders.history[-1][1]
    everything = [*JAN_V2, *FEB, *LATE]
    assert sorted((r["order_id"], r["amount"]) for r in everything) == current
    by_channel = {c: [r for r in everything if r["channel"] == c] for c in ("shop", "web")}
    assert rows == [
        {
            "channel": channel,
            "_col1": len(found),
            "total": sum(r["amount"] for r in found),
            "per_row": sum(r["order_id"] for r in found) // len(found),  # bigint / bigint stays whole
        }
        for channel, found in sorted(by_channel.items())
    ]


def test_the_view_shows_each_key_once_from_its_newest_source(orders: OrdersTable, target: Target) -> None:
    rows = query(target, "SELECT order_id, amount, source_key FROM orders ORDER BY order_id")
    assert [r["order_id"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[4] == {"order_id": 5, "amount": 45.0, "source_key": "raw/orders/late.csv"}
    assert rows[2]["amount"] == 33.0  # the corrected January export replaced the first one
    # A view joins and filters like a table, columns qualified by its name.
    [row] = query(
        target,
        "SELECT orders.order_id, s.amount FROM orders JOIN orders_sources s ON orders.order_id = s.order_id "
        "AND s.source_key = 'raw/orders/feb.csv' WHERE orders.amount < s.amount",
    )
    assert row == {"order_id": 5, "amount": 50.0}


def test_for_version_as_of_returns_exactly_that_snapshots_rows(orders: OrdersTable, target: Target) -> None:
    for snapshot_id, expected in orders.history:
        rows = query(
            target, f"SELECT order_id, amount FROM orders_sources FOR VERSION AS OF {snapshot_id} ORDER BY 1, 2"
        )
        assert [(r["order_id"], r["amount"]) for r in rows] == expected
    # Two snapshots of one table in one query: what the last commit changed.
    first, last = orders.history[0][0], orders.history[-1][0]
    rows = query(
        target,
        f"SELECT n.order_id, n.amount FROM orders_sources FOR VERSION AS OF {last} n "
        f"LEFT JOIN orders_sources FOR VERSION AS OF {first} o ON n.order_id = o.order_id AND n.amount = o.amount "
        "WHERE o.order_id IS NULL ORDER BY 1, 2",
    )
    assert [(r["order_id"], r["amount"]) for r in rows] == [(3, 33.0), (4, 40.0), (5, 45.0), (5, 50.0), (6, 60.0)]


def test_for_timestamp_as_of_reads_the_snapshot_current_at_that_time(orders: OrdersTable, target: Target) -> None:
    snapshot = orders.table.snapshot_by_id(orders.history[1][0])
    assert snapshot is not None
    # The moment of the second commit, and a moment before any commit.
    import datetime as dt

    moment = dt.datetime.fromtimestamp(snapshot.timestamp_ms / 1000, tz=dt.UTC)
    rows = query(
        target,
        f"SELECT order_id, amount FROM orders_sources FOR TIMESTAMP AS OF "
        f"TIMESTAMP '{moment:%Y-%m-%d %H:%M:%S.%f} UTC' ORDER BY 1, 2",
    )
    assert [(r["order_id"], r["amount"]) for r in rows] == orders.history[1][1]
    with pytest.raises(CliError) as raised:
        query(target, "SELECT * FROM orders_sources FOR TIMESTAMP AS OF TIMESTAMP '2020-01-01 00:00:00 UTC'")
    assert "had no snapshot yet at 2020-01-01 00:00:00 UTC" in one_line(raised)


def test_an_unknown_snapshot_is_one_line_listing_recent_snapshots(orders: OrdersTable, target: Target) -> None:
    with pytest.raises(CliError) as raised:
        query(target, "SELECT * FROM orders_sources FOR VERSION AS OF 42")
    message = one_line(raised)
    assert message.startswith("lake_curated.orders_sources has no snapshot 42; recent snapshots: ")
    assert f"{orders.history[-1][0]} (" in message  # the newest first, with its time, operation and rows
    with pytest.raises(CliError, match="is a view; time travel reads a table"):
        query(target, "SELECT * FROM orders FOR VERSION AS OF 42")


def month_file(orders: OrdersTable, lake: Lake, month: str) -> str:
    """The key of a data file of ``month``'s partition in the table's current snapshot."""
    paths = [task.file.file_path for task in orders.table.scan().plan_files() if month in task.file.file_path]
    assert paths, f"expected {month} data files"
    return paths[0].removeprefix(f"s3://{lake.bucket}/")


def assert_names_the_damaged_file(raised: pytest.ExceptionInfo[CliError], key: str) -> None:
    """One line saying which table, which file and what to do."""
    message = one_line(raised)
    assert "lake_curated.orders_sources" in message
    assert key.rsplit("/", 1)[-1] in message
    assert "lake reprocess" in message


def test_a_partition_filter_never_reads_another_partitions_files(
    orders: OrdersTable, target: Target, lake: Lake
) -> None:
    # GIVEN a damaged data file in January's partition of the current snapshot
    damaged = month_file(orders, lake, "2026-01")
    lake.put(damaged, b"not parquet")
    # WHEN a query filters on February, THEN it answers from February's files only
    rows = query(
        target,
        "SELECT order_id, amount FROM orders_sources WHERE order_date >= DATE '2026-02-01' ORDER BY 1, 2",
    )
    assert [(r["order_id"], r["amount"]) for r in rows] == [(4, 40.0), (5, 45.0), (5, 50.0)]
    # AND with an IN list of dates, and through the view that reads the same files
    in_list = "order_date IN (DATE '2026-02-02', DATE '2026-02-14')"
    assert query(target, f"SELECT count(*) AS n FROM orders_sources WHERE {in_list}") == [{"n": 3}]
    # AND a query over every partition opens the damaged file and says which table, which file, what to do
    with pytest.raises(CliError) as raised:
        query(target, "SELECT count(*) FROM orders_sources")
    assert_names_the_damaged_file(raised, damaged)


def test_a_data_file_whose_pages_are_damaged_behind_a_sound_footer_is_named(
    orders: OrdersTable, target: Target, lake: Lake
) -> None:
    # GIVEN February's data file with its pages overwritten, its footer (and so its size) intact
    key = month_file(orders, lake, "2026-02")
    body = lake.s3.get_object(Bucket=lake.bucket, Key=key)["Body"].read()
    pages_end = len(body) - 8 - int.from_bytes(body[-8:-4], "little")  # the footer's length precedes "PAR1"
    lake.put(key, body[:4] + b"\xff" * (pages_end - 4) + body[pages_end:])
    # WHEN a query reads it, THEN the error names the table, the file and what to do
    with pytest.raises(CliError) as raised:
        query(target, "SELECT sum(amount) FROM orders_sources WHERE order_date >= DATE '2026-02-01'")
    assert_names_the_damaged_file(raised, key)


def test_a_table_that_is_not_iceberg_is_one_line_saying_what_to_do(lake: Lake, target: Target) -> None:
    lake.glue.create_table(
        DatabaseName="lake_curated",
        TableInput={
            "Name": "campaigns",
            "TableType": "EXTERNAL_TABLE",
            "PartitionKeys": [{"Name": "ingest_date", "Type": "date"}],
            "StorageDescriptor": {
                "Columns": [{"Name": "campaign", "Type": "string"}],
                "Location": f"s3://{lake.bucket}/curated/campaigns/",
            },
        },
    )
    with pytest.raises(CliError) as raised:
        query(target, "SELECT count(*) FROM campaigns")
    message = one_line(raised)
    assert "lake_curated.campaigns is not an Iceberg table" in message
    assert "aws glue delete-table --database-name lake_curated --name campaigns" in message
    assert "lake reprocess s3://<bucket>/raw/campaigns/" in message
    [listed] = [r for r in list_tables(target).to_pylist() if r["table"] == "campaigns"]
    assert listed["kind"] == "not iceberg"


def test_tables_lists_tables_and_views_with_snapshots(orders: OrdersTable, target: Target, lake: Lake) -> None:
    listed = {(r["database"], r["table"]): r for r in list_tables(target).to_pylist()}
    table = listed["lake_curated", "orders_sources"]
    assert table["kind"] == "iceberg"
    assert table["partition_spec"] == "month(order_date)"
    assert table["rows"] == len(orders.history[-1][1])
    assert table["snapshots"] == len(orders.table.snapshots())
    assert table["location"].rstrip("/") == f"s3://{lake.bucket}/curated/orders_sources"
    newest = max(s.timestamp_ms for s in orders.table.snapshots()) // 1000
    assert int(table["last_commit"].timestamp()) == newest
    assert listed["lake_curated", "orders"]["kind"] == "view"
    # read_table (tests and the demo read tables with it) goes through the catalog too
    back = read_table(lake.glue, None, "lake_curated", "orders_sources")
    assert sorted(zip(back["order_id"].to_pylist(), back["amount"].to_pylist(), strict=True)) == orders.history[-1][1]


def test_the_console_script_time_travels_and_lists_tables(orders: OrdersTable, lake: Lake) -> None:
    snapshot_id, expected = orders.history[0]
    result = run_lake(
        "query",
        f"SELECT order_id, amount FROM lake_curated.orders_sources FOR VERSION AS OF {snapshot_id} ORDER BY 1",
        "--format",
        "json",
        endpoint_url=lake.endpoints.endpoint_url,
    )
    assert result.returncode == 0, result.stderr
    assert [(r["order_id"], r["amount"]) for r in map(json.loads, result.stdout.splitlines())] == expected
    text = run_lake("tables", endpoint_url=lake.endpoints.endpoint_url)
    assert text.returncode == 0, text.stderr
    [line] = [line for line in text.stdout.splitlines() if " orders_sources " in line]
    assert line.split()[2:6] == [
        "iceberg",
        "month(order_date)",
        str(len(expected := orders.history[-1][1])),
        str(len(orders.table.snapshots())),
    ]
    assert len(expected) == 7
    failed = run_lake(
        "query", "SELECT * FROM orders_sources FOR VERSION AS OF 42", endpoint_url=lake.endpoints.endpoint_url
    )
    assert failed.returncode == 1
    assert failed.stderr.startswith("lake: lake_curated.orders_sources has no snapshot 42; recent snapshots: ")
    assert len(failed.stderr.strip().splitlines()) == 1


def test_a_filter_on_a_views_key_prunes_the_table_under_it(orders: OrdersTable, target: Target, lake: Lake) -> None:
    # GIVEN damaged February files (orders 4 and 5) under the orders view (each order_id once)
    february = [task.file.file_path for task in orders.table.scan().plan_files() if "2026-02" in task.file.file_path]
    assert len(february) == 2
    for path in february:
        lake.put(path.removeprefix(f"s3://{lake.bucket}/"), b"not parquet")
    # WHEN the view is filtered on its key (the window's PARTITION BY)
    rows = query(target, "SELECT order_id, amount, source_key FROM orders WHERE order_id = 3")
    # THEN the filter reaches the table's scan (the files' order_id ranges exclude February's)
    assert rows == [{"order_id": 3, "amount": 33.0, "source_key": "raw/orders/jan.csv"}]
    # AND a filter on a column the window is not partitioned by is not pushed below it
    with pytest.raises(CliError, match=r"cannot read the files of lake_curated\.orders_sources"):
        query(target, "SELECT order_id FROM orders WHERE order_date < DATE '2026-02-01'")
