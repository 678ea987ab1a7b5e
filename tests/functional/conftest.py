"""Fixtures for calling the handler in-process against the moto server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import pytest

from handlers import process
from lake.standin.runner import LocalContext, lambda_sqs_event
from query.catalog import glue_catalog
from tests.conftest import Lake

Invoke = Callable[[list[dict[str, Any]]], dict[str, Any]]


@pytest.fixture
def invoke(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> Iterator[Invoke]:
    for name, value in lake.endpoints.handler_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(process, "_processor", None)

    def call(messages: list[dict[str, Any]]) -> dict[str, Any]:
        event = lambda_sqs_event(messages, lake.endpoints.queue_arn, lake.endpoints.region)
        response: dict[str, Any] = process.lambda_handler(
            event,
            LocalContext("lake-processor", 60_000, 1024, "us-east-1"),  # type: ignore[arg-type]
        )
        # As Lambda's poller does: records that did not fail leave the queue (else they come back
        # into a later receive once their visibility timeout passed).
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        for message in messages:
            if message["MessageId"] not in failed and "ReceiptHandle" in message:
                lake.sqs.delete_message(QueueUrl=lake.endpoints.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return response

    yield call


def next_messages(lake: Lake, count: int = 1) -> list[dict[str, Any]]:
    """Receive exactly ``count`` messages from the processing queue (what the S3 rule routed)."""
    messages: list[dict[str, Any]] = []
    for _ in range(20):
        messages += lake.receive(lake.endpoints.queue_url, wait=1, max_messages=min(10, count - len(messages)))
        if len(messages) >= count:
            break
    assert len(messages) == count, f"expected {count} routed messages, got {len(messages)}"
    return messages


def send(lake: Lake, body: str) -> None:
    lake.sqs.send_message(QueueUrl=lake.endpoints.queue_url, MessageBody=body)


def iceberg_table(lake: Lake, database: str, table: str) -> Any:
    """The Iceberg table through the same catalog the handler writes with; None if there is none."""
    from pyiceberg.exceptions import NoSuchPropertyException, NoSuchTableError

    catalog = glue_catalog(lake.glue, lake.endpoints.region, lake.endpoints.endpoint_url)
    try:
        return catalog.load_table((database, table))
    except (NoSuchTableError, NoSuchPropertyException):  # none, or a view
        return None


def read_rows(lake: Lake, database: str, table: str, snapshot_id: int | None = None) -> pa.Table:
    """Every row of an Iceberg table (at a snapshot); empty when the table does not exist."""
    found = iceberg_table(lake, database, table)
    if found is None:
        return pa.table({})
    return found.scan(snapshot_id=snapshot_id).to_arrow()


def curated_rows(lake: Lake, table: str) -> list[dict[str, Any]]:
    """Every stored row of a curated table (for a keyed dataset: every source's, ``<table>_sources``)."""
    name = table if iceberg_table(lake, "lake_curated", table) is not None else f"{table}_sources"
    rows: list[dict[str, Any]] = read_rows(lake, "lake_curated", name).to_pylist()
    return rows


def quarantine_rows(lake: Lake, dataset: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = read_rows(lake, "lake_quarantine", dataset).to_pylist()
    return rows


def data_files(lake: Lake, table: str) -> list[str]:
    """The S3 keys of a curated table's data files (not its metadata)."""
    return [k for k in lake.keys(f"curated/{table}/data/") if k.endswith(".parquet")]


InvokeRefresh = Callable[[list[dict[str, Any]]], dict[str, Any]]


@pytest.fixture
def invoke_refresh(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> Iterator[InvokeRefresh]:
    """The refresh function in-process, as Lambda's FIFO event source mapping would call it."""
    from handlers import refresh

    for name, value in lake.endpoints.refresh_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(refresh, "_service", None)

    def call(messages: list[dict[str, Any]]) -> dict[str, Any]:
        from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

        event = lambda_sqs_event(messages, lake.endpoints.refresh_queue_arn, lake.endpoints.region)
        try:
            response: dict[str, Any] = refresh.lambda_handler(
                event,
                LocalContext("lake-refresh", 60_000, 1024, "us-east-1"),  # type: ignore[arg-type]
            )
        except BatchProcessingError:  # every record failed: Lambda fails the batch, SQS retries it all
            response = {"batchItemFailures": [{"itemIdentifier": m["MessageId"]} for m in messages]}
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        for message in messages:
            if message["MessageId"] not in failed:
                lake.sqs.delete_message(
                    QueueUrl=lake.endpoints.refresh_queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
        return response

    yield call


def refresh_messages(lake: Lake, wait: int = 1) -> list[dict[str, Any]]:
    """One receive from the refresh queue (FIFO: up to 10 requests, in order within a dataset)."""
    return lake.receive(lake.endpoints.refresh_queue_url, wait=wait)
