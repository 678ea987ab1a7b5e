"""`lake report ops` prices the architecture the deployed stack reports: the target reads it from
the stack's ``FunctionArchitecture`` output (botocore's Stubber plays CloudFormation)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from lake import target as target_module
from lake.target import resolve

OUTPUTS = {
    "BucketName": "lake-bucket",
    "EventBusName": "lake-events",
    "CuratedDatabase": "lake_curated",
    "QuarantineDatabase": "lake_quarantine",
    "IdempotencyTable": "lake-idempotency",
    "AthenaWorkGroup": "lake",
    "ProcessingQueueUrl": "https://sqs.eu-west-1.amazonaws.com/111122223333/lake-processing",
    "DeadLetterQueueUrl": "https://sqs.eu-west-1.amazonaws.com/111122223333/lake-processing-dlq",
    "SubscriberQueueUrl": "https://sqs.eu-west-1.amazonaws.com/111122223333/lake-events-subscriber",
}


class StackSession:
    """A boto3 session whose CloudFormation client answers describe_stacks with ``outputs``."""

    region_name = "eu-west-1"

    def __init__(self, outputs: dict[str, str]) -> None:
        self.cloudformation = boto3.client(
            "cloudformation", region_name=self.region_name, aws_access_key_id="x", aws_secret_access_key="x"
        )
        self.stubber = Stubber(self.cloudformation)
        self.stubber.add_response(
            "describe_stacks",
            {
                "Stacks": [
                    {
                        "StackName": "LakeProcessor",
                        "CreationTime": "2026-12-01T00:00:00Z",
                        "StackStatus": "CREATE_COMPLETE",
                        "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
                    }
                ]
            },
            {"StackName": "LakeProcessor"},
        )
        self.stubber.activate()

    def client(self, service: str) -> Any:
        assert service == "cloudformation"
        return self.cloudformation


@pytest.mark.parametrize(("outputs", "architecture"), [({"FunctionArchitecture": "x86_64"}, "x86_64"), ({}, None)])
def test_the_target_carries_the_stacks_architecture_and_region(
    monkeypatch: pytest.MonkeyPatch, outputs: dict[str, str], architecture: str | None
) -> None:
    # GIVEN a deployed stack (one deployed before the output existed has none)
    session = StackSession({**OUTPUTS, **outputs})
    monkeypatch.setattr(target_module, "_session", lambda profile, region: session)
    monkeypatch.delenv("LAKE_ENDPOINT_URL", raising=False)
    # WHEN the lake command resolves it
    target = resolve()
    # THEN the ops report gets its architecture (None: priced as the default, and the page says so)
    assert (target.architecture, target.region) == (architecture, "eu-west-1")
    session.stubber.assert_no_pending_responses()
