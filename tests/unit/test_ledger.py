"""The ledger's rows from announced details, and its billed-duration estimate (no network: the
table writer is a fake that keeps what it was given)."""

from __future__ import annotations

import logging
import time
from typing import Any

import pyarrow as pa
import pytest

from handlers.adapters.ledger import LEDGER_WRITE_MARGIN_MS, PROCESSING_LOG, Ledger, write_ledger
from lake.standin.runner import LocalContext


class FakeTables:
    """Stands in for ``IcebergTables.append_rows``: keeps the appended rows, or refuses."""

    def __init__(self, refuse: bool = False) -> None:
        self.appended: list[pa.Table] = []
        self.refuse = refuse

    def append_rows(self, database: str, prefix: str, spec: Any, rows: pa.Table, summary: dict[str, str]) -> Any:
        if self.refuse:
            raise PermissionError("AccessDenied: glue:UpdateTable")
        self.appended.append(rows)
        return type("Committed", (), {"rows": rows.num_rows})()


class Metrics:
    def __init__(self) -> None:
        self.added: dict[str, float] = {}

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        self.added[name] = value


def models_detail(total_ms: float, status: str = "succeeded") -> dict[str, Any]:
    return {
        "event_key": f"k{total_ms}",
        "status": status,
        "dataset": "orders",
        "inputs": [{"database": "lake_curated", "table": "orders_sources", "snapshot_id": 1, "rows": 10, "bytes": 99}],
        "requested_by": [{"key": "raw/orders/a.csv", "version": "v1", "reason": "commit"}],
        "outputs": [{"database": "lake_curated", "table": "customer_rfm", "snapshot_id": 5, "rows": 3}],
        "timings_ms": {"total": total_ms, "pin": 1.0},
    }


def test_refreshes_share_the_invocation_in_proportion_to_their_durations() -> None:
    # GIVEN an invocation of two refreshes, one three times as long as the other
    tables = FakeTables()
    ledger = Ledger(tables, "lake_ops")  # type: ignore[arg-type]
    ledger.begin(LocalContext("lake-refresh", 60_000, 3008, "us-east-1"))
    ledger.refresh(models_detail(100.0))
    ledger.refresh(models_detail(300.0))
    time.sleep(0.05)  # the invocation lasts at least 50 ms
    # WHEN its rows are written
    write_ledger(ledger, logging.getLogger("test"), Metrics())
    [table] = tables.appended
    rows = table.to_pylist()
    # THEN together they bill the whole invocation, three to one, rounded up to the millisecond
    short, long = (r["billed_duration_ms"] for r in rows)
    assert short >= 12 and long >= 3 * short - 3
    assert {r["memory_mb"] for r in rows} == {3008}
    assert table.schema.equals(PROCESSING_LOG.schema)
    assert [r["status"] for r in rows] == ["refreshed", "refreshed"]
    assert rows[0]["rows_in"] == 10 and rows[0]["rows_written"] == 3 and rows[0]["bytes"] == 99


def test_a_refused_write_is_a_warning_and_metrics_never_an_exception(caplog: pytest.LogCaptureFixture) -> None:
    ledger = Ledger(FakeTables(refuse=True), "lake_ops")  # type: ignore[arg-type]
    ledger.begin(LocalContext("lake-refresh", 60_000, 3008, "us-east-1"))
    ledger.refresh(models_detail(10.0, status="failed"))
    metrics = Metrics()
    write_ledger(ledger, logging.getLogger("test"), metrics)
    assert metrics.added == {"LedgerWriteFailures": 1, "LedgerRowsLost": 1}
    [record] = caplog.records
    assert record.levelname == "WARNING"
    assert "1 processing-log row(s)" in record.getMessage() and "AccessDenied" in record.getMessage()
    # AND the next invocation starts with no leftover rows
    assert ledger.pending == []


def file_detail(event_key: str, change: str = "created") -> dict[str, Any]:
    return {
        "event_key": event_key,
        "status": "succeeded",
        "change": change,
        "dataset": "sales",
        "source": {"key": f"raw/sales/{event_key}.csv", "version_id": "v1", "size": 2_000_000, "trigger": "s3-event"},
        "outputs": [
            {"database": "lake_curated", "table": "sales", "snapshot_id": 7, "rows": 0 if change == "unchanged" else 5}
        ],
        "quarantine": {"rows": 0, "reasons": {}},
        "rows": {"input": 5, "duplicates": 0},
        "timings_ms": {"total": 40.0},
    }


def test_an_outcome_replayed_in_the_invocation_that_announced_it_is_one_row() -> None:
    tables = FakeTables()
    ledger = Ledger(tables, "lake_ops")  # type: ignore[arg-type]
    ledger.begin(LocalContext("lake-processor", 60_000, 1024, "us-east-1"))
    ledger.file(file_detail("a"))  # announced
    ledger.file_once(file_detail("a"))  # the same outcome, returned to its own record
    ledger.file_once(file_detail("b"))  # replayed from an earlier invocation: not announced here
    ledger.file_once(file_detail("b"))  # the same message twice in the batch
    write_ledger(ledger, logging.getLogger("test"), Metrics())
    [table] = tables.appended
    assert table.column("event_key").to_pylist() == ["a", "b"]


def test_a_stale_version_is_unchanged_and_wrote_nothing() -> None:
    tables = FakeTables()
    ledger = Ledger(tables, "lake_ops")  # type: ignore[arg-type]
    ledger.begin(LocalContext("lake-processor", 60_000, 1024, "us-east-1"))
    ledger.file(file_detail("a", change="unchanged"))
    write_ledger(ledger, logging.getLogger("test"), Metrics())
    [row] = tables.appended[0].to_pylist()
    assert (row["status"], row["rows_written"]) == ("unchanged", 0)


def test_too_little_time_left_skips_the_write_with_a_warning_and_metrics(caplog: pytest.LogCaptureFixture) -> None:
    tables = FakeTables()
    ledger = Ledger(tables, "lake_ops")  # type: ignore[arg-type]
    ledger.begin(LocalContext("lake-processor", LEDGER_WRITE_MARGIN_MS - 1, 1024, "us-east-1"))
    ledger.file(file_detail("a"))
    ledger.file(file_detail("b"))
    metrics = Metrics()
    write_ledger(ledger, logging.getLogger("test"), metrics)
    assert tables.appended == []
    assert metrics.added == {"LedgerWriteSkipped": 1, "LedgerRowsLost": 2}
    [record] = caplog.records
    assert record.levelname == "WARNING" and "2 processing-log row(s)" in record.getMessage()
    # AND the next invocation starts afresh: its rows are its own
    ledger.begin(LocalContext("lake-processor", 60_000, 1024, "us-east-1"))
    ledger.file(file_detail("c"))
    write_ledger(ledger, logging.getLogger("test"), Metrics())
    assert tables.appended[0].column("event_key").to_pylist() == ["c"]
