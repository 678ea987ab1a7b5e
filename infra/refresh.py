"""The refresh stage: a FIFO refresh queue (+ FIFO DLQ) -> the second function of the same image.

The per-file function sends a request per commit (message group = dataset); this function, with
its own CMD (``handlers.refresh.lambda_handler``), recomputes the dataset's models over its whole
history with DuckDB, or with Athena in the lake's workgroup when the inputs outgrow it.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

import topology
from infra.config import DeploySettings
from infra.processing import (
    _ARCHITECTURES,
    ARCHITECTURE_BUILD_ARG,
    BASE_IMAGE_BUILD_ARG,
    GLUE_ACTIONS,
    REPO_ROOT,
    Processing,
    ledger_statements,
)
from infra.storage import LakeStorage

#: The handler the refresh function's image runs (the image's default CMD is the per-file one).
REFRESH_HANDLER = "handlers.refresh.lambda_handler"
#: Athena calls of the refresh's large-dataset path, on the lake's workgroup only.
ATHENA_ACTIONS = (
    "athena:StartQueryExecution",
    "athena:GetQueryExecution",
    "athena:GetQueryResults",
    "athena:StopQueryExecution",
)


class Refresh(Construct):
    """The refresh queue pair and the refresh function, with exactly the grants it needs."""

    #: Reads the curated history, the quarantine (the report's "quarantined rows and why") and users'
    #: models; writes model tables (curated/) and Athena's results; puts reports (never deletes one).
    READ_PREFIXES = (
        topology.CURATED_PREFIX,
        topology.QUARANTINE_PREFIX,
        topology.MODELS_PREFIX,
        topology.ATHENA_RESULTS_PREFIX,
    )
    WRITE_PREFIXES = (topology.CURATED_PREFIX, topology.ATHENA_RESULTS_PREFIX)
    PUT_ONLY_PREFIXES = (topology.REPORTS_PREFIX,)

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DeploySettings,
        topo: topology.Topology,
        storage: LakeStorage,
        bus: events.IEventBus,
        processing: Processing,
        optimizer_role: iam.IRole,
    ) -> None:
        super().__init__(scope, construct_id)
        refresh = topo.refresh
        queue_settings = refresh.queue
        self.dead_letter_queue = sqs.Queue(
            self,
            "RefreshDeadLetterQueue",
            queue_name=topo.refresh_dlq_name,
            fifo=True,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(queue_settings.dlq_retention_days),
        )
        self.queue = sqs.Queue(
            self,
            "RefreshQueue",
            queue_name=topo.refresh_queue_name,
            fifo=True,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=cdk.Duration.seconds(queue_settings.visibility_timeout_seconds),
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=queue_settings.max_receive_count, queue=self.dead_letter_queue
            ),
        )
        self.log_group = logs.LogGroup(self, "RefreshLogs", removal_policy=cdk.RemovalPolicy.DESTROY)
        log_group_l1 = self.log_group.node.default_child
        assert isinstance(log_group_l1, logs.CfnLogGroup)
        log_group_l1.retention_in_days = settings.log_retention_days
        self.role = iam.Role(
            self,
            "RefreshRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="The lake's refresh: its log group, curated history, model tables, Athena, the bus",
        )
        self.log_group.grant_write(self.role)
        architecture, platform, arch_arg = _ARCHITECTURES[settings.architecture]
        self.function = lambda_.DockerImageFunction(
            self,
            "Refresher",
            description="Recomputes a dataset's models over its whole curated history (same image, own CMD)",
            code=lambda_.DockerImageCode.from_image_asset(
                str(REPO_ROOT),
                file="Dockerfile",
                platform=platform,
                build_args={BASE_IMAGE_BUILD_ARG: settings.base_image, ARCHITECTURE_BUILD_ARG: arch_arg},
                cmd=[REFRESH_HANDLER],
            ),
            architecture=architecture,
            role=self.role,
            memory_size=max(settings.function_memory_mb, refresh.memory_mb),
            timeout=cdk.Duration.seconds(queue_settings.function_timeout_seconds),
            ephemeral_storage_size=cdk.Size.mebibytes(settings.ephemeral_storage_mb),
            log_group=self.log_group,
            environment={
                **processing.environment(topo, storage, bus, optimizer_role),
                topology.ENV_MAX_RECEIVE_COUNT: str(queue_settings.max_receive_count),
                topology.ENV_ATHENA_WORKGROUP: storage.workgroup.ref,
                topology.ENV_REFRESH_ATHENA_THRESHOLD_BYTES: str(refresh.athena_threshold_bytes),
                topology.ENV_POWERTOOLS_SERVICE_NAME: topology.REFRESH_SERVICE,
            },
        )
        # FIFO event sources take no batching window; a batch holds one dataset's requests in order.
        self.function.add_event_source(
            sources.SqsEventSource(
                self.queue,
                batch_size=queue_settings.batch_size,
                report_batch_item_failures=True,
                max_concurrency=queue_settings.max_concurrency,
            )
        )
        # The per-file function asks for refreshes.
        processing.function.add_environment(topology.ENV_REFRESH_QUEUE_URL, self.queue.queue_url)
        self.queue.grant_send_messages(processing.role)
        self._grant(storage, bus, processing, optimizer_role)

    def _grant(
        self, storage: LakeStorage, bus: events.IEventBus, processing: Processing, optimizer_role: iam.IRole
    ) -> None:
        bucket = storage.bucket
        statements = [
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[bucket.arn_for_objects(f"{p}*") for p in self.READ_PREFIXES]
            ),
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                resources=[bucket.arn_for_objects(f"{p}*") for p in self.WRITE_PREFIXES],
            ),
            iam.PolicyStatement(
                actions=["s3:PutObject"], resources=[bucket.arn_for_objects(f"{p}*") for p in self.PUT_ONLY_PREFIXES]
            ),
            iam.PolicyStatement(
                actions=["s3:ListBucket", "s3:GetBucketLocation"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in self.READ_PREFIXES]}},
            ),
            iam.PolicyStatement(
                actions=[*GLUE_ACTIONS, "glue:GetPartitions", "glue:CreateTableOptimizer", "glue:GetTableOptimizer"],
                resources=[storage.catalog_arn, *storage.database_arns(), *storage.ledger_arns()],
            ),
            # Renaming an older lake's per-file table out of its view's way deletes that one table.
            iam.PolicyStatement(actions=["glue:DeleteTable"], resources=storage.renamed_table_arns()),
            *ledger_statements(storage),
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[optimizer_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "glue.amazonaws.com"}},
            ),
            iam.PolicyStatement(
                actions=list(ATHENA_ACTIONS),
                resources=[
                    cdk.Stack.of(self).format_arn(
                        service="athena", resource="workgroup", resource_name=storage.workgroup.ref
                    )
                ],
            ),
        ]
        if storage.key is not None:
            statements.append(
                iam.PolicyStatement(actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[storage.key.key_arn])
            )
        for statement in statements:
            self.role.add_to_policy(statement)
        bus.grant_put_events_to(self.role)
        processing.idempotency_table.grant_read_write_data(self.role)
