"""Benchmark of a daily ``ad_performance`` refresh (issue 19, item 5): one new day on a 365-day history
against a full refresh of the same history.

* One lake, a stand-in in a process of its own: 60 campaigns over 365 days of ad exports (two ad groups
  a campaign-day), processed by the per-file function as files are: days 1–364 in one export, day 365
  in the next.
* Measured, each run a fresh process running the refresh as the function runs it
  (``RefreshService.handle_body``, the deployed memory size registered):
  - **full**: no model tables yet (dropped before the run): every day scored and written;
  - **daily**: the model tables hold a snapshot as of day 364 (written before the run from
    ``kpi_history`` over days 1–364, as the refresh that day would have): day 365 scored and written.
  Interleaved, best time of each.
* Target: time(daily) / time(full) <= 0.2.
* Also printed: the refresh process's CPU seconds (user + system, DuckDB's threads included; the
  stand-in's, which plays S3 and Glue, not), steadier than wall time on a shared machine.

``LAKE_BENCH_DAILY_CAMPAIGNS`` (default 60) and ``LAKE_BENCH_DAILY_RUNS`` (default 3) size it.
Run with ``make bench`` (or ``uv run python -m bench.daily``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from typing import IO, Any

import numpy as np

DAYS = 365
FIRST_DAY = dt.date(2025, 1, 1)
SEED = 20261206
TARGET = 0.2
HEADER = "date,channel,campaign,ad_group,impressions,clicks,spend,conversions,revenue"
DATASET = "ad_performance"


def generate(campaigns: int) -> dict[dt.date, list[str]]:
    """CSV lines per day: each campaign in two ad groups, a weekly rhythm, noise and the odd spike."""
    rng = np.random.default_rng(SEED)
    base = rng.uniform(50, 500, campaigns)
    out: dict[dt.date, list[str]] = {}
    for d in range(DAYS):
        day = FIRST_DAY + dt.timedelta(d)
        weekly = 0.6 if day.weekday() >= 5 else 1.0
        lines = []
        for c in range(campaigns):
            spend = base[c] * weekly * (1 + rng.normal(0, 0.08)) * (3.0 if rng.random() < 0.01 else 1.0)
            for group in ("g1", "g2"):
                half = max(spend / 2, 0.01)
                impressions = int(half * rng.uniform(80, 120))
                clicks = int(impressions * rng.uniform(0.02, 0.04))
                conversions = int(clicks * rng.uniform(0.05, 0.15))
                channel = ("google", "meta", "tiktok")[c % 3]
                lines.append(
                    f"{day.isoformat()},{channel},campaign-{c:03d},{group},{impressions},{clicks},{half:.2f},"
                    f"{conversions},{half * rng.uniform(2, 6):.2f}"
                )
        out[day] = lines
    return out


# --- the lake: a stand-in in a child process ------------------------------------------------------
def serve() -> int:
    """Child: start a stand-in, print both functions' environments, serve until stdin closes."""
    from lake.standin.server import StandIn, free_port

    standin = StandIn(port=free_port())
    endpoints = standin.start()
    print(
        json.dumps(
            {
                "handler": endpoints.handler_env(),
                "refresh": endpoints.refresh_env(),
                "queue_url": endpoints.queue_url,
                "queue_arn": endpoints.queue_arn,
                "region": endpoints.region,
            }
        ),
        flush=True,
    )
    try:
        sys.stdin.read()
    finally:
        standin.stop()
    return 0


def _child(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    process = subprocess.run(
        [sys.executable, "-m", "bench.daily", *args],
        check=False,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        text=True,
    )
    lines = process.stdout.strip().splitlines()
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"bench.daily {' '.join(args)} failed (exit {process.returncode}): {process.stdout}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def child_ingest(campaigns: int) -> int:
    """Child: put the two exports into raw/ and run the per-file function on what the S3 rule routed."""
    import boto3

    from handlers import process
    from lake.standin.runner import LocalContext, lambda_sqs_event

    env = json.loads(os.environ["LAKE_BENCH_DAILY_LAKE"])
    days = generate(campaigns)
    ordered = sorted(days)
    s3 = boto3.client("s3", endpoint_url=env["handler"]["AWS_ENDPOINT_URL"], region_name=env["region"])
    sqs = boto3.client("sqs", endpoint_url=env["handler"]["AWS_ENDPOINT_URL"], region_name=env["region"])
    bucket = env["refresh"]["LAKE_BUCKET"]
    files = {"history": ordered[:-1], "day": ordered[-1:]}
    for name, chosen in files.items():
        body = "\n".join([HEADER, *(line for day in chosen for line in days[day])]) + "\n"
        s3.put_object(Bucket=bucket, Key=f"raw/{DATASET}/{name}.csv", Body=body.encode())
        messages: list[Any] = []
        for _ in range(30):
            messages += sqs.receive_message(
                QueueUrl=env["queue_url"], WaitTimeSeconds=1, MaxNumberOfMessages=10, AttributeNames=["All"]
            ).get("Messages", [])
            if messages:
                break
        event = lambda_sqs_event(messages, env["queue_arn"], env["region"])
        response = process.lambda_handler(event, LocalContext("lake-processor", 600_000, 3008, env["region"]))
        if response["batchItemFailures"]:
            raise RuntimeError(f"processing {name}.csv failed: {response}")
        for message in messages:
            sqs.delete_message(QueueUrl=env["queue_url"], ReceiptHandle=message["ReceiptHandle"])
    print(json.dumps({"days": len(ordered), "campaigns": campaigns}), flush=True)
    return 0


def child_prepare(mode: str, campaigns: int) -> int:
    """Child: drop the model tables and forget the last refresh; for ``daily``, write the snapshot a
    refresh as of day 364 writes (kpi_history over days 1–364, its current views)."""
    import pyarrow as pa

    import topology
    from analytics.kpi_history import CAMPAIGN_KPIS_HISTORY, KPI_ANOMALIES_HISTORY, kpi_history
    from handlers.bootstrap import _store, clients
    from handlers.settings import Settings

    settings = Settings.from_env()
    c = clients(settings)
    store = _store(settings, c)
    c["dynamodb"].delete_item(
        TableName=settings.idempotency_table,
        Key={topology.IDEMPOTENCY_KEY_ATTRIBUTE: {"S": f"{topology.REFRESH_RECORD_PREFIX}{DATASET}"}},
    )
    for spec in (KPI_ANOMALIES_HISTORY, CAMPAIGN_KPIS_HISTORY):
        if store.tables.load(settings.curated_database, spec.stored_name) is not None:
            store.tables.catalog.drop_table((settings.curated_database, spec.stored_name))
    if mode == "daily":
        days = generate(campaigns)
        sums: dict[tuple[str, str, str], list[float]] = {}
        for day in sorted(days)[:-1]:
            for line in days[day]:
                date, channel, campaign, _, *values = line.split(",")
                total = sums.setdefault((date, channel, campaign), [0.0] * 5)
                for i, v in enumerate(values):
                    total[i] += float(v)
        names = ("impressions", "clicks", "spend", "conversions", "revenue")
        daily = pa.Table.from_pylist(
            [
                {"date": dt.date.fromisoformat(d), "channel": ch, "campaign": ca, **dict(zip(names, v, strict=True))}
                for (d, ch, ca), v in sums.items()
            ]
        )
        as_of = sorted(days)[-2]
        history = kpi_history(daily, as_of)
        for spec, rows in ((CAMPAIGN_KPIS_HISTORY, history.kpis), (KPI_ANOMALIES_HISTORY, history.anomalies)):
            store.tables.replace_partition(settings.curated_database, topology.CURATED_PREFIX, spec, rows, as_of, {})
            store.put_current_view(spec)
    print(json.dumps({"prepared": mode}), flush=True)
    return 0


class _Context:
    """What the refresh function reads of Lambda's context: its memory size."""

    def __init__(self, memory_mb: int) -> None:
        self.memory_limit_in_mb = memory_mb


def _cpu() -> float:
    """This process's CPU seconds so far, every thread's, user and system."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child_refresh() -> int:
    """Child: one refresh of ``ad_performance`` as the refresh function runs it; prints what it did."""
    import topology
    from handlers.adapters.refresh_requests import RefreshRequest
    from handlers.bootstrap import build_refresh_service
    from handlers.settings import Settings

    service = build_refresh_service(Settings.from_env())
    service.register_context(_Context(topology.DEFAULT.refresh.memory_mb))
    body = RefreshRequest(dataset=DATASET, snapshots={}, key=f"raw/{DATASET}/day.csv", version="v1").body()
    t0, c0 = time.perf_counter(), _cpu()
    detail = service.handle_body(body)
    seconds, cpu = time.perf_counter() - t0, _cpu() - c0
    facts = {m["name"]: m["metrics"] for m in detail.get("models", [])}.get("kpi_anomalies_history", {})
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu,
                "status": detail["status"],
                "error": detail.get("error"),
                "scored_from": facts.get("scored_from"),
                "campaign_days": facts.get("campaign_days"),
                "timings_ms": detail.get("timings_ms"),
            }
        ),
        flush=True,
    )
    return 0 if detail["status"] == "succeeded" else 1


def main() -> int:
    campaigns = int(os.environ.get("LAKE_BENCH_DAILY_CAMPAIGNS", "60"))
    runs = int(os.environ.get("LAKE_BENCH_DAILY_RUNS", "3"))
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.daily", "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"the stand-in did not start (exit {process.wait()})")
    lake = json.loads(line)
    handler_env = {**lake["handler"], "LAKE_BENCH_DAILY_LAKE": line.strip()}
    refresh_env = lake["refresh"]
    try:
        t0 = time.perf_counter()
        _child(["ingest", str(campaigns)], handler_env)
        print(f"{campaigns} campaigns × {DAYS} days ingested in {time.perf_counter() - t0:.1f} s", flush=True)
        best: dict[str, float] = {}
        for run in range(runs):
            for mode in ("full", "daily") if run % 2 == 0 else ("daily", "full"):
                _child(["prepare", mode, str(campaigns)], refresh_env)
                result = _child(["refresh"], refresh_env)
                if result["status"] != "succeeded":
                    raise RuntimeError(f"{mode} refresh: {result}")
                print(
                    f"  {mode:5s} run {run + 1}: {result['seconds']:.2f} s ({result['cpu_seconds']:.2f} s CPU), "
                    f"scored from {result['scored_from']}, "
                    f"{result['campaign_days']} campaign-days written; timings {result['timings_ms']}",
                    flush=True,
                )
                best[mode] = min(best.get(mode, float("inf")), result["seconds"])
                best[f"{mode}_cpu"] = min(best.get(f"{mode}_cpu", float("inf")), result["cpu_seconds"])
                timings = result["timings_ms"]
                stage = (timings["kpi_history"] + timings["kpi_history_commit"]) / 1000
                best[f"{mode}_stage"] = min(best.get(f"{mode}_stage", float("inf")), stage)
    finally:
        stdin: IO[str] | None = process.stdin
        if stdin is not None:
            stdin.close()
        process.wait(timeout=60)
    ratio = best["daily"] / best["full"]
    ok = ratio <= TARGET
    print(
        f"daily refresh (1 new day) {best['daily']:.2f} s / full refresh ({DAYS} days) {best['full']:.2f} s = "
        f"{ratio:.2f} (target <= {TARGET}) {'ok' if ok else 'MISSED'}",
        flush=True,
    )
    print(
        f"  CPU of the refresh process: daily {best['daily_cpu']:.2f} s / full {best['full_cpu']:.2f} s = "
        f"{best['daily_cpu'] / best['full_cpu']:.2f}",
        flush=True,
    )
    # Apart from the fixed costs of every refresh (pinning, drawing the dataset's report), what the
    # refresher itself costs: its SQL, the scoring and the commit of the model tables.
    stage = best["daily_stage"] / best["full_stage"]
    print(
        f"  the refresher alone (SQL, scoring, commit): daily {best['daily_stage']:.2f} s / full "
        f"{best['full_stage']:.2f} s = {stage:.2f}",
        flush=True,
    )
    return 0 if ok else 1


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "main"
    if command == "serve":
        sys.exit(serve())
    if command == "ingest":
        sys.exit(child_ingest(int(sys.argv[2])))
    if command == "prepare":
        sys.exit(child_prepare(sys.argv[2], int(sys.argv[3])))
    if command == "refresh":
        sys.exit(child_refresh())
    sys.exit(main())
