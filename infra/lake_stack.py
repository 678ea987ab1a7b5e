"""The one stack of the lake processor: storage, events, processing, HTTP entry, alarms, outputs."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

import topology
from infra import nag
from infra.config import DeploySettings
from infra.lake_events import LakeEvents
from infra.maintenance import OPTIMIZER_LOG_GROUPS, TABLE_PREFIXES, TableMaintenance
from infra.monitoring import Monitoring
from infra.process_api import ProcessApi
from infra.processing import LEDGER_PREFIX, Processing
from infra.refresh import Refresh
from infra.storage import LakeStorage

#: CloudFormation output keys; the ``lake`` CLI finds the deployment through them.
OUTPUT_KEYS = (
    "BucketName",
    "ProcessingQueueUrl",
    "DeadLetterQueueUrl",
    "SubscriberQueueUrl",
    "EventBusName",
    "AthenaWorkGroup",
    "CuratedDatabase",
    "QuarantineDatabase",
    "ProcessRequestUrl",
    "IdempotencyTable",
    "FunctionName",
    "AlarmTopicArn",
    "OpsDatabase",
    "FunctionArchitecture",
)


class LakeStack(cdk.Stack):
    """Everything ``cdk deploy`` creates; names and settings come from ``topology``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topo: topology.Topology = topology.DEFAULT,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings = DeploySettings.from_node(self)

        self.storage = LakeStorage(self, "Storage", settings=self.settings, topo=topo)
        self.events = LakeEvents(self, "Events", settings=self.settings, topo=topo)
        self.maintenance = TableMaintenance(self, "TableMaintenance", storage=self.storage)
        self.processing = Processing(
            self,
            "Processing",
            settings=self.settings,
            topo=topo,
            storage=self.storage,
            bus=self.events.bus,
            optimizer_role=self.maintenance.role,
        )
        self.refresh = Refresh(
            self,
            "Refresh",
            settings=self.settings,
            topo=topo,
            storage=self.storage,
            bus=self.events.bus,
            processing=self.processing,
            optimizer_role=self.maintenance.role,
        )
        self.api = ProcessApi(
            self,
            "ProcessApi",
            settings=self.settings,
            queue=self.processing.queue,
            bucket_name=self.storage.bucket.bucket_name,
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            settings=self.settings,
            processing=self.processing,
            lake_events=self.events,
            refresh=self.refresh,
        )
        self._acknowledge_grants()
        self._outputs()

    def _outputs(self) -> None:
        values = {
            "BucketName": self.storage.bucket.bucket_name,
            "ProcessingQueueUrl": self.processing.queue.queue_url,
            "DeadLetterQueueUrl": self.processing.dead_letter_queue.queue_url,
            "SubscriberQueueUrl": self.events.subscriber_queue.queue_url,
            "EventBusName": self.events.bus.event_bus_name,
            "AthenaWorkGroup": self.storage.workgroup.ref,
            "CuratedDatabase": self.storage.curated_database.ref,
            "QuarantineDatabase": self.storage.quarantine_database.ref,
            "ProcessRequestUrl": self.api.url,
            "IdempotencyTable": self.processing.idempotency_table.table_name,
            "FunctionName": self.processing.function.function_name,
            "AlarmTopicArn": self.monitoring.topic.topic_arn,
            "OpsDatabase": self.storage.ops_database.ref,
            # `lake report ops` prices the functions' GB-seconds for this architecture.
            "FunctionArchitecture": self.settings.architecture,
        }
        assert tuple(values) == OUTPUT_KEYS, "keep OUTPUT_KEYS (the CLI's contract) in step"
        for key, value in values.items():
            cdk.CfnOutput(self, key, value=value)

    def _acknowledge_grants(self) -> None:
        """Wildcards that remain after scoping every grant to a prefix, a table or a log group.

        Each finding is acknowledged by its exact id, so a new wildcard (say ``s3:*``, an action
        group or a grant on the whole bucket) still fails the check. No wildcard action remains.
        """
        bucket_arn = f"<{self.get_logical_id(self.storage.bucket_l1)}.Arn>"

        def objects(prefixes: tuple[str, ...]) -> list[str]:
            return [f"Resource::{bucket_arn}/{prefix}*" for prefix in prefixes]

        tables = [
            f"Resource::arn:<AWS::Partition>:glue:<AWS::Region>:<AWS::AccountId>:table/{name}/*"
            for name in self.storage.database_names
        ]
        ledger = objects((LEDGER_PREFIX,))
        ledger_reason = (
            "The processing ledger's Iceberg data and metadata files have generated names under "
            "ops/processing_log/ only: GetObject, PutObject, DeleteObject (the current version, for pyiceberg's "
            "clean-up of a retried commit; never DeleteObjectVersion) and AbortMultipartUpload there."
        )
        function_role = self.processing.role
        nag.acknowledge(function_role, "AwsSolutions-IAM5", ledger_reason, findings=ledger)
        nag.acknowledge(self.refresh.role, "AwsSolutions-IAM5", ledger_reason, findings=ledger)
        nag.acknowledge(
            function_role,
            "AwsSolutions-IAM5",
            "Object keys are data-driven, so S3 object actions are granted per prefix: GetObject under "
            "raw/, models/, settings/, curated/ and quarantine/ (GetObjectVersion under raw/ only); "
            "PutObject, DeleteObject (never DeleteObjectVersion) and AbortMultipartUpload under curated/ "
            "and quarantine/ only, where the Iceberg tables live. ListBucket is on the bucket with an "
            "s3:prefix condition naming the same prefixes.",
            findings=objects((*Processing.READ_PREFIXES, *Processing.WRITE_PREFIXES)),
        )
        nag.acknowledge(
            function_role,
            "AwsSolutions-IAM5",
            "Table names come from the datasets users drop, so the function may get, create and update "
            "(pyiceberg commits with a version check) tables and switch on their table optimizers inside "
            "the two lake databases only; it cannot delete tables or touch any other database.",
            findings=tables,
        )
        refresh_role = self.refresh.role
        nag.acknowledge(
            refresh_role,
            "AwsSolutions-IAM5",
            "The refresh reads the curated history (curated/), the quarantine (quarantine/, for its report) and "
            "users' models (models/), writes model tables (curated/) and Athena's results (athena-results/) for "
            "its large-dataset path, and puts reports (reports/, PutObject only): object actions per prefix only, "
            "never DeleteObjectVersion; ListBucket with an s3:prefix condition on the read prefixes.",
            findings=objects(
                tuple(dict.fromkeys((*Refresh.READ_PREFIXES, *Refresh.WRITE_PREFIXES, *Refresh.PUT_ONLY_PREFIXES)))
            ),
        )
        nag.acknowledge(
            refresh_role,
            "AwsSolutions-IAM5",
            "Table names come from the datasets users drop: the refresh gets, creates and updates (model) tables "
            "of the two lake databases only; it cannot delete tables or touch any other database.",
            findings=tables,
        )
        optimizer_role = self.maintenance.role
        nag.acknowledge(
            optimizer_role,
            "AwsSolutions-IAM5",
            "Glue's table optimizers rewrite and delete Iceberg data and metadata files of the lake's tables, "
            "which live under curated/, quarantine/ and ops/ (the processing ledger) only; GetTable/UpdateTable on "
            "tables of the two lake databases and on the ledger table by name only; log writes to the three log "
            "groups Glue's optimizers use, by name.",
            findings=objects(TABLE_PREFIXES)
            + tables
            + [
                f"Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:{group}:*"
                for group in OPTIMIZER_LOG_GROUPS
            ],
        )
