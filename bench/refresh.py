"""Benchmark of the refresh stage at scale (issue 10, "Scale"): the ``orders`` refresh over its whole history.

* Two lakes, each a stand-in (a moto server in a process of its own, since moto's state is per
  process): ``orders`` with 10,000,000 orders of 1,000,000 customers over 100 monthly files, and
  with 1,000,000 orders of the same customers over 100 files (fewer per customer). The files are
  committed as the per-file stage commits them (``IcebergTables.replace_source``: one commit per
  file into ``orders_sources``, then the keyed ``orders`` view the refresh reads): the point is the
  refresh, not ingestion, so the pipeline's parsing is skipped.
* Measured, each run a fresh process (peak RSS from ``os.wait4``): the refresh as the function
  runs it (``RefreshService.handle_body`` with the deployed memory size registered, so DuckDB gets
  its share), and the baseline: DuckDB computing the same per-customer aggregates (both refreshers'
  SQL) straight from the same Parquet files in the same S3. Interleaved, best time and worst RSS.
* Targets (issue 19): RSS(refresh 10M) / RSS(refresh 1M) <= 1.5; time(refresh 10M) / time(DuckDB 10M) <= 1.5.

``LAKE_BENCH_REFRESH_SCALE`` (default 1) scales orders and customers for a quick run (0.01: 100,000
orders); ``LAKE_BENCH_REFRESH_RUNS`` (default 2) sets the repetitions; generated files are kept
under ``LAKE_BENCH_DIR`` (default a temporary folder) and reused.

Run with ``make bench`` (or ``uv run python -m bench.refresh``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

FILES = 100
CUSTOMERS = 1_000_000
BIG_ORDERS = 10_000_000
SMALL_ORDERS = 1_000_000
FIRST_MONTH = dt.date(2018, 1, 1)
SEED = 20260110
#: Issue 19's targets (issue 10 asked 2 for both).
RSS_TARGET = 1.5
TIME_TARGET = 1.5
#: A customer's mean active span in the generated history, in months (files).
LIFETIME_MONTHS = 24
#: Shape of the Gamma spread of customers' purchase rates (BG/NBD's r) and of their dropout rates
#: (Pareto/NBD's s) around the mean: without a spread every active customer buys at one rate and
#: leaves at one rate, and BG/NBD's a and b run off to infinity (see :func:`generate`).
RATE_SHAPE = 1.0
DROPOUT_SHAPE = 2.0

#: What the per-file stage stages for ``orders``: the contract's columns, then the lineage.
ORDERS_STAGED = pa.schema(
    [
        ("order_id", pa.string()),
        ("customer_id", pa.string()),
        ("order_date", pa.date32()),
        ("amount", pa.float64()),
        ("quantity", pa.int64()),
        ("channel", pa.string()),
        ("country", pa.string()),
        ("source_id", pa.string()),
        ("order_month", pa.string()),
        ("source_key", pa.string()),
        ("source_version", pa.string()),
        ("ingested_at", pa.timestamp("us")),
    ]
)
CHANNELS = np.array(["web", "store", "app", "marketplace"])
COUNTRIES = np.array(["DE", "FR", "ES", "IT", "NL", "SE", "PL", "GB"])


def _month(index: int) -> dt.date:
    months = FIRST_MONTH.year * 12 + FIRST_MONTH.month - 1 + index
    return dt.date(months // 12, months % 12 + 1, 1)


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    text = pc.utf8_lpad(pa.array(numbers).cast(pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, text, "")


def generate(folder: Path, orders: int, customers: int, files: int = FILES) -> list[Path]:
    """``files`` monthly order exports as the per-file stage stages them, deterministically.

    The buying process is the one the CLV models assume, so the fit has something to find: each
    customer is active from a first month (uniform) for a lifetime that is exponential with a mean of
    its own (Gamma spread around :data:`LIFETIME_MONTHS`, shape :data:`DROPOUT_SHAPE`), and buys at a
    rate of its own (Gamma, shape :data:`RATE_SHAPE`): each order's customer is drawn from those
    active that month in proportion to their rates, and each month's order count is proportional to
    the active customers' summed rate, so a customer's rate does not depend on the month. (Version 2
    drew every order's customer uniformly from the active ones, with the same number of orders every
    month: every active customer bought at one rate, all left at one rate, and BG/NBD's a and b ran to
    their bound, the Beta mixing distribution collapsing to a point.) Order ids are numbered across
    files. Kept and reused when already there."""
    folder.mkdir(parents=True, exist_ok=True)
    done = folder / "complete.json"
    spec = {"orders": orders, "customers": customers, "files": files, "seed": SEED, "version": 3}
    paths = [folder / f"orders-{_month(i):%Y-%m}.parquet" for i in range(files)]
    if done.exists() and json.loads(done.read_text()) == spec:
        return paths
    population = np.random.default_rng([SEED, files])
    born = population.integers(0, files, customers)
    mean_life = LIFETIME_MONTHS * population.gamma(DROPOUT_SHAPE, 1.0 / DROPOUT_SHAPE, customers)
    gone = born + 1 + np.floor(population.exponential(mean_life)).astype(np.int64)
    rate = population.gamma(RATE_SHAPE, 1.0, customers)
    # Each month's share of the orders is its days times its active customers' summed rate (rounded
    # by largest remainder, so the files hold exactly ``orders``).
    joined = np.cumsum(np.bincount(born, rate, files))
    left = np.cumsum(np.bincount(np.minimum(gone, files), rate, files + 1)[:files])
    weight = (joined - left) * [(_month(i + 1) - _month(i)).days for i in range(files)]
    share = orders * weight / weight.sum()
    per_file = np.floor(share).astype(np.int64)
    per_file[np.argsort(per_file - share, kind="stable")[: orders - int(per_file.sum())]] += 1
    first_id = 0
    for index, (path, rows) in enumerate(zip(paths, per_file.tolist(), strict=True)):
        rng = np.random.default_rng([SEED, index])
        month = _month(index)
        days = (_month(index + 1) - month).days
        day0 = (month - dt.date(1970, 1, 1)).days
        key = f"raw/orders/orders-{month:%Y-%m}.csv"
        source_id = hashlib.sha256(f"{key}#v1".encode()).hexdigest()[:16]
        landed = dt.datetime.combine(_month(index + 1), dt.time(6))
        table = pa.table(
            {
                "order_id": _ids("SO-", np.arange(first_id, first_id + rows), 10),
                "customer_id": _ids("C", _pick(rng, (born <= index) & (index < gone), rate, rows), 7),
                "order_date": pa.array(day0 + rng.integers(0, days, rows), pa.int32()).cast(pa.date32()),
                "amount": pa.array(np.round(rng.lognormal(3.5, 0.8, rows), 2)),
                "quantity": pa.array(rng.integers(1, 6, rows)),
                "channel": pa.array(CHANNELS[rng.integers(0, len(CHANNELS), rows)]),
                "country": pa.array(COUNTRIES[rng.integers(0, len(COUNTRIES), rows)]),
                "source_id": pa.repeat(pa.scalar(source_id), rows),
                "order_month": pa.repeat(pa.scalar(f"{month:%Y-%m}"), rows),
                "source_key": pa.repeat(pa.scalar(key), rows),
                "source_version": pa.repeat(pa.scalar("v1"), rows),
                "ingested_at": pa.repeat(pa.scalar(landed, pa.timestamp("us")), rows),
            },
            schema=ORDERS_STAGED,
        )
        # As handlers.adapters.staging writes them: snappy, one row group per 128k rows or so.
        pq.write_table(table, path, compression="snappy", row_group_size=131_072)
        first_id += rows
    done.write_text(json.dumps(spec))
    return paths


def _pick(rng: np.random.Generator, active: np.ndarray, rate: np.ndarray, rows: int) -> np.ndarray:
    """``rows`` customer numbers drawn from the ``active`` ones in proportion to their ``rate``."""
    chosen = np.flatnonzero(active)
    cumulative = np.cumsum(rate[chosen])
    at = np.searchsorted(cumulative, rng.random(rows) * cumulative[-1], side="right")
    return chosen[np.minimum(at, len(chosen) - 1)]


# --- the lakes: a stand-in per process ------------------------------------------------------------
def serve() -> int:
    """Child: start a stand-in, print its refresh function's environment, serve until stdin closes."""
    from lake.standin.server import StandIn, free_port

    standin = StandIn(port=free_port())
    endpoints = standin.start()
    print(json.dumps(endpoints.refresh_env()), flush=True)
    try:
        sys.stdin.read()
    finally:
        standin.stop()
    return 0


@dataclass
class Lake:
    """A stand-in in a child process, and the environment a refresh function needs to reach it."""

    process: subprocess.Popen[str]
    env: dict[str, str]

    @classmethod
    def start(cls) -> Lake:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.refresh", "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"the stand-in did not start (exit {process.wait()})")
        return cls(process, json.loads(line))

    def stop(self) -> None:
        stdin: IO[str] | None = self.process.stdin
        if stdin is not None:
            stdin.close()
        self.process.wait(timeout=60)

    def register(self, files: list[Path]) -> list[str]:
        """Commit ``files`` as ``orders`` exports, one commit each as the per-file stage does, and
        put the keyed ``orders`` view; the data files' URIs in the table."""
        from analytics.orders import ORDERS
        from handlers.adapters.iceberg import StagedData, iceberg_athena_type
        from handlers.adapters.views import latest_by_key_sql, put_keyed_view
        from handlers.bootstrap import _store, clients
        from handlers.settings import Settings

        # Credentials and region (the same for every stand-in); the endpoint stays per lake.
        os.environ.update({k: v for k, v in self.env.items() if k.startswith("AWS_") and k != "AWS_ENDPOINT_URL"})
        settings = Settings.from_env(self.env)
        c = clients(settings)
        store = _store(settings, c)
        database = settings.curated_database
        import topology

        def refuse_retype(schema: pa.Schema) -> list[Path]:
            raise AssertionError(f"generated files do not match the table's schema: {schema}")

        for path in files:
            key = f"raw/orders/{path.stem}.csv"
            rows = pq.ParquetFile(path).metadata.num_rows
            staged = StagedData(ORDERS, ORDERS_STAGED, [path], rows)
            store.tables.replace_source(
                database, topology.CURATED_PREFIX, staged, key, hashlib.sha256(key.encode()).hexdigest()[:16],
                refuse_retype, {"lake.source-key": key}, replace=False,
            )  # fmt: skip
        table = store.tables.load(database, ORDERS.stored_name)
        assert table is not None
        columns = [(f.name, iceberg_athena_type(f.field_type)) for f in table.schema().fields]
        sql = latest_by_key_sql(database, ORDERS.stored_name, [n for n, _ in columns], ORDERS.key)
        put_keyed_view(c["glue"], database, ORDERS.name, sql, columns)
        return sorted(task.file.file_path for task in table.scan().plan_files())


# --- the measured children ------------------------------------------------------------------------
class _Context:
    """What the refresh function reads of Lambda's context: its memory size."""

    def __init__(self, memory_mb: int) -> None:
        self.memory_limit_in_mb = memory_mb


#: The customer-value facts whose status the refresh child reports.
CLV_FACTS = ("clv_bg_nbd", "clv_mbg_nbd", "clv_gamma_gamma")


def child_refresh() -> int:
    """Child: one refresh of ``orders`` as the refresh function runs it; prints what it did."""
    import topology
    from handlers.adapters.refresh_requests import RefreshRequest
    from handlers.bootstrap import build_refresh_service, clients
    from handlers.settings import Settings

    settings = Settings.from_env()
    # Forget the last refresh, or this one would find its inputs covered and skip.
    clients(settings)["dynamodb"].delete_item(
        TableName=settings.idempotency_table,
        Key={topology.IDEMPOTENCY_KEY_ATTRIBUTE: {"S": f"{topology.REFRESH_RECORD_PREFIX}orders"}},
    )
    service = build_refresh_service(settings)
    service.register_context(_Context(topology.DEFAULT.refresh.memory_mb))
    body = RefreshRequest(dataset="orders", snapshots={}, key="raw/orders/bench.csv", version="v1").body()
    t0 = time.perf_counter()
    detail = service.handle_body(body)
    seconds = time.perf_counter() - t0
    models = {m["name"]: m["metrics"] for m in detail.get("models", [])}
    print(
        json.dumps(
            {
                "seconds": seconds,
                "status": detail["status"],
                "error": detail.get("error"),
                "timings_ms": detail.get("timings_ms"),
                "customers": models.get("customer_segmentation", {}).get("customers"),
                "clv": {name: models.get(name, {}).get("status") for name in CLV_FACTS},
                "clv_model": models.get("clv_purchase_model", {}).get("model"),
                "outputs": {o["table"]: o["rows"] for o in detail.get("outputs", [])},
                "clv_message": models.get("clv_bg_nbd", {}).get("message"),
            }
        ),
        flush=True,
    )
    return 0 if detail["status"] == "succeeded" else 1


def child_duckdb(files_json: str) -> int:
    """Child: the baseline, DuckDB over the same Parquet files in the same S3 computing both
    refreshers' per-customer aggregates (the files hold each order once, so no deduplication)."""
    import duckdb
    import pyarrow.dataset as ds
    import sqlglot

    from analytics.history_refreshers import CUSTOMER_AGGREGATES_SQL
    from analytics.orders import CUSTOMER_FEATURES_SQL
    from handlers.settings import Settings
    from lake.standin.server import s3_filesystem

    settings = Settings.from_env()
    files = [uri.removeprefix("s3://") for uri in json.loads(Path(files_json).read_text())]
    t0 = time.perf_counter()
    dataset = ds.dataset(files, format="parquet", filesystem=s3_filesystem(settings.endpoint_url or ""))
    connection = duckdb.connect()
    connection.execute(f"SET memory_limit = '{int(3008 * 0.6)}MB'")
    connection.register("orders", dataset)
    # The refreshers' SQL is Athena's (date_add('day', n, d) and the like): DuckDB runs its translation.
    features_sql, aggregates_sql = (
        sqlglot.transpile(sql, read="athena", write="duckdb")[0]
        for sql in (CUSTOMER_FEATURES_SQL, CUSTOMER_AGGREGATES_SQL)
    )
    customers = connection.sql(features_sql).to_arrow_table().num_rows
    aggregates = connection.sql(aggregates_sql).to_arrow_table().num_rows
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "customers": customers, "aggregates": aggregates}), flush=True)
    return 0


@dataclass(frozen=True)
class Run:
    seconds: float
    wall: float
    rss_mb: float
    result: dict[str, Any]


def measure(args: list[str], env: dict[str, str]) -> Run:
    """Run ``python -m bench.refresh <args>`` in a fresh process; its own peak RSS from wait4."""
    t0 = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.refresh", *args], env={**os.environ, **env}, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - t0
    process.returncode = os.waitstatus_to_exitcode(status)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"bench child {args[0]} failed (exit {process.returncode}): {out[-2000:]}")
    result = json.loads(lines[-1])
    return Run(result["seconds"], wall, usage.ru_maxrss / 1024, result)  # ru_maxrss is in KiB on Linux


def main() -> int:
    scale = float(os.environ.get("LAKE_BENCH_REFRESH_SCALE", "1"))
    runs = int(os.environ.get("LAKE_BENCH_REFRESH_RUNS", "2"))
    work = Path(os.environ.get("LAKE_BENCH_DIR", tempfile.mkdtemp(prefix="lake-bench-")))
    customers = max(1, round(CUSTOMERS * scale))
    sizes = {"big": max(FILES, round(BIG_ORDERS * scale)), "small": max(FILES, round(SMALL_ORDERS * scale))}
    failures = 0

    def report(name: str, value: float, target: str, ok: bool) -> None:
        nonlocal failures
        failures += not ok
        print(f"{'PASS' if ok else 'MISS'}  {name}: {value:.3f} (target {target})", flush=True)

    print(
        f"# refresh of orders: {sizes['big']:,} vs {sizes['small']:,} orders of {customers:,} customers, "
        f"{FILES} files each (scale {scale:g}, {runs} runs each, interleaved)",
        flush=True,
    )
    lakes: dict[str, Lake] = {}
    uris: dict[str, Path] = {}
    try:
        for size, orders in sizes.items():
            t0 = time.perf_counter()
            files = generate(work / f"refresh-orders-{orders}-{customers}", orders, customers)
            t1 = time.perf_counter()
            lakes[size] = Lake.start()
            listed = lakes[size].register(files)
            uris[size] = work / f"refresh-{size}-files.json"
            uris[size].write_text(json.dumps(listed))
            megabytes = sum(p.stat().st_size for p in files) / 1e6
            print(
                f"  {size}: {orders:,} orders, {megabytes:.0f} MB of Parquet; generated in {t1 - t0:.1f}s, "
                f"committed ({len(files)} commits) in {time.perf_counter() - t1:.1f}s",
                flush=True,
            )
        results: dict[str, list[Run]] = {"refresh big": [], "refresh small": [], "duckdb big": [], "duckdb small": []}
        for _ in range(runs):
            for size in ("small", "big"):
                results[f"refresh {size}"].append(measure(["refresh"], lakes[size].env))
                results[f"duckdb {size}"].append(measure(["duckdb", str(uris[size])], lakes[size].env))
        for name, done in results.items():
            best = min(done, key=lambda r: r.seconds)
            print(
                f"  {name}: {best.seconds:.2f}s (process {best.wall:.2f}s), peak RSS "
                f"{max(r.rss_mb for r in done):.0f} MB; {json.dumps(best.result, sort_keys=True)}",
                flush=True,
            )
        rss = max(r.rss_mb for r in results["refresh big"]) / max(r.rss_mb for r in results["refresh small"])
        report("peak RSS refresh 10M / refresh 1M", rss, f"<= {RSS_TARGET:g}", rss <= RSS_TARGET)
        ratio = min(r.seconds for r in results["refresh big"]) / min(r.seconds for r in results["duckdb big"])
        report("time refresh 10M / DuckDB aggregates 10M", ratio, f"<= {TIME_TARGET:g}", ratio <= TIME_TARGET)
    finally:
        for lake in lakes.values():
            lake.stop()
    return 1 if failures else 0


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "main"
    if command == "serve":
        sys.exit(serve())
    if command == "refresh":
        sys.exit(child_refresh())
    if command == "duckdb":
        sys.exit(child_duckdb(sys.argv[2]))
    sys.exit(main())
