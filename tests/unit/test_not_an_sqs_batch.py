"""An invocation that is not an SQS batch gets one clear error, before any client is built."""

from __future__ import annotations

from typing import Any

import pytest

from handlers import process
from handlers.errors import NotAnSqsBatchError
from lake.standin.runner import LocalContext


def invoke(event: Any) -> dict[str, Any]:
    return process.lambda_handler(event, LocalContext("lake-processor", 60_000, 1024, "us-east-1"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("event", "got"),
    [
        ({"key1": "value1", "key2": "value2"}, "got an object with keys ['key1', 'key2']"),
        ({}, "got an empty object"),
        ({"Records": []}, "got an object with keys ['Records']"),
        ({"Records": [{"eventSource": "aws:s3"}]}, "got records from ['aws:s3']"),
        ([1, 2], "got a JSON array"),
        ("raw/orders/march.csv", "got a JSON string"),
        (None, "got null"),
    ],
)
def test_a_console_test_event_or_a_wrong_trigger_is_refused_in_one_line(
    event: Any, got: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN no lake settings at all: the refusal must come before the processor is built
    monkeypatch.setattr(process, "_processor", None)

    # WHEN the function is invoked with something that is not an SQS batch
    with pytest.raises(NotAnSqsBatchError) as raised:
        invoke(event)

    # THEN the one-line message says what it takes, what it got, and what to do instead
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("this function takes SQS batches from its processing queue")
    assert got in message
    assert "put it under raw/ or run `lake reprocess" in message
    assert process._processor is None
