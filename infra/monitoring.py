"""Alarms that page a person: anything in a dead-letter queue, a DLQ about to expire, a rule that
could not deliver, a backlog too old, function errors or throttles."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import DeploySettings
from infra.lake_events import LakeEvents
from infra.processing import Processing
from infra.refresh import Refresh

#: Shown by ``cdk synth``/``cdk deploy`` when no one would hear an alarm (docs/deploy.md, Alarms).
NO_SUBSCRIBER_WARNING = (
    "No one is subscribed to the alarm topic: a file stuck in a dead-letter queue expires unnoticed "
    "after 14 days. Deploy with -c alarmEmail=<address>, or subscribe to the AlarmTopicArn output."
)
NO_SUBSCRIBER_WARNING_ID = "lake:noAlarmSubscriber"


class Monitoring(Construct):
    """One encrypted SNS topic and the alarms that send to it."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DeploySettings,
        processing: Processing,
        lake_events: LakeEvents,
        refresh: Refresh | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        # CloudWatch cannot publish to a topic under the AWS-managed SNS key (its key policy names no
        # other service), so the topic gets a key of its own that lets CloudWatch use it.
        self.key = kms.Key(
            self,
            "AlarmTopicKey",
            description="Encrypts the lake processor's alarm topic at rest",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        self.topic = sns.Topic(
            self, "AlarmTopic", display_name="Lake processor alarms", enforce_ssl=True, master_key=self.key
        )
        if settings.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))
        else:
            cdk.Annotations.of(self.topic).add_warning_v2(NO_SUBSCRIBER_WARNING_ID, NO_SUBSCRIBER_WARNING)

        period = cdk.Duration.minutes(1)
        queue, function = processing.queue, processing.function
        self.alarms: list[cloudwatch.Alarm] = []
        dead_letter_queues = (
            ("DeadLetterQueue", processing.dead_letter_queue, "the processing queue (files failed 3 times)"),
            ("RawEventsDeliveryDLQ", processing.raw_delivery_dlq, "raw/ object events EventBridge could not deliver"),
            ("SubscriberDeliveryDLQ", lake_events.subscriber_delivery_dlq, "completion events not delivered"),
        )
        if refresh is not None:
            dead_letter_queues += (
                ("RefreshDeadLetterQueue", refresh.dead_letter_queue, "the refresh queue (refreshes failed 3 times)"),
            )
        for name, dlq, holds in dead_letter_queues:
            self._dead_letter_alarms(name, dlq, holds, settings.dead_letter_age_alarm_days)
        for name, rule, bus in (
            ("RawEventsDeliveryFailed", processing.raw_rule, None),
            ("SubscriberDeliveryFailed", lake_events.subscriber_rule, lake_events.bus),
        ):
            self._alarm(
                name,
                f"EventBridge rule {name.removesuffix('DeliveryFailed')} failed to deliver events after every "
                "retry; they wait in the rule's delivery DLQ. Fix the target, then move them back with "
                "aws sqs start-message-move-task --source-arn <DLQ ARN> --destination-arn <target queue ARN>.",
                self._failed_invocations(rule, bus, period),
            )
        self._alarm(
            "OldestMessageAge",
            "The processing queue is falling behind; check function errors, throttles and the maximum concurrency.",
            queue.metric_approximate_age_of_oldest_message(period=period, statistic="Maximum"),
            threshold=settings.oldest_message_alarm_seconds,
            evaluation_periods=5,
        )
        self._alarm(
            "FunctionErrors",
            "The processor function failed invocations; see its log group.",
            function.metric_errors(period=period, statistic="Sum"),
        )
        self._alarm(
            "FunctionThrottles",
            "The processor function was throttled; raise the account's (or the reserved) "
            "concurrency or lower the event source's maximum concurrency.",
            function.metric_throttles(period=period, statistic="Sum"),
        )
        if refresh is not None:
            self._alarm(
                "RefreshFunctionErrors",
                "The refresh function failed invocations (model tables keep their previous snapshots); "
                "see its log group.",
                refresh.function.metric_errors(period=period, statistic="Sum"),
            )
        for alarm in self.alarms:
            alarm.add_alarm_action(actions.SnsAction(self.topic))

    def _dead_letter_alarms(self, name: str, dlq: sqs.IQueue, holds: str, age_days: int) -> None:
        """One alarm when something arrives, a second before the oldest message expires.

        An alarm notifies once per state change, so a DLQ left alone would be forgotten after the
        first mail; the age alarm comes back while the messages can still be redriven.
        """
        self._alarm(
            f"{name}NotEmpty",
            f"Messages wait in {name} ({holds}); inspect them, fix the cause, then redrive them.",
            dlq.metric_approximate_number_of_messages_visible(period=cdk.Duration.minutes(1), statistic="Maximum"),
        )
        self._alarm(
            f"{name}Expiring",
            f"The oldest message in {name} ({holds}) is {age_days} days old; SQS deletes it at 14 days. "
            "Redrive or save it now.",
            dlq.metric_approximate_age_of_oldest_message(period=cdk.Duration.minutes(5), statistic="Maximum"),
            threshold=age_days * 24 * 3600,
        )

    @staticmethod
    def _failed_invocations(
        rule: events.IRule, bus: events.IEventBus | None, period: cdk.Duration
    ) -> cloudwatch.IMetric:
        # Rules on the default bus report by RuleName alone, rules on a custom bus by both names.
        dimensions = {"RuleName": rule.rule_name}
        if bus is not None:
            dimensions["EventBusName"] = bus.event_bus_name
        return cloudwatch.Metric(
            namespace="AWS/Events",
            metric_name="FailedInvocations",
            dimensions_map=dimensions,
            period=period,
            statistic="Sum",
        )

    def _alarm(
        self,
        construct_id: str,
        description: str,
        metric: cloudwatch.IMetric,
        threshold: float = 1,
        evaluation_periods: int = 1,
    ) -> cloudwatch.Alarm:
        """An alarm at ``metric >= threshold``; no data (an idle lake) is not a breach."""
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            evaluation_periods=evaluation_periods,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.alarms.append(alarm)
        return alarm
