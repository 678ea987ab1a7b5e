"""Parsing SQS bodies at the edge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import topology
from handlers.errors import InvalidMessageError
from handlers.events import parse_body, process_request_body

EVENTS = Path(__file__).parent.parent / "events"


def test_s3_eventbridge_event_becomes_an_object_request() -> None:
    # GIVEN the body Lambda receives for an S3 Object Created event routed through EventBridge
    body = (EVENTS / "s3_object_created.json").read_text()
    # WHEN it is parsed
    request = parse_body(body)
    # THEN the object is named as in the event (decoding happens against S3, not here)
    assert request.bucket == "lake-local"
    assert request.key == "raw/web_sessions/sessions%202026+%C3%A9.csv"
    assert request.version_id == "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"
    assert request.etag == "e5ebd4c02cefbe7955977c67ada242b7"
    assert request.trigger == "s3-event"


def test_unversioned_bucket_reports_no_version() -> None:
    event = json.loads((EVENTS / "s3_object_created.json").read_text())
    event["detail"]["object"]["version-id"] = "null"
    assert parse_body(json.dumps(event)).version_id is None


def test_process_request_round_trips() -> None:
    body = process_request_body("lake-local", "raw/x/a.csv", reason="backfill", request_id="r-1")
    request = parse_body(body)
    assert (request.bucket, request.key, request.reason, request.request_id) == (
        "lake-local",
        "raw/x/a.csv",
        "backfill",
        "r-1",
    )
    assert request.trigger == "process-request"
    assert json.loads(body)["source"] == topology.PROCESS_REQUEST_SOURCE


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not an object"),
        ('{"source": "aws.ec2"}', "'aws.ec2' is not handled"),
        ('{"source": "aws.s3", "detail-type": "Object Created", "detail": {}}', "malformed"),
        (
            json.dumps({"source": topology.PROCESS_REQUEST_SOURCE, "detail-type": "x", "detail": {"bucket": "b"}}),
            "malformed",
        ),
    ],
)
def test_bad_bodies_say_what_was_expected(body: str, fragment: str) -> None:
    with pytest.raises(InvalidMessageError, match=fragment):
        parse_body(body)


def test_an_http_process_request_without_its_own_id_is_keyed_on_the_envelope_id() -> None:
    body = json.loads(process_request_body("lake-local", "raw/x/a.csv"))
    body["id"] = "api-request-123"
    body["detail"]["dataset"] = "x"
    request = parse_body(json.dumps(body))
    assert request.request_id == "api-request-123"
    assert request.dataset == "x"
