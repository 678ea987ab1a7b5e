"""Fixtures for calling the handler in-process against the moto server."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow.parquet as pq
import pytest

from handlers import process
from lake.runner import LocalContext, lambda_sqs_event
from tests.conftest import Lake

Invoke = Callable[[list[dict[str, Any]]], dict[str, Any]]


@pytest.fixture
def invoke(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> Iterator[Invoke]:
    for name, value in lake.endpoints.handler_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(process, "_processor", None)

    def call(messages: list[dict[str, Any]]) -> dict[str, Any]:
        event = lambda_sqs_event(messages, lake.endpoints.queue_arn, lake.endpoints.region)
        return process.lambda_handler(event, LocalContext("lake-processor", 60_000, 1024, "us-east-1"))  # type: ignore[arg-type]

    yield call


def next_messages(lake: Lake, count: int = 1) -> list[dict[str, Any]]:
    """Receive exactly ``count`` messages from the processing queue (what the S3 rule routed)."""
    messages: list[dict[str, Any]] = []
    for _ in range(20):
        messages += lake.receive(lake.endpoints.queue_url, wait=1)
        if len(messages) >= count:
            break
    assert len(messages) == count, f"expected {count} routed messages, got {len(messages)}"
    return messages


def send(lake: Lake, body: str) -> None:
    lake.sqs.send_message(QueueUrl=lake.endpoints.queue_url, MessageBody=body)


def curated_rows(lake: Lake, table: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for key in lake.keys(f"curated/{table}/"):
        body = lake.s3.get_object(Bucket=lake.bucket, Key=key)["Body"].read()
        rows += pq.read_table(io.BytesIO(body)).to_pylist()
    return rows
