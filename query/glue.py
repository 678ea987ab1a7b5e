"""pyiceberg's Glue catalog, asking Glue once per catalog whether a database is an S3 Tables one.

pyiceberg asks Glue (``GetDatabase``) on every commit and every table it creates, to choose how to
write the metadata file; a database does not change federation, so the answer is kept for the
catalog's life. The file IO under it (:mod:`query.fileio`) keeps Iceberg's own files' bytes.
"""

from __future__ import annotations

import threading
from typing import Any

from pyiceberg.catalog.glue import GlueCatalog


class LakeGlueCatalog(GlueCatalog):
    """:class:`GlueCatalog` that asks each database's federation once."""

    def __init__(self, name: str, client: Any = None, **properties: str) -> None:
        super().__init__(name, client=client, **properties)
        self._s3tables: dict[str, bool] = {}
        self._lock = threading.Lock()

    def _is_s3tables_database(self, database_name: str) -> bool:
        with self._lock:
            known = self._s3tables.get(database_name)
        if known is None:
            known = super()._is_s3tables_database(database_name)
            with self._lock:
                self._s3tables[database_name] = known
        return known
