"""The CloudFormation the app synthesizes: the properties that decide whether the pipeline works."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest
from aws_cdk.assertions import Match

import topology
from infra.config import CONTEXT_DEFAULTS
from infra.lake_stack import OUTPUT_KEYS
from infra.process_api import PROCESS_REQUESTS_PATH
from infra.processing import LEDGER_PREFIX
from tests.infra.conftest import Synth

pytestmark = pytest.mark.infra

TOPO = topology.DEFAULT
QUEUE = TOPO.queue


def ref(logical_id: str) -> dict[str, str]:
    return {"Ref": logical_id}


def arn(logical_id: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


@pytest.mark.parametrize(
    ("cfn_type", "count"),
    [
        ("AWS::S3::Bucket", 2),  # the lake and its access logs
        # processing, its DLQ, example subscriber, one delivery DLQ per EventBridge rule, refresh FIFO + its DLQ
        ("AWS::SQS::Queue", 7),
        ("AWS::Lambda::Function", 2),  # per file and refresh, one image; no custom-resource handlers sneaking in
        ("AWS::Lambda::EventSourceMapping", 2),
        ("AWS::Events::EventBus", 1),
        ("AWS::Events::Archive", 1),
        ("AWS::Events::Rule", 2),  # raw objects -> queue, completion events -> subscriber
        ("AWS::Glue::Database", 3),  # curated, quarantine, ops (the processing ledger)
        ("AWS::Athena::WorkGroup", 1),
        ("AWS::DynamoDB::GlobalTable", 1),
        # two per DLQ (not empty, about to expire), one per rule (failed deliveries), backlog, errors, throttles,
        # the refresh's errors
        ("AWS::CloudWatch::Alarm", 14),
        ("AWS::SNS::Topic", 1),
        ("AWS::SNS::Subscription", 0),  # only with the alarmEmail context
        ("AWS::KMS::Key", 1),  # the alarm topic's; the lake's own only with bucketEncryption=kms
        ("AWS::IAM::Role", 4),  # function, refresh function, table optimizers, HTTP entry
        ("AWS::ApiGateway::RestApi", 1),
        ("AWS::ApiGateway::Method", 1),
        ("AWS::SecretsManager::Secret", 1),  # the pseudonym key of personal data
    ],
)
def test_resource_counts(synth: Synth, cfn_type: str, count: int) -> None:
    synth.template.resource_count_is(cfn_type, count)


def test_no_custom_resources(synth: Synth) -> None:
    custom = [k for k, v in synth.template_json["Resources"].items() if v["Type"].startswith("Custom::")]
    assert custom == []


# --- routing ----------------------------------------------------------------------------------


def test_event_source_mapping_uses_topology_and_partial_batch_responses(synth: Synth) -> None:
    queue_id = synth.logical_id(synth.stack.processing.queue)
    synth.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": arn(queue_id),
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "BatchSize": QUEUE.batch_size,
            "MaximumBatchingWindowInSeconds": QUEUE.batching_window_seconds,
            "ScalingConfig": {"MaximumConcurrency": QUEUE.max_concurrency},
        },
    )


def test_the_processing_mapping_takes_its_maximum_concurrency_from_the_deploy_setting(synth_kms: Synth) -> None:
    queue_id = synth_kms.logical_id(synth_kms.stack.processing.queue)
    synth_kms.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {"EventSourceArn": arn(queue_id), "ScalingConfig": {"MaximumConcurrency": 4}},
    )


def test_processing_queue_redrives_to_dlq_after_topology_receive_count(synth: Synth) -> None:
    queue = synth.template_json["Resources"][synth.logical_id(synth.stack.processing.queue)]
    dlq_id = synth.logical_id(synth.stack.processing.dead_letter_queue)
    assert queue["Properties"]["RedrivePolicy"] == {
        "deadLetterTargetArn": arn(dlq_id),
        "maxReceiveCount": QUEUE.max_receive_count,
    }
    assert queue["Properties"]["QueueName"] == TOPO.queue_name
    dlq = synth.template_json["Resources"][dlq_id]["Properties"]
    assert dlq["MessageRetentionPeriod"] == QUEUE.dlq_retention_days * 24 * 3600 == 14 * 24 * 3600
    assert dlq["QueueName"] == TOPO.dlq_name


@pytest.mark.parametrize("fixture", ["synth", "synth_kms"])
def test_visibility_timeout_is_at_least_six_function_timeouts(fixture: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(fixture)
    _, function = synth.processor()
    queue = synth.template_json["Resources"][synth.logical_id(synth.stack.processing.queue)]
    assert queue["Properties"]["VisibilityTimeout"] >= 6 * function["Properties"]["Timeout"]


def test_every_queue_is_encrypted_and_refuses_plain_http(synth: Synth) -> None:
    for queue in synth.resources("AWS::SQS::Queue").values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
    policies = synth.resources("AWS::SQS::QueuePolicy").values()
    denies = [
        s
        for p in policies
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
    ]
    assert len(denies) == 7


def test_raw_rule_pattern_is_the_topology_pattern(synth: Synth) -> None:
    bucket_id = synth.logical_id(synth.stack.storage.bucket)
    rule = synth.template_json["Resources"][synth.logical_id(synth.stack.processing.raw_rule)]
    assert rule["Properties"]["EventPattern"] == TOPO.raw_object_events_pattern(ref(bucket_id))  # type: ignore[arg-type]
    assert rule["Properties"]["Name"] == TOPO.raw_rule_name
    # S3 publishes to the default bus, so the rule must not sit on the lake bus.
    assert "EventBusName" not in rule["Properties"]
    [target] = rule["Properties"]["Targets"]
    assert target["Arn"] == arn(synth.logical_id(synth.stack.processing.queue))


def test_bucket_sends_events_to_eventbridge(synth: Synth) -> None:
    synth.template.has_resource_properties(
        "AWS::S3::Bucket",
        {"NotificationConfiguration": {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}},
    )


# --- storage ----------------------------------------------------------------------------------


def lake_bucket(synth: Synth) -> dict[str, Any]:
    return synth.template_json["Resources"][synth.logical_id(synth.stack.storage.bucket)]


def test_buckets_block_public_access_and_are_encrypted(synth: Synth) -> None:
    for bucket in synth.resources("AWS::S3::Bucket").values():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        [rule] = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


def test_lake_bucket_is_versioned_logged_and_retained(synth: Synth) -> None:
    bucket = lake_bucket(synth)
    assert bucket["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["Properties"]["LoggingConfiguration"]["DestinationBucketName"] == ref(
        synth.logical_id(synth.stack.storage.access_logs)
    )
    assert bucket["DeletionPolicy"] == "Retain"


def test_bucket_policies_deny_insecure_transport(synth: Synth) -> None:
    for policy in synth.resources("AWS::S3::BucketPolicy").values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
        )
    assert len(synth.resources("AWS::S3::BucketPolicy")) == 2


def expirations(bucket: dict[str, Any]) -> dict[str, int]:
    rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    return {r["Prefix"]: r["ExpirationInDays"] for r in rules if "Prefix" in r}


def test_lifecycle_rules_expire_quarantine_and_athena_results(synth: Synth, synth_kms: Synth) -> None:
    assert expirations(lake_bucket(synth)) == {
        topology.QUARANTINE_PREFIX: CONTEXT_DEFAULTS["quarantineExpirationDays"],
        topology.ATHENA_RESULTS_PREFIX: CONTEXT_DEFAULTS["athenaResultsExpirationDays"],
    }
    assert expirations(lake_bucket(synth_kms)) == {
        topology.QUARANTINE_PREFIX: 30,
        topology.ATHENA_RESULTS_PREFIX: 3,
    }


def test_kms_context_encrypts_bucket_and_athena_results_with_a_rotating_key(synth_kms: Synth) -> None:
    assert synth_kms.stack.storage.key is not None
    key_id = synth_kms.logical_id(synth_kms.stack.storage.key)
    key = synth_kms.template_json["Resources"][key_id]
    assert key["Properties"]["EnableKeyRotation"] is True
    [rule] = lake_bucket(synth_kms)["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": arn(key_id)}
    _, workgroup = synth_kms.one("AWS::Athena::WorkGroup")
    result = workgroup["Properties"]["WorkGroupConfiguration"]["ResultConfiguration"]
    assert result["EncryptionConfiguration"] == {"EncryptionOption": "SSE_KMS", "KmsKey": arn(key_id)}


def test_glue_databases_and_athena_workgroup_come_from_topology(synth: Synth) -> None:
    names = {d["Properties"]["DatabaseInput"]["Name"] for d in synth.resources("AWS::Glue::Database").values()}
    assert names == {TOPO.curated_database, TOPO.quarantine_database, TOPO.ops_database}
    _, workgroup = synth.one("AWS::Athena::WorkGroup")
    config = workgroup["Properties"]["WorkGroupConfiguration"]
    assert workgroup["Properties"]["Name"] == topology.ATHENA_WORKGROUP
    assert config["EnforceWorkGroupConfiguration"] is True
    location = config["ResultConfiguration"]["OutputLocation"]
    bucket_id = synth.logical_id(synth.stack.storage.bucket)
    assert location == {"Fn::Join": ["", ["s3://", ref(bucket_id), f"/{topology.ATHENA_RESULTS_PREFIX}"]]}


def test_idempotency_table_has_powertools_key_and_ttl(synth: Synth) -> None:
    _, table = synth.one("AWS::DynamoDB::GlobalTable")
    props = table["Properties"]
    assert props["TableName"] == TOPO.idempotency_table
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [{"AttributeName": topology.IDEMPOTENCY_KEY_ATTRIBUTE, "KeyType": "HASH"}]
    assert props["TimeToLiveSpecification"] == {
        "AttributeName": topology.IDEMPOTENCY_TTL_ATTRIBUTE,
        "Enabled": True,
    }


# --- function ---------------------------------------------------------------------------------


def test_function_is_the_container_image_with_context_settings(synth: Synth, synth_kms: Synth) -> None:
    _, function = synth.processor()
    props = function["Properties"]
    assert props["PackageType"] == "Image"
    assert props["MemorySize"] == CONTEXT_DEFAULTS["functionMemoryMb"]
    assert props["Timeout"] == QUEUE.function_timeout_seconds
    assert props["EphemeralStorage"] == {"Size": CONTEXT_DEFAULTS["ephemeralStorageMb"]}
    assert props["Architectures"] == ["arm64"]  # Graviton by default
    custom = synth_kms.processor()[1]["Properties"]
    assert (custom["MemorySize"], custom["Timeout"], custom["Architectures"]) == (4096, 600, ["x86_64"])


def test_function_environment_is_exactly_the_documented_variables(synth: Synth) -> None:
    _, function = synth.processor()
    env = function["Properties"]["Environment"]["Variables"]
    assert env == {
        topology.ENV_BUCKET: ref(synth.logical_id(synth.stack.storage.bucket)),
        topology.ENV_EVENT_BUS: ref(synth.logical_id(synth.stack.events.bus)),
        topology.ENV_CURATED_DATABASE: TOPO.curated_database,
        topology.ENV_QUARANTINE_DATABASE: TOPO.quarantine_database,
        topology.ENV_OPS_DATABASE: TOPO.ops_database,
        topology.ENV_IDEMPOTENCY_TABLE: ref(synth.logical_id(synth.stack.processing.idempotency_table)),
        topology.ENV_IDEMPOTENCY_TTL_SECONDS: str(TOPO.idempotency_ttl_seconds),
        topology.ENV_MAX_RECEIVE_COUNT: str(QUEUE.max_receive_count),
        topology.ENV_TABLE_OPTIMIZER_ROLE_ARN: arn(synth.logical_id(synth.stack.maintenance.role)),
        topology.ENV_REFRESH_QUEUE_URL: ref(synth.logical_id(synth.stack.refresh.queue)),
        topology.ENV_PSEUDONYM_SECRET: ref(synth.logical_id(synth.stack.processing.pseudonym_secret)),
        topology.ENV_POWERTOOLS_SERVICE_NAME: topology.PROCESS_SERVICE,
    }
    assert "AWS_ENDPOINT_URL" not in env  # real AWS endpoints only


def function_statements(synth: Synth) -> list[dict[str, Any]]:
    role = synth.stack.processing.function.role
    policies = [
        p
        for p in synth.resources("AWS::IAM::Policy").values()
        if ref(synth.logical_id(role)) in p["Properties"]["Roles"]
    ]
    return [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_function_permissions_are_scoped(synth: Synth) -> None:
    statements = function_statements(synth)
    bucket_arn = arn(synth.logical_id(synth.stack.storage.bucket))
    allowed_object_arns = [
        {"Fn::Join": ["", [bucket_arn, f"/{prefix}*"]]}
        for prefix in (
            topology.RAW_PREFIX,
            topology.MODELS_PREFIX,
            topology.SETTINGS_PREFIX,
            topology.CURATED_PREFIX,
            topology.QUARANTINE_PREFIX,
            LEDGER_PREFIX,
        )
    ]
    writes = set()
    for statement in statements:
        actions = as_list(statement["Action"])
        assert "*" not in actions and not any(a.endswith(":*") for a in actions), statement
        for action in actions:
            resources = as_list(statement["Resource"])
            if action.startswith("s3:"):
                for resource in resources:
                    assert resource == bucket_arn or resource in allowed_object_arns, (action, resource)
                if action in ("s3:PutObject", "s3:DeleteObject*"):
                    writes.update(r["Fn::Join"][1][1] for r in resources if r != bucket_arn)
            elif action == "events:PutEvents":
                assert resources == [arn(synth.logical_id(synth.stack.events.bus))]
            elif action.startswith("dynamodb:"):
                assert resources[0] == arn(synth.logical_id(synth.stack.processing.idempotency_table))
            elif action.startswith("secretsmanager:"):
                assert resources == [ref(synth.logical_id(synth.stack.processing.pseudonym_secret))]
                assert action in ("secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret")
            elif action.startswith("glue:"):
                assert not any(a.startswith("glue:Delete") and "Database" in a for a in actions)
                assert all("Fn::Join" in r for r in resources)
    # Writes reach only outputs, rejects and the processing ledger, never raw/ or models/.
    assert writes == {f"/{topology.CURATED_PREFIX}*", f"/{topology.QUARANTINE_PREFIX}*", f"/{LEDGER_PREFIX}*"}


def test_glue_permissions_name_only_the_lake_databases(synth: Synth) -> None:
    [glue] = [s for s in function_statements(synth) if any(a.startswith("glue:") for a in as_list(s["Action"]))]
    rendered = " ".join(str(r) for r in glue["Resource"])
    for name in (TOPO.curated_database, TOPO.quarantine_database):
        assert f"database/{name}" in rendered and f"table/{name}/*" in rendered
    # The ops database only for its one table, the processing ledger, named without a wildcard.
    assert f"database/{TOPO.ops_database}" in rendered
    assert f"table/{TOPO.ops_database}/{topology.PROCESSING_LOG_TABLE}'" in rendered
    assert f"table/{TOPO.ops_database}/*" not in rendered
    assert rendered.count("database/") == 3


# --- events -----------------------------------------------------------------------------------


def test_bus_archive_and_example_subscriber(synth: Synth) -> None:
    bus_id, bus = synth.one("AWS::Events::EventBus")
    assert bus["Properties"]["Name"] == TOPO.bus_name
    _, archive = synth.one("AWS::Events::Archive")
    assert archive["Properties"]["SourceArn"] == arn(bus_id)
    assert archive["Properties"]["EventPattern"] == TOPO.lake_events_pattern()
    assert archive["Properties"]["RetentionDays"] == CONTEXT_DEFAULTS["archiveRetentionDays"]
    rule = synth.template_json["Resources"][synth.logical_id(synth.stack.events.subscriber_rule)]
    assert rule["Properties"]["EventBusName"] == ref(bus_id)
    assert rule["Properties"]["Name"] == TOPO.subscriber_rule_name
    assert rule["Properties"]["EventPattern"] == TOPO.lake_events_pattern()
    [target] = rule["Properties"]["Targets"]
    assert target["Arn"] == arn(synth.logical_id(synth.stack.events.subscriber_queue))


# --- HTTP entry -------------------------------------------------------------------------------


def test_api_method_is_iam_authorized_sqs_send_message(synth: Synth) -> None:
    _, method = synth.one("AWS::ApiGateway::Method")
    props = method["Properties"]
    assert props["HttpMethod"] == "POST"
    assert props["AuthorizationType"] == "AWS_IAM"
    integration = props["Integration"]
    assert integration["Type"] == "AWS"
    assert integration["IntegrationHttpMethod"] == "POST"
    assert integration["PassthroughBehavior"] == "NEVER"
    uri = str(integration["Uri"])
    assert ":sqs:path/" in uri
    assert integration["RequestParameters"]["integration.request.header.Content-Type"] == (
        "'application/x-www-form-urlencoded'"
    )
    responses = {r["StatusCode"]: r for r in integration["IntegrationResponses"]}
    assert "SendMessageResult.MessageId" in responses["202"]["ResponseTemplates"]["application/json"]
    assert {r["StatusCode"] for r in props["MethodResponses"]} == {"202", "500", "503"}
    _, resource = synth.one("AWS::ApiGateway::Resource")
    assert resource["Properties"]["PathPart"] == PROCESS_REQUESTS_PATH


def test_api_role_may_only_send_to_the_processing_queue(synth: Synth) -> None:
    _, method = synth.one("AWS::ApiGateway::Method")
    role_id = method["Properties"]["Integration"]["Credentials"]["Fn::GetAtt"][0]
    [policy] = [p for p in synth.resources("AWS::IAM::Policy").values() if ref(role_id) in p["Properties"]["Roles"]]
    [statement] = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Resource"] == arn(synth.logical_id(synth.stack.processing.queue))
    assert set(as_list(statement["Action"])) <= {
        "sqs:SendMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
    }


def test_api_validates_body_against_topology_schema(synth: Synth) -> None:
    _, model = synth.one("AWS::ApiGateway::Model")
    bucket_id = synth.logical_id(synth.stack.storage.bucket)
    assert model["Properties"]["Schema"] == topology.process_request_detail_schema(ref(bucket_id))  # type: ignore[arg-type]
    synth.template.has_resource_properties(
        "AWS::ApiGateway::RequestValidator", {"ValidateRequestBody": True, "ValidateRequestParameters": True}
    )
    synth.template.has_resource_properties(
        "AWS::ApiGateway::Method", {"RequestModels": {"application/json": Match.any_value()}}
    )


def test_send_message_template_builds_the_process_request_envelope(synth: Synth) -> None:
    _, method = synth.one("AWS::ApiGateway::Method")
    template = method["Properties"]["Integration"]["RequestTemplates"]["application/json"]
    # The region is a deploy-time token: CloudFormation joins the template around it.
    parts = template["Fn::Join"][1]
    text = "".join(p if isinstance(p, str) else "us-east-1" for p in parts)
    body = text[text.index("Action=SendMessage") :]
    decoded = unquote(body)
    for fragment in (
        f'"source":"{topology.PROCESS_REQUEST_SOURCE}"',
        f'"detail-type":"{topology.PROCESS_REQUEST_DETAIL_TYPE}"',
        '"region":"us-east-1"',
        "\"detail\":$util.urlEncode($input.json('$'))}",
    ):
        assert fragment in decoded, fragment


# --- alarms and outputs -----------------------------------------------------------------------


def test_alarms_watch_dlqs_deliveries_backlog_errors_throttles_and_notify_the_topic(synth: Synth) -> None:
    topic_id, _ = synth.one("AWS::SNS::Topic")
    alarms = list(synth.resources("AWS::CloudWatch::Alarm").values())
    metrics = sorted((a["Properties"]["Namespace"], a["Properties"]["MetricName"]) for a in alarms)
    assert metrics == sorted(
        [("AWS/SQS", "ApproximateNumberOfMessagesVisible")] * 4
        + [("AWS/SQS", "ApproximateAgeOfOldestMessage")] * 5
        + [("AWS/Events", "FailedInvocations")] * 2
        + [("AWS/Lambda", "Errors"), ("AWS/Lambda", "Throttles"), ("AWS/Lambda", "Errors")]
    )
    for alarm in alarms:
        assert alarm["Properties"]["AlarmActions"] == [ref(topic_id)]
    watched = {
        d["Value"]["Fn::GetAtt"][0]
        for a in alarms
        if a["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
        for d in a["Properties"]["Dimensions"]
    }
    stack = synth.stack
    assert watched == {
        synth.logical_id(q)
        for q in (
            stack.processing.dead_letter_queue,
            stack.processing.raw_delivery_dlq,
            stack.events.subscriber_delivery_dlq,
            stack.refresh.dead_letter_queue,
        )
    }


def test_alarm_email_subscription_only_by_context(synth_kms: Synth) -> None:
    synth_kms.template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "data-oncall@example.com"}
    )


def test_outputs_cover_what_the_cli_needs(synth: Synth) -> None:
    assert set(synth.template_json["Outputs"]) == set(OUTPUT_KEYS)


def test_the_refresh_function_is_the_same_image_with_its_own_command_behind_a_fifo_queue(synth: Synth) -> None:
    _, processor = synth.processor()
    _, refresher = synth.refresher()
    assert refresher["Properties"]["Code"] == processor["Properties"]["Code"]  # one image asset
    assert refresher["Properties"]["ImageConfig"]["Command"] == ["handlers.refresh.lambda_handler"]
    environment = refresher["Properties"]["Environment"]["Variables"]
    assert environment["LAKE_ATHENA_WORKGROUP"] and int(environment["LAKE_REFRESH_ATHENA_THRESHOLD_BYTES"]) > 0
    # each function's logs and metrics carry its own service name, set here and nowhere in the handlers
    assert environment[topology.ENV_POWERTOOLS_SERVICE_NAME] == topology.REFRESH_SERVICE
    assert "LAKE_REFRESH_QUEUE_URL" in processor["Properties"]["Environment"]["Variables"]
    queue_id = synth.logical_id(synth.stack.refresh.queue)
    queue = synth.template_json["Resources"][queue_id]["Properties"]
    assert queue["FifoQueue"] is True and queue["QueueName"].endswith(".fifo")
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 3
    mappings = [
        m["Properties"]
        for m in synth.resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    ]
    assert mappings == [
        {
            "BatchSize": 10,
            "EventSourceArn": {"Fn::GetAtt": [queue_id, "Arn"]},
            "FunctionName": {"Ref": synth.refresher()[0]},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": 2},
        }
    ]


def test_the_only_table_deletion_is_the_refreshs_migration_of_the_old_per_file_names(synth: Synth) -> None:
    # A refresh renames an older lake's per-file table (experiment_results, ...) out of its view's way:
    # glue:DeleteTable on exactly those tables of the curated database, and nowhere else.
    deletions = []
    for resource in synth.template_json["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            if any(a.startswith("glue:Delete") for a in as_list(statement["Action"])):
                assert as_list(statement["Action"]) == ["glue:DeleteTable"], statement
                deletions += [str(r) for r in as_list(statement["Resource"])]
    expected = [f"table/{TOPO.curated_database}/{name}'" for name in topology.CURRENT_VIEWS]
    assert len(deletions) == len(expected) and all(any(e in d for d in deletions) for e in expected), deletions
