"""The runner behaves like Lambda's SQS event source mapping (tested with a recording function)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import topology
from lake.standin.runner import Runner
from lake.standin.server import Endpoints
from tests.conftest import Lake, wait_until
from tests.e2e.cli import lake as lake_cli

pytestmark = pytest.mark.e2e


def runner_for(lake: Lake, tmp_path: Path, **queue: Any) -> Runner:
    topo = lake.endpoints.topology
    endpoints: Endpoints = replace(lake.endpoints, topology=replace(topo, queue=replace(topo.queue, **queue)))
    return Runner(
        endpoints,
        handler="tests.e2e.recording_handler.lambda_handler",
        log_path=str(tmp_path / "worker.log"),
        extra_env={"RUNNER_TEST_LOG": str(tmp_path / "invocations.jsonl")},
    )


def invocations(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "invocations.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def send(lake: Lake, *bodies: str) -> None:
    for body in bodies:
        lake.sqs.send_message(
            QueueUrl=lake.endpoints.queue_url,
            MessageBody=body,
            MessageAttributes={"origin": {"DataType": "String", "StringValue": "test"}},
        )


def test_records_have_exactly_the_lambda_sqs_shape_and_succeeded_ones_are_deleted(lake: Lake, tmp_path: Path) -> None:
    send(lake, "a", "b", "c")
    with runner_for(lake, tmp_path, batch_size=10, batching_window_seconds=2):
        assert wait_until(lambda: lake.queue_depth(lake.endpoints.queue_url) == 0)
    [call] = invocations(tmp_path)  # one batch: the window gathered all three
    records = call["event"]["Records"]
    assert sorted(r["body"] for r in records) == ["a", "b", "c"]
    record = records[0]
    assert set(record) == {
        "messageId", "receiptHandle", "body", "attributes", "messageAttributes",
        "md5OfBody", "eventSource", "eventSourceARN", "awsRegion",
    }  # fmt: skip
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == lake.endpoints.queue_arn
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"]["origin"]["stringValue"] == "test"
    assert record["messageAttributes"]["origin"]["dataType"] == "String"
    assert 0 < call["remaining_ms"] <= lake.endpoints.topology.queue.function_timeout_seconds * 1000


def test_batch_size_caps_each_invocation(lake: Lake, tmp_path: Path) -> None:
    send(lake, *[f"m{i}" for i in range(5)])
    with runner_for(lake, tmp_path, batch_size=2, batching_window_seconds=1):
        assert wait_until(lambda: lake.queue_depth(lake.endpoints.queue_url) == 0)
    sizes = [len(c["event"]["Records"]) for c in invocations(tmp_path)]
    assert sum(sizes) == 5 and max(sizes) <= 2


def test_only_reported_failures_come_back_and_reach_the_dlq(lake: Lake, tmp_path: Path) -> None:
    send(lake, "ok", "fail")
    with runner_for(lake, tmp_path, batching_window_seconds=1):
        assert wait_until(lambda: lake.queue_depth(lake.endpoints.dlq_url) == 1, timeout=60)
    bodies = [r["body"] for c in invocations(tmp_path) for r in c["event"]["Records"]]
    assert bodies.count("ok") == 1
    assert bodies.count("fail") == 3  # maxReceiveCount


@pytest.mark.parametrize("body", ["raise", "sleep:30"])
def test_an_exception_or_a_timeout_fails_the_whole_batch(lake: Lake, tmp_path: Path, body: str) -> None:
    # GIVEN a neighbour that would have succeeded, in the same batch as a raising or hanging record
    send(lake, "ok", body)
    with runner_for(lake, tmp_path, function_timeout_seconds=2, batching_window_seconds=1):
        # THEN both come back (Lambda deletes nothing when the invocation fails) and both dead-letter
        assert wait_until(lambda: lake.queue_depth(lake.endpoints.dlq_url) == 2, timeout=90)
    first = invocations(tmp_path)[0]["event"]["Records"]
    assert sorted(r["body"] for r in first) == sorted(["ok", body])


def test_a_timeout_names_the_file_in_the_log_and_lake_dlq_says_it_timed_out(lake: Lake, tmp_path: Path) -> None:
    # GIVEN a file whose processing outlives the function's timeout every time
    request = {
        "source": topology.PROCESS_REQUEST_SOURCE,
        "detail-type": topology.PROCESS_REQUEST_DETAIL_TYPE,
        "detail": {"bucket": lake.bucket, "key": "raw/orders/slow.csv", "reason": "sleep:30"},
    }
    send(lake, json.dumps(request))
    with runner_for(lake, tmp_path, function_timeout_seconds=2):
        # WHEN SQS has handed it out maxReceiveCount times, it is dead-lettered
        assert wait_until(lambda: lake.queue_depth(lake.endpoints.dlq_url) == 1, timeout=120)
    # THEN the worker log names the file and says it timed out, as Lambda's log would
    log = (tmp_path / "worker.log").read_text()
    assert "raw/orders/slow.csv" in log and "timed out after 2 s" in log
    # AND `lake dlq` says so instead of "unknown"
    listed = lake_cli("dlq", "list", "--json", endpoint_url=lake.endpoints.endpoint_url)
    assert listed.returncode == 0, listed.stderr
    [letter] = json.loads(listed.stdout)
    assert letter["key"] == "raw/orders/slow.csv"
    assert "timed out after 2 s" in letter["last_error"] and letter["failed_attempts"] == 3
