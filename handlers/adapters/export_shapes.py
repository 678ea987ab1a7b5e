"""What earlier files of an export shape proved, for later files too small to prove it themselves.

An **export shape** is a dataset plus the header (column names in order, as read) and the
delimiter of its files: the same report of the same platform, delivered day after day. One item
per shape in the idempotency table, ``shape#<dataset>#<shape>``, holds the day/month order the
newest file of the shape proved (a value with a part above 12) and which file proved it. A daily
ad export whose dates are all ambiguous (``03/04/2026``) then follows that order instead of the
default. The items never expire: an export's date format outlives any one file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

import topology
from analytics.base import DateDecision, DateHistory

logger = logging.getLogger(__name__)


def export_shape(dataset: str, columns: Sequence[str], delimiter: str) -> str:
    """A short, stable id of the shape: the same header and delimiter give the same id."""
    text = json.dumps([dataset, list(columns), delimiter], ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def shape_record_id(dataset: str, shape: str) -> str:
    """The table key of a shape's record."""
    return f"{topology.SHAPE_RECORD_PREFIX}{dataset}#{shape}"


class ExportShapes:
    """Reads and records what export shapes proved (DynamoDB low-level client)."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self._dynamodb = dynamodb
        self.table = table

    def date_history(self, dataset: str, shape: str) -> DateHistory:
        """The order the shape's newest proving file showed; an empty history when none did yet.

        A failed read never fails the file: the history says why it is missing and the file falls
        back to the default order, which its ``cleaning`` fact then states.
        """
        try:
            item = self._dynamodb.get_item(
                TableName=self.table,
                Key={topology.IDEMPOTENCY_KEY_ATTRIBUTE: {"S": shape_record_id(dataset, shape)}},
                ConsistentRead=True,
            ).get("Item")
        except (BotoCoreError, ClientError) as exc:
            logger.warning("history of export shape %s/%s not read: %s", dataset, shape, exc)
            return DateHistory(unavailable=f"the history of this export shape could not be read ({exc})")
        order = (item or {}).get("date_order", {}).get("S")
        if item is None or order not in ("DMY", "MDY"):
            return DateHistory()
        return DateHistory(
            order="DMY" if order == "DMY" else "MDY",
            key=item.get("proved_by_key", {}).get("S", "?"),
            version=item.get("proved_by_version", {}).get("S"),
            evidence=item.get("evidence", {}).get("S", ""),
        )

    def record_date_proof(
        self,
        dataset: str,
        shape: str,
        *,
        columns: Sequence[str],
        delimiter: str,
        decision: DateDecision,
        key: str,
        version: str,
        landed_at: dt.datetime,
    ) -> bool:
        """Remember that ``key`` proved ``decision.order`` for the shape, unless a file that landed
        later already proved something (newest proof wins, whatever order files are processed in).
        Returns whether the record was written."""
        try:
            self._dynamodb.put_item(
                TableName=self.table,
                Item={
                    topology.IDEMPOTENCY_KEY_ATTRIBUTE: {"S": shape_record_id(dataset, shape)},
                    "dataset": {"S": dataset},
                    # The header and delimiter, so a person reading the table can tell shapes apart.
                    "header": {"S": json.dumps(list(columns), ensure_ascii=False)},
                    "delimiter": {"S": delimiter},
                    "date_order": {"S": decision.order},
                    "evidence": {"S": decision.evidence},
                    "proved_by_key": {"S": key},
                    "proved_by_version": {"S": version},
                    "proved_at": {"N": str(landed_at.timestamp())},
                    "recorded_at": {"S": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")},
                },
                ConditionExpression="attribute_not_exists(#id) OR proved_at <= :at",
                ExpressionAttributeNames={"#id": topology.IDEMPOTENCY_KEY_ATTRIBUTE},
                ExpressionAttributeValues={":at": {"N": str(landed_at.timestamp())}},
            )
        except self._dynamodb.exceptions.ConditionalCheckFailedException:
            return False
        except (BotoCoreError, ClientError) as exc:
            # The file's rows are committed already; failing it now would only commit them again.
            # Its later siblings fall back to the default order (and their facts say so) until a
            # file of the shape proves it again.
            logger.warning("proof of %s not recorded for export shape %s/%s: %s", key, dataset, shape, exc)
            return False
        return True
