"""The Lambda handler, called in-process with real SQS messages from the moto server."""

from __future__ import annotations

import gzip
import json
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from handlers.events import process_request_body
from handlers.stages.object_processor import ObjectProcessor
from lake.standin.server import client
from query.fileio import RECENT
from tests.conftest import Lake, wait_until
from tests.functional.conftest import (
    Invoke,
    curated_rows,
    data_files,
    iceberg_table,
    next_messages,
    quarantine_rows,
    send,
)

GOOD_CSV = (
    b"Order ID;Customer ID;Amount;Order Date\n"
    b"A-1;00042;19.90;2026-10-01\n"
    b"A-2;00043;5;2026-10-02\n"
    b"A-2;00043;5;2026-10-02\n"
    b"A-3;00044; 7.25 ;2026-10-03\n"
)


def test_a_csv_becomes_a_catalogued_parquet_table_and_one_event(lake: Lake, invoke: Invoke) -> None:
    # GIVEN a semicolon CSV with a repeated row lands in raw/orders_export/
    lake.put("raw/orders_export/2026-10.csv", GOOD_CSV)
    # WHEN the handler processes the routed message
    response = invoke(next_messages(lake))
    # THEN the message is acknowledged, the rows are typed and trimmed; the repeated row is kept
    # (identical rows are real rows unless the dataset opts into dropping them)
    assert response == {"batchItemFailures": []}
    rows = sorted(curated_rows(lake, "orders_export"), key=lambda r: r["order_id"])
    assert [(r["order_id"], r["customer_id"], r["amount"]) for r in rows] == [
        ("A-1", "00042", 19.9),
        ("A-2", "00043", 5.0),
        ("A-2", "00043", 5.0),
        ("A-3", "00044", 7.25),
    ]
    # AND every row names its source: the raw key, its version, a short id and when it landed
    version = lake.s3.head_object(Bucket=lake.bucket, Key="raw/orders_export/2026-10.csv")["VersionId"]
    assert {(r["source_key"], r["source_version"]) for r in rows} == {("raw/orders_export/2026-10.csv", version)}
    assert all(r["source_id"] and r["ingested_at"] for r in rows)
    # AND the table is an Iceberg table in the Glue catalog, partitioned (hidden) by ingest date
    table = lake.glue.get_table(DatabaseName="lake_curated", Name="orders_export")["Table"]
    assert table["Parameters"]["table_type"] == "ICEBERG"
    iceberg = iceberg_table(lake, "lake_curated", "orders_export")
    assert iceberg.schema().column_names == [
        "order_id", "customer_id", "amount", "order_date", "ingest_date",
        "source_key", "source_version", "source_id", "ingested_at",
    ]  # fmt: skip
    assert [str(f.transform) for f in iceberg.spec().fields] == ["identity"]
    # AND one completion event tells what happened, naming the snapshot that holds the rows
    [event] = lake.events(1)
    assert event["detail-type"] == "Dataset Processed"
    assert event["source"] == "lake.processor"
    detail = event["detail"]
    assert detail["rows"] == {
        "input": 4,
        "duplicates": 1,
        "duplicates_dropped": 0,
        "rejected": 0,
        "lines": 4,
        "multiline": 0,
        "preamble": 0,
        "summary": 0,
        "footer": 0,
    }
    assert detail["change"] == "created"
    assert detail["outputs"][0]["rows"] == 4
    assert detail["outputs"][0]["snapshot_id"] == iceberg.current_snapshot().snapshot_id
    assert detail["source"]["key"] == "raw/orders_export/2026-10.csv"
    assert detail["source"]["version_id"] == version


def test_exact_duplicates_are_dropped_when_the_dataset_opts_in(lake: Lake, invoke: Invoke) -> None:
    lake.put("settings/orders_export.json", b'{"drop_duplicates": true}')
    lake.put("raw/orders_export/2026-10.csv", GOOD_CSV)
    invoke(next_messages(lake))
    assert len(curated_rows(lake, "orders_export")) == 3
    [event] = lake.events(1)
    assert event["detail"]["rows"] == {
        "input": 4,
        "duplicates": 1,
        "duplicates_dropped": 1,
        "rejected": 0,
        "lines": 4,
        "multiline": 0,
        "preamble": 0,
        "summary": 0,
        "footer": 0,
    }


@contextmanager
def recording(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """Every request the stand-in answers inside the block (moto's recorder), in the list once it ends."""
    from moto.moto_api._internal.recorder.models import Recorder

    # moto's recorder appends a request and its newline in two writes, from each server thread:
    # requests answered at once (a commit's files go up in parallel) would share lines
    record = Recorder._record_request
    one_at_a_time = threading.Lock()

    def record_alone(self: Recorder, *args: Any, **kwargs: Any) -> None:
        with one_at_a_time:
            record(self, *args, **kwargs)

    monkeypatch.setattr(Recorder, "_record_request", record_alone)
    recorder = f"{lake.endpoints.endpoint_url}/moto-api/recorder"

    def ask(step: str) -> None:
        with urllib.request.urlopen(urllib.request.Request(f"{recorder}/{step}", method="POST")):
            pass

    recorded: list[dict[str, Any]] = []
    ask("reset-recording")
    ask("start-recording")
    try:
        yield recorded
    finally:
        ask("stop-recording")
    with urllib.request.urlopen(f"{recorder}/download-recording") as answer:
        recorded.extend(json.loads(line) for line in answer.read().splitlines() if line.strip())


def s3_requests(lake: Lake, recorded: list[dict[str, Any]]) -> list[tuple[str, urllib.parse.SplitResult]]:
    """The recorded requests to the lake's bucket (its objects and its listings): method and URL."""
    return [
        (r["method"], url)
        for r in recorded
        if (url := urllib.parse.urlsplit(r["url"])).path.startswith(f"/{lake.bucket}/") or url.path == f"/{lake.bucket}"
    ]


def test_a_commit_writes_each_of_its_files_in_one_s3_request(
    lake: Lake, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the stand-in recording every request it answers
    with recording(lake, monkeypatch) as recorded:
        # WHEN a file is processed: its data files staged, then committed to its tables
        lake.put("raw/orders_export/2026-10.csv", GOOD_CSV)
        assert invoke(next_messages(lake)) == {"batchItemFailures": []}
    writes = [(method, url) for method, url in s3_requests(lake, recorded) if method in ("PUT", "POST")]
    # THEN every file (data, manifests, manifest lists, table metadata) went up in one PUT: none of them
    # as a multipart upload (create, part, complete: three requests billed for a few kilobytes)
    assert [(method, url.path) for method, url in writes if "upload" in url.query.lower()] == []
    assert {method for method, _ in writes} == {"PUT"}
    written = [url.path for _, url in writes]
    assert any(path.endswith(".metadata.json") for path in written)
    assert any(path.endswith(".avro") for path in written)
    assert any(path.endswith(".parquet") for path in written)


def test_a_warm_function_commits_without_asking_s3_about_files_it_wrote(
    lake: Lake, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a function that has processed one file of the dataset (and so loaded its tables once)
    lake.put("raw/orders_export/2026-10.csv", GOOD_CSV)
    assert invoke(next_messages(lake)) == {"batchItemFailures": []}
    # WHEN the next file of the dataset lands on the same, warm function
    with recording(lake, monkeypatch) as recorded:
        lake.put("raw/orders_export/2026-11.csv", GOOD_CSV.replace(b"A-", b"B-").replace(b"2026-10", b"2026-11"))
        assert invoke(next_messages(lake)) == {"batchItemFailures": []}
    # THEN it commits without reading back a table's metadata, manifest list or manifests it wrote
    # itself (they never change: read once per process), without asking whether the new metadata
    # file exists (its name is new) or how long a manifest it has just written is, and without
    # asking Glue again whether the database is an S3 Tables one
    iceberg_files = [
        (method, url.path)
        for method, url in s3_requests(lake, recorded)
        if url.path.endswith((".metadata.json", ".avro")) and method != "PUT"
    ]
    assert iceberg_files == []
    metadata_puts = [url.path for method, url in s3_requests(lake, recorded) if url.path.endswith(".metadata.json")]
    assert metadata_puts  # it did commit
    listings = [url.query for method, url in s3_requests(lake, recorded) if "list-type" in url.query]
    assert listings  # the bucket's own listings are recorded too, so the next check can fail
    assert [q for q in listings if "metadata" in urllib.parse.unquote(q)] == []
    # AND, the table being idle (no other worker's intent flagged on its lease), without listing
    # pending intents: grouping costs a lone file the lease's two writes, nothing more
    assert [q for q in listings if "intents" in urllib.parse.unquote(q)] == []
    # AND without reading back a data file it has just written: their lengths and footers travel with
    # the commit (pyiceberg's add_files would HEAD each and GET its footer)
    data_files = [url.path for method, url in s3_requests(lake, recorded) if url.path.endswith(".parquet")]
    assert data_files and {m for m, url in s3_requests(lake, recorded) if url.path.endswith(".parquet")} == {"PUT"}
    targets = [r["headers"].get("X-Amz-Target", "") for r in recorded]
    assert "AWSGlue.GetDatabase" not in targets
    assert targets.count("AWSGlue.UpdateTable") >= 1
    # AND a reader with nothing in memory, as a new process, sees both files, reading each Iceberg file
    # it needs once (pyarrow asks its size with a HEAD, then GETs all of it)
    RECENT.clear()
    with recording(lake, monkeypatch) as reads:
        rows = curated_rows(lake, "orders_export")
    iceberg_reads = [
        (method, url.path) for method, url in s3_requests(lake, reads) if url.path.endswith((".metadata.json", ".avro"))
    ]
    paths = {path for _, path in iceberg_reads}
    assert any(path.endswith(".metadata.json") for path in paths) and any(path.endswith(".avro") for path in paths)
    assert sorted(iceberg_reads) == sorted((method, path) for path in paths for method in ("GET", "HEAD"))
    assert {r["order_id"] for r in rows} == {"A-1", "A-2", "A-3", "B-1", "B-2", "B-3"}


def test_the_same_object_delivered_twice_is_processed_once(lake: Lake, invoke: Invoke) -> None:
    lake.put("raw/orders_export/2026-10.csv", GOOD_CSV)
    [message] = next_messages(lake)
    invoke([message])
    before = {k: lake.s3.head_object(Bucket=lake.bucket, Key=k)["ETag"] for k in lake.keys("curated/")}
    assert before
    # WHEN the same event arrives again (at-least-once delivery)
    send(lake, message["Body"])
    assert invoke(next_messages(lake)) == {"batchItemFailures": []}
    # THEN curated data is unchanged and only one completion event was published
    after = {k: lake.s3.head_object(Bucket=lake.bucket, Key=k)["ETag"] for k in lake.keys("curated/")}
    assert after == before
    assert len(lake.settled_events()) == 1


def test_a_copy_that_meets_its_original_still_at_work_is_a_batch_item_failure_not_a_failed_invocation(
    lake: Lake, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an invocation at work on a file (held inside its work until the copy has been handled)
    lake.put("raw/orders_export/2026-10.csv", GOOD_CSV)
    [message] = next_messages(lake)
    go_on = threading.Event()
    original_work = ObjectProcessor._under_lease

    def held(self: ObjectProcessor, *args: Any) -> dict[str, Any]:
        go_on.wait(120)
        return original_work(self, *args)

    monkeypatch.setattr(ObjectProcessor, "_under_lease", held)
    first: list[dict[str, Any]] = []
    worker = threading.Thread(target=lambda: first.append(invoke([message])))
    worker.start()
    try:
        assert wait_until(lambda: in_progress_records(lake) == 1, timeout=120, every=0.05)
        # WHEN SQS delivers a copy of its message, alone in its batch, to another invocation
        copy = message | {"MessageId": "copy-1", "ReceiptHandle": "copy-1"}
        response = invoke([copy])
    finally:
        go_on.set()
        worker.join(120)
    # THEN the copy is a batch item failure (SQS delivers it again later), not an invocation error
    assert response == {"batchItemFailures": [{"itemIdentifier": "copy-1"}]}
    # AND the original lands and is announced once; the copy announced nothing
    assert first == [{"batchItemFailures": []}]
    [event] = lake.settled_events()
    assert event["detail"]["status"] == "succeeded"


def test_a_reprocess_request_replaces_the_same_rows_in_one_commit(lake: Lake, invoke: Invoke) -> None:
    lake.put("raw/orders_export/2026-10.csv", GOOD_CSV)
    invoke(next_messages(lake))
    before = curated_rows(lake, "orders_export")
    snapshots = len(iceberg_table(lake, "lake_curated", "orders_export").snapshots())
    send(
        lake,
        process_request_body(lake.bucket, "raw/orders_export/2026-10.csv", reason="backfill", request_id="r1"),
    )
    assert invoke(next_messages(lake)) == {"batchItemFailures": []}
    # THEN the same rows (lineage included), not twice, and the table has the replace as its latest change
    assert sorted(curated_rows(lake, "orders_export"), key=str) == sorted(before, key=str)
    table = iceberg_table(lake, "lake_curated", "orders_export")
    assert len(table.snapshots()) > snapshots
    assert len(data_files(lake, "orders_export")) >= 1
    assert len(table.inspect.files()) == 1
    events = lake.events(2)
    assert [e["detail"]["source"]["trigger"] for e in events] == ["s3-event", "process-request"]
    assert [e["detail"]["change"] for e in events] == ["created", "replaced"]


@pytest.mark.parametrize(
    "key",
    ["raw/web sessions/Q3 report+final %20 é.csv", "raw/ünïcode/naïve café.csv"],
)
def test_keys_with_spaces_plus_percent_and_non_ascii_work_raw_or_url_encoded(
    lake: Lake, invoke: Invoke, key: str
) -> None:
    from urllib.parse import quote_plus

    lake.put(key, GOOD_CSV)
    [message] = next_messages(lake)
    invoke([message])
    # The same object named URL-encoded, as S3 notifications do, is the same object (idempotent).
    body = json.loads(message["Body"])
    body["detail"]["object"]["key"] = quote_plus(key, safe="/")
    send(lake, json.dumps(body))
    assert invoke(next_messages(lake)) == {"batchItemFailures": []}
    events = lake.settled_events()
    assert [e["detail"]["status"] for e in events] == ["succeeded"]
    assert events[0]["detail"]["source"]["key"] == key


def _truncated_gzip() -> bytes:
    rows = "".join(f"{i},{i * 7919 % 104729}\n" for i in range(50_000))
    data = gzip.compress(("a,b\n" + rows).encode())
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("name", "body", "fragment"),
    [
        ("empty.csv", b"", "is empty"),
        ("header-only.csv", b"id,amount\n", "no data rows"),
        ("junk.csv", bytes(range(256)) * 16, "binary data"),
        ("surrogate.csv", b"\xff\xfe" + "a;b\r\n1;".encode("utf-16-le") + b"\x00\xd8;\x00", "not valid utf-16"),
        ("cut.csv.gz", _truncated_gzip(), "gzip data"),
        ("report.xlsx", b"PK\x03\x04", "damaged or truncated workbook"),
        ("report.numbers", b"PK\x03\x04", "extension is not one the processor reads"),
    ],
)
def test_a_bad_file_is_acknowledged_with_a_failure_event_that_says_what_to_do(
    lake: Lake, invoke: Invoke, name: str, body: bytes, fragment: str
) -> None:
    lake.put(f"raw/uploads/{name}", body)
    response = invoke(next_messages(lake))
    assert response == {"batchItemFailures": []}  # permanent: never retried into the DLQ
    [event] = lake.events(1)
    assert event["detail-type"] == "Dataset Processing Failed"
    error = event["detail"]["error"]
    assert fragment in error["message"]
    assert error["message"].startswith(f"raw/uploads/{name}")
    assert error["retryable"] is False
    assert curated_rows(lake, "uploads") == []


def test_too_many_bad_rows_refuses_the_file_and_quarantines_every_row(lake: Lake, invoke: Invoke) -> None:
    rows = ["n,label"] + [f"{i},ok" for i in range(70)] + ["x,1,2"] * 30  # 30% malformed lines
    lake.put("raw/halfbroken/a.csv", ("\n".join(rows) + "\n").encode())
    assert invoke(next_messages(lake)) == {"batchItemFailures": []}
    [event] = lake.events(1)
    detail = event["detail"]
    assert detail["status"] == "failed"
    assert "30 of 100 rows (30%) were rejected, more than the dataset's tolerance of 20%" in detail["error"]["message"]
    assert curated_rows(lake, "halfbroken") == []
    quarantine = quarantine_rows(lake, "halfbroken")
    assert len(quarantine) == 100
    assert {r["source_key"] for r in quarantine} == {"raw/halfbroken/a.csv"}
    codes = [r["_reason_code"] for r in quarantine]
    assert codes.count("malformed_row") == 30 and codes.count("file_rejected") == 70
    assert detail["quarantine"]["reasons"] == {"malformed_row": 30, "file_rejected": 70}


def test_some_bad_rows_are_quarantined_and_the_rest_published(lake: Lake, invoke: Invoke) -> None:
    rows = ["n,label"] + [f"{i},ok" for i in range(95)] + ["7,too,many"] * 5
    lake.put("raw/mostlygood/a.csv", ("\n".join(rows) + "\n").encode())
    invoke(next_messages(lake))
    [event] = lake.events(1)
    detail = event["detail"]
    assert detail["status"] == "succeeded"
    assert detail["quarantine"]["rows"] == 5
    assert detail["quarantine"]["table"] == "lake_quarantine.mostlygood"
    assert detail["quarantine"]["location"] == "s3://lake-local/quarantine/mostlygood"
    assert len(curated_rows(lake, "mostlygood")) == 95
    # AND the rejected rows are an Iceberg table for Athena beside the curated ones
    quarantine = iceberg_table(lake, "lake_quarantine", "mostlygood")
    assert quarantine.current_snapshot().snapshot_id == detail["quarantine"]["snapshot_id"]
    columns = quarantine.schema().column_names
    assert {"n", "label", "_reason_code", "_reason", "_raw_line", "source_key", "ingested_at"} <= set(columns)


def test_an_unterminated_quote_is_quarantined_and_the_event_counts_lines_and_rows(lake: Lake, invoke: Invoke) -> None:
    # GIVEN 300 lines: one opens a quote that the next line closes (two lines read as one row), one
    # holds a real line break in a quoted address, and 3 have too many fields
    lines = ["id,name,amount"] + [f"{i},n{i},{i}" for i in range(1, 301)]
    lines[100] = '100,"abc,100'
    lines[101] = '101,de"f,101'
    lines[150] = '150,"Street 1\nCity, ST",150'
    for i in (10, 20, 30):
        lines[i] = f"{i},n,{i},extra"
    lake.put("raw/quotes/a.csv", ("\n".join(lines) + "\n").encode())
    # WHEN it is processed
    invoke(next_messages(lake))
    # THEN no row is lost without a word: the event says 301 lines made 299 rows, one of them spanning
    # two lines, and the swallowed row is quarantined as unterminated_quote with its text
    [event] = lake.events(1)
    detail = event["detail"]
    assert detail["rows"]["lines"] == 301
    assert detail["rows"]["input"] == 299
    assert detail["rows"]["multiline"] == 1
    assert detail["quarantine"]["reasons"] == {"malformed_row": 3, "unterminated_quote": 1}
    assert len(curated_rows(lake, "quotes")) == 295
    [runaway] = [r for r in quarantine_rows(lake, "quotes") if r["_reason_code"] == "unterminated_quote"]
    assert "101" in runaway["_raw_line"] and "never closed" in runaway["_reason"]


def test_events_for_another_bucket_or_outside_raw_are_refused_without_processing(lake: Lake, invoke: Invoke) -> None:
    lake.put("raw/orders_export/a.csv", GOOD_CSV)
    [message] = next_messages(lake)
    foreign = json.loads(message["Body"])
    foreign["detail"]["bucket"]["name"] = "someone-elses-bucket"
    outside = json.loads(message["Body"])
    outside["detail"]["object"]["key"] = "curated/orders_export/a.csv"
    send(lake, json.dumps(foreign))
    send(lake, json.dumps(outside))
    lake.sqs.delete_message(QueueUrl=lake.endpoints.queue_url, ReceiptHandle=message["ReceiptHandle"])
    assert invoke(next_messages(lake, 2)) == {"batchItemFailures": []}
    events = lake.events(2)
    messages = sorted(e["detail"]["error"]["message"] for e in events)
    assert "is outside raw/" in messages[0]
    assert "is not in the lake bucket lake-local" in messages[1]
    assert curated_rows(lake, "orders_export") == []


def test_one_bad_record_does_not_fail_its_neighbours(lake: Lake, invoke: Invoke) -> None:
    # GIVEN an Iceberg table whose metadata file vanished (an unexpected, retryable failure for its file)
    lake.glue.create_table(
        DatabaseName="lake_curated",
        TableInput={
            "Name": "broken",
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"table_type": "ICEBERG", "metadata_location": "s3://lake-local/curated/broken/gone.json"},
        },
    )
    lake.put("raw/broken/a.csv", GOOD_CSV)
    lake.put("raw/fine/a.csv", GOOD_CSV)
    messages = next_messages(lake, 2)
    send(lake, "this is not an event")
    messages += next_messages(lake)
    # WHEN all three arrive in one batch
    response = invoke(messages)
    # THEN only the broken table's record is reported for retry
    broken = next(m for m in messages if "raw/broken/" in m["Body"])
    assert response == {"batchItemFailures": [{"itemIdentifier": broken["MessageId"]}]}
    assert curated_rows(lake, "fine")
    statuses = sorted(e["detail"]["status"] for e in lake.events(2))
    assert statuses == ["failed", "succeeded"]  # the invalid message is announced, the good file done


def test_a_process_request_naming_another_dataset_than_its_key_is_refused(lake: Lake, invoke: Invoke) -> None:
    lake.put("raw/orders_export/a.csv", GOOD_CSV)
    lake.sqs.purge_queue(QueueUrl=lake.endpoints.queue_url)
    body = json.loads(process_request_body(lake.bucket, "raw/orders_export/a.csv"))
    body["detail"]["dataset"] = "campaigns"
    send(lake, json.dumps(body))
    assert invoke(next_messages(lake)) == {"batchItemFailures": []}
    [event] = lake.events(1)
    assert "names dataset 'campaigns' but the key is in 'orders_export'" in event["detail"]["error"]["message"]
    assert curated_rows(lake, "orders_export") == []


def test_a_table_left_by_an_older_version_fails_the_file_with_what_to_do(lake: Lake, invoke: Invoke) -> None:
    # GIVEN a Hive-style Glue table of the same name (tables of earlier versions are not migrated)
    lake.glue.create_table(DatabaseName="lake_curated", TableInput={"Name": "legacy", "TableType": "EXTERNAL_TABLE"})
    lake.put("raw/legacy/a.csv", GOOD_CSV)
    # WHEN its file is processed: a permanent failure, not a retry loop into the DLQ
    assert invoke(next_messages(lake)) == {"batchItemFailures": []}
    [event] = lake.events(1)
    message = event["detail"]["error"]["message"]
    assert "lake_curated.legacy exists in the Glue catalog but is not an Iceberg table" in message
    assert "aws glue delete-table --database-name lake_curated --name legacy" in message


def test_a_later_file_is_widened_to_the_catalog_type_or_refused_with_the_fix(lake: Lake, invoke: Invoke) -> None:
    # GIVEN a table whose amount is double and whose code is bigint, from a first file
    lake.put("raw/payments/1.csv", b"code,amount,note\n1,2.5,a\n2,3.25,b\n")
    invoke(next_messages(lake))
    # WHEN a second file has whole amounts (bigint on its own), it is stored as double like the table
    lake.put("raw/payments/2.csv", b"code,amount,note\n3,4,c\n4,5,d\n")
    invoke(next_messages(lake))
    amounts = sorted(r["amount"] for r in curated_rows(lake, "payments"))
    assert amounts == [2.5, 3.25, 4.0, 5.0]
    assert all(isinstance(a, float) for a in amounts)
    # AND a third file whose codes are text cannot be read as bigint: refused, saying what to do
    lake.put("raw/payments/3.csv", b"code,amount,note\nA-1,1.5,e\nB-2,2.5,f\n")
    invoke(next_messages(lake))
    events = lake.events(3)
    assert [e["detail"]["status"] for e in events] == ["succeeded", "succeeded", "failed"]
    message = events[2]["detail"]["error"]["message"]
    assert "column code holds string values in this file, but table payments has it as bigint" in message
    assert len(curated_rows(lake, "payments")) == 4


def test_a_reprocess_that_moves_rows_to_other_partitions_leaves_no_stale_files(lake: Lake, invoke: Invoke) -> None:
    # GIVEN an ad export whose slash dates are all ambiguous: read month-first, the default
    csv_text = "date,channel,campaign,impressions,clicks,spend,conversions,revenue\n" + "".join(
        f"0{m}/0{d}/2026,meta,spring,100,10,5.00,1,20.00\n" for m, d in ((3, 4), (5, 6), (7, 8))
    )
    lake.put("raw/ad_performance/export.csv", csv_text.encode())
    invoke(next_messages(lake))
    dates = {str(r["date"]) for r in curated_rows(lake, "ad_performance")}
    assert dates == {"2026-03-04", "2026-05-06", "2026-07-08"}

    # WHEN the dataset is told its dates are day-first and the file is reprocessed
    lake.put("settings/ad_performance.json", b'{"date_order": "DMY"}')
    send(lake, process_request_body(lake.bucket, "raw/ad_performance/export.csv", reason="dates", request_id="r2"))
    assert invoke(next_messages(lake)) == {"batchItemFailures": []}

    # THEN its rows live only in the new partitions: the source's old rows are gone, not doubled
    rows = curated_rows(lake, "ad_performance")
    assert {str(r["date"]) for r in rows} == {"2026-04-03", "2026-06-05", "2026-08-07"}
    files = iceberg_table(lake, "lake_curated", "ad_performance_sources").inspect.files().to_pylist()
    # (Iceberg stores month(date) as months since 1970-01: one data file per month, April, June, August)
    assert sorted(f["partition"]["date_month"] for f in files) == [(2026 - 1970) * 12 + m - 1 for m in (4, 6, 8)]
    # AND the other tables of the source moved with it
    for table in ("campaign_kpis_by_file", "kpi_anomalies_by_file"):
        assert {str(r["date"]) for r in curated_rows(lake, table)} == {"2026-04-03", "2026-06-05", "2026-08-07"}


def test_a_rerun_that_is_now_refused_removes_every_earlier_output_of_its_source(lake: Lake, invoke: Invoke) -> None:
    # GIVEN an ad export with one bad row in ten, accepted under the default tolerance (20%)
    rows = "".join(f"2026-03-{d:02d},meta,spring,100,10,5.00,1,20.00\n" for d in range(1, 10))
    csv_text = "date,channel,campaign,impressions,clicks,spend,conversions,revenue\n" + rows
    csv_text += "2026-03-10,meta,spring,100,10,-5.00,1,20.00\n"  # negative spend
    lake.put("raw/ad_performance/export.csv", csv_text.encode())
    invoke(next_messages(lake))
    [accepted] = lake.events(1)
    assert accepted["detail"]["status"] == "succeeded"
    outputs = {o["table"]: o["view"] for o in accepted["detail"]["outputs"]}
    assert outputs == {
        "ad_performance_sources": "ad_performance",
        "campaign_kpis_by_file": None,
        "kpi_anomalies_by_file": None,
        "dataset_profiles": None,
    }
    assert curated_rows(lake, "ad_performance")

    # WHEN the dataset's tolerance is lowered to 5% and the file is reprocessed
    lake.put("settings/ad_performance.json", b'{"tolerance": 0.05}')
    send(lake, process_request_body(lake.bucket, "raw/ad_performance/export.csv", reason="stricter", request_id="r3"))
    assert invoke(next_messages(lake)) == {"batchItemFailures": []}

    # THEN the file is refused, and none of the tables shows the earlier run's rows any more
    [refused] = lake.events(1)
    assert refused["detail"]["error"]["type"] == "ToleranceExceededError", refused["detail"]["error"]["message"]
    for table in ("ad_performance", "campaign_kpis_by_file", "kpi_anomalies_by_file", "dataset_profiles"):
        assert curated_rows(lake, table) == []
    # AND every row is in quarantine, the bad one with its own reason
    reasons = sorted(refused["detail"]["quarantine"]["reasons"].items())
    assert reasons == [("file_rejected", 9), ("negative_value", 1)]


def in_progress_records(lake: Lake) -> int:
    """Powertools idempotency records of work still in progress (one per invocation at work)."""
    dynamodb = client("dynamodb", lake.endpoints.endpoint_url)
    items = dynamodb.scan(TableName=lake.endpoints.topology.idempotency_table)["Items"]
    return sum(1 for item in items if item.get("status", {}).get("S") == "INPROGRESS")
