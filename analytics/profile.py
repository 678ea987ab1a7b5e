"""A streaming column profiler for the generic pipeline: the ``dataset_profiles`` table.

:class:`ProfileAccumulator` sees a file one record batch at a time and keeps, per column, a few
counters, the running min and max, and a K-minimum-values sketch of 64-bit hashes for the number
of distinct values. Memory is bounded by the number of columns times the sketch size, whatever
the number of rows; two accumulators (or two sketches) merge, so a file read in parallel pieces
can be profiled too.

>>> acc = ProfileAccumulator()
>>> for batch in batches:
...     acc.update(batch)
>>> sink.write(PROFILE_TABLE_SPEC.name, acc.finish(source))

Built-in datasets hold the whole file's clean rows at once: :func:`profile_table` profiles such a
table column by column (each column hashed once, on a few threads).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analytics._kernels import column_hashes
from analytics.base import LINEAGE_COLUMNS, SourceInfo, TableSpec, col
from analytics.threads import in_parallel

#: Sketch size: the relative standard error of the distinct estimate is about 1/sqrt(K - 2), ~3%.
SKETCH_SIZE = 1024
_TWO_64 = float(2**64)
#: min and max are cut to this many characters; a 10 kB JSON blob is not a useful minimum.
MAX_VALUE_CHARS = 200

PROFILE_TABLE_SPEC = TableSpec(
    "dataset_profiles",
    "ingest_date",
    "One row per source file × column: type, rows, null share, distinct estimate, min and max "
    "(as text, and typed: min_number/max_number for numbers, min_time/max_time for dates and timestamps).",
    pa.schema(
        [
            ("source_id", pa.string()),
            col("dataset", pa.string(), "dataset name"),
            col("column", pa.string(), "column name"),
            col("position", pa.int32(), "position of the column in the file (first seen)"),
            col("type", pa.string(), "Arrow type; `a | b` when batches disagreed (JSON lines)"),
            col("rows", pa.int64(), "rows of the file"),
            col("nulls", pa.int64(), "null values (rows of batches without the column count as null)"),
            col("null_share", pa.float64(), "nulls / rows"),
            col(
                "distinct_estimate",
                pa.int64(),
                "distinct non-null values: exact below 1,024, else a K-minimum-values estimate (K = 1,024, about "
                "3% error); null for nested types",
            ),
            col("distinct_is_exact", pa.bool_(), "whether `distinct_estimate` is exact"),
            col("min", pa.string(), "smallest value, as text (first 200 characters)"),
            col("max", pa.string(), "largest value, as text (first 200 characters)"),
            # Typed bounds, so `max(max_number)` compares numbers, not text ("$998.40" > "$1,000.84").
            col(
                "min_number",
                pa.float64(),
                "smallest value of a number column (null otherwise): compares as numbers",
            ),
            col(
                "max_number",
                pa.float64(),
                "largest value of a number column (null otherwise): compares as numbers",
            ),
            col("min_time", pa.timestamp("us"), "smallest value of a date or timestamp column (null otherwise)"),
            col("max_time", pa.timestamp("us"), "largest value of a date or timestamp column (null otherwise)"),
            col("ingest_date", pa.date32(), "the day the file was stored"),
        ]
    ),
)


@dataclass
class DistinctSketch:
    """K-minimum-values sketch: the K smallest distinct 64-bit hashes seen so far.

    With fewer than K distinct hashes the count is exact; otherwise the estimate is
    (K − 1) / (K-th smallest hash / 2^64). Sketches merge by keeping the K smallest of the union.
    """

    k: int = SKETCH_SIZE
    hashes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))

    def add(self, new: np.ndarray) -> None:
        """Add hashes (any order, duplicates allowed)."""
        if len(self.hashes) >= self.k:
            # Once full, only hashes below the current K-th smallest can change the sketch.
            new = new[new < self.hashes[-1]]
        if len(new) == 0:
            return
        # Distinct first (a hash table, O(n)): K values with repeats could hold fewer than K distinct
        # ones. Then only the K smallest can matter, so the sort that follows stays small.
        new = _smallest_distinct(new, self.k) if len(self.hashes) < self.k else pd.unique(new)
        if len(new) > self.k:
            new = np.partition(new, self.k - 1)[: self.k]
        self.hashes = np.union1d(self.hashes, new)[: self.k]

    def merge(self, other: DistinctSketch) -> DistinctSketch:
        """A sketch of the union of both inputs."""
        merged = DistinctSketch(min(self.k, other.k))
        merged.add(np.concatenate([self.hashes, other.hashes]))
        return merged

    @property
    def is_exact(self) -> bool:
        """Whether fewer than K distinct values were seen (the count is then exact)."""
        return len(self.hashes) < self.k

    def estimate(self) -> int:
        """Estimated number of distinct values."""
        if self.is_exact:
            return len(self.hashes)
        kth = float(self.hashes[self.k - 1]) / _TWO_64
        return round((self.k - 1) / kth)


def _smallest_distinct(hashes: np.ndarray, k: int) -> np.ndarray:
    """Distinct values of ``hashes`` that include its ``k`` smallest distinct ones (all when fewer).

    Hashes are uniform over 64 bits, so the ``k`` smallest distinct ones of a million are below a
    small threshold: at least ``k`` distinct values under it prove that every one of the ``k``
    smallest is there. The hash table then holds thousands of values instead of a million; the
    threshold grows until the proof holds (or covers everything: then every distinct value is kept).
    """
    share = 4.0 * k / max(len(hashes), 1)
    while share < 1.0:
        below = pd.unique(hashes[hashes < np.uint64(share * _TWO_64)])
        if len(below) >= k:
            return below
        share *= max(2.0, 2.0 * k / max(len(below), 1))
    return pd.unique(hashes)


def hash_values(arr: pa.Array | pa.ChunkedArray) -> np.ndarray | None:
    """64-bit hashes of the non-null values of ``arr`` (repeats allowed); ``None`` for nested types.

    Uses the same vectorised hashing as de-duplication: hashing straight from the Arrow buffers is
    several times cheaper than a hash table of Python objects, and the sketch drops repeats itself.
    """
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_nested(arr.type) or pa.types.is_null(arr.type):
        return None if pa.types.is_nested(arr.type) else np.zeros(0, dtype=np.uint64)
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    values = arr.drop_null()
    if pa.types.is_integer(values.type):
        # Hash integers as floats, so 1 and 1.0 count once across differently typed batches.
        values = pc.cast(values, pa.float64())
    return column_hashes(values)


def _format(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime | date):
        text = value.isoformat()
    elif isinstance(value, bytes):
        text = value.hex()
    else:
        text = str(value)
    return text[:MAX_VALUE_CHARS]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    return None


#: Text columns longer than this are checked for few distinct values (:func:`_few_distinct`).
_UNIQUE_FIRST_ROWS = 65_536
#: ... on this many rows, and take their distinct values first when at most this share are distinct.
_SAMPLE_ROWS = 8_192
_FEW_DISTINCT_SHARE = 0.05


def _few_distinct(arr: pa.Array | pa.ChunkedArray) -> bool:
    """Whether a long text column (labels, countries, campaigns) repeats few values in its first rows.

    Hashing a million strings and comparing them for min and max costs several times what one pass
    of Arrow's hash table finding the distinct values does when there are a few thousand of them;
    with mostly distinct values (ids) that table costs more than hashing, so it is used only here.
    """
    if len(arr) <= _UNIQUE_FIRST_ROWS or not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return False
    distinct: int = pc.count_distinct(arr.slice(0, _SAMPLE_ROWS)).as_py()
    return distinct <= _SAMPLE_ROWS * _FEW_DISTINCT_SHARE


@dataclass
class ColumnProfile:
    """Running figures for one column."""

    position: int
    types: list[str] = field(default_factory=list)
    rows: int = 0
    nulls: int = 0
    sketch: DistinctSketch | None = field(default_factory=DistinctSketch)
    min: Any = None
    max: Any = None

    def update(self, arr: pa.Array | pa.ChunkedArray, hashes: np.ndarray | None = None) -> None:
        """Fold one batch's values of this column in (``hashes``: its values' hashes, if known)."""
        type_name = str(arr.type)
        if type_name not in self.types:
            self.types.append(type_name)
        self.rows += len(arr)
        self.nulls += arr.null_count
        if hashes is None and _few_distinct(arr):
            # Hash, min and max of each distinct value once: the same sketch and range, a fraction of the work.
            arr = pc.unique(arr)
        if self.sketch is not None:
            if hashes is not None and arr.null_count:
                hashes = hashes[arr.is_valid().to_numpy(zero_copy_only=False)]
            hashes = hash_values(arr) if hashes is None else hashes
            if hashes is None:
                self.sketch = None
            else:
                self.sketch.add(hashes)
        self._update_range(arr)

    def _update_range(self, arr: pa.Array | pa.ChunkedArray) -> None:
        if pa.types.is_nested(arr.type) or pa.types.is_null(arr.type) or arr.null_count == len(arr):
            return
        if pa.types.is_dictionary(arr.type):
            arr = arr.cast(arr.type.value_type)
        try:
            bounds = pc.min_max(arr)
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
            return
        low, high = bounds["min"].as_py(), bounds["max"].as_py()
        try:
            self.min = low if self.min is None or low < self.min else self.min
            self.max = high if self.max is None or high > self.max else self.max
        except TypeError:
            # Batches typed differently (JSON lines): compare as text rather than give up.
            self.min = min(str(self.min), str(low))
            self.max = max(str(self.max), str(high))


class ProfileAccumulator:
    """Profiles a file batch by batch; memory does not grow with the number of rows."""

    def __init__(self) -> None:
        self.rows = 0
        self.columns: dict[str, ColumnProfile] = {}

    def update(self, batch: pa.RecordBatch, hashes: list[np.ndarray] | None = None) -> None:
        """Fold one record batch in; columns may appear in later batches only (JSON lines).

        ``hashes`` may give each column's value hashes (``analytics._kernels.column_hashes``) when the
        caller computed them already, so they are not computed twice.
        """
        for i, (name, arr) in enumerate(zip(batch.schema.names, batch.columns, strict=True)):
            profile = self.columns.get(name)
            if profile is None:
                profile = self.columns[name] = ColumnProfile(position=len(self.columns))
                # Rows of earlier batches that lacked this column are nulls of it.
                profile.rows = self.rows
                profile.nulls = self.rows
            profile.update(arr, None if hashes is None else hashes[i])
        for name, profile in self.columns.items():
            if name not in batch.schema.names:
                profile.rows += batch.num_rows
                profile.nulls += batch.num_rows
        self.rows += batch.num_rows

    def finish(self, source: SourceInfo) -> pa.Table:
        """The ``dataset_profiles`` rows for this file, one per column in file order."""
        records = []
        for name, p in self.columns.items():
            records.append(
                {
                    "source_id": source.source_id,
                    "dataset": source.dataset,
                    "column": name,
                    "position": p.position,
                    "type": " | ".join(p.types),
                    "rows": p.rows,
                    "nulls": p.nulls,
                    "null_share": p.nulls / p.rows if p.rows else None,
                    "distinct_estimate": p.sketch.estimate() if p.sketch is not None else None,
                    "distinct_is_exact": p.sketch.is_exact if p.sketch is not None else None,
                    "min": _format(p.min),
                    "max": _format(p.max),
                    "min_number": _number(p.min),
                    "max_number": _number(p.max),
                    "min_time": _time(p.min),
                    "max_time": _time(p.max),
                    "ingest_date": source.ingest_date,
                }
            )
        return pa.Table.from_pylist(records, schema=PROFILE_TABLE_SPEC.schema)


def profile_table(
    table: pa.Table,
    source: SourceInfo,
    hashes: Mapping[str, np.ndarray] | None = None,
    skip: frozenset[str] = frozenset(LINEAGE_COLUMNS),
) -> pa.Table:
    """The ``dataset_profiles`` rows of a whole file's clean rows (one per column but ``skip``'s, the
    lineage columns), the same figures :class:`ProfileAccumulator` gives batch by batch.

    ``hashes`` may give a column's value hashes (one per row, ``analytics._kernels.column_hashes``)
    that the pipeline computed already for its key. Columns are profiled whole and in parallel:
    hashing and min/max are kernels that release the GIL.
    """

    names = [n for n in table.column_names if n not in skip]
    known = hashes or {}
    profiles = {name: ColumnProfile(position=i) for i, name in enumerate(names)}
    # Text with no hashes given takes longest: it starts first, so the threads finish together.
    order = sorted(names, key=lambda n: not (pa.types.is_string(table.schema.field(n).type) and n not in known))
    in_parallel({name: partial(profiles[name].update, table.column(name), known.get(name)) for name in order})
    acc = ProfileAccumulator()
    acc.rows = table.num_rows
    acc.columns = profiles
    return acc.finish(source)
