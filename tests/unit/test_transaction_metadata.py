"""query/glue.py: a transaction builds its table metadata once per staged state, and still sees
every update it stages (pyiceberg 0.12 deep-copied the whole metadata on every read)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pyiceberg.catalog.noop import NoopCatalog
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.expressions import EqualTo
from pyiceberg.io.pyarrow import PyArrowFileIO
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC
from pyiceberg.table import CommitTableResponse, Table
from pyiceberg.table import update as table_update
from pyiceberg.table.metadata import new_table_metadata
from pyiceberg.table.sorting import UNSORTED_SORT_ORDER
from pyiceberg.table.update import update_table_metadata

import query.glue
from query.sql import TableRef
from tests.local_iceberg import local_table


def test_a_transaction_builds_its_metadata_once_per_staged_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (installed for the pyiceberg checked: an upgrade fails here until it is checked again)
    assert query.glue._install_metadata_once()
    table = local_table(tmp_path, TableRef("db", "events"), pa.table({"id": [1, 2], "name": ["a", "b"]}))
    for n in range(30):  # a history: a commit's reads of the metadata used to copy all of it
        table.append(pa.table({"id": [n], "name": [f"n{n}"]}))
    built = []
    replay = table_update.update_table_metadata

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        built.append(1)
        return replay(*args, **kwargs)

    monkeypatch.setattr("pyiceberg.table.update_table_metadata", counted)
    with table.transaction() as tx:
        first = tx.table_metadata
        assert tx.table_metadata is first
        assert len(built) == 1
        # a staged update is seen at once
        tx.set_properties(owner="marketing")
        assert tx.table_metadata.properties["owner"] == "marketing"
        assert len(built) == 2
        # and the snapshot a write stages reads it many times (per data file, per manifest): once built
        before = len(built)
        tx.append(pa.table({"id": list(range(100)), "name": [str(i) for i in range(100)]}))
        assert len(built) - before <= 1
    # the commit holds both: the property and every row
    assert table.properties["owner"] == "marketing"
    assert table.scan().to_arrow().num_rows == 2 + 30 + 100
    assert len(table.snapshots()) == 32


class _ConflictOnceCatalog(NoopCatalog):
    """A catalog in memory whose next commit first lets another writer commit (``before_next``)."""

    metadata: Any = None
    location = ""
    before_next: Any = None

    def commit_table(self, table: Table, requirements: Any, updates: Any) -> CommitTableResponse:
        if self.before_next is not None:
            other, self.before_next = self.before_next, None
            other()
        for requirement in requirements:
            try:
                requirement.validate(self.metadata)
            except Exception as exc:  # a requirement the other writer broke: pyiceberg retries
                raise CommitFailedException(str(exc)) from exc
        self.metadata = update_table_metadata(self.metadata, updates, enforce_validation=True)
        self.location = f"{self.location.split('#')[0]}#{len(self.metadata.snapshots)}"
        return CommitTableResponse(metadata=self.metadata, metadata_location=self.location)

    def load_table(self, identifier: Any) -> Table:
        return Table(("db", "t"), self.metadata, self.location, PyArrowFileIO(), self)


@pytest.mark.parametrize("write", ["append", "delete"])
def test_a_transaction_retried_after_another_writer_builds_on_that_writers_snapshot(tmp_path: Path, write: str) -> None:
    # GIVEN a table, and another writer that commits just before this one (pyiceberg then reloads the
    # table and stages the write again on it: the metadata the transaction built before is stale)
    catalog = _ConflictOnceCatalog("memory")
    schema = catalog._convert_schema_if_needed(pa.schema([("id", pa.int64()), ("g", pa.string())]))
    location = f"file://{tmp_path}/t"
    retry_fast = {"commit.retry.min-wait-ms": "1", "commit.retry.max-wait-ms": "2"}
    catalog.metadata = new_table_metadata(
        schema, UNPARTITIONED_PARTITION_SPEC, UNSORTED_SORT_ORDER, location, retry_fast
    )
    catalog.location = f"{location}/v1.json"
    table = catalog.load_table(("db", "t"))
    for i in range(3):
        table.append(pa.table({"id": [i, i + 10], "g": ["a", "b"]}))
    other = catalog.load_table(("db", "t"))
    catalog.before_next = lambda: other.append(pa.table({"id": [100], "g": ["c"]}))
    # WHEN this writer's transaction commits
    with table.transaction() as tx:
        tx.set_properties(owner="marketing")
        if write == "append":
            tx.append(pa.table({"id": [7], "g": ["z"]}))
        else:
            tx.delete(EqualTo("g", "a"))
    # THEN it landed on top of the other writer's snapshot: both writes hold, nothing is lost
    table.refresh()
    rows = sorted(table.scan().to_arrow().column("id").to_pylist())
    kept = [0, 1, 2, 10, 11, 12, 100]
    assert rows == (sorted([*kept, 7]) if write == "append" else [10, 11, 12, 100])
    assert table.properties["owner"] == "marketing"
    assert catalog.before_next is None  # the other writer did commit first
    current = table.current_snapshot()
    assert current is not None and current.parent_snapshot_id is not None
    parent = table.snapshot_by_id(current.parent_snapshot_id)
    assert parent is not None
