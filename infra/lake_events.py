"""The lake event bus, its archive for replay, and an example subscriber (rule -> SQS queue)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_sqs as sqs
from constructs import Construct

import topology
from infra import nag
from infra.config import DeploySettings
from infra.delivery import delivery_dead_letter_queue, queue_target
from infra.patterns import event_pattern


class LakeEvents(Construct):
    """Where completion events go and how anyone subscribes to them."""

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: DeploySettings, topo: topology.Topology
    ) -> None:
        super().__init__(scope, construct_id)
        completion = event_pattern(topo.lake_events_pattern())

        self.bus = events.EventBus(self, "Bus", event_bus_name=topo.bus_name)
        self.archive = self.bus.archive(
            "Archive",
            description="Completion events of the lake processor, kept for replay",
            event_pattern=completion,
            retention=cdk.Duration.days(settings.archive_retention_days),
        )

        self.subscriber_queue = sqs.Queue(
            self,
            "SubscriberQueue",
            queue_name=topo.subscriber_queue_name,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(4),
        )
        nag.acknowledge(
            self.subscriber_queue,
            "AwsSolutions-SQS3",
            "Example subscriber: a copy of completion events for people to read. Nothing consumes "
            "it automatically, so there are no failed receives to dead-letter; the bus archive "
            "keeps every event for replay.",
        )
        self.subscriber_delivery_dlq = delivery_dead_letter_queue(
            self, "SubscriberDeliveryDLQ", delivers_to="the example subscriber queue"
        )
        self.subscriber_rule = events.Rule(
            self,
            "SubscriberRule",
            rule_name=topo.subscriber_rule_name,
            description="Example subscriber: every completion event of the lake processor -> SQS",
            event_bus=self.bus,
            event_pattern=completion,
            targets=[queue_target(self.subscriber_queue, self.subscriber_delivery_dlq)],
        )
