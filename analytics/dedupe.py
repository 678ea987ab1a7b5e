"""Exact-duplicate detection across a stream of batches: 8 bytes per distinct row, plus a 16 MB filter.

Rows are reduced to 64-bit hashes computed straight from the Arrow buffers with numpy (strings are
read eight bytes at a time and mixed with the splitmix64 finaliser), about five times faster than
pandas' ``hash_pandas_object``. A row is a duplicate when its hash was seen before: with 64-bit
hashes the chance of any false match among ten million distinct rows is about 3e-6. Seen hashes
live in sorted numpy runs behind a presence filter (a flag per top 24 bits of the hash): most new
rows are told apart by one flag lookup, the rest by ``searchsorted``; runs are merged now and then.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_NULL = np.uint64(0x6A09E667F3BCC909)
#: Strings longer than this are hashed by pandas (a byte matrix this wide would cost more).
_MAX_WORDS = 16


#: _BYTE_MASKS[k] keeps the first k bytes (little-endian) of a word.
_BYTE_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], dtype=np.uint64)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit affects every output bit."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _string_hashes(values: pa.Array) -> np.ndarray:
    n = len(values)
    _, offsets_buffer, data_buffer = values.buffers()
    offset_type = np.int64 if pa.types.is_large_string(values.type) else np.int32
    offsets = np.frombuffer(offsets_buffer, dtype=offset_type)[values.offset : values.offset + n + 1].astype(np.int64)
    lengths = np.diff(offsets)
    words = int((lengths.max(initial=0) + 7) // 8)
    if words > _MAX_WORDS:
        return pd.util.hash_array(np.asarray(values.to_numpy(zero_copy_only=False), dtype=object))
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    padded = np.concatenate([data, np.zeros(8 * words + 8, np.uint8)])
    # A view of every (unaligned) 8-byte window of the data: one gather reads a whole word.
    windows = np.ndarray(shape=(len(padded) - 7,), dtype="<u8", buffer=padded, strides=(1,))
    starts = offsets[:-1]
    hashes = lengths.astype(np.uint64) * _GOLDEN
    for w in range(words):
        valid = np.clip(lengths - 8 * w, 0, 8)
        word = windows[starts + 8 * w] & _BYTE_MASKS[valid]
        hashes = _mix(hashes ^ word)
    return hashes


def column_hashes(values: pa.Array) -> np.ndarray:
    """One uint64 hash per value; equal values (and all nulls) hash alike."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    nulls = values.is_null().to_numpy(zero_copy_only=False) if values.null_count else None
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        hashes = _string_hashes(values)
    elif pa.types.is_boolean(values.type):
        hashes = _mix(values.fill_null(False).to_numpy(zero_copy_only=False).astype(np.uint64) + np.uint64(1))
    elif pa.types.is_floating(values.type):
        floats = values.cast(pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False)
        hashes = _mix(floats.view(np.uint64))
    elif pa.types.is_integer(values.type) or pa.types.is_temporal(values.type):
        if pa.types.is_temporal(values.type):  # dates and times are integers underneath
            values = values.view(pa.int32() if values.type.bit_width == 32 else pa.int64())
        ints = pc.cast(values.fill_null(0), pa.int64())
        hashes = _mix(np.asarray(ints.to_numpy(zero_copy_only=False)).view(np.uint64))
    else:
        hashes = pd.util.hash_array(np.asarray(values.cast(pa.string()).to_numpy(zero_copy_only=False), dtype=object))
    if nulls is not None:
        hashes = np.where(nulls, _NULL, hashes)
    return hashes


def row_hashes(batch: pa.RecordBatch | pa.Table, columns: list[np.ndarray] | None = None) -> np.ndarray:
    """One uint64 hash per row, equal for rows with equal values in every column.

    ``columns`` may give the per-column hashes when they were computed already.
    """
    hashes = np.zeros(batch.num_rows, dtype=np.uint64)
    for column in columns if columns is not None else (column_hashes(c) for c in batch.columns):
        hashes = _mix(hashes * _GOLDEN ^ column)
    return hashes


class SeenRows:
    """Remembers row hashes; tells which rows of a new batch were never seen."""

    #: Sorted runs kept before they are merged into one.
    MAX_RUNS = 24
    #: Top bits of a hash that index the presence filter (2^24 flags: 16 MB, whatever the file size).
    FILTER_BITS = 24

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []
        # A presence filter in front of the sorted runs: a hash whose flag is unset was never seen,
        # which spares most binary searches (each a few cache misses in a large run).
        self._flags = np.zeros(1 << self.FILTER_BITS, dtype=bool)
        self._shift = np.uint64(64 - self.FILTER_BITS)

    def __len__(self) -> int:
        return sum(len(run) for run in self._runs)

    def first_seen(self, hashes: np.ndarray) -> np.ndarray:
        """Boolean mask of rows to keep: first occurrence in this batch and not seen before."""
        if not len(hashes):
            return np.zeros(0, dtype=bool)
        # First occurrence within the batch: pandas' hash table is O(n), far cheaper than sorting.
        keep = ~pd.Series(hashes, copy=False).duplicated(keep="first").to_numpy()
        candidates = hashes[keep]
        # Sorted queries keep searchsorted cache-friendly (unsorted ones cost five times more).
        ordered = np.sort(candidates)
        found = np.zeros(len(ordered), dtype=bool)
        maybe = np.flatnonzero(self._flags[ordered >> self._shift])
        if len(maybe):
            queries = ordered[maybe]
            hits = np.zeros(len(queries), dtype=bool)
            for run in self._runs:
                pos = np.searchsorted(run, queries)
                pos[pos == len(run)] = 0
                hits |= run[pos] == queries
            found[maybe] = hits
        if found.any():
            keep[np.flatnonzero(keep)[np.isin(candidates, ordered[found])]] = False
            ordered = ordered[~found]
        self._add(ordered)
        return keep

    def _add(self, sorted_new: np.ndarray) -> None:
        if not len(sorted_new):
            return
        self._flags[sorted_new >> self._shift] = True
        self._runs.append(sorted_new)
        # The presence filter keeps most lookups away from the runs, so many small runs cost little;
        # merging them only now and then saves most of the sorting a binary-counter merge would do.
        if len(self._runs) > self.MAX_RUNS:
            merged = np.concatenate(self._runs)
            merged.sort(kind="stable")  # timsort/radix: cheap on a concatenation of sorted runs
            self._runs = [merged]
