"""The processing ledger ``lake_ops.processing_log``: one row per announced outcome, read back with
``lake query``'s engine (pyiceberg + DuckDB) from the Iceberg table the handlers append to."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from handlers.bootstrap import build_processor
from handlers.ledger import write_ledger
from handlers.settings import Settings
from lake.athena import run_query
from lake.runner import LocalContext
from lake.target import resolve
from tests.conftest import Lake
from tests.functional.conftest import (
    Invoke,
    InvokeRefresh,
    curated_rows,
    iceberg_table,
    next_messages,
    read_rows,
    refresh_messages,
)
from tests.functional.test_refresh import orders_csv

SALES = b"sku,region,amount\nA,north,10\nB,south,20\nC,east,30\nC,east,30\n"
SALES_V2 = b"sku,region,amount\nA,north,11\nB,south,21\n"


def ledger(lake: Lake) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = read_rows(lake, "lake_ops", "processing_log").to_pylist()
    return sorted(rows, key=lambda r: r["logged_at"])


def query(lake: Lake, sql: str) -> pa.Table:
    """What ``lake query SQL`` prints, as Arrow (the same target and engine)."""
    return run_query(resolve(endpoint_url=lake.endpoints.endpoint_url), sql)


def manual_queries() -> list[str]:
    """The example queries of docs/operations.md's ledger section."""
    page = (Path(__file__).parents[2] / "docs" / "operations.md").read_text()
    section = page.split("## The processing ledger", 1)[1]
    block = section.split("```sql\n", 1)[1].split("```", 1)[0]
    statements = [s.strip() for s in block.split(";") if s.strip()]
    return ["\n".join(line for line in s.splitlines() if not line.startswith("--")) for s in statements]


def file_events(lake: Lake, count: int) -> list[dict[str, Any]]:
    return lake.events(count, where=lambda e: e["detail-type"].startswith("Dataset Process"))


def test_each_file_outcome_is_one_ledger_row_with_the_events_counts(lake: Lake, invoke: Invoke) -> None:
    # GIVEN a file with a malformed line and a repeated row, processed; then a new version of the
    # same key; then the key deleted; and a file of a kind the lake does not read
    lake.put("settings/sales.json", b'{"tolerance": 0.5}')
    lake.put("raw/sales/sales.csv", SALES + b"D,west,40,extra\n")
    invoke(next_messages(lake))
    lake.put("raw/sales/sales.csv", SALES_V2)
    invoke(next_messages(lake))
    lake.s3.delete_object(Bucket=lake.bucket, Key="raw/sales/sales.csv")
    invoke(next_messages(lake))
    lake.put("raw/sales/notes.docx", b"not a table")
    invoke(next_messages(lake))
    events = [e["detail"] for e in file_events(lake, 4)]
    # WHEN the ledger is read back
    rows = ledger(lake)
    # THEN each announced outcome is exactly one row, with its status, in order
    assert [(r["kind"], r["status"], r["key"]) for r in rows] == [
        ("file", "processed", "raw/sales/sales.csv"),
        ("file", "replaced", "raw/sales/sales.csv"),
        ("file", "removed", "raw/sales/sales.csv"),
        ("file", "failed", "raw/sales/notes.docx"),
    ]
    assert [r["event_key"] for r in rows] == [e["event_key"] for e in events]
    # AND its counts are the completion event's
    for row, event in zip(rows, events, strict=True):
        assert row["dataset"] == event["dataset"] == "sales"
        assert row["rows_in"] == event["rows"]["input"]
        assert row["rows_quarantined"] == event["quarantine"]["rows"]
        assert json.loads(row["quarantined_by_reason"] or "{}") == event["quarantine"]["reasons"]
        assert row["duplicates"] == event["rows"]["duplicates"]
        assert row["bytes"] == event["source"]["size"]
        assert row["duration_ms"] == event["timings_ms"]["total"]
        assert row["version"] == event["source"]["version_id"]
        assert row["trigger"] == "s3-event"
        assert row["memory_mb"] == 1024 and row["request_id"]
        assert row["billed_duration_ms"] >= row["duration_ms"] > 0
        assert str(row["log_date"]) == row["logged_at"].date().isoformat()
    processed, replaced, removed, failed = rows
    assert (processed["rows_in"], processed["rows_quarantined"], processed["duplicates"]) == (5, 1, 1)
    assert processed["rows_written"] == sum(o["rows"] for o in events[0]["outputs"]) > 0
    assert replaced["rows_written"] == sum(o["rows"] for o in events[1]["outputs"])
    assert json.loads(processed["snapshot_ids"])["lake_curated.sales"] == next(
        o["snapshot_id"] for o in events[0]["outputs"] if o["table"] == "sales"
    )
    assert set(json.loads(processed["stage_ms"])) >= {"process", "commit"}
    assert removed["rows_written"] == 0
    assert (
        failed["error_type"] == events[3]["error"]["type"] and failed["error_message"] == events[3]["error"]["message"]
    )
    assert (processed["error_type"], processed["error_message"]) == (None, None)
    # AND `lake query` reads the same table by its qualified name
    counts = query(lake, "SELECT status, count(*) AS n FROM lake_ops.processing_log GROUP BY 1 ORDER BY 1")
    assert counts.to_pylist() == [
        {"status": "failed", "n": 1},
        {"status": "processed", "n": 1},
        {"status": "removed", "n": 1},
        {"status": "replaced", "n": 1},
    ]
    # AND every example query of the manual runs on it and finds what it is about
    for sql in manual_queries():
        assert query(lake, sql).num_rows > 0, sql
    # AND the table is partitioned by day, one Iceberg commit per invocation
    table = iceberg_table(lake, "lake_ops", "processing_log")
    assert [str(f.transform) for f in table.spec().fields] == ["identity"]
    assert len(table.snapshots()) == 4


def test_one_invocation_of_several_files_is_one_commit(lake: Lake, invoke: Invoke) -> None:
    # GIVEN three files in one batch
    for n in range(3):
        lake.put(f"raw/sales/part-{n}.csv", f"sku,region,amount\nP{n},north,{n}\n".encode())
    # WHEN one invocation processes them
    assert invoke(next_messages(lake, 3)) == {"batchItemFailures": []}
    # THEN the ledger holds three rows from one commit, all of the same invocation
    rows = ledger(lake)
    assert len(rows) == 3 and {r["status"] for r in rows} == {"processed"}
    assert len({r["request_id"] for r in rows}) == 1
    assert len(iceberg_table(lake, "lake_ops", "processing_log").snapshots()) == 1


def test_a_refresh_and_a_skipped_refresh_each_log_one_row(
    lake: Lake, invoke: Invoke, invoke_refresh: InvokeRefresh
) -> None:
    # GIVEN an orders file committed, which asks for a refresh
    rows = [(f"o{i}", f"c{i % 7}", f"2026-02-{1 + i % 28:02d}", 10.0 + i) for i in range(40)]
    lake.put("raw/orders/2026-02.csv", orders_csv(rows))
    invoke(next_messages(lake))
    # WHEN the refresh runs, then the same request is delivered again (nothing new: skipped)
    [request] = refresh_messages(lake)
    assert invoke_refresh([request]) == {"batchItemFailures": []}
    lake.sqs.send_message(
        QueueUrl=lake.endpoints.refresh_queue_url,
        MessageBody=request["Body"],
        MessageGroupId="orders",
        MessageDeduplicationId="again",
    )
    assert invoke_refresh(refresh_messages(lake)) == {"batchItemFailures": []}
    [updated] = lake.events(1, where=lambda e: e["detail-type"] == "Dataset Models Updated")
    detail = updated["detail"]
    # THEN the ledger has the file, the refresh and the skip, one row each
    log = [r for r in ledger(lake) if r["kind"] == "refresh"]
    assert [r["status"] for r in log] == ["refreshed", "skipped"]
    refreshed, skipped = log
    assert refreshed["event_key"] == detail["event_key"]
    assert refreshed["dataset"] == skipped["dataset"] == "orders"
    assert (refreshed["key"], refreshed["trigger"]) == ("raw/orders/2026-02.csv", "commit")
    assert (skipped["key"], skipped["trigger"]) == ("raw/orders/2026-02.csv", "commit")
    assert refreshed["rows_in"] == sum(i["rows"] for i in detail["inputs"]) > 0
    assert refreshed["rows_written"] == sum(o["rows"] for o in detail["outputs"]) > 0
    assert refreshed["duration_ms"] == detail["timings_ms"]["total"]
    assert json.loads(refreshed["snapshot_ids"]) == {
        f"{o['database']}.{o['table']}": o["snapshot_id"] for o in detail["outputs"]
    }
    # AND a refresh bills its invocation: at least its own time, rounded up to the millisecond
    assert refreshed["billed_duration_ms"] >= refreshed["duration_ms"]
    assert skipped["billed_duration_ms"] >= 1 and skipped["rows_written"] is None
    assert refreshed["request_id"] != skipped["request_id"]


def test_two_workers_appending_at_once_lose_no_row(lake: Lake, invoke: Invoke) -> None:
    # GIVEN the ledger exists, and eight files land together
    lake.put("raw/sales/seed.csv", SALES)
    invoke(next_messages(lake))
    for n in range(8):
        lake.put(f"raw/sales/part-{n}.csv", f"sku,region,amount\nP{n},north,{n}\n".encode())
    messages = next_messages(lake, 8)
    # WHEN two workers (two Lambda instances) each process a batch of four, then append their
    # ledger rows at the same moment, twice over (two invocations each)
    workers = [build_processor(Settings.from_env()) for _ in range(2)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    class Metrics:
        def __init__(self) -> None:
            self.names: list[str] = []

        def add_metric(self, name: str, unit: Any, value: float) -> None:
            self.names.append(name)

    metrics = Metrics()

    def work(number: int, worker: Any, batch: list[dict[str, Any]]) -> None:
        try:
            for half in (batch[:2], batch[2:]):
                worker.ledger.begin(LocalContext(f"worker-{number}", 60_000, 1024, "us-east-1"))
                for message in half:
                    worker.handle_body(message["Body"])
                barrier.wait()
                write_ledger(worker.ledger, logging.getLogger("worker"), metrics)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i, w, messages[i::2])) for i, w in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN every row landed (the append lost to the other was re-applied on fresh metadata), none twice
    assert errors == []
    assert "LedgerWriteFailures" not in metrics.names
    keys = sorted(r["key"] for r in ledger(lake))
    assert keys == sorted(["raw/sales/seed.csv", *(f"raw/sales/part-{n}.csv" for n in range(8))])
    assert len(iceberg_table(lake, "lake_ops", "processing_log").snapshots()) == 1 + 4


def test_a_ledger_that_cannot_be_written_never_fails_the_file(
    lake: Lake, invoke: Invoke, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN the ops database is gone (a stack where it was never deployed, or deleted by hand)
    lake.glue.delete_database(Name="lake_ops")
    # WHEN a file is processed
    lake.put("raw/sales/sales.csv", SALES)
    response = invoke(next_messages(lake))
    # THEN the file is committed, announced and acknowledged all the same
    assert response == {"batchItemFailures": []}
    assert len(curated_rows(lake, "sales")) == 4
    [event] = file_events(lake, 1)
    assert event["detail"]["status"] == "succeeded"
    # AND the log says what was lost and what to check; a metric counts it for an alarm
    [warning] = [r for r in caplog.records if "processing-log row" in r.getMessage()]
    assert warning.levelname == "WARNING"
    assert "1 processing-log row(s)" in warning.getMessage() and "Glue database lake_ops" in warning.getMessage()
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    counted = [m["LedgerWriteFailures"] for m in metrics if "LedgerWriteFailures" in m]
    assert counted in ([1.0], [[1.0]])  # EMF writes a metric added once as a value or a one-item list
