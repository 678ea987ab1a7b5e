"""``lake dlq [list|redrive]``: look at the dead-letter queue and send its messages back.

``list`` receives every message of the DLQ without deleting it, shows what each one names and why
it failed (the handler's failure record, ``handlers.adapters.failure_records``), then releases them at once.
``redrive`` moves them back to the processing queue: on AWS with an SQS message move task, on the
stand-in (moto has no move tasks) by receive, send, then delete only what was sent.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from lake.cli import reprocess
from lake.target import CliError, Target

#: How long a listing or a local redrive hides the messages it received. Long enough to page
#: through them without seeing them twice, short enough that a listing killed half-way leaves
#: them hidden from a concurrent redrive only briefly (a finished listing releases them at once).
HOLD_SECONDS = 30
#: What a message whose record is missing says in place of its last error.
UNKNOWN_ERROR = "unknown (crash or timeout? see the function's logs)"
NOT_A_LAKE_MESSAGE = "(not a lake message)"


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "dlq",
        parents=[common],
        help="list the dead-letter queue, or redrive its messages to the processing queue",
        description="Messages whose processing failed maxReceiveCount times wait in the dead-letter queue. "
        "`lake dlq list` shows them with the last error; fix the cause, then `lake dlq redrive`.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    listing = actions.add_parser(
        "list", parents=[common], help="show the dead-lettered messages and why they failed (the default)"
    )
    listing.add_argument("--json", action="store_true", help="one JSON array instead of a table")
    listing.add_argument(
        "--max", type=int, default=1000, metavar="N", help="show at most N messages (default: %(default)s)"
    )
    listing.set_defaults(func=_list)
    redrive = actions.add_parser(
        "redrive", parents=[common], help="move every dead-lettered message back to the processing queue"
    )
    redrive.set_defaults(func=_redrive)
    # `lake dlq` alone lists.
    parser.set_defaults(func=_list, json=False, max=1000)
    reprocess.register(sub, common)


# --- list ------------------------------------------------------------------------------------------
@dataclass
class DeadLetter:
    """One dead-lettered message as ``lake dlq list`` shows it."""

    message_id: str
    bucket: str | None
    key: str | None
    version_id: str | None
    trigger: str | None
    #: SQS's ApproximateReceiveCount before this listing (it counts every receive, earlier listings too).
    receive_count: int
    #: Failed attempts the handler recorded; None without a record.
    failed_attempts: int | None
    first_failed_at: str | None
    last_failed_at: str | None
    last_error: str
    #: The start of the body when it is not a message the processor understands.
    body_preview: str | None = None


def _list(args: argparse.Namespace) -> int:
    target: Target = args.target()
    if args.max < 1:
        raise CliError(f"--max must be at least 1, not {args.max}")
    sqs = target.client("sqs")
    dlq_url = target.queue_url("dlq")
    messages: list[dict[str, Any]] = []
    try:
        for batch in _receive_all(sqs, dlq_url, limit=args.max):
            messages += batch
    finally:
        _release(sqs, dlq_url, messages)
    letters = _describe(target, messages)
    more = _depth(sqs, dlq_url) - len(letters) if len(letters) >= args.max else 0
    if args.json:
        print(json.dumps([asdict(letter) for letter in letters], indent=2))
        return 0
    if not letters:
        print(f"the dead-letter queue is empty ({target.where})")
        return 0
    _print_table(letters)
    print()
    shown = f"{len(letters)} message(s) in the dead-letter queue"
    if more > 0:
        shown += f" shown; about {more} more not shown (raise --max)"
    print(f"{shown}. Fix the cause, then `lake dlq redrive` sends them back to the processing queue.")
    return 0


def _receive_all(sqs: Any, queue_url: str, limit: int) -> Iterator[list[dict[str, Any]]]:
    """Receive until the queue has nothing more visible, or only messages seen before, or ``limit``."""
    seen: set[str] = set()
    while len(seen) < limit:
        # A short long-poll: asks every SQS server (a 0 s poll may answer empty while messages exist).
        messages: list[dict[str, Any]] = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(10, limit - len(seen)),
            WaitTimeSeconds=1,
            VisibilityTimeout=HOLD_SECONDS,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        new = [m for m in messages if m["MessageId"] not in seen]
        # A message seen before came back (its hold ran out): release the copy we hold again.
        _release(sqs, queue_url, [m for m in messages if m["MessageId"] in seen])
        if not new:
            return
        seen.update(m["MessageId"] for m in new)
        yield new


def _release(sqs: Any, queue_url: str, messages: list[dict[str, Any]]) -> None:
    """Make received messages visible again now (best-effort: one already deleted is fine)."""
    for start in range(0, len(messages), 10):
        chunk = messages[start : start + 10]
        try:
            sqs.change_message_visibility_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                    for i, m in enumerate(chunk)
                ],
            )
        except Exception as exc:  # they become visible on their own after HOLD_SECONDS
            print(f"lake: could not release {len(chunk)} message(s) at once ({exc})", file=sys.stderr)


def _depth(sqs: Any, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def _describe(target: Target, messages: list[dict[str, Any]]) -> list[DeadLetter]:
    from handlers.errors import InvalidMessageError
    from handlers.events import parse_body

    records = _failure_records(target, [m["MessageId"] for m in messages])
    letters: list[DeadLetter] = []
    for message in messages:
        attributes = message.get("Attributes", {})
        record = records.get(message["MessageId"])
        first = record.first_failed_at if record else None
        if first is None and attributes.get("ApproximateFirstReceiveTimestamp"):
            first = _iso(int(attributes["ApproximateFirstReceiveTimestamp"]))
        letter = DeadLetter(
            message_id=message["MessageId"],
            bucket=None,
            key=None,
            version_id=None,
            trigger=None,
            receive_count=max(0, int(attributes.get("ApproximateReceiveCount", "1")) - 1),
            failed_attempts=record.attempts if record else None,
            first_failed_at=first,
            last_failed_at=record.last_failed_at if record else None,
            last_error=(record.last_error if record and record.last_error else UNKNOWN_ERROR),
        )
        try:
            request = parse_body(message["Body"])
            letter.bucket, letter.key, letter.version_id = request.bucket, request.key, request.version_id
            letter.trigger = request.trigger
        except InvalidMessageError:
            letter.body_preview = " ".join(message["Body"][:80].split())
        letters.append(letter)
    letters.sort(key=lambda letter: (letter.first_failed_at or "", letter.message_id))
    return letters


def _failure_records(target: Target, message_ids: list[str]) -> dict[str, Any]:
    """The handler's failure records; without access to them the errors show as unknown."""
    if not message_ids:
        return {}
    from handlers.adapters.failure_records import FailureLog

    try:
        return FailureLog(target.client("dynamodb"), target.idempotency_table, 0).lookup(message_ids)
    except Exception as exc:
        print(
            f"lake: cannot read the failure records in table {target.idempotency_table} ({exc}); "
            "last errors show as unknown",
            file=sys.stderr,
        )
        return {}


def _iso(epoch_ms: int) -> str:
    moment = dt.datetime.fromtimestamp(epoch_ms / 1000, dt.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _tries(letter: DeadLetter) -> str:
    """The failed attempts the handler recorded; without a record, SQS's receive count, marked ``~``
    because it also counts receives by crashed or timed-out invocations and by earlier listings."""
    return str(letter.failed_attempts) if letter.failed_attempts is not None else f"~{letter.receive_count}"


def _print_table(letters: list[DeadLetter]) -> None:
    import pyarrow as pa

    from lake.cli.querying import render

    columns = {
        "MESSAGE ID": [letter.message_id for letter in letters],
        "OBJECT KEY": [
            letter.key if letter.key is not None else f"{NOT_A_LAKE_MESSAGE} {letter.body_preview}"
            for letter in letters
        ],
        "TRIES": [_tries(letter) for letter in letters],
        "FIRST FAILURE": [letter.first_failed_at or "?" for letter in letters],
        "LAST ERROR": [letter.last_error for letter in letters],
    }
    print(render(pa.table(columns)))


# --- redrive ---------------------------------------------------------------------------------------
def _redrive(args: argparse.Namespace) -> int:
    target: Target = args.target()
    sqs = target.client("sqs")
    dlq_url = target.queue_url("dlq")
    if _depth(sqs, dlq_url) == 0:
        print(f"the dead-letter queue is empty ({target.where}); nothing to redrive")
        return 0
    if not target.local:
        return _start_move_task(target)
    moved, failures = _move_locally(sqs, dlq_url, target.queue_url("processing"))
    print(f"moved {moved} message(s) back to the processing queue; follow them with `lake events`")
    if failures:
        reasons = "; ".join(sorted(set(failures))[:3])
        raise CliError(
            f"{len(failures)} message(s) could not be sent back and stay in the dead-letter queue ({reasons}); "
            "run `lake dlq redrive` again"
        )
    return 0


def _start_move_task(target: Target) -> int:
    import botocore.exceptions

    sqs = target.client("sqs")
    dlq_arn, queue_arn = target.queue_arn("dlq"), target.queue_arn("processing")
    try:
        task = sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=queue_arn)
    except botocore.exceptions.ClientError as exc:
        if "already" in str(exc).lower() or "UnsupportedOperation" in exc.response.get("Error", {}).get("Code", ""):
            raise CliError(
                f"SQS refused to start a redrive ({exc.response['Error'].get('Message', exc)}); "
                f"see running tasks with `aws sqs list-message-move-tasks --source-arn {dlq_arn}`"
            ) from exc
        raise
    print(f"started moving the dead-lettered messages back to the processing queue (task {task['TaskHandle']})")
    print(f"follow it with: aws sqs list-message-move-tasks --source-arn {dlq_arn}")
    print("and the results with `lake events`")
    return 0


def _move_locally(sqs: Any, dlq_url: str, queue_url: str) -> tuple[int, list[str]]:
    """Receive, send to the processing queue, delete only what was sent; returns moved and failures."""
    moved, failures = 0, []
    for batch in _receive_all(sqs, dlq_url, limit=sys.maxsize):
        entries = [
            {
                "Id": str(i),
                "MessageBody": m["Body"],
                **({"MessageAttributes": _attributes(m)} if m.get("MessageAttributes") else {}),
            }
            for i, m in enumerate(batch)
        ]
        response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        sent = {entry["Id"] for entry in response.get("Successful", [])}
        failures += [f"{f.get('Code')}: {f.get('Message')}" for f in response.get("Failed", [])]
        done = [m for i, m in enumerate(batch) if str(i) in sent]
        if done:
            deleted = sqs.delete_message_batch(
                QueueUrl=dlq_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
            # A message sent but not deleted is delivered twice: harmless, processing is idempotent.
            moved += len(done)
            for failure in deleted.get("Failed", []):
                print(f"lake: a redriven message stays in the DLQ too ({failure.get('Message')})", file=sys.stderr)
        # Messages that were not sent are visible again at once for the next redrive.
        _release(sqs, dlq_url, [m for i, m in enumerate(batch) if str(i) not in sent])
    return moved, failures


def _attributes(message: dict[str, Any]) -> dict[str, Any]:
    """Received message attributes in the shape ``send_message`` takes."""
    out: dict[str, Any] = {}
    for name, attribute in message.get("MessageAttributes", {}).items():
        value = {k: v for k, v in attribute.items() if k in ("DataType", "StringValue", "BinaryValue")}
        out[name] = value
    return out
