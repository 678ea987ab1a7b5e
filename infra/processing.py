"""Routing and compute: raw-object rule -> processing queue (+DLQ) -> container function."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

import topology
from infra import nag
from infra.config import DeploySettings
from infra.delivery import delivery_dead_letter_queue, queue_target
from infra.patterns import event_pattern
from infra.storage import LakeStorage

#: The Docker build context: the repository root (``.dockerignore`` keeps it to what the image needs).
REPO_ROOT = Path(__file__).resolve().parent.parent

#: Lambda architecture, CDK build platform and the Dockerfile's architecture build argument value.
_ARCHITECTURES = {
    "arm64": (lambda_.Architecture.ARM_64, ecr_assets.Platform.LINUX_ARM64, "arm64"),
    "x86_64": (lambda_.Architecture.X86_64, ecr_assets.Platform.LINUX_AMD64, "amd64"),
}
#: Build arguments the Dockerfile declares: the pinned base, and the architecture in Docker's
#: ``TARGETARCH`` spelling (``arm64``/``amd64``) for steps that pick architecture-specific wheels.
BASE_IMAGE_BUILD_ARG = "BASE_IMAGE"
ARCHITECTURE_BUILD_ARG = "TARGETARCH"

#: Catalog actions pyiceberg's Glue catalog calls to load, create and commit Iceberg tables
#: (``UpdateTable`` carries the table's ``VersionId``, so a concurrent commit is refused, not lost).
#: Nothing that deletes a table or a database: the handler never drops either.
GLUE_ACTIONS = (
    "glue:GetDatabase",
    "glue:GetTable",
    "glue:GetTables",
    "glue:CreateTable",
    "glue:UpdateTable",
)
#: The handler switches Glue's maintenance on for every Iceberg table it creates.
GLUE_OPTIMIZER_ACTIONS = ("glue:CreateTableOptimizer", "glue:GetTableOptimizer")
#: Where the processing ledger's Iceberg data and metadata live (``ops/processing_log/``): both
#: functions append to it, so both may read, write and (for pyiceberg's clean-up of a retried
#: commit's unused manifests) delete the current version of objects there, and nothing else under ops/.
LEDGER_PREFIX = f"{topology.OPS_PREFIX}{topology.PROCESSING_LOG_TABLE}/"


def ledger_statements(storage: LakeStorage) -> list[iam.PolicyStatement]:
    """S3 grants of a function that appends to the processing ledger (its Glue grants join the
    function's catalog statement, on the ops database and the ledger table by name)."""
    bucket = storage.bucket
    return [
        iam.PolicyStatement(
            actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
            resources=[bucket.arn_for_objects(f"{LEDGER_PREFIX}*")],
        ),
        iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{LEDGER_PREFIX}*"]}},
        ),
    ]


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
        optimizer_role: iam.IRole,
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

        self.raw_delivery_dlq = delivery_dead_letter_queue(
            self, "RawEventsDeliveryDLQ", delivers_to="the processing queue (raw/ object events)"
        )
        self.raw_rule = events.Rule(
            self,
            "RawObjectEvents",
            rule_name=topo.raw_rule_name,
            description="S3 Object Created and Object Deleted under raw/ of the lake bucket -> processing queue",
            # S3 publishes to the account's default bus; the bucket name is a token until deploy.
            event_pattern=event_pattern(topo.raw_object_events_pattern(storage.bucket.bucket_name)),
            targets=[queue_target(self.queue, self.raw_delivery_dlq)],
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

        # The key personal data is pseudonymised with (HMAC-SHA-256): generated here, never output,
        # readable by the processing function alone. Retained like the bucket: the curated rows'
        # pseudonyms are only comparable with new ones while the key lives.
        self.pseudonym_secret = secretsmanager.Secret(
            self,
            "PseudonymKey",
            description="Key of the lake's pseudonyms of personal data (HMAC-SHA-256) in curated and quarantine tables",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64, exclude_punctuation=True, include_space=False
            ),
            encryption_key=storage.key,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        nag.acknowledge(
            self.pseudonym_secret,
            "AwsSolutions-SMG4",
            "the pseudonym key must not rotate on a schedule: a new key gives every person a new pseudonym, "
            "so rows written before no longer join with new ones until raw/ is reprocessed (docs/personal-data.md)",
        )

        architecture, platform, arch_arg = _ARCHITECTURES[settings.architecture]
        self.log_group = logs.LogGroup(
            self,
            "FunctionLogs",
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        # RetentionDays is an enum of names; the validated number goes straight to CloudFormation.
        log_group_l1 = self.log_group.node.default_child
        assert isinstance(log_group_l1, logs.CfnLogGroup)
        log_group_l1.retention_in_days = settings.log_retention_days

        # Our own role instead of CDK's default, which attaches AWSLambdaBasicExecutionRole
        # (log writes to every log group in the account): this one may write to its log group only.
        self.role = iam.Role(
            self,
            "ProcessorRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="The lake processor: its log group, the lake's prefixes and tables, the bus, idempotency",
        )
        self.log_group.grant_write(self.role)

        self.function = lambda_.DockerImageFunction(
            self,
            "Processor",
            description="Cleans and validates raw/ files into Iceberg tables of the lake's Glue databases",
            code=lambda_.DockerImageCode.from_image_asset(
                str(REPO_ROOT),
                file="Dockerfile",
                platform=platform,
                build_args={BASE_IMAGE_BUILD_ARG: settings.base_image, ARCHITECTURE_BUILD_ARG: arch_arg},
            ),
            architecture=architecture,
            role=self.role,
            memory_size=settings.function_memory_mb,
            timeout=cdk.Duration.seconds(settings.function_timeout_seconds),
            ephemeral_storage_size=cdk.Size.mebibytes(settings.ephemeral_storage_mb),
            reserved_concurrent_executions=settings.reserved_concurrency,
            log_group=self.log_group,
            environment=self.environment(topo, storage, bus, optimizer_role),
        )
        # This function's alone: the refresh function shares ``environment`` but never needs the key.
        self.function.add_environment(topology.ENV_PSEUDONYM_SECRET, self.pseudonym_secret.secret_arn)
        self.function.add_event_source(
            sources.SqsEventSource(
                self.queue,
                batch_size=queue_settings.batch_size,
                max_batching_window=cdk.Duration.seconds(queue_settings.batching_window_seconds),
                report_batch_item_failures=True,
                max_concurrency=settings.max_concurrency,
            )
        )
        self._grant(storage, bus, optimizer_role)

    def environment(
        self, topo: topology.Topology, storage: LakeStorage, bus: events.IEventBus, optimizer_role: iam.IRole
    ) -> dict[str, str]:
        """What the handler's settings read; the names live in ``topology`` (``ENV_*``)."""
        return {
            topology.ENV_BUCKET: storage.bucket.bucket_name,
            topology.ENV_EVENT_BUS: bus.event_bus_name,
            topology.ENV_CURATED_DATABASE: topo.curated_database,
            topology.ENV_QUARANTINE_DATABASE: topo.quarantine_database,
            topology.ENV_OPS_DATABASE: topo.ops_database,
            topology.ENV_IDEMPOTENCY_TABLE: self.idempotency_table.table_name,
            topology.ENV_IDEMPOTENCY_TTL_SECONDS: str(topo.idempotency_ttl_seconds),
            topology.ENV_MAX_RECEIVE_COUNT: str(topo.queue.max_receive_count),
            topology.ENV_TABLE_OPTIMIZER_ROLE_ARN: optimizer_role.role_arn,
            topology.ENV_POWERTOOLS_SERVICE_NAME: topology.PROCESS_SERVICE,
        }

    def _grant(self, storage: LakeStorage, bus: events.IEventBus, optimizer_role: iam.IRole) -> None:
        """Exactly the actions the handler calls, each on the narrowest resource that works.

        Not CDK's ``bucket.grant_*``: those add ``s3:DeleteObjectVersion`` (which would let a bug
        destroy the versions that make recovery possible), object lock and tagging writes, and
        ``s3:List*``/``s3:GetBucket*`` on the whole bucket.
        """
        bucket = storage.bucket
        readable = (*self.READ_PREFIXES, *self.WRITE_PREFIXES)
        statements = [
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[bucket.arn_for_objects(f"{p}*") for p in readable]
            ),
            # A raw object is read at the exact version its event named.
            iam.PolicyStatement(
                actions=["s3:GetObjectVersion"], resources=[bucket.arn_for_objects(f"{topology.RAW_PREFIX}*")]
            ),
            # Iceberg data and metadata files; DeleteObject only removes the current version (a
            # delete marker), so every earlier version stays recoverable until the lifecycle rule.
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                resources=[bucket.arn_for_objects(f"{p}*") for p in self.WRITE_PREFIXES],
            ),
            # Listing is what makes a missing object a 404 instead of a 403 (no settings file,
            # pyiceberg's check that a new metadata file does not exist yet), and it lists
            # models/<dataset>/. Only under the prefixes it reads.
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in readable]}},
            ),
            iam.PolicyStatement(
                actions=[*GLUE_ACTIONS, *GLUE_OPTIMIZER_ACTIONS],
                resources=[storage.catalog_arn, *storage.database_arns(), *storage.ledger_arns()],
            ),
            *ledger_statements(storage),
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[optimizer_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "glue.amazonaws.com"}},
            ),
        ]
        if storage.key is not None:
            statements.append(
                iam.PolicyStatement(actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[storage.key.key_arn])
            )
        for statement in statements:
            self.role.add_to_policy(statement)
        bus.grant_put_events_to(self.role)
        self.idempotency_table.grant_read_write_data(self.role)
        self.pseudonym_secret.grant_read(self.role)
