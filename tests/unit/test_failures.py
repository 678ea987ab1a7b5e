"""The failure record never gets in the way of the error it records."""

from __future__ import annotations

from typing import Any

from handlers.adapters.failure_records import MAX_ERROR_CHARS, FailureLog, describe_error


class UnreachableTable:
    """A DynamoDB client whose every call fails, as when the table is missing or throttled."""

    def __init__(self) -> None:
        self.calls = 0

    def update_item(self, **kwargs: Any) -> None:
        self.calls += 1
        raise ConnectionError("DynamoDB is unreachable")


def test_a_failure_to_record_is_swallowed() -> None:
    table = UnreachableTable()
    FailureLog(table, "lake-idempotency", 60).record("m-1", "raw/a/b.csv", RuntimeError("Glue is down"))
    assert table.calls == 1


def test_nothing_is_recorded_without_a_message_id() -> None:
    table = UnreachableTable()
    FailureLog(table, "lake-idempotency", 60).record(None, "raw/a/b.csv", RuntimeError("boom"))
    assert table.calls == 0


def test_the_error_is_one_line_with_its_type_and_cut_to_size() -> None:
    assert describe_error(ValueError("bad\n  value")) == "ValueError: bad value"
    long = describe_error(RuntimeError("x" * 2000))
    assert len(long) == MAX_ERROR_CHARS and long.startswith("RuntimeError: xxx") and long.endswith("…")
