"""The S3 "Object Deleted" sample payload and Powertools' model of it; the stand-in's sequencers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parser import ValidationError, parse
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel

from lake.standin import s3_events

EVENTS = Path(__file__).parent.parent / "events"
EMPTY = s3_events.EMPTY_ETAG


def sample() -> dict[str, object]:
    event: dict[str, object] = json.loads((EVENTS / "s3_object_deleted.json").read_text())
    return event


def test_powertools_parses_an_object_deleted_event_without_size() -> None:
    # GIVEN the event S3 sends to EventBridge when a delete marker is created (no size in it)
    # WHEN Powertools' S3 EventBridge model parses it
    event = parse(event=sample(), model=S3EventNotificationEventBridgeModel)
    # THEN every field a consumer needs is there, and size is simply absent
    obj = event.detail.object
    assert event.detail_type == "Object Deleted"
    assert (obj.key, obj.size, obj.etag) == ("raw/web_sessions/sessions%202026+%C3%A9.csv", None, EMPTY)
    assert (obj.version_id, obj.sequencer) == ("1QW9g1Z99LUNbvaaYVpW9xDlOLU.qxgF", "617f0837b476e463")
    assert (event.detail.reason, event.detail.deletion_type) == ("DeleteObject", "Delete Marker Created")


def test_powertools_tolerates_a_deleted_object_named_by_key_alone() -> None:
    # GIVEN a permanent deletion in an unversioned bucket by a lifecycle rule: no etag, version,
    # sequencer or source address
    event = sample()
    detail = event["detail"]
    assert isinstance(detail, dict)
    detail["object"] = {"key": "raw/a.csv"}
    detail.pop("source-ip-address")
    detail.update({"requester": "s3.amazonaws.com", "reason": "Lifecycle Expiration"})
    detail["deletion-type"] = "Permanently Deleted"
    # WHEN parsed THEN it is accepted, with an empty etag (not None) and no version or sequencer
    obj = parse(event=event, model=S3EventNotificationEventBridgeModel).detail.object
    assert (obj.etag, obj.version_id, obj.sequencer) == ("", None, None)


@pytest.mark.parametrize("field", ["request-id", "requester", "version", "bucket", "object"])
def test_powertools_requires_the_rest_of_the_detail(field: str) -> None:
    event = sample()
    detail = event["detail"]
    assert isinstance(detail, dict)
    del detail[field]
    with pytest.raises(ValidationError, match=field):
        parse(event=event, model=S3EventNotificationEventBridgeModel)


def test_sequencers_grow_in_string_order_even_when_the_clock_stands_still(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a clock that does not move (two events within its resolution)
    monkeypatch.setattr(s3_events.time, "time_ns", lambda: 1_790_000_000_000_000_000)
    # WHEN sequencers are handed out
    sequencers = [s3_events.next_sequencer() for _ in range(3)]
    # THEN each is larger than the one before, as strings of one width (how consumers compare them)
    assert sequencers == sorted(set(sequencers))
    assert {len(s) for s in sequencers} == {18}
    assert all(int(s, 16) for s in sequencers)
