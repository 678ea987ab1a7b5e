"""The HTTP entry's message end to end on paper: the synthesized VTL renders an envelope the handler
parses, and the request schema accepts what ``lake reprocess`` sends and refuses what it should."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, quote

import airspeed
import pytest
from jsonschema import Draft4Validator

import topology
from handlers.events import parse_body, process_request_body
from tests.infra.conftest import Synth

pytestmark = pytest.mark.infra

REGION = "eu-west-1"
REQUEST_ID = "c0ffee00-1111-2222-3333-444455556666"


class JavaString(str):
    """VTL runs on Java strings; the template uses ``substring``."""

    def substring(self, start: int, end: int) -> JavaString:
        return JavaString(self[start:end])


class Context:
    requestTime = JavaString("05/Nov/2026:18:04:09 +0000")  # API Gateway's $context names
    requestId = REQUEST_ID
    accountId = "123456789012"


class Input:
    def __init__(self, body: dict[str, Any]) -> None:
        self.body = json.dumps(body)

    def json(self, path: str) -> str:
        assert path == "$"
        return self.body


class Util:
    def urlEncode(self, text: str) -> str:
        return quote(text, safe="")


def render(synth: Synth, body: dict[str, Any]) -> dict[str, list[str]]:
    """Render the deployed request template as API Gateway would and parse the form it sends."""
    _, method = synth.one("AWS::ApiGateway::Method")
    joined = method["Properties"]["Integration"]["RequestTemplates"]["application/json"]["Fn::Join"][1]
    assert [p for p in joined if not isinstance(p, str)] == [{"Ref": "AWS::Region"}]
    template = "".join(p if isinstance(p, str) else REGION for p in joined)
    text = airspeed.Template(template).merge({"context": Context(), "input": Input(body), "util": Util()})
    return parse_qs(text.strip(), strict_parsing=True)


def test_rendered_message_is_an_envelope_the_handler_accepts(synth: Synth) -> None:
    detail = {"bucket": "lake-bucket", "key": "raw/web_sessions/2026-10.csv", "reason": "backfill"}
    form = render(synth, detail)
    assert form["Action"] == ["SendMessage"]
    [body] = form["MessageBody"]
    envelope = json.loads(body)
    assert envelope == {
        "version": "0",
        "id": REQUEST_ID,
        "detail-type": topology.PROCESS_REQUEST_DETAIL_TYPE,
        "source": topology.PROCESS_REQUEST_SOURCE,
        "account": "123456789012",
        "time": "2026-11-05T18:04:09Z",
        "region": REGION,
        "resources": [],
        "detail": detail,
    }
    request = parse_body(body)
    assert (request.bucket, request.key, request.reason, request.trigger) == (
        detail["bucket"],
        detail["key"],
        "backfill",
        "process-request",
    )


SCHEMA = Draft4Validator(topology.process_request_detail_schema("lake-bucket"))


@pytest.mark.parametrize(
    "detail",
    [
        {"bucket": "lake-bucket", "key": "raw/crm/contacts.jsonl", "reason": "backfill"},
        {
            "bucket": "lake-bucket",
            "key": "raw/crm/contacts.jsonl",
            "version_id": "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY",
            "dataset": "crm_contacts",
            "reason": "contract fixed",
            "request_id": "ticket-4711",
        },
        json.loads(process_request_body("lake-bucket", "raw/crm/contacts.jsonl"))["detail"],
    ],
)
def test_schema_accepts_requests_and_what_lake_reprocess_sends(detail: dict[str, Any]) -> None:
    assert list(SCHEMA.iter_errors(detail)) == []


@pytest.mark.parametrize(
    ("detail", "why"),
    [
        ({"bucket": "other-bucket", "key": "raw/crm/a.csv", "reason": "x"}, "another bucket"),
        ({"bucket": "lake-bucket", "key": "curated/crm/a.parquet", "reason": "x"}, "not under raw/"),
        ({"bucket": "lake-bucket", "key": "raw/a.csv", "reason": "x"}, "no dataset segment"),
        ({"bucket": "lake-bucket", "key": "raw/crm/a.csv"}, "no reason"),
        ({"bucket": "lake-bucket", "key": "raw/crm/a.csv", "reason": "x", "admin": True}, "unknown field"),
    ],
)
def test_schema_refuses_bad_requests(detail: dict[str, Any], why: str) -> None:
    assert list(SCHEMA.iter_errors(detail)), why
