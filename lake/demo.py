"""``make demo``: the whole pipeline on one machine, as a newcomer first sees it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import topology
from analytics.registry import refreshers
from lake.athena import run_query
from lake.querying import render
from lake.runner import BatchOutcome, Runner
from lake.samples import write_demo_files
from lake.standin import Endpoints, StandIn, client, free_port
from lake.summary import summarize
from lake.target import resolve

#: What the demo asks of the curated tables at the end: (title, Athena SQL).
DEMO_QUERIES = [
    (
        "ad performance by channel (campaign_kpis)",
        "SELECT channel, count(DISTINCT campaign) AS campaigns, sum(clicks) AS clicks, round(sum(spend), 2) AS spend, "
        "round(sum(spend) / sum(conversions), 2) AS cpa, round(sum(revenue) / sum(spend), 2) AS roas "
        "FROM campaign_kpis GROUP BY channel ORDER BY spend DESC",
    ),
    (
        "A/B tests against their control (experiment_results)",
        "SELECT experiment_id, variant, users, round(conversion_rate, 4) AS conversion_rate, "
        "round(rel_lift, 3) AS rel_lift, round(p_value, 4) AS p_value, significant "
        "FROM experiment_results ORDER BY experiment_id, is_control DESC, variant",
    ),
    (
        "customer segments (KMeans on log-RFM) with their customers' averages",
        "SELECT s.segment_name, s.customers, round(s.share, 2) AS share, round(avg(r.recency_days)) AS recency_days, "
        "round(avg(r.orders), 1) AS orders, round(avg(r.total_amount), 2) AS spend "
        "FROM customer_segments s JOIN customer_rfm r ON r.segment_id = s.segment_id AND r.as_of = s.as_of "
        "GROUP BY 1, 2, 3 ORDER BY spend DESC",
    ),
]


#: How soon the demo's runner retries a failed message.
DEMO_RETRY_AFTER_SECONDS = 3


def wait_for_events(
    endpoints: Endpoints,
    expected: int,
    timeout_s: float,
    on_event: Callable[[dict[str, Any]], None],
    refreshed: frozenset[str] = frozenset(),
) -> list[dict[str, Any]]:
    """Read events from the example subscriber queue until ``expected`` per-file events arrived and
    every dataset in ``refreshed`` had a refresh event; the per-file ones are returned."""
    sqs = client("sqs", endpoints.endpoint_url, endpoints.region)
    seen: list[dict[str, Any]] = []
    models: set[str] = set()
    deadline = time.monotonic() + timeout_s
    while (len(seen) < expected or not refreshed <= models) and time.monotonic() < deadline:
        response = sqs.receive_message(
            QueueUrl=endpoints.subscriber_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        for message in response.get("Messages", []):
            event = json.loads(message["Body"])
            if event.get("detail-type") in (topology.DETAIL_TYPE_MODELS_UPDATED, topology.DETAIL_TYPE_MODELS_FAILED):
                models.add(str(event.get("detail", {}).get("dataset")))
            else:
                seen.append(event)
            on_event(event)
            sqs.delete_message(QueueUrl=endpoints.subscriber_queue_url, ReceiptHandle=message["ReceiptHandle"])
    return seen


def publish_example_model(folder: Path, s3: Any, bucket: str, out: Callable[[str], None]) -> None:
    """Train the example repeat-purchase model (examples/) and publish it under models/orders/."""
    script = Path(__file__).resolve().parent.parent / "examples" / "train_propensity_model.py"
    subprocess.run([sys.executable, str(script), str(folder), "--orders", "20000"], check=True, capture_output=True)
    for name in ("model.skops", "manifest.json"):
        s3.upload_file(str(folder / name), bucket, f"{topology.MODELS_PREFIX}orders/{name}")
    out(f"▶ published the example propensity model to s3://{bucket}/{topology.MODELS_PREFIX}orders/ (skops + manifest)")


def run_demo(workdir: Path, port: int | None = None, out: Callable[[str], None] = print) -> int:
    """Start the stand-in and runner, drop sample files, show events, query the curated tables; stop."""
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "worker.log"
    log.write_text("")
    # A message that fails for a passing reason (two files committing to one table at once) is
    # retried after a few seconds, within the demo's wait, instead of the deployed visibility timeout.
    queue = topology.DEFAULT.queue.on_stand_in().retrying_after(DEMO_RETRY_AFTER_SECONDS)
    refresh_queue = topology.DEFAULT.refresh.queue.retrying_after(DEMO_RETRY_AFTER_SECONDS)
    stand_in = StandIn(port=port or free_port(), queue=queue, refresh_queue=refresh_queue)
    out(f"▶ starting the local stand-in for AWS (moto server) on {stand_in.endpoint_url}")
    with stand_in as endpoints:
        topo = endpoints.topology
        out(f"  bucket s3://{topo.bucket}, queue {topo.queue_name} → DLQ {topo.dlq_name}, bus {topo.bus_name}")

        def progress(outcome: BatchOutcome) -> None:
            state = (
                f"error: {outcome.error}" if outcome.error else f"{outcome.succeeded} done, {outcome.failed} to retry"
            )
            out(f"  · {outcome.function} invocation with {outcome.records} record(s): {state}")

        with Runner(endpoints, log_path=str(log), listener=progress):
            out(
                f"▶ runner polling {topo.queue_name} (batch {topo.queue.batch_size}, "
                f"window {topo.queue.batching_window_seconds}s, {topo.queue.max_concurrency} workers; log: {log})"
            )
            files = write_demo_files(workdir / "samples")
            s3 = client("s3", endpoints.endpoint_url, endpoints.region)
            publish_example_model(workdir / "model", s3, topo.bucket, out)
            for dataset, path in files.items():
                key = f"{topology.RAW_PREFIX}{dataset.split('/')[0]}/{path.name}"
                s3.upload_file(str(path), topo.bucket, key)
                out(f"▶ uploaded {path.name} ({path.stat().st_size:,} bytes) to s3://{topo.bucket}/{key}")
            out("▶ waiting for completion events on the lake bus (example subscriber queue)…")
            out("  (orders also ask the refresh function to recompute RFM and segments over all orders)")
            events = wait_for_events(
                endpoints,
                len(files),
                timeout_s=180,
                on_event=lambda e: out("  " + summarize(e["detail"])),
                refreshed=frozenset(d.split("/")[0] for d in files if refreshers(d.split("/")[0])),
            )
        if len(events) < len(files):
            out(f"✘ only {len(events)} of {len(files)} completion events arrived; see {log}")
            return 1
        target = resolve(endpoint_url=endpoints.endpoint_url, region=endpoints.region)
        out(
            '▶ Athena SQL over the curated tables (DuckDB here; `lake query "SQL"` runs the same SQL on the '
            "stand-in or on Athena, `lake tables` lists the tables):"
        )
        for title, sql in DEMO_QUERIES:
            result = run_query(target, sql)
            out(f"  ◆ {title}")
            out(f"  {sql}")
            out(textwrap.indent(render(result), "    "))
    out("▶ stopped the runner and the stand-in. Done.")
    return 0


if __name__ == "__main__":
    sys.exit(run_demo(Path(".demo")))
