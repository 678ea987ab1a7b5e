"""pyiceberg's Glue catalog, asking Glue and S3 less on every commit and table load.

- **A table's metadata is parsed once per process.** A metadata JSON is written once under a fresh
  name and never changes, so the parsed metadata is kept by its location (the most recent
  :data:`KEPT_METADATA`): loading a table whose Glue entry still names the same file, and each
  commit's look at the table it replaces, read nothing from S3. A table committed since is read
  afresh (its Glue entry names a new file); a commit made here keeps the metadata it wrote.
- **Whether a database is an S3 Tables one is asked once per catalog.** pyiceberg asks Glue
  (``GetDatabase``) on every commit and every create; a database does not change federation.

The file IO under it (:mod:`query.fileio`) keeps Iceberg's own files' bytes the same way.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from pyiceberg.catalog import METADATA_LOCATION
from pyiceberg.catalog.glue import GlueCatalog
from pyiceberg.table import CommitTableResponse, Table

if TYPE_CHECKING:
    from pyiceberg.table.metadata import TableMetadata

#: Parsed table metadata kept per process, by location (a few tables' latest versions).
KEPT_METADATA = 64

_METADATA: OrderedDict[str, TableMetadata] = OrderedDict()
_LOCK = threading.Lock()


def _kept(location: str) -> TableMetadata | None:
    with _LOCK:
        metadata = _METADATA.get(location)
        if metadata is not None:
            _METADATA.move_to_end(location)
        return metadata


def _keep(location: str, metadata: TableMetadata) -> None:
    with _LOCK:
        _METADATA[location] = metadata
        _METADATA.move_to_end(location)
        while len(_METADATA) > KEPT_METADATA:
            _METADATA.popitem(last=False)


class LakeGlueCatalog(GlueCatalog):
    """:class:`GlueCatalog` that keeps parsed metadata by location and each database's federation."""

    def __init__(self, name: str, client: Any = None, **properties: str) -> None:
        super().__init__(name, client=client, **properties)
        self._s3tables: dict[str, bool] = {}

    def _is_s3tables_database(self, database_name: str) -> bool:
        if database_name not in self._s3tables:
            self._s3tables[database_name] = super()._is_s3tables_database(database_name)
        return self._s3tables[database_name]

    def _convert_glue_to_iceberg(self, glue_table: Any) -> Table:
        location = str((glue_table.get("Parameters") or {}).get(METADATA_LOCATION) or "")
        metadata = _kept(location) if location else None
        if metadata is None or "DatabaseName" not in glue_table or "Name" not in glue_table:
            table = super()._convert_glue_to_iceberg(glue_table)
            _keep(table.metadata_location, table.metadata)
            return table
        return Table(
            identifier=(glue_table["DatabaseName"], glue_table["Name"]),
            metadata=metadata,
            metadata_location=location,
            io=self._load_file_io(metadata.properties, location),
            catalog=self,
        )

    def commit_table(self, table: Table, requirements: Any, updates: Any) -> CommitTableResponse:
        response = super().commit_table(table, requirements, updates)
        _keep(response.metadata_location, response.metadata)
        return response
