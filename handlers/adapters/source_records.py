"""Which revision of each raw key the lake holds, and who is committing it right now.

One item per raw key in the idempotency table, ``source#<bucket>/<key>``: the version last
committed (or removed), the tables it wrote, and a lease. The lease lets one invocation at a time
commit a key, so two versions of one key never race: the holder checks the key's *current*
version in S3 and commits only that (an older version delivered late is skipped, a deletion removes
the rows only if the key is gone). A crashed holder's lease expires with its invocation.
Powertools' idempotency only reads its own keys, so these items live beside its records.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import topology
from handlers.errors import SourceBusyError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceState:
    """What the lake holds of one raw key."""

    #: Version id (or ETag) last committed; None if never committed.
    version: str | None = None
    #: ``database.table`` of every table the committed revision wrote rows to.
    tables: tuple[str, ...] = field(default_factory=tuple)
    deleted: bool = False


def source_record_id(bucket: str, key: str) -> str:
    """The table key of a raw key's record."""
    return f"{topology.SOURCE_RECORD_PREFIX}{bucket}/{key}"


class SourceRegister:
    """Leases and revision records of raw keys (DynamoDB low-level client)."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self._dynamodb = dynamodb
        self.table = table

    def known(self, bucket: str, key: str) -> bool:
        """Whether the lake ever committed (or removed) a revision of this key."""
        item = self._dynamodb.get_item(
            TableName=self.table,
            Key={topology.IDEMPOTENCY_KEY_ATTRIBUTE: {"S": source_record_id(bucket, key)}},
            ConsistentRead=True,
        ).get("Item")
        return item is not None and ("version" in item or "pending" in item)

    def acquire(self, bucket: str, key: str, owner: str, seconds: float) -> SourceState:
        """Take the key's lease for ``seconds`` and return its state; SourceBusyError if another holds it."""
        now = time.time()
        try:
            item = self._dynamodb.update_item(
                TableName=self.table,
                Key={topology.IDEMPOTENCY_KEY_ATTRIBUTE: {"S": source_record_id(bucket, key)}},
                UpdateExpression="SET lease_owner = :owner, lease_until = :until",
                ConditionExpression=("attribute_not_exists(lease_owner) OR lease_until < :now OR lease_owner = :owner"),
                ExpressionAttributeValues={
                    ":owner": {"S": owner},
                    ":until": {"N": str(round(now + max(seconds, 1), 3))},
                    ":now": {"N": str(round(now, 3))},
                },
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except self._dynamodb.exceptions.ConditionalCheckFailedException as exc:
            raise SourceBusyError(
                f"s3://{bucket}/{key}: another version of this key is being committed right now; "
                "this one is retried after it finished"
            ) from exc
        # Tables an interrupted attempt meant to write may hold its rows too: look there as well.
        tables = {*item.get("tables", {}).get("SS", []), *item.get("pending", {}).get("SS", [])}
        return SourceState(
            version=item.get("version", {}).get("S"),
            tables=tuple(sorted(tables)),
            deleted=item.get("deleted", {}).get("BOOL", False),
        )

    def intend(self, bucket: str, key: str, owner: str, tables: list[str]) -> None:
        """Note the tables about to get rows of the key, before committing: if this attempt dies after
        a commit, the next one knows to replace rows there instead of adding them twice."""
        if not tables:
            return
        try:
            self._dynamodb.update_item(
                TableName=self.table,
                Key={topology.IDEMPOTENCY_KEY_ATTRIBUTE: {"S": source_record_id(bucket, key)}},
                UpdateExpression="ADD pending :tables",
                ConditionExpression="lease_owner = :owner",
                ExpressionAttributeValues={":tables": {"SS": sorted(set(tables))}, ":owner": {"S": owner}},
            )
        except self._dynamodb.exceptions.ConditionalCheckFailedException as exc:
            raise SourceBusyError(
                f"s3://{bucket}/{key}: the lease on this key expired before its commit; retried"
            ) from exc

    def release(self, bucket: str, key: str, owner: str, state: SourceState | None) -> None:
        """Give the lease back, recording ``state`` (None: nothing was committed, keep the record)."""
        values: dict[str, Any] = {":owner": {"S": owner}}
        # A failed attempt keeps ``pending``: its commits may have landed, the next attempt replaces them.
        update = "REMOVE lease_owner, lease_until" + (", pending" if state is not None else "")
        if state is not None:
            sets = ["version = :version", "deleted = :deleted", "updated_at = :at"]
            values |= {
                ":version": {"S": state.version or ""},
                ":deleted": {"BOOL": state.deleted},
                ":at": {"S": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")},
            }
            if state.tables:
                sets.append("tables = :tables")
                values[":tables"] = {"SS": list(state.tables)}
            else:
                update += ", tables"
            update = f"SET {', '.join(sets)} {update}"
        try:
            self._dynamodb.update_item(
                TableName=self.table,
                Key={topology.IDEMPOTENCY_KEY_ATTRIBUTE: {"S": source_record_id(bucket, key)}},
                UpdateExpression=update,
                ConditionExpression="lease_owner = :owner",
                ExpressionAttributeValues=values,
            )
        except self._dynamodb.exceptions.ConditionalCheckFailedException:
            # Our lease expired and another invocation took the key: it checks the current version
            # itself and commits after us, so its state is the one to keep.
            logger.warning("lease on s3://%s/%s expired before it was released", bucket, key)
