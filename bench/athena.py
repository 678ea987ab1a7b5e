"""Benchmark of issue 19: reading a refresh's per-customer rows back from Athena.

The refresh's Athena path runs each query as ``UNLOAD ... WITH (format = 'PARQUET')`` and reads the
Parquet back (:func:`query.athena.read_unloaded`); before, it paged ``GetQueryResults``, 1,000 rows
of text a page, and typed the text. Both are timed in the same process on the same rows (the
columns ``orders``' features query returns): the Parquet as UNLOAD writes it (a few files), the
pages as Athena serves them, built beforehand and served from memory, so only the reading is timed.
Interleaved, best of three each. Target: Parquet ≤ 0.2× the pages' time at 1,000,000 rows.

``LAKE_BENCH_ATHENA_ROWS`` sets the rows (the pages of 1,000,000 rows take about 1.5 GB of Python
objects; a smaller figure for a shared machine). Run with ``uv run python -m bench.athena``.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import sys
import time
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from query.athena import AthenaEngine, read_unloaded

#: Athena writes an UNLOAD in parallel: a few files, not one.
UNLOAD_FILES = 4


def features(rows: int, seed: int = 0) -> pa.Table:
    """Per-customer rows shaped as ``orders``' features query returns them."""
    rng = np.random.default_rng(seed)
    first = dt.date(2024, 1, 1).toordinal() + rng.integers(0, 365, rows)
    start = np.array([dt.date.fromordinal(int(d)) for d in first], dtype="datetime64[D]")
    return pa.table(
        {
            "customer_id": pa.array([f"c{i:08d}" for i in range(rows)]),
            "first_order_date": pa.array(start),
            "last_order_date": pa.array(start + rng.integers(0, 365, rows).astype("timedelta64[D]")),
            "orders": pa.array(rng.integers(1, 40, rows)),
            "order_days": pa.array(rng.integers(1, 30, rows)),
            "total_amount": pa.array(rng.gamma(2.0, 60.0, rows).round(2)),
        }
    )


def unloaded(table: pa.Table) -> list[bytes]:
    """``table`` as the Parquet files UNLOAD writes."""
    parts = []
    step = -(-table.num_rows // UNLOAD_FILES)
    for start in range(0, table.num_rows, step):
        buffer = io.BytesIO()
        pq.write_table(table.slice(start, step), buffer, compression="snappy")
        parts.append(buffer.getvalue())
    return parts


class Pages:
    """GetQueryResults of one query, every page built beforehand (served from memory)."""

    def __init__(self, table: pa.Table) -> None:
        kinds = ["varchar", "date", "date", "bigint", "bigint", "double"]
        info = [{"Name": n, "Type": k} for n, k in zip(table.column_names, kinds, strict=True)]
        rows = [[None if v is None else str(v) for v in row.values()] for row in table.to_pylist()]
        rows.insert(0, list(table.column_names))
        self.pages: list[dict[str, Any]] = []
        for start in range(0, len(rows), 1000):
            data = [
                {"Data": [{"VarCharValue": v} if v is not None else {} for v in row]}
                for row in rows[start : start + 1000]
            ]
            page: dict[str, Any] = {"ResultSet": {"ResultSetMetadata": {"ColumnInfo": info}, "Rows": data}}
            if start + 1000 < len(rows):
                page["NextToken"] = str(start + 1000)
            self.pages.append(page)

    def get_query_results(self, QueryExecutionId: str, MaxResults: int, NextToken: str = "0") -> dict[str, Any]:
        return self.pages[int(NextToken) // 1000]


def main() -> int:
    rows = int(os.environ.get("LAKE_BENCH_ATHENA_ROWS", "1000000"))
    table = features(rows)
    parts = unloaded(table)
    pages = Pages(table)
    engine = AthenaEngine(pages, "bench", "bench")
    print(f"# {rows:,} per-customer rows read back: Parquet as UNLOAD writes it vs GetQueryResults pages, best of 3")
    parquet_s, pages_s = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        from_parquet = read_unloaded(parts)
        parquet_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        from_pages = engine._pages("bench")
        pages_s.append(time.perf_counter() - t0)
        assert from_parquet.num_rows == from_pages.num_rows == rows
    ratio = min(parquet_s) / min(pages_s)
    print(f"  Parquet {min(parquet_s):.3f}s, pages {min(pages_s):.3f}s")
    ok = ratio <= 0.2
    print(f"{'PASS' if ok else 'MISS'}  time ratio Parquet/pages: {ratio:.3f} (target <= 0.2)", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
