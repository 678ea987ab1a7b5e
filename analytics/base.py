"""The contract between the handler and every dataset pipeline.

A pipeline is pure: it takes the source file as a stream of Arrow record batches and writes its
output tables and rejected rows to an :class:`OutputSink` the caller provides. It never touches
AWS; the handler's sink stages the data and publishes it only once the whole file succeeded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal, Protocol

import pyarrow as pa

#: Columns every quarantined row carries besides its original values (all kept as strings).
QUARANTINE_ROW_NUMBER = "_row_number"
QUARANTINE_REASON_CODE = "_reason_code"
QUARANTINE_REASON = "_reason"

#: Default share of rejected rows above which the whole file is refused.
DEFAULT_TOLERANCE = 0.20


#: Day/month order of slash, dot or dash separated dates with the year last.
DateOrder = Literal["DMY", "MDY"]


@dataclass(frozen=True)
class DateHistory:
    """What earlier files of the same export shape (dataset, header, delimiter) proved about their
    day/month order; the handler looks it up, a pipeline only reads it."""

    #: The order the newest proving file showed; None when no file of the shape proved one yet.
    order: DateOrder | None = None
    #: The raw key and version of that file.
    key: str = ""
    version: str | None = None
    #: Its proof in words, e.g. ``14 value(s) with a first part above 12``.
    evidence: str = ""
    #: Why the history could not be read (the file then falls back to the default order).
    unavailable: str | None = None


@dataclass(frozen=True)
class DateDecision:
    """How this file's ambiguous dates were read, and why."""

    order: DateOrder
    basis: str
    #: What decided: the dataset ``setting``, ``proof`` in this file (a part above 12), the
    #: ``history`` of the export shape, or the ``default`` for the separator.
    decided_by: Literal["setting", "proof", "history", "default"] = "default"
    #: For a proof: the evidence in words, which later files of the same shape cite.
    evidence: str = ""


@dataclass(frozen=True)
class SourceInfo:
    """What a pipeline may know about the object it processes."""

    dataset: str
    source_id: str
    key: str
    #: UTC date the object was stored; the partition of tables that have no natural date.
    ingest_date: date
    #: Per-dataset settings (for example ``{"control_variant": "B"}``); empty when none are set.
    settings: Mapping[str, Any] = field(default_factory=dict)
    #: Looks up what earlier files of this file's export shape proved about the day/month order.
    #: A call, not a value: the shape is known only once the header is read, and the lookup (one
    #: DynamoDB read) is only worth making for a file whose dates are ambiguous. None: no history.
    date_history: Callable[[], DateHistory] | None = None


#: Columns every curated and quarantine row carries: where it came from (the lake adds them).
LINEAGE_COLUMNS = ("source_key", "source_version", "source_id", "ingested_at")

#: How a table's partition column becomes its (hidden) Iceberg partition.
PARTITION_TRANSFORMS = ("identity", "day", "month", "year")

#: Arrow field metadata key of a column's description: pyiceberg reads it as the Iceberg field's
#: ``doc``, which its Glue catalog writes as the column's ``Comment`` (Athena's DESCRIBE shows it).
DOC_KEY = "doc"
#: Glue refuses a column comment longer than this.
MAX_DOC_CHARS = 255


def col(name: str, dtype: pa.DataType, doc: str) -> pa.Field:
    """A column of a fixed output schema with what it means, in one line a user reads in Athena."""
    return pa.field(name, dtype, metadata={DOC_KEY: doc})


def column_doc(field: pa.Field) -> str:
    """The description :func:`col` gave ``field``; empty when it has none."""
    raw = (field.metadata or {}).get(DOC_KEY.encode())
    return raw.decode() if raw else ""


@dataclass(frozen=True)
class TableSpec:
    """An output table: the user's contract for Athena queries."""

    name: str
    partition_column: str
    description: str
    #: Fixed schema including the partition column; ``None`` when inferred per file (generic data).
    schema: pa.Schema | None = None
    #: Iceberg partition transform of ``partition_column`` (``month`` partitions a date by month).
    partition_transform: str = "identity"
    #: Business key: with one, the table named ``name`` is a view showing each key once, from the
    #: newest source that has it, over ``<name>_sources`` (every source's rows). Rows whose first
    #: key column is null are never merged.
    key: tuple[str, ...] = ()
    #: For a model table with one snapshot per ``as_of``: the view, named as a user would query it,
    #: that shows the newest snapshot (``experiment_results`` over ``experiment_results_history``).
    current_view: str = ""
    #: For a model table whose snapshots hold only the days their refresh scored: the model table
    #: (this one or another) whose rows say which days each ``as_of`` snapshot scored (its earliest
    #: ``date`` through its ``as_of``). The current view then shows each day from the newest snapshot
    #: that scored it (:func:`covering_rows_sql`), so it still answers over the whole history.
    covered_by: str = ""

    def column_docs(self) -> dict[str, str]:
        """Each described column's meaning (lineage columns are described where they are added)."""
        if self.schema is None:
            return {}
        return {f.name: doc for f in self.schema if (doc := column_doc(f))}

    @property
    def stored_name(self) -> str:
        """The Iceberg table holding the rows: ``<name>_sources`` for a keyed table, else ``name``."""
        return f"{self.name}_sources" if self.key else self.name


@dataclass(frozen=True)
class ModelFact:
    """What a model did on this file, published in the completion event."""

    name: str
    version: str
    metrics: Mapping[str, float | int | str | bool | None]


@dataclass
class PipelineResult:
    """Counts and facts a pipeline reports; output row counts are tracked by the sink."""

    rows_in: int
    rows_rejected: int = 0
    #: Rows that repeat an earlier row of the file (exactly, or by the dataset's key).
    duplicates_found: int = 0
    duplicates_dropped: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    models: list[ModelFact] = field(default_factory=list)
    #: How the file's ambiguous dates were read (None: it had none); a proof is remembered for
    #: later files of the same export shape once the file's commit succeeded.
    date_decision: DateDecision | None = None
    #: The vendor export recognised (``google_ads``, ``shopify_orders``), ``settings`` when the
    #: dataset's settings mapped it, ``generic`` when the contract's aliases did; None: not looked at.
    source_format: str | None = None
    #: What recognising the export did (constants supplied, line items folded).
    export_facts: dict[str, int | str] = field(default_factory=dict)


class OutputSink(Protocol):
    """Where a pipeline puts its results. Implementations stage them until the run succeeds."""

    def write(self, table: str, data: pa.Table | pa.RecordBatch) -> None:
        """Append rows to ``table``; ``data`` carries the table's partition column."""

    def quarantine(self, rows: pa.Table | pa.RecordBatch) -> None:
        """Keep rejected rows: original columns plus ``_row_number``, ``_reason_code``, ``_reason``."""


class Pipeline(Protocol):
    """One dataset's processing: contract, cleaning, models."""

    dataset: str
    #: Share of rejected rows above which the file fails as a whole.
    tolerance: float

    def tables(self, source: SourceInfo) -> Sequence[TableSpec]:
        """The output tables this pipeline writes for ``source``."""

    def run(self, batches: Iterator[pa.RecordBatch], source: SourceInfo, sink: OutputSink) -> PipelineResult:
        """Process every batch of the source file, writing outputs and rejects to ``sink``."""


# --- the refresh stage: models over a dataset's whole history ----------------------------------
@dataclass(frozen=True)
class ModelTable:
    """One model table a refresh computed: its rows replace the table's ``as_of`` partition."""

    spec: TableSpec
    rows: pa.Table
    #: The date the model describes (the dataset's newest date); one snapshot per as_of.
    as_of: date


@dataclass(frozen=True)
class RefreshResult:
    """What a refresher returns: model tables to write and facts to publish."""

    tables: tuple[ModelTable, ...] = ()
    facts: tuple[ModelFact, ...] = ()


@dataclass(frozen=True)
class RefreshContext:
    """What a refresher knows besides its SQL."""

    #: ``settings/<dataset>.json`` (``control_variant``, ``sequential_tau``, ...); empty when none.
    settings: Mapping[str, Any] = field(default_factory=dict)
    #: Names of the tables ``query`` can read (views excluded): a model table the refresher reads
    #: back (``RefresherSpec.reads_back``) is absent until its first refresh.
    tables: frozenset[str] = frozenset()


class Refresher(Protocol):
    """Recomputes a dataset's models from its whole history.

    ``query`` runs one Athena SQL statement over the curated tables (each name is a table or view
    of the curated database, read at the snapshots the refresh pinned) and returns the result as
    Arrow; a refresher aggregates in SQL, so what it holds in memory grows with entities
    (customers, campaigns), not with rows.
    """

    def __call__(self, query: Callable[[str], pa.Table], context: RefreshContext) -> RefreshResult: ...


def covering_rows_sql(
    source: str, coverage: str, columns: Sequence[str], *, as_of: date | None = None, day: str = "date"
) -> str:
    """Athena SQL selecting ``columns`` of ``source`` (a model table with one snapshot per ``as_of``
    whose snapshots hold only the days they scored) as of ``as_of`` (the newest when None): each day's
    rows from the newest snapshot that scored it. A snapshot scored the days from the earliest
    ``day`` of its rows in ``coverage`` (a table name as the SQL should spell it) through its
    ``as_of``. ``source`` and ``coverage`` are spelled as given (quote them when they need it)."""
    bound = f" WHERE as_of <= DATE '{as_of.isoformat()}'" if as_of is not None else ""
    listed = ", ".join(f't."{c}"' for c in columns)
    return (
        f"SELECT {listed} FROM {source} t JOIN ("
        f'SELECT d."{day}" AS day, max(c.as_of) AS owner '
        f'FROM (SELECT DISTINCT "{day}" FROM {coverage}{bound}) d '
        f'JOIN (SELECT as_of, min("{day}") AS first_day FROM {coverage}{bound} GROUP BY as_of) c '
        f'ON d."{day}" BETWEEN c.first_day AND c.as_of GROUP BY d."{day}"'
        f') o ON t."{day}" = o.day AND t.as_of = o.owner'
    )
