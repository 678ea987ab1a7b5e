"""What review found missing on AWS (issue 11 part 5) and what Iceberg tables need (issue 9 section 7).

Each test reads the synthesized template (or the cloud assembly) as CloudFormation will see it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Annotations, Match

import topology
from infra.config import CONTEXT_DEFAULTS, EVENT_MAX_AGE_SECONDS, EVENT_RETRY_ATTEMPTS
from infra.maintenance import OPTIMIZER_LOG_GROUPS
from infra.monitoring import NO_SUBSCRIBER_WARNING
from infra.processing import ARCHITECTURE_BUILD_ARG, BASE_IMAGE_BUILD_ARG, LEDGER_PREFIX
from tests.infra.conftest import CUSTOM_BASE_IMAGE, Synth

pytestmark = pytest.mark.infra

TOPO = topology.DEFAULT
READ_PREFIXES = [topology.RAW_PREFIX, topology.MODELS_PREFIX, topology.SETTINGS_PREFIX]
TABLE_PREFIXES = [topology.CURATED_PREFIX, topology.QUARANTINE_PREFIX]
#: The processing ledger's files: both functions append to lake_ops.processing_log.
LEDGER_PREFIXES = [LEDGER_PREFIX]


def ref(logical_id: str) -> dict[str, str]:
    return {"Ref": logical_id}


def arn(logical_id: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_statements(synth: Synth, role: Any) -> list[dict[str, Any]]:
    role_ref = ref(synth.logical_id(role))
    policies = [p for p in synth.resources("AWS::IAM::Policy").values() if role_ref in p["Properties"]["Roles"]]
    return [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]


def actions_on(statements: list[dict[str, Any]], prefix: str) -> dict[str, list[dict[str, Any]]]:
    """Action -> the statements granting it, for actions of one service (``s3:``)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for statement in statements:
        for action in as_list(statement["Action"]):
            if action.startswith(prefix):
                found.setdefault(action, []).append(statement)
    return found


def object_prefixes(synth: Synth, statements: list[dict[str, Any]]) -> set[str]:
    """The key prefixes (``raw/``) of object ARNs in ``statements``; fails on any other S3 resource."""
    bucket_arn = arn(synth.logical_id(synth.stack.storage.bucket))
    prefixes = set()
    for statement in statements:
        for resource in as_list(statement["Resource"]):
            parts = resource["Fn::Join"][1]
            assert parts[0] == bucket_arn and parts[1].startswith("/") and parts[1].endswith("*"), resource
            prefixes.add(parts[1][1:-1])
    return prefixes


# --- architecture and the image --------------------------------------------------------------


def image_asset(synth: Synth) -> dict[str, Any]:
    [manifest] = synth.outdir.glob("*.assets.json")
    [image] = json.loads(manifest.read_text())["dockerImages"].values()
    source: dict[str, Any] = image["source"]
    return source


def test_image_builds_for_arm64_on_the_pinned_base_by_default(synth: Synth) -> None:
    source = image_asset(synth)
    assert source["platform"] == "linux/arm64"
    assert source["dockerBuildArgs"] == {
        BASE_IMAGE_BUILD_ARG: CONTEXT_DEFAULTS["baseImage"],
        ARCHITECTURE_BUILD_ARG: "arm64",
    }
    assert "@sha256:" in source["dockerBuildArgs"][BASE_IMAGE_BUILD_ARG]
    synth.template.has_resource_properties("AWS::Lambda::Function", {"Architectures": ["arm64"]})


def test_x86_64_and_another_base_are_context_choices(synth_kms: Synth) -> None:
    source = image_asset(synth_kms)
    assert source["platform"] == "linux/amd64"
    assert source["dockerBuildArgs"] == {BASE_IMAGE_BUILD_ARG: CUSTOM_BASE_IMAGE, ARCHITECTURE_BUILD_ARG: "amd64"}
    synth_kms.template.has_resource_properties("AWS::Lambda::Function", {"Architectures": ["x86_64"]})


def test_reserved_concurrency_only_when_asked(synth: Synth, synth_kms: Synth) -> None:
    assert "ReservedConcurrentExecutions" not in synth.processor()[1]["Properties"]
    synth_kms.template.has_resource_properties("AWS::Lambda::Function", {"ReservedConcurrentExecutions": 5})


# --- the function's permissions --------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["synth", "synth_kms"])
def test_function_s3_grants_are_exactly_what_the_handler_calls(fixture: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(fixture)
    s3 = actions_on(role_statements(synth, synth.stack.processing.role), "s3:")
    assert sorted(s3) == [
        "s3:AbortMultipartUpload",
        "s3:DeleteObject",
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:ListBucket",
        "s3:PutObject",
    ]
    # No DeleteObjectVersion (versioning stays a recovery path), no object lock or tagging writes.
    assert object_prefixes(synth, s3["s3:GetObject"]) == set(READ_PREFIXES + TABLE_PREFIXES + LEDGER_PREFIXES)
    assert object_prefixes(synth, s3["s3:GetObjectVersion"]) == {topology.RAW_PREFIX}
    for write in ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"):
        assert object_prefixes(synth, s3[write]) == set(TABLE_PREFIXES + LEDGER_PREFIXES), write


def test_refresh_function_reads_what_its_report_reads_and_only_puts_reports(synth: Synth) -> None:
    s3 = actions_on(role_statements(synth, synth.stack.refresh.role), "s3:")
    # The report of a dataset draws its quarantine table: without quarantine/ the whole report is lost.
    assert object_prefixes(synth, s3["s3:GetObject"]) >= {
        topology.CURATED_PREFIX,
        topology.QUARANTINE_PREFIX,
        topology.MODELS_PREFIX,
    }
    assert topology.RAW_PREFIX not in object_prefixes(synth, s3["s3:GetObject"])
    assert topology.REPORTS_PREFIX in object_prefixes(synth, s3["s3:PutObject"])
    for write in ("s3:DeleteObject", "s3:AbortMultipartUpload"):
        assert topology.REPORTS_PREFIX not in object_prefixes(synth, s3[write]), write
        assert topology.QUARANTINE_PREFIX not in object_prefixes(synth, s3[write]), write
    assert topology.QUARANTINE_PREFIX not in object_prefixes(synth, s3["s3:PutObject"])


def test_function_lists_only_the_prefixes_it_reads(synth: Synth) -> None:
    s3 = actions_on(role_statements(synth, synth.stack.processing.role), "s3:")
    listing, ledger = s3["s3:ListBucket"]
    assert listing["Resource"] == ledger["Resource"] == arn(synth.logical_id(synth.stack.storage.bucket))
    assert listing["Condition"] == {"StringLike": {"s3:prefix": [f"{p}*" for p in READ_PREFIXES + TABLE_PREFIXES]}}
    assert ledger["Condition"] == {"StringLike": {"s3:prefix": [f"{p}*" for p in LEDGER_PREFIXES]}}


def test_function_writes_its_own_log_group_only_with_no_managed_policy(synth: Synth) -> None:
    role = synth.template_json["Resources"][synth.logical_id(synth.stack.processing.role)]
    assert "ManagedPolicyArns" not in role["Properties"]
    logs = actions_on(role_statements(synth, synth.stack.processing.role), "logs:")
    assert sorted(logs) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    for statements in logs.values():
        for statement in statements:
            assert statement["Resource"] == arn(synth.logical_id(synth.stack.processing.log_group))
    function = synth.processor()[1]["Properties"]
    assert function["LoggingConfig"]["LogGroup"] == ref(synth.logical_id(synth.stack.processing.log_group))


def test_function_glue_grants_are_what_pyiceberg_and_the_optimizers_need(synth: Synth) -> None:
    glue = actions_on(role_statements(synth, synth.stack.processing.role), "glue:")
    # pyiceberg's Glue catalog: GetDatabase (S3 Tables check on create), GetTable (load, commit),
    # GetTables (list), CreateTable (first write), UpdateTable (commit with VersionId).
    assert sorted(glue) == [
        "glue:CreateTable",
        "glue:CreateTableOptimizer",
        "glue:GetDatabase",
        "glue:GetTable",
        "glue:GetTableOptimizer",
        "glue:GetTables",
        "glue:UpdateTable",
    ]
    rendered = json.dumps([s["Resource"] for statements in glue.values() for s in statements])
    for name in (TOPO.curated_database, TOPO.quarantine_database):
        assert f":database/{name}" in rendered and f":table/{name}/*" in rendered
    # The ops database for the processing ledger only, its table named (no wildcard).
    assert f':table/{TOPO.ops_database}/{topology.PROCESSING_LOG_TABLE}"' in rendered
    assert f":table/{TOPO.ops_database}/*" not in rendered
    assert rendered.count(":database/") == 3 * len(glue) and ":database/*" not in rendered


def test_function_passes_exactly_the_optimizer_role_to_glue(synth: Synth) -> None:
    iam = actions_on(role_statements(synth, synth.stack.processing.role), "iam:")
    assert list(iam) == ["iam:PassRole"]
    [statement] = iam["iam:PassRole"]
    assert statement["Resource"] == arn(synth.logical_id(synth.stack.maintenance.role))
    assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "glue.amazonaws.com"}}


def test_optimizer_role_is_glues_with_the_documented_permissions_scoped_to_the_tables(synth: Synth) -> None:
    role_id = synth.logical_id(synth.stack.maintenance.role)
    role = synth.template_json["Resources"][role_id]["Properties"]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "glue.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
    statements = role_statements(synth, synth.stack.maintenance.role)
    s3 = actions_on(statements, "s3:")
    assert sorted(s3) == ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:ListBucket", "s3:PutObject"]
    # Glue's optimizers maintain the lake's tables and the processing ledger (ops/).
    maintained = [*TABLE_PREFIXES, topology.OPS_PREFIX]
    for action, granted in s3.items():
        if action != "s3:ListBucket":
            assert object_prefixes(synth, granted) == set(maintained), action
    [listing] = s3["s3:ListBucket"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": [f"{p}*" for p in maintained]}}
    assert sorted(actions_on(statements, "glue:")) == ["glue:GetTable", "glue:UpdateTable"]
    [logs] = [s for s in statements if "logs:PutLogEvents" in as_list(s["Action"])]
    groups = sorted(r["Fn::Join"][1][-1].split("log-group:")[1] for r in logs["Resource"])
    assert groups == sorted(f"{g}:*" for g in OPTIMIZER_LOG_GROUPS)


def test_nag_reasons_name_every_s3_action_really_granted(synth: Synth) -> None:
    role_ref = ref(synth.logical_id(synth.stack.processing.role))
    [policy] = [p for p in synth.resources("AWS::IAM::Policy").values() if role_ref in p["Properties"]["Roles"]]
    acks = policy["Metadata"]["cdk_nag"]["rules_to_suppress"]
    [s3_reason] = {a["reason"] for a in acks if a["id"].endswith("/raw/*]")}
    for action in actions_on(role_statements(synth, synth.stack.processing.role), "s3:"):
        assert action.removeprefix("s3:") in s3_reason, action
    # The old reasons claimed action groups and a managed policy that are no longer granted.
    text = json.dumps(acks)
    assert "DeleteObject*" not in text and "GetBucket*" not in text and "AWSLambdaBasicExecutionRole" not in text


# --- EventBridge rules: retries, dead letters, alarms ----------------------------------------


@pytest.mark.parametrize(("rule_attr", "target_attr"), [("raw", "queue"), ("subscriber", "subscriber_queue")])
def test_both_rules_retry_then_dead_letter_and_alarm_on_failed_invocations(
    synth: Synth, rule_attr: str, target_attr: str
) -> None:
    stack = synth.stack
    if rule_attr == "raw":
        rule, target, dlq, bus = (
            stack.processing.raw_rule,
            stack.processing.queue,
            stack.processing.raw_delivery_dlq,
            None,
        )
    else:
        rule, target, dlq, bus = (
            stack.events.subscriber_rule,
            stack.events.subscriber_queue,
            stack.events.subscriber_delivery_dlq,
            stack.events.bus,
        )
    rule_id, dlq_id = synth.logical_id(rule), synth.logical_id(dlq)
    [rule_target] = synth.template_json["Resources"][rule_id]["Properties"]["Targets"]
    assert rule_target["Arn"] == arn(synth.logical_id(target))
    assert rule_target["DeadLetterConfig"] == {"Arn": arn(dlq_id)}
    assert rule_target["RetryPolicy"] == {
        "MaximumRetryAttempts": EVENT_RETRY_ATTEMPTS,
        "MaximumEventAgeInSeconds": EVENT_MAX_AGE_SECONDS,
    }
    # EventBridge may send to the DLQ only for this rule.
    synth.template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "Queues": [ref(dlq_id)],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": "sqs:SendMessage",
                                "Principal": {"Service": "events.amazonaws.com"},
                                "Condition": {"ArnEquals": {"aws:SourceArn": arn(rule_id)}},
                            }
                        )
                    ]
                )
            },
        },
    )
    dimensions = [{"Name": "RuleName", "Value": ref(rule_id)}]
    if bus is not None:  # rules on a custom bus report under both names
        dimensions.insert(0, {"Name": "EventBusName", "Value": ref(synth.logical_id(bus))})
    synth.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AWS/Events",
            "MetricName": "FailedInvocations",
            "Dimensions": Match.array_equals(dimensions) if bus is None else Match.array_with(dimensions),
            "Statistic": "Sum",
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        },
    )


def test_raw_rule_routes_created_and_deleted_objects_under_its_topology_name(synth: Synth) -> None:
    rule = synth.template_json["Resources"][synth.logical_id(synth.stack.processing.raw_rule)]["Properties"]
    assert rule["Name"] == TOPO.raw_rule_name == "lake-raw-object-events"
    assert rule["EventPattern"]["detail-type"] == ["Object Created", "Object Deleted"]


# --- alarm topic and dead-letter ages --------------------------------------------------------


def test_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use(synth: Synth) -> None:
    _, topic = synth.one("AWS::SNS::Topic")
    key_id = synth.logical_id(synth.stack.monitoring.key)
    assert topic["Properties"]["KmsMasterKeyId"] == arn(key_id)
    key = synth.template_json["Resources"][key_id]["Properties"]
    assert key["EnableKeyRotation"] is True
    [cloudwatch] = [
        s for s in key["KeyPolicy"]["Statement"] if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert set(as_list(cloudwatch["Action"])) == {"kms:Decrypt", "kms:GenerateDataKey*"}


def test_synth_warns_when_no_one_hears_the_alarms(synth: Synth, synth_kms: Synth) -> None:
    Annotations.from_stack(synth.stack).has_warning("*", Match.string_like_regexp("No one is subscribed"))
    Annotations.from_stack(synth_kms.stack).has_no_warning("*", Match.string_like_regexp("No one is subscribed"))
    assert "alarmEmail" in NO_SUBSCRIBER_WARNING and "\n" not in NO_SUBSCRIBER_WARNING


@pytest.mark.parametrize(("fixture", "days"), [("synth", CONTEXT_DEFAULTS["deadLetterAgeAlarmDays"]), ("synth_kms", 7)])
def test_every_dlq_alarms_again_before_its_messages_expire(
    fixture: str, days: int, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(fixture)
    stack = synth.stack
    queues = (
        stack.processing.dead_letter_queue,
        stack.processing.raw_delivery_dlq,
        stack.events.subscriber_delivery_dlq,
    )
    resources = synth.template_json["Resources"]
    for queue in queues:
        queue_id = synth.logical_id(queue)
        retention = resources[queue_id]["Properties"]["MessageRetentionPeriod"]
        [age] = [
            a["Properties"]
            for a in synth.resources("AWS::CloudWatch::Alarm").values()
            if a["Properties"]["MetricName"] == "ApproximateAgeOfOldestMessage"
            and a["Properties"]["Dimensions"][0]["Value"] == {"Fn::GetAtt": [queue_id, "QueueName"]}
        ]
        assert age["Threshold"] == days * 24 * 3600 < retention


# --- Athena -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fixture", "megabytes"), [("synth", 10240), ("synth_kms", 1024)])
def test_athena_workgroup_runs_engine_3_with_a_bytes_scanned_cutoff(
    fixture: str, megabytes: int, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(fixture)
    _, workgroup = synth.one("AWS::Athena::WorkGroup")
    config = workgroup["Properties"]["WorkGroupConfiguration"]
    assert config["EngineVersion"] == {"SelectedEngineVersion": "Athena engine version 3"}
    assert config["BytesScannedCutoffPerQuery"] == megabytes * 1024 * 1024
