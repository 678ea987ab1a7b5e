"""On AWS, ``lake dlq redrive`` starts an SQS message move task (moto has none, so botocore's
Stubber plays SQS here; it checks every request against the service model)."""

from __future__ import annotations

import argparse

import boto3
import pytest
from botocore.stub import Stubber

from lake.cli.main import dlq
from lake.target import CliError, Target

DLQ_URL = "https://sqs.eu-west-1.amazonaws.com/111122223333/lake-processing-dlq"
QUEUE_URL = "https://sqs.eu-west-1.amazonaws.com/111122223333/lake-processing"
DLQ_ARN = "arn:aws:sqs:eu-west-1:111122223333:lake-processing-dlq"
QUEUE_ARN = "arn:aws:sqs:eu-west-1:111122223333:lake-processing"


def aws_target() -> tuple[Target, Stubber]:
    sqs = boto3.client("sqs", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    target = Target(
        endpoint_url=None,
        region="eu-west-1",
        bucket="lake-bucket",
        bus_name="lake-events",
        curated_database="lake_curated",
        quarantine_database="lake_quarantine",
        idempotency_table="lake-idempotency",
        workgroup="lake",
        stack="LakeProcessor",
    )
    target._queue_urls.update(processing=QUEUE_URL, dlq=DLQ_URL)
    target._clients["sqs"] = sqs
    stubber = Stubber(sqs)
    stubber.add_response(
        "get_queue_attributes",
        {"Attributes": {"ApproximateNumberOfMessages": "2", "ApproximateNumberOfMessagesNotVisible": "0"}},
    )
    stubber.add_response("get_queue_attributes", {"Attributes": {"QueueArn": DLQ_ARN}})
    stubber.add_response("get_queue_attributes", {"Attributes": {"QueueArn": QUEUE_ARN}})
    return target, stubber


def test_redrive_on_aws_starts_a_move_task_and_says_how_to_follow_it(capsys: pytest.CaptureFixture[str]) -> None:
    target, stubber = aws_target()
    stubber.add_response(
        "start_message_move_task",
        {"TaskHandle": "handle-1"},
        expected_params={"SourceArn": DLQ_ARN, "DestinationArn": QUEUE_ARN},
    )
    with stubber:
        assert dlq._redrive(argparse.Namespace(target=lambda: target)) == 0
    out = capsys.readouterr().out
    assert "task handle-1" in out
    assert f"aws sqs list-message-move-tasks --source-arn {DLQ_ARN}" in out


def test_a_redrive_already_running_is_one_line_with_what_to_do() -> None:
    target, stubber = aws_target()
    stubber.add_client_error(
        "start_message_move_task",
        service_error_code="AWS.SimpleQueueService.UnsupportedOperation",
        service_message="There is already a task running.",
    )
    with stubber, pytest.raises(CliError, match="list-message-move-tasks"):
        dlq._redrive(argparse.Namespace(target=lambda: target))
