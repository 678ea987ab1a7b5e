"""Statements share the process's DuckDB database but never each other's names or settings."""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow as pa
import pytest

from query.catalog import Catalog
from query.errors import QueryError
from query.local import DuckDBEngine, run_on_catalog
from query.sql import TableRef
from tests.local_iceberg import FolderLake, local_table


def test_statements_at_once_in_two_lakes_each_read_their_own_table_of_the_same_name(tmp_path: Path) -> None:
    # GIVEN two lakes, each with a lake_curated.orders of its own
    ref = TableRef("lake_curated", "orders")
    lakes = {
        name: FolderLake(local={ref: local_table(tmp_path / name, ref, pa.table({"lake": [name] * size}))})
        for name, size in (("first", 3), ("second", 5))
    }
    question = "SELECT lake, count(*) AS n FROM orders GROUP BY lake"
    answers: dict[str, list[tuple[str, int]]] = {"first": [], "second": []}
    failures: list[BaseException] = []
    start = threading.Barrier(2)

    def ask(name: str) -> None:
        start.wait()
        try:
            for _ in range(20):
                rows = run_on_catalog(lakes[name], question, "lake_curated")
                answers[name].append(tuple(rows.to_pylist()[0].values()))  # type: ignore[arg-type]
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)

    # WHEN both ask at once, twenty times each
    threads = [threading.Thread(target=ask, args=(name,)) for name in lakes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN every answer is its own lake's, and no statement tripped over the other's schema or view
    assert failures == []
    assert answers == {"first": [("first", 3)] * 20, "second": [("second", 5)] * 20}


def test_a_memory_limit_applies_to_its_engine_and_not_to_one_without() -> None:
    catalog = Catalog(glue=None, database="lake_curated")
    limited = DuckDBEngine(catalog, pinned={}, memory_limit_mb=256)
    unlimited = DuckDBEngine(catalog, pinned={})
    setting = "SELECT current_setting('memory_limit') AS limit"
    # DuckDB shows 256 MB (10^6 bytes) in MiB
    assert limited(setting).column("limit").to_pylist() == ["244.1 MiB"]
    assert unlimited(setting).column("limit").to_pylist() != ["244.1 MiB"]
    # AND the limit stays with its engine whatever ran in between
    assert limited(setting).column("limit").to_pylist() == ["244.1 MiB"]


def test_a_statement_sees_utc_and_leaves_no_catalog_behind() -> None:
    engine = DuckDBEngine(Catalog(glue=None, database="lake_curated"), pinned={})
    assert engine("SELECT current_setting('TimeZone') AS tz").column("tz").to_pylist() == ["UTC"]
    before = engine("SELECT count(*) AS n FROM duckdb_databases()").column("n").to_pylist()
    for _ in range(5):
        engine("SELECT 1 AS one")
    # the catalog each statement worked in is gone once it answered
    assert engine("SELECT count(*) AS n FROM duckdb_databases()").column("n").to_pylist() == before


def test_a_statement_that_fails_says_why_and_leaves_no_catalog_behind() -> None:
    engine = DuckDBEngine(Catalog(glue=None, database="lake_curated"), pinned={})
    count = "SELECT count(*) AS n FROM duckdb_databases()"
    before = engine(count).column("n").to_pylist()
    for _ in range(3):
        with pytest.raises(QueryError, match="no_such_function"):
            engine("SELECT no_such_function(1) AS x")
    assert engine(count).column("n").to_pylist() == before
