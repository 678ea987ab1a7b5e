"""The one source of truth for the lake's AWS topology.

Both the CDK stack (``infra/``) and the local stand-in (``lake/standin/``) read these values; nothing else
repeats the literals. This module imports only the standard library so that the CDK app, the Lambda
image and the local tools can all depend on it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

# --- bucket layout -------------------------------------------------------------------------------
RAW_PREFIX = "raw/"
#: Iceberg tables of the curated database live at ``curated/<table>/`` (``data/`` and ``metadata/``).
CURATED_PREFIX = "curated/"
#: Iceberg tables of the quarantine database live at ``quarantine/<dataset>/``.
QUARANTINE_PREFIX = "quarantine/"
#: The lake's own operations tables (the processing ledger) live at ``ops/<table>/``.
OPS_PREFIX = "ops/"
#: The processing ledger: one row per file outcome and per refresh, in the ops database.
PROCESSING_LOG_TABLE = "processing_log"
#: Names that were per-file tables and are now views over the models' history (``<name>_history``'s
#: newest ``as_of``). The refresh renames an older lake's table of that name to ``<name>_by_file`` once:
#: the one table deletion any function may make (tests check the dataset specs declare these views).
CURRENT_VIEWS = ("experiment_results", "campaign_kpis", "kpi_anomalies")
MODELS_PREFIX = "models/"
#: ``settings/<dataset>.json``: per-dataset settings (tolerance, date order, control variant).
SETTINGS_PREFIX = "settings/"
ATHENA_RESULTS_PREFIX = "athena-results/"
#: Each refresh's report: ``reports/<dataset>/latest.html`` and ``reports/<dataset>/<as_of>.html``.
REPORTS_PREFIX = "reports/"

#: File name endings the processor accepts under ``raw/``, longest first so ``.csv.gz`` wins.
RAW_EXTENSIONS = (".csv.gz", ".csv", ".tsv", ".xlsx", ".jsonl", ".ndjson", ".json", ".parquet")

# --- events --------------------------------------------------------------------------------------
EVENT_SOURCE = "lake.processor"
DETAIL_TYPE_PROCESSED = "Dataset Processed"
DETAIL_TYPE_FAILED = "Dataset Processing Failed"
#: What the refresh stage announces: a dataset's models recomputed over its whole history, or not.
DETAIL_TYPE_MODELS_UPDATED = "Dataset Models Updated"
DETAIL_TYPE_MODELS_FAILED = "Dataset Models Failed"
#: The ``source`` of a refresh request on the refresh queue (sent by the per-file stage).
REFRESH_REQUEST_SOURCE = "lake.refresh-request"
EVENT_SCHEMA_VERSION = "2.0"
#: The ``source`` of the second message shape the handler accepts (``lake reprocess``, the HTTP entry).
PROCESS_REQUEST_SOURCE = "lake.process-request"
PROCESS_REQUEST_DETAIL_TYPE = "Process Request"

# --- logs and metrics ----------------------------------------------------------------------------
#: Powertools' service name of each function (its logs' ``service``, its metrics' dimension): set as
#: ``POWERTOOLS_SERVICE_NAME`` by the stack and the stand-in, never written in a handler.
PROCESS_SERVICE = EVENT_SOURCE
REFRESH_SERVICE = "lake.refresh"
ENV_POWERTOOLS_SERVICE_NAME = "POWERTOOLS_SERVICE_NAME"
#: The CloudWatch namespace of both functions' metrics (embedded metric format).
METRICS_NAMESPACE = "LakeProcessor"


@dataclass(frozen=True)
class QueueSettings:
    """How the processing queue and its event source mapping behave."""

    function_timeout_seconds: int = 300
    #: AWS recommends at least six times the function timeout for SQS event sources.
    visibility_timeout_seconds: int = 1800
    max_receive_count: int = 3
    batch_size: int = 10
    batching_window_seconds: int = 5
    #: Lambda instances processing files at once. Files of one table are committed in groups by one
    #: committer at a time (handlers/adapters/committer.py), so more instances stage more files in parallel
    #: instead of retrying each other's commits. The deploy setting ``maxConcurrency`` overrides it.
    max_concurrency: int = 50
    dlq_retention_days: int = 14
    receive_wait_seconds: int = 20

    #: On the stand-in only (``lake up --retry-after``): the runner hides a failed message for this many
    #: seconds instead of the visibility timeout, so retries and the DLQ show within a minute. ``None``
    #: on AWS, where a failed message comes back after the visibility timeout.
    retry_after_seconds: int | None = None

    def retrying_after(self, seconds: int) -> QueueSettings:
        """These settings with failed messages retried after ``seconds`` (quick retries on the stand-in).

        The visibility timeout and the function's timeout stay as deployed: a message stays hidden
        while its batch runs however loaded the machine is, and a slow first invocation is not
        mistaken for a timeout. Only a failure's retry comes sooner (the runner sets the failed
        messages' visibility to ``seconds``).
        """
        if seconds < 1:
            raise ValueError(f"a retry must wait at least 1 second, not {seconds}")
        return replace(self, retry_after_seconds=seconds)

    @property
    def seconds_before_retry(self) -> int:
        """How long a failed message stays hidden before SQS hands it out again."""
        return self.retry_after_seconds if self.retry_after_seconds is not None else self.visibility_timeout_seconds

    def on_stand_in(self) -> QueueSettings:
        """The stand-in's settings: a short batching window so a dropped file is processed in about a
        second (on AWS the window trades latency for fewer, larger invocations; locally nobody pays
        per invocation)."""
        return replace(
            self,
            batching_window_seconds=min(self.batching_window_seconds, LOCAL_BATCHING_WINDOW_SECONDS),
            max_concurrency=min(self.max_concurrency, LOCAL_MAX_CONCURRENCY),
        )

    def with_workers(self, workers: int) -> QueueSettings:
        """These settings with ``workers`` instances at most (``lake up --workers``)."""
        if workers < 1:
            raise ValueError(f"at least 1 worker is needed, not {workers}")
        return replace(self, max_concurrency=workers)


#: The batching window of the stand-in's runner (the deployed one is ``QueueSettings.batching_window_seconds``).
LOCAL_BATCHING_WINDOW_SECONDS = 0
#: Worker processes the stand-in's runner starts by default (one machine; ``lake up --workers N`` for more).
LOCAL_MAX_CONCURRENCY = 2


def _refresh_queue() -> QueueSettings:
    # A FIFO event source mapping takes no batching window; one refresh may read a whole history.
    return QueueSettings(
        function_timeout_seconds=900,
        visibility_timeout_seconds=5400,
        batch_size=10,
        batching_window_seconds=0,
        max_concurrency=2,
    )


@dataclass(frozen=True)
class RefreshSettings:
    """How the refresh stage's queue behaves and where its SQL runs.

    The queue is FIFO with one message group per dataset: a dataset's requests are handed out one
    batch at a time (never two refreshes of one dataset at once), while datasets run side by side.
    """

    queue: QueueSettings = field(default_factory=_refresh_queue)
    memory_mb: int = 3008
    #: Above this many bytes of Parquet in the input snapshots (their ``total-files-size``), the
    #: features are computed by Athena instead of DuckDB inside the function. Measured (docs/refresh.md,
    #: ``bench/refresh.py``): ``orders`` of 161 MB refreshes at 2,560 MB peak of the function's 3,008 MB,
    #: 340 MB needs 3,092 MB and does not fit; 128 MiB stays below the largest history that fits.
    athena_threshold_bytes: int = 128 * 1024**2


@dataclass(frozen=True)
class Topology:
    """Names and settings of every resource the pipeline needs."""

    bucket: str = "lake-local"
    queue_name: str = "lake-processing"
    dlq_name: str = "lake-processing-dlq"
    bus_name: str = "lake-events"
    #: Example subscriber on the lake bus: a rule that forwards every completion event to a queue.
    subscriber_rule_name: str = "lake-events-to-subscriber"
    subscriber_queue_name: str = "lake-events-subscriber"
    raw_rule_name: str = "lake-raw-object-events"
    curated_database: str = "lake_curated"
    quarantine_database: str = "lake_quarantine"
    #: The lake's record of its own work (``processing_log``), apart from users' data.
    ops_database: str = "lake_ops"
    idempotency_table: str = "lake-idempotency"
    idempotency_ttl_seconds: int = 7 * 24 * 3600
    queue: QueueSettings = field(default_factory=QueueSettings)
    #: FIFO queues (the names must end in ``.fifo``), grouped by dataset.
    refresh_queue_name: str = "lake-refresh.fifo"
    refresh_dlq_name: str = "lake-refresh-dlq.fifo"
    refresh: RefreshSettings = field(default_factory=RefreshSettings)
    #: The Secrets Manager secret holding the key of personal data's pseudonyms (HMAC-SHA-256). The
    #: stand-in's name; on AWS the stack names it and passes its ARN (``ENV_PSEUDONYM_SECRET``).
    pseudonym_secret_name: str = "lake-pseudonym-key"

    def raw_object_events_pattern(self, bucket: str | None = None) -> dict[str, Any]:
        """EventBridge pattern for S3 "Object Created" and "Object Deleted" events under ``raw/``.

        A new version replaces the key's rows; a deletion removes them (the lake mirrors raw/).
        """
        return {
            "source": ["aws.s3"],
            "detail-type": ["Object Created", "Object Deleted"],
            "detail": {
                "bucket": {"name": [bucket or self.bucket]},
                "object": {"key": [{"prefix": RAW_PREFIX}]},
            },
        }

    def completion_events_pattern(self) -> dict[str, Any]:
        """EventBridge pattern matching every completion event the processor publishes."""
        return {
            "source": [EVENT_SOURCE],
            "detail-type": [DETAIL_TYPE_PROCESSED, DETAIL_TYPE_FAILED],
        }

    def lake_events_pattern(self) -> dict[str, Any]:
        """EventBridge pattern matching every event the lake publishes: per file and per refresh."""
        return {
            "source": [EVENT_SOURCE],
            "detail-type": [
                DETAIL_TYPE_PROCESSED,
                DETAIL_TYPE_FAILED,
                DETAIL_TYPE_MODELS_UPDATED,
                DETAIL_TYPE_MODELS_FAILED,
            ],
        }


#: The deployed topology's defaults. The CDK stack lets CloudFormation name the bucket.
DEFAULT = Topology()

#: The local stand-in listens here unless told otherwise (``LAKE_ENDPOINT_URL``/``--port``).
LOCAL_DEFAULT_PORT = 4566
LOCAL_REGION = "us-east-1"
LOCAL_ACCOUNT_ID = "123456789012"

# --- deployment (read by the CDK stack; the handler reads the environment variables) ------------
#: Athena workgroup whose results land under ``athena-results/`` of the lake bucket.
ATHENA_WORKGROUP = "lake"
#: Powertools idempotency defaults, spelled out so the table and the handler cannot drift apart.
IDEMPOTENCY_KEY_ATTRIBUTE = "id"
IDEMPOTENCY_TTL_ATTRIBUTE = "expiration"
#: Items ``failure#<sqs message id>`` in the idempotency table: why a message failed (``lake dlq list``).
FAILURE_RECORD_PREFIX = "failure#"
#: Items ``source#<bucket>/<key>`` in the idempotency table: the key's newest revision the lake holds,
#: the tables it wrote and who is committing it now (see ``handlers.adapters.source_records``). They never expire.
SOURCE_RECORD_PREFIX = "source#"
#: Items ``refresh#<dataset>`` in the idempotency table: the input snapshots the dataset's last
#: successful refresh read, so a request those snapshots already cover is skipped. They never expire.
REFRESH_RECORD_PREFIX = "refresh#"
#: Items ``shape#<dataset>#<shape>`` in the idempotency table: the day/month order the newest file of
#: an export shape (dataset + header + delimiter) proved, and which file proved it, so a later file
#: of the shape whose dates are all ambiguous follows it (see ``handlers.adapters.export_shapes``). They never expire.
SHAPE_RECORD_PREFIX = "shape#"

#: Environment variables the deployed function receives; the handler's settings read exactly these.
ENV_BUCKET = "LAKE_BUCKET"
ENV_EVENT_BUS = "LAKE_EVENT_BUS"
ENV_CURATED_DATABASE = "LAKE_CURATED_DATABASE"
ENV_QUARANTINE_DATABASE = "LAKE_QUARANTINE_DATABASE"
ENV_OPS_DATABASE = "LAKE_OPS_DATABASE"
ENV_IDEMPOTENCY_TABLE = "LAKE_IDEMPOTENCY_TABLE"
ENV_IDEMPOTENCY_TTL_SECONDS = "LAKE_IDEMPOTENCY_TTL_SECONDS"
#: The queue's maxReceiveCount: on the last receive the handler announces the failure.
ENV_MAX_RECEIVE_COUNT = "LAKE_MAX_RECEIVE_COUNT"
#: ``off`` switches Powertools' idempotency off (tests and benchmarks only).
ENV_IDEMPOTENCY = "LAKE_IDEMPOTENCY"
#: Extra types the handler trusts in users' skops models (comma-separated).
ENV_TRUSTED_MODEL_TYPES = "LAKE_TRUSTED_MODEL_TYPES"
#: Points the ``lake`` command (and ``import lake``) at the local stand-in instead of AWS.
ENV_ENDPOINT_URL = "LAKE_ENDPOINT_URL"
#: Where ``lake up`` keeps the stand-in's state and ``lake status`` looks for it (default ``.lake/``).
ENV_STATE_DIR = "LAKE_STATE_DIR"
#: Fault injection for the runner's tests: a worker dies on its first invocation when this file is missing.
ENV_WORKER_CRASH_ONCE = "LAKE_WORKER_CRASH_ONCE"
#: On AWS: the role Glue's table optimizers (compaction, snapshot retention, orphan files) run as.
#: The handler switches them on for every Iceberg table it creates when this is set.
ENV_TABLE_OPTIMIZER_ROLE_ARN = "LAKE_TABLE_OPTIMIZER_ROLE_ARN"
#: The refresh queue's URL: the per-file stage sends a refresh request there after each commit.
ENV_REFRESH_QUEUE_URL = "LAKE_REFRESH_QUEUE_URL"
#: The refresh's Athena workgroup and its size threshold (bytes of input Parquet) for using it.
ENV_ATHENA_WORKGROUP = "LAKE_ATHENA_WORKGROUP"
ENV_REFRESH_ATHENA_THRESHOLD_BYTES = "LAKE_REFRESH_ATHENA_THRESHOLD_BYTES"
#: The secret (name or ARN) with the key the per-file stage pseudonymises personal data with.
ENV_PSEUDONYM_SECRET = "LAKE_PSEUDONYM_SECRET"


def process_request_detail_schema(bucket: str | None = None) -> dict[str, Any]:
    """JSON Schema (draft-04, as API Gateway models need) of a process request's ``detail``.

    The HTTP entry validates request bodies with it and ``lake reprocess`` sends the same shape
    (optional fields may be omitted or null). ``bucket`` pins the only bucket a deployment accepts.
    """
    return {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "title": "ProcessRequestDetail",
        "type": "object",
        "required": ["bucket", "key", "reason"],
        "additionalProperties": False,
        "properties": {
            "bucket": {"type": "string", "enum": [bucket or DEFAULT.bucket]},
            "key": {"type": "string", "pattern": f"^{RAW_PREFIX}[^/]+/.+", "maxLength": 1024},
            "version_id": {"type": ["string", "null"], "minLength": 1, "maxLength": 1024},
            "dataset": {"type": ["string", "null"], "pattern": "^[^/]{1,128}$"},
            "reason": {"type": "string", "minLength": 1, "maxLength": 512},
            # The caller's idempotency key: the same request id is processed once.
            "request_id": {"type": ["string", "null"], "minLength": 1, "maxLength": 128},
        },
    }
