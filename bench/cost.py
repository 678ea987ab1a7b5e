"""What the lake processor costs on AWS: ``python -m bench.cost`` (docs/deploy.md, "Cost").

A calculator, not a bill: monthly cost of three example workloads from per-file durations, request
counts per file and AWS list prices, beside the fixed monthly cost of the stack and the same
workloads on the seed's "before" architecture (an always-on container service behind API Gateway).

Durations are inputs. Their defaults were measured on the development machine (2 shared cores,
which is about what Lambda gives a 3008 MB function) with ``--measure``, which times the generic
pipeline (read, clean, validate, write Parquet; ``bench.generic.pipeline_seconds``) on a 10 MB and
a ~8 KB CSV. The time a file spends waiting on AWS (S3 reads and writes, the Iceberg commit in
Glue, DynamoDB, PutEvents) cannot be measured here; it is the ``--io-seconds`` assumption.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

#: Where and when the prices below were read. Free tiers are left out (they are per account).
PRICE_REGION = "us-east-1"
PRICE_DATE = "AWS public price pages as of 2025 (not re-checked since; no internet on the build machine)"
HOURS_PER_MONTH = 730
DAYS_PER_MONTH = 30


class CostInputError(ValueError):
    """An input out of range; the message names it and what is accepted."""


@dataclass(frozen=True)
class Prices:
    """US dollars, on-demand list prices of ``PRICE_REGION``."""

    lambda_gb_second_arm64: float = 0.0000133334
    lambda_gb_second_x86_64: float = 0.0000166667
    lambda_request: float = 0.20 / 1e6
    #: Per GB-second of /tmp above the free 512 MB.
    lambda_ephemeral_gb_second: float = 0.0000000309
    s3_put_request: float = 0.005 / 1000  # PUT, COPY, POST, LIST
    s3_get_request: float = 0.0004 / 1000  # GET, HEAD and others
    s3_storage_gb_month: float = 0.023
    sqs_request: float = 0.40 / 1e6  # standard queue, per 64 KB chunk
    eventbridge_custom_event: float = 1.00 / 1e6  # S3's own events to the default bus are free
    eventbridge_archive_gb: float = 0.10
    glue_request: float = 1.00 / 1e6
    glue_dpu_hour: float = 0.44  # table optimizers (compaction, retention, orphan files)
    dynamodb_write_unit: float = 0.625 / 1e6  # on demand
    dynamodb_read_unit: float = 0.125 / 1e6
    dynamodb_pitr_gb_month: float = 0.20
    kms_key_month: float = 1.00
    ecr_gb_month: float = 0.10
    cloudwatch_alarm_month: float = 0.10
    cloudwatch_logs_ingest_gb: float = 0.50
    # The "before" architecture.
    fargate_vcpu_hour_x86_64: float = 0.04048
    fargate_gb_hour_x86_64: float = 0.004445
    alb_hour: float = 0.0225
    alb_lcu_hour: float = 0.008
    api_gateway_rest_request: float = 3.50 / 1e6


@dataclass(frozen=True)
class Durations:
    """Seconds a function spends on one file: compute that grows with size, plus waiting on AWS."""

    #: Measured: the generic pipeline on an ~8 KB CSV (best of 3), 0.01 s.
    fixed_seconds: float = 0.01
    #: Measured: (10 MB file - 8 KB file) / 9.36 MB, best of 3 on a loaded machine (load 5.6 on 2 cores).
    seconds_per_mb: float = 0.026
    #: Assumed: ~16 S3 requests, Glue GetTable/UpdateTable for ~3 tables, 3 DynamoDB calls, one
    #: PutEvents, at tens of milliseconds each inside a region, plus the image's amortised cold start.
    io_seconds: float = 1.5

    def for_file(self, mb: float) -> float:
        return self.fixed_seconds + self.seconds_per_mb * mb + self.io_seconds


@dataclass(frozen=True)
class Requests:
    """Requests one file causes (three output tables: the dataset, its quarantine, profiles)."""

    #: The user's PUT under raw/, the ListObjects of models/, and per table a data file, a manifest,
    #: a manifest list and metadata.json (pyiceberg), plus the metadata existence check's LIST.
    s3_put: int = 16
    #: HEAD + GET of the raw object, settings, and per table metadata.json, manifest list, manifests.
    s3_get: int = 14
    #: EventBridge -> SendMessage, the poller's ReceiveMessage, DeleteMessage.
    sqs: int = 3
    #: "Dataset Processed" on the lake bus.
    events: int = 1
    #: Per table: GetTable (load), GetTable + UpdateTable (commit), plus GetDatabase on a first write.
    glue: int = 10
    #: Powertools idempotency (put in-progress, put completed with the result) and the source record.
    dynamodb_write_units: int = 8
    dynamodb_read_units: int = 2
    #: Log lines per invocation.
    log_kb: float = 4.0
    #: Output (zstd Parquet) relative to the raw CSV's size.
    output_ratio: float = 0.3


@dataclass(frozen=True)
class Deployment:
    """What the stack deploys by default (infra/config.py)."""

    memory_mb: int = 3008
    ephemeral_mb: int = 2048
    architecture: str = "arm64"
    timeout_seconds: int = 300
    alarms: int = 11
    #: The compressed image in ECR (pyarrow, numpy, scipy, scikit-learn, pandas, duckdb, pyiceberg).
    image_gb: float = 0.5
    #: Lambda's SQS poller long-polls the idle queue (about 5 pollers, 20 s polls): requests a month.
    idle_poll_requests: int = 5 * 3 * 60 * HOURS_PER_MONTH
    #: Glue table optimizers: DPU-hours a month per output table (retention and orphan-file
    #: deletion daily, compaction when small files pile up). An assumption; see the Glue console.
    optimizer_dpu_hours_per_table: float = 2.0
    tables: int = 3


@dataclass(frozen=True)
class Before:
    """The seed's "before" architecture: an always-on container service behind API Gateway."""

    vcpu: float = 2
    memory_gb: float = 4
    tasks: int = 1
    #: An Application Load Balancer behind an API Gateway VPC link, at about one LCU.
    lcu: float = 1.0


@dataclass(frozen=True)
class Workload:
    name: str
    files_per_day: int
    mb_per_file: float

    @property
    def files_per_month(self) -> int:
        return self.files_per_day * DAYS_PER_MONTH

    @property
    def gb_per_month(self) -> float:
        return self.files_per_month * self.mb_per_file / 1024


WORKLOADS = (
    Workload("100 files of 10 MB a day", 100, 10),
    Workload("10,000 small files (20 KB) a day", 10_000, 0.02),
    Workload("one 5 GB file a day", 1, 5 * 1024),
)


@dataclass(frozen=True)
class Estimate:
    """Monthly dollars per line item of one workload."""

    workload: Workload
    seconds_per_file: float
    items: dict[str, float]
    #: Not a processing cost: what one month of the workload's raw files and outputs add to the
    #: bill every month they are kept (same on any architecture).
    storage_added: float

    @property
    def total(self) -> float:
        return sum(self.items.values())

    @property
    def per_gb(self) -> float:
        return self.total / self.workload.gb_per_month


def lambda_gb_second(prices: Prices, architecture: str) -> float:
    if architecture == "arm64":
        return prices.lambda_gb_second_arm64
    if architecture == "x86_64":
        return prices.lambda_gb_second_x86_64
    raise CostInputError(f"architecture {architecture!r} must be arm64 or x86_64")


def shared_items(workload: Workload, requests: Requests, prices: Prices) -> dict[str, float]:
    """What every architecture pays per file: S3 requests, Glue, DynamoDB, EventBridge, logs."""
    files = workload.files_per_month
    return {
        "S3 requests": files * (requests.s3_put * prices.s3_put_request + requests.s3_get * prices.s3_get_request),
        "EventBridge": files * requests.events * prices.eventbridge_custom_event,
        "Glue requests": files * requests.glue * prices.glue_request,
        "DynamoDB": files
        * (
            requests.dynamodb_write_units * prices.dynamodb_write_unit
            + requests.dynamodb_read_units * prices.dynamodb_read_unit
        ),
        "CloudWatch Logs": files * requests.log_kb / 1024**2 * prices.cloudwatch_logs_ingest_gb,
    }


def estimate(
    workload: Workload,
    durations: Durations = Durations(),
    deployment: Deployment = Deployment(),
    requests: Requests = Requests(),
    prices: Prices = Prices(),
) -> Estimate:
    """The workload's monthly cost on the deployed stack (variable costs only)."""
    seconds = durations.for_file(workload.mb_per_file)
    files = workload.files_per_month
    memory_gb = deployment.memory_mb / 1024
    extra_tmp_gb = max(0, deployment.ephemeral_mb - 512) / 1024
    items = {
        "Lambda compute": files * seconds * memory_gb * lambda_gb_second(prices, deployment.architecture),
        "Lambda requests + /tmp": files
        * (prices.lambda_request + seconds * extra_tmp_gb * prices.lambda_ephemeral_gb_second),
        "SQS": files * requests.sqs * prices.sqs_request,
        **shared_items(workload, requests, prices),
    }
    storage = workload.gb_per_month * (1 + requests.output_ratio) * prices.s3_storage_gb_month
    return Estimate(workload, seconds, items, storage)


def fixed_monthly(
    deployment: Deployment = Deployment(), prices: Prices = Prices(), kms_bucket: bool = False
) -> dict[str, float]:
    """What the stack costs a month with no file at all."""
    items = {
        "KMS key of the alarm topic": prices.kms_key_month,
        "CloudWatch alarms": deployment.alarms * prices.cloudwatch_alarm_month,
        "ECR image storage": deployment.image_gb * prices.ecr_gb_month,
        "SQS idle long polling": deployment.idle_poll_requests * prices.sqs_request,
        "Glue table optimizers": deployment.tables * deployment.optimizer_dpu_hours_per_table * prices.glue_dpu_hour,
        # Tiny: an event is ~2 KB, a source record ~1 KB; shown so the line is not forgotten.
        "Event archive + DynamoDB PITR (per 100k files)": 100_000 * 2 / 1024**2 * prices.eventbridge_archive_gb
        + 100_000 * 1 / 1024**2 * prices.dynamodb_pitr_gb_month,
    }
    if kms_bucket:
        items["KMS key of the lake bucket (bucketEncryption=kms)"] = prices.kms_key_month
    return items


def before_monthly(
    workload: Workload, before: Before = Before(), requests: Requests = Requests(), prices: Prices = Prices()
) -> dict[str, float]:
    """The same workload on an always-on container service behind API Gateway (x86_64 Fargate)."""
    hours = HOURS_PER_MONTH * before.tasks
    return {
        "Fargate, always on": hours
        * (before.vcpu * prices.fargate_vcpu_hour_x86_64 + before.memory_gb * prices.fargate_gb_hour_x86_64),
        "Load balancer": HOURS_PER_MONTH * (prices.alb_hour + before.lcu * prices.alb_lcu_hour),
        "API Gateway requests": workload.files_per_month * prices.api_gateway_rest_request,
        **shared_items(workload, requests, prices),
    }


def measure(repeat: int = 3) -> Durations:
    """Time the generic pipeline here on a 10 MB and a ~8 KB CSV (best of ``repeat``)."""
    from bench.generic import pipeline_seconds, write_events_csv

    work = Path(tempfile.mkdtemp(prefix="lake-cost-"))
    sizes: dict[int, tuple[float, float]] = {}
    for rows in (130, 140_000):
        path = work / f"events-{rows}.csv"
        size_mb = write_events_csv(path, rows) / 1e6
        sizes[rows] = (size_mb, min(pipeline_seconds(path)[0] for _ in range(repeat)))
    (small_mb, small_s), (large_mb, large_s) = sizes[130], sizes[140_000]
    return replace(Durations(), fixed_seconds=small_s, seconds_per_mb=(large_s - small_s) / (large_mb - small_mb))


def money(value: float) -> str:
    return f"${value:,.2f}" if value >= 0.01 or value == 0 else f"${value:.4f}"


def render(durations: Durations, deployment: Deployment, prices: Prices = Prices()) -> str:
    lines = [
        f"Prices: {PRICE_REGION}, {PRICE_DATE}; free tiers left out.",
        f"Function: {deployment.memory_mb} MB, {deployment.architecture}, /tmp {deployment.ephemeral_mb} MB. "
        f"Per file: {durations.fixed_seconds:.3f} s + {durations.seconds_per_mb:.4f} s/MB "
        f"(measured) + {durations.io_seconds:.2f} s waiting on AWS (assumed).",
        "",
        "| Workload | s per file | Lambda | SQS | S3 requests | EventBridge | Glue | DynamoDB | Logs "
        "| Total / month | per GB processed | Before (always on) | S3 storage added / month |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for workload in WORKLOADS:
        e = estimate(workload, durations, deployment, prices=prices)
        i = e.items
        before = sum(before_monthly(workload, prices=prices).values())
        compute = i["Lambda compute"] + i["Lambda requests + /tmp"]
        lines.append(
            f"| {workload.name} | {e.seconds_per_file:.1f} | {money(compute)} "
            f"| {money(i['SQS'])} | {money(i['S3 requests'])} "
            f"| {money(i['EventBridge'])} | {money(i['Glue requests'])} | {money(i['DynamoDB'])} "
            f"| {money(i['CloudWatch Logs'])} | **{money(e.total)}** | {money(e.per_gb)} | {money(before)} "
            f"| {money(e.storage_added)} |"
        )
        if e.seconds_per_file > deployment.timeout_seconds:
            notes.append(
                f"- {workload.name}: {e.seconds_per_file:.0f} s exceeds the {deployment.timeout_seconds} s "
                "function timeout; raise functionTimeoutSeconds (900 s at most) or split the file."
            )
    fixed = fixed_monthly(deployment, prices)
    lines += ["", "Fixed monthly cost of the stack (no files):", ""]
    lines += [f"- {name}: {money(value)}" for name, value in fixed.items()]
    lines.append(f"- **total: {money(sum(fixed.values()))}**")
    lines += ["", *notes] if notes else []
    return "\n".join(lines)


def parse(argv: Sequence[str] | None) -> tuple[Durations, Deployment]:
    parser = argparse.ArgumentParser(prog="python -m bench.cost", description=__doc__.splitlines()[0])
    parser.add_argument("--measure", action="store_true", help="time the pipeline here instead of the defaults")
    parser.add_argument("--fixed-seconds", type=float, help="compute seconds per file regardless of size")
    parser.add_argument("--seconds-per-mb", type=float, help="compute seconds per MB of raw file")
    parser.add_argument("--io-seconds", type=float, help="seconds per file waiting on S3, Glue, DynamoDB, EventBridge")
    parser.add_argument("--memory-mb", type=int, default=Deployment.memory_mb)
    parser.add_argument("--architecture", default=Deployment.architecture, choices=("arm64", "x86_64"))
    args = parser.parse_args(argv)
    durations = measure() if args.measure else Durations()
    for field in ("fixed_seconds", "seconds_per_mb", "io_seconds"):
        value = getattr(args, field)
        if value is not None:
            if value < 0:
                raise CostInputError(f"--{field.replace('_', '-')} must be 0 or more, not {value}")
            durations = replace(durations, **{field: value})
    if not 128 <= args.memory_mb <= 10240:
        raise CostInputError(f"--memory-mb must be in [128, 10240] (Lambda's range), not {args.memory_mb}")
    return durations, replace(Deployment(), memory_mb=args.memory_mb, architecture=args.architecture)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        durations, deployment = parse(argv)
    except CostInputError as error:
        print(f"bench.cost: {error}", file=sys.stderr)
        return 2
    print(render(durations, deployment))
    return 0


if __name__ == "__main__":
    sys.exit(main())
