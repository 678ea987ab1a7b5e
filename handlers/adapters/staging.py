"""An ``OutputSink`` that stages outputs as local Parquet files until the whole file succeeded.

Nothing reaches a table before the pipeline finished and the tolerance check passed, so a
half-broken export never becomes visible to queries. Files are split by Iceberg partition (the
partition column through its transform, e.g. ``month(date)``) as rows arrive, so each staged file
becomes one data file of the table; memory holds one batch at a time. Every row gets the lineage
columns (``analytics.base.LINEAGE_COLUMNS``) of its source.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import queue
import re
import shutil
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from analytics.base import (
    QUARANTINE_REASON,
    QUARANTINE_REASON_CODE,
    QUARANTINE_ROW_NUMBER,
    TableSpec,
    col,
    column_doc,
)
from analytics.personal import Kind, Pseudonymiser, header_key
from analytics.profile import PROFILE_TABLE_SPEC

NULL_PARTITION = "null"
#: Rows buffered per output file before a row group is written: fewer, larger row groups are
#: cheaper to write and to scan, and 128k rows of typical exports stay around 10-20 MB.
ROW_GROUP_ROWS = 131_072


#: The lineage columns with their types and what they mean: their one description (Glue column
#: comments, docs/tables.md).
LINEAGE_SCHEMA = pa.schema(
    [
        col("source_key", pa.string(), "the raw object's key (`raw/orders/2026-03.csv`)"),
        col("source_version", pa.string(), "its version id, or ETag"),
        col("source_id", pa.string(), "the raw object the row came from: a short id of key + version (20 hex)"),
        col(
            "ingested_at",
            pa.timestamp("us"),
            "when that version landed in `raw/` (its LastModified, UTC); the same on every reprocess",
        ),
    ]
)
LINEAGE_DOCS = {f.name: column_doc(f) for f in LINEAGE_SCHEMA}
#: A quarantined line that could not be split into the header's fields, as it was.
RAW_LINE = "_raw_line"
#: The columns the lake adds to a quarantined row: a file's own column of such a name is renamed.
QUARANTINE_OWN = (QUARANTINE_ROW_NUMBER, QUARANTINE_REASON_CODE, QUARANTINE_REASON, RAW_LINE, *LINEAGE_SCHEMA.names)
#: The longest column name Glue takes, in bytes of UTF-8.
GLUE_NAME_LIMIT = 255
_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def storable_names(names: list[str], reserved: tuple[str, ...] = QUARANTINE_OWN) -> list[str]:
    """A file's column names as a quarantine table can hold them, each kept as it is when it can be.

    Athena lowercases column names, so names equal but for case (``Amount``, ``amount``) would be one
    column: the later ones get ``_2``, ``_3``. Glue takes one line of at most 255 bytes: a line
    break (a quoted header may hold one) becomes a space, a longer name is cut. The last column of a
    ``reserved`` name is the lake's own (appended after the file's); a file's column of that name (any
    case) is renamed too.
    """
    last = {name: i for i, name in enumerate(names) if name in reserved}
    taken = {name.casefold() for name in reserved}
    out = list(names)
    for i, name in enumerate(names):
        if last.get(name) == i:
            continue
        clean = _cut(_LINE_BREAKS.sub(" ", name).strip(), GLUE_NAME_LIMIT) or f"column_{i + 1}"
        candidate, n = clean, 1
        while candidate.casefold() in taken:
            n += 1
            candidate = f"{_cut(clean, GLUE_NAME_LIMIT - len(str(n)) - 1)}_{n}"
        taken.add(candidate.casefold())
        out[i] = candidate
    return out


def _cut(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` bytes of UTF-8, never inside a character."""
    return text.encode()[:limit].decode("utf-8", errors="ignore")


def spelled_as_stored(names: list[str], stored: list[str]) -> list[str]:
    """``names`` spelled as a table already stores them where they are equal ignoring case: a later
    file's ``amount`` fills the ``Amount`` column (to Athena they are one name), not a second column."""
    by_case = {name.casefold(): name for name in stored}
    return [by_case.get(name.casefold(), name) for name in names]


@dataclass(frozen=True)
class Lineage:
    """Where every staged row came from: the raw object's key and revision."""

    key: str
    version: str
    source_id: str
    #: When the object landed in raw/ (its LastModified, UTC): stable across reprocessing.
    ingested_at: dt.datetime
    #: The columns as last built, at least as long as any batch so far: each batch takes a slice
    #: (building them per batch cost 30 ms per million rows).
    _built: list[dict[str, pa.Array]] = field(default_factory=list, init=False, compare=False, repr=False)

    def columns(self, rows: int, present: list[str]) -> list[tuple[str, pa.Array]]:
        """The lineage columns ``rows`` long, except those already ``present``."""
        built = self._built[0] if self._built else None
        if built is None or len(built["source_key"]) < rows:
            values = {
                "source_key": self.key,
                "source_version": self.version,
                "source_id": self.source_id,
                "ingested_at": self.ingested_at.replace(tzinfo=None),
            }
            built = {f.name: pa.repeat(pa.scalar(values[f.name], f.type), rows) for f in LINEAGE_SCHEMA}
            self._built[:] = [built]  # whole, in one step: a thread never sees half of it
        return [(f.name, built[f.name].slice(0, rows)) for f in LINEAGE_SCHEMA if f.name not in present]


def partition_value(transform: str, column: pa.Array) -> pa.Array:
    """The partition each row falls in: the column through an Iceberg transform (dates truncated)."""
    if transform in ("identity", "day") or not (pa.types.is_date(column.type) or pa.types.is_timestamp(column.type)):
        return column
    as_time = column.cast(pa.timestamp("us")) if pa.types.is_date(column.type) else column
    return pc.floor_temporal(as_time, unit=transform).cast(column.type)


def _iceberg_types(data: pa.Table) -> pa.Table:
    """Arrow types Iceberg v2 stores: nanosecond and zoned timestamps as microseconds, unsigned and
    small integers as int/long, dictionaries as their values, large strings as strings."""
    fields, changed = [], False
    for f in data.schema:
        t = f.type
        if pa.types.is_dictionary(t):
            t = t.value_type
        if pa.types.is_timestamp(t) and (t.unit == "ns" or t.tz is not None):
            t = pa.timestamp("us")
        elif pa.types.is_uint32(t) or pa.types.is_uint64(t):
            t = pa.int64()
        elif (pa.types.is_integer(t) and t.bit_width < 32) or pa.types.is_uint16(t):
            t = pa.int32()
        elif pa.types.is_large_string(t):
            t = pa.string()
        changed |= t != f.type
        fields.append(pa.field(f.name, t))
    return data.cast(pa.schema(fields)) if changed else data


def partition_text(value: object) -> str:
    """A partition value as text (file names and the completion event)."""
    if value is None:
        return NULL_PARTITION
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


@dataclass
class StagedTable:
    """One output table's staged files: partition value text -> local Parquet file."""

    spec: TableSpec
    schema: pa.Schema | None = None
    files: dict[str, Path] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    writers: dict[str, pq.ParquetWriter] = field(default_factory=dict)
    pending: dict[str, list[pa.Table]] = field(default_factory=dict)
    pending_rows: dict[str, int] = field(default_factory=dict)
    #: Partitions whose files were closed (read back); they take no more rows.
    finished: set[str] = field(default_factory=set)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def _widened(staged: pa.Schema, incoming: pa.Schema) -> pa.Schema | None:
    """The staged schema with int64 columns turned float64 where ``incoming`` has float64; else None."""
    if staged.names != incoming.names:
        return None
    fields, changed = [], False
    for old, new in zip(staged, incoming, strict=True):
        if pa.types.is_int64(old.type) and pa.types.is_float64(new.type):
            fields.append(pa.field(old.name, pa.float64()))
            changed = True
        else:
            fields.append(old)
    return pa.schema(fields) if changed else None


class StagingSink:
    """Collects a pipeline's outputs and rejects under a temporary folder."""

    def __init__(
        self,
        specs: list[TableSpec],
        root: str | None = None,
        lineage: Lineage | None = None,
        personal: Pseudonymiser | None = None,
    ) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="lake-stage-", dir=root))
        self.lineage = lineage
        #: Pseudonymises personal data in every row written (``analytics.personal``); the handler
        #: applies it to the quarantine when it commits it.
        self.personal = personal
        #: Tables added after the pipeline ran (scores): their rows come from staged rows, which
        #: were pseudonymised when written, so they are not pseudonymised twice.
        self._derived: set[str] = set()
        self.tables: dict[str, StagedTable] = {spec.name: StagedTable(spec) for spec in specs}
        self._quarantine_parts: list[Path] = []
        self.quarantined_rows = 0
        # Parquet encoding releases the GIL: a writer thread overlaps it with the pipeline's work.
        self._jobs: queue.Queue[tuple[pq.ParquetWriter, pa.Table] | None] = queue.Queue(maxsize=2)
        self._writer_thread: threading.Thread | None = None
        self._writer_error: BaseException | None = None

    # --- OutputSink ------------------------------------------------------------------------------
    def personal_columns(self, names: Mapping[str, str]) -> None:
        """Pseudonymise these columns (an output column or a file's header → kind) wherever they land."""
        if self.personal is not None:
            for name, kind in names.items():
                self.personal.decisions[header_key(name)] = cast(Kind, kind)

    def write(self, table: str, data: pa.Table | pa.RecordBatch) -> None:
        staged = self.tables.get(table)
        if staged is None:
            raise KeyError(f"pipeline wrote to {table!r}, which is not among its declared tables")
        if data.num_rows == 0:
            return
        if isinstance(data, pa.RecordBatch):
            data = pa.Table.from_batches([data])
        if self.personal is not None and table not in self._derived:
            if table == PROFILE_TABLE_SPEC.name:
                data = self.personal.profile(data, table)
            data = self.personal.table(data, table)
        if self.lineage is not None:
            for name, column in self.lineage.columns(data.num_rows, data.column_names):
                data = data.append_column(name, column)
        body = _iceberg_types(data)
        if staged.schema is None:
            staged.schema = body.schema
            if staged.spec.schema is not None:  # the declared columns, then the lineage ones
                declared = staged.spec.schema
                staged.schema = pa.schema([*declared, *(f for f in body.schema if f.name not in declared.names)])
        if body.schema != staged.schema:
            widened = _widened(staged.schema, body.schema)
            if widened is not None:
                self.retype(table, widened)
            body = body.select(staged.schema.names).cast(staged.schema)
        partition = body.column(staged.spec.partition_column).combine_chunks()
        partition = partition_value(staged.spec.partition_transform, partition)
        distinct = len(pc.unique(partition))
        if distinct == 1:
            self._append(staged, partition[0].as_py(), body)
            return
        runs = pc.run_end_encode(partition)
        if len(runs.values) != distinct:  # not grouped by partition: group it (one sort, not a filter per value)
            order = pc.sort_indices(partition)
            body, partition = body.take(order), partition.take(order)
            runs = pc.run_end_encode(partition)
        start = 0
        for end, value in zip(runs.run_ends.to_pylist(), runs.values.to_pylist(), strict=True):
            self._append(staged, value, body.slice(start, end - start))
            start = end

    def add_table(self, spec: TableSpec) -> None:
        """Declare one more output table (e.g. scores written after the pipeline ran) whose rows are
        derived from staged, already pseudonymised, rows."""
        if spec.name not in self.tables:
            self._derived.add(spec.name)
        self.tables.setdefault(spec.name, StagedTable(spec))

    def read_table(self, name: str) -> pa.Table | None:
        """A staged table read back whole, partition column included (``None`` if it has no rows)."""
        staged = self.tables[name]
        if not staged.files:
            return None
        self.close_writers()
        parts = []
        for value, path in staged.files.items():
            staged.finished.add(value)
            parts.append(pq.read_table(path))
        return pa.concat_tables(parts)

    def quarantine(self, rows: pa.Table | pa.RecordBatch) -> None:
        if rows.num_rows == 0:
            return
        if isinstance(rows, pa.RecordBatch):
            rows = pa.Table.from_batches([rows])
        part = self._dir / f"quarantine-{len(self._quarantine_parts):05d}.parquet"
        pq.write_table(rows, part)
        self._quarantine_parts.append(part)
        self.quarantined_rows += rows.num_rows

    # --- used by the handler -----------------------------------------------------------------------
    def _append(self, staged: StagedTable, raw_value: object, body: pa.Table) -> None:
        value = partition_text(raw_value)
        if value in staged.finished:
            raise RuntimeError(f"table {staged.spec.name} was already read back; it cannot take more rows")
        if value not in staged.files:
            staged.files[value] = self._dir / f"{staged.spec.name}-{len(staged.files):06d}.parquet"
            staged.rows[value] = 0
            staged.pending[value] = []
            staged.pending_rows[value] = 0
        staged.rows[value] += body.num_rows
        staged.pending[value].append(body)
        staged.pending_rows[value] += body.num_rows
        if staged.pending_rows[value] >= ROW_GROUP_ROWS:
            self._flush(staged, value)

    def _flush(self, staged: StagedTable, value: str) -> None:
        parts = staged.pending.get(value)
        if not parts:
            return
        writer = staged.writers.get(value)
        if writer is None:
            assert staged.schema is not None
            writer = self._parquet_writer(staged.files[value], staged.schema)
            staged.writers[value] = writer
        self._submit(writer, pa.concat_tables(parts))
        staged.pending[value] = []
        staged.pending_rows[value] = 0

    @staticmethod
    def _parquet_writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
        return pq.ParquetWriter(
            path,
            schema,
            compression="snappy",
            # Dictionary-encode text only: on numbers and timestamps it rarely pays and costs a
            # third of the writing time (measured on the 1M-row benchmark file).
            use_dictionary=[f.name for f in schema if pa.types.is_string(f.type)] or False,
        )

    def retype(self, name: str, schema: pa.Schema) -> None:
        """Give a table a wider schema (int64 -> float64, anything -> string): what is staged so far is
        converted, streaming file by file; later writes are cast to the new schema."""
        staged = self.tables[name]
        self._drain()
        for value, parts in staged.pending.items():
            staged.pending[value] = [part.cast(schema) for part in parts]
        for value, old in list(staged.files.items()):
            writer = staged.writers.pop(value, None)
            if writer is not None:
                writer.close()
            elif not old.exists():
                continue  # nothing written for this partition yet: its pending rows were cast above
            new = old.with_name(f"{old.stem}-r{len(staged.files)}.parquet")
            rewritten = self._parquet_writer(new, schema)
            for batch in pq.ParquetFile(old).iter_batches():
                rewritten.write_table(pa.Table.from_batches([batch]).cast(schema))
            old.unlink()
            staged.files[value] = new
            staged.writers[value] = rewritten
        staged.schema = schema

    def retype_closed(self, name: str, schema: pa.Schema) -> list[Path]:
        """``retype`` after the writers were closed: convert one table's staged files, close them
        again and return them (safe while other tables are being committed from other threads)."""
        self.retype(name, schema)
        staged = self.tables[name]
        for writer in staged.writers.values():
            writer.close()
        staged.writers.clear()
        return list(staged.files.values())

    def _drain(self) -> None:
        """Wait until the writer thread wrote everything queued (it restarts on the next write)."""
        if self._writer_thread is not None:
            self._jobs.put(None)
            self._writer_thread.join()
            self._writer_thread = None
        if self._writer_error is not None:
            raise self._writer_error

    def _submit(self, writer: pq.ParquetWriter, table: pa.Table) -> None:
        if self._writer_error is not None:
            raise self._writer_error
        if self._writer_thread is None:
            self._writer_thread = threading.Thread(target=self._write_loop, name="parquet-writer", daemon=True)
            self._writer_thread.start()
        self._jobs.put((writer, table))

    def _write_loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            if self._writer_error is None:
                try:
                    job[0].write_table(job[1], row_group_size=max(ROW_GROUP_ROWS, job[1].num_rows))
                except BaseException as exc:  # handed to the pipeline's thread at the next write/close
                    self._writer_error = exc

    def close_writers(self) -> None:
        """Finish every staged Parquet file so it can be uploaded."""
        for staged in self.tables.values():
            for value in list(staged.pending):
                self._flush(staged, value)
        self._drain()
        for staged in self.tables.values():
            for writer in staged.writers.values():
                writer.close()
            staged.writers.clear()

    def quarantine_table(self) -> pa.Table | None:
        """All rejected rows as one table (columns unified, values as text), or ``None``."""
        if not self._quarantine_parts:
            return None
        parts = [pq.read_table(p) for p in self._quarantine_parts]
        parts = [t.rename_columns(storable_names(t.column_names)) for t in parts]
        parts = [
            t.cast(
                pa.schema([pa.field(f.name, pa.int64() if f.name == "_row_number" else pa.string()) for f in t.schema])
            )
            for t in parts
        ]
        rejected = pa.concat_tables(parts, promote_options="permissive")
        if self.lineage is not None:
            for name, column in self.lineage.columns(rejected.num_rows, rejected.column_names):
                rejected = rejected.append_column(name, column)
        return rejected

    def discard_outputs(self) -> None:
        """Forget staged outputs (the file was refused); rejects are kept."""
        for staged in self.tables.values():
            staged.pending.clear()
        self.close_writers()
        for staged in self.tables.values():
            for path in staged.files.values():
                path.unlink(missing_ok=True)
            staged.files.clear()
            staged.rows.clear()

    def cleanup(self) -> None:
        try:
            # After a failure the pipeline's own error is the one to report, not a writer's.
            with contextlib.suppress(Exception):
                self.discard_outputs()
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> StagingSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
