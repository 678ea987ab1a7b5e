"""pyiceberg's Glue catalog, asking Glue less, and transactions that build their metadata once.

- pyiceberg asks Glue (``GetDatabase``) on every commit and every table it creates, to choose how
  to write the metadata file; a database does not change federation, so the answer is kept for the
  catalog's life.
- pyiceberg 0.12's ``Transaction.table_metadata`` replays the staged updates and deep-copies the
  whole table metadata, every snapshot included, on each read, and a delete or an ``add_files``
  reads it many times (per manifest and per data file): a commit's cost grew with the table's
  history, not with its files (apache/iceberg-python#2673). :func:`_install_metadata_once` keeps
  the result until the staged updates or the table's metadata change, as the fix proposed
  upstream does (apache/iceberg-python#3302 and #3784, closed unmerged): both are immutable and
  replaced, never changed in place, so their identity says whether the result still holds.

The file IO under it (:mod:`query.fileio`) keeps Iceberg's own files' bytes.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from pyiceberg.catalog.glue import GlueCatalog
from pyiceberg.table import Transaction

logger = logging.getLogger(__name__)


#: The pyiceberg whose ``Transaction`` this was checked against: its state changes only by rebinding
#: ``_updates`` (a tuple) or the table's ``metadata``. Another version is left as it is (check it
#: again, then add it here).
CHECKED_PYICEBERG = ("0.12.",)


def _install_metadata_once() -> bool:
    """``Transaction.table_metadata`` computed once per (table metadata, staged updates); False when
    pyiceberg is not a checked version or its property is not the one checked."""
    import pyiceberg

    original = Transaction.__dict__.get("table_metadata")
    if not isinstance(original, property) or original.fget is None:
        return False
    if getattr(original.fget, "computed_once", False):
        return True
    if not pyiceberg.__version__.startswith(CHECKED_PYICEBERG) or original.fget.__code__.co_names != (
        "update_table_metadata",
        "_table",
        "metadata",
        "_updates",
    ):
        logger.warning(
            "pyiceberg %s: Transaction.table_metadata left as it is (checked: %s)",
            pyiceberg.__version__,
            CHECKED_PYICEBERG,
        )
        return False
    fget = original.fget

    def table_metadata(self: Transaction) -> Any:
        base, updates = self._table.metadata, self._updates
        kept = self.__dict__.get("_lake_table_metadata")
        if kept is not None and kept[0] is base and kept[1] is updates:
            return kept[2]
        metadata = fget(self)
        self.__dict__["_lake_table_metadata"] = (base, updates, metadata)
        return metadata

    table_metadata.computed_once = True  # type: ignore[attr-defined]
    Transaction.table_metadata = property(table_metadata)  # type: ignore[method-assign,assignment]
    return True


_install_metadata_once()


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
