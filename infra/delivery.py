"""EventBridge rule targets that cannot lose an event silently: a retry policy and a dead-letter queue."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sqs as sqs
from constructs import Construct

import topology
from infra import nag
from infra.config import EVENT_MAX_AGE_SECONDS, EVENT_RETRY_ATTEMPTS


def delivery_dead_letter_queue(scope: Construct, construct_id: str, *, delivers_to: str) -> sqs.Queue:
    """Where EventBridge puts an event it could not deliver to ``delivers_to`` after every retry.

    Kept as long as the processing DLQ, so a failed delivery can be moved back
    (``aws sqs start-message-move-task``) once its cause is fixed: the message body is the event
    exactly as the target would have received it.
    """
    queue = sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=cdk.Duration.days(topology.DEFAULT.queue.dlq_retention_days),
    )
    nag.acknowledge(
        queue,
        "AwsSolutions-SQS3",
        f"This queue is itself a dead-letter queue: EventBridge's, for events it could not deliver to "
        f"{delivers_to}. cdk-nag only recognises dead-letter queues named in another queue's redrive policy.",
    )
    return queue


def queue_target(queue: sqs.IQueue, dead_letter_queue: sqs.IQueue) -> targets.SqsQueue:
    """``queue`` as a rule target, retried for EventBridge's maximum before dead-lettering."""
    return targets.SqsQueue(
        queue,
        dead_letter_queue=dead_letter_queue,
        retry_attempts=EVENT_RETRY_ATTEMPTS,
        max_event_age=cdk.Duration.seconds(EVENT_MAX_AGE_SECONDS),
    )
