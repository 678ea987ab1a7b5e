"""Where a refresh's SQL runs: DuckDB inside the function, or Athena for a dataset too big for it.

A refresher writes Athena SQL over the curated tables and views (``orders``, ``ad_performance``).
The refresh pins each input table's snapshot before any query runs and records those snapshot ids;
:class:`DuckDBQueries` reads exactly those snapshots (each a pyarrow dataset of its data files that
DuckDB reads only the needed columns of, or a pyiceberg stream where a file's columns must be
matched by field id; views replaced by their SQL), so the recorded inputs are exactly what was read. Above a size
threshold (the input snapshots' Parquet bytes, ``topology.RefreshSettings.athena_threshold_bytes``)
:class:`AthenaQueries` runs the same SQL on Athena, reading the tables' current snapshots (Athena
cannot pin a view's tables): a commit that lands between pinning and querying is then read but not
recorded, so the next request refreshes again. Never the other way round: no commit is missed.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from handlers.errors import PermanentError, TransientError
from handlers.iceberg import iceberg_athena_type
from handlers.sql import Columns, arrow_view, quote, quote_table, transpile
from handlers.views import is_view, read_view

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

logger = logging.getLogger(__name__)

#: Views inside views, at most (a view naming itself would otherwise never end).
MAX_VIEW_DEPTH = 10


class RefreshQueryError(PermanentError):
    """A refresher's SQL cannot run on the lake's tables (a bug in the SQL, or a table it lacks)."""

    code = "RefreshQuery"


class AthenaQueryError(TransientError):
    """Athena could not finish a refresh's query (failed, cancelled, or timed out); retried."""

    code = "AthenaQuery"


@dataclass(frozen=True)
class Pinned:
    """One Iceberg table a refresh reads, at the snapshot the refresh pinned."""

    database: str
    name: str
    table: Table
    snapshot_id: int | None
    #: Bytes of Parquet the snapshot holds (its ``total-files-size``): what the threshold weighs.
    bytes: int
    rows: int

    @property
    def qualified(self) -> str:
        return f"{self.database}.{self.name}"


@dataclass
class InputResolver:
    """Turns the names a refresher reads (tables or views of the curated database) into the
    Iceberg tables under them, each pinned at its current snapshot."""

    glue: Any
    catalog: Catalog
    database: str
    _entries: dict[tuple[str, str], dict[str, Any] | None] = field(default_factory=dict)

    def entry(self, database: str, name: str) -> dict[str, Any] | None:
        if (database, name) not in self._entries:
            try:
                found = self.glue.get_table(DatabaseName=database, Name=name)["Table"]
            except self.glue.exceptions.EntityNotFoundException:
                found = None
            self._entries[(database, name)] = found
        return self._entries[(database, name)]

    def forget(self) -> None:
        """Look the catalog up again: a table absent before (say, one a refresh has since created)
        may exist now. The entries are kept only to spare repeated lookups within one refresh."""
        self._entries.clear()

    def pin(self, names: Iterable[str], database: str | None = None) -> dict[str, Pinned]:
        """``{database.table: Pinned}`` for every Iceberg table under ``names`` (of ``database``,
        the curated one unless given); names that do not exist yet (no file committed) are left out."""
        pinned: dict[str, Pinned] = {}
        pending = [(database or self.database, n.lower(), 0) for n in names]
        while pending:
            database, name, depth = pending.pop()
            entry = self.entry(database, name)
            if entry is None or f"{database}.{name}" in pinned:
                continue
            if is_view(entry):
                if depth >= MAX_VIEW_DEPTH:
                    raise RefreshQueryError(f"views nest more than {MAX_VIEW_DEPTH} deep under {database}.{name}")
                view = read_view(database, entry)
                pending += [(db, t, depth + 1) for db, t in table_names(view.sql, view.database)]
                continue
            table = self.catalog.load_table((database, name))
            snapshot = table.current_snapshot()
            summary = snapshot.summary if snapshot is not None else None
            pinned[f"{database}.{name}"] = Pinned(
                database,
                name,
                table,
                snapshot.snapshot_id if snapshot is not None else None,
                int(summary.get("total-files-size", 0) or 0) if summary is not None else 0,
                int(summary.get("total-records", 0) or 0) if summary is not None else 0,
            )
        return pinned


def table_names(sql: str, default_database: str) -> list[tuple[str, str]]:
    """The ``(database, table)`` names an Athena statement reads (CTEs left out)."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read="athena")
    except sqlglot.errors.ParseError as exc:
        raise RefreshQueryError(f"refresh SQL does not parse as Athena SQL: {' '.join(str(exc).split())}") from exc
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    found = []
    for table in tree.find_all(exp.Table):
        if not table.name or not isinstance(table.this, exp.Identifier):
            continue
        if not table.db and table.name.lower() in ctes:
            continue
        found.append(((table.db or default_database).lower(), table.name.lower()))
    return sorted(set(found))


_PRESTO_TO_ATHENA = {"varchar": "string", "integer": "int", "real": "float", "varbinary": "binary"}


def _athena_type_of_presto(kind: str) -> str:
    kind = kind.strip().lower()
    if kind.startswith("varchar"):
        return "string"
    if kind.startswith("timestamp"):
        return "timestamp"
    return _PRESTO_TO_ATHENA.get(kind, kind)


class DuckDBQueries:
    """Athena SQL on DuckDB over the pinned snapshots: what a refresh runs inside the function."""

    engine = "duckdb"

    def __init__(self, resolver: InputResolver, pinned: dict[str, Pinned], memory_limit_mb: int | None = None) -> None:
        self._resolver = resolver
        self._pinned = pinned
        self._memory_limit_mb = memory_limit_mb
        #: Snapshots read as datasets, kept for the next statement: a dataset can be scanned again,
        #: and building one reads every data file's footer (a second per hundred files).
        self._datasets: dict[str, Any] = {}

    def __call__(self, sql: str) -> pa.Table:
        import duckdb

        try:
            return self._run(sql, stream=True)
        except duckdb.Error as exc:
            if "already been consumed" not in str(exc):
                raise RefreshQueryError(f"refresh SQL failed on DuckDB: {' '.join(str(exc).split())}") from exc
        # The plan reads a streamed table twice (a self-join, such as a report comparing two as_of
        # snapshots): a stream can be read once, so each table it binds is read into memory first.
        try:
            return self._run(sql, stream=False)
        except duckdb.Error as exc:
            raise RefreshQueryError(f"refresh SQL failed on DuckDB: {' '.join(str(exc).split())}") from exc

    def _run(self, sql: str, stream: bool) -> pa.Table:
        import duckdb

        connection = duckdb.connect()
        try:
            connection.execute("SET TimeZone = 'UTC'")  # Athena's session time zone
            # DuckDB spills past its memory limit to ``.tmp`` in the working directory, which is
            # read-only in Lambda (/var/task): a refresh that needed to spill would fail there.
            connection.execute(f"SET temp_directory = '{Path(tempfile.gettempdir()) / 'lake-duckdb-spill'}'")
            if self._memory_limit_mb:
                # Leave the function room for Python, Arrow and the models; DuckDB spills past this.
                connection.execute(f"SET memory_limit = '{self._memory_limit_mb}MB'")
            columns: Columns = {}
            self._bind(connection, table_names(sql, self._resolver.database), columns, set(), 0, stream)
            text = transpile(sql, columns, self._resolver.database)
            result: pa.Table = connection.sql(text).to_arrow_table()
        finally:
            connection.close()
        return result

    def _bind(
        self,
        connection: Any,
        names: list[tuple[str, str]],
        columns: Columns,
        bound: set[str],
        depth: int,
        stream: bool = True,
    ) -> None:
        """Make every name readable in ``connection``: a pinned table as its snapshot's rows
        (:func:`handlers.catalog.scan_snapshot`), a view as a DuckDB view of its SQL (its own names
        bound first)."""
        from handlers.catalog import scan_snapshot

        for database, name in names:
            qualified = f"{database}.{name}"
            if qualified in bound:
                continue
            bound.add(qualified)
            connection.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(database, 'duckdb')}")
            if qualified in self._pinned:
                pinned = self._pinned[qualified]
                schema = pinned.table.schema()
                columns.setdefault(database, {})[name] = {
                    f.name: iceberg_athena_type(f.field_type) for f in schema.fields
                }
                arrow_name = f"__lake_{len(bound)}"
                rows = self._datasets.get(qualified)
                if rows is None:
                    rows = scan_snapshot(pinned.table, pinned.snapshot_id)
                if not isinstance(rows, pa.RecordBatchReader):
                    self._datasets[qualified] = rows
                elif not stream:
                    rows = rows.read_all()
                connection.register(arrow_name, rows)
                connection.execute(arrow_view(quote_table(database, name, "duckdb"), arrow_name, rows.schema.names))
                continue
            entry = self._resolver.entry(database, name)
            if entry is None or not is_view(entry):
                raise RefreshQueryError(
                    f"refresh SQL reads {qualified}, which has no rows yet or is not among the refresh's inputs; "
                    "declare it in the refresher's inputs"
                )
            if depth >= MAX_VIEW_DEPTH:
                raise RefreshQueryError(f"views nest more than {MAX_VIEW_DEPTH} deep under {qualified}")
            view = read_view(database, entry)
            self._bind(connection, table_names(view.sql, view.database), columns, bound, depth + 1, stream)
            columns.setdefault(database, {})[name] = {c: _athena_type_of_presto(t) for c, t in view.columns}
            body = transpile(view.sql, columns, view.database)
            connection.execute(f"CREATE VIEW {quote_table(database, name, 'duckdb')} AS {body}")


class AthenaQueries:
    """The same Athena SQL on Athena itself (boto3: StartQueryExecution, then the results)."""

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
                raise AthenaQueryError(
                    f"Athena query {query_id} {state.lower()}: {reason}; the refresh will be retried"
                )
            if waited >= self._timeout:
                self._athena.stop_query_execution(QueryExecutionId=query_id)
                raise AthenaQueryError(
                    f"Athena query {query_id} ran longer than {self._timeout:.0f} s and was stopped; "
                    "the refresh will be retried"
                )
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
