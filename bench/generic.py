"""Benchmarks of issue 2: handler import time, generic-pipeline throughput, peak memory.

Every figure is a ratio against a baseline measured in the same run on the same machine, so a
noisy, shared machine changes both sides alike. Run with ``make bench`` (or
``uv run python -m bench.generic``).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

EAGER_IMPORTS = (
    "import boto3, pandas, pyarrow, pyarrow.parquet, pyarrow.csv, numpy, scipy, scipy.stats, "
    "sklearn, sklearn.cluster, sklearn.ensemble, aws_lambda_powertools, skops.io"
)


def write_events_csv(path: Path, rows: int, seed: int = 0, chunk: int = 250_000) -> int:
    """A realistic event export (~75 bytes a row), every row distinct; returns the file size."""
    rng = np.random.default_rng(seed)
    countries = np.array(["DE", "FR", "US", "GB", "ES", "IT", "NL", "PL"])
    channels = np.array(["search", "social", "email", "display", "affiliate"])
    start = np.datetime64("2026-01-01T00:00:00")
    with pacsv.CSVWriter(
        str(path),
        pa.schema(
            [
                ("event_id", pa.int64()),
                ("user_id", pa.string()),
                ("event_time", pa.string()),
                ("country", pa.string()),
                ("channel", pa.string()),
                ("amount", pa.float64()),
                ("quantity", pa.int64()),
                ("converted", pa.string()),
            ]
        ),
    ) as writer:
        for offset in range(0, rows, chunk):
            n = min(chunk, rows - offset)
            seconds = rng.integers(0, 300 * 86400, n)
            times = (start + seconds.astype("timedelta64[s]")).astype(str)
            table = pa.table(
                {
                    "event_id": np.arange(offset, offset + n, dtype=np.int64),
                    "user_id": pa.array(np.char.zfill(rng.integers(0, 2_000_000, n).astype(str), 8)),
                    "event_time": pa.array(np.char.replace(times, "T", " ")),
                    "country": pa.array(countries[rng.integers(0, len(countries), n)]),
                    "channel": pa.array(channels[rng.integers(0, len(channels), n)]),
                    "amount": np.round(rng.gamma(2.0, 30.0, n), 2),
                    "quantity": rng.integers(1, 10, n),
                    "converted": pa.array(np.where(rng.random(n) < 0.1, "yes", "no")),
                }
            )
            writer.write_table(table)
    return path.stat().st_size


def baseline_seconds(csv_path: Path, out: Path) -> float:
    """Plain pyarrow: read the CSV (type inference, threads) and write Parquet."""
    t0 = time.perf_counter()
    table = pacsv.read_csv(csv_path)
    pq.write_table(table, out)
    return time.perf_counter() - t0


def pipeline_seconds(csv_path: Path) -> tuple[float, int]:
    """Our generic pipeline from the same local file to staged local Parquet (the Lambda's /tmp)."""
    from analytics.base import SourceInfo
    from analytics.generic import GenericPipeline
    from handlers.adapters.reader import SourceReader
    from handlers.adapters.staging import StagingSink

    t0 = time.perf_counter()
    pipeline = GenericPipeline("events")
    source = SourceInfo("events", "bench", f"raw/events/{csv_path.name}", dt.date(2026, 1, 1))
    with StagingSink(list(pipeline.tables(source))) as sink:
        reader = SourceReader(source.key, "csv", functools.partial(open, csv_path, "rb"))
        pipeline.run(reader.batches(), source, sink)
        sink.close_writers()
        rows = sum(t.total_rows for t in sink.tables.values())
    return time.perf_counter() - t0, rows


def import_seconds(statement: str, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", statement], check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def peak_rss_mb(csv_path: Path) -> float:
    """Peak resident memory of a fresh process running the pipeline over ``csv_path``."""
    code = (
        "import sys, json, resource; from pathlib import Path; from bench.generic import pipeline_seconds; "
        "s, rows = pipeline_seconds(Path(sys.argv[1])); "
        "print(json.dumps({'rss_kb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, 'rows': rows}))"
    )
    output = subprocess.run([sys.executable, "-c", code, str(csv_path)], check=True, capture_output=True, text=True)
    return float(json.loads(output.stdout.strip().splitlines()[-1])["rss_kb"]) / 1024


def main() -> int:
    work = Path(os.environ.get("LAKE_BENCH_DIR", tempfile.mkdtemp(prefix="lake-bench-")))
    work.mkdir(parents=True, exist_ok=True)
    failures = 0

    def report(name: str, value: float, target: str, ok: bool) -> None:
        nonlocal failures
        failures += not ok
        print(f"{'PASS' if ok else 'MISS'}  {name}: {value:.3f} (target {target})", flush=True)

    print("# import time of handlers.process vs all runtime dependencies, fresh processes (median of 5)")
    light = import_seconds("import handlers.process")
    eager = import_seconds(EAGER_IMPORTS)
    print(f"  handlers.process {light:.3f}s, eager {eager:.3f}s")
    report("import ratio handler/eager", light / eager, "<= 0.333", light / eager <= 1 / 3)

    print("# generic pipeline vs pyarrow read_csv + write_table, 1,000,000 rows, local files both sides")
    csv_1m = work / "events-1m.csv"
    size = write_events_csv(csv_1m, 1_000_000)
    # Interleaved runs, best of five each: both sides see the same machine, whatever else runs on it.
    base_runs, our_runs = [], []
    for _ in range(5):
        base_runs.append(baseline_seconds(csv_1m, work / "baseline.parquet"))
        our_runs.append(pipeline_seconds(csv_1m))
    base = min(base_runs)
    ours, rows = min(our_runs)
    print(
        f"  file {size / 1e6:.1f} MB; baseline {base:.2f}s ({size / 1e6 / base:.0f} MB/s); "
        f"pipeline {ours:.2f}s ({size / 1e6 / ours:.0f} MB/s), {rows:,} rows out"
    )
    report("throughput ratio pipeline/baseline", base / ours, ">= 0.6", base / ours >= 0.6)

    print("# peak RSS of the pipeline: 1 GB CSV vs 100 MB CSV, fresh processes")
    small, large = work / "events-100mb.csv", work / "events-1gb.csv"
    small_size = write_events_csv(small, 1_330_000, seed=1)
    large_size = write_events_csv(large, 13_300_000, seed=2)
    rss_small, rss_large = peak_rss_mb(small), peak_rss_mb(large)
    print(
        f"  {small_size / 1e6:.0f} MB -> {rss_small:.0f} MB peak; {large_size / 1e6:.0f} MB -> {rss_large:.0f} MB peak"
    )
    report("peak RSS ratio 1GB/100MB", rss_large / rss_small, "<= 1.5", rss_large / rss_small <= 1.5)
    for path in (csv_1m, small, large):
        path.unlink(missing_ok=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
