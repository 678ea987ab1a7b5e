"""Benchmarks of issue 17: what recognising layouts costs the generic path, and how fast a workbook reads.

- The generic pipeline on the 1,000,000-row CSV of ``bench.generic`` with layout detection (header,
  summary rows, footers) against the same reader with detection off, interleaved, best of seven
  each (target: detection adds ≤ 5% wall time; the CPU time ratio is printed too).
- A 100,000-row ``.xlsx`` against the same rows as CSV, each read whole through ``SourceReader``
  (target: the workbook reads at ≥ 0.5× the CSV's rows per second). The workbook is checked to read
  as the CSV's text cell for cell, and the parsers alone (pyarrow's ``read_csv``, fastexcel's
  ``load_sheet``) are timed beside, since fastexcel's own parse bounds the ratio.

Run with ``uv run python -m bench.layout`` (``make bench`` runs it among the others).
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.csv as pacsv
import xlsxwriter

from bench.generic import write_events_csv


def _opener(path: Path) -> Callable[[], IO[bytes]]:
    def open_binary() -> IO[bytes]:
        return path.open("rb")  # the reader closes it

    return open_binary


def pipeline_seconds(csv_path: Path, *, detect_layout: bool = True, fmt: str = "csv") -> tuple[float, float]:
    """The generic pipeline from a local CSV to staged local Parquet, with or without layout detection:
    wall seconds, and CPU seconds of the process (all threads; less shaken by other processes)."""
    from analytics.base import SourceInfo
    from analytics.generic import GenericPipeline
    from handlers.adapters.reader import ReadOptions, SourceReader
    from handlers.adapters.staging import StagingSink

    t0, c0 = time.perf_counter(), time.process_time()
    pipeline = GenericPipeline("events")
    source = SourceInfo("events", "bench", f"raw/events/{csv_path.name}", dt.date(2026, 1, 1))
    with StagingSink(list(pipeline.tables(source))) as sink:
        options = ReadOptions(detect_layout=detect_layout)
        reader = SourceReader(source.key, fmt, _opener(csv_path), options)
        pipeline.run(reader.batches(), source, sink)
        sink.close_writers()
    return time.perf_counter() - t0, time.process_time() - c0


def read_seconds(path: Path, fmt: str, *, keep: list[pa.RecordBatch] | None = None) -> tuple[float, int]:
    """Every batch of a local file through ``SourceReader``; seconds and rows."""
    from handlers.adapters.reader import SourceReader

    t0 = time.perf_counter()
    reader = SourceReader(f"raw/events/{path.name}", fmt, _opener(path))
    if keep is None:
        rows = sum(batch.num_rows for batch in reader.batches())
    else:  # the batches themselves, to compare
        keep.extend(reader.batches())
        rows = sum(batch.num_rows for batch in keep)
    return time.perf_counter() - t0, rows


def write_xlsx(csv_path: Path, xlsx_path: Path) -> None:
    """The CSV's rows as a workbook a spreadsheet tool would save: numbers as numbers, date-times as
    date-time cells, text as text (ids keep their leading zeros), in shared strings as Excel saves."""
    # Ids are text (``00448882``); inferred as numbers they would lose their zeros and not be the same rows.
    table = pacsv.read_csv(csv_path, convert_options=pacsv.ConvertOptions(column_types={"user_id": pa.string()}))
    book = xlsxwriter.Workbook(str(xlsx_path), {"default_date_format": "yyyy-mm-dd hh:mm:ss"})
    sheet = book.add_worksheet("Events")
    sheet.write_row(0, 0, table.column_names)
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    for r, row in enumerate(zip(*columns, strict=True), start=1):
        sheet.write_row(r, 0, row)
    book.close()


def read_table(path: Path, fmt: str) -> pa.Table:
    """Every row of a local file through ``SourceReader``, as one table."""
    batches: list[pa.RecordBatch] = []
    read_seconds(path, fmt, keep=batches)
    return pa.Table.from_batches(batches)


def parse_seconds(csv_path: Path, xlsx_path: Path) -> tuple[float, float]:
    """What bounds the ratio: pyarrow's own read of the CSV and fastexcel's own load of the sheet (the
    zip inflated, its XML parsed, the cells as Arrow text), with none of the reader's work."""
    import fastexcel

    t0 = time.perf_counter()
    pacsv.read_csv(csv_path, read_options=pacsv.ReadOptions(use_threads=False))
    t1 = time.perf_counter()
    fastexcel.read_excel(str(xlsx_path)).load_sheet(0, header_row=None, dtypes="string", eager=True)
    return t1 - t0, time.perf_counter() - t1


def main() -> int:
    work = Path(os.environ.get("LAKE_BENCH_DIR", tempfile.mkdtemp(prefix="lake-bench-")))
    work.mkdir(parents=True, exist_ok=True)
    failures = 0

    def report(name: str, value: float, target: str, ok: bool) -> None:
        nonlocal failures
        failures += not ok
        print(f"{'PASS' if ok else 'MISS'}  {name}: {value:.3f} (target {target})", flush=True)

    print("# generic pipeline with layout detection vs without, 1,000,000 rows, interleaved, best of 7")
    csv_1m = work / "events-1m.csv"
    write_events_csv(csv_1m, 1_000_000)
    plain, detected = [], []
    for _ in range(7):
        plain.append(pipeline_seconds(csv_1m, detect_layout=False))
        detected.append(pipeline_seconds(csv_1m, detect_layout=True))
    # The machine is shared: each pair ran back to back, so the median of the pairs' ratios is what
    # detection adds, whatever else ran meanwhile.
    wall = statistics.median(d[0] / p[0] for p, d in zip(plain, detected, strict=True))
    cpu = statistics.median(d[1] / p[1] for p, d in zip(plain, detected, strict=True))
    print(
        f"  without {min(w for w, _ in plain):.2f}s wall {min(c for _, c in plain):.2f}s CPU; "
        f"with {min(w for w, _ in detected):.2f}s wall {min(c for _, c in detected):.2f}s CPU (best of 7 each); "
        f"median ratio of the 7 pairs: wall {wall:.3f}, CPU {cpu:.3f}"
    )
    report("time ratio with/without layout detection (median of pairs)", wall, "<= 1.05", wall <= 1.05)
    csv_1m.unlink(missing_ok=True)

    print("# 100,000-row .xlsx vs the same rows as CSV, read through SourceReader, interleaved, best of 3")
    csv_100k, xlsx_100k = work / "events-100k.csv", work / "events-100k.xlsx"
    write_events_csv(csv_100k, 100_000, seed=3)
    write_xlsx(csv_100k, xlsx_100k)
    # The same rows: the workbook reads as the very text the CSV holds, cell for cell.
    assert read_table(xlsx_100k, "xlsx").equals(read_table(csv_100k, "csv")), "the workbook reads other values"
    csv_runs, xlsx_runs, parse_runs = [], [], []
    for _ in range(3):
        csv_runs.append(read_seconds(csv_100k, "csv"))
        xlsx_runs.append(read_seconds(xlsx_100k, "xlsx"))
        parse_runs.append(parse_seconds(csv_100k, xlsx_100k))
    (csv_s, csv_rows), (xlsx_s, xlsx_rows) = min(csv_runs), min(xlsx_runs)
    assert csv_rows == xlsx_rows == 100_000, (csv_rows, xlsx_rows)
    print(
        f"  csv {csv_100k.stat().st_size / 1e6:.1f} MB {csv_s:.3f}s ({csv_rows / csv_s:,.0f} rows/s); "
        f"xlsx {xlsx_100k.stat().st_size / 1e6:.1f} MB {xlsx_s:.3f}s ({xlsx_rows / xlsx_s:,.0f} rows/s)"
    )
    arrow_s, fastexcel_s = min(p[0] for p in parse_runs), min(p[1] for p in parse_runs)
    print(
        f"  the parsers alone: pyarrow read_csv {arrow_s:.3f}s, fastexcel load_sheet {fastexcel_s:.3f}s; "
        f"the best ratio fastexcel allows, SourceReader's CSV time over fastexcel's alone: {csv_s / fastexcel_s:.3f}"
    )
    report("speed ratio xlsx/csv", csv_s / xlsx_s, ">= 0.5", csv_s / xlsx_s >= 0.5)
    # What a user waits for: the whole generic path (read, clean, type, stage Parquet).
    csv_whole = min(pipeline_seconds(csv_100k)[0] for _ in range(3))
    xlsx_whole = min(pipeline_seconds(xlsx_100k, fmt="xlsx")[0] for _ in range(3))
    print(f"  whole generic path: csv {csv_whole:.2f}s, xlsx {xlsx_whole:.2f}s, ratio {csv_whole / xlsx_whole:.3f}")
    for path in (csv_100k, xlsx_100k):
        path.unlink(missing_ok=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
