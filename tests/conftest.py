"""Shared fixtures: a moto server provisioned like the CDK stack, and ways to watch it."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest

# moto's request recorder (off until a test starts it) writes here, one file per process, not into
# the working directory; set before moto is imported, which reads it once.
os.environ["MOTO_RECORDER_FILEPATH"] = str(Path(tempfile.gettempdir()) / f"lake-moto-requests-{os.getpid()}")

import topology
from lake.standin.server import Endpoints, StandIn, client, free_port, provision

# pytest rewrites a test module's asserts as it imports it, and keeps the result in __pycache__
# unless bytecode is not to be written: with PYTHONDONTWRITEBYTECODE=1, as on the development
# machine, every worker of every run rewrote and compiled every test module again (collecting the
# suite took 12.3 s of CPU a process instead of 8.2 s). So the test processes write bytecode, of every
# module they import from here on (into __pycache__, which git ignores); the processes tests start
# still follow the environment.
sys.dont_write_bytecode = False

SCHEMA = json.loads((Path(__file__).parent.parent / "handlers/schemas/completion_event.schema.json").read_text())
MODELS_SCHEMA = json.loads((Path(__file__).parent.parent / "handlers/schemas/models_event.schema.json").read_text())
#: The JSON Schema of each detail-type the lake publishes.
SCHEMAS = {
    topology.DETAIL_TYPE_PROCESSED: SCHEMA,
    topology.DETAIL_TYPE_FAILED: SCHEMA,
    topology.DETAIL_TYPE_MODELS_UPDATED: MODELS_SCHEMA,
    topology.DETAIL_TYPE_MODELS_FAILED: MODELS_SCHEMA,
}

#: Quick retries so retries and redrives happen within a test, as `lake up --retry-after 4` gives:
#: a failed message comes back after 4 s. The function's timeout stays generous and the visibility
#: timeout six times it (AWS's advice), so a slow invocation on a loaded machine is neither cut short
#: nor handed to a second worker meanwhile; tests of timeouts set their own. The runner starts as many
#: workers as `lake up` does (``on_stand_in``: 2), not the deployed maximum concurrency (50 processes
#: per runner, each importing the handler, were a third of the suite's CPU).
FAST_QUEUE = replace(
    topology.DEFAULT.queue.on_stand_in(),
    function_timeout_seconds=120,
    visibility_timeout_seconds=720,
    batching_window_seconds=1,
    max_receive_count=3,
).retrying_after(4)
#: The refresh queue, as generous (FIFO: no batching window), its failures retried as quickly.
FAST_REFRESH_QUEUE = replace(
    topology.DEFAULT.refresh.queue,
    function_timeout_seconds=120,
    visibility_timeout_seconds=720,
    batching_window_seconds=0,
    max_receive_count=3,
).retrying_after(4)


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: only with `-n` (`make test`, `make check`)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With `--dist loadfile`: the infrastructure tests count as one file, each functional test as one.

    Each worker is a pytest session of its own, with its own session fixtures: its own moto server on
    a free port (moto keeps its state per process, so workers never see each other's lake), its own
    tmp_path. A file's tests run on one worker, in order, so a module-scoped fixture (a stand-in
    filled once, a browser) is built once. The CDK synth (``tests/infra/conftest.py``) costs seconds
    of jsii and Node per worker that builds it, so one worker runs every infrastructure test. The
    functional tests share nothing beyond their function-scoped stand-in, and their files are long
    (a refresh per test), so they are dealt out one by one: no file of them is left running alone.
    """
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class Scopes(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope: str = super()._split_scope(nodeid)
            if scope.startswith("tests/infra/"):
                return "tests/infra"
            return nodeid if scope.startswith("tests/functional/") else scope

    return Scopes(config, log)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[StandIn]:
    """One moto server per test session (per worker under `-n`); moto keeps its state per process."""
    server = StandIn(port=free_port(), queue=FAST_QUEUE, refresh_queue=FAST_REFRESH_QUEUE)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def stand_in(moto_server: StandIn) -> Endpoints:
    """A freshly reset and provisioned stand-in for each test."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_server.endpoint_url}/moto-api/reset", method="POST"))
    return provision(moto_server.endpoint_url, moto_server.topology, pseudonym_key=moto_server.pseudonym_key)


def wait_until(condition: Callable[[], object], timeout: float = 60, every: float = 0.3) -> bool:
    """Whether ``condition()`` became true within ``timeout`` seconds (polled every ``every``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return False


class Lake:
    """Test-side view of the stand-in: upload, receive, read events, list keys."""

    def __init__(self, endpoints: Endpoints) -> None:
        self.endpoints = endpoints
        self.bucket = endpoints.topology.bucket
        self.s3 = client("s3", endpoints.endpoint_url)
        self.sqs = client("sqs", endpoints.endpoint_url)
        self.glue = client("glue", endpoints.endpoint_url)

    def put(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def receive(self, queue_url: str, wait: int = 2, max_messages: int = 10) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=wait,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        return messages

    def queue_depth(self, queue_url: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def events(
        self, count: int, timeout: float = 60, where: Callable[[dict[str, Any]], bool] = lambda e: True
    ) -> list[dict[str, Any]]:
        """Events from the example subscriber (per file and per refresh), each validated against its
        JSON Schema."""
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(found) < count and time.monotonic() < deadline:
            found += self._take_events(self.receive(self.endpoints.subscriber_queue_url, wait=1), where)
        return found

    def quiet_events(self, seconds: float) -> list[dict[str, Any]]:
        """Every event that arrives within ``seconds`` (to show that nothing more came), for events
        published by other processes (the runner's workers)."""
        return self.events(count=10_000, timeout=seconds)

    def settled_events(self, where: Callable[[dict[str, Any]], bool] = lambda e: True) -> list[dict[str, Any]]:
        """Every event on the subscriber queue, once every invocation that could publish one has
        returned in this process (the functional tests): the stand-in puts an event on the queue
        inside its PutEvents call, so one that is not there by then never comes."""
        found: list[dict[str, Any]] = []
        while messages := self.receive(self.endpoints.subscriber_queue_url, wait=0):
            found += self._take_events(messages, where)
        return found

    def _take_events(
        self, messages: list[dict[str, Any]], where: Callable[[dict[str, Any]], bool]
    ) -> list[dict[str, Any]]:
        taken = []
        queue = self.endpoints.subscriber_queue_url
        for message in messages:
            event = json.loads(message["Body"])
            jsonschema.validate(event["detail"], SCHEMAS[event["detail-type"]])
            if where(event):
                taken.append(event)
            self.sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        return taken


@pytest.fixture
def lake(stand_in: Endpoints) -> Lake:
    return Lake(stand_in)
