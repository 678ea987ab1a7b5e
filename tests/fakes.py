"""Fakes over mocks: an in-memory OutputSink that behaves like the staging sink."""

from __future__ import annotations

import pyarrow as pa


class MemorySink:
    """Collects what a pipeline writes, per table, and its quarantined rows."""

    def __init__(self) -> None:
        self.written: dict[str, list[pa.Table]] = {}
        self.rejected: list[pa.Table] = []

    def write(self, table: str, data: pa.Table | pa.RecordBatch) -> None:
        if isinstance(data, pa.RecordBatch):
            data = pa.Table.from_batches([data])
        self.written.setdefault(table, []).append(data)

    def quarantine(self, rows: pa.Table | pa.RecordBatch) -> None:
        if isinstance(rows, pa.RecordBatch):
            rows = pa.Table.from_batches([rows])
        self.rejected.append(rows)

    def table(self, name: str) -> pa.Table:
        return pa.concat_tables(self.written[name])

    @property
    def quarantined_rows(self) -> int:
        return sum(t.num_rows for t in self.rejected)
