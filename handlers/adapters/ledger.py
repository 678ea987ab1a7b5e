"""The processing ledger: one row of ``lake_ops.processing_log`` per announced outcome.

Each row is derived from what the lake already announces (the per-file completion event, the
refresh's ``Dataset Models Updated/Failed``), plus the refreshes that were skipped, which are not
announced, plus the outcomes the idempotency layer replays on a redelivery (announced by an
earlier invocation that may have died before its ledger write). A function collects its
invocation's rows and appends them in one Iceberg commit at the end, unless the invocation is
too close to its timeout; a row that cannot be built or written is logged and counted, never a
failure of the work it describes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa

import topology
from analytics.base import TableSpec, col
from handlers.adapters.publisher import EventPublisher
from handlers.errors import ProcessorError
from handlers.outcome import FileCompletion

if TYPE_CHECKING:
    from handlers.adapters.iceberg import IcebergTables
    from handlers.outcome import Committed

logger = logging.getLogger(__name__)

PROCESSING_LOG = TableSpec(
    topology.PROCESSING_LOG_TABLE,
    "log_date",
    "The lake's processing ledger: one row per file processed, failed, replaced or removed and per refresh "
    "(refreshed, skipped, failed), derived from the completion events.",
    schema=pa.schema(
        [
            col("logged_at", pa.timestamp("us", tz="UTC"), "when the outcome was announced (UTC)"),
            col("log_date", pa.date32(), "UTC day of `logged_at`"),
            col("kind", pa.string(), "`file` (a raw object's outcome) or `refresh` (a dataset's models recomputed)"),
            col("dataset", pa.string(), "the dataset (table name); null when the message named none"),
            col("key", pa.string(), "file: the raw object key; refresh: the key whose commit asked for it"),
            col("version", pa.string(), "file: the object's version id or ETag; refresh: the asking key's version"),
            col(
                "trigger",
                pa.string(),
                "file: `s3-event` or `process-request`; refresh: the request's reason (`commit`, `removed`, ...)",
            ),
            col(
                "status",
                pa.string(),
                "file: processed, unchanged (a stale or already-processed version: nothing written), failed, "
                "replaced or removed; refresh: refreshed, skipped or failed",
            ),
            col("rows_in", pa.int64(), "file: rows read; refresh: rows of the input tables at their pinned snapshots"),
            col("rows_written", pa.int64(), "rows committed to the curated (file) or model (refresh) tables"),
            col("rows_quarantined", pa.int64(), "rows kept aside in the quarantine table (files only)"),
            col("quarantined_by_reason", pa.string(), 'JSON object reason code -> rows, e.g. {"bad_date": 3}'),
            col("duplicates", pa.int64(), "rows repeating an earlier row of the file (files only)"),
            col("bytes", pa.int64(), "file: the object's size; refresh: bytes of Parquet in its input snapshots"),
            col("duration_ms", pa.float64(), "the outcome's own processing time in milliseconds"),
            col("stage_ms", pa.string(), 'JSON object stage -> milliseconds, e.g. {"process": 812.4, "commit": 95.1}'),
            col("error_type", pa.string(), "the error's type when the status is failed"),
            col("error_message", pa.string(), "what went wrong and what to do, when the status is failed"),
            col(
                "event_key",
                pa.string(),
                "the announced event's event_key; a redelivered outcome may repeat in a later invocation's rows, "
                "so count distinct event_keys (keep the first row of each by logged_at)",
            ),
            col("snapshot_ids", pa.string(), "JSON object database.table -> Iceberg snapshot id the outcome committed"),
            col("memory_mb", pa.int32(), "memory configured for the function that did the work"),
            col(
                "billed_duration_ms",
                pa.int64(),
                "estimated billed duration: file: its processing time; refresh: its share of the invocation; "
                "rounded up to 1 ms",
            ),
            col("request_id", pa.string(), "the Lambda invocation's request id (one per batch)"),
        ]
    ),
)

#: A completion event's ``change`` -> the ledger's file status (a failure is ``failed`` whatever it changed).
FILE_STATUS = {"created": "processed", "unchanged": "unchanged", "replaced": "replaced", "removed": "removed"}
REFRESH_STATUS = {"succeeded": "refreshed", "skipped": "skipped", "failed": "failed"}

#: Below this much time left in the invocation the ledger is not written: a slow commit pushing a
#: finished batch past the timeout would have SQS deliver (and the lake redo) the whole batch.
LEDGER_WRITE_MARGIN_MS = 10_000


class LedgerWriteError(ProcessorError):
    """The invocation's ledger rows could not be appended (the work they describe stands)."""

    def __init__(self, message: str, rows: int) -> None:
        super().__init__(message)
        self.rows = rows


def _json(value: dict[str, Any] | None) -> str | None:
    return json.dumps(value, sort_keys=True) if value else None


def _stages(timings: dict[str, Any] | None) -> str | None:
    return _json({k: v for k, v in (timings or {}).items() if k != "total"})


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def file_row(outcome: FileCompletion, memory_mb: int | None, request_id: str | None) -> dict[str, Any]:
    """The ledger row of a file's announced outcome (``Dataset Processed`` / ``Dataset Processing Failed``)."""
    duration = float(outcome.timings_ms.get("total") or 0.0)
    status = "failed" if outcome.status == "failed" else FILE_STATUS.get(outcome.change, "processed")
    # A refusal or a removal may commit (the key's earlier rows leave): it writes no rows.
    written = sum(o.rows for o in outcome.outputs) if status in ("processed", "replaced") else 0
    error = outcome.error
    return {
        "kind": "file",
        "dataset": outcome.dataset,
        "key": outcome.source.key,
        "version": outcome.source.version_id or outcome.source.etag,
        "trigger": outcome.source.trigger,
        "status": status,
        "rows_in": outcome.rows.input,
        "rows_written": written,
        "rows_quarantined": outcome.rows.rejected,
        "quarantined_by_reason": _json(dict(outcome.reasons)),
        "duplicates": outcome.rows.duplicates,
        "bytes": outcome.source.size,
        "duration_ms": duration,
        "stage_ms": _stages(dict(outcome.timings_ms)),
        "error_type": error.type if error else None,
        "error_message": error.message if error else None,
        "event_key": outcome.event_key,
        "snapshot_ids": _json(outcome.snapshots()),
        "memory_mb": memory_mb,
        # Lambda bills per 1 ms; a file's share of its invocation is its own processing time.
        "billed_duration_ms": math.ceil(duration),
        "request_id": request_id,
    }


def refresh_row(
    detail: dict[str, Any], memory_mb: int | None, request_id: str | None, request: Any = None
) -> dict[str, Any]:
    """The ledger row of a ``Dataset Models Updated/Failed`` detail, or of a skipped refresh
    (``{"status": "skipped", "dataset", "inputs": {table: snapshot id}}``, with ``request``, the
    :class:`~handlers.adapters.refresh_requests.RefreshRequest` it answered, and ``timings_ms``
    measured by the caller)."""
    error = detail.get("error") or {}
    asked = (detail.get("requested_by") or [{}])[0] if request is None else {
        "key": request.key, "version": request.version, "reason": request.reason,
    }  # fmt: skip
    inputs = detail.get("inputs")
    event_key: str | None
    rows_in: int | None
    size: int | None
    if isinstance(inputs, dict):  # a skipped refresh names its inputs' snapshots only
        event_key = hashlib.sha256(
            json.dumps([detail.get("dataset"), sorted(inputs.items()), "skipped"]).encode()
        ).hexdigest()[:32]
        rows_in, size = None, None
    else:
        event_key = detail.get("event_key")
        rows_in = sum(int(i.get("rows") or 0) for i in inputs or [])
        size = sum(int(i.get("bytes") or 0) for i in inputs or [])
    outputs = detail.get("outputs") or []
    timings = detail.get("timings_ms") or {}
    return {
        "kind": "refresh",
        "dataset": detail.get("dataset"),
        "key": asked.get("key"),
        "version": asked.get("version"),
        "trigger": asked.get("reason"),
        "status": REFRESH_STATUS.get(detail["status"], "failed"),
        "rows_in": rows_in,
        "rows_written": sum(int(o.get("rows") or 0) for o in outputs) if outputs or rows_in is not None else None,
        "rows_quarantined": None,
        "quarantined_by_reason": None,
        "duplicates": None,
        "bytes": size,
        "duration_ms": float(timings.get("total") or 0.0),
        "stage_ms": _stages(timings),
        "error_type": error.get("type"),
        "error_message": error.get("message"),
        "event_key": event_key,
        "snapshot_ids": _json({f"{o['database']}.{o['table']}": o["snapshot_id"] for o in outputs}),
        "memory_mb": memory_mb,
        "billed_duration_ms": None,  # the invocation's share, known when the invocation ends
        "request_id": request_id,
    }


class Ledger:
    """Collects one invocation's ledger rows and appends them in one commit when it ends."""

    def __init__(self, tables: IcebergTables, database: str) -> None:
        self._tables = tables
        self.database = database
        self._rows: list[dict[str, Any]] = []
        self._started = time.perf_counter()
        self._memory_mb: int | None = None
        self._request_id: str | None = None
        self._context: Any = None
        self._seen: set[str] = set()
        self._unbuilt = 0

    def begin(self, context: Any) -> None:
        """A new invocation: its rows carry the function's memory and the invocation's request id."""
        self._rows = []
        self._seen = set()
        self._unbuilt = 0
        self._started = time.perf_counter()
        self._context = context
        memory = getattr(context, "memory_limit_in_mb", None)
        self._memory_mb = int(memory) if memory else None
        self._request_id = getattr(context, "aws_request_id", None)

    def remaining_ms(self) -> int | None:
        """Milliseconds the invocation may still run (None outside Lambda's context)."""
        remaining = getattr(self._context, "get_remaining_time_in_millis", None)
        return int(remaining()) if remaining is not None else None

    @property
    def request_id(self) -> str | None:
        """The invocation's request id (from :meth:`begin`)."""
        return self._request_id

    @property
    def pending(self) -> list[dict[str, Any]]:
        """The rows collected since :meth:`begin`."""
        return list(self._rows)

    @property
    def unbuilt(self) -> int:
        """Outcomes since :meth:`begin` whose row could not be built (logged; lost to the ledger)."""
        return self._unbuilt

    def file(self, detail: dict[str, Any]) -> None:
        """Record an announced per-file outcome. Never raises."""
        key = detail.get("event_key") if isinstance(detail, dict) else None
        if isinstance(key, str):
            self._seen.add(key)
        self._record(lambda: file_row(FileCompletion.from_detail(detail), self._memory_mb, self._request_id))

    def file_once(self, detail: dict[str, Any]) -> None:
        """Record a per-file outcome unless this invocation already did (by ``event_key``).

        The idempotency layer returns an outcome an earlier delivery saved without announcing it
        again; that invocation may have died (timeout, out of memory) before its ledger write, so
        the outcome is logged here. Never raises.
        """
        key = detail.get("event_key") if isinstance(detail, dict) else None
        if key is None or key not in self._seen:
            self.file(detail)

    def refresh(self, detail: dict[str, Any], request: Any = None) -> None:
        """Record an announced refresh, or (with the request it answered) a skipped one. Never raises."""
        self._record(lambda: refresh_row(detail, self._memory_mb, self._request_id, request))

    def skipped(self, body: str, detail: dict[str, Any], duration_ms: float) -> None:
        """Record a skipped refresh (not announced): ``body`` is its request message. Never raises."""
        from handlers.adapters.refresh_requests import parse_refresh_request

        def build() -> dict[str, Any]:
            # The refresh parsed the same body before it found its inputs covered.
            request = parse_refresh_request(body)
            return refresh_row(
                {**detail, "timings_ms": {"total": round(duration_ms, 1)}}, self._memory_mb, self._request_id, request
            )

        self._record(build)

    def _record(self, build: Callable[[], dict[str, Any]]) -> None:
        # The outcome is committed and announced by now: a row that cannot be built must not fail
        # (and so retry) the record it describes. write_ledger counts it in the invocation's metrics.
        try:
            row = build()
        except Exception:
            self._unbuilt += 1
            logger.exception(
                "a processing-log row could not be built from the announced outcome and is lost to the ledger "
                "(the outcome itself is committed and announced; its event holds the facts); report this as a bug"
            )
            return
        logged_at = _now()
        self._rows.append({"logged_at": logged_at, "log_date": logged_at.date(), **row})

    def discard(self) -> int:
        """Drop the invocation's pending rows unwritten; how many there were."""
        rows, self._rows = self._rows, []
        return len(rows)

    def write(self) -> Committed | None:
        """Append the invocation's rows in one commit (None when there were none).

        Raises :class:`LedgerWriteError` saying how many rows were lost and why; the caller logs it.
        """
        rows, self._rows = self._rows, []
        if not rows:
            return None
        # Lambda bills an invocation, rounded up to 1 ms: each refresh gets its share in proportion
        # to its own duration (all of it when the batch held one refresh).
        invocation_ms = (time.perf_counter() - self._started) * 1000
        refreshes = [r for r in rows if r["kind"] == "refresh"]
        total = sum(r["duration_ms"] for r in refreshes)
        for r in refreshes:
            share = r["duration_ms"] / total if total else 1 / len(refreshes)
            r["billed_duration_ms"] = math.ceil(invocation_ms * share)
        assert PROCESSING_LOG.schema is not None
        try:
            table = pa.Table.from_pylist(rows, schema=PROCESSING_LOG.schema)
            return self._tables.append_rows(
                self.database, topology.OPS_PREFIX, PROCESSING_LOG, table, {"lake.ledger.rows": str(len(rows))}
            )
        except Exception as exc:  # the ledger describes work that is done; it never undoes or fails it
            raise LedgerWriteError(
                f"{len(rows)} processing-log row(s) of request {self._request_id} were not written to "
                f"{self.database}.{PROCESSING_LOG.name}: {type(exc).__name__}: {exc}; the files and refreshes "
                "they describe are committed and announced (their completion events hold the same facts); "
                f"check that Glue database {self.database} exists and the function may write it",
                rows=len(rows),
            ) from exc


@contextlib.contextmanager
def logged_invocation(ledger: Ledger | None, context: Any, log: Any, metrics: Any) -> Iterator[None]:
    """One invocation of either function: its ledger rows are collected while the batch runs and
    appended in one commit at the end, after every record's own commits and announcements."""
    if ledger is not None:
        ledger.begin(context)
    try:
        yield
    finally:
        write_ledger(ledger, log, metrics)


def write_ledger(ledger: Ledger | None, log: Any, metrics: Any) -> None:
    """End of an invocation: append its ledger rows, unless less than :data:`LEDGER_WRITE_MARGIN_MS`
    is left of it; a skip or a failure is a warning and metrics, never raised."""
    if ledger is None:
        return
    from aws_lambda_powertools.metrics import MetricUnit

    lost = ledger.unbuilt
    if lost:
        metrics.add_metric("LedgerRowErrors", MetricUnit.Count, lost)
    remaining = ledger.remaining_ms()
    if ledger.pending and remaining is not None and remaining < LEDGER_WRITE_MARGIN_MS:
        skipped = ledger.discard()
        log.warning(
            f"{skipped} processing-log row(s) of request {ledger.request_id} were not written to "
            f"{ledger.database}.{PROCESSING_LOG.name}: only {remaining} ms of the invocation were left, under the "
            f"ledger's margin of {LEDGER_WRITE_MARGIN_MS} ms, and a commit running past the timeout would have the "
            "whole batch delivered again; the files and refreshes they describe are committed and announced (their "
            "completion events hold the same facts); raise the function's timeout or lower its batch size"
        )
        metrics.add_metric("LedgerWriteSkipped", MetricUnit.Count, 1)
        lost += skipped
    else:
        try:
            committed = ledger.write()
        except LedgerWriteError as exc:
            log.warning(str(exc))
            metrics.add_metric("LedgerWriteFailures", MetricUnit.Count, 1)
            lost += exc.rows
        else:
            if committed is not None:
                metrics.add_metric("LedgerRows", MetricUnit.Count, committed.rows)
    if lost:
        metrics.add_metric("LedgerRowsLost", MetricUnit.Count, lost)


class LedgerPublisher(EventPublisher):
    """Publishes like :class:`EventPublisher`; each announcement also becomes a ledger row."""

    def __init__(self, events: Any, bus_name: str, ledger: Ledger) -> None:
        super().__init__(events, bus_name)
        self.ledger = ledger

    def publish(self, detail: dict[str, Any]) -> None:
        super().publish(detail)
        # After the event went out: an outcome EventBridge refused is retried, not logged twice;
        # from here on nothing may fail the record (Ledger.file never raises).
        self.ledger.file(detail)

    def publish_models(self, detail: dict[str, Any]) -> None:
        super().publish_models(detail)
        self.ledger.refresh(detail)
