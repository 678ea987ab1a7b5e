"""A snapshot's data files as a ``pyarrow.dataset.Dataset``, when reading them by name is exact.

pyiceberg's reader resolves every file's columns by Iceberg field id and hands DuckDB a stream;
DuckDB cannot push a projection or a filter into a stream, and a stream can be read only once.
A dataset lets DuckDB read only the columns (and row groups) a query needs, file by file.

Arrow matches a file's columns to the dataset's by *name*, fills a column a file lacks with nulls
and casts ``int`` to ``bigint`` and ``float`` to ``double``. That is what Iceberg's field ids say
only when, in every file, each column of the snapshot's schema is either absent (added after the
file was written) or present under its own name with a type Arrow widens losslessly. Any other
file (a renamed or re-added column, an identity-partition value kept only in the metadata, a delete
file, a type outside that list) sends the whole scan back to pyiceberg's reader, which is always
right: :func:`snapshot_dataset` returns None.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:
    import pyarrow.dataset as ds
    from pyiceberg.expressions import BooleanExpression
    from pyiceberg.schema import Schema
    from pyiceberg.table import FileScanTask, Table

logger = logging.getLogger(__name__)

#: Read-ahead per file, as pyiceberg's own reader asks of Arrow.
_BUFFER_BYTES = 8 * 1024 * 1024

#: (type in a file, type in the dataset) that Arrow casts without losing a value: Iceberg's in-place
#: promotions, and the same text or bytes in Arrow's 32- and 64-bit offset layouts.
_WIDENINGS = {
    (pa.int32(), pa.int64()),
    (pa.float32(), pa.float64()),
    (pa.large_string(), pa.string()),
    (pa.string_view(), pa.string()),
    (pa.large_binary(), pa.binary()),
    (pa.binary_view(), pa.binary()),
}


def snapshot_dataset(table: Table, snapshot_id: int, row_filter: BooleanExpression | None = None) -> ds.Dataset | None:
    """The rows of ``table`` at ``snapshot_id`` as a dataset over its data files (those pyiceberg's
    plan keeps for ``row_filter``: the rows are not filtered, the files that cannot match are left
    out), or None when a file's columns cannot be matched by name exactly as Iceberg matches them by
    field id."""
    import pyarrow.dataset as ds
    from pyiceberg.expressions import AlwaysTrue
    from pyiceberg.io.pyarrow import PyArrowFileIO
    from pyiceberg.manifest import FileFormat

    scan = table.scan(snapshot_id=snapshot_id, row_filter=row_filter if row_filter is not None else AlwaysTrue())
    schema = scan.projection()
    io = table.io
    if not isinstance(io, PyArrowFileIO) or not all(f.field_type.is_primitive for f in schema.fields):
        return None
    tasks = list(scan.plan_files())
    if any(task.delete_files or task.file.file_format != FileFormat.PARQUET for task in tasks):
        return None
    places = {PyArrowFileIO.parse_location(task.file.file_path)[:2] for task in tasks}
    if len(places) > 1:
        return None
    arrow_schema = _dataset_schema(schema)
    if not tasks:
        return ds.dataset([], schema=arrow_schema, format="parquet")
    [(scheme, netloc)] = places
    filesystem = io.fs_by_scheme(scheme, netloc)
    file_format = ds.ParquetFileFormat(
        default_fragment_scan_options=ds.ParquetFragmentScanOptions(pre_buffer=True, buffer_size=_BUFFER_BYTES)
    )

    def fragment(task: FileScanTask) -> ds.ParquetFileFragment | None:
        path = PyArrowFileIO.parse_location(task.file.file_path)[2]
        # The size Iceberg recorded spares S3 a HEAD request per file before its footer is read.
        made = file_format.make_fragment(path, filesystem, file_size=task.file.file_size_in_bytes)
        # Reads the footer once; the scan then reuses it rather than reading it again.
        made.ensure_complete_metadata()
        return made if _readable_by_name(table, task, schema, arrow_schema, made) else None

    from pyiceberg.utils.concurrent import ExecutorFactory

    try:
        fragments = list(ExecutorFactory.get_or_create().map(fragment, tasks))
    except (OSError, pa.ArrowException, ValueError) as exc:
        # pyiceberg's reader meets the same file and says what is wrong with it, as before.
        logger.info("reading %s through pyiceberg: %s", table.name(), exc)
        return None
    if any(f is None for f in fragments):
        return None
    return ds.FileSystemDataset([f for f in fragments if f is not None], arrow_schema, file_format, filesystem)


def _dataset_schema(schema: Schema) -> pa.Schema:
    """The Arrow schema pyiceberg's reader gives, with 32-bit offsets (what Parquet files hold and
    DuckDB reads without a copy) and every column nullable (a file may lack it)."""
    from pyiceberg.io.pyarrow import schema_to_pyarrow

    narrow = {pa.large_string(): pa.string(), pa.large_binary(): pa.binary()}
    return pa.schema(
        [pa.field(f.name, narrow.get(f.type, f.type)) for f in schema_to_pyarrow(schema, include_field_ids=False)]
    )


def _readable_by_name(
    table: Table, task: FileScanTask, schema: Schema, arrow_schema: pa.Schema, fragment: ds.ParquetFileFragment
) -> bool:
    """Whether Arrow, matching ``fragment``'s columns by name, reads what Iceberg's field ids say."""
    from pyiceberg.io.pyarrow import pyarrow_to_schema
    from pyiceberg.transforms import IdentityTransform

    physical = fragment.physical_schema
    if task.file.record_count != sum(rg.num_rows for rg in fragment.row_groups):
        return False
    file_schema = pyarrow_to_schema(
        physical,
        table.metadata.name_mapping(),
        downcast_ns_timestamp_to_us=False,
        format_version=table.metadata.format_version,
    )
    spec = table.metadata.specs().get(task.file.spec_id)
    identity = {f.source_id for f in spec.fields if isinstance(f.transform, IdentityTransform)} if spec else set()
    for field in schema.fields:
        wanted = arrow_schema.field(field.name).type
        try:
            name = file_schema.find_column_name(field.field_id)
        except ValueError:
            name = None
        if name is None:
            # Added after this file was written: nulls, unless the name is another column's in the
            # file, a default stands in, or the value lives in the partition tuple.
            if field.name in physical.names or field.initial_default is not None or field.field_id in identity:
                return False
            continue
        if name != field.name or physical.get_field_index(name) < 0:
            return False
        kind = physical.field(name).type
        if kind != wanted and (kind, wanted) not in _WIDENINGS:
            return False
    return True
