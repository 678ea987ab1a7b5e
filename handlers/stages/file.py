"""The per-file stage: read → pipeline → quarantine → tolerance, storage-free.

One function, :func:`stage_file`, shared by the processor (:mod:`handlers.stages.object_processor`, which then
scores, pseudonymises, commits what was staged and announces it) and by ``lake try`` (which shows
it). It reads no settings, opens no object and commits nothing: the caller hands it a reader, the
dataset's pipeline, the file's facts and a staging sink, and gets back a frozen
:class:`FileOutcome`. Light to import (pyarrow only; the contract's pandas loads on the first call).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

import pyarrow as pa
import pyarrow.compute as pc

from analytics.base import (
    QUARANTINE_REASON,
    QUARANTINE_REASON_CODE,
    QUARANTINE_ROW_NUMBER,
    DateDecision,
    ModelFact,
    Pipeline,
    SourceInfo,
)
from analytics.errors import ContractError, DataError, ToleranceExceededError
from handlers.outcome import ReadFacts

if TYPE_CHECKING:
    from handlers.adapters.reader import MalformedRow, SourceReader
    from handlers.adapters.staging import StagingSink

#: Why a file was refused: its contract broke, too many of its rows were rejected (the dataset's
#: tolerance), or it could not be read to its end.
RefusalCode = Literal["contract_violation", "file_rejected", "unreadable"]


@dataclass(frozen=True)
class Refusal:
    """Why the file is refused, and the error its failure event names."""

    code: RefusalCode
    #: What happened and what to do, prefixed with the object key.
    message: str
    #: The error to fail with: a :class:`ContractError` or :class:`ToleranceExceededError` carrying
    #: ``message``, or (unreadable) the reader's or pipeline's own :class:`DataError`.
    error: DataError
    #: The pipeline's error that stopped the file; None when the counts refused it after the run.
    cause: DataError | None = None

    @property
    def whole_file(self) -> bool:
        """Every row of the file goes to quarantine (a broken contract or tolerance); else only the
        rows rejected before an unreadable file stopped."""
        return self.code != "unreadable"


@dataclass(frozen=True)
class FileOutcome:
    """What reading and cleaning one file found; the rows it staged stay in ``sink``.

    The counts are the completion event's: a refused file's count every row it quarantined; a file
    that could not be read to its end counts no input rows (``rows_read`` says how far it got).
    """

    sink: StagingSink
    read: ReadFacts
    rows_in: int = 0
    rows_read: int = 0
    duplicates: int = 0
    duplicates_dropped: int = 0
    rejected: int = 0
    reasons: Mapping[str, int] = field(default_factory=dict)
    #: A CSV's physical lines after its header, and its rows spanning several (as far as it was read).
    lines: int | None = None
    multiline: int = 0
    #: Lines above the header, summary rows and lines after the table: left out, never quarantined.
    preamble: int = 0
    summary: int = 0
    footer: int = 0
    #: Which export the file was read as (a vendor's, ``settings``, ``generic``), and what that did.
    source_format: str | None = None
    export: Mapping[str, int | str] = field(default_factory=dict)
    models: tuple[ModelFact, ...] = ()
    date_decision: DateDecision | None = None
    #: Milliseconds the pipeline took; None when it stopped on an error.
    process_ms: float | None = None
    refusal: Refusal | None = None
    #: A refused file's rows for the key's quarantine (with reasons); None when accepted (its
    #: rejected rows are in ``sink.quarantine_table()``).
    quarantined: pa.Table | None = None


def stage_file(reader: SourceReader, pipeline: Pipeline, source: SourceInfo, sink: StagingSink) -> FileOutcome:
    """Run ``pipeline`` over what ``reader`` reads into ``sink``, quarantine the lines no parser could
    read, and apply the dataset's tolerance (``pipeline.tolerance``).

    A refused file's outputs are discarded from ``sink``; :attr:`FileOutcome.refusal` says why and
    :attr:`FileOutcome.quarantined` holds the rows its quarantine takes. Errors other than the
    data's own (:class:`DataError`) propagate: they are the caller's to retry.
    """
    from analytics.contract import Tolerance  # pandas loads with the first file, not the module

    key = source.key
    t0 = time.perf_counter()
    try:
        result = pipeline.run(reader.batches(), source, sink)
    except DataError as exc:
        quarantine_malformed(reader.malformed, reader.columns, sink)
        read = _as_read(reader, sink)
        if isinstance(exc, ContractError):
            # Readable, but it breaks its contract (or its tolerance): keep every row, with the reason.
            code: RefusalCode = "file_rejected" if isinstance(exc, ToleranceExceededError) else "contract_violation"
            read = replace(read, source_format=getattr(exc, "source_format", None))
            return _refused_whole(read, reader, code, located(key, exc), exc)
        refusal = Refusal("unreadable", located(key, exc), exc, exc)
        return replace(read, rejected=sink.quarantined_rows, refusal=refusal, quarantined=sink.quarantine_table())
    quarantine_malformed(reader.malformed, reader.columns, sink)
    process_ms = round((time.perf_counter() - t0) * 1000, 1)
    reasons = dict(result.rejected_by_reason)
    for row in reader.malformed:
        reasons[row.code] = reasons.get(row.code, 0) + 1
    outcome = replace(
        _as_read(reader, sink),
        rows_in=result.rows_in + len(reader.malformed),
        duplicates=max(result.duplicates_found, result.duplicates_dropped),
        duplicates_dropped=result.duplicates_dropped,
        rejected=result.rows_rejected + len(reader.malformed),
        reasons=reasons,
        source_format=result.source_format,
        export=dict(result.export_facts),
        models=tuple(result.models),
        date_decision=result.date_decision,
        process_ms=process_ms,
    )
    tolerance = Tolerance(pipeline.tolerance)
    if tolerance.exceeded(outcome.rejected, outcome.rows_in):
        message = f"{key}: {tolerance.refusal(outcome.rejected, outcome.rows_in, reasons)}"
        return _refused_whole(outcome, reader, "file_rejected", message, None)
    return outcome


def _as_read(reader: SourceReader, sink: StagingSink) -> FileOutcome:
    """The outcome's facts of the reader, taken before anything reads the file again."""
    return FileOutcome(
        sink=sink,
        read=ReadFacts(
            reader.format, reader.encoding, reader.delimiter, reader.header_line, tuple(reader.sheets), reader.sheet
        ),
        rows_read=reader.rows_read + len(reader.malformed),
        lines=reader.lines,
        multiline=reader.multiline,
        preamble=reader.preamble_lines,
        summary=reader.summary_rows,
        footer=reader.footer_lines,
    )


def located(key: str, error: Exception) -> str:
    """The error's message, prefixed with the object key unless it already names it."""
    message = str(error)
    return message if message.startswith(key) else f"{key}: {message}"


def _refused_whole(
    outcome: FileOutcome, reader: SourceReader, code: RefusalCode, message: str, cause: DataError | None
) -> FileOutcome:
    """Refuse the file: nothing is published, every row goes to quarantine with a reason."""
    everything = every_row(reader, outcome.sink, code, message)
    total = everything.num_rows if everything is not None else 0
    counts: dict[str, int] = {}
    if everything is not None:
        for value in everything.column(QUARANTINE_REASON_CODE).to_pylist():
            counts[value] = counts.get(value, 0) + 1
    error = ToleranceExceededError(message) if code == "file_rejected" else ContractError(message)
    return replace(
        outcome,
        rows_in=max(outcome.rows_in, total),
        rejected=total,
        reasons=counts,
        refusal=Refusal(code, message, error, cause),
        quarantined=everything,
    )


def every_row(reader: SourceReader, sink: StagingSink, code: str, message: str) -> pa.Table | None:
    """Discard ``sink``'s outputs and return every row of the file (read again) as quarantine rows:
    rows already rejected keep their own reason, the others get ``code`` and ``message``; lines no
    parser could read come as they were quarantined."""
    sink.discard_outputs()
    rejected = sink.quarantine_table()
    by_row: dict[int, tuple[str, str]] = {}
    if rejected is not None and QUARANTINE_ROW_NUMBER in rejected.column_names:
        for number, row_code, reason in zip(
            rejected.column(QUARANTINE_ROW_NUMBER).to_pylist(),
            rejected.column(QUARANTINE_REASON_CODE).to_pylist(),
            rejected.column(QUARANTINE_REASON).to_pylist(),
            strict=True,
        ):
            if number is not None:
                by_row[number] = (row_code, reason)
    parts = [] if rejected is None else [rejected.filter(pc.is_null(rejected.column(QUARANTINE_ROW_NUMBER)))]
    row = 0
    for batch in reader.batches():
        numbers = list(range(row + 1, row + batch.num_rows + 1))
        row += batch.num_rows
        reasons = [by_row.get(n, (code, message)) for n in numbers]
        text = [pc.cast(c, pa.string()) for c in batch.columns]
        parts.append(
            pa.Table.from_arrays(
                [*text, pa.array(numbers, pa.int64()), pa.array([r[0] for r in reasons]),
                 pa.array([r[1] for r in reasons])],
                names=[*batch.schema.names, QUARANTINE_ROW_NUMBER, QUARANTINE_REASON_CODE, QUARANTINE_REASON],
            )
        )  # fmt: skip
    return pa.concat_tables(parts, promote_options="permissive") if parts else None


def quarantine_malformed(malformed: list[MalformedRow], columns: list[str], sink: StagingSink) -> None:
    """Quarantine the lines no parser could read, each with its reason and its raw text."""
    if not malformed:
        return
    from analytics.personal import RAW_LINE  # with the sink's pseudonymiser, never at import

    n = len(malformed)
    arrays: list[pa.Array] = [pa.nulls(n, pa.string()) for _ in columns]
    arrays += [
        pa.nulls(n, pa.int64()),
        pa.array([m.code for m in malformed]),
        pa.array([f"{m.reason()}; fix the quoting or delimiters of that line" for m in malformed]),
        pa.array([m.text for m in malformed]),
    ]
    sink.quarantine(
        pa.Table.from_arrays(
            arrays,
            names=[*columns, QUARANTINE_ROW_NUMBER, QUARANTINE_REASON_CODE, QUARANTINE_REASON, RAW_LINE],
        )
    )
