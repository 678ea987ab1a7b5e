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

from handlers import process
from handlers.adapters.ledger import LEDGER_WRITE_MARGIN_MS, write_ledger
from handlers.bootstrap import build_processor
from handlers.settings import Settings
from lake.cli.report import draw_ops
from lake.engine import run_query
from lake.standin.runner import LocalContext, lambda_sqs_event
from lake.target import resolve
from tests.conftest import Lake, wait_until
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
from tests.unit.test_reports import num, table_with

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
    # THEN every row landed, none twice
    assert errors == []
    assert "LedgerWriteFailures" not in metrics.names
    keys = sorted(r["key"] for r in ledger(lake))
    assert keys == sorted(["raw/sales/seed.csv", *(f"raw/sales/part-{n}.csv" for n in range(8))])
    # AND the four appends landed in at most four commits (appends that meet are grouped into one),
    # each append in exactly one snapshot
    snapshots = iceberg_table(lake, "lake_ops", "processing_log").snapshots()[1:]
    assert 2 <= len(snapshots) <= 4
    held = [i for s in snapshots for i in s.summary.additional_properties["lake.intents"].split(",")]
    assert len(held) == len(set(held)) == 4


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


# --- review findings (issue 13, part 2): rows lost on a crash, the time budget, unchanged, duplicates ---


class Recorded:
    """Powertools' ``Metrics.add_metric`` as the handlers call it: keeps each metric's values."""

    def __init__(self) -> None:
        self.added: dict[str, list[float]] = {}

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        self.added.setdefault(name, []).append(value)


def emitted(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """The metrics the handler wrote in the embedded metric format (one EMF blob per invocation, merged)."""
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    return {k: v for blob in blobs for k, v in blob.items() if k[:1].isupper()}


def redeliver(lake: Lake, message: dict[str, Any]) -> dict[str, Any]:
    """The message again, as SQS delivers it once its visibility timeout ran out unacknowledged."""
    lake.sqs.change_message_visibility(
        QueueUrl=lake.endpoints.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )
    [again] = next_messages(lake)
    assert again["MessageId"] == message["MessageId"] and again["Attributes"]["ApproximateReceiveCount"] == "2"
    return again


def invoke_unacknowledged(lake: Lake, messages: list[dict[str, Any]], timeout_ms: int = 60_000) -> dict[str, Any]:
    """The function on a batch, without the poller's deletes afterwards (lost, or the poller died)."""
    event = lambda_sqs_event(messages, lake.endpoints.queue_arn, lake.endpoints.region)
    context = LocalContext("lake-processor", timeout_ms, 1024, lake.endpoints.region)
    return dict(process.lambda_handler(event, context))  # type: ignore[arg-type]


def ops_page(lake: Lake) -> str:
    """What `lake report ops` draws from the ledger as it stands."""
    return draw_ops(resolve(endpoint_url=lake.endpoints.endpoint_url)).html


def test_a_file_whose_invocation_died_before_its_ledger_write_is_logged_on_redelivery(
    lake: Lake, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a file committed and announced by an invocation that was killed (timeout, out of
    # memory) after the record and before its ledger write, so its message was never acknowledged
    lake.put("raw/sales/sales.csv", SALES)
    [message] = next_messages(lake)
    killed = process._get_processor()
    context = LocalContext("lake-processor", 60_000, 1024, lake.endpoints.region)
    killed.register_context(context)
    assert killed.ledger is not None
    killed.ledger.begin(context)
    killed.handle_body(message["Body"])
    [event] = file_events(lake, 1)
    assert ledger(lake) == []
    # WHEN SQS delivers the message again to a new execution environment
    monkeypatch.setattr(process, "_processor", None)
    assert invoke([redeliver(lake, message)]) == {"batchItemFailures": []}
    # THEN idempotency replays the saved outcome without announcing it again
    assert lake.settled_events(where=lambda e: e["detail-type"].startswith("Dataset Process")) == []
    # AND the ledger has the file's row all the same, with the announced event's facts
    [row] = ledger(lake)
    assert (row["status"], row["key"], row["event_key"]) == (
        "processed",
        "raw/sales/sales.csv",
        event["detail"]["event_key"],
    )
    assert row["rows_in"] == event["detail"]["rows"]["input"] == 4
    assert row["duration_ms"] == event["detail"]["timings_ms"]["total"]
    assert row["request_id"] and row["request_id"] != context.aws_request_id


def test_a_redelivered_outcome_logged_twice_counts_once_in_the_ops_report(lake: Lake, invoke: Invoke) -> None:
    # GIVEN a file processed and logged by an invocation whose message was not acknowledged (the
    # poller's delete was lost), so SQS delivered it again and the replayed outcome was logged again
    lake.put("raw/sales/sales.csv", SALES)
    [message] = next_messages(lake)
    assert invoke_unacknowledged(lake, [message]) == {"batchItemFailures": []}
    assert invoke([redeliver(lake, message)]) == {"batchItemFailures": []}
    rows = ledger(lake)
    assert len(rows) == 2 and len({r["event_key"] for r in rows}) == 1 and len({r["request_id"] for r in rows}) == 2
    # WHEN the ops report is drawn from the ledger
    html = ops_page(lake)
    # THEN the file counts once: in files per day, in time per MB and in cost per GB
    [day] = table_with(html, "rows written")
    assert (num(day["processed"]), num(day["rows read"])) == (1, 4)
    [speed] = table_with(html, "seconds per MB")
    assert num(speed["files"]) == 1
    assert num(speed["seconds"]) == pytest.approx(rows[0]["duration_ms"] / 1000, abs=0.05)
    [cost] = table_with(html, "US$ per GB")
    assert (cost["kind"], num(cost["entries"])) == ("file", 1)


def test_a_stale_version_is_logged_unchanged_and_left_out_of_speed_and_cost(lake: Lake, invoke: Invoke) -> None:
    # GIVEN two versions of a key uploaded before either is processed, delivered in one batch
    lake.put("raw/sales/sales.csv", SALES)
    lake.put("raw/sales/sales.csv", SALES_V2)
    assert invoke(next_messages(lake, 2)) == {"batchItemFailures": []}
    # THEN the older version is logged as unchanged (it wrote nothing), the newer as processed
    rows = {r["status"]: r for r in ledger(lake)}
    assert sorted(rows) == ["processed", "unchanged"]
    assert rows["unchanged"]["rows_written"] == 0 and rows["unchanged"]["bytes"] == len(SALES)
    assert rows["processed"]["bytes"] == len(SALES_V2) and rows["processed"]["rows_written"] > 0
    # AND the ops report counts it as its own series of files per day
    html = ops_page(lake)
    [day] = table_with(html, "rows written")
    assert (num(day["processed"]), num(day["unchanged"])) == (1, 1)
    # AND leaves it out of the time per MB and the cost per GB: only the processed file's work is there
    [speed] = table_with(html, "seconds per MB")
    assert num(speed["files"]) == 1
    assert num(speed["seconds"]) == pytest.approx(rows["processed"]["duration_ms"] / 1000, abs=0.05)
    [cost] = table_with(html, "US$ per GB")
    assert num(cost["entries"]) == 1


def test_an_invocation_near_its_timeout_skips_the_ledger_write(
    lake: Lake, invoke: Invoke, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a ledger with one row, and a second file
    lake.put("raw/sales/first.csv", SALES)
    invoke(next_messages(lake))
    assert len(ledger(lake)) == 1
    capsys.readouterr()
    lake.put("raw/sales/second.csv", SALES_V2)
    # WHEN it is processed by an invocation with less time left than the ledger's margin
    response = invoke_unacknowledged(lake, next_messages(lake), timeout_ms=LEDGER_WRITE_MARGIN_MS - 1_000)
    # THEN the file is committed, announced and acknowledged
    assert response == {"batchItemFailures": []}
    announced = {e["detail"]["source"]["key"]: e["detail"]["status"] for e in file_events(lake, 2)}
    assert announced == {"raw/sales/first.csv": "succeeded", "raw/sales/second.csv": "succeeded"}
    # AND the ledger write was skipped rather than risk the timeout: a warning says why, metrics count it
    assert [r["key"] for r in ledger(lake)] == ["raw/sales/first.csv"]
    [warning] = [r for r in caplog.records if "processing-log row" in r.getMessage()]
    assert warning.levelname == "WARNING" and f"margin of {LEDGER_WRITE_MARGIN_MS} ms" in warning.getMessage()
    metrics = emitted(capsys)
    assert metrics["LedgerWriteSkipped"] in (1.0, [1.0]) and metrics["LedgerRowsLost"] in (1.0, [1.0])
    assert "LedgerRows" not in metrics


def test_an_outcome_whose_row_cannot_be_built_is_still_announced(
    lake: Lake, invoke: Invoke, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a publisher of the function, and an outcome the ledger cannot make a row of
    lake.put("raw/sales/sales.csv", SALES)
    invoke(next_messages(lake))
    [event] = file_events(lake, 1)
    worker = build_processor(Settings.from_env())
    assert worker.ledger is not None
    worker.ledger.begin(LocalContext("lake-processor", 60_000, 1024, lake.endpoints.region))
    odd = {**event["detail"], "event_key": "odd", "timings_ms": {"total": "n/a"}}
    # WHEN it is published
    worker.publisher.publish(odd)
    # THEN the event went out and publishing did not fail the record
    assert wait_until(
        lambda: any(
            json.loads(m["Body"])["detail"]["event_key"] == "odd"
            for m in lake.receive(lake.endpoints.subscriber_queue_url, wait=1)
        )
    )
    # AND the log says the row is lost, and the invocation's metrics count it
    assert any("could not be built" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)
    metrics = Recorded()
    write_ledger(worker.ledger, logging.getLogger("test"), metrics)
    assert metrics.added == {"LedgerRowErrors": [1], "LedgerRowsLost": [1]}
