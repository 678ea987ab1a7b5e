"""Refresh requests: what the per-file stage sends to the refresh queue after each commit.

The queue is FIFO, one message group per dataset, so a dataset's requests are handed out in order
and never to two refreshes at once. Each request names the commit that asked for it (the input
tables' snapshot ids after that commit); the refresh reads the tables' *current* snapshots and skips
when its last run already read those. So a burst of files collapses (a refresh covers every commit
before it, and the requests behind it find nothing new), none is lost (each commit's request comes
after the commit), and the last request always leads to a refresh that sees the last commit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import topology
from handlers.errors import InvalidMessageError

REFRESH_REQUEST_DETAIL_TYPE = "Refresh Request"


@dataclass(frozen=True)
class RefreshRequest:
    """Recompute ``dataset``'s models; asked by the commit of ``key`` (or by a person)."""

    dataset: str
    #: ``{database.table: snapshot id}`` the asking commit created (informative: the refresh reads
    #: the current snapshots, which include it).
    snapshots: dict[str, int | None] = field(default_factory=dict)
    key: str | None = None
    version: str | None = None
    reason: str = "commit"
    requested_at: str = ""

    def body(self) -> str:
        return json.dumps(
            {
                "source": topology.REFRESH_REQUEST_SOURCE,
                "detail-type": REFRESH_REQUEST_DETAIL_TYPE,
                "detail": {
                    "dataset": self.dataset,
                    "snapshots": self.snapshots,
                    "key": self.key,
                    "version": self.version,
                    "reason": self.reason,
                    "requested_at": self.requested_at,
                },
            }
        )

    def deduplication_id(self) -> str:
        """The same commit asking twice (a retried invocation) is one message within SQS's 5 minutes."""
        text = json.dumps([self.dataset, sorted(self.snapshots.items()), self.key, self.version, self.reason])
        return hashlib.sha256(text.encode()).hexdigest()[:64]


def parse_refresh_request(body: str) -> RefreshRequest:
    """The request a refresh queue message carries; :class:`InvalidMessageError` for anything else."""
    try:
        message = json.loads(body)
        if message.get("source") != topology.REFRESH_REQUEST_SOURCE:
            raise ValueError(f"source is {message.get('source')!r}, not {topology.REFRESH_REQUEST_SOURCE!r}")
        detail = message["detail"]
        dataset = detail["dataset"]
        if not isinstance(dataset, str) or not dataset:
            raise ValueError("detail.dataset must name a dataset")
        snapshots = {str(k): (int(v) if v is not None else None) for k, v in (detail.get("snapshots") or {}).items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidMessageError(
            f"the refresh queue got a message that is not a refresh request ({exc}); "
            f'send {{"source": "{topology.REFRESH_REQUEST_SOURCE}", "detail": {{"dataset": "<name>"}}}}'
        ) from exc
    return RefreshRequest(
        dataset=dataset,
        snapshots=snapshots,
        key=detail.get("key"),
        version=detail.get("version"),
        reason=str(detail.get("reason") or "request"),
        requested_at=str(detail.get("requested_at") or ""),
    )


class RefreshRequester:
    """Sends refresh requests to the refresh queue (one SQS client per process, passed in)."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self.queue_url = queue_url

    def request(self, request: RefreshRequest) -> None:
        """Send one request; an error raises (the per-file record is retried: a commit never goes unasked)."""
        if not request.requested_at:
            now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            request = RefreshRequest(
                request.dataset, request.snapshots, request.key, request.version, request.reason, now
            )
        self._sqs.send_message(
            QueueUrl=self.queue_url,
            MessageBody=request.body(),
            MessageGroupId=request.dataset,
            MessageDeduplicationId=request.deduplication_id(),
        )


def wanted(dataset: str) -> bool:
    """Whether ``dataset`` has refreshers (models over its history) to ask for."""
    from analytics.registry import refreshers

    return bool(refreshers(dataset))


def snapshot_map(outputs: list[Any]) -> dict[str, int | None]:
    """``{database.table: snapshot id}`` of a commit's outputs (``handlers.outcome.Committed``)."""
    return {f"{o.database}.{o.table}": o.snapshot_id for o in outputs}


__all__ = ["RefreshRequest", "RefreshRequester", "parse_refresh_request", "snapshot_map", "wanted"]
