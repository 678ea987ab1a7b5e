"""Where the ``lake`` command points: the stand-in by endpoint, or a deployed stack by its outputs."""

from __future__ import annotations

import json

import pytest

import topology
from lake.standin.server import Endpoints, client
from lake.target import CliError, resolve


def deploy_outputs_stack(endpoints: Endpoints, name: str) -> dict[str, str]:
    """A CloudFormation stack on the stand-in whose outputs name the provisioned resources."""
    topo = endpoints.topology
    outputs = {
        "BucketName": topo.bucket,
        "ProcessingQueueUrl": endpoints.queue_url,
        "DeadLetterQueueUrl": endpoints.dlq_url,
        "SubscriberQueueUrl": endpoints.subscriber_queue_url,
        "EventBusName": topo.bus_name,
        "AthenaWorkGroup": topology.ATHENA_WORKGROUP,
        "CuratedDatabase": topo.curated_database,
        "QuarantineDatabase": topo.quarantine_database,
        "ProcessRequestUrl": "https://example.invalid/prod/process",
        "IdempotencyTable": topo.idempotency_table,
        "FunctionName": "lake-processor",
        "AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:lake-alarms",
        "OpsDatabase": topo.ops_database,
        "FunctionArchitecture": "arm64",
    }
    from infra.lake_stack import OUTPUT_KEYS  # imports the CDK (and starts Node): only here

    assert tuple(outputs) == OUTPUT_KEYS
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    client("cloudformation", endpoints.endpoint_url).create_stack(StackName=name, TemplateBody=json.dumps(template))
    return outputs


@pytest.fixture
def aws_at_stand_in(stand_in: Endpoints, monkeypatch: pytest.MonkeyPatch) -> Endpoints:
    """The "AWS" path (no LAKE_ENDPOINT_URL), with boto3's own AWS_ENDPOINT_URL aimed at the stand-in."""
    monkeypatch.delenv("LAKE_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", stand_in.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "lake-local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "lake-local")
    monkeypatch.setenv("AWS_DEFAULT_REGION", topology.LOCAL_REGION)
    return stand_in


def test_an_endpoint_url_means_the_stand_in_with_the_topology_names(stand_in: Endpoints) -> None:
    target = resolve(endpoint_url=stand_in.endpoint_url + "/")
    assert target.local and target.endpoint_url == stand_in.endpoint_url
    assert target.bucket == topology.DEFAULT.bucket
    assert target.queue_url("processing") == stand_in.queue_url
    assert target.queue_url("dlq") == stand_in.dlq_url
    assert target.queue_arn("dlq") == stand_in.dlq_arn


def test_the_environment_variable_names_the_stand_in_too(stand_in: Endpoints, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKE_ENDPOINT_URL", stand_in.endpoint_url)
    assert resolve().endpoint_url == stand_in.endpoint_url


def test_without_an_endpoint_names_come_from_the_deployed_stacks_outputs(aws_at_stand_in: Endpoints) -> None:
    outputs = deploy_outputs_stack(aws_at_stand_in, "LakeProcessor")
    target = resolve()
    assert not target.local and target.stack == "LakeProcessor"
    assert target.region == topology.LOCAL_REGION
    assert (target.bucket, target.bus_name, target.workgroup) == (
        outputs["BucketName"],
        outputs["EventBusName"],
        outputs["AthenaWorkGroup"],
    )
    assert target.queue_url("processing") == outputs["ProcessingQueueUrl"]
    assert target.queue_url("dlq") == outputs["DeadLetterQueueUrl"]
    # and the clients it hands out reach the same account (here: the stand-in)
    assert target.client("s3").head_bucket(Bucket=target.bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_a_stack_that_is_not_deployed_says_how_to_deploy_or_choose_another(aws_at_stand_in: Endpoints) -> None:
    with pytest.raises(CliError, match=r"stack Elsewhere is not deployed in us-east-1; deploy it \(docs/deploy.md\)"):
        resolve(stack="Elsewhere")


def test_a_stack_without_the_lake_outputs_is_named(aws_at_stand_in: Endpoints) -> None:
    template = {"Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}}}
    client("cloudformation", aws_at_stand_in.endpoint_url).create_stack(
        StackName="Unrelated", TemplateBody=json.dumps(template)
    )
    with pytest.raises(CliError, match="stack Unrelated has no output BucketName; is it the lake processor's stack"):
        resolve(stack="Unrelated")
