"""Routing and compute: raw-object rule -> processing queue (+DLQ) -> container function."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

import topology
from infra.config import DeploySettings
from infra.patterns import event_pattern
from infra.storage import LakeStorage

#: The Docker build context: the repository root (``.dockerignore`` keeps it to what the image needs).
REPO_ROOT = Path(__file__).resolve().parent.parent

_ARCHITECTURES = {
    "x86_64": (lambda_.Architecture.X86_64, ecr_assets.Platform.LINUX_AMD64),
    "arm64": (lambda_.Architecture.ARM_64, ecr_assets.Platform.LINUX_ARM64),
}

#: Catalog actions the handler needs to register tables and partitions; nothing that drops databases.
GLUE_ACTIONS = (
    "glue:GetDatabase",
    "glue:GetTable",
    "glue:GetTables",
    "glue:CreateTable",
    "glue:UpdateTable",
    "glue:GetPartition",
    "glue:GetPartitions",
    "glue:BatchGetPartition",
    "glue:CreatePartition",
    "glue:BatchCreatePartition",
    "glue:UpdatePartition",
    "glue:BatchUpdatePartition",
    "glue:DeletePartition",
    "glue:BatchDeletePartition",
)


class Processing(Construct):
    """The queue pair, the raw-object rule, the idempotency table and the processor function."""

    #: The function reads what users bring and writes only outputs and rejects.
    READ_PREFIXES = (topology.RAW_PREFIX, topology.MODELS_PREFIX, topology.SETTINGS_PREFIX)
    WRITE_PREFIXES = (topology.CURATED_PREFIX, topology.QUARANTINE_PREFIX)

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DeploySettings,
        topo: topology.Topology,
        storage: LakeStorage,
        bus: events.IEventBus,
    ) -> None:
        super().__init__(scope, construct_id)
        queue_settings = topo.queue

        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            queue_name=topo.dlq_name,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(queue_settings.dlq_retention_days),
        )
        self.queue = sqs.Queue(
            self,
            "ProcessingQueue",
            queue_name=topo.queue_name,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=cdk.Duration.seconds(settings.visibility_timeout_seconds),
            receive_message_wait_time=cdk.Duration.seconds(queue_settings.receive_wait_seconds),
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=queue_settings.max_receive_count, queue=self.dead_letter_queue
            ),
        )

        self.raw_rule = events.Rule(
            self,
            "RawObjectCreated",
            rule_name=topo.raw_rule_name,
            description="S3 Object Created under raw/ of the lake bucket -> processing queue",
            # S3 publishes to the account's default bus; the bucket name is a token until deploy.
            event_pattern=event_pattern(topo.raw_object_events_pattern(storage.bucket.bucket_name)),
            targets=[targets.SqsQueue(self.queue)],
        )

        self.idempotency_table = dynamodb.TableV2(
            self,
            "IdempotencyTable",
            table_name=topo.idempotency_table,
            partition_key=dynamodb.Attribute(
                name=topology.IDEMPOTENCY_KEY_ATTRIBUTE, type=dynamodb.AttributeType.STRING
            ),
            billing=dynamodb.Billing.on_demand(),
            time_to_live_attribute=topology.IDEMPOTENCY_TTL_ATTRIBUTE,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            # Records expire within days and only prevent double work; nothing to keep on teardown.
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )

        architecture, platform = _ARCHITECTURES[settings.architecture]
        self.log_group = logs.LogGroup(
            self,
            "FunctionLogs",
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        # RetentionDays is an enum of names; the validated number goes straight to CloudFormation.
        log_group_l1 = self.log_group.node.default_child
        assert isinstance(log_group_l1, logs.CfnLogGroup)
        log_group_l1.retention_in_days = settings.log_retention_days

        self.function = lambda_.DockerImageFunction(
            self,
            "Processor",
            description="Cleans, validates and models raw/ files into curated/ Parquet and Glue tables",
            code=lambda_.DockerImageCode.from_image_asset(str(REPO_ROOT), file="Dockerfile", platform=platform),
            architecture=architecture,
            memory_size=settings.function_memory_mb,
            timeout=cdk.Duration.seconds(settings.function_timeout_seconds),
            ephemeral_storage_size=cdk.Size.mebibytes(settings.ephemeral_storage_mb),
            log_group=self.log_group,
            environment=self.environment(topo, storage, bus),
        )
        self.function.add_event_source(
            sources.SqsEventSource(
                self.queue,
                batch_size=queue_settings.batch_size,
                max_batching_window=cdk.Duration.seconds(queue_settings.batching_window_seconds),
                report_batch_item_failures=True,
                max_concurrency=queue_settings.max_concurrency,
            )
        )
        self._grant(storage, bus)

    def environment(self, topo: topology.Topology, storage: LakeStorage, bus: events.IEventBus) -> dict[str, str]:
        """What the handler's settings read; the names live in ``topology`` (``ENV_*``)."""
        return {
            topology.ENV_BUCKET: storage.bucket.bucket_name,
            topology.ENV_EVENT_BUS: bus.event_bus_name,
            topology.ENV_CURATED_DATABASE: topo.curated_database,
            topology.ENV_QUARANTINE_DATABASE: topo.quarantine_database,
            topology.ENV_IDEMPOTENCY_TABLE: self.idempotency_table.table_name,
            topology.ENV_IDEMPOTENCY_TTL_SECONDS: str(topo.idempotency_ttl_seconds),
            topology.ENV_MAX_RECEIVE_COUNT: str(topo.queue.max_receive_count),
            "POWERTOOLS_SERVICE_NAME": topology.EVENT_SOURCE,
        }

    def _grant(self, storage: LakeStorage, bus: events.IEventBus) -> None:
        fn = self.function
        bucket = storage.bucket
        for prefix in self.READ_PREFIXES:
            bucket.grant_read(fn, f"{prefix}*")
        for prefix in self.WRITE_PREFIXES:
            # Delete: reprocessing an object replaces exactly its own earlier output files.
            bucket.grant_read(fn, f"{prefix}*")
            bucket.grant_put(fn, f"{prefix}*")
            bucket.grant_delete(fn, f"{prefix}*")
        bus.grant_put_events_to(fn)
        self.idempotency_table.grant_read_write_data(fn)
        fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=list(GLUE_ACTIONS),
                resources=[storage.catalog_arn, *storage.database_arns()],
            )
        )
