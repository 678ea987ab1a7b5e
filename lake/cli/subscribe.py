"""``lake events``: follow completion and failure events.

A :class:`Subscription` is a temporary SQS queue plus a rule on the lake bus that forwards every
completion event (optionally of one dataset) to it, exactly what a real subscriber would deploy.
Each subscriber gets its own queue, so several of them each see every event. Both are removed on
exit (normal end, Ctrl-C or SIGTERM); if a process is killed outright, the ``lake-events-cli-``
prefix and the ``lake:purpose`` tag make the orphans easy to recognise and delete.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from types import FrameType
from typing import Any

import topology
from lake.cli.summary import summarize
from lake.target import CliError, Target

#: Name prefix of the temporary queues and rules (``lake-events-cli-<8 hex digits>``).
NAME_PREFIX = "lake-events-cli-"
#: Tag on the temporary queue and rule, so orphans (a killed process) are recognisable.
PURPOSE_TAG = {"lake:purpose": "lake-events-cli"}
#: Undelivered events are not worth keeping long: a subscriber that went away will not come back.
RETENTION_SECONDS = 900
#: Exit code when ``--timeout`` elapses before ``--count`` events arrived (as GNU ``timeout``).
EXIT_TIMEOUT = 124


class Subscription:
    """A temporary queue subscribed to the lake bus's completion events; a context manager.

    ``with Subscription(target, dataset="web_sessions") as sub: for event in sub.stream(): ...``
    """

    def __init__(self, target: Target, dataset: str | None = None) -> None:
        self.target = target
        self.dataset = dataset
        self.name = f"{NAME_PREFIX}{uuid.uuid4().hex[:8]}"
        self.queue_url: str | None = None
        self.rule_arn: str | None = None
        self._rule_created = False
        self._seen: deque[str] = deque(maxlen=1000)  # SQS delivers at least once

    def pattern(self) -> dict[str, Any]:
        """The rule's event pattern: every completion event, or those of one dataset."""
        pattern = topology.DEFAULT.lake_events_pattern()
        if self.dataset is not None:
            from analytics.registry import dataset_table_name

            # The event carries the dataset's table name (`Web Sessions` -> `web_sessions`).
            pattern["detail"] = {"dataset": [dataset_table_name(self.dataset)]}
        return pattern

    @property
    def description(self) -> str:
        which = f"{self.dataset} events" if self.dataset is not None else "events"
        return f"{which} on bus {self.target.bus_name} of {self.target.where} (queue {self.name})"

    def open(self) -> Subscription:
        """Create the queue, the rule and its target; on any failure, remove what was created."""
        sqs, events = self.target.client("sqs"), self.target.client("events")
        try:
            self.queue_url = sqs.create_queue(
                QueueName=self.name,
                Attributes={"MessageRetentionPeriod": str(RETENTION_SECONDS)},
                tags=PURPOSE_TAG,
            )["QueueUrl"]
            queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            self.rule_arn = events.put_rule(
                Name=self.name,
                EventBusName=self.target.bus_name,
                EventPattern=json.dumps(self.pattern()),
                Description="temporary subscription of `lake events`; removed when it exits, safe to delete",
                Tags=[{"Key": k, "Value": v} for k, v in PURPOSE_TAG.items()],
            )["RuleArn"]
            self._rule_created = True
            # On AWS, EventBridge may only send to the queue when its policy says so.
            policy = {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "lake-events-rule",
                        "Effect": "Allow",
                        "Principal": {"Service": "events.amazonaws.com"},
                        "Action": "sqs:SendMessage",
                        "Resource": queue_arn,
                        "Condition": {"ArnEquals": {"aws:SourceArn": self.rule_arn}},
                    }
                ],
            }
            sqs.set_queue_attributes(QueueUrl=self.queue_url, Attributes={"Policy": json.dumps(policy)})
            events.put_targets(
                Rule=self.name, EventBusName=self.target.bus_name, Targets=[{"Id": "queue", "Arn": queue_arn}]
            )
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Remove the rule's target, the rule and the queue; each step even if another failed."""
        sqs, events = self.target.client("sqs"), self.target.client("events")
        if self._rule_created:
            with contextlib.suppress(Exception):
                events.remove_targets(Rule=self.name, EventBusName=self.target.bus_name, Ids=["queue"])
            with contextlib.suppress(Exception):
                events.delete_rule(Name=self.name, EventBusName=self.target.bus_name)
            self._rule_created = False
        if self.queue_url is not None:
            with contextlib.suppress(Exception):
                sqs.delete_queue(QueueUrl=self.queue_url)
            self.queue_url = None

    def __enter__(self) -> Subscription:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        # A second Ctrl-C while cleaning up must not leave the queue and rule behind.
        with _sigint_ignored():
            self.close()

    def receive(self, wait_seconds: float) -> list[dict[str, Any]]:
        """The events that arrive within ``wait_seconds`` (long poll; at most 10), acknowledged."""
        assert self.queue_url is not None, "open the subscription first"
        sqs = self.target.client("sqs")
        messages = sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=max(0, min(20, round(wait_seconds)))
        ).get("Messages", [])
        if messages:
            sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
        found = []
        for message in messages:
            event = json.loads(message["Body"])
            if event.get("id") in self._seen:
                continue
            self._seen.append(event.get("id"))
            found.append(event)
        return found

    def stream(self, timeout: float | None = None, stop: threading.Event | None = None) -> Iterator[dict[str, Any]]:
        """Events as they arrive, until ``timeout`` seconds have passed or ``stop`` is set."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while stop is None or not stop.is_set():
            remaining = 20.0 if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                return
            # Short polls when another thread may ask us to stop; long polls are cheaper on AWS.
            yield from self.receive(min(remaining, 1 if stop is not None else 20))


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _sigterm_as_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "events",
        parents=[common],
        help="follow completion and failure events",
        description="Subscribe to completion and failure events on the lake bus (a temporary queue and rule, "
        "removed on exit). Without --follow, stop after --count events; exit code "
        f"{EXIT_TIMEOUT} when --timeout passes first.",
    )
    how_long = parser.add_mutually_exclusive_group()
    how_long.add_argument("--follow", "-f", action="store_true", help="keep printing events until Ctrl-C")
    how_long.add_argument("--count", "-n", type=int, default=1, help="stop after this many events (default: 1)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"give up after SECONDS (exit {EXIT_TIMEOUT} if fewer than --count events arrived; "
        "with --follow, just stop)",
    )
    parser.add_argument("--json", action="store_true", help="print each whole event as one JSON line (for jq)")
    parser.add_argument("--dataset", default=None, help="only events of this dataset (raw/<dataset>/)")
    parser.set_defaults(func=_events)


def _events(args: argparse.Namespace) -> int:
    if args.count < 1:
        raise CliError(f"--count must be at least 1, not {args.count}")
    if args.timeout is not None and args.timeout <= 0:
        raise CliError(f"--timeout must be a positive number of seconds, not {args.timeout}")
    target = args.target()
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    received = 0
    try:
        with Subscription(target, dataset=args.dataset) as subscription:
            how = "Ctrl-C to stop" if args.follow else f"waiting for {args.count} event(s); Ctrl-C to stop"
            print(f"listening for {subscription.description} ({how})", file=sys.stderr, flush=True)
            for event in subscription.stream(timeout=args.timeout):
                print(json.dumps(event) if args.json else summarize(event.get("detail", {})), flush=True)
                received += 1
                if not args.follow and received >= args.count:
                    return 0
    except KeyboardInterrupt:
        if args.follow:
            return 0
        raise
    if args.follow:
        return 0
    raise CliError(
        f"{received} of {args.count} event(s) within {args.timeout:g}s; is the runner (`lake up`, or the deployed "
        "function) running, and did a file land under raw/<dataset>/? (`lake dlq` shows stuck messages)",
        EXIT_TIMEOUT,
    )
