"""Iceberg tables in a local folder, without a catalog service: for tests that need many small
tables fast (a property test builds one per example). The table's metadata lives in memory; its
data and manifest files are real files written by pyiceberg, read back by the same scan code the
lake uses. :class:`FolderLake` answers as the query engine's :class:`query.Catalog` does for those tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyiceberg.catalog.noop import NoopCatalog
from pyiceberg.io.pyarrow import PyArrowFileIO
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC
from pyiceberg.table import CommitTableResponse, Table
from pyiceberg.table.metadata import new_table_metadata
from pyiceberg.table.sorting import UNSORTED_SORT_ORDER
from pyiceberg.table.update import update_table_metadata

import query.glue  # noqa: F401  (transactions as the lake's catalog makes them: metadata built once per state)
from query.catalog import Catalog
from query.sql import TableRef


class _MemoryCatalog(NoopCatalog):
    """Commits by applying the updates to the metadata in memory (what a catalog would store)."""

    def commit_table(
        self, table: Table, requirements: tuple[Any, ...], updates: tuple[Any, ...]
    ) -> CommitTableResponse:
        for requirement in requirements:
            requirement.validate(table.metadata)
        metadata = update_table_metadata(table.metadata, updates)
        location = f"{table.metadata_location}#{len(metadata.snapshots)}"
        return CommitTableResponse(metadata=metadata, metadata_location=location)


def local_table(folder: Path, ref: TableRef, rows: pa.Table) -> Table:
    """An Iceberg table under ``folder`` holding ``rows`` (one snapshot), columns named as ``rows``'s."""
    from pyiceberg.catalog import Catalog

    schema = Catalog._convert_schema_if_needed(rows.schema)
    location = f"file://{folder / ref.database / ref.table}"
    metadata = new_table_metadata(schema, UNPARTITIONED_PARTITION_SPEC, UNSORTED_SORT_ORDER, location, {})
    table = Table(
        (ref.database, ref.table), metadata, f"{location}/metadata/v1.json", PyArrowFileIO(), _MemoryCatalog("memory")
    )
    table.append(rows)
    return table


@dataclass
class FolderLake(Catalog):
    """A Catalog over :func:`local_table` tables instead of Glue."""

    glue: Any = None
    region: str = "us-east-1"
    local: dict[TableRef, Table] = field(default_factory=dict)

    def entry(self, ref: TableRef) -> dict[str, Any]:
        if ref not in self.local:
            from query.errors import QueryError

            raise QueryError(f"table {ref} does not exist")
        return {"Name": ref.table, "Parameters": {"table_type": "ICEBERG"}}

    def table(self, ref: TableRef, *, fresh: bool = False) -> Table:
        self.entry(ref)
        return self.local[ref]
