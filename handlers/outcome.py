"""What one file's processing announces: a frozen :class:`FileCompletion`.

The completion event's detail (:meth:`FileCompletion.event_detail`, checked against
``handlers/schemas/completion_event.schema.json``), the function's metrics
(:meth:`FileCompletion.metrics`) and the ledger row (:func:`handlers.adapters.ledger.file_row`) are views
of it. A detail announced earlier (replayed by idempotency, or handed to the ledger by the
publisher) is parsed back with :meth:`FileCompletion.from_detail`. Imports nothing heavy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import topology

Scalar = float | int | str | bool | None


@dataclass(frozen=True)
class Committed:
    """One table's commit, as the completion event describes it."""

    database: str
    table: str
    location: str
    #: The Iceberg snapshot that holds this source's rows (``FOR VERSION AS OF``); None when removed.
    snapshot_id: int | None
    rows: int
    data_files: int
    partition_spec: str
    #: For a keyed table: the view showing each key once (``table`` holds every source's rows).
    view: str | None = None


# The event's objects list their fields in the order of these classes' fields (``asdict``).
@dataclass(frozen=True)
class SourceFacts:
    """The raw object (or the message naming it) the outcome is about."""

    bucket: str | None
    key: str | None
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None
    source_id: str | None = None
    sequencer: str | None = None
    trigger: str = "unknown"
    reason: str | None = None


@dataclass(frozen=True)
class TableOutput:
    """One table's commit as the event describes it (a :class:`Committed`)."""

    database: str
    table: str
    view: str | None = None
    location: str | None = None
    snapshot_id: int | None = None
    partition_spec: str | None = None
    rows: int = 0
    data_files: int = 0

    @classmethod
    def of(cls, c: Committed) -> TableOutput:
        return cls(c.database, c.table, c.view, c.location, c.snapshot_id, c.partition_spec, c.rows, c.data_files)

    @property
    def name(self) -> str:
        return f"{self.database}.{self.table}"


@dataclass(frozen=True)
class QuarantineFacts:
    """Where the file's rejected rows went (its ``rows`` and ``reasons`` are the outcome's)."""

    table: str | None = None
    location: str | None = None
    snapshot_id: int | None = None

    @classmethod
    def of(cls, c: Committed | None) -> QuarantineFacts:
        return cls() if c is None else cls(f"{c.database}.{c.table}", c.location, c.snapshot_id)


@dataclass(frozen=True)
class RowCounts:
    """The file's rows: read, repeated, rejected; a CSV's lines; what was left out around the table."""

    input: int = 0
    duplicates: int = 0
    duplicates_dropped: int = 0
    rejected: int = 0
    lines: int | None = None
    multiline: int = 0
    preamble: int = 0
    summary: int = 0
    footer: int = 0


@dataclass(frozen=True)
class ReadFacts:
    """How the file was read: format, encoding, delimiter, header line, sheets (the event's ``read``)."""

    format: str
    encoding: str | None = None
    delimiter: str | None = None
    header_line: int | None = None
    sheets: tuple[str, ...] = ()
    sheet: str | None = None

    @classmethod
    def from_dict(cls, read: Mapping[str, Any]) -> ReadFacts:
        sheets = tuple(read.get("sheets", ()))
        return cls(
            read["format"],
            read.get("encoding"),
            read.get("delimiter"),
            read.get("header_line"),
            sheets,
            read.get("sheet"),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "header_line": self.header_line,
            "sheets": list(self.sheets),
            "sheet": self.sheet,
        }


@dataclass(frozen=True)
class ModelOutcome:
    """What a model did on this file (a pipeline's model, or a user's model scoring its tables)."""

    name: str
    version: str
    metrics: Mapping[str, Scalar]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "metrics": dict(self.metrics)}


@dataclass(frozen=True)
class Failure:
    """Why the file failed, in words a person can act on (never retried once announced)."""

    type: str
    message: str
    retryable: bool = False


@dataclass(frozen=True)
class Metric:
    """One CloudWatch metric of the outcome (unit: a ``MetricUnit`` name)."""

    name: str
    unit: Literal["Count", "Milliseconds"]
    value: float


@dataclass(frozen=True)
class FileCompletion:
    """What processing one raw object (or its deletion) did: the ``Dataset Processed`` /
    ``Dataset Processing Failed`` event, as a value."""

    event_key: str
    #: What happened to the key's rows: created, replaced, removed, unchanged (see the README).
    change: str
    dataset: str | None
    source: SourceFacts
    processed_at: str
    outputs: tuple[TableOutput, ...] = ()
    rows: RowCounts = field(default_factory=RowCounts)
    reasons: Mapping[str, int] = field(default_factory=dict)
    quarantine: QuarantineFacts = field(default_factory=QuarantineFacts)
    models: tuple[ModelOutcome, ...] = ()
    timings_ms: Mapping[str, float] = field(default_factory=dict)
    #: Which export the file was read as (a recognised vendor's, ``settings``, ``generic``), and what that did.
    source_format: str | None = None
    export: Mapping[str, int | str] = field(default_factory=dict)
    read: ReadFacts | None = None
    #: Why nothing changed, when ``change`` is unchanged without a failure.
    note: str | None = None
    personal_data: Mapping[str, Any] | None = None
    error: Failure | None = None

    @property
    def status(self) -> Literal["succeeded", "failed"]:
        return "failed" if self.error is not None else "succeeded"

    def event_detail(self) -> dict[str, Any]:
        """The event's detail (``handlers/schemas/completion_event.schema.json``)."""
        detail: dict[str, Any] = {
            "schema_version": topology.EVENT_SCHEMA_VERSION,
            "event_key": self.event_key,
            "status": self.status,
            "change": self.change,
            "dataset": self.dataset,
            "source_format": self.source_format,
            "source": asdict(self.source),
            "outputs": [asdict(o) for o in self.outputs],
            "quarantine": {
                "rows": self.rows.rejected,
                "table": self.quarantine.table,
                "location": self.quarantine.location,
                "snapshot_id": self.quarantine.snapshot_id,
                "reasons": dict(self.reasons),
            },
            "rows": asdict(self.rows),
            "models": [m.as_dict() for m in self.models],
            "timings_ms": dict(self.timings_ms),
            "processed_at": self.processed_at,
        }
        if self.export:
            detail["export"] = dict(self.export)
        if self.read is not None:
            detail["read"] = self.read.as_dict()
        if self.note:
            detail["note"] = self.note
        if self.personal_data is not None:
            detail["personal_data"] = dict(self.personal_data)
        if self.error is not None:
            detail["error"] = {
                "type": self.error.type,
                "message": self.error.message,
                "retryable": self.error.retryable,
            }
        return detail

    def metrics(self) -> tuple[Metric, ...]:
        """The processing function's metrics for this file."""
        return (
            Metric("FilesSucceeded" if self.status == "succeeded" else "FilesFailed", "Count", 1),
            Metric("RowsIn", "Count", self.rows.input),
            Metric("RowsQuarantined", "Count", self.rows.rejected),
            Metric("ProcessingTime", "Milliseconds", self.timings_ms.get("total", 0)),
        )

    def snapshots(self) -> dict[str, int | None]:
        """``database.table`` → the Iceberg snapshot id each output (and the quarantine) committed."""
        found = {o.name: o.snapshot_id for o in self.outputs}
        if self.quarantine.table and self.quarantine.snapshot_id is not None:
            found[self.quarantine.table] = self.quarantine.snapshot_id
        return found

    @classmethod
    def from_detail(cls, detail: Mapping[str, Any]) -> FileCompletion:
        """An announced detail as a value again (fields a detail may lack take their defaults)."""
        source, rows = detail["source"], detail["rows"]
        quarantine = detail.get("quarantine") or {}
        read, error = detail.get("read"), detail.get("error")
        return cls(
            event_key=detail["event_key"],
            change=detail["change"],
            dataset=detail.get("dataset"),
            source=SourceFacts(
                bucket=source.get("bucket"),
                key=source.get("key"),
                version_id=source.get("version_id"),
                etag=source.get("etag"),
                size=source.get("size"),
                source_id=source.get("source_id"),
                sequencer=source.get("sequencer"),
                trigger=source.get("trigger", "unknown"),
                reason=source.get("reason"),
            ),
            processed_at=detail.get("processed_at", ""),
            outputs=tuple(
                TableOutput(
                    o["database"],
                    o["table"],
                    o.get("view"),
                    o.get("location"),
                    o.get("snapshot_id"),
                    o.get("partition_spec"),
                    o.get("rows") or 0,
                    o.get("data_files") or 0,
                )
                for o in detail.get("outputs", ())
            ),
            rows=RowCounts(
                input=rows["input"],
                duplicates=rows["duplicates"],
                duplicates_dropped=rows.get("duplicates_dropped", 0),
                # A quarantine's rows and the rejected rows are one count (older details: either).
                rejected=rows.get("rejected", quarantine.get("rows", 0)),
                lines=rows.get("lines"),
                multiline=rows.get("multiline", 0),
                preamble=rows.get("preamble", 0),
                summary=rows.get("summary", 0),
                footer=rows.get("footer", 0),
            ),
            reasons=dict(quarantine.get("reasons") or {}),
            quarantine=QuarantineFacts(
                quarantine.get("table"), quarantine.get("location"), quarantine.get("snapshot_id")
            ),
            models=tuple(ModelOutcome(m["name"], m["version"], m["metrics"]) for m in detail.get("models", ())),
            timings_ms=dict(detail.get("timings_ms") or {}),
            source_format=detail.get("source_format"),
            export=dict(detail.get("export") or {}),
            read=None if read is None else ReadFacts.from_dict(read),
            note=detail.get("note"),
            personal_data=detail.get("personal_data"),
            error=None if error is None else Failure(error["type"], error["message"], error.get("retryable", False)),
        )


def event_key(source: SourceFacts, revision: str, request_id: str | None, status: str) -> str:
    """The same change of the same key announced twice has the same key: subscribers dedupe on it."""
    text = "|".join([str(source.bucket), str(source.key), revision or "", source.trigger, request_id or "", status])
    return hashlib.sha256(text.encode()).hexdigest()[:32]
