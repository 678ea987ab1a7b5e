"""Alarms that page a person: DLQ not empty, backlog too old, function errors or throttles."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.config import DeploySettings
from infra.processing import Processing


class Monitoring(Construct):
    """One SNS topic and the four alarms that send to it."""

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: DeploySettings, processing: Processing
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(self, "AlarmTopic", display_name="Lake processor alarms", enforce_ssl=True)
        if settings.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))

        period = cdk.Duration.minutes(1)
        queue, dlq, function = processing.queue, processing.dead_letter_queue, processing.function
        self.alarms = [
            self._alarm(
                "DeadLetterQueueNotEmpty",
                "Messages failed processing too often and wait in the DLQ; "
                "inspect them, fix the cause, then redrive the DLQ to the processing queue.",
                dlq.metric_approximate_number_of_messages_visible(period=period, statistic="Maximum"),
            ),
            self._alarm(
                "OldestMessageAge",
                "The processing queue is falling behind; check function errors, throttles and the maximum concurrency.",
                queue.metric_approximate_age_of_oldest_message(period=period, statistic="Maximum"),
                threshold=settings.oldest_message_alarm_seconds,
                evaluation_periods=5,
            ),
            self._alarm(
                "FunctionErrors",
                "The processor function failed invocations; see its log group.",
                function.metric_errors(period=period, statistic="Sum"),
            ),
            self._alarm(
                "FunctionThrottles",
                "The processor function was throttled; raise the account's "
                "concurrency or lower the event source's maximum concurrency.",
                function.metric_throttles(period=period, statistic="Sum"),
            ),
        ]
        for alarm in self.alarms:
            alarm.add_alarm_action(actions.SnsAction(self.topic))

    def _alarm(
        self,
        construct_id: str,
        description: str,
        metric: cloudwatch.IMetric,
        threshold: float = 1,
        evaluation_periods: int = 1,
    ) -> cloudwatch.Alarm:
        """An alarm at ``metric >= threshold``; no data (an idle lake) is not a breach."""
        return cloudwatch.Alarm(
            self,
            construct_id,
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            evaluation_periods=evaluation_periods,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
