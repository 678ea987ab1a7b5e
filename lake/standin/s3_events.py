"""S3 EventBridge notifications as AWS sends them, where moto 5.2 falls short.

moto emits "Object Created" to EventBridge for a bucket with ``EventBridgeConfiguration``, but with
one fixed ``sequencer`` and one event id for every event, ``eTag`` where AWS writes ``etag``, and
``reason: ObjectCreated`` where AWS names the API. For deletions it emits nothing, except a
malformed event when the last version of a key goes. The stand-in replaces moto's EventBridge
sender and wraps ``S3Backend.delete_object`` (which ``DeleteObjects`` calls per key) once per
process, so every moto server in the process (``lake up``, the demo, the tests) emits:

* "Object Created" with the API as ``reason`` and a sequencer that grows with every event;
* "Object Deleted" with ``deletion-type`` "Delete Marker Created" (versioned bucket, no version
  id given; ``version-id`` is the marker's) or "Permanently Deleted" (a named version, or any
  delete in an unversioned bucket), ``reason`` "DeleteObject", no ``size``.

Shapes: https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html
"""

from __future__ import annotations

import copy
import functools
import logging
import random
import string
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

#: ETag of an empty body: what S3 reports for a delete marker.
EMPTY_ETAG = "d41d8cd98f00b204e9800998ecf8427e"
#: Requests reach the stand-in from this machine only (it listens on 127.0.0.1).
SOURCE_IP = "127.0.0.1"

_CREATED_REASONS = {
    "s3:ObjectCreated:Put": "PutObject",
    "s3:ObjectCreated:Post": "POST Object",
    "s3:ObjectCreated:Copy": "CopyObject",
    "s3:ObjectCreated:CompleteMultipartUpload": "CompleteMultipartUpload",
}

_sequencer_lock = threading.Lock()
_last_sequencer = 0
_install_lock = threading.Lock()
_INSTALLED = "_lake_standin_object_deleted"


def next_sequencer() -> str:
    """A sequencer larger than every one handed out before, in this process and (clock permitting) earlier ones.

    AWS compares sequencers of one key as hex strings right-padded to equal length; a fixed width
    of 18 hex digits (AWS's own width in S3 notifications) makes plain string order the same order.
    Nanoseconds since the epoch keep the order across a restart of ``lake up``.
    """
    global _last_sequencer
    with _sequencer_lock:
        _last_sequencer = max(_last_sequencer + 1, time.time_ns())
        return f"{_last_sequencer:018X}"


_REQUEST_ID_LETTERS = string.ascii_uppercase + string.digits
#: Request ids identify nothing secret; the operating system's random source (one call per letter)
#: was the stand-in's largest cost per S3 write.
_REQUEST_IDS = random.Random()


def _request_id() -> str:
    return "".join(_REQUEST_IDS.choices(_REQUEST_ID_LETTERS, k=16))


def _version_field(version_id: str | None) -> dict[str, str]:
    # moto calls an unversioned bucket's objects version "null"; AWS leaves the field out.
    return {} if version_id in (None, "", "null") else {"version-id": str(version_id)}


def _put_on_default_bus(account_id: str, bucket: Any, detail_type: str, detail: dict[str, Any]) -> None:
    """Route one S3 event through the rules of the account's default bus, as S3 does."""
    from moto.events.models import events_backends
    from moto.events.utils import EventMessageType

    event: EventMessageType = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": account_id,
        # moto's SQS target formats the epoch seconds as ISO 8601 (second precision, like AWS).
        "time": time.time(),
        "region": bucket.region_name,
        "resources": [bucket.arn],
        "detail": detail,
    }
    bus = events_backends[account_id][bucket.region_name].event_buses.get("default")
    if bus is None:
        return
    for rule in list(bus.rules.values()):
        # A target rewrites "time" in place, so each rule gets its own copy; no input transformer,
        # as in moto's own S3 sender (the topology's rules have none).
        rule.send_to_targets(copy.deepcopy(event), transform_input=False)


def _emit(account_id: str, bucket: Any, detail_type: str, detail: dict[str, Any]) -> None:
    try:
        _put_on_default_bus(account_id, bucket, detail_type, detail)
    except Exception:
        # S3 notifies asynchronously: a failed notification never fails the request that caused it.
        logger.exception("stand-in: could not emit S3 %r event for s3://%s", detail_type, bucket.name)


def _detail(account_id: str, bucket: Any, obj: dict[str, Any], **extra: str) -> dict[str, Any]:
    return {
        "version": "0",
        "bucket": {"name": bucket.name},
        "object": {**obj, "sequencer": next_sequencer()},
        "request-id": _request_id(),
        "requester": account_id,
        "source-ip-address": SOURCE_IP,
        **extra,
    }


def _send_event_bridge_message(original: Callable[..., None]) -> Callable[..., None]:
    """moto's EventBridge sender, with Created events fixed and its removal events left to us."""

    def send(account_id: str, bucket: Any, event_name: str, key: Any) -> None:
        name = str(getattr(event_name, "value", event_name))  # moto passes a str Enum member
        if name.startswith("s3:ObjectRemoved"):
            return  # emitted by the delete_object wrapper, which knows marker from permanent
        reason = _CREATED_REASONS.get(name)
        if reason is None:
            original(account_id, bucket, event_name, key)
            return
        obj = {"key": key.name, "size": key.size, "etag": key.etag.replace('"', ""), **_version_field(key.version_id)}
        _emit(account_id, bucket, "Object Created", _detail(account_id, bucket, obj, reason=reason))

    setattr(send, _INSTALLED, True)
    return send


def _deletion(
    bucket: Any, key_name: str, version_id: str | None, before: dict[str, Any], meta: dict[str, Any]
) -> tuple[dict[str, str], str] | None:
    """The deleted object's fields and the deletion type, or None when the call deleted nothing."""
    if version_id is None and bucket.is_versioned:
        if "version-id" not in meta:
            return None  # no such key: moto puts no marker on it
        return {"key": key_name, "etag": EMPTY_ETAG, "version-id": meta["version-id"]}, "Delete Marker Created"
    # A named version, or any delete in an unversioned bucket (whose one object moto calls "null").
    gone = before.get(str(version_id)) if bucket.is_versioned else next(iter(before.values()), None)
    if gone is None:
        return None
    etag = getattr(gone, "etag", None)  # a delete marker has none
    obj = {"key": key_name, "etag": etag.replace('"', "") if etag else EMPTY_ETAG, **_version_field(gone.version_id)}
    return obj, "Permanently Deleted"


def _deleting(original: Callable[..., tuple[bool, dict[str, Any]]]) -> Callable[..., tuple[bool, dict[str, Any]]]:
    @functools.wraps(original)
    def delete_object(
        self: Any, bucket_name: str, key_name: str, version_id: str | None = None, bypass: bool = False
    ) -> tuple[bool, dict[str, Any]]:
        bucket = self.get_bucket(bucket_name)
        # What the delete removes, looked at before it is gone (its ETag goes into the event).
        before = {str(k.version_id): k for k in bucket.keys.getlist(key_name, [])}
        deleted, meta = original(self, bucket_name, key_name, version_id=version_id, bypass=bypass)
        config = bucket.notification_configuration
        if config is None or config.event_bridge is None:
            return deleted, meta
        try:
            found = _deletion(bucket, key_name, version_id, before, meta)
        except Exception:
            # S3 notifies asynchronously: a failed notification never fails the request that caused it.
            logger.exception("stand-in: could not describe the deletion of s3://%s/%s", bucket.name, key_name)
            return deleted, meta
        if found is not None:
            obj, deletion_type = found
            detail = _detail(self.account_id, bucket, obj, reason="DeleteObject", **{"deletion-type": deletion_type})
            _emit(self.account_id, bucket, "Object Deleted", detail)
        return deleted, meta

    setattr(delete_object, _INSTALLED, True)
    return delete_object


def install() -> None:
    """Make moto's S3 emit AWS-shaped Object Created and Object Deleted events. Idempotent."""
    from moto.s3 import notifications
    from moto.s3.models import S3Backend

    with _install_lock:
        if not getattr(notifications._send_event_bridge_message, _INSTALLED, False):
            notifications._send_event_bridge_message = _send_event_bridge_message(
                notifications._send_event_bridge_message
            )
        if not getattr(S3Backend.delete_object, _INSTALLED, False):
            S3Backend.delete_object = _deleting(S3Backend.delete_object)  # type: ignore[method-assign]
