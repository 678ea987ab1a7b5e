"""A pinned snapshot's rows, as DuckDB reads them.

A snapshot whose data files can be read by name (:mod:`query.snapshot_files`) is bound as a
``pyarrow.dataset.Dataset``: DuckDB then reads only the columns and row groups a query needs, file
by file, and can read it twice (a self-join). Any other is pyiceberg's stream of the columns the
query uses, which resolves columns by field id and is always right. Either way the files that
cannot match the query's WHERE (:mod:`query.plans`) are pruned from the plan by pyiceberg first.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pyarrow as pa

from query.catalog import schema_of

if TYPE_CHECKING:
    import pyarrow.dataset as ds
    from pyiceberg.expressions import BooleanExpression
    from pyiceberg.table import Table
    from pyiceberg.table.snapshots import Snapshot


def rows_of(
    table: Table,
    snapshot: Snapshot | None,
    columns: tuple[str, ...] = ("*",),
    row_filter: BooleanExpression | None = None,
    failures: list[str] | None = None,
) -> ds.Dataset | pa.RecordBatchReader:
    """The rows of ``snapshot`` for DuckDB: a dataset over its data files (every column; DuckDB
    projects) when their columns can be read by name, else :func:`scan` of ``columns``. Files that
    cannot hold a row matching ``row_filter`` are left out of both; an empty table gives its schema."""
    from query.snapshot_files import snapshot_dataset

    if snapshot is not None:
        dataset = snapshot_dataset(table, snapshot.snapshot_id, row_filter)
        if dataset is not None:
            return dataset
    return scan(table, snapshot, columns, row_filter, failures)


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


#: What a data file's own damage says (Parquet's and Thrift's decoding), as opposed to a read that
#: failed on its way (a timeout, throttling, memory): only those errors send a look for the file.
#: (Not "parquet" alone: a failed request's message names the file, whose name ends in it.)
_DAMAGE = re.compile(
    r"thrift|deserializ|page header|magic bytes|footer|corrupt|invalid data|end of stream|file size", re.IGNORECASE
)
#: How long the look for a damaged file may take on an error path (each file is read whole).
DAMAGE_LOOK_SECONDS = 30.0


def damaged_fragment(dataset: ds.Dataset, error: Exception | str) -> str | None:
    """``<file>: <what is wrong>`` for the first data file of ``dataset`` that cannot be read whole,
    or None: when ``error`` (DuckDB's, which names only the stream) is a file's damage, not a
    failed request. A file whose footer reads but whose pages do not (cut short, overwritten) is
    found only by reading it; the look stops after :data:`DAMAGE_LOOK_SECONDS`."""
    import pyarrow.dataset as ds
    import pyarrow.fs as pafs

    if not isinstance(dataset, ds.FileSystemDataset) or not _DAMAGE.search(str(error)):
        return None
    scheme = "s3://" if isinstance(dataset.filesystem, pafs.S3FileSystem) else ""
    deadline = time.monotonic() + DAMAGE_LOOK_SECONDS
    for fragment in dataset.get_fragments():
        if time.monotonic() > deadline:
            return None
        try:
            fragment.to_table()
        except (OSError, pa.ArrowException) as exc:
            if _DAMAGE.search(str(exc)):
                return f"{scheme}{fragment.path}: {_short(exc)}"
            return None  # the file could not be fetched: that says nothing of its bytes
    return None


def _short(error: Exception) -> str:
    return " ".join(str(error).replace("Could not open Parquet input source '<Buffer>': ", "").split())


def read_table(table: Table) -> pa.Table:
    """Every row of Iceberg table ``table`` as of its current snapshot."""
    return scan(table, table.current_snapshot()).read_all()
