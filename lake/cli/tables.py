"""Read the lake's tables back through the Glue catalog: ``lake tables`` and :func:`read_table`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs

from lake.engine import LakeCatalog, TableRef, commit_time, is_iceberg, partition_spec
from lake.engine import read_table as iceberg_read_table
from lake.standin.server import s3_filesystem as standin_filesystem
from lake.target import CliError
from query.errors import QueryError
from query.views import is_view

if TYPE_CHECKING:
    from lake.target import Target


def s3_filesystem(endpoint_url: str | None, region: str) -> pafs.S3FileSystem:
    """A pyarrow S3 filesystem; pointed at the stand-in when ``endpoint_url`` is given."""
    if endpoint_url is None:
        return pafs.S3FileSystem(region=region)
    return standin_filesystem(endpoint_url, region)


def read_table(glue: Any, fs: pafs.S3FileSystem | None, database: str, table: str) -> pa.Table:
    """Every row of an Iceberg table as of its current snapshot, read through the catalog.

    ``fs`` is not used any more (pyiceberg reads the files); it stays so callers keep working.
    """
    endpoint = glue.meta.endpoint_url
    local = not urlparse(endpoint).netloc.endswith(".amazonaws.com")
    catalog = LakeCatalog(glue, glue.meta.region_name, endpoint if local else None)
    return iceberg_read_table(catalog.table(TableRef(database, table)))


def list_tables(target: Target) -> pa.Table:
    """One row per table and view of the curated, quarantine and ops databases: its kind, partition
    spec, rows (the current snapshot's ``total-records``), snapshots, last commit and location."""
    catalog = LakeCatalog.of(target)
    rows: list[dict[str, Any]] = []
    for database in (target.curated_database, target.quarantine_database, target.ops_database):
        try:
            entries = catalog.entries(database)
        except QueryError as exc:
            if database == target.ops_database:
                continue  # a stack deployed before the processing ledger has no ops database
            raise CliError(
                f"Glue database {database} does not exist on {target.where}; start the stand-in with `lake up` "
                "or deploy the stack"
            ) from exc
        for entry in entries:
            ref = TableRef(database, str(entry["Name"]))
            if is_view(entry):
                rows.append({"database": database, "table": ref.table, "kind": "view"})
                continue
            if not is_iceberg(entry):
                rows.append(
                    {
                        "database": database,
                        "table": ref.table,
                        "kind": "not iceberg",
                        "location": entry.get("StorageDescriptor", {}).get("Location"),
                    }
                )
                continue
            table = catalog.table(ref)
            current = table.current_snapshot()
            summary = current.summary if current is not None else None
            rows.append(
                {
                    "database": database,
                    "table": ref.table,
                    "kind": "iceberg",
                    "partition_spec": partition_spec(table),
                    "rows": int(summary.get("total-records", 0) or 0) if summary is not None else 0,
                    "snapshots": len(table.snapshots()),
                    "last_commit": commit_time(current).replace(microsecond=0) if current is not None else None,
                    "location": table.location(),
                }
            )
    return pa.Table.from_pylist(rows, schema=TABLES_SCHEMA)


TABLES_SCHEMA = pa.schema(
    [
        ("database", pa.string()),
        ("table", pa.string()),
        ("kind", pa.string()),
        ("partition_spec", pa.string()),
        ("rows", pa.int64()),
        ("snapshots", pa.int64()),
        ("last_commit", pa.timestamp("s", tz="UTC")),
        ("location", pa.string()),
    ]
)
