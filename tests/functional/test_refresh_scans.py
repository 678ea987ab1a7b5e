"""What the refresh's SQL reads from a pinned snapshot whose schema changed between its files: a
column added later, a column promoted in place, a column renamed. The refresh reads such a snapshot
as a dataset of its files (DuckDB reads only the columns a query needs) only where that is exact,
and through pyiceberg's reader otherwise; the rows are the same either way."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import DoubleType, IntegerType, LongType, NestedField, StringType

from handlers.adapters.table_properties import table_properties
from handlers.stages.refresh_queries import RefreshQueries
from query.catalog import Catalog, glue_catalog
from query.local import DuckDBEngine
from query.scan import rows_of
from tests.conftest import Lake

DATABASE = "lake_curated"


@pytest.fixture
def resolver(lake: Lake) -> Catalog:
    return Catalog(
        lake.glue,
        database=DATABASE,
        iceberg_catalog=glue_catalog(lake.glue, lake.endpoints.region, lake.endpoints.endpoint_url),
    )


def create(resolver: Catalog, lake: Lake, name: str, *fields: NestedField) -> Table:
    return resolver.iceberg.create_table(
        f"{DATABASE}.{name}", schema=Schema(*fields), location=f"s3://{lake.bucket}/curated/{name}/",
        properties=table_properties(),
    )  # fmt: skip


def add_file(table: Table, name: str, rows: pa.Table) -> None:
    """``rows`` as a Parquet file without field ids, added as the per-file stage adds its files."""
    path = f"{table.location()}/data/{name}.parquet"
    with table.io.new_output(path).create(overwrite=True) as stream:
        pq.write_table(rows, stream)
    table.add_files([path])


def run(resolver: Catalog, name: str, sql: str) -> list[dict[str, Any]]:
    pinned = resolver.pin([name])
    rows = RefreshQueries(DuckDBEngine(resolver, pinned=pinned))(sql).to_pylist()
    return sorted(rows, key=lambda r: (r["order_id"], repr(r)))  # rows of one order in a stable order too


def test_a_column_a_later_file_added_reads_as_nulls_in_the_older_files(resolver: Catalog, lake: Lake) -> None:
    # GIVEN a table whose first files (one written by pyiceberg, one added) lack the coupon column a
    # later file brought with it
    table = create(
        resolver, lake, "coupons", NestedField(1, "order_id", LongType()), NestedField(2, "amount", DoubleType())
    )
    table.append(pa.table({"order_id": [1, 2], "amount": [10.0, 20.0]}))
    add_file(table, "second", pa.table({"order_id": [3], "amount": [30.0]}))
    with table.update_schema() as update:
        update.union_by_name(pa.schema([("coupon", pa.string())]))
    add_file(table, "third", pa.table({"order_id": [4, 5], "amount": [40.0, 50.0], "coupon": ["SPRING", None]}))
    table.refresh()
    # WHEN a refresh's SQL reads the coupon and the amount
    rows = run(resolver, "coupons", "SELECT order_id, coupon, amount FROM coupons")
    # THEN the older files' orders have no coupon, the later file's have theirs
    assert rows == [
        {"order_id": 1, "coupon": None, "amount": 10.0},
        {"order_id": 2, "coupon": None, "amount": 20.0},
        {"order_id": 3, "coupon": None, "amount": 30.0},
        {"order_id": 4, "coupon": "SPRING", "amount": 40.0},
        {"order_id": 5, "coupon": None, "amount": 50.0},
    ]
    # AND the snapshot was read as a dataset DuckDB can project, not as a stream of every column
    snapshot = table.current_snapshot()
    assert snapshot is not None
    assert isinstance(rows_of(table, snapshot), ds.Dataset)


def test_a_column_promoted_in_place_reads_the_older_files_widened(resolver: Catalog, lake: Lake) -> None:
    # GIVEN a table whose quantity was an int in its first file and became a bigint in place
    table = create(
        resolver, lake, "quantities", NestedField(1, "order_id", LongType()), NestedField(2, "quantity", IntegerType())
    )
    add_file(table, "first", pa.table({"order_id": [1, 2], "quantity": pa.array([2, 3], pa.int32())}))
    with table.update_schema() as update:
        update.update_column("quantity", LongType())
    add_file(table, "second", pa.table({"order_id": [3], "quantity": pa.array([5_000_000_000], pa.int64())}))
    table.refresh()
    # WHEN a refresh's SQL sums the quantities
    [total] = RefreshQueries(DuckDBEngine(resolver, pinned=resolver.pin(["quantities"])))(
        "SELECT sum(quantity) AS total FROM quantities"
    ).to_pylist()
    # THEN every file's quantities count, the older ones widened
    assert total == {"total": 5_000_000_005}
    snapshot = table.current_snapshot()
    assert snapshot is not None
    assert isinstance(rows_of(table, snapshot), ds.Dataset)


def test_a_renamed_column_is_read_by_its_field_id_in_files_written_under_the_old_name(
    resolver: Catalog, lake: Lake
) -> None:
    # GIVEN a table whose first file was written when the amount column was called amt
    table = create(
        resolver, lake, "renamed", NestedField(1, "order_id", LongType()), NestedField(2, "amt", DoubleType())
    )
    table.append(pa.table({"order_id": [1, 2], "amt": [10.0, 20.0]}))
    with table.update_schema() as update:
        update.rename_column("amt", "amount")
    table.append(pa.table({"order_id": [3], "amount": [30.0]}))
    table.refresh()
    # WHEN a refresh's SQL reads the amounts
    rows = run(resolver, "renamed", "SELECT order_id, amount FROM renamed")
    # THEN the older file's amounts are there (matching by name would have read nulls)
    assert rows == [
        {"order_id": 1, "amount": 10.0},
        {"order_id": 2, "amount": 20.0},
        {"order_id": 3, "amount": 30.0},
    ]


def test_a_column_dropped_and_added_again_under_its_name_reads_as_nulls_in_the_older_files(
    resolver: Catalog, lake: Lake
) -> None:
    # GIVEN a table whose note column was dropped and a new one added under the same name later
    table = create(
        resolver, lake, "notes", NestedField(1, "order_id", LongType()), NestedField(2, "note", StringType())
    )
    table.append(pa.table({"order_id": [1], "note": ["old meaning"]}))
    with table.update_schema() as update:
        update.delete_column("note")
    with table.update_schema() as update:
        update.add_column("note", StringType())
    table.append(pa.table({"order_id": [2], "note": ["new meaning"]}))
    table.refresh()
    # WHEN a refresh's SQL reads the notes
    rows = run(resolver, "notes", "SELECT order_id, note FROM notes")
    # THEN the dropped column's values do not come back under the new column
    assert rows == [{"order_id": 1, "note": None}, {"order_id": 2, "note": "new meaning"}]


def test_a_self_join_of_a_snapshot_read_through_pyiceberg_reads_it_twice(resolver: Catalog, lake: Lake) -> None:
    # GIVEN a table that must be read through pyiceberg's stream (a renamed column)
    table = create(resolver, lake, "moves", NestedField(1, "order_id", LongType()), NestedField(2, "seg", StringType()))
    table.append(pa.table({"order_id": [1, 2], "seg": ["a", "b"]}))
    with table.update_schema() as update:
        update.rename_column("seg", "segment")
    table.append(pa.table({"order_id": [3], "segment": ["a"]}))
    table.refresh()
    snapshot = table.current_snapshot()
    assert snapshot is not None
    assert isinstance(rows_of(table, snapshot), pa.RecordBatchReader)
    # WHEN a query joins the table with itself (as a report compares two as_of snapshots)
    rows = run(
        resolver,
        "moves",
        "SELECT a.order_id, count(*) AS same FROM moves a JOIN moves b ON a.segment = b.segment GROUP BY 1",
    )
    # THEN both sides are read in full
    assert rows == [{"order_id": 1, "same": 2}, {"order_id": 2, "same": 1}, {"order_id": 3, "same": 2}]


def keyed(resolver: Catalog, lake: Lake) -> Table:
    """A keyed dataset (view ``keyed`` over ``keyed_sources``): order 2 in two sources, the newer corrected."""
    from handlers.adapters.views import latest_by_key_sql, put_keyed_view

    table = create(
        resolver,
        lake,
        "keyed_sources",
        NestedField(1, "order_id", LongType()),
        NestedField(2, "amount", DoubleType()),
        NestedField(3, "source_key", StringType()),
        NestedField(4, "ingested_at", LongType()),
    )
    table.append(
        pa.table(
            {
                "order_id": [1, 2, 2],
                "amount": [10.0, 20.0, 25.0],
                "source_key": ["raw/a.csv", "raw/a.csv", "raw/b.csv"],
                "ingested_at": [1, 1, 2],
            }
        )
    )
    columns = [("order_id", "bigint"), ("amount", "double"), ("source_key", "string"), ("ingested_at", "bigint")]
    sql = latest_by_key_sql(DATABASE, "keyed_sources", [c for c, _ in columns], ["order_id"])
    put_keyed_view(lake.glue, DATABASE, "keyed", sql, columns)
    return table


def test_a_keyed_views_dedupe_runs_once_for_every_statement_of_a_refresh(
    resolver: Catalog, lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a keyed dataset: order 2 in two sources, the newer one corrected
    keyed(resolver, lake)
    derived: list[str] = []
    derive = DuckDBEngine._view

    def counting(engine: DuckDBEngine, ref: Any) -> Any:
        if ref not in engine._views:
            derived.append(str(ref))
        return derive(engine, ref)

    monkeypatch.setattr(DuckDBEngine, "_view", counting)
    # WHEN two refreshers' statements read the view, one of them twice
    queries = RefreshQueries(DuckDBEngine(resolver, pinned=resolver.pin(["keyed"])))
    total = queries("SELECT sum(amount) AS total FROM keyed").to_pylist()
    pairs = queries("SELECT a.order_id, b.amount FROM keyed a JOIN keyed b ON a.order_id = b.order_id ORDER BY 1")
    # THEN each key is shown once, from its newest source, as the view says
    assert total == [{"total": 35.0}]
    assert pairs.to_pylist() == [{"order_id": 1, "amount": 10.0}, {"order_id": 2, "amount": 25.0}]
    # AND the view's dedupe ran once for both statements
    assert derived == [f"{DATABASE}.keyed"]
    # AND lake query, which pins nothing, reads the same rows through the view's SQL
    unpinned = DuckDBEngine(resolver).run("SELECT sum(amount) AS total FROM keyed").to_pylist()
    assert unpinned == total


def test_a_later_engine_of_the_refresh_reuses_a_view_only_while_its_tables_are_unchanged(
    resolver: Catalog, lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a keyed dataset whose view a refresh's engine computed
    table = keyed(resolver, lake)
    computed: list[str] = []
    run = DuckDBEngine._run

    def counting(engine: DuckDBEngine, sql: str, database: str, copy_to: Any = None) -> Any:
        if copy_to is not None:
            computed.append(sql)
        return run(engine, sql, database, copy_to)

    monkeypatch.setattr(DuckDBEngine, "_run", counting)
    refresh = DuckDBEngine(resolver, pinned=resolver.pin(["keyed"]))
    assert refresh.run("SELECT sum(amount) AS total FROM keyed").to_pylist() == [{"total": 35.0}]
    assert len(computed) == 1
    # WHEN the report's engine pins the same snapshots (and more tables) and reads the view
    report = DuckDBEngine(resolver, pinned=resolver.pin(["keyed", "keyed_sources"]), views_from=refresh)
    # THEN it reads the refresh's rows without computing the view again
    assert report.run("SELECT count(*) AS n, sum(amount) AS total FROM keyed").to_pylist() == [{"n": 2, "total": 35.0}]
    assert len(computed) == 1
    # WHEN a commit lands before the next engine pins
    table.append(pa.table({"order_id": [3], "amount": [5.0], "source_key": ["raw/c.csv"], "ingested_at": [3]}))
    later = DuckDBEngine(resolver, pinned=resolver.pin(["keyed"]), views_from=refresh)
    # THEN that engine computes the view again and sees the new rows
    assert later.run("SELECT count(*) AS n, sum(amount) AS total FROM keyed").to_pylist() == [{"n": 3, "total": 40.0}]
    assert len(computed) == 2


KEYED_COLUMNS = [
    ("order_id", "bigint"),
    ("line", "string"),
    ("amount", "double"),
    ("source_key", "string"),
    ("ingested_at", "bigint"),
]


def keyed_rows(
    resolver: Catalog, lake: Lake, rows: dict[str, list[Any]], key: tuple[str, ...] = ("order_id",)
) -> Table:
    """A keyed dataset (view ``keyed`` over ``keyed_sources``, keyed on ``key``) holding ``rows``."""
    table = create(
        resolver,
        lake,
        "keyed_sources",
        NestedField(1, "order_id", LongType()),
        NestedField(2, "line", StringType()),
        NestedField(3, "amount", DoubleType()),
        NestedField(4, "source_key", StringType()),
        NestedField(5, "ingested_at", LongType()),
    )
    table.append(pa.table({"line": [None] * len(rows["order_id"]), **rows}, schema=table.schema().as_arrow()))
    put_keyed(lake, key)
    return table


def put_keyed(lake: Lake, key: tuple[str, ...], columns: list[tuple[str, str]] = KEYED_COLUMNS) -> None:
    from handlers.adapters.views import latest_by_key_sql, put_keyed_view

    sql = latest_by_key_sql(DATABASE, "keyed_sources", [c for c, _ in columns], list(key))
    put_keyed_view(lake.glue, DATABASE, "keyed", sql, columns)


class Statements:
    """The statements an engine runs for itself: views computed (COPY), repeated keys looked for."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.computed: list[str] = []
        self.checked: list[str] = []
        run = DuckDBEngine._run

        def counting(engine: DuckDBEngine, sql: str, database: str, copy_to: Any = None) -> Any:
            if copy_to is not None:
                self.computed.append(sql)
            if "HAVING count(*) > 1" in sql:
                self.checked.append(sql)
            return run(engine, sql, database, copy_to)

        monkeypatch.setattr(DuckDBEngine, "_run", counting)


def test_a_keyed_view_whose_table_holds_each_key_once_is_read_as_its_table(
    resolver: Catalog, lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a keyed dataset whose two sources hold different orders, and two rows without an order id
    keyed_rows(
        resolver,
        lake,
        {
            "order_id": [1, 2, None, 3, None],
            "amount": [10.0, 20.0, 1.0, 30.0, 2.0],
            "source_key": ["raw/a.csv", "raw/a.csv", "raw/a.csv", "raw/b.csv", "raw/b.csv"],
            "ingested_at": [1, 1, 1, 2, 2],
        },
    )
    statements = Statements(monkeypatch)
    # WHEN a refresh's statements read the view, one of them every column
    refresh = DuckDBEngine(resolver, pinned=resolver.pin(["keyed"]))
    total = refresh.run("SELECT count(*) AS n, sum(amount) AS total FROM keyed").to_pylist()
    every = refresh.run("SELECT * FROM keyed ORDER BY amount")
    # THEN every row is shown, those without a key too, with the view's columns
    assert total == [{"n": 5, "total": 63.0}]
    assert every.column_names == ["order_id", "line", "amount", "source_key", "ingested_at"]
    assert every.column("amount").to_pylist() == [1.0, 2.0, 10.0, 20.0, 30.0]
    # AND the same rows as lake query, which runs the view's SQL as written, however a column is named
    assert DuckDBEngine(resolver).run("SELECT * FROM keyed ORDER BY amount").to_pylist() == every.to_pylist()
    qualified = "SELECT lake_curated.keyed.amount FROM lake_curated.keyed ORDER BY 1"
    assert refresh.run(qualified).column("amount").to_pylist() == [1.0, 2.0, 10.0, 20.0, 30.0]
    # AND no key was ranked: one look at the keys decided, for both statements
    assert statements.computed == []
    assert len(statements.checked) == 1
    # WHEN the report's engine pins the same snapshot and reads the view
    report = DuckDBEngine(resolver, pinned=resolver.pin(["keyed"]), views_from=refresh)
    # THEN it takes the refresh's answer instead of looking again
    assert report.run("SELECT count(*) AS n FROM keyed").to_pylist() == [{"n": 5}]
    assert len(statements.checked) == 1


@pytest.mark.parametrize(
    ("sources", "ingested"),
    [
        pytest.param(["raw/a.csv", "raw/b.csv"], [1, 2], id="a key in two sources"),
        pytest.param(["raw/a.csv", "raw/a.csv"], [1, 1], id="a key twice in one source"),
    ],
)
def test_a_keyed_view_whose_table_repeats_a_key_still_shows_it_once(
    resolver: Catalog, lake: Lake, monkeypatch: pytest.MonkeyPatch, sources: list[str], ingested: list[int]
) -> None:
    # GIVEN a keyed dataset that holds order 7 twice, and order 8 once
    keyed_rows(
        resolver,
        lake,
        {
            "order_id": [7, 7, 8],
            "amount": [70.0, 75.0, 80.0],
            "source_key": [*sources, "raw/a.csv"],
            "ingested_at": [*ingested, 1],
        },
    )
    statements = Statements(monkeypatch)
    # WHEN a refresh reads the view
    rows = run(resolver, "keyed", "SELECT order_id, amount FROM keyed")
    # THEN each order is shown once (the newer source's, where there is one)
    assert [r["order_id"] for r in rows] == [7, 8]
    if sources[0] != sources[1]:
        assert rows[0]["amount"] == 75.0
    # AND the view was computed, as written
    assert len(statements.computed) == 1


def test_a_keyed_view_on_two_columns_counts_a_repeat_only_where_both_match(
    resolver: Catalog, lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN order 1 with lines a and b, and order 2 twice without a line (a null in the key's second column)
    rows = {
        "order_id": [1, 1, 2, 2],
        "line": ["a", "b", None, None],
        "amount": [1.0, 2.0, 3.0, 4.0],
        "source_key": ["raw/a.csv", "raw/a.csv", "raw/a.csv", "raw/b.csv"],
        "ingested_at": [1, 1, 1, 2],
    }
    keyed_rows(resolver, lake, rows, key=("order_id", "line"))
    statements = Statements(monkeypatch)
    # WHEN a refresh reads the view
    rows_seen = run(resolver, "keyed", "SELECT order_id, line, amount FROM keyed")
    # THEN both lines of order 1 are shown, and order 2 once, from the newer source, as lake query shows them
    assert rows_seen == [
        {"order_id": 1, "line": "a", "amount": 1.0},
        {"order_id": 1, "line": "b", "amount": 2.0},
        {"order_id": 2, "line": None, "amount": 4.0},
    ]
    assert sorted(DuckDBEngine(resolver).run("SELECT amount FROM keyed").column("amount").to_pylist()) == [
        1.0,
        2.0,
        4.0,
    ]
    assert len(statements.computed) == 1


def test_a_later_engine_looks_again_when_the_snapshot_or_the_view_changed(
    resolver: Catalog, lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a refresh that found order 2 in two lines, keyed on (order_id, line): no key repeats
    rows = {
        "order_id": [1, 2, 2],
        "line": ["a", "a", "b"],
        "amount": [10.0, 20.0, 25.0],
        "source_key": ["raw/a.csv", "raw/a.csv", "raw/b.csv"],
        "ingested_at": [1, 1, 2],
    }
    table = keyed_rows(resolver, lake, rows, key=("order_id", "line"))
    statements = Statements(monkeypatch)
    refresh = DuckDBEngine(resolver, pinned=resolver.pin(["keyed"]))
    assert refresh.run("SELECT count(*) AS n FROM keyed").to_pylist() == [{"n": 3}]
    assert (len(statements.checked), len(statements.computed)) == (1, 0)
    # WHEN the dataset's key becomes the order alone (its settings changed), the table unchanged
    put_keyed(lake, ("order_id",))
    resolver.forget()
    later = DuckDBEngine(resolver, pinned=resolver.pin(["keyed"]), views_from=refresh)
    # THEN the later engine does not take the earlier answer: order 2 is shown once, from the newer source
    assert later.run("SELECT count(*) AS n, sum(amount) AS total FROM keyed").to_pylist() == [{"n": 2, "total": 35.0}]
    assert (len(statements.checked), len(statements.computed)) == (2, 1)
    # WHEN a commit adds a row of a new order under the first key
    put_keyed(lake, ("order_id", "line"))
    table.append(pa.table({"order_id": [3], "line": ["a"], "amount": [5.0], "source_key": ["raw/c.csv"],
                           "ingested_at": [3]}, schema=table.schema().as_arrow()))  # fmt: skip
    resolver.forget()
    after = DuckDBEngine(resolver, pinned=resolver.pin(["keyed"]), views_from=refresh)
    # THEN the engine looks at the keys of the new snapshot and shows the new row
    assert after.run("SELECT count(*) AS n FROM keyed").to_pylist() == [{"n": 4}]
    assert (len(statements.checked), len(statements.computed)) == (3, 1)
