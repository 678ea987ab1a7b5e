"""The checkpoint gate: a checkpoint never runs beside a request, and waits for no long poll."""

from __future__ import annotations

import threading

from lake.standin.checkpoint import Gate, changes_state, durable_at_once
from lake.standin.state import SOURCE_PREFIXES


def s3(method: str, path: str, query: str = "") -> dict[str, str]:
    return {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query}


def json_api(target: str) -> dict[str, str]:
    return {"REQUEST_METHOD": "POST", "PATH_INFO": "/", "HTTP_X_AMZ_TARGET": target}


def durable(environ: dict[str, str]) -> bool:
    return durable_at_once(environ, "lake-local", SOURCE_PREFIXES)


def test_announcements_and_uploads_people_drop_are_checkpointed_before_they_are_answered() -> None:
    assert durable(json_api("AWSEvents.PutEvents"))
    assert durable(s3("PUT", "/lake-local/raw/orders/2026-03.csv"))
    assert durable(s3("DELETE", "/lake-local/raw/orders/2026-03.csv"))
    assert durable(s3("PUT", "/lake-local/settings/orders.json"))
    assert durable(s3("POST", "/lake-local/models/orders/propensity.skops", "uploadId=1"))  # multipart completed
    assert durable(s3("POST", "/lake-local", "delete"))  # aws s3 rm --recursive
    # not: a part of a multipart upload, the lake's own Iceberg files, reads, another bucket
    assert not durable(s3("PUT", "/lake-local/raw/big.csv", "partNumber=1&uploadId=1"))
    assert not durable(s3("PUT", "/lake-local/curated/orders/data/x.parquet"))
    assert not durable(s3("GET", "/lake-local/raw/orders/2026-03.csv"))
    assert not durable(s3("PUT", "/other/raw/orders/2026-03.csv"))


def test_reads_and_receives_change_nothing_a_checkpoint_needs_soon() -> None:
    assert not changes_state(s3("GET", "/lake-local/raw/a.csv"))
    assert not changes_state(json_api("AmazonSQS.ReceiveMessage"))
    assert not changes_state(json_api("AWSGlue.GetTable"))
    assert not changes_state(json_api("DynamoDB_20120810.Query"))
    assert changes_state(json_api("AmazonSQS.DeleteMessageBatch"))
    assert changes_state(json_api("AWSGlue.UpdateTable"))
    assert changes_state(s3("PUT", "/lake-local/curated/orders/data/x.parquet"))


def test_a_checkpoint_waits_for_requests_in_flight_and_holds_new_ones_back() -> None:
    gate = Gate()
    order: list[str] = []
    in_request, checkpoint_waiting = threading.Event(), threading.Event()
    finish_request = threading.Event()

    def request() -> None:
        with gate.shared():
            in_request.set()
            finish_request.wait(10)
            order.append("request done")

    def checkpoint() -> None:
        checkpoint_waiting.set()
        with gate.alone():
            order.append("checkpoint")

    def late_request() -> None:
        with gate.shared():
            order.append("late request")

    first = threading.Thread(target=request)
    first.start()
    in_request.wait(10)
    taker = threading.Thread(target=checkpoint)
    taker.start()
    checkpoint_waiting.wait(10)
    while not gate._waiting_alone:  # the checkpoint is queued behind the request
        pass
    late = threading.Thread(target=late_request)
    late.start()
    finish_request.set()
    for thread in (first, taker, late):
        thread.join(10)
    assert order == ["request done", "checkpoint", "late request"]


def test_a_request_that_steps_out_to_wait_does_not_hold_a_checkpoint_back() -> None:
    gate = Gate()
    stepped_out, checkpointed = threading.Event(), threading.Event()

    def long_poll() -> None:
        with gate.shared(), gate.stepped_out():
            stepped_out.set()
            checkpointed.wait(10)

    poll = threading.Thread(target=long_poll)
    poll.start()
    stepped_out.wait(10)
    with gate.alone():
        checkpointed.set()
    poll.join(10)
    assert not poll.is_alive()
