"""The one stack of the lake processor: storage, events, processing, HTTP entry, alarms, outputs."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

import topology
from infra import nag
from infra.config import DeploySettings
from infra.lake_events import LakeEvents
from infra.monitoring import Monitoring
from infra.process_api import ProcessApi
from infra.processing import Processing
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
        self.processing = Processing(
            self,
            "Processing",
            settings=self.settings,
            topo=topo,
            storage=self.storage,
            bus=self.events.bus,
        )
        self.api = ProcessApi(
            self,
            "ProcessApi",
            settings=self.settings,
            queue=self.processing.queue,
            bucket_name=self.storage.bucket.bucket_name,
        )
        self.monitoring = Monitoring(self, "Monitoring", settings=self.settings, processing=self.processing)
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
        }
        assert tuple(values) == OUTPUT_KEYS, "keep OUTPUT_KEYS (the CLI's contract) in step"
        for key, value in values.items():
            cdk.CfnOutput(self, key, value=value)

    def _acknowledge_grants(self) -> None:
        """Wildcards that remain after scoping every grant to a prefix, a table or a database.

        Each finding is acknowledged by its exact id, so a new wildcard (say ``s3:*`` or a grant on
        the whole bucket) still fails the check.
        """
        role = self.processing.function.role
        assert role is not None
        bucket_arn = f"<{self.get_logical_id(self.storage.bucket_l1)}.Arn>"
        nag.acknowledge(
            role,
            "AwsSolutions-IAM4",
            "AWSLambdaBasicExecutionRole only allows creating and writing the function's CloudWatch "
            "log streams; it is the AWS-maintained minimum for any Lambda function.",
            findings=["Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"],
        )
        nag.acknowledge(
            role,
            "AwsSolutions-IAM5",
            "Object keys are data-driven and unknown at deploy time, so S3 access is granted per "
            "prefix: read raw/ and models/, read-write-delete curated/ and quarantine/ (reprocessing "
            "replaces an object's own outputs). Nothing is granted on the bucket as a whole.",
            findings=[f"Resource::{bucket_arn}/{prefix}*" for prefix in Processing.READ_PREFIXES]
            + [f"Resource::{bucket_arn}/{prefix}*" for prefix in Processing.WRITE_PREFIXES],
        )
        nag.acknowledge(
            role,
            "AwsSolutions-IAM5",
            "CDK grant action groups: s3:GetObject*, s3:DeleteObject* and s3:Abort* apply only to the "
            "prefix-scoped object ARNs above (object versions, multipart uploads); s3:GetBucket* and "
            "s3:List* apply to the lake bucket's ARN alone, which the handler needs to list the "
            "earlier outputs it replaces. No other bucket is named.",
            findings=[
                f"Action::s3:{action}" for action in ("GetBucket*", "GetObject*", "List*", "Abort*", "DeleteObject*")
            ],
        )
        nag.acknowledge(
            role,
            "AwsSolutions-IAM5",
            "Table names come from the datasets users drop, so the function may manage tables and "
            "partitions inside the two lake databases only (not other databases, not the databases "
            "themselves).",
            findings=[
                f"Resource::arn:<AWS::Partition>:glue:<AWS::Region>:<AWS::AccountId>:table/{name}/*"
                for name in self.storage.database_names
            ],
        )
        if self.storage.key is not None:
            nag.acknowledge(
                role,
                "AwsSolutions-IAM5",
                "KMS action groups CDK grants for reading and writing objects encrypted with the "
                "lake's own key; the resource is that one key.",
                findings=["Action::kms:GenerateDataKey*", "Action::kms:ReEncrypt*"],
            )
