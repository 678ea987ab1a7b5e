"""Why a message failed: one record per SQS message in the idempotency table, for ``lake dlq list``.

A dead-lettered message carries no error, so the handler records each transient failure under
``failure#<sqs message id>`` (SQS keeps the message id when its redrive policy moves the message
to the dead-letter queue). Records expire with the DLQ's retention. Writing is best-effort: it
never masks the error that made the message fail. Powertools' idempotency only reads its own keys,
so these items live beside its records without disturbing them.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Any

import topology

logger = logging.getLogger(__name__)

#: Longest error text kept (type and message); DynamoDB items stay small.
MAX_ERROR_CHARS = 500


def failure_record_id(message_id: str) -> str:
    """The table key of a message's failure record."""
    return f"{topology.FAILURE_RECORD_PREFIX}{message_id}"


def describe_error(error: BaseException) -> str:
    """``Type: message`` on one line, cut to ``MAX_ERROR_CHARS``."""
    text = " ".join(f"{type(error).__name__}: {error}".split())
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class FailureRecord:
    """What the handler recorded about a message's failed attempts."""

    message_id: str
    key: str | None
    attempts: int
    first_failed_at: str | None
    last_failed_at: str | None
    last_error: str | None


class FailureLog:
    """Records and reads failure records in the idempotency table (DynamoDB low-level client)."""

    def __init__(self, dynamodb: Any, table: str, ttl_seconds: int) -> None:
        self._dynamodb = dynamodb
        self.table = table
        self.ttl_seconds = ttl_seconds

    def record(self, message_id: str | None, key: str | None, error: BaseException) -> None:
        """Add one failed attempt; best-effort (a failure to record is logged, never raised)."""
        if not message_id:
            return
        now = _now()
        try:
            self._dynamodb.update_item(
                TableName=self.table,
                Key={topology.IDEMPOTENCY_KEY_ATTRIBUTE: {"S": failure_record_id(message_id)}},
                UpdateExpression=(
                    "SET first_failed_at = if_not_exists(first_failed_at, :now), last_failed_at = :now, "
                    "last_error = :error, #key = :key, #expires = :expires ADD attempts :one"
                ),
                ExpressionAttributeNames={"#key": "key", "#expires": topology.IDEMPOTENCY_TTL_ATTRIBUTE},
                ExpressionAttributeValues={
                    ":now": {"S": now},
                    ":error": {"S": describe_error(error)},
                    ":key": {"S": key or ""},
                    ":expires": {"N": str(int(time.time()) + self.ttl_seconds)},
                    ":one": {"N": "1"},
                },
            )
        except Exception:  # the original error matters more than its record
            logger.warning("could not record the failure of message %s", message_id, exc_info=True)

    def lookup(self, message_ids: list[str]) -> dict[str, FailureRecord]:
        """The records of these messages that exist (consistent reads, 100 keys per request)."""
        found: dict[str, FailureRecord] = {}
        ids = list(dict.fromkeys(message_ids))
        for start in range(0, len(ids), 100):
            keys = [{topology.IDEMPOTENCY_KEY_ATTRIBUTE: {"S": failure_record_id(m)}} for m in ids[start : start + 100]]
            request: dict[str, Any] = {self.table: {"Keys": keys, "ConsistentRead": True}}
            for attempt in range(5):
                response = self._dynamodb.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table, []):
                    record = _from_item(item)
                    found[record.message_id] = record
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(0.1 * 2**attempt)
        return found


def _from_item(item: dict[str, Any]) -> FailureRecord:
    def text(name: str) -> str | None:
        value = item.get(name, {}).get("S")
        return str(value) if value else None

    return FailureRecord(
        message_id=item[topology.IDEMPOTENCY_KEY_ATTRIBUTE]["S"].removeprefix(topology.FAILURE_RECORD_PREFIX),
        key=text("key"),
        attempts=int(item.get("attempts", {}).get("N", "0")),
        first_failed_at=text("first_failed_at"),
        last_failed_at=text("last_failed_at"),
        last_error=text("last_error"),
    )
