"""handlers/adapters/committer.py: a group commit builds each data file's manifest entry from the
footer its writer sent along, and the entry is the one pyiceberg's ``add_files`` makes by reading
the file back."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.catalog import Catalog
from pyiceberg.io.pyarrow import PyArrowFileIO
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import assign_fresh_schema_ids
from pyiceberg.table import Table
from pyiceberg.table.metadata import new_table_metadata
from pyiceberg.table.sorting import UNSORTED_SORT_ORDER
from pyiceberg.transforms import MonthTransform

from handlers.adapters import committer
from handlers.adapters.committer import Footer, Intent, add_data_files
from handlers.adapters.table_properties import table_properties
from tests.local_iceberg import _MemoryCatalog

ROWS = pa.table(
    {
        "source_key": ["raw/a.csv"] * 3 + ["raw/b.csv"] * 2,
        "day": [dt.date(2026, 1, 5)] * 3 + [dt.date(2026, 2, 1)] * 2,
        "amount": [1.5, None, 3.25, -7.0, 1e9],
        "note": ["x", "y", None, "ü", "a longer text than the others, past sixteen bytes"],
    }
)


def _table(folder: Path, name: str) -> Table:
    schema = assign_fresh_schema_ids(Catalog._convert_schema_if_needed(ROWS.schema))
    spec = PartitionSpec(
        PartitionField(source_id=schema.find_field("day").field_id, field_id=1000, transform=MonthTransform(),
                       name="day_month")
    )  # fmt: skip
    location = f"file://{folder / name}"
    properties = table_properties() | {"write.metadata.metrics.column.source_key": "full"}
    metadata = new_table_metadata(schema, spec, UNSORTED_SORT_ORDER, location, properties)
    return Table(("db", name), metadata, f"{location}/metadata/v1.json", PyArrowFileIO(), _MemoryCatalog("memory"))


def _files(folder: Path) -> list[Path]:
    paths = []
    for n, month in enumerate((1, 2)):
        path = folder / f"part-{n}.parquet"
        pq.write_table(ROWS.filter(pa.compute.equal(pa.compute.month(ROWS["day"]), month)), path)
        paths.append(path)
    return paths


def test_the_manifest_entry_built_from_a_footer_is_the_one_add_files_reads_from_the_file(tmp_path: Path) -> None:
    paths = _files(tmp_path)
    uris = [f"file://{p}" for p in paths]
    # GIVEN two identical tables: one takes the files through pyiceberg's add_files (reading each)
    read_back = _table(tmp_path, "read_back")
    read_back.add_files(uris, check_duplicate_files=False)
    # AND one through an intent carrying their footers, its files moved away so reading one would fail
    intent = Intent(
        "db",
        "footers",
        "file://x",
        files=tuple(uris),
        footers={u: Footer.of(p) for u, p in zip(uris, paths, strict=True)},
    )
    intent = Intent.from_json(intent.to_json())  # as a waiting worker's intent reaches the committer
    hidden = [p.rename(p.with_suffix(".away")) for p in paths]
    footers = _table(tmp_path, "footers")
    with footers.transaction() as tx:
        add_data_files(tx, intent.files, intent.footers, {"lake.intents": intent.id})
    for away, path in zip(hidden, paths, strict=True):
        away.rename(path)

    # THEN both hold the same files with the same partition, counts, sizes and bounds
    def entries(table: Table) -> list[dict[str, object]]:
        files = table.inspect.files().drop_columns(["readable_metrics"]).to_pylist()
        return sorted(files, key=lambda f: str(f["file_path"]))

    assert entries(footers) == entries(read_back)
    assert [e["record_count"] for e in entries(footers)] == [3, 2]
    assert footers.current_snapshot().summary["lake.intents"] == intent.id  # type: ignore[union-attr]
    # AND the bounds do their work: a key's files are found without opening the others
    assert footers.scan(row_filter="source_key == 'raw/b.csv'").to_arrow().num_rows == 2
    assert len(list(footers.scan(row_filter="source_key == 'raw/b.csv'").plan_files())) == 1
    assert footers.properties["schema.name-mapping.default"]


def test_an_intent_without_footers_has_its_files_read(tmp_path: Path) -> None:
    # (an intent left pending by the version before footers travelled)
    paths = _files(tmp_path)
    uris = [f"file://{p}" for p in paths]
    text = Intent("db", "t", "file://x", files=tuple(uris)).to_json().replace(b'"footers": {}, ', b"")
    assert b'"footers"' not in text
    old = Intent.from_json(text)
    table = _table(tmp_path, "t")
    with table.transaction() as tx:
        add_data_files(tx, old.files, old.footers, {})
    assert table.scan().to_arrow().num_rows == 5


def test_a_footer_too_large_to_send_along_is_left_to_be_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    [path, _] = _files(tmp_path)
    assert Footer.of(path) is not None
    monkeypatch.setattr(committer, "MAX_FOOTER_BYTES", 100)  # (a wide file of many row groups)
    assert Footer.of(path) is None
