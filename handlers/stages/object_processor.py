"""Processes one object end to end: the imperative shell around the analytics pipelines."""

from __future__ import annotations

import datetime as dt
import logging
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

import topology
from analytics.base import (
    DateDecision,
    DateHistory,
    SourceInfo,
)
from analytics.contract import Tolerance
from analytics.errors import DataError
from analytics.personal import PersonalDataPolicy, Pseudonymiser
from analytics.registry import dataset_table_name, get_pipeline, refreshed_tables
from handlers.adapters.committer import Holder
from handlers.adapters.export_shapes import ExportShapes, export_shape
from handlers.adapters.failure_records import FailureLog
from handlers.adapters.ledger import Ledger
from handlers.adapters.publisher import EventPublisher
from handlers.adapters.reader import ReadOptions, SourceReader, dataset_of, detect_format
from handlers.adapters.refresh_requests import RefreshRequester
from handlers.adapters.source_records import SourceRegister, SourceState
from handlers.adapters.staging import Lineage, StagingSink
from handlers.adapters.store import LakeStore, ObjectInfo
from handlers.errors import (
    ForeignObjectError,
    ObjectNotFoundError,
    PermanentError,
    ProcessingInProgressError,
    PseudonymKeyError,
    UnsupportedObjectError,
)
from handlers.events import ObjectRequest, parse_body
from handlers.outcome import (
    Committed,
    Failure,
    FileCompletion,
    ModelOutcome,
    QuarantineFacts,
    RowCounts,
    SourceFacts,
    TableOutput,
    event_key,
)
from handlers.settings import Settings
from handlers.stages.file import FileOutcome, located, stage_file

logger = logging.getLogger(__name__)


def _delimiter(reader: SourceReader) -> str:
    """The delimiter part of an export shape: a CSV's delimiter, else the format (JSON lines)."""
    return reader.delimiter or reader.format


@dataclass
class Report:
    """Collects what processing one message did; :meth:`completion` is the outcome it announces."""

    request: ObjectRequest | None
    info: ObjectInfo | None = None
    dataset: str | None = None
    #: What happened to the key's rows: created, replaced, removed, unchanged (see the README).
    change: str = "unchanged"
    outputs: list[Committed] = field(default_factory=list)
    #: What the per-file stage found; None before the file was read (and for a deletion).
    file: FileOutcome | None = None
    quarantine: Committed | None = None
    note: str | None = None
    #: ``database.table`` this attempt announced it would write (kept in the key's record on failure).
    planned: list[str] = field(default_factory=list)
    #: What the models users put under ``models/<dataset>/`` did on the file's tables.
    scored: list[ModelOutcome] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    #: Pseudonymises the file's personal data; its summary goes into the event.
    personal: Pseudonymiser | None = None
    #: The raw key's lease this attempt holds (its table commits are made only while it is held).
    holder: Holder | None = None

    def completion(self, error: Exception | None = None, message: str | None = None) -> FileCompletion:
        """The outcome to announce; with ``error`` a failure (never retried: a retried one is not announced)."""
        request, info = self.request, self.info
        self.timings["total"] = round((time.perf_counter() - self.started) * 1000, 1)
        status = "failed" if error else "succeeded"
        change = "unchanged" if error else self.change
        source = SourceFacts(
            bucket=info.bucket if info else request.bucket if request else None,
            key=info.key if info else request.key if request else None,
            version_id=info.version_id if info else request.version_id if request else None,
            etag=info.etag if info else (request.etag or None) if request else None,
            size=info.size if info else int(request.size) if request and request.size is not None else None,
            source_id=info.source_id if info else None,
            sequencer=request.sequencer if request else None,
            trigger=request.trigger if request else "unknown",
            reason=request.reason if request else None,
        )
        revision = (info.version_id or info.etag) if info else request.revision if request else ""
        deleted = "deleted:" if request and request.deleted else ""
        staged = self.file
        # The line counts of a file its pipeline did not finish are partial: its events never gave them.
        ran = staged is not None and staged.process_ms is not None
        return FileCompletion(
            event_key=event_key(source, f"{deleted}{revision}", request.request_id if request else None,
                                f"{status}:{change}"),
            change=change,
            dataset=self.dataset,
            source=source,
            processed_at=dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            outputs=tuple(TableOutput.of(o) for o in self.outputs),
            rows=RowCounts() if staged is None else RowCounts(
                staged.rows_in, staged.duplicates, staged.duplicates_dropped, staged.rejected,
                staged.lines if ran else None, staged.multiline if ran else 0,
                staged.preamble, staged.summary, staged.footer,
            ),
            reasons=dict(staged.reasons) if staged else {},
            quarantine=QuarantineFacts.of(self.quarantine),
            models=(*(ModelOutcome(m.name, m.version, m.metrics) for m in staged.models), *self.scored)
            if staged else tuple(self.scored),
            timings_ms=dict(self.timings),
            source_format=staged.source_format if staged else None,
            export=dict(staged.export) if staged else {},
            read=staged.read if staged else None,
            note=self.note,
            personal_data=self.personal.summary() if self.personal is not None else None,
            error=Failure(type(error).__name__, message or str(error)) if error is not None else None,
        )  # fmt: skip

    def detail(self, error: Exception | None = None, message: str | None = None) -> dict[str, Any]:
        """The completion event's detail (:meth:`completion`'s view)."""
        return self.completion(error, message).event_detail()


class ObjectProcessor:
    """Turns one SQS message into curated tables, quarantine and a completion event."""

    def __init__(
        self,
        settings: Settings,
        store: LakeStore,
        publisher: EventPublisher,
        sources: SourceRegister,
        run_once: Callable[[Callable[[], dict[str, Any]], dict[str, str]], dict[str, Any]] | None = None,
        failures: FailureLog | None = None,
        refresh: RefreshRequester | None = None,
        shapes: ExportShapes | None = None,
        ledger: Ledger | None = None,
        pseudonym_key: bytes | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.publisher = publisher
        # One invocation at a time commits a raw key; it commits only the key's current version.
        self.sources = sources
        self._context: Any = None
        # Wraps processing so one object version is processed (and announced) once; see bootstrap.
        self._run_once = run_once or (lambda work, identity: work())
        # Records why a message failed, so `lake dlq list` can show it once it is dead-lettered.
        self.failures = failures
        # Asks the refresh stage to recompute the dataset's models after a commit changed its rows.
        self.refresh = refresh
        # Remembers the day/month order files of an export shape proved, for later ambiguous files.
        self.shapes = shapes
        # The invocation's rows of lake_ops.processing_log (its publisher records each announcement).
        self.ledger = ledger
        # Personal data in curated and quarantine rows is pseudonymised with it (None: refuse to write).
        self.pseudonym_key = pseudonym_key

    def register_context(self, context: Any) -> None:
        """Tell idempotency how long this invocation may still run."""
        register = getattr(self._run_once, "register_context", None)
        if register is not None and context is not None:
            register(context)
        self._context = context

    def handle_body(self, body: str, receive_count: int = 1, message_id: str | None = None) -> dict[str, Any]:
        """Process one message body. Permanent failures are published and returned; others raise.

        A raised failure is recorded under the SQS ``message_id`` (see ``handlers.adapters.failure_records``).
        """
        report = Report(request=None)
        try:
            request = parse_body(body)
            report.request = request
            self._check_scope(request)
            report.dataset = dataset_table_name(dataset_of(request.key))
            if request.deleted:
                info, key = None, self._deleted_key(request)
            else:
                info = self.store.head(request.bucket, request.key, request.version_id)
                key = info.key
            report.info = info
        except ObjectNotFoundError as exc:
            # The version was deleted after its event: the deletion's own event (or the key's newer
            # version) brings the lake to the key's current state, so this one changes nothing.
            return self._unchanged(report, f"{exc}; the lake follows the key's current state instead")
        except PermanentError as exc:
            return self._fail(report, exc)
        except Exception as exc:
            self._record_failure(message_id, report, exc)
            self._announce_if_last_attempt(report, exc, receive_count)
            raise
        identity = {
            "bucket": request.bucket,
            "key": key,
            "version": (info.version_id or info.etag) if info else f"deleted:{request.revision}",
            "request": request.request_id or "",
        }
        try:
            return self._run_once(lambda: self._under_lease(report, identity["key"]), identity)
        except Exception as exc:
            self._record_failure(message_id, report, exc)
            self._announce_if_last_attempt(report, exc, receive_count)
            raise

    def _deleted_key(self, request: ObjectRequest) -> str:
        """The key a deletion event names, decoded like ``head`` decodes keys of creations: the
        candidate the lake holds rows of, else the first that differs from no other."""
        candidates = [request.key]
        for decoded in (urllib.parse.unquote_plus(request.key), urllib.parse.unquote(request.key)):
            if decoded not in candidates:
                candidates.append(decoded)
        known = [k for k in candidates if self.sources.known(request.bucket, k)]
        return known[0] if known else candidates[-1] if len(candidates) > 1 else request.key

    def _check_scope(self, request: ObjectRequest) -> None:
        if request.bucket != self.settings.bucket:
            raise ForeignObjectError(
                f"s3://{request.bucket}/{request.key} is not in the lake bucket {self.settings.bucket}; "
                "check the EventBridge rule or the process request"
            )
        if not request.key.startswith(topology.RAW_PREFIX):
            raise ForeignObjectError(
                f"{request.key} is outside {topology.RAW_PREFIX}; only objects under raw/ are processed"
            )
        if request.dataset is not None and request.dataset != dataset_of(request.key):
            raise UnsupportedObjectError(
                f"{request.key}: the request names dataset {request.dataset!r} but the key is in "
                f"{dataset_of(request.key)!r}; drop the dataset field or fix the key"
            )

    def _fail(self, report: Report, error: Exception, message: str | None = None) -> dict[str, Any]:
        completion = report.completion(error, message)
        assert completion.error is not None
        logger.warning("processing failed: %s", completion.error.message)
        detail = completion.event_detail()
        self.publisher.publish(detail)
        return detail

    def _record_failure(self, message_id: str | None, report: Report, error: Exception) -> None:
        if self.failures is not None:
            key = report.info.key if report.info else report.request.key if report.request else None
            self.failures.record(message_id, key, error)

    def _announce_if_last_attempt(self, report: Report, error: Exception, receive_count: int) -> None:
        # A transient failure is announced once, when SQS will not deliver the message again. A copy
        # that met another invocation still at work is not a failure of the object: that one reports.
        if receive_count < self.settings.max_receive_count or isinstance(error, ProcessingInProgressError):
            return
        message = (
            f"{error} (attempt {receive_count} of {self.settings.max_receive_count}: the message moves to the "
            "dead-letter queue; fix the cause, then redrive it with `lake dlq redrive`)"
        )
        try:
            self._fail(report, error, message)
        except Exception:  # the original error matters more than a failed announcement
            logger.exception("could not publish the failure event")

    def _lease_seconds(self) -> float:
        remaining = getattr(self._context, "get_remaining_time_in_millis", None)
        return remaining() / 1000 if remaining is not None else float(self.settings.lease_seconds)

    def _under_lease(self, report: Report, key: str) -> dict[str, Any]:
        """Hold the key's lease, then commit what S3 holds for the key now (or remove its rows)."""
        request = report.request
        assert request is not None
        bucket, owner = request.bucket, uuid.uuid4().hex
        state = self.sources.acquire(bucket, key, owner, self._lease_seconds())
        # The table committers commit this key's intents only while this lease is held.
        report.holder = Holder(bucket, key, owner)
        outcome: SourceState | None = None
        try:
            current = self.store.current(bucket, key)
            if request.deleted and current is None:
                outcome = self._remove(report, key, state)
                detail = report.detail()
                self.publisher.publish(detail)
                self._ask_for_refresh(report)
                return detail
            if request.deleted:
                assert current is not None
                if state.version == (current.version_id or current.etag) and not state.deleted:
                    return self._unchanged(
                        report, f"{key} still exists (version {state.version} is current), so its rows stay"
                    )
                report.info = current  # a noncurrent version became current again: mirror it
            info = report.info
            assert info is not None
            if current is None or (current.version_id or current.etag) != (info.version_id or info.etag):
                return self._unchanged(
                    report,
                    f"{key}: version {info.version_id or info.etag} is no longer the key's current version "
                    "(a newer upload or a deletion came after it), so the lake keeps the newer state",
                )
            detail, outcome = self._process(report, state, owner)
            self._ask_for_refresh(report)
            return detail
        finally:
            self.sources.release(bucket, key, owner, outcome)

    def _ask_for_refresh(self, report: Report) -> None:
        """After a commit changed a curated table of a dataset with models over its history, ask
        the refresh stage for them (inside the work idempotency guards: if sending fails, the
        record is retried and asks again, so no commit goes unrefreshed)."""
        if self.refresh is None or report.dataset is None:
            return
        from handlers.adapters.refresh_requests import RefreshRequest, snapshot_map, wanted

        changed = [o for o in report.outputs if o.snapshot_id is not None or report.change == "removed"]
        if not changed or not wanted(report.dataset):
            return
        request, info = report.request, report.info
        self.refresh.request(
            RefreshRequest(
                dataset=report.dataset,
                snapshots=snapshot_map(changed),
                key=info.key if info else request.key if request else None,
                version=(info.version_id or info.etag) if info else request.revision if request else None,
                reason="removed" if report.change == "removed" else "commit",
            )
        )

    def _unchanged(self, report: Report, note: str) -> dict[str, Any]:
        report.change = "unchanged"
        report.note = note
        logger.info(note)
        detail = report.detail()
        self.publisher.publish(detail)
        return detail

    def _summary(self, report: Report) -> dict[str, str]:
        """Snapshot summary properties: which raw object a commit came from."""
        request, info = report.request, report.info
        assert request is not None
        return {
            "lake.source-key": info.key if info else request.key,
            "lake.source-version": (info.version_id or info.etag) if info else request.revision,
            "lake.trigger": request.trigger,
        }

    def _remove(self, report: Report, key: str, state: SourceState) -> SourceState:
        """The raw object is gone: drop its rows from every table it wrote, and its quarantine."""
        assert report.request is not None and report.dataset is not None
        tables = {*state.tables, f"{self.settings.quarantine_database}.{report.dataset}"}
        removed = self.store.remove_rows(tables, key, self._summary(report), report.holder)
        report.change = "removed"
        report.quarantine = next((c for c in removed if c.database == self.settings.quarantine_database), None)
        report.outputs = [c for c in removed if c.database != self.settings.quarantine_database]
        return SourceState(version=report.request.revision, tables=(), deleted=True)

    def _process(self, report: Report, state: SourceState, owner: str) -> tuple[dict[str, Any], SourceState]:
        info = report.info
        assert info is not None
        try:
            segment = dataset_of(info.key)
            report.dataset = dataset_table_name(segment)
            fmt = detect_format(info.key)
            pipeline = get_pipeline(segment)
            settings = self.store.dataset_settings(report.dataset)
            pipeline.tolerance = Tolerance.from_settings(settings, report.dataset, pipeline.tolerance).share
            report.personal = self._pseudonymiser(settings, report.dataset)
            lineage = Lineage(info.key, info.version_id or info.etag, info.source_id, info.last_modified)
            summary = self._summary(report)
            options = ReadOptions.from_settings(settings, f"{topology.SETTINGS_PREFIX}{report.dataset}.json")
            reader = SourceReader(info.key, fmt, lambda: self.store.open(info), options)
            source = SourceInfo(
                dataset=report.dataset,
                source_id=info.source_id,
                key=info.key,
                ingest_date=info.last_modified.date(),
                settings=settings,
                date_history=self._date_history(report.dataset, reader),
            )
            specs = list(pipeline.tables(source))
            with StagingSink(specs, lineage=lineage, personal=report.personal) as sink:
                staged = report.file = stage_file(reader, pipeline, source, sink)
                if staged.process_ms is not None:
                    report.timings["process"] = staged.process_ms
                if staged.refusal is not None:
                    # Nothing reaches curated/: the refused rows replace the key's quarantine.
                    self._refuse(report, staged.quarantined, lineage, state, summary)
                    error = staged.refusal.error
                    raise error from (staged.refusal.cause if staged.refusal.cause is not error else None)
                t1 = time.perf_counter()
                report.scored = self._score(report.dataset, source, sink)
                report.timings["models"] = round((time.perf_counter() - t1) * 1000, 1)
                t1 = time.perf_counter()
                rejected = self._pseudonymised(report, sink.quarantine_table())
                planned = self.store.planned_tables(sink, rejected, report.dataset)
                self.sources.intend(info.bucket, info.key, owner, planned)
                report.planned = planned
                report.outputs, report.quarantine = self.store.commit_outputs(
                    sink, rejected, report.dataset, state.tables, summary, report.holder
                )
                report.timings["commit"] = round((time.perf_counter() - t1) * 1000, 1)
        except (PermanentError, DataError) as exc:
            return self._fail(report, exc, located(info.key, exc)), self._refused_state(report, info, state)
        report.change = "replaced" if state.version and not state.deleted else "created"
        self._remember_date_proof(report.dataset, reader, staged.date_decision, info)
        written = {f"{o.database}.{o.table}" for o in report.outputs if o.rows}
        if report.quarantine is not None and staged.rejected:
            written.add(f"{report.quarantine.database}.{report.quarantine.table}")
        detail = report.detail()
        self.publisher.publish(detail)
        return detail, SourceState(version=info.version_id or info.etag, tables=tuple(sorted(written)))

    def _pseudonymiser(self, settings: dict[str, Any], dataset: str) -> Pseudonymiser:
        """This file's pseudonymiser: the process's key, the dataset's ``personal_data`` setting."""
        if self.pseudonym_key is None:
            raise PseudonymKeyError(
                "no pseudonym key is configured, and personal data is never written in clear; build the "
                "processor with handlers.bootstrap.build_processor (it reads the key's secret)"
            )
        return Pseudonymiser(self.pseudonym_key, PersonalDataPolicy.from_settings(settings, dataset))

    @staticmethod
    def _pseudonymised(report: Report, rejected: pa.Table | None) -> pa.Table | None:
        """Quarantined rows as they may be stored: personal values pseudonymised (the one place every
        quarantine commit passes through)."""
        if rejected is None or report.personal is None:
            return rejected
        return report.personal.quarantine(rejected)

    def _date_history(self, dataset: str, reader: SourceReader) -> Callable[[], DateHistory] | None:
        """The lookup a pipeline calls when its file's dates are ambiguous: at most one read of the
        shape's record per file (the header it needs is known once the pipeline read the file)."""
        shapes = self.shapes
        if shapes is None:
            return None
        found: list[DateHistory] = []

        def lookup() -> DateHistory:
            if not reader.columns:  # asked before the header was read: no shape to look up
                return DateHistory()
            if not found:
                found.append(shapes.date_history(dataset, export_shape(dataset, reader.columns, _delimiter(reader))))
            return found[0]

        return lookup

    def _remember_date_proof(
        self, dataset: str, reader: SourceReader, decision: DateDecision | None, info: ObjectInfo
    ) -> None:
        """After the file's commit: a file whose dates proved their order becomes its shape's history."""
        if self.shapes is None or decision is None or decision.decided_by != "proof":
            return
        delimiter = _delimiter(reader)
        self.shapes.record_date_proof(
            dataset,
            export_shape(dataset, reader.columns, delimiter),
            columns=reader.columns,
            delimiter=delimiter,
            decision=decision,
            key=info.key,
            version=info.version_id or info.etag,
            landed_at=info.last_modified,
        )

    def _refused_state(self, report: Report, info: ObjectInfo, state: SourceState) -> SourceState:
        """The key's record after a refusal: every table that may still hold rows of it (earlier
        revisions', ones this attempt may have committed before failing, the quarantine), so a later
        deletion or version looks there."""
        tables = {*state.tables, *report.planned}
        if report.quarantine is not None:
            tables.add(f"{report.quarantine.database}.{report.quarantine.table}")
        return SourceState(version=info.version_id or info.etag, tables=tuple(sorted(tables)))

    def _refuse(
        self, report: Report, rejected: pa.Table | None, lineage: Lineage, state: SourceState, summary: dict[str, str]
    ) -> None:
        """A refused revision: its rows (with reasons) replace the key's quarantine, and the rows an
        earlier revision of the key committed leave the curated tables (they no longer mirror raw/)."""
        assert report.dataset is not None
        rejected = self._pseudonymised(report, rejected)
        report.quarantine = self.store.commit_quarantine(
            report.dataset, rejected, lineage, summary, holder=report.holder
        )
        curated = [t for t in state.tables if not t.startswith(f"{self.settings.quarantine_database}.")]
        report.outputs = self.store.remove_rows(curated, lineage.key, summary, report.holder)

    def _score(self, dataset: str, source: SourceInfo, sink: StagingSink) -> list[ModelOutcome]:
        """Run the models users put under ``models/<dataset>/`` over this file's output tables.

        A broken model never holds the data back: its failure is reported as a model fact with
        ``status: failed`` and the reason, and the file's tables are published without its scores.
        """
        manifests = self.store.model_manifests(dataset)
        if not manifests:
            return []
        from analytics import scoring  # skops and scikit-learn load only for datasets with a model

        facts: list[ModelOutcome] = []
        for key in manifests:
            # Until the manifest is read, the model is known by its folder (models/<dataset>/<folder>/).
            name, version = key.removeprefix(f"{topology.MODELS_PREFIX}{dataset}/").rpartition("/")[0] or dataset, "?"
            try:
                manifest = scoring.parse_manifest(self.store.read_bytes(key))
                name, version = manifest.name, manifest.version
                model_key = f"{key.rsplit('/', 1)[0]}/{manifest.model_file}"
                model = scoring.load_model(self.store.read_bytes(model_key), trusted=self.settings.trusted_model_types)
                if manifest.table not in sink.tables and manifest.table in refreshed_tables(dataset):
                    continue  # the refresh stage scores the table it recomputes
                if manifest.table not in sink.tables:
                    raise scoring.ModelManifestError(
                        f"{key} scores table {manifest.table!r}, which dataset {dataset} does not produce; "
                        f"its tables are {', '.join(sorted(sink.tables))}"
                    )
                table = sink.read_table(manifest.table)
                if table is None:
                    continue
                scores = scoring.score_table(model, manifest, table, source)
                spec = scoring.scores_table_spec(dataset)
                sink.add_table(spec)
                sink.write(spec.name, scores)
                fact = scoring.scoring_fact(manifest, scores)
                facts.append(ModelOutcome(fact.name, fact.version, {"status": "scored", **fact.metrics}))
            except (DataError, ObjectNotFoundError) as exc:
                logger.warning("model %s not applied: %s", key, exc)
                facts.append(ModelOutcome(name, version, {"status": "failed", "error": str(exc)}))
        return facts
