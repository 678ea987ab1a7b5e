"""The refresh's Athena path: the same SQL sent to Athena, results typed back into Arrow.

moto has no Athena query engine that answers SQL, so botocore's Stubber plays Athena's API here
(the responses are shaped as Athena returns them: every value as text, the header as first row).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from handlers.adapters.refresh_requests import RefreshRequest, parse_refresh_request
from handlers.stages.refresh_queries import AthenaQueryError, RefreshQueries, RefreshQueryError
from query.athena import AthenaEngine


def athena() -> Any:
    return boto3.client("athena", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def rows(*values: tuple[str | None, ...]) -> list[dict[str, Any]]:
    return [{"Data": [{"VarCharValue": v} if v is not None else {} for v in row]} for row in values]


COLUMNS = [
    {"Name": "customer_id", "Type": "varchar"},
    {"Name": "first_order_date", "Type": "date"},
    {"Name": "orders", "Type": "bigint"},
    {"Name": "total_amount", "Type": "double"},
]


def test_a_query_runs_in_the_workgroup_and_its_pages_come_back_typed() -> None:
    client = athena()
    stub = Stubber(client)
    sql = "SELECT customer_id, min(order_date) AS first_order_date FROM orders GROUP BY 1"
    stub.add_response(
        "start_query_execution",
        {"QueryExecutionId": "q-1"},
        {"QueryString": sql, "QueryExecutionContext": {"Database": "lake_curated"}, "WorkGroup": "lake"},
    )
    stub.add_response(
        "get_query_execution", {"QueryExecution": {"Status": {"State": "RUNNING"}}}, {"QueryExecutionId": "q-1"}
    )
    stub.add_response(
        "get_query_execution", {"QueryExecution": {"Status": {"State": "SUCCEEDED"}}}, {"QueryExecutionId": "q-1"}
    )
    stub.add_response(
        "get_query_results",
        {
            "ResultSet": {
                "ResultSetMetadata": {"ColumnInfo": COLUMNS},
                "Rows": rows(
                    ("customer_id", "first_order_date", "orders", "total_amount"), ("007", "2026-01-02", "3", "60.5")
                ),
            },
            "NextToken": "page-2",
        },
        {"QueryExecutionId": "q-1", "MaxResults": 1000},
    )
    stub.add_response(
        "get_query_results",
        {"ResultSet": {"ResultSetMetadata": {"ColumnInfo": COLUMNS}, "Rows": rows(("042", "2026-01-31", "1", None))}},
        {"QueryExecutionId": "q-1", "MaxResults": 1000, "NextToken": "page-2"},
    )
    with stub:
        result = RefreshQueries(AthenaEngine(client, "lake", "lake_curated", sleep=lambda s: None))(sql)
    stub.assert_no_pending_responses()
    assert result.to_pylist() == [
        {"customer_id": "007", "first_order_date": dt.date(2026, 1, 2), "orders": 3, "total_amount": 60.5},
        {"customer_id": "042", "first_order_date": dt.date(2026, 1, 31), "orders": 1, "total_amount": None},
    ]


def test_a_failed_query_is_a_transient_error_that_says_why() -> None:
    client = athena()
    stub = Stubber(client)
    stub.add_response("start_query_execution", {"QueryExecutionId": "q-2"})
    stub.add_response(
        "get_query_execution",
        {"QueryExecution": {"Status": {"State": "FAILED", "StateChangeReason": "Query exhausted resources"}}},
    )
    with (
        stub,
        pytest.raises(AthenaQueryError, match="q-2 failed: Query exhausted resources; the refresh will be retried"),
    ):
        RefreshQueries(AthenaEngine(client, "lake", "lake_curated", sleep=lambda s: None))("SELECT 1")


@pytest.mark.parametrize(
    ("reason", "error", "says"),
    [
        (
            "line 1:8: Column 'no_such_column' cannot be resolved",
            {"ErrorCategory": 2, "ErrorType": 1006, "Retryable": False},
            "Athena cannot run query q-3: line 1:8: Column 'no_such_column' cannot be resolved",
        ),
        (
            "Query cancelled! Bytes scanned limit was exceeded",
            {"ErrorCategory": 2, "ErrorType": 1205, "Retryable": False},
            "bytes-scanned cutoff",
        ),
    ],
)
def test_a_query_athena_cannot_run_is_a_permanent_error_naming_the_query_and_the_reason(
    reason: str, error: dict[str, Any], says: str
) -> None:
    # GIVEN Athena failing a query for a reason in the query itself (its SQL, the workgroup's scan cutoff)
    client = athena()
    stub = Stubber(client)
    stub.add_response("start_query_execution", {"QueryExecutionId": "q-3"})
    stub.add_response(
        "get_query_execution",
        {"QueryExecution": {"Status": {"State": "FAILED", "StateChangeReason": reason, "AthenaError": error}}},
    )
    # WHEN a refresher runs it
    with stub, pytest.raises(RefreshQueryError) as raised:
        RefreshQueries(AthenaEngine(client, "lake", "lake_curated", sleep=lambda s: None))(
            "SELECT no_such_column FROM orders"
        )
    # THEN the refresh fails for good, with the reason and the query (no retry can help)
    assert says in str(raised.value)
    assert "SELECT no_such_column FROM orders" in str(raised.value)


def test_a_request_survives_its_own_message_and_a_foreign_message_is_refused() -> None:
    request = RefreshRequest("orders", {"lake_curated.orders_sources": 12}, "raw/orders/a.csv", "v1", "commit", "t")
    assert parse_refresh_request(request.body()) == request
    assert (
        request.deduplication_id() == RefreshRequest(**{**request.__dict__, "requested_at": "later"}).deduplication_id()
    )
    from handlers.errors import InvalidMessageError

    with pytest.raises(InvalidMessageError, match="not a refresh request"):
        parse_refresh_request('{"source": "aws.s3"}')
