"""Athena SQL on Athena itself: what runs a query past what one function (or one machine) holds.

:class:`AthenaEngine` runs the same SQL DuckDB runs in the function in the stack's workgroup with
boto3 (the client passed in), its results typed back into Arrow; a query Athena did not finish is
an :class:`~query.errors.AthenaQueryError` that says why. :func:`query.messages.athena_message`
puts Athena's own errors in the user's terms.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from query.errors import AthenaQueryError


class AthenaEngine:
    """Athena SQL on Athena itself, in ``workgroup`` (boto3: StartQueryExecution, then the results);
    unqualified names are in ``database``. Athena reads each table's current snapshot."""

    engine = "athena"

    def __init__(
        self,
        athena: Any,
        workgroup: str,
        database: str,
        poll_seconds: float = 1.0,
        timeout_seconds: float = 600.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._athena = athena
        self._workgroup = workgroup
        self._database = database
        self._poll = poll_seconds
        self._timeout = timeout_seconds
        self._sleep = sleep

    def __call__(self, sql: str) -> pa.Table:
        started = self._athena.start_query_execution(
            QueryString=sql,
            QueryExecutionContext={"Database": self._database},
            WorkGroup=self._workgroup,
        )
        query_id = started["QueryExecutionId"]
        waited = 0.0
        while True:
            status = self._athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]
            state = status["State"]
            if state == "SUCCEEDED":
                break
            if state in ("FAILED", "CANCELLED"):
                reason = status.get("StateChangeReason", "no reason given")
                raise AthenaQueryError(f"Athena query {query_id} {state.lower()}: {reason}")
            if waited >= self._timeout:
                self._athena.stop_query_execution(QueryExecutionId=query_id)
                raise AthenaQueryError(f"Athena query {query_id} ran longer than {self._timeout:.0f} s and was stopped")
            self._sleep(self._poll)
            waited += self._poll
        return self._results(query_id)

    def _results(self, query_id: str) -> pa.Table:
        names: list[str] = []
        types: list[str] = []
        rows: list[list[str | None]] = []
        token: str | None = None
        first = True
        while True:
            extra = {"NextToken": token} if token else {}
            page = self._athena.get_query_results(QueryExecutionId=query_id, MaxResults=1000, **extra)
            result_set = page["ResultSet"]
            if first:
                info = result_set["ResultSetMetadata"]["ColumnInfo"]
                names = [c["Name"].lower() for c in info]
                types = [c["Type"].lower() for c in info]
            data = result_set.get("Rows", [])
            if first and data:
                data = data[1:]  # a SELECT's first row repeats the column names
            rows += [[cell.get("VarCharValue") for cell in row["Data"]] for row in data]
            first = False
            token = page.get("NextToken")
            if not token:
                break
        return pa.table(
            {name: _typed([r[i] for r in rows], kind) for i, (name, kind) in enumerate(zip(names, types, strict=True))}
        )


def _typed(values: list[str | None], kind: str) -> pa.Array:
    """Athena returns every value as text; its column type says what it was."""
    text = pa.array(values, pa.string())
    target = {
        "varchar": pa.string(),
        "char": pa.string(),
        "bigint": pa.int64(),
        "integer": pa.int32(),
        "smallint": pa.int16(),
        "tinyint": pa.int8(),
        "double": pa.float64(),
        "real": pa.float32(),
        "boolean": pa.bool_(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us"),
    }.get(kind.split("(", maxsplit=1)[0], pa.string())
    return text.cast(target)
