"""Names as the catalog knows them: a ``database.table`` resolved to an Iceberg table (loaded
through pyiceberg's Glue catalog) or an Athena view, and a table's snapshot pinned.

One catalog serves every reader: ``lake query``, ``lake tables`` and ``lake.read`` ask it what a
name is; the refresh pins its inputs through it (:meth:`Catalog.pin`) before any query runs, so the
snapshots it records are the ones it read. Glue entries and loaded tables are cached for the
catalog's life (one command, or one refresh: :meth:`Catalog.forget` starts afresh). Anything that
is neither (a Hive-style table left by an earlier version of the lake) is a one-line QueryError.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from query.errors import QueryError
from query.parse import parse
from query.sql import TableRef, table_refs
from query.views import PrestoView, ViewDefinitionError, is_view, read_view

if TYPE_CHECKING:
    from mypy_boto3_glue import GlueClient
    from pyiceberg.catalog.glue import GlueCatalog
    from pyiceberg.schema import Schema
    from pyiceberg.table import Table
    from pyiceberg.table.snapshots import Snapshot

__all__ = ["Catalog", "Pinned", "TableRef", "catalog_properties", "glue_catalog", "snapshot_at"]

#: Views inside views, at most (a view that names itself would otherwise never end).
MAX_VIEW_DEPTH = 10


@dataclass(frozen=True)
class Pinned:
    """One Iceberg table a query reads, at the snapshot pinned for it."""

    database: str
    name: str
    table: Table
    snapshot_id: int | None
    #: Bytes of Parquet the snapshot holds (its ``total-files-size``): what the Athena threshold weighs.
    bytes: int
    rows: int

    @property
    def qualified(self) -> str:
        return f"{self.database}.{self.name}"

    @property
    def ref(self) -> TableRef:
        return TableRef(self.database, self.name)


@dataclass
class Catalog:
    """Glue (for what a name is) and pyiceberg's Glue catalog (for Iceberg tables), cached.

    ``iceberg`` may be given (the refresh's store has one); else it is built on first use over the
    same Glue client, with ``s3_properties`` (credentials pyarrow's S3 would not find) added.
    ``database`` is where unqualified names live (the curated database).
    """

    glue: Any
    region: str = ""
    endpoint_url: str | None = None
    database: str = ""
    iceberg_catalog: Any = None
    s3_properties: dict[str, str] = field(default_factory=dict)
    _entries: dict[TableRef, dict[str, Any] | None] = field(default_factory=dict, repr=False)
    _tables: dict[TableRef, Table] = field(default_factory=dict, repr=False)

    @property
    def iceberg(self) -> Any:
        """pyiceberg's Glue catalog over the same Glue client."""
        if self.iceberg_catalog is None:
            self.iceberg_catalog = glue_catalog(self.glue, self.region, self.endpoint_url)
            self.iceberg_catalog.properties.update(self.s3_properties)
        return self.iceberg_catalog

    def forget(self) -> None:
        """Look the catalog up again: a table absent before (say, one a refresh has since created)
        may exist now, and a table loaded before may have new snapshots."""
        self._entries.clear()
        self._tables.clear()

    def find(self, ref: TableRef) -> dict[str, Any] | None:
        """The Glue ``Table`` named ``ref``, or None when there is none."""
        if ref not in self._entries:
            try:
                self._entries[ref] = self.glue.get_table(DatabaseName=ref.database, Name=ref.table)["Table"]
            except self.glue.exceptions.EntityNotFoundException:
                self._entries[ref] = None
        return self._entries[ref]

    def entry(self, ref: TableRef) -> dict[str, Any]:
        """The Glue ``Table`` named ``ref``; a one-line QueryError when there is none."""
        found = self.find(ref)
        if found is None:
            raise QueryError(self.missing(ref))
        return found

    def missing(self, ref: TableRef) -> str:
        """The one-line message for a table that does not exist, with the names that look like it."""
        import difflib

        try:
            names = [str(e["Name"]) for e in self.glue.get_tables(DatabaseName=ref.database).get("TableList", [])]
        except self.glue.exceptions.EntityNotFoundException:
            return f"table {ref} does not exist (there is no database {ref.database}); `lake tables` lists the tables"
        near = difflib.get_close_matches(ref.table, names, n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(f'{ref.database}.{n}' for n in near)}? " if near else ""
        return f"table {ref} does not exist; {hint}`lake tables` lists the tables"

    def remember(self, ref: TableRef, entry: dict[str, Any]) -> None:
        """Take a Glue ``Table`` already listed (``GetTables``) instead of asking again."""
        self._entries[ref] = entry

    def is_view(self, ref: TableRef) -> bool:
        return is_view(self.entry(ref))

    def view(self, ref: TableRef) -> PrestoView:
        try:
            return read_view(ref.database, self.entry(ref))
        except ViewDefinitionError as exc:
            raise QueryError(str(exc)) from exc

    def table(self, ref: TableRef, *, fresh: bool = False) -> Table:
        """The Iceberg table ``ref``, loaded through the catalog (again when ``fresh``: its newest
        metadata); a one-line QueryError when ``ref`` is a view or a table of another format."""
        if fresh or ref not in self._tables:
            entry = self.entry(ref)
            if is_view(entry):
                raise QueryError(f"{ref} is a view, not a table; query it, or name its table")
            if not is_iceberg(entry):
                raise QueryError(not_iceberg(ref, entry))
            self._tables[ref] = self.iceberg.load_table((ref.database, ref.table))
        return self._tables[ref]

    def entries(self, database: str) -> list[dict[str, Any]]:
        """Every Glue ``Table`` of ``database``, by name; a one-line QueryError when it does not exist."""
        try:
            pages = self.glue.get_paginator("get_tables").paginate(DatabaseName=database)
            found = sorted((t for page in pages for t in page["TableList"]), key=lambda t: str(t["Name"]))
        except self.glue.exceptions.EntityNotFoundException as exc:
            raise QueryError(
                f"Glue database {database} does not exist; start the stand-in with `lake up` or deploy the stack"
            ) from exc
        for entry in found:
            self.remember(TableRef(database, str(entry["Name"])), entry)
        return found

    def pin(self, names: Iterable[str], database: str | None = None) -> dict[str, Pinned]:
        """``{database.table: Pinned}`` for every Iceberg table under ``names`` (of ``database``,
        the catalog's own unless given; views followed to their tables), each at its current
        snapshot. Names that do not exist yet (no file committed) are left out."""
        pinned: dict[str, Pinned] = {}
        pending = [(TableRef(database or self.database, n.lower()), 0) for n in names]
        while pending:
            ref, depth = pending.pop()
            entry = self.find(ref)
            if entry is None or str(ref) in pinned:
                continue
            if is_view(entry):
                if depth >= MAX_VIEW_DEPTH:
                    raise QueryError(f"views nest more than {MAX_VIEW_DEPTH} deep under {ref}; fix the view's SQL")
                view = self.view(ref)
                pending += [(r, depth + 1) for r in table_refs(parse(view.sql), view.database)]
                continue
            table = self.table(ref, fresh=True)
            snapshot = table.current_snapshot()
            summary = snapshot.summary if snapshot is not None else None
            pinned[str(ref)] = Pinned(
                ref.database,
                ref.table,
                table,
                snapshot.snapshot_id if snapshot is not None else None,
                int(summary.get("total-files-size", 0) or 0) if summary is not None else 0,
                int(summary.get("total-records", 0) or 0) if summary is not None else 0,
            )
        return pinned


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
    A one-line QueryError listing the table's recent snapshots when there is no such snapshot."""
    if version is not None:
        found = table.snapshot_by_name(version) if isinstance(version, str) else table.snapshot_by_id(version)
        if found is None:
            raise QueryError(f"{ref} has no snapshot {version}; {recent_snapshots(table)}")
        return found
    if moment is not None:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)  # Athena's session time zone
        found = table.snapshot_as_of_timestamp(int(moment.timestamp() * 1000))
        if found is None:
            raise QueryError(
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


# --- the pyiceberg catalog --------------------------------------------------------------------------
def catalog_properties(region: str, endpoint_url: str | None = None) -> dict[str, str]:
    """Properties for pyiceberg's Glue catalog and its S3 file IO.

    pyarrow's S3 filesystem ignores ``AWS_ENDPOINT_URL``, so the stand-in's endpoint is passed on
    explicitly; credentials come from the usual chain (the environment on Lambda and locally).
    """
    properties = {
        "glue.region": region,
        "s3.region": region,
        # pyarrow's file IO, asking S3 less (query/fileio.py)
        "py-io-impl": "query.fileio.LakeFileIO",
    }
    if endpoint_url:
        properties |= {
            "glue.endpoint": endpoint_url,
            "s3.endpoint": endpoint_url,
            "s3.force-virtual-addressing": "false",
        }
    return properties


def glue_catalog(glue: GlueClient | Any, region: str, endpoint_url: str | None = None) -> GlueCatalog:
    """pyiceberg's Glue catalog using ``glue`` (one client per process, created by the caller),
    asking Glue and S3 less (:mod:`query.glue`)."""
    from query.glue import LakeGlueCatalog

    properties = catalog_properties(region, endpoint_url)
    if endpoint_url:
        # pyarrow's S3 finds credentials in the environment, not in the client the caller built
        # with explicit keys (the `lake` command's stand-in clients): hand them over.
        signer = getattr(glue, "_request_signer", None)
        credentials = getattr(signer, "_credentials", None)
        if credentials is not None:
            frozen = credentials.get_frozen_credentials()
            properties |= {"s3.access-key-id": frozen.access_key, "s3.secret-access-key": frozen.secret_key}
            if frozen.token:
                properties["s3.session-token"] = frozen.token
    return LakeGlueCatalog("lake", client=glue, **properties)
