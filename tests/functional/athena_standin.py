"""Athena's query API played by DuckDB over the stand-in's tables, for the refresh's Athena path.

moto answers no Athena SQL. This stand-in takes what the refresh sends (``UNLOAD (<query>) TO
'<location>' WITH (format = 'PARQUET', ...)``, or a plain query), checks the query as Athena/Trino
SQL (parsed in Athena's dialect, written as Trino's and parsed back), answers it with the lake's
DuckDB engine over the stand-in's catalog (as ``lake query`` does) and, for UNLOAD, writes the
result as Parquet where Athena would write it; an empty result leaves no file, as Athena's does.
What reads it back is the engine's own code (:class:`query.AthenaEngine`), the same that reads real
UNLOAD output. A query that does not parse, or that DuckDB cannot run, fails as Athena fails a
query with an error in it (``AthenaError.ErrorCategory`` 2, not retryable).
"""

from __future__ import annotations

import io
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from query.catalog import Catalog
from query.errors import QueryError
from query.local import DuckDBEngine

_UNLOAD = re.compile(r"UNLOAD \((?P<query>.*)\) TO '(?P<location>s3://[^']+)' WITH \((?P<options>[^)]*)\)\s*", re.S)


@dataclass
class Execution:
    statement: str
    database: str
    state: str = "SUCCEEDED"
    reason: str | None = None
    result: pa.Table | None = None


@dataclass
class AthenaStandIn:
    """The boto3 Athena client's calls the engine makes, answered by DuckDB."""

    glue: Any
    s3: Any
    region: str
    endpoint_url: str
    executions: dict[str, Execution] = field(default_factory=dict)

    @property
    def statements(self) -> list[str]:
        return [e.statement for e in self.executions.values()]

    def start_query_execution(
        self, QueryString: str, QueryExecutionContext: dict[str, str], WorkGroup: str, **_: Any
    ) -> dict[str, str]:
        import sqlglot

        query_id = uuid.uuid4().hex
        execution = Execution(QueryString, QueryExecutionContext["Database"])
        self.executions[query_id] = execution
        unload = _UNLOAD.fullmatch(QueryString)
        query = unload.group("query") if unload else QueryString
        try:
            sqlglot.parse_one(query, read="athena")
            trino = sqlglot.transpile(query, read="athena", write="trino")[0]
            sqlglot.parse_one(trino, read="trino")
            catalog = Catalog(self.glue, self.region, self.endpoint_url, database=execution.database)
            result = DuckDBEngine(catalog).run(query)
        except (sqlglot.errors.SqlglotError, QueryError) as exc:
            execution.state, execution.reason = "FAILED", f"SYNTAX_ERROR: {' '.join(str(exc).split())}"
            return {"QueryExecutionId": query_id}
        if unload is None:
            execution.result = result
            return {"QueryExecutionId": query_id}
        assert "format = 'PARQUET'" in unload.group("options"), unload.group("options")
        bucket, _, prefix = unload.group("location").removeprefix("s3://").partition("/")
        if result.num_rows:
            body = io.BytesIO()
            pq.write_table(result, body)
            self.s3.put_object(Bucket=bucket, Key=f"{prefix}{query_id}_00000", Body=body.getvalue())
        return {"QueryExecutionId": query_id}

    def get_query_execution(self, QueryExecutionId: str) -> dict[str, Any]:
        execution = self.executions[QueryExecutionId]
        status: dict[str, Any] = {"State": execution.state}
        if execution.reason is not None:
            status["StateChangeReason"] = execution.reason
            status["AthenaError"] = {"ErrorCategory": 2, "ErrorType": 1000, "Retryable": False}
        return {"QueryExecution": {"QueryExecutionId": QueryExecutionId, "Status": status}}

    def get_query_results(self, QueryExecutionId: str, MaxResults: int = 1000, NextToken: str | None = None) -> dict:
        result = self.executions[QueryExecutionId].result
        assert result is not None, "GetQueryResults of an UNLOAD: its result is in S3"
        start = int(NextToken or 0)
        rows = result.slice(start, MaxResults).to_pylist()
        header = [{"Data": [{"VarCharValue": name} for name in result.column_names]}] if start == 0 else []
        page: dict[str, Any] = {
            "ResultSet": {
                "ResultSetMetadata": {
                    "ColumnInfo": [{"Name": f.name, "Type": _athena_type(f.type)} for f in result.schema]
                },
                "Rows": header
                + [{"Data": [{} if v is None else {"VarCharValue": str(v)} for v in row.values()]} for row in rows],
            }
        }
        if start + MaxResults < result.num_rows:
            page["NextToken"] = str(start + MaxResults)
        return page

    def stop_query_execution(self, QueryExecutionId: str) -> dict[str, Any]:
        self.executions[QueryExecutionId].state = "CANCELLED"
        return {}


def _athena_type(kind: pa.DataType) -> str:
    if pa.types.is_integer(kind):
        return "bigint" if kind.bit_width == 64 else "integer"
    if pa.types.is_floating(kind):
        return "double" if kind.bit_width == 64 else "real"
    if pa.types.is_boolean(kind):
        return "boolean"
    if pa.types.is_date(kind):
        return "date"
    if pa.types.is_timestamp(kind):
        return "timestamp"
    return "varchar"
