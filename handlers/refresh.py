"""Lambda entry point of the refresh stage: SQS (FIFO) batch of refresh requests -> model tables.

The same image as the per-file function, with its own CMD (``handlers.refresh.lambda_handler``).
Requests of one dataset arrive in order in one message group; a failed one is retried by SQS (and
dead-lettered after maxReceiveCount) and holds back the requests behind it in its group only.
Kept light to import: DuckDB, pyiceberg and the models load on the first record.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.batch.sqs_fifo_partial_processor import SqsFifoPartialProcessor
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

import topology

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from handlers.stages.refresh_service import RefreshService

#: The service name is configuration: ``POWERTOOLS_SERVICE_NAME`` (``topology.REFRESH_SERVICE``).
logger = Logger()
metrics = Metrics(namespace=topology.METRICS_NAMESPACE)
#: A failure fails the rest of its message group (its dataset) only; other datasets go on.
batch = SqsFifoPartialProcessor(skip_group_on_error=True)
_service: RefreshService | None = None


def _get_service() -> RefreshService:
    global _service
    if _service is None:
        from handlers.bootstrap import build_refresh_service
        from handlers.settings import Settings

        _service = build_refresh_service(Settings.from_env())
    return _service


def record_handler(record: SQSRecord) -> None:
    """One request: later requests of the same dataset in the batch find their inputs covered and skip."""
    service = _get_service()
    receive_count = int(record.attributes.approximate_receive_count or 1)
    started = time.perf_counter()
    detail = service.handle_body(record.body, receive_count=receive_count)
    if detail["status"] == "skipped" and service.ledger is not None:
        # Refreshed and failed ones are logged as they are announced; a skip is announced nowhere.
        service.ledger.skipped(record.body, detail, (time.perf_counter() - started) * 1000)
    logger.info("refresh", extra={"status": detail["status"], "dataset": detail.get("dataset")})
    name = {"succeeded": "RefreshesSucceeded", "skipped": "RefreshesSkipped"}.get(detail["status"], "RefreshesFailed")
    metrics.add_metric(name, MetricUnit.Count, 1)
    if detail["status"] == "succeeded":
        metrics.add_metric("RefreshTime", MetricUnit.Milliseconds, detail["timings_ms"].get("total", 0))


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Refresh what the batch asks for and report only the failed records (``batchItemFailures``)."""
    service = _get_service()
    service.register_context(context)
    from handlers.adapters.ledger import logged_invocation

    with logged_invocation(service.ledger, context, logger, metrics):
        response = process_partial_response(
            event=event, record_handler=record_handler, processor=batch, context=context
        )
    return dict(response)
