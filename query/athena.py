"""Athena SQL on Athena itself: what runs a query past what one function (or one machine) holds.

:class:`AthenaEngine` runs the same SQL DuckDB runs in the function, in the stack's workgroup, with
the boto3 clients passed in. Given where Athena may write (``results``, under the workgroup's
``athena-results/``), a query runs as ``UNLOAD (<query>) TO '<results>unload/<id>/' WITH (format =
'PARQUET')``: Athena writes the result as Parquet files, which are read back with pyarrow, typed,
and deleted. Every attempt unloads under a prefix of its own, so what a killed attempt left behind
is never read as this one's result. Without a location, results are paged back with
``GetQueryResults`` (1,000 rows of text a page), as ``lake`` commands that only show a few rows may.

A query Athena cannot run as written (a dialect error, a scan over the workgroup's bytes cutoff)
is a :class:`~query.errors.QueryError` naming the query and Athena's reason; one Athena did not
finish for a reason of its own (capacity, a timeout) is an :class:`~query.errors.AthenaQueryError`,
worth running again. :func:`query.messages.athena_message` puts Athena's errors in the user's terms.
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from query.errors import AthenaQueryError, QueryError

#: Athena's ``AthenaError.ErrorCategory`` for an error in the query itself (1 is Athena's, 3 other).
USER_ERROR = 2
#: How Athena words a query stopped by the workgroup's ``BytesScannedCutoffPerQuery``.
_CUTOFF_WORDS = ("BytesScannedCutoffPerQuery", "bytes scanned limit", "Bytes scanned limit")


class AthenaEngine:
    """Athena SQL on Athena in ``workgroup``; unqualified names are in ``database``. Athena reads
    each table's current snapshot. With ``s3`` and ``results`` (``s3://bucket/prefix/``) results
    come back as Parquet written by UNLOAD; without, as pages of ``GetQueryResults``."""

    engine = "athena"

    def __init__(
        self,
        athena: Any,
        workgroup: str,
        database: str,
        poll_seconds: float = 1.0,
        timeout_seconds: float = 600.0,
        sleep: Callable[[float], None] = time.sleep,
        *,
        s3: Any = None,
        results: str | None = None,
    ) -> None:
        self._athena = athena
        self._workgroup = workgroup
        self._database = database
        self._poll = poll_seconds
        self._timeout = timeout_seconds
        self._sleep = sleep
        self._s3 = s3
        self._results = results if results is None or results.endswith("/") else f"{results}/"

    def __call__(self, sql: str) -> pa.Table:
        if self._s3 is None or self._results is None:
            return self._pages(self._run(sql, sql))
        query = sql.strip().rstrip(";").strip()
        location = f"{self._results}unload/{uuid.uuid4().hex}/"
        self._run(f"UNLOAD ({query}) TO '{location}' WITH (format = 'PARQUET', compression = 'SNAPPY')", sql)
        bucket, _, prefix = location.removeprefix("s3://").partition("/")
        try:
            parts = self._unloaded(bucket, prefix)
            if not parts:
                # An empty result leaves no file, and so no column: ask for the columns alone.
                return self._pages(self._run(f"SELECT * FROM ({query}) LIMIT 0", sql))
            return read_unloaded(parts)
        finally:
            self._clean(bucket, prefix)

    def _run(self, statement: str, sql: str) -> str:
        """Run ``statement`` to its end; its query execution id. ``sql`` is the query as the caller
        wrote it, for the error message."""
        started = self._athena.start_query_execution(
            QueryString=statement,
            QueryExecutionContext={"Database": self._database},
            WorkGroup=self._workgroup,
        )
        query_id = started["QueryExecutionId"]
        waited = 0.0
        while True:
            status = self._athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]
            state = status["State"]
            if state == "SUCCEEDED":
                return str(query_id)
            if state in ("FAILED", "CANCELLED"):
                reason = status.get("StateChangeReason", "no reason given")
                error = status.get("AthenaError") or {}
                if any(words in reason for words in _CUTOFF_WORDS):
                    raise QueryError(
                        f"Athena stopped query {query_id} at the workgroup's bytes-scanned cutoff ({reason}); "
                        f"raise the cutoff or read less: {_one_line(sql)}"
                    )
                if error.get("ErrorCategory") == USER_ERROR and not error.get("Retryable", False):
                    raise QueryError(f"Athena cannot run query {query_id}: {reason}; the query: {_one_line(sql)}")
                raise AthenaQueryError(f"Athena query {query_id} {state.lower()}: {reason}")
            if waited >= self._timeout:
                self._athena.stop_query_execution(QueryExecutionId=query_id)
                raise AthenaQueryError(f"Athena query {query_id} ran longer than {self._timeout:.0f} s and was stopped")
            self._sleep(self._poll)
            waited += self._poll

    def _unloaded(self, bucket: str, prefix: str) -> list[bytes]:
        """The Parquet files UNLOAD wrote under ``prefix``, in key order."""
        pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        keys = sorted(o["Key"] for page in pages for o in page.get("Contents", []) if o.get("Size", 1) > 0)
        return [self._s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys]

    def _clean(self, bucket: str, prefix: str) -> None:
        """Delete what UNLOAD wrote: the result has been read (or cannot be)."""
        pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        keys = [{"Key": o["Key"]} for page in pages for o in page.get("Contents", [])]
        for start in range(0, len(keys), 1000):
            self._s3.delete_objects(Bucket=bucket, Delete={"Objects": keys[start : start + 1000], "Quiet": True})

    def _pages(self, query_id: str) -> pa.Table:
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


def read_unloaded(parts: list[bytes]) -> pa.Table:
    """The result UNLOAD wrote as Parquet files (their bytes), typed as the engines type results:
    lower-case names, text as ``string``, timestamps in microseconds without a zone (Athena's
    ``timestamp``), dictionaries decoded."""
    import pyarrow.parquet as pq

    tables = [pq.read_table(io.BytesIO(part)) for part in parts]
    table = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
    fields = [pa.field(f.name.lower(), _result_type(f.type)) for f in table.schema]
    return table.rename_columns([f.name for f in fields]).cast(pa.schema(fields))


def _result_type(kind: pa.DataType) -> pa.DataType:
    if pa.types.is_dictionary(kind):
        return _result_type(kind.value_type)
    if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return pa.string()
    if pa.types.is_timestamp(kind):
        return pa.timestamp("us")
    return kind


def _one_line(sql: str, limit: int = 2000) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= limit else f"{text[:limit]}…"


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
