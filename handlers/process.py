"""Lambda entry point: SQS batch of S3 events (or process requests) -> curated tables + events.

Kept light to import: pandas, pyarrow, boto3 and the models load on the first record, not here.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

import topology
from handlers.errors import NotAnSqsBatchError, ProcessingInProgressError
from handlers.outcome import FileCompletion

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from handlers.stages.object_processor import ObjectProcessor

#: The service name is configuration: ``POWERTOOLS_SERVICE_NAME`` (``topology.PROCESS_SERVICE``).
logger = Logger()
#: CloudWatch metrics in the embedded metric format (written to the log, no API calls).
metrics = Metrics(namespace=topology.METRICS_NAMESPACE)
_processor: ObjectProcessor | None = None
#: Records of one batch processed at once: while one waits for its table's group commit, the next is
#: read and staged. Only small objects (memory is the function's, per file as much as one alone).
RECORD_THREADS = 4
PARALLEL_MAX_BYTES = 64 * 1024 * 1024
_metrics_lock = threading.Lock()


def _lane(body: str) -> tuple[str, int | None]:
    """The raw key a message is about (its lane: one key's messages run in order) and its size."""
    try:
        message = json.loads(body)
        detail = message.get("detail", message) if isinstance(message, dict) else {}
        obj = detail.get("object", {}) if isinstance(detail, dict) else {}
        key = obj.get("key") or detail.get("key")
        size = obj.get("size")
        return (str(key) if key else body), (int(size) if size is not None else None)
    except (ValueError, TypeError, AttributeError):
        return body, None


class ConcurrentBatch(BatchProcessor):
    """An SQS batch whose records run in up to :data:`RECORD_THREADS` threads, one lane per raw key.

    A batch holding an object over :data:`PARALLEL_MAX_BYTES` (or of unknown size) runs one record
    at a time, as Powertools' own processor does.
    """

    def process(self) -> list[tuple[Any, ...]]:
        lanes: dict[str, list[dict[str, Any]]] = {}
        small = True
        for record in self.records:
            key, size = _lane(record.get("body", ""))
            lanes.setdefault(key, []).append(record)
            small = small and size is not None and size <= PARALLEL_MAX_BYTES
        if not small or len(lanes) < 2:
            return super().process()

        def run(lane: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
            return [self._process_record(record) for record in lane]

        with ThreadPoolExecutor(min(RECORD_THREADS, len(lanes)), thread_name_prefix="record") as pool:
            return [result for results in pool.map(run, lanes.values()) for result in results]


def _get_processor() -> ObjectProcessor:
    # Built once per execution environment (a warm Lambda reuses clients and settings).
    global _processor
    if _processor is None:
        from handlers.bootstrap import build_processor
        from handlers.settings import Settings

        _processor = build_processor(Settings.from_env())
    return _processor


_JSON_TYPES = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean"}


def check_sqs_batch(event: object) -> None:
    """Refuse, in one line, an invocation that is not an SQS batch (Powertools would say only "unexpected type")."""
    records = event.get("Records") if isinstance(event, dict) else None
    if (
        isinstance(records, list)
        and records
        and all(isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records)
    ):
        return
    if isinstance(event, dict):
        got = f"an object with keys {sorted(map(str, event))[:8]}" if event else "an empty object"
        if isinstance(records, list) and records:
            sources = sorted({str(r.get("eventSource")) if isinstance(r, dict) else "?" for r in records})
            got = f"records from {sources}"
    else:
        got = "null" if event is None else f"a JSON {_JSON_TYPES.get(type(event), type(event).__name__)}"
    raise NotAnSqsBatchError(
        f'this function takes SQS batches from its processing queue ({{"Records": [...]}}, eventSource aws:sqs), '
        f"got {got}; to process a file, put it under raw/ or run `lake reprocess s3://<bucket>/raw/<key>`"
    )


def record_handler(record: SQSRecord) -> None:
    """One message: permanent failures are published and acknowledged; the rest raise and retry."""
    processor = _get_processor()
    receive_count = int(record.attributes.approximate_receive_count or 1)
    detail = processor.handle_body(record.body, receive_count=receive_count, message_id=record.message_id)
    if processor.ledger is not None:
        # A redelivered message whose outcome idempotency replays is not announced again, and the
        # invocation that announced it may have died before its ledger write: log it here (once).
        processor.ledger.file_once(detail)
    outcome = FileCompletion.from_detail(detail)  # as announced, or as an earlier delivery announced it
    logger.info("processed", extra={"status": outcome.status, "key": outcome.source.key, "dataset": outcome.dataset})
    with _metrics_lock:
        for metric in outcome.metrics():
            metrics.add_metric(metric.name, MetricUnit[metric.unit], metric.value)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Process an SQS batch and report only the failed records (``batchItemFailures``)."""
    check_sqs_batch(event)
    processor = _get_processor()
    processor.register_context(context)
    from handlers.adapters.ledger import logged_invocation

    batch = ConcurrentBatch(event_type=EventType.SQS)  # per invocation: it holds the batch's results
    with (
        logged_invocation(processor.ledger, context, logger, metrics),
        batch(event["Records"], record_handler, lambda_context=context),
    ):
        batch.process()
        # Powertools fails the whole invocation when every record failed (the function's Errors
        # alarm counts it). A copy that met its original still at work is not an error: SQS
        # delivers it again later, so it stays a batch item failure even when it is alone.
        batch.raise_on_entire_batch_failure = not all(
            isinstance(error, ProcessingInProgressError) for _, error, _ in batch.exceptions
        )
    return dict(batch.response())
