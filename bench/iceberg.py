"""Benchmarks of the Iceberg tables (issue 9), on the local stand-in (a moto server in this process).

* Throughput: the generic pipeline from a 1,000,000-row CSV to an Iceberg table (staging, upload and
  the commit included) against plain pyarrow ``read_csv`` + ``write_table`` of the same file to the
  same storage (the stand-in's S3), interleaved, best of three each.
* Replace cost: replacing one source in a table of 10 sources and in a table of 100 sources (the
  same source size): the time should follow the source, not the table.
* Commit throughput: small files of one dataset committed by 2 and by 8 concurrent workers (as
  Lambda instances would), files per second; conflicts are retried by pyiceberg.

Run with ``make bench`` (or ``uv run python -m bench.iceberg``).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from bench.generic import write_events_csv


class Lake:
    """A stand-in with the topology provisioned, a store wired to it, and a way to commit a local file."""

    def __init__(self) -> None:
        from handlers.adapters.store import LakeStore
        from handlers.bootstrap import clients
        from handlers.settings import Settings
        from lake.standin.server import StandIn, free_port
        from query.catalog import glue_catalog

        self.standin = StandIn(port=free_port())
        endpoints = self.standin.start()
        os.environ.update(endpoints.handler_env())
        self.endpoint_url = endpoints.endpoint_url
        self.settings = Settings.from_env()
        self.clients = clients(self.settings)

        def store(committer: str = "direct") -> LakeStore:
            """A worker's store; ``committer``: grouped (as deployed), direct (one commit per file)
            or none (the commit step a no-op: the ceiling grouping is measured against)."""
            from handlers.adapters.committer import DirectCommitter, GroupCommitter

            c = clients(self.settings, own=True)  # one set of clients per worker, as per Lambda instance
            chosen = {
                "grouped": lambda: GroupCommitter(
                    c["s3"], c["dynamodb"], self.settings.bucket, self.settings.idempotency_table
                ),
                "direct": DirectCommitter,
                "none": NoCommit,
            }[committer]()
            return LakeStore(
                c["s3"], c["glue"], self.settings.bucket, self.settings.curated_database,
                self.settings.quarantine_database, catalog=glue_catalog(c["glue"], self.settings.region,
                                                                        self.settings.endpoint_url),
                committer=chosen,
            )  # fmt: skip

        self.new_store = store

    def commit(self, store: Any, csv_path: Path, dataset: str, key: str, replace: bool = True) -> int:
        """Pipeline + staging + commit of one local CSV as raw key ``key``: rows committed."""
        from analytics.base import SourceInfo
        from analytics.generic import GenericPipeline
        from handlers.adapters.reader import SourceReader
        from handlers.adapters.staging import Lineage, StagingSink

        landed = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        lineage = Lineage(key, "v1", f"bench-{abs(hash(key)) % 10**8}", landed)
        pipeline = GenericPipeline(dataset)
        source = SourceInfo(dataset, lineage.source_id, key, landed.date())
        with StagingSink(list(pipeline.tables(source)), lineage=lineage) as sink:
            reader = SourceReader(key, "csv", functools.partial(open, csv_path, "rb"))
            pipeline.run(reader.batches(), source, sink)
            # The key's table is named as one it may hold rows of, so each rerun replaces them.
            earlier = [f"lake_curated.{dataset}"] if replace else []
            committed, _ = store.commit_outputs(sink, None, dataset, earlier, {"lake.source-key": key})
        return int(committed[0].rows)

    def baseline(self, csv_path: Path, n: int) -> float:
        """pyarrow read_csv + write_table of the file to the stand-in's S3."""
        from lake.cli.tables import s3_filesystem

        fs = s3_filesystem(self.endpoint_url, self.settings.region)
        t0 = time.perf_counter()
        table = pacsv.read_csv(csv_path)
        pq.write_table(table, f"{self.settings.bucket}/baseline/events-{n}.parquet", filesystem=fs)
        return time.perf_counter() - t0

    def stop(self) -> None:
        self.standin.stop()


class NoCommit:
    """The commit step replaced by a no-op (files staged and uploaded, never committed)."""

    def commit(self, table: Any, intent: Any, *, fresh: bool = True) -> Any:
        from handlers.adapters.committer import Outcome

        return Outcome("committed", None)


def burst(
    lake: Lake, csv: Path, dataset: str, files: int, workers: int, committer: str, lanes: int
) -> dict[str, float]:
    """``files`` small files of one dataset staged and committed by ``workers`` threads (as Lambda
    instances), each with its own clients and committer; files/s, commits per file, give-ups."""
    store = lake.new_store()
    keys = [f"raw/{dataset}/f-{n:04d}.csv" for n in range(files)]
    stores: list[Any] = [None] * workers
    errors: list[Exception] = []
    table = store.tables.load("lake_curated", dataset)
    before = len(table.snapshots()) if table is not None else 0

    def one(index: int, key: str) -> None:
        for _attempt in range(5):  # as SQS would redeliver a file whose commit gave up
            try:
                lake.commit(stores[index], csv, dataset, key, replace=False)
                return
            except Exception as exc:  # counted below
                errors.append(exc)

    def work(index: int) -> None:
        # An instance takes batches of 10 and runs their records in ``lanes`` threads, as the handler
        # does (handlers.process.ConcurrentBatch; 1: one record after the other, as before grouping).
        from concurrent.futures import ThreadPoolExecutor

        mine = keys[index::workers]
        for start in range(0, len(mine), 10):
            with ThreadPoolExecutor(lanes) as pool:
                list(pool.map(lambda key: one(index, key), mine[start : start + 10]))

    # Each instance its own process (its own interpreter, as Lambda instances are), forked from this
    # one; the stand-in keeps serving from this process. Each reports how many attempts failed.
    import multiprocessing

    fork = multiprocessing.get_context("fork")
    failed = fork.Queue()

    def instance(index: int) -> None:
        stores[index] = lake.new_store(committer)  # clients of its own, made after the fork
        work(index)
        failed.put(len(errors))

    t0 = time.perf_counter()
    processes = [fork.Process(target=instance, args=(i,)) for i in range(workers)]
    for process in processes:
        process.start()
    errors_seen = sum(failed.get() for _ in processes)
    for process in processes:
        process.join()
    elapsed = time.perf_counter() - t0
    table = store.tables.load("lake_curated", dataset)
    assert table is not None
    commits = len(table.snapshots()) - before
    return {"files/s": files / elapsed, "seconds": elapsed, "commits": commits, "gave up": errors_seen}


def small_csv(path: Path, rows: int, seed: int) -> Path:
    write_events_csv(path, rows, seed=seed)
    return path


def main() -> int:
    logging.getLogger("pyiceberg").setLevel(logging.ERROR)
    work = Path(os.environ.get("LAKE_BENCH_DIR", tempfile.mkdtemp(prefix="lake-bench-")))
    work.mkdir(parents=True, exist_ok=True)
    failures = 0

    def report(name: str, value: float, target: str, ok: bool) -> None:
        nonlocal failures
        failures += not ok
        print(f"{'PASS' if ok else 'MISS'}  {name}: {value:.3f} (target {target})", flush=True)

    lake = Lake()
    try:
        store = lake.new_store()
        print("# generic CSV -> Iceberg table vs pyarrow read_csv + write_table to the same S3, 1,000,000 rows")
        csv_1m = work / "events-1m.csv"
        size = write_events_csv(csv_1m, 1_000_000)
        base_runs, our_runs = [], []
        for n in range(3):
            base_runs.append(lake.baseline(csv_1m, n))
            t0 = time.perf_counter()
            rows = lake.commit(store, csv_1m, "events", "raw/events/big.csv")
            our_runs.append(time.perf_counter() - t0)
        base, ours = min(base_runs), min(our_runs)
        print(
            f"  file {size / 1e6:.1f} MB; baseline {base:.2f}s; ours {ours:.2f}s ({rows:,} rows, a replace of the "
            "same key each run)"
        )
        report("throughput ratio Iceberg pipeline/pyarrow", base / ours, ">= 0.7", base / ours >= 0.7)
        csv_1m.unlink(missing_ok=True)

        print("# replacing one 20,000-row source in a table of 10 sources vs 100 sources")
        part = small_csv(work / "part.csv", 20_000, seed=3)
        timings = {}
        for sources in (10, 100):
            dataset = f"replace_{sources}"
            for n in range(sources):
                lake.commit(store, part, dataset, f"raw/{dataset}/part-{n:03d}.csv")
            runs = []
            for _ in range(3):
                t0 = time.perf_counter()
                lake.commit(store, part, dataset, f"raw/{dataset}/part-005.csv")
                runs.append(time.perf_counter() - t0)
            timings[sources] = min(runs)
            print(f"  {sources} sources: replace {timings[sources]:.2f}s")
        ratio = timings[100] / timings[10]
        report("replace time 100 sources / 10 sources", ratio, "<= 1.2 (grows with the source, not the table)",
               ratio <= 1.2)  # fmt: skip

        print("# a burst: 200 small files (1,000 rows) into one table by 8 workers: grouped commits vs the")
        print("# commit step as a no-op vs one commit per file as before grouping (60 files, records one at a time)")
        tiny = small_csv(work / "tiny.csv", 1_000, seed=4)
        results: dict[str, dict[str, float]] = {}
        from handlers.process import RECORD_THREADS

        for committer, files, lanes in (("grouped", 200, RECORD_THREADS), ("none", 200, RECORD_THREADS),
                                        ("direct", 60, 1)):  # fmt: skip
            dataset = f"burst_{committer}"
            lake.commit(store, tiny, dataset, f"raw/{dataset}/seed.csv")  # the table exists, as in steady state
            results[committer] = r = burst(lake, tiny, dataset, files, 8, committer, lanes)
            print(
                f"  {committer:8s} {r['files/s']:.2f} files/s ({files} files in {r['seconds']:.1f}s), "
                f"{r['commits']:.0f} commits ({r['commits'] / files:.2f} per file), {r['gave up']:.0f} gave up"
            )
            if committer != "none":
                rows = store.tables.load("lake_curated", dataset).scan().to_arrow().num_rows
                failures += rows != (files + 1) * 1000
        grouped = results["grouped"]
        report("grouped / no-op commit, files/s", grouped["files/s"] / results["none"]["files/s"], ">= 0.8",
               grouped["files/s"] / results["none"]["files/s"] >= 0.8)  # fmt: skip
        report("grouped / one commit per file, files/s", grouped["files/s"] / results["direct"]["files/s"], ">= 5",
               grouped["files/s"] / results["direct"]["files/s"] >= 5)  # fmt: skip
        report("grouped: commits per file", grouped["commits"] / 200, "<= 0.2", grouped["commits"] / 200 <= 0.2)
        report("grouped: commits given up", grouped["gave up"], "== 0", grouped["gave up"] == 0)

        print("# one file at a time on an idle lake: staging + commit, grouped vs one commit per file, interleaved")
        latencies: dict[str, list[float]] = {"grouped": [], "direct": []}
        stores = {name: lake.new_store(name) for name in latencies}
        for name in latencies:
            lake.commit(store, tiny, f"single_{name}", f"raw/single_{name}/seed.csv")
        for n in range(15):
            for name, runs in latencies.items():
                t0 = time.perf_counter()
                lake.commit(stores[name], tiny, f"single_{name}", f"raw/single_{name}/f-{n:03d}.csv", replace=False)
                runs.append(time.perf_counter() - t0)
        p50 = {name: sorted(runs)[len(runs) // 2] for name, runs in latencies.items()}
        print(f"  p50 grouped {p50['grouped'] * 1000:.0f} ms, one commit per file {p50['direct'] * 1000:.0f} ms")
        report("single file p50, grouped / one commit per file", p50["grouped"] / p50["direct"], "<= 1.1",
               p50["grouped"] / p50["direct"] <= 1.1)  # fmt: skip
    finally:
        lake.stop()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
