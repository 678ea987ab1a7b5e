"""End to end: objects put into the moto server flow through the real rule and queues to the
runner's worker processes, and come out as Iceberg tables in the Glue catalog and events."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from dataclasses import replace

import pyarrow.compute as pc
import pytest

from lake.cli.tables import read_table, s3_filesystem
from lake.standin.runner import BatchOutcome, Runner
from lake.standin.server import Endpoints
from tests.conftest import Lake, wait_until

pytestmark = pytest.mark.e2e


def make_runner(endpoints: Endpoints, tmp_path: object, **env: str) -> Runner:
    outcomes: list[BatchOutcome] = []
    runner = Runner(endpoints, log_path=f"{tmp_path}/worker.log", listener=outcomes.append, extra_env=env)
    runner.outcomes = outcomes  # type: ignore[attr-defined]
    return runner


@pytest.fixture
def running(lake: Lake, tmp_path: object) -> Iterator[Runner]:
    with make_runner(lake.endpoints, tmp_path) as runner:
        yield runner


def campaign_csv(rows: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Campaign", "Day", "Clicks", "Cost (EUR)", "Account ID"])
    for i in range(rows):
        writer.writerow([f"spring-{i % 7}", f"2026-03-{1 + i % 28:02d}", i % 50, f"{i * 0.37:.2f}", f"{i % 13:05d}"])
    return out.getvalue().encode()


def test_a_dropped_file_is_queryable_as_an_iceberg_table_with_its_event(lake: Lake, running: Runner) -> None:
    body = campaign_csv(500)
    lake.put("raw/campaigns/march.csv", body)
    [event] = lake.events(1)
    assert event["detail-type"] == "Dataset Processed"
    # The curated table read back through the Glue catalog equals the input, typed.
    table = read_table(lake.glue, s3_filesystem(lake.endpoints.endpoint_url, "us-east-1"), "lake_curated", "campaigns")
    expected = list(csv.DictReader(io.StringIO(body.decode())))
    assert table.num_rows == len(expected)
    assert pc.sum(table.column("clicks")).as_py() == sum(int(r["Clicks"]) for r in expected)
    assert round(pc.sum(table.column("cost_eur")).as_py(), 2) == round(sum(float(r["Cost (EUR)"]) for r in expected), 2)
    assert sorted(set(table.column("account_id").to_pylist())) == sorted({r["Account ID"] for r in expected})
    # AND the event names the Iceberg snapshot holding exactly these rows
    glue_table = lake.glue.get_table(DatabaseName="lake_curated", Name="campaigns")["Table"]
    assert glue_table["Parameters"]["table_type"] == "ICEBERG"
    assert event["detail"]["outputs"][0]["snapshot_id"] is not None
    assert set(table.column("source_key").to_pylist()) == {"raw/campaigns/march.csv"}
    assert wait_until(lambda: lake.queue_depth(lake.endpoints.queue_url) == 0)


def test_deleting_a_raw_object_removes_its_rows_through_the_real_notification(lake: Lake, running: Runner) -> None:
    # GIVEN two files of one dataset, processed
    lake.put("raw/campaigns/march.csv", campaign_csv(50))
    lake.put("raw/campaigns/april.csv", campaign_csv(20))
    assert len(lake.events(2)) == 2
    # WHEN one is deleted (S3 Object Deleted, routed by the same rule)
    lake.s3.delete_object(Bucket=lake.bucket, Key="raw/campaigns/march.csv")
    [event] = lake.events(1)
    # THEN its rows leave the table and the other file's stay
    assert event["detail"]["change"] == "removed"
    table = read_table(lake.glue, None, "lake_curated", "campaigns")
    assert table.num_rows == 20
    assert set(table.column("source_key").to_pylist()) == {"raw/campaigns/april.csv"}


def test_objects_outside_raw_trigger_nothing(lake: Lake, running: Runner) -> None:
    lake.put("curated/campaigns/data/manual.parquet", b"PAR1")
    lake.put("quarantine/campaigns/data/x.parquet", b"PAR1")
    lake.put("raw/campaigns/real.csv", campaign_csv(10))
    events = lake.events(1)
    assert [e["detail"]["source"]["key"] for e in events] == ["raw/campaigns/real.csv"]
    assert lake.quiet_events(3) == []
    assert running.invocations == 1


def test_a_permanent_failure_is_acknowledged_and_never_reaches_the_dlq(lake: Lake, running: Runner) -> None:
    lake.put("raw/campaigns/broken.csv", bytes(range(256)) * 4)
    [event] = lake.events(1)
    assert event["detail-type"] == "Dataset Processing Failed"
    assert event["detail"]["error"]["retryable"] is False
    assert wait_until(lambda: lake.queue_depth(lake.endpoints.queue_url) == 0)
    time.sleep(5)  # longer than the visibility timeout: a retried message would be back by now
    assert lake.queue_depth(lake.endpoints.queue_url) == 0
    assert lake.queue_depth(lake.endpoints.dlq_url) == 0
    assert lake.quiet_events(2) == []


def test_a_batch_with_a_bad_record_keeps_its_good_neighbours(lake: Lake, running: Runner) -> None:
    lake.put("raw/campaigns/good-1.csv", campaign_csv(20))
    lake.put("raw/campaigns/bad.csv", b"")
    lake.put("raw/campaigns/good-2.csv", campaign_csv(30))
    events = lake.events(3)
    by_key = {e["detail"]["source"]["key"]: e["detail"]["status"] for e in events}
    assert by_key == {
        "raw/campaigns/good-1.csv": "succeeded",
        "raw/campaigns/bad.csv": "failed",
        "raw/campaigns/good-2.csv": "succeeded",
    }
    assert wait_until(lambda: lake.queue_depth(lake.endpoints.queue_url) == 0)


def test_special_character_keys_flow_through_the_real_notification(lake: Lake, running: Runner) -> None:
    key = "raw/campaigns/Q1 plan+final 100% é.csv"
    lake.put(key, campaign_csv(5))
    [event] = lake.events(1)
    assert event["detail"]["status"] == "succeeded"
    assert event["detail"]["source"]["key"] == key


def test_duplicate_delivery_at_the_same_time_gives_one_event_and_identical_data(lake: Lake, tmp_path: object) -> None:
    # GIVEN two workers and batches of one, so copies of a message run concurrently
    endpoints = replace(
        lake.endpoints,
        topology=replace(lake.endpoints.topology, queue=replace(lake.endpoints.topology.queue, batch_size=1)),
    )
    lake.put("raw/campaigns/dup.csv", campaign_csv(20_000))
    [original] = lake.receive(lake.endpoints.queue_url, wait=5)
    for _ in range(3):
        lake.sqs.send_message(QueueUrl=lake.endpoints.queue_url, MessageBody=original["Body"])
    lake.sqs.delete_message(QueueUrl=lake.endpoints.queue_url, ReceiptHandle=original["ReceiptHandle"])
    with make_runner(endpoints, tmp_path) as runner:
        # THEN every copy is eventually acknowledged (in-progress copies are retried) ...
        assert wait_until(lambda: lake.queue_depth(lake.endpoints.queue_url) == 0, timeout=240)
        assert runner.invocations >= 3
    # ... one event was published and the table holds each row once
    events = lake.quiet_events(3)
    assert len(events) == 1
    table = read_table(lake.glue, s3_filesystem(lake.endpoints.endpoint_url, "us-east-1"), "lake_curated", "campaigns")
    assert table.num_rows == 20_000
    assert lake.queue_depth(lake.endpoints.dlq_url) == 0


def test_a_transient_failure_is_retried_then_dead_lettered_and_announced(lake: Lake, tmp_path: object) -> None:
    # GIVEN a processor whose Glue database is missing (a deployment mistake: retrying may help later)
    with make_runner(lake.endpoints, tmp_path, LAKE_CURATED_DATABASE="missing_db") as runner:
        lake.put("raw/campaigns/march.csv", campaign_csv(10))
        # THEN SQS redelivers it after each visibility timeout and moves it to the DLQ after 3 receives
        assert wait_until(lambda: lake.queue_depth(lake.endpoints.dlq_url) == 1, timeout=240)
        assert runner.invocations == 3
    [dead] = lake.receive(lake.endpoints.dlq_url, wait=1)
    assert json.loads(dead["Body"])["detail"]["object"]["key"] == "raw/campaigns/march.csv"
    assert int(dead["Attributes"]["ApproximateReceiveCount"]) >= 3
    # AND the last attempt announced the failure, saying where the message went and what to do
    [event] = lake.events(1)
    assert event["detail-type"] == "Dataset Processing Failed"
    assert "dead-letter queue" in event["detail"]["error"]["message"]
    assert "lake dlq redrive" in event["detail"]["error"]["message"]
    # AND no table shows anything (files uploaded before the failed commit are unreferenced: orphan-file
    # deletion removes them, Glue's optimizer on AWS, `lake maintain` locally)
    assert lake.glue.get_tables(DatabaseName="lake_curated")["TableList"] == []


def test_a_crashed_worker_loses_no_message(lake: Lake, tmp_path: object) -> None:
    # GIVEN the first invocation kills its execution environment mid-batch
    with make_runner(lake.endpoints, tmp_path, LAKE_WORKER_CRASH_ONCE=f"{tmp_path}/crashed") as runner:
        lake.put("raw/campaigns/a.csv", campaign_csv(10))
        [event] = lake.events(1, timeout=60)
        assert event["detail"]["status"] == "succeeded"
        assert any(o.error and "exited" in o.error for o in runner.outcomes)  # type: ignore[attr-defined]
