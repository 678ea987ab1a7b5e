"""Parse SQS message bodies into typed requests at the edge; nothing past here indexes raw dicts.

Two message shapes are accepted:

* an EventBridge S3 ``Object Created`` or ``Object Deleted`` event (``source: aws.s3``), routed by the
  raw/ rule (a deletion removes the key's rows);
* a process request (``source: lake.process-request``) sent by ``lake reprocess`` or the HTTP entry:
  ``{"source": "lake.process-request", "detail-type": "Process Request",
     "detail": {"bucket": ..., "key": ..., "version_id": null, "reason": "backfill"}}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.parser import ValidationError, parse
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from pydantic import BaseModel, Field

import topology
from handlers.errors import InvalidMessageError


class ProcessRequestDetail(BaseModel):
    """The detail of a process request message."""

    bucket: str = Field(min_length=3)
    key: str = Field(min_length=1)
    version_id: str | None = None
    dataset: str | None = None
    reason: str = "reprocess"
    request_id: str | None = None


class ProcessRequestModel(BaseModel):
    """Envelope of a process request, shaped like an EventBridge event."""

    source: str
    detail_type: str = Field(alias="detail-type")
    detail: ProcessRequestDetail
    #: Set by the HTTP entry (API Gateway's request id): a request without its own id is keyed on it.
    id: str | None = None


@dataclass(frozen=True)
class ObjectRequest:
    """One object to process, as named by the message (the key may still be URL-encoded)."""

    bucket: str
    key: str
    version_id: str | None
    etag: str | None
    size: int | None
    trigger: str  # "s3-event" or "process-request"
    reason: str
    #: Present for process requests: each request is processed once even for the same object.
    request_id: str | None = None
    #: A process request may name the dataset; it must agree with the key's first segment.
    dataset: str | None = None
    #: An S3 ``Object Deleted`` event: the key's rows leave the lake (if the key is really gone).
    deleted: bool = False
    #: The S3 event's ``sequencer`` (orders events of one key), when the message came from S3.
    sequencer: str | None = None

    @property
    def revision(self) -> str:
        """What identifies this change of the key: its version (or ETag), else the event's sequencer."""
        return self.version_id or self.etag or self.sequencer or ""


def _clean_version(version: str | None) -> str | None:
    # Unversioned buckets report the literal string "null".
    return None if version in (None, "", "null") else version


def parse_body(body: str) -> ObjectRequest:
    """Parse one SQS message body; raise ``InvalidMessageError`` saying what was expected."""
    try:
        payload: Any = json.loads(body)
    except (TypeError, ValueError) as exc:
        raise InvalidMessageError(
            f"message body is not JSON ({exc}); send an S3 'Object Created' event or a process request"
        ) from exc
    if not isinstance(payload, dict):
        raise InvalidMessageError("message body is JSON but not an object; expected an EventBridge event")
    source = payload.get("source")
    try:
        if source == "aws.s3":
            event = parse(event=payload, model=S3EventNotificationEventBridgeModel)
            obj = event.detail.object
            deleted = event.detail_type == "Object Deleted"
            if not deleted and event.detail_type != "Object Created":
                raise InvalidMessageError(
                    f"S3 event {event.detail_type!r} is not handled; the raw/ rule should route only "
                    "'Object Created' and 'Object Deleted'"
                )
            return ObjectRequest(
                bucket=event.detail.bucket.name,
                key=obj.key,
                version_id=_clean_version(obj.version_id),
                etag=obj.etag or None,
                size=int(obj.size) if obj.size is not None else None,
                trigger="s3-event",
                reason=event.detail.reason or ("DeleteObject" if deleted else "ObjectCreated"),
                deleted=deleted,
                sequencer=obj.sequencer,
            )
        if source == topology.PROCESS_REQUEST_SOURCE:
            request = ProcessRequestModel.model_validate(payload)
            detail = request.detail
            return ObjectRequest(
                bucket=detail.bucket,
                key=detail.key,
                version_id=_clean_version(detail.version_id),
                etag=None,
                size=None,
                trigger="process-request",
                reason=detail.reason,
                request_id=detail.request_id or request.id,
                dataset=detail.dataset,
            )
    except (ValidationError, ValueError) as exc:
        raise InvalidMessageError(f"message from source {source!r} is malformed: {exc}") from exc
    raise InvalidMessageError(
        f"message source {source!r} is not handled; expected 'aws.s3' (Object Created) "
        f"or {topology.PROCESS_REQUEST_SOURCE!r}"
    )


def process_request_body(
    bucket: str,
    key: str,
    *,
    version_id: str | None = None,
    reason: str = "reprocess",
    request_id: str | None = None,
) -> str:
    """The JSON body of a process request message (what ``lake reprocess`` and the HTTP entry send)."""
    return json.dumps(
        {
            "source": topology.PROCESS_REQUEST_SOURCE,
            "detail-type": topology.PROCESS_REQUEST_DETAIL_TYPE,
            "detail": {
                "bucket": bucket,
                "key": key,
                "version_id": version_id,
                "reason": reason,
                "request_id": request_id,
            },
        }
    )
