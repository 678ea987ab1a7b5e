"""The Lambda handler, called in-process with real SQS messages from the moto server."""

from __future__ import annotations

import gzip
import io
import json

import pyarrow.parquet as pq
import pytest

from handlers.events import process_request_body
from tests.conftest import Lake
from tests.functional.conftest import Invoke, curated_rows, next_messages, send

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
    # THEN the message is acknowledged, the rows are typed, trimmed and de-duplicated in curated/
    assert response == {"batchItemFailures": []}
    rows = sorted(curated_rows(lake, "orders_export"), key=lambda r: r["order_id"])
    assert [(r["order_id"], r["customer_id"], r["amount"]) for r in rows] == [
        ("A-1", "00042", 19.9),
        ("A-2", "00043", 5.0),
        ("A-3", "00044", 7.25),
    ]
    # AND the Glue table and its partition exist so Athena sees the data at once
    table = lake.glue.get_table(DatabaseName="lake_curated", Name="orders_export")["Table"]
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == [
        "order_id",
        "customer_id",
        "amount",
        "order_date",
    ]
    assert [k["Name"] for k in table["PartitionKeys"]] == ["ingest_date"]
    partitions = lake.glue.get_partitions(DatabaseName="lake_curated", TableName="orders_export")["Partitions"]
    assert len(partitions) == 1
    # AND one completion event tells what happened
    [event] = lake.events(1)
    assert event["detail-type"] == "Dataset Processed"
    assert event["source"] == "lake.processor"
    detail = event["detail"]
    assert detail["rows"] == {"input": 4, "duplicates_dropped": 1, "rejected": 0}
    assert detail["outputs"][0]["rows"] == 3
    assert detail["source"]["key"] == "raw/orders_export/2026-10.csv"
    assert detail["source"]["version_id"]


def test_the_same_object_delivered_twice_is_processed_once(lake: Lake, invoke: Invoke) -> None:
    lake.put("raw/orders_export/2026-10.csv", GOOD_CSV)
    [message] = next_messages(lake)
    invoke([message])
    before = {k: lake.s3.head_object(Bucket=lake.bucket, Key=k)["ETag"] for k in lake.keys("curated/")}
    # WHEN the same event arrives again (at-least-once delivery)
    send(lake, message["Body"])
    assert invoke(next_messages(lake)) == {"batchItemFailures": []}
    # THEN curated data is unchanged and only one completion event was published
    after = {k: lake.s3.head_object(Bucket=lake.bucket, Key=k)["ETag"] for k in lake.keys("curated/")}
    assert after == before
    assert len(lake.quiet_events(3)) == 1


def test_a_reprocess_request_rewrites_the_same_files(lake: Lake, invoke: Invoke) -> None:
    lake.put("raw/orders_export/2026-10.csv", GOOD_CSV)
    invoke(next_messages(lake))
    before = lake.keys("curated/")
    send(
        lake,
        process_request_body(lake.bucket, "raw/orders_export/2026-10.csv", reason="backfill", request_id="r1"),
    )
    assert invoke(next_messages(lake)) == {"batchItemFailures": []}
    assert lake.keys("curated/") == before
    assert len(curated_rows(lake, "orders_export")) == 3
    events = lake.events(2)
    assert [e["detail"]["source"]["trigger"] for e in events] == ["s3-event", "process-request"]


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
    events = lake.quiet_events(3)
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
        ("latin1.csv", "name;city\nJosé;München\n".encode("latin-1"), "not UTF-8"),
        ("cut.csv.gz", _truncated_gzip(), "gzip data"),
        ("report.xlsx", b"PK\x03\x04", "extension is not one the processor reads"),
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
    assert lake.keys("curated/") == []


def test_too_many_bad_rows_refuses_the_file_and_quarantines_every_row(lake: Lake, invoke: Invoke) -> None:
    rows = ["n,label"] + [f"{i},ok" for i in range(70)] + ["x,1,2"] * 30  # 30% malformed lines
    lake.put("raw/halfbroken/a.csv", ("\n".join(rows) + "\n").encode())
    assert invoke(next_messages(lake)) == {"batchItemFailures": []}
    [event] = lake.events(1)
    detail = event["detail"]
    assert detail["status"] == "failed"
    assert "30 of 100 rows (30%) were rejected, more than the dataset's tolerance of 20%" in detail["error"]["message"]
    assert lake.keys("curated/") == []
    quarantine = pq.read_table(
        io.BytesIO(lake.s3.get_object(Bucket=lake.bucket, Key=lake.keys("quarantine/")[0])["Body"].read())
    )
    assert quarantine.num_rows == 100
    codes = quarantine.column("_reason_code").to_pylist()
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
    assert detail["quarantine"]["location"].startswith("s3://lake-local/quarantine/mostlygood/")
    assert len(curated_rows(lake, "mostlygood")) == 95
    # AND the rejected rows are catalogued for Athena beside the curated ones
    table = lake.glue.get_table(DatabaseName="lake_quarantine", Name="mostlygood")["Table"]
    columns = [c["Name"] for c in table["StorageDescriptor"]["Columns"]]
    assert {"n", "label", "_reason_code", "_reason", "_raw_line"} <= set(columns)


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
    assert lake.keys("curated/") == []


def test_one_bad_record_does_not_fail_its_neighbours(lake: Lake, invoke: Invoke) -> None:
    # GIVEN a catalog table someone broke by hand (an unexpected, retryable failure for its file)
    lake.glue.create_table(DatabaseName="lake_curated", TableInput={"Name": "broken", "PartitionKeys": []})
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
    assert lake.keys("curated/") == []


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
    month_first = {k for k in lake.keys("curated/") if k.startswith("curated/ad_performance/")}
    assert {k.split("/")[2] for k in month_first} == {"date=2026-03-04", "date=2026-05-06", "date=2026-07-08"}

    # WHEN the dataset is told its dates are day-first and the file is reprocessed
    lake.put("settings/ad_performance.json", b'{"date_order": "DMY"}')
    send(lake, process_request_body(lake.bucket, "raw/ad_performance/export.csv", reason="dates", request_id="r2"))
    assert invoke(next_messages(lake)) == {"batchItemFailures": []}

    # THEN its rows live only in the new partitions: the source's old files are gone, not doubled
    day_first = {k for k in lake.keys("curated/") if k.startswith("curated/ad_performance/")}
    assert {k.split("/")[2] for k in day_first} == {"date=2026-04-03", "date=2026-06-05", "date=2026-08-07"}
    assert len(curated_rows(lake, "ad_performance")) == 3
    # AND the other tables of the source moved with it
    assert not any("2026-03-04" in k for k in lake.keys("curated/"))


def test_a_rerun_that_is_now_refused_removes_every_earlier_output_of_its_source(lake: Lake, invoke: Invoke) -> None:
    # GIVEN an ad export with one bad row in ten, accepted under the default tolerance (20%)
    rows = "".join(f"2026-03-{d:02d},meta,spring,100,10,5.00,1,20.00\n" for d in range(1, 10))
    csv_text = "date,channel,campaign,impressions,clicks,spend,conversions,revenue\n" + rows
    csv_text += "2026-03-10,meta,spring,100,10,-5.00,1,20.00\n"  # negative spend
    lake.put("raw/ad_performance/export.csv", csv_text.encode())
    invoke(next_messages(lake))
    [accepted] = lake.events(1)
    assert accepted["detail"]["status"] == "succeeded"
    assert {o["table"] for o in accepted["detail"]["outputs"]} == {"ad_performance", "campaign_kpis", "kpi_anomalies"}
    assert lake.keys("curated/ad_performance/") and lake.keys("curated/_sources/")

    # WHEN the dataset's tolerance is lowered to 5% and the file is reprocessed
    lake.put("settings/ad_performance.json", b'{"tolerance": 0.05}')
    send(lake, process_request_body(lake.bucket, "raw/ad_performance/export.csv", reason="stricter", request_id="r3"))
    assert invoke(next_messages(lake)) == {"batchItemFailures": []}

    # THEN the file is refused, and none of the tables shows the earlier run's rows any more
    [refused] = lake.events(1)
    assert refused["detail"]["error"]["type"] == "ToleranceExceededError", refused["detail"]["error"]["message"]
    assert lake.keys("curated/") == []
    # AND every row is in quarantine, the bad one with its own reason
    reasons = sorted(refused["detail"]["quarantine"]["reasons"].items())
    assert reasons == [("file_rejected", 9), ("negative_value", 1)]
