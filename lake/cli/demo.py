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

import pyarrow as pa

import topology
from analytics.registry import refreshers
from lake.cli.querying import render
from lake.cli.samples import write_demo_files, write_next_month_orders
from lake.cli.summary import summarize
from lake.engine import run_query
from lake.standin.runner import BatchOutcome, Runner
from lake.standin.server import Endpoints, StandIn, client, free_port
from lake.standin.state import StateDir, StateError
from lake.target import Target, resolve

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
        "customer segments (KMeans on log-RFM) at each as_of, with their customers' averages",
        "SELECT s.as_of, s.segment_name, s.customers, round(s.share, 2) AS share, "
        "round(avg(r.recency_days)) AS recency_days, round(avg(r.orders), 1) AS orders, "
        "round(avg(r.total_amount), 2) AS spend "
        "FROM customer_segments s JOIN customer_rfm r ON r.segment_id = s.segment_id AND r.as_of = s.as_of "
        "GROUP BY 1, 2, 3, 4 ORDER BY as_of, spend DESC",
    ),
]

#: What becomes of each customer from one ``customer_rfm`` snapshot to the next; ``{before}`` and
#: ``{after}`` are the two as_of dates.
MOVES_SUMMARY_SQL = (
    "SELECT count(*) AS customers, count_if(a.customer_id IS NULL) AS new_customers, "
    "count_if(b.last_order_date > a.as_of) AS ordered_again, count_if(b.last_order_date <= a.as_of) AS no_new_order, "
    "count_if(a.segment_name <> b.segment_name) AS changed_segment "
    "FROM customer_rfm b LEFT JOIN customer_rfm a ON a.customer_id = b.customer_id AND a.as_of = DATE '{before}' "
    "WHERE b.as_of = DATE '{after}'"
)


#: How soon the demo's runner retries a failed message.
DEMO_RETRY_AFTER_SECONDS = 3
#: How long the demo waits, in all, for the events of its files and refreshes.
DEMO_TIMEOUT_SECONDS = 240


class EventWatch:
    """The example subscriber queue, read as a person watching the lake: every completion event is
    shown as it comes and kept, per-file and refresh events apart."""

    def __init__(self, endpoints: Endpoints, on_event: Callable[[dict[str, Any]], None]) -> None:
        self._sqs = client("sqs", endpoints.endpoint_url, endpoints.region)
        self._queue_url = endpoints.subscriber_queue_url
        self._on_event = on_event
        #: Details of ``Dataset Processed`` / ``Dataset Processing Failed``, in arrival order.
        self.files: list[dict[str, Any]] = []
        #: Details of ``Dataset Models Updated`` / ``Dataset Models Failed``, in arrival order.
        self.refreshes: list[dict[str, Any]] = []

    def refresh_for(self, dataset: str, key: str | None = None) -> dict[str, Any] | None:
        """The newest refresh event of ``dataset`` (that a request of raw object ``key`` led to)."""
        for detail in reversed(self.refreshes):
            asked = {str(r.get("key")) for r in detail.get("requested_by", [])}
            if detail.get("dataset") == dataset and (key is None or key in asked):
                return detail
        return None

    def wait(self, done: Callable[[], bool], deadline: float) -> bool:
        """Read events until ``done()`` holds (True) or ``deadline`` (``time.monotonic()``) passes."""
        while not done():
            if time.monotonic() >= deadline:
                return False
            response = self._sqs.receive_message(QueueUrl=self._queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            for message in response.get("Messages", []):
                event = json.loads(message["Body"])
                refresh = event.get("detail-type") in (
                    topology.DETAIL_TYPE_MODELS_UPDATED,
                    topology.DETAIL_TYPE_MODELS_FAILED,
                )
                (self.refreshes if refresh else self.files).append(event.get("detail", {}))
                self._on_event(event)
                self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
        return True


def rfm_as_of(refresh: dict[str, Any] | None) -> str | None:
    """The as_of of the ``customer_rfm`` snapshot a succeeded orders refresh wrote, if any."""
    if refresh is None or refresh.get("status") != "succeeded":
        return None
    return next((str(o["as_of"]) for o in refresh.get("outputs", []) if o.get("table") == "customer_rfm"), None)


def moves_sql(target: Target, before: str, after: str) -> str:
    """Athena SQL: customers by their segment at ``before`` (rows) and at ``after`` (columns).

    The columns are the segments that exist at ``after`` (KMeans picks k at each as_of); customers
    who had no order by ``before`` form the row "(new customer)".
    """
    names = run_query(
        target, f"SELECT segment_name FROM customer_segments WHERE as_of = DATE '{after}' ORDER BY segment_id"
    ).column("segment_name")
    counts = ", ".join(f"count_if(b.segment_name = '{n}') AS \"{n}\"" for n in names.to_pylist())
    return (
        f"SELECT coalesce(a.segment_name, '(new customer)') AS \"segment on {before}\", {counts}, "
        "count(*) AS customers "
        f"FROM customer_rfm b LEFT JOIN customer_rfm a ON a.customer_id = b.customer_id AND a.as_of = DATE '{before}' "
        f"WHERE b.as_of = DATE '{after}' GROUP BY 1 ORDER BY coalesce(min(a.segment_id), 99)"
    )


def publish_example_model(folder: Path, s3: Any, bucket: str, out: Callable[[str], None]) -> None:
    """Train the example repeat-purchase model (examples/) and publish it under models/orders/."""
    script = Path(__file__).resolve().parents[2] / "examples" / "train_propensity_model.py"
    subprocess.run([sys.executable, str(script), str(folder), "--orders", "20000"], check=True, capture_output=True)
    for name in ("model.skops", "manifest.json"):
        s3.upload_file(str(folder / name), bucket, f"{topology.MODELS_PREFIX}orders/{name}")
    out(f"▶ published the example propensity model to s3://{bucket}/{topology.MODELS_PREFIX}orders/ (skops + manifest)")


def run_demo(
    workdir: Path, port: int | None = None, out: Callable[[str], None] = print, state_dir: Path | None = None
) -> int:
    """Start the stand-in and runner, drop sample files and a second month of orders, show events,
    query the curated tables and the customers' segment moves; stop. With ``state_dir`` the lake is
    saved there at the end (``lake up --state-dir`` brings it back); ``StateError`` if it holds one."""
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "worker.log"
    log.write_text("")
    kept = StateDir(state_dir) if state_dir is not None else None
    if kept is not None and kept.header() is not None:
        raise StateError(
            f"{kept.state_file} already holds a lake, which the demo would overwrite; give the demo an empty "
            "--state-dir (or move that file away)"
        )
    # A message that fails for a passing reason (two files committing to one table at once) is
    # retried after a few seconds, within the demo's wait, instead of the deployed visibility timeout.
    queue = topology.DEFAULT.queue.on_stand_in().retrying_after(DEMO_RETRY_AFTER_SECONDS)
    refresh_queue = topology.DEFAULT.refresh.queue.retrying_after(DEMO_RETRY_AFTER_SECONDS)
    stand_in = StandIn(port=port or free_port(), queue=queue, refresh_queue=refresh_queue, state_dir=kept)
    out(f"▶ starting the local stand-in for AWS (moto server) on {stand_in.endpoint_url}")
    with stand_in as endpoints:
        topo = endpoints.topology
        out(f"  bucket s3://{topo.bucket}, queue {topo.queue_name} → DLQ {topo.dlq_name}, bus {topo.bus_name}")

        def progress(outcome: BatchOutcome) -> None:
            state = (
                f"error: {outcome.error}" if outcome.error else f"{outcome.succeeded} done, {outcome.failed} to retry"
            )
            out(f"  · {outcome.function} invocation with {outcome.records} record(s): {state}")

        def raw_key(dataset: str, path: Path) -> str:
            return f"{topology.RAW_PREFIX}{dataset.split('/', maxsplit=1)[0]}/{path.name}"

        with Runner(endpoints, log_path=str(log), listener=progress):
            out(
                f"▶ runner polling {topo.queue_name} (batch {topo.queue.batch_size}, "
                f"window {topo.queue.batching_window_seconds}s, {topo.queue.max_concurrency} workers; log: {log})"
            )
            files = write_demo_files(workdir / "samples")
            s3 = client("s3", endpoints.endpoint_url, endpoints.region)
            publish_example_model(workdir / "model", s3, topo.bucket, out)
            for dataset, path in files.items():
                key = raw_key(dataset, path)
                s3.upload_file(str(path), topo.bucket, key)
                out(f"▶ uploaded {path.name} ({path.stat().st_size:,} bytes) to s3://{topo.bucket}/{key}")
            out("▶ waiting for completion events on the lake bus (example subscriber queue)…")
            out("  (orders also ask the refresh function to recompute RFM and segments over all orders)")
            watch = EventWatch(endpoints, on_event=lambda e: out("  " + summarize(e["detail"])))
            deadline = time.monotonic() + DEMO_TIMEOUT_SECONDS
            first_key = raw_key("orders", files["orders"])
            # The next month lands once the first refresh is announced: together, the two requests
            # would collapse into one refresh and the first as_of would never be written.
            watch.wait(lambda: watch.refresh_for("orders", first_key) is not None, deadline)
            month = write_next_month_orders(workdir / "samples")
            next_key = raw_key("orders", month)
            s3.upload_file(str(month), topo.bucket, next_key)
            out(
                f"▶ a month later: uploaded {month.name} ({month.stat().st_size:,} bytes) to s3://{topo.bucket}/"
                f"{next_key}; its refresh recomputes RFM and segments over both exports"
            )
            refreshed = {d.split("/")[0] for d in files if refreshers(d.split("/")[0])}
            watch.wait(
                lambda: (
                    len(watch.files) >= len(files) + 1
                    and all(watch.refresh_for(d) is not None for d in refreshed)
                    and watch.refresh_for("orders", next_key) is not None
                ),
                deadline,
            )
        if len(watch.files) < len(files) + 1:
            out(f"✘ only {len(watch.files)} of {len(files) + 1} completion events arrived; see {log}")
            return 1
        before, after = (
            rfm_as_of(watch.refresh_for("orders", first_key)),
            rfm_as_of(watch.refresh_for("orders", next_key)),
        )
        if before is None or after is None:
            out(f"✘ the orders refreshes did not both write customer_rfm (see the ⟳ lines above and {log})")
            return 1
        target = resolve(endpoint_url=endpoints.endpoint_url, region=endpoints.region)
        out(
            '▶ Athena SQL over the curated tables (DuckDB here; `lake query "SQL"` runs the same SQL on the '
            "stand-in or on Athena, `lake tables` lists the tables):"
        )
        for title, sql in [
            *DEMO_QUERIES,
            (f"customers by segment on {before} (rows) and on {after} (columns)", moves_sql(target, before, after)),
        ]:
            show_query(target, title, sql, out)
        summary = show_query(
            target,
            f"what became of each customer from {before} to {after}",
            MOVES_SUMMARY_SQL.format(before=before, after=after),
            out,
        ).to_pylist()[0]
        out(
            f"  → what you see: January's orders joined two years of history; {summary['ordered_again']:,} "
            f"customers ordered again, {summary['new_customers']:,} new ones arrived, {summary['no_new_order']:,} "
            "ordered nothing "
            f"(a month older in recency). {summary['changed_segment']:,} of the "
            f"{summary['customers'] - summary['new_customers']:,} earlier customers are in another segment as of "
            f"{after}: two snapshots of customer_rfm, the {before} one kept. KMeans re-fits the segments at each "
            "as_of, so segments may also merge or split."
        )
        write_reports(target, sorted(refreshed), workdir / "reports", out)
    if kept is not None:
        out(f"▶ the demo's lake is saved in {kept}; `lake up --state-dir {state_dir}` brings it back to explore")
    out("▶ stopped the runner and the stand-in. Done.")
    return 0


def write_reports(target: Target, datasets: list[str], folder: Path, out: Callable[[str], None]) -> list[Path]:
    """Fetch each refreshed dataset's latest report and draw the ledger's into ``folder``."""
    from lake.cli.report import draw_ops, fetch, save

    folder.mkdir(parents=True, exist_ok=True)
    out("▶ reports: one self-contained HTML page each (`lake report DATASET --open` fetches one):")
    paths = []
    for fetched in [*(fetch(target, d) for d in datasets), draw_ops(target)]:
        path = save(fetched, folder / f"{fetched.dataset}.html")
        out(f"  {path} ({path.stat().st_size:,} bytes, as of {fetched.as_of}: {fetched.source})")
        paths.append(path)
    return paths


def show_query(target: Target, title: str, sql: str, out: Callable[[str], None]) -> pa.Table:
    """Run ``sql`` through ``lake query``'s path and print its title, text and result table."""
    result = run_query(target, sql)
    out(f"  ◆ {title}")
    out(f"  {sql}")
    out(textwrap.indent(render(result), "    "))
    return result


if __name__ == "__main__":
    sys.exit(run_demo(Path(".demo")))
