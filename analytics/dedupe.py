"""Exact-duplicate detection across a stream of batches with memory of 8 bytes per distinct row.

Rows are reduced to 64-bit hashes (pandas' SipHash-based ``hash_pandas_object``); a row is a
duplicate when its hash was seen before. With 64-bit hashes the chance of any false match among
ten million distinct rows is about 3e-6. Seen hashes live in sorted numpy runs merged like a
binary counter, so lookups are ``searchsorted`` and inserts amortise to O(n log n).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa


def row_hashes(batch: pa.RecordBatch | pa.Table) -> np.ndarray:
    """One uint64 hash per row, equal for rows with equal values in every column."""
    frame = batch.to_pandas(types_mapper=None)
    return pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)


class SeenRows:
    """Remembers row hashes; tells which rows of a new batch were never seen."""

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []

    def __len__(self) -> int:
        return sum(len(run) for run in self._runs)

    def first_seen(self, hashes: np.ndarray) -> np.ndarray:
        """Boolean mask of rows to keep: first occurrence in this batch and not seen before."""
        keep = np.zeros(len(hashes), dtype=bool)
        if not len(hashes):
            return keep
        unique, first_index = np.unique(hashes, return_index=True)
        fresh = np.ones(len(unique), dtype=bool)
        for run in self._runs:
            pos = np.searchsorted(run, unique)
            pos[pos == len(run)] = 0
            fresh &= run[pos] != unique
        keep[first_index[fresh]] = True
        self._add(unique[fresh])
        return keep

    def _add(self, sorted_new: np.ndarray) -> None:
        if not len(sorted_new):
            return
        run = sorted_new
        # Merge while the newest run is at least as large as the one before (binary-counter merging).
        while self._runs and len(self._runs[-1]) <= len(run):
            run = np.concatenate([self._runs.pop(), run])
            run.sort(kind="mergesort")
        self._runs.append(run)
