"""The lake's tables as readers see them: Iceberg tables and Athena views in the Glue catalog.

One place that turns a ``database.table`` name into something readable, shared by ``lake query``
(:mod:`lake.athena`), ``lake tables`` (:mod:`lake.tables`) and ``lake maintain``: an Iceberg table
loaded through pyiceberg's Glue catalog (:func:`handlers.catalog.glue_catalog`), an Athena view
(:mod:`handlers.views`), or a one-line error for anything else (a Hive-style table left by an
earlier version of the lake, which is not migrated).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from handlers.catalog import glue_catalog
from handlers.views import PrestoView, ViewDefinitionError, is_view, read_view
from lake.target import CliError

if TYPE_CHECKING:
    from pyiceberg.expressions import BooleanExpression
    from pyiceberg.schema import Schema
    from pyiceberg.table import Table
    from pyiceberg.table.snapshots import Snapshot
    from pyiceberg.types import IcebergType

    from lake.target import Target


@dataclass(frozen=True, order=True)
class TableRef:
    """A table named by a query, with its database resolved."""

    database: str
    table: str

    def __str__(self) -> str:
        return f"{self.database}.{self.table}"


@dataclass
class LakeCatalog:
    """Glue (for what a name is) and pyiceberg's Glue catalog (for Iceberg tables), cached per run."""

    glue: Any
    region: str
    endpoint_url: str | None = None
    _entries: dict[TableRef, dict[str, Any]] = field(default_factory=dict, repr=False)
    _tables: dict[TableRef, Table] = field(default_factory=dict, repr=False)
    _catalog: Any = field(default=None, repr=False)

    @classmethod
    def of(cls, target: Target) -> LakeCatalog:
        """The catalog of ``target``; pyarrow's S3 (under pyiceberg) follows the endpoint boto3
        resolved when it is not AWS's own (``AWS_ENDPOINT_URL``, a profile's ``endpoint_url``)."""
        from urllib.parse import urlparse

        endpoint = target.endpoint_url
        if endpoint is None:
            resolved = str(target.client("s3").meta.endpoint_url)
            if not urlparse(resolved).netloc.endswith(".amazonaws.com"):
                endpoint = resolved
        return cls(target.client("glue"), target.region, endpoint)

    @property
    def iceberg(self) -> Any:
        """pyiceberg's Glue catalog over the same Glue client."""
        if self._catalog is None:
            self._catalog = glue_catalog(self.glue, self.region, self.endpoint_url)
        return self._catalog

    def entry(self, ref: TableRef) -> dict[str, Any]:
        """The Glue ``Table`` named ``ref``; a one-line CliError when there is none."""
        if ref not in self._entries:
            try:
                self._entries[ref] = self.glue.get_table(DatabaseName=ref.database, Name=ref.table)["Table"]
            except self.glue.exceptions.EntityNotFoundException as exc:
                raise CliError(f"table {ref} does not exist; `lake tables` lists the tables") from exc
        return self._entries[ref]

    def remember(self, ref: TableRef, entry: dict[str, Any]) -> None:
        """Take a Glue ``Table`` already listed (``GetTables``) instead of asking again."""
        self._entries[ref] = entry

    def is_view(self, ref: TableRef) -> bool:
        return is_view(self.entry(ref))

    def view(self, ref: TableRef) -> PrestoView:
        try:
            return read_view(ref.database, self.entry(ref))
        except ViewDefinitionError as exc:
            raise CliError(str(exc)) from exc

    def table(self, ref: TableRef) -> Table:
        """The Iceberg table ``ref``, loaded through the catalog; a one-line CliError when ``ref``
        is a view or a table of another format."""
        if ref not in self._tables:
            entry = self.entry(ref)
            if is_view(entry):
                raise CliError(f"{ref} is a view, not a table; query it, or name its table")
            if not is_iceberg(entry):
                raise CliError(not_iceberg(ref, entry))
            self._tables[ref] = self.iceberg.load_table((ref.database, ref.table))
        return self._tables[ref]

    def entries(self, database: str) -> list[dict[str, Any]]:
        """Every Glue ``Table`` of ``database``, by name; a one-line CliError when it does not exist."""
        try:
            pages = self.glue.get_paginator("get_tables").paginate(DatabaseName=database)
            found = sorted((t for page in pages for t in page["TableList"]), key=lambda t: str(t["Name"]))
        except self.glue.exceptions.EntityNotFoundException as exc:
            raise CliError(
                f"Glue database {database} does not exist; start the stand-in with `lake up` or deploy the stack"
            ) from exc
        for entry in found:
            self.remember(TableRef(database, str(entry["Name"])), entry)
        return found


def is_iceberg(entry: dict[str, Any]) -> bool:
    """Whether a Glue ``Table`` is an Iceberg table (``table_type=ICEBERG``, as Athena and pyiceberg mark it)."""
    return str(entry.get("Parameters", {}).get("table_type", "")).upper() == "ICEBERG"


def not_iceberg(ref: TableRef, entry: dict[str, Any]) -> str:
    """The one-line message for a catalog table that is neither Iceberg nor a view."""
    location = entry.get("StorageDescriptor", {}).get("Location", "")
    dataset = location.rstrip("/").rsplit("/", 1)[-1] or ref.table
    return (
        f"{ref} is not an Iceberg table (a Hive-style table left by an earlier version of the lake; those are "
        f"not migrated): drop it with `aws glue delete-table --database-name {ref.database} --name {ref.table}` "
        f"and reprocess its raw files with `lake reprocess s3://<bucket>/raw/{dataset}/`"
    )


# --- snapshots -----------------------------------------------------------------------------------
def snapshot_at(
    table: Table, ref: TableRef, version: int | str | None = None, moment: dt.datetime | None = None
) -> Snapshot | None:
    """The snapshot a read of ``ref`` sees: ``FOR VERSION AS OF version`` (a snapshot id, or a branch
    or tag name), ``FOR TIMESTAMP AS OF moment``, else the current one (``None`` for an empty table).
    A one-line CliError listing the table's recent snapshots when there is no such snapshot."""
    if version is not None:
        found = table.snapshot_by_name(version) if isinstance(version, str) else table.snapshot_by_id(version)
        if found is None:
            raise CliError(f"{ref} has no snapshot {version}; {recent_snapshots(table)}")
        return found
    if moment is not None:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)  # Athena's session time zone
        found = table.snapshot_as_of_timestamp(int(moment.timestamp() * 1000))
        if found is None:
            raise CliError(
                f"{ref} had no snapshot yet at {moment.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC; "
                f"{recent_snapshots(table)}"
            )
        return found
    return table.current_snapshot()


def recent_snapshots(table: Table, count: int = 5) -> str:
    """``recent snapshots: <id> (<time>, <operation>, <rows> rows), ...`` newest first."""
    snapshots = sorted(table.snapshots(), key=lambda s: s.timestamp_ms, reverse=True)
    if not snapshots:
        return "the table has no snapshots yet"
    described = []
    for snapshot in snapshots[:count]:
        summary = snapshot.summary
        operation = summary.operation.value if summary is not None else "?"
        rows = summary.get("total-records", "?") if summary is not None else "?"
        described.append(
            f"{snapshot.snapshot_id} ({commit_time(snapshot):%Y-%m-%d %H:%M:%S} UTC, {operation}, {rows} rows)"
        )
    more = f" and {len(snapshots) - count} older" if len(snapshots) > count else ""
    return f"recent snapshots: {', '.join(described)}{more}"


def commit_time(snapshot: Snapshot) -> dt.datetime:
    return dt.datetime.fromtimestamp(snapshot.timestamp_ms / 1000, tz=dt.UTC)


def schema_of(table: Table, snapshot: Snapshot | None) -> Schema:
    """The schema a read of ``snapshot`` has (an older snapshot keeps the columns it had)."""
    if snapshot is not None and snapshot.schema_id is not None:
        for schema in table.schemas().values():
            if schema.schema_id == snapshot.schema_id:
                return schema
    return table.schema()


def scan(
    table: Table,
    snapshot: Snapshot | None,
    columns: tuple[str, ...] = ("*",),
    row_filter: BooleanExpression | None = None,
    failures: list[str] | None = None,
) -> pa.RecordBatchReader:
    """The rows of ``snapshot`` as a stream: pyiceberg plans the scan (partitions and file
    statistics pruned by ``row_filter``), files are read only as the stream is consumed.

    When a file cannot be read, the stream fails and ``failures`` gets ``<file>: <what is wrong>``
    (the reader's own error is raised inside whoever consumes the stream, DuckDB, and no longer
    names the file).
    """
    from pyiceberg.expressions import AlwaysTrue
    from pyiceberg.io.pyarrow import ArrowScan, schema_to_pyarrow

    schema = schema_of(table, snapshot)
    projected = schema if columns == ("*",) else schema.select(*columns)
    arrow = schema_to_pyarrow(projected, include_field_ids=False)
    if snapshot is None:  # an empty table: no files to plan, the schema still holds
        return pa.RecordBatchReader.from_batches(arrow, [])
    data_scan = table.scan(
        row_filter=row_filter if row_filter is not None else AlwaysTrue(),
        selected_fields=columns,
        snapshot_id=snapshot.snapshot_id,
    )
    tasks = list(data_scan.plan_files())
    reader = ArrowScan(table.metadata, table.io, projected, data_scan.row_filter, data_scan.case_sensitive)

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from reader.to_record_batches(tasks)
        except (OSError, pa.ArrowException) as exc:
            if failures is not None:
                failures.append(_damaged_file(table, [task.file.file_path for task in tasks], exc))
            raise

    return pa.RecordBatchReader.from_batches(arrow, batches()).cast(arrow)


def _damaged_file(table: Table, paths: list[str], error: Exception) -> str:
    """``<file>: <what is wrong>`` for the first of ``paths`` whose Parquet footer cannot be read."""
    import pyarrow.parquet as pq

    for path in paths:
        try:
            with table.io.new_input(path).open() as stream:
                pq.ParquetFile(stream).metadata  # noqa: B018 - reading the footer is the check
        except (OSError, pa.ArrowException) as exc:
            return f"{path}: {_short(exc)}"
    return _short(error)


def _short(error: Exception) -> str:
    return " ".join(str(error).replace("Could not open Parquet input source '<Buffer>': ", "").split())


def read_table(catalog: LakeCatalog, ref: TableRef) -> pa.Table:
    """Every row of Iceberg table ``ref`` as of its current snapshot."""
    table = catalog.table(ref)
    return scan(table, table.current_snapshot()).read_all()


# --- types ---------------------------------------------------------------------------------------
def athena_type(kind: IcebergType) -> str:
    """The Athena (Glue) type of an Iceberg type, as Athena shows an Iceberg table's columns."""
    from pyiceberg import types as t

    if isinstance(kind, t.DecimalType):
        return f"decimal({kind.precision},{kind.scale})"
    if isinstance(kind, t.ListType):
        return f"array<{athena_type(kind.element_type)}>"
    if isinstance(kind, t.MapType):
        return f"map<{athena_type(kind.key_type)},{athena_type(kind.value_type)}>"
    if isinstance(kind, t.StructType):
        return "struct<" + ",".join(f"{f.name}:{athena_type(f.field_type)}" for f in kind.fields) + ">"
    simple: dict[type, str] = {
        t.BooleanType: "boolean",
        t.IntegerType: "int",
        t.LongType: "bigint",
        t.FloatType: "float",
        t.DoubleType: "double",
        t.DateType: "date",
        t.TimeType: "string",
        t.TimestampType: "timestamp",
        t.TimestamptzType: "timestamp",
        t.StringType: "string",
        t.UUIDType: "string",
        t.BinaryType: "binary",
        t.FixedType: "binary",
    }
    return simple.get(type(kind), "string")


def partition_spec(table: Table) -> str | None:
    """The table's partitioning as Athena writes it, e.g. ``month(order_date), channel``."""
    spec = table.spec()
    if spec.is_unpartitioned():
        return None
    schema = table.schema()
    parts = []
    for part in spec.fields:
        source = schema.find_column_name(part.source_id) or str(part.source_id)
        transform = str(part.transform)
        if transform == "identity":
            parts.append(source)
        elif "[" in transform:  # bucket[16], truncate[4]: Athena writes bucket(16, col)
            name, width = transform.rstrip("]").split("[")
            parts.append(f"{name}({width}, {source})")
        else:
            parts.append(f"{transform}({source})")
    return ", ".join(parts)
