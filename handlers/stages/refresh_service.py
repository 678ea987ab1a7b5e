"""The refresh stage: recomputes a dataset's models from its whole curated history.

One refresh request at a time per dataset (the FIFO queue's message group). The refresh pins the
current snapshot of every table its refreshers read, skips when the dataset's last refresh read
exactly those (``refresh#<dataset>`` in the idempotency table), else runs each refresher's SQL
(DuckDB here, or Athena above the size threshold), writes the model tables (one snapshot per
``as_of``), records the input snapshots and announces ``Dataset Models Updated``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

import topology
from analytics.base import ModelTable, RefreshContext, TableSpec
from analytics.errors import DataError
from analytics.registry import dataset_table_name, refreshers
from handlers.adapters.ledger import Ledger
from handlers.adapters.publisher import EventPublisher
from handlers.adapters.refresh_requests import RefreshRequest, parse_refresh_request
from handlers.adapters.store import LakeStore
from handlers.errors import PermanentError
from handlers.outcome import Committed
from handlers.settings import Settings
from handlers.stages.refresh_queries import RefreshQueries
from query.athena import AthenaEngine
from query.catalog import Catalog, Pinned
from query.local import DuckDBEngine
from query.sql import TableRef

logger = logging.getLogger(__name__)

#: A report is drawn only with this much of the function's time left (drawing takes seconds; a
#: timeout while drawing would lose the refresh's announcement, and SQS would run it again).
REPORT_MIN_REMAINING_MS = 30_000

#: DuckDB's part of the function's memory; past it DuckDB spills to /tmp. The rest is Python's,
#: Arrow's and the models', which at 20,000,000 orders hold about 1.8 GB themselves. At 60% a
#: refresh of 10,000,000 orders whose keys repeat peaked at 2,553 MB, at 35% at 1,936 MB in as much
#: time (25.5 s against 26.5 s); see docs/refresh.md.
DUCKDB_MEMORY_SHARE = 0.35


class NoRefreshersError(PermanentError):
    """A refresh was asked for a dataset that has no models over its history."""

    code = "NoRefreshers"


@dataclass(frozen=True)
class RefreshRecord:
    """What the dataset's last successful refresh read and wrote."""

    inputs: dict[str, int | None]
    outputs: dict[str, int | None]
    refreshed_at: str


class RefreshRecords:
    """Items ``refresh#<dataset>`` of the idempotency table (never expiring)."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self._dynamodb = dynamodb
        self._table = table

    def _key(self, dataset: str) -> dict[str, Any]:
        return {topology.IDEMPOTENCY_KEY_ATTRIBUTE: {"S": f"{topology.REFRESH_RECORD_PREFIX}{dataset}"}}

    def get(self, dataset: str) -> RefreshRecord | None:
        item = self._dynamodb.get_item(TableName=self._table, Key=self._key(dataset), ConsistentRead=True).get("Item")
        if not item:
            return None
        return RefreshRecord(
            inputs=json.loads(item["inputs"]["S"]),
            outputs=json.loads(item["outputs"]["S"]),
            refreshed_at=item["refreshed_at"]["S"],
        )

    def put(self, dataset: str, record: RefreshRecord) -> None:
        self._dynamodb.put_item(
            TableName=self._table,
            Item={
                **self._key(dataset),
                "inputs": {"S": json.dumps(record.inputs, sort_keys=True)},
                "outputs": {"S": json.dumps(record.outputs, sort_keys=True)},
                "refreshed_at": {"S": record.refreshed_at},
            },
        )


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class RefreshReport:
    """Builds the detail of ``Dataset Models Updated`` / ``Dataset Models Failed``."""

    dataset: str | None
    requests: list[RefreshRequest] = field(default_factory=list)
    inputs: list[Pinned] = field(default_factory=list)
    engine: str | None = None
    outputs: list[tuple[Committed, str]] = field(default_factory=list)
    models: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    #: Inputs that are the refreshers' own tables read back: read, but not what the refresh is of.
    read_back: set[str] = field(default_factory=set)
    #: Where the refresh's report went (``as_of``, ``uri``, ``latest``); None when none was drawn.
    report: dict[str, Any] | None = None

    def detail(self, error: Exception | None = None, message: str | None = None, retryable: bool = False) -> dict:
        self.timings["total"] = round((time.perf_counter() - self.started) * 1000, 1)
        status = "failed" if error is not None else "succeeded"
        # The key names what the refresh is of: a retry that reads back the table its crashed attempt
        # already wrote announces the same refresh under the same key.
        inputs = {p.qualified: p.snapshot_id for p in self.inputs if p.qualified not in self.read_back}
        key_text = json.dumps([self.dataset, sorted(inputs.items()), status])
        detail: dict[str, Any] = {
            "schema_version": topology.EVENT_SCHEMA_VERSION,
            "event_key": hashlib.sha256(key_text.encode()).hexdigest()[:32],
            "status": status,
            "dataset": self.dataset,
            "inputs": [
                {
                    "database": p.database,
                    "table": p.name,
                    "snapshot_id": p.snapshot_id,
                    "rows": p.rows,
                    "bytes": p.bytes,
                }
                for p in self.inputs
            ],
            "engine": self.engine,
            "requested_by": [
                {"key": r.key, "version": r.version, "reason": r.reason, "requested_at": r.requested_at or None}
                for r in self.requests
            ],
            "outputs": [
                {
                    "database": c.database,
                    "table": c.table,
                    "location": c.location,
                    "snapshot_id": c.snapshot_id,
                    "partition_spec": c.partition_spec,
                    "rows": c.rows,
                    "as_of": as_of,
                }
                for c, as_of in self.outputs
            ],
            "models": self.models,
            "report": self.report,
            "timings_ms": self.timings,
            "refreshed_at": _now(),
        }
        if error is not None:
            detail["error"] = {"type": type(error).__name__, "message": message or str(error), "retryable": retryable}
        return detail


class RefreshService:
    """Turns one refresh request into model tables and a ``Dataset Models …`` event."""

    def __init__(
        self,
        settings: Settings,
        store: LakeStore,
        resolver: Catalog,
        publisher: EventPublisher,
        records: RefreshRecords,
        athena: Callable[[], Any] | None = None,
        ledger: Ledger | None = None,
        s3: Any = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.resolver = resolver
        self.publisher = publisher
        self.records = records
        # Built on first use: most refreshes never need Athena.
        self._athena = athena
        #: Reads back what Athena's UNLOAD writes under athena-results/ of the lake bucket.
        self.s3 = s3
        self.memory_limit_mb: int | None = None
        self._context: Any = None
        # The invocation's rows of lake_ops.processing_log (its publisher records each announcement).
        self.ledger = ledger

    def register_context(self, context: Any) -> None:
        """DuckDB gets part of the function's memory; the rest is Python's, Arrow's and the models'."""
        self._context = context
        memory = getattr(context, "memory_limit_in_mb", None)
        self.memory_limit_mb = int(int(memory) * DUCKDB_MEMORY_SHARE) if memory else None

    def handle_body(self, body: str, receive_count: int = 1) -> dict[str, Any]:
        """Refresh the dataset the request names. Permanent failures are published and returned;
        transient ones raise (SQS retries; the last attempt publishes the failure first)."""
        report = RefreshReport(dataset=None)
        try:
            request = parse_refresh_request(body)
            report.dataset = dataset_table_name(request.dataset)
            report.requests.append(request)
            return self._refresh(report)
        except (PermanentError, DataError) as exc:
            return self._fail(report, exc, f"{exc}; fix the cause, then ask again (a new file or `lake reprocess`)")
        except Exception as exc:
            if receive_count >= self.settings.max_receive_count:
                message = (
                    f"{exc} (attempt {receive_count} of {self.settings.max_receive_count}: the request moves to the "
                    "refresh dead-letter queue; the model tables keep their previous snapshots; fix the cause, then "
                    "redrive it or drop a file)"
                )
                try:
                    self._fail(report, exc, message, retryable=True)
                except Exception:  # the original error matters more than a failed announcement
                    logger.exception("could not publish the failure event")
            raise

    def _fail(self, report: RefreshReport, error: Exception, message: str, retryable: bool = False) -> dict[str, Any]:
        detail = report.detail(error, message, retryable)
        logger.warning("refresh failed: %s", message)
        self.publisher.publish_models(detail)
        return detail

    def _refresh(self, report: RefreshReport) -> dict[str, Any]:
        dataset = report.dataset
        assert dataset is not None
        specs = refreshers(dataset)
        if not specs:
            raise NoRefreshersError(f"dataset {dataset} has no models over its history to refresh")
        t0 = time.perf_counter()
        self.resolver.forget()  # a warm function: tables may have been created since its last refresh
        pinned = self.resolver.pin(sorted({name for spec in specs for name in (*spec.inputs, *spec.reads_back)}))
        report.inputs = [pinned[k] for k in sorted(pinned)]
        # A model's own table read back changes with every refresh: it never makes one due (unless
        # another refresher reads it as an input).
        inputs = {name for spec in specs for name in spec.inputs}
        own = {
            f"{self.settings.curated_database}.{name}"
            for spec in specs
            for name in spec.reads_back
            if name not in inputs
        }
        report.read_back = own
        current = {k: p.snapshot_id for k, p in sorted(pinned.items()) if k not in own}
        last = self.records.get(dataset)
        if last is not None and last.inputs == current:
            logger.info(
                "refresh of %s skipped: its last refresh (%s) read %s already", dataset, last.refreshed_at, current
            )
            return {"status": "skipped", "dataset": dataset, "inputs": current}
        size = sum(p.bytes for p in pinned.values())
        query = self._engine(pinned, size)
        report.engine = query.engine
        report.timings["pin"] = round((time.perf_counter() - t0) * 1000, 1)
        summary = {
            "lake.refresh.dataset": dataset,
            "lake.refresh.inputs": json.dumps(current, sort_keys=True),
            "lake.refresh.engine": query.engine,
        }
        written: dict[str, int | None] = {}
        models: list[ModelTable] = []
        context = RefreshContext(
            settings=self.store.dataset_settings(dataset),
            tables=frozenset(p.name for p in pinned.values() if p.database == self.settings.curated_database),
        )
        for spec in specs:
            t1 = time.perf_counter()
            try:
                result = spec.load()(query, context)
            except DataError as exc:
                # One model that cannot be fitted never holds back the others; its tables keep their
                # previous snapshots and the fact says why.
                report.models.append(
                    {"name": spec.name, "version": "?", "metrics": {"status": "failed", "error": str(exc)}}
                )
                continue
            report.timings[spec.name] = round((time.perf_counter() - t1) * 1000, 1)
            report.models += [{"name": f.name, "version": f.version, "metrics": dict(f.metrics)} for f in result.facts]
            t1 = time.perf_counter()
            models += result.tables
            for model in result.tables:
                committed = self.store.tables.replace_partition(
                    self.settings.curated_database,
                    topology.CURATED_PREFIX,
                    model.spec,
                    model.rows,
                    model.as_of,
                    summary,
                )
                report.outputs.append((committed, model.as_of.isoformat()))
                written[f"{committed.database}.{committed.table}"] = committed.snapshot_id
                # The obvious name (experiment_results) shows the newest snapshot of the history table.
                self.store.put_current_view(model.spec)
            report.timings[f"{spec.name}_commit"] = round((time.perf_counter() - t1) * 1000, 1)
        if size > self.settings.refresh_athena_threshold_bytes and query.engine != "athena":
            report.models.append(
                {
                    "name": "refresh_engine",
                    "version": "1",
                    "metrics": {
                        "note": f"inputs hold {size} bytes, above the Athena threshold of "
                        f"{self.settings.refresh_athena_threshold_bytes}, but no Athena workgroup is configured; "
                        "DuckDB ran it here",
                    },
                }
            )
        t1 = time.perf_counter()
        report.models += self._score(dataset, models, summary, report)
        report.timings["scoring"] = round((time.perf_counter() - t1) * 1000, 1)
        failed = [m for m in report.models if m["metrics"].get("status") == "failed"]
        if len(failed) == len(specs) and not report.outputs:
            error = PermanentError("; ".join(str(m["metrics"]["error"]) for m in report.models))
            return self._fail(report, error, f"no model of {dataset} could be refreshed: {error}")
        t1 = time.perf_counter()
        self._write_report(dataset, report, query)
        report.timings["report"] = round((time.perf_counter() - t1) * 1000, 1)
        detail = report.detail()
        # Announced before recorded: a failure in between refreshes again (the same event_key,
        # which subscribers dedupe) rather than leaving a refresh unannounced.
        self.publisher.publish_models(detail)
        self.records.put(dataset, RefreshRecord(current, written, _now()))
        return detail

    def _score(
        self, dataset: str, models: list[ModelTable], summary: dict[str, str], report: RefreshReport
    ) -> list[dict[str, Any]]:
        """Score the refreshed tables with the models users declared for them (``models/<dataset>/``)
        into ``<table>_scores``, one snapshot per as_of. A broken model is a failed fact, never a
        failed refresh."""
        by_name = {m.spec.name: m for m in models}
        manifests = self.store.model_manifests(dataset) if by_name else []
        if not manifests:
            return []
        from analytics import scoring
        from analytics.base import SourceInfo

        facts: list[dict[str, Any]] = []
        scored: dict[str, list[pa.Table]] = {}
        for key in manifests:
            name, version = key.removeprefix(f"{topology.MODELS_PREFIX}{dataset}/").rpartition("/")[0] or dataset, "?"
            try:
                manifest = scoring.parse_manifest(self.store.read_bytes(key))
                name, version = manifest.name, manifest.version
                target = by_name.get(manifest.table)
                if target is None:
                    continue  # a model of a per-file table: the per-file stage scores it
                model = scoring.load_model(
                    self.store.read_bytes(f"{key.rsplit('/', 1)[0]}/{manifest.model_file}"),
                    trusted=self.settings.trusted_model_types,
                )
                source = SourceInfo(dataset, f"refresh-{target.as_of.isoformat()}", key, target.as_of)
                scores = scoring.score_table(model, manifest, target.rows, source)
                fact = scoring.scoring_fact(manifest, scores)
                facts.append(
                    {"name": fact.name, "version": fact.version, "metrics": {"status": "scored", **fact.metrics}}
                )
                rows = scores.drop_columns(["source_id", "ingest_date"]).append_column(
                    "as_of", pa.repeat(pa.scalar(target.as_of, pa.date32()), scores.num_rows)
                )
                scored.setdefault(manifest.table, []).append(rows)
            except (DataError, PermanentError) as exc:
                logger.warning("model %s not applied: %s", key, exc)
                facts.append({"name": name, "version": version, "metrics": {"status": "failed", "error": str(exc)}})
        for table, parts in sorted(scored.items()):
            target = by_name[table]
            spec = TableSpec(
                f"{table}_scores",
                "as_of",
                f"Scores of models users bring for the refreshed table {table}: one row per scored row and model.",
            )
            committed = self.store.tables.replace_partition(
                self.settings.curated_database, topology.CURATED_PREFIX, spec, pa.concat_tables(parts),
                target.as_of, summary,
            )  # fmt: skip
            report.outputs.append((committed, target.as_of.isoformat()))
        return facts

    def _write_report(self, dataset: str, report: RefreshReport, refreshed: RefreshQueries | None = None) -> None:
        """Draw the dataset's report from its tables as this refresh left them and upload it as
        ``reports/<dataset>/<as_of>.html`` and ``latest.html``. The models are committed by now, so a
        report that cannot be drawn or stored is a failed fact, never a failed refresh."""
        from reports import build_report, curated_inputs

        as_ofs = sorted(as_of for _, as_of in report.outputs)
        as_of = dt.date.fromisoformat(as_ofs[-1]) if as_ofs else None
        database = self.settings.curated_database
        written = {c.table for c, _ in report.outputs if c.database == database}
        remaining = self._remaining_ms()
        if remaining is not None and remaining < REPORT_MIN_REMAINING_MS:
            # The models are committed; the announcement must not be lost to a timeout while drawing.
            report.models.append(
                {
                    "name": "report",
                    "version": "1",
                    "metrics": {
                        "status": "skipped",
                        "note": f"{remaining / 1000:.0f} s of the function's time left, under the "
                        f"{REPORT_MIN_REMAINING_MS / 1000:.0f} s a report may take; the next refresh draws it",
                    },
                }
            )
            return
        self.resolver.forget()  # this refresh may have created some of the tables the report reads
        try:
            # The dataset's own table or view (its profile's histograms), the profiles and the model
            # tables, as the report's SQL names them; the quarantine by its database.
            wanted = written | curated_inputs(dataset)
            curated = sorted(n for n in wanted if self.resolver.find(TableRef(database, n)))
            quarantine = self.resolver.pin([dataset], database=self.settings.quarantine_database)
            pinned = self.resolver.pin(curated) | quarantine
            tables = frozenset(curated) | {p.qualified for p in quarantine.values()}
            # Above the Athena threshold the report's SQL runs there too, as the refresh's did. A view
            # the refreshers computed (the keyed dataset's dedupe), or found to be its table, is reused
            # if its tables are unchanged.
            query = self._engine(pinned, sum(p.bytes for p in pinned.values()), refreshed)
            drawn = build_report(dataset, query, tables, as_of, facts=report.models)
            name = drawn.as_of.isoformat() if drawn.as_of else "undated"
            prefix = f"{topology.REPORTS_PREFIX}{dataset}/"
            uri = self.store.write_report(f"{prefix}{name}.html", drawn.html, name)
            latest = self.store.write_report(f"{prefix}latest.html", drawn.html, name)
        except Exception as exc:  # a report is a view of committed tables: losing one loses no data
            logger.warning("report of %s not written: %s", dataset, exc, exc_info=True)
            report.models.append(
                {
                    "name": "report",
                    "version": "1",
                    "metrics": {"status": "failed", "error": f"{type(exc).__name__}: {exc}"},
                }
            )
            return
        report.report = {"as_of": name, "uri": uri, "latest": latest, "notes": list(drawn.notes)}

    def _remaining_ms(self) -> int | None:
        """Milliseconds left before the function times out; None outside Lambda's context."""
        remaining = getattr(self._context, "get_remaining_time_in_millis", None)
        return int(remaining()) if callable(remaining) else None

    def _engine(self, pinned: dict[str, Pinned], size: int, views_from: RefreshQueries | None = None) -> RefreshQueries:
        if size > self.settings.refresh_athena_threshold_bytes and self.settings.athena_workgroup and self._athena:
            return RefreshQueries(
                AthenaEngine(
                    self._athena(),
                    self.settings.athena_workgroup,
                    self.settings.curated_database,
                    s3=self.s3,
                    results=f"s3://{self.settings.bucket}/{topology.ATHENA_RESULTS_PREFIX}",
                )
            )
        return RefreshQueries(
            DuckDBEngine(
                self.resolver,
                pinned=pinned,
                memory_limit_mb=self.memory_limit_mb,
                views_from=views_from.local if views_from is not None else None,
            )
        )
