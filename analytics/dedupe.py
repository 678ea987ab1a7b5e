"""Exact-duplicate detection across a stream of batches: 8 bytes per distinct row, plus a 16 MB filter.

Rows are reduced to 64-bit hashes (:func:`analytics._kernels.row_hashes`, computed straight from
the Arrow buffers). A row is a duplicate when its hash was seen before: with 64-bit
hashes the chance of any false match among ten million distinct rows is about 3e-6. Seen hashes
live in sorted numpy runs behind a presence filter (a flag per top 24 bits of the hash): most new
rows are told apart by one flag lookup, the rest by ``searchsorted``; runs are merged now and then.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


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
