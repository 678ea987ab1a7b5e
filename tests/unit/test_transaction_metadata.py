"""query/glue.py: a transaction builds its table metadata once per staged state, and still sees
every update it stages (pyiceberg 0.12 deep-copied the whole metadata on every read)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.table import update as table_update

import query.glue  # noqa: F401  (installs the once-per-state metadata)
from query.sql import TableRef
from tests.local_iceberg import local_table


def test_a_transaction_builds_its_metadata_once_per_staged_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
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
