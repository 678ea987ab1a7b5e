"""Dataset contracts: which columns a file must have, what they may be called, which rows are rejected.

A :class:`Contract` maps the header names real exports use (``Amount Spent (USD)``, ``Day``) onto
canonical column names. :class:`RowChecks` collects, per rule, the rows that break it, and turns
them into quarantine rows that keep every original value as a string plus ``_row_number``,
``_reason_code`` and ``_reason``. Pipelines build on :class:`ContractPipeline`, which owns the parts
every dataset shares: reading the batches, the contract check, quarantine and the tolerance rule.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Literal, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analytics._kernels import column_hashes, combine, factorize_ints, row_codes, stable_order
from analytics.base import (
    DEFAULT_TOLERANCE,
    QUARANTINE_REASON,
    QUARANTINE_REASON_CODE,
    QUARANTINE_ROW_NUMBER,
    DateDecision,
    OutputSink,
    PipelineResult,
    SourceInfo,
    TableSpec,
)
from analytics.cleaning import (
    NumberFormat,
    Parsed,
    as_strings,
    parse_date,
    parse_flag,
    parse_integer,
    parse_number,
    parse_text,
)
from analytics.errors import ContractError, MissingColumnsError, SettingsError, ToleranceExceededError
from analytics.exports import KnownExport, Prepared, mapping_settings, normalise, prepare
from analytics.profile import PROFILE_TABLE_SPEC, profile_table
from analytics.threads import in_parallel

ColumnKind = Literal["date", "text", "label", "id", "integer", "number", "flag"]


#: Reason code given to the good rows of a file refused for exceeding its tolerance.
FILE_OVER_TOLERANCE = "file_rejected"


#: Lowercase, other characters as one underscore: ``Amount Spent (USD)`` → ``amount_spent_usd``.
normalise_header = normalise


@dataclass(frozen=True)
class Column:
    """One column of a dataset contract."""

    name: str
    kind: ColumnKind
    required: bool = True
    aliases: tuple[str, ...] = ()
    description: str = ""
    #: text and labels: lower-cased with inner whitespace collapsed, so that ``Google Ads`` and
    #: ``google  ads`` in two exports are one value.
    lower: bool = False
    #: numbers: also read each value's currency from its symbol or code (``$12`` → USD).
    currency: bool = False
    #: dates: the dataset setting that may fix the day/month order of ambiguous dates.
    date_order_setting: str | None = "date_order"
    #: dates: with neither a setting nor a proof in the file, follow the order earlier files of the
    #: same export shape proved (``SourceInfo.date_history``).
    follows_history: bool = True

    def __post_init__(self) -> None:
        if self.lower and self.kind not in ("text", "label", "id"):
            raise ValueError(f"column {self.name}: lower=True applies to text, label and id columns, not {self.kind}")
        if self.currency and self.kind != "number":
            raise ValueError(f"column {self.name}: currency=True applies to number columns, not {self.kind}")

    def accepted_names(self) -> list[str]:
        """Normalised header names that map onto this column, the canonical name first."""
        names = [normalise_header(self.name)]
        names.extend(normalise_header(a) for a in self.aliases if normalise_header(a) not in names)
        return names


_NOT_A_NUMBER = NumberFormat(decimal_comma=False, currency=None)


@dataclass(frozen=True)
class ParsedColumn(Parsed):
    """A contract column parsed by its kind, with what the parse decided about the whole column."""

    #: dates: the day/month order taken for the file (``None`` when no value needed one).
    date_decision: DateDecision | None = None
    #: numbers: the file's decimal mark and, for a ``currency`` column, each value's currency
    #: (other kinds: no decimal comma, no currency).
    number_format: NumberFormat = _NOT_A_NUMBER
    #: asked for with ``encoded``: the values dictionary-encoded, ready for :func:`row_codes`.
    encoded: pa.DictionaryArray | None = None
    #: asked for with ``hashed``: one hash per value (``None`` when the values are ascending).
    hashes: np.ndarray | None = None
    #: asked for with ``hashed``: whether no two values are equal.
    distinct: bool = False


Values: TypeAlias = pa.Array | pa.ChunkedArray


def _parse_date(column: Column, values: Values, source: SourceInfo) -> ParsedColumn:
    configured = source.settings.get(column.date_order_setting) if column.date_order_setting else None
    history = source.date_history if column.follows_history else None
    parsed, decision = parse_date(values, configured_order=configured, history=history)
    return ParsedColumn(parsed.values, parsed.missing, parsed.invalid, date_decision=decision)


def _parse_number(column: Column, values: Values, source: SourceInfo) -> ParsedColumn:
    parsed, number_format = parse_number(values, currency=column.currency)
    return ParsedColumn(parsed.values, parsed.missing, parsed.invalid, number_format=number_format)


def _parse_with(parser: Callable[[Values], Parsed]) -> Callable[[Column, Values, SourceInfo], ParsedColumn]:
    def parse(column: Column, values: Values, source: SourceInfo) -> ParsedColumn:
        parsed = parser(values)
        return ParsedColumn(parsed.values, parsed.missing, parsed.invalid)

    return parse


def _parse_text(column: Column, values: Values, source: SourceInfo) -> ParsedColumn:
    parsed = parse_text(values, lower=column.lower)
    return ParsedColumn(parsed.values, parsed.missing, parsed.invalid)


#: A column's declared kind chooses its parser; the column's options tune it.
PARSERS: Mapping[ColumnKind, Callable[[Column, Values, SourceInfo], ParsedColumn]] = {
    "date": _parse_date,
    "number": _parse_number,
    "integer": _parse_with(parse_integer),
    "flag": _parse_with(parse_flag),
    "text": _parse_text,
    "label": _parse_text,
    "id": _parse_text,
}
#: Which kinds start first on the parse threads: money takes longest, so the threads finish together.
_PARSE_ORDER: Mapping[ColumnKind, int] = {"number": 0, "date": 1}


def _distinct_hashes(values: pa.Array) -> tuple[np.ndarray | None, bool]:
    """A hash per value and whether the values are all distinct.

    Values in strictly ascending order (exports sorted by their id) are distinct, which one string
    comparison of neighbours shows; otherwise distinct hashes prove distinct values. Either way a
    file of unique ids needs no dense codes.
    """
    if len(values) > 1 and not values.null_count and pc.all(pc.less(values[:-1], values[1:])).as_py():
        return None, True
    hashes = column_hashes(values)
    return hashes, not pd.Series(hashes, copy=False).duplicated().any()


@dataclass(frozen=True)
class Contract:
    """Required and optional columns of a dataset, with the aliases real exports use."""

    dataset: str
    columns: tuple[Column, ...]

    def parse(
        self,
        columns: Mapping[str, Values],
        source: SourceInfo,
        *,
        encoded: Collection[str] = (),
        hashed: Collection[str] = (),
    ) -> dict[str, ParsedColumn]:
        """Parse each of this file's ``columns`` (canonical name → values) as its kind declares.

        Columns are parsed on a few threads (:func:`in_parallel`); the ``encoded`` ones are also
        dictionary-encoded and the ``hashed`` ones hashed there, for the pipeline's key.
        """
        declared = {c.name: c for c in self.columns}
        unknown = sorted((set(columns) | set(encoded) | set(hashed)) - set(declared))
        if unknown:
            raise ValueError(
                f"the {self.dataset} contract declares no column(s) {', '.join(unknown)}: declare them in "
                "its Contract, or parse only the columns resolve() found"
            )
        order = sorted(columns, key=lambda name: _PARSE_ORDER.get(declared[name].kind, 2))
        jobs = {
            name: partial(self._parse_one, declared[name], columns[name], source, name in encoded, name in hashed)
            for name in order
        }
        return in_parallel(jobs)

    @staticmethod
    def _parse_one(column: Column, values: Values, source: SourceInfo, encode: bool, hash_: bool) -> ParsedColumn:
        parsed = PARSERS[column.kind](column, values, source)
        if encode:
            parsed = replace(parsed, encoded=pc.dictionary_encode(parsed.values))
        if hash_:
            hashes, distinct = _distinct_hashes(parsed.values)
            parsed = replace(parsed, hashes=hashes, distinct=distinct)
        return parsed

    def resolve(
        self,
        header: Sequence[str],
        *,
        preset: Mapping[str, str] | None = None,
        strict: bool = True,
        shown: Sequence[str] = (),
    ) -> dict[str, str]:
        """Map canonical column names to this file's header names.

        ``preset`` (contract column → header) comes from a recognised export or the dataset's
        settings and wins over the aliases. With ``strict``, raises :class:`ContractError` naming the
        missing required columns, the columns found, the names each is accepted under and the
        settings that would map this file (from the ``shown`` header: the file's own, without the
        columns a constant added).
        """
        by_norm: dict[str, str] = {}
        for name in header:
            by_norm.setdefault(normalise_header(name), name)
        mapping: dict[str, str] = dict(preset or {})
        used: set[str] = set(mapping.values())
        for column in self.columns:
            if column.name in mapping:
                continue
            for accepted in column.accepted_names():
                found = by_norm.get(accepted)
                if found is not None and found not in used:
                    mapping[column.name] = found
                    used.add(found)
                    break
        missing = [c for c in self.columns if c.required and c.name not in mapping]
        if missing and strict:
            accepted = "; ".join(f"{c.name}: {', '.join(repr(a) for a in (c.name, *c.aliases))}" for c in missing)
            own = list(shown or header)
            suggestion = mapping_settings(self, own, missing=[c.name for c in missing])
            raise MissingColumnsError(
                f"{self.dataset} file is missing required column(s) "
                f"{', '.join(c.name for c in missing)}. Columns found: "
                f"{', '.join(repr(h) for h in own) or 'none'}. Accepted names: {accepted}. "
                f"Map the export's own columns in settings/{self.dataset}.json, for example "
                f"{json.dumps(suggestion)}, or rename the columns in the export (matching ignores case, "
                "spaces and punctuation), and upload the file again.",
                header=own,
                suggestion=suggestion,
            )
        return mapping


@dataclass
class _Check:
    code: str
    mask: np.ndarray
    prefix: str
    value_column: str | None
    suffix: str


@dataclass
class RowChecks:
    """Rules a row can break, in priority order; the first broken rule is the row's reason code."""

    rows: int
    checks: list[_Check] = field(default_factory=list)

    def add(
        self,
        code: str,
        mask: np.ndarray,
        message: str,
        *,
        value_column: str | None = None,
        suffix: str = "",
    ) -> None:
        """Reject rows where ``mask`` is true with ``code``.

        The message is ``message`` followed, when ``value_column`` is given, by the row's original
        value in that (source) column quoted, then ``suffix``.
        """
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (self.rows,):
            raise ValueError(f"check {code} mask has shape {mask.shape}, expected ({self.rows},)")
        if mask.any():
            self.checks.append(_Check(code, mask, message, value_column, suffix))

    def rejected(self) -> np.ndarray:
        """Rows that broke at least one rule."""
        out = np.zeros(self.rows, dtype=bool)
        for check in self.checks:
            out |= check.mask
        return out

    def quarantine_rows(self, original: pa.Table, row_numbers: np.ndarray) -> tuple[pa.Table, dict[str, int]]:
        """The rejected rows as a quarantine table, and how many rows each reason code got."""
        rejected = self.rejected()
        idx = pa.array(np.flatnonzero(rejected))
        sub = original.take(idx)
        n = len(idx)
        code: pa.Array = pa.nulls(n, pa.string())
        messages: list[pa.Array] = []
        for check in self.checks:
            mask = pa.array(check.mask[rejected])
            code = pc.if_else(pc.and_(mask, pc.is_null(code)), pa.scalar(check.code), code)
            if check.value_column is not None:
                value = pc.fill_null(as_strings(sub.column(check.value_column)), "")
                text = pc.binary_join_element_wise(check.prefix + " '", value, "'" + check.suffix, "")
            else:
                text = pa.array(np.full(n, check.prefix + check.suffix, dtype=object), pa.string())
            messages.append(pc.if_else(mask, text, pa.scalar(None, pa.string())))
        reason = (
            pc.binary_join_element_wise(*messages, "; ", null_handling="skip")
            if len(messages) > 1
            else (messages[0] if messages else pa.nulls(0, pa.string()))
        )
        table = quarantine_table(sub, row_numbers[rejected], code, reason)
        counts = {item["values"].as_py(): item["counts"].as_py() for item in pc.value_counts(code)}
        return table, dict(sorted(counts.items()))


def quarantine_table(
    original: pa.Table, row_numbers: np.ndarray, code: pa.Array | str, reason: pa.Array | str
) -> pa.Table:
    """Original columns as strings plus ``_row_number``, ``_reason_code`` and ``_reason``."""
    n = original.num_rows
    arrays = [as_strings(original.column(i)) for i in range(original.num_columns)]
    names = list(original.column_names)
    code_arr = pa.array([code] * n, pa.string()) if isinstance(code, str) else combine(code)
    reason_arr = pa.array([reason] * n, pa.string()) if isinstance(reason, str) else combine(reason)
    arrays += [pa.array(np.asarray(row_numbers, dtype=np.int64)), code_arr, reason_arr]
    names += [QUARANTINE_ROW_NUMBER, QUARANTINE_REASON_CODE, QUARANTINE_REASON]
    return pa.Table.from_arrays(arrays, names=names)


def duplicate_rows(
    table: pa.Table,
    key: list[str],
    candidates: np.ndarray | None = None,
    partition_code: np.ndarray | None = None,
    key_codes: np.ndarray | None = None,
    key_hashes: np.ndarray | None = None,
    key_unique: bool = False,
) -> tuple[np.ndarray, int, int]:
    """Which rows survive deduplication: exact copies dropped, then the last row of each ``key``.

    Considers the ``candidates`` rows only (the others were rejected). Returns the kept row
    positions, the number of exact duplicates and of superseded rows (an earlier row with the same
    key but different values). Rows are compared by dense codes (:func:`row_codes`) and pandas'
    hash-based ``duplicated``, so a million rows take milliseconds, not a Python loop. The kept
    rows are in file order, grouped by ``partition_code`` when given, so that each output
    partition is one contiguous slice.

    ``key_hashes`` (one hash of the key per row, equal keys hashing alike) offers a shortcut for
    files whose key is unique: when the candidates' hashes are all distinct, so are their keys,
    and no dense codes are needed. Any repeated hash takes the exact path. ``key_unique`` says
    the caller knows already that no two rows of ``table`` share a key.
    """
    rows = np.arange(table.num_rows) if candidates is None else np.flatnonzero(candidates)
    n = len(rows)
    exact = superseded = 0
    unique_key = key_unique or (
        key_hashes is not None and not pd.Series(key_hashes[rows], copy=False).duplicated().any()
    )
    replaced = np.zeros(n, dtype=bool)
    in_duplicated_key = replaced
    if not unique_key:
        # ``key_codes`` (one code per row of ``table``) spares recomputing codes the caller has.
        codes = (row_codes(table, key) if key_codes is None else key_codes)[rows]
        # One hash pass to dense codes; then True for every row that a later row with the same
        # key replaces (pandas' duplicated(keep="last")), and for every row of a repeated key.
        dense, uniques = factorize_ints(codes)
        if len(uniques) < n:
            position = np.arange(n)
            last = np.full(len(uniques), -1, dtype=np.int64)
            np.maximum.at(last, dense, position)
            replaced = last[dense] != position
            in_duplicated_key = np.bincount(dense, minlength=len(uniques))[dense] > 1
    if not replaced.any():
        kept = rows
    else:
        kept = rows[~replaced]
        sub = table.take(pa.array(rows[in_duplicated_key]))
        full = row_codes(sub, list(table.column_names))
        exact = sub.num_rows - len(pd.unique(full))
        superseded = n - len(kept) - exact
    if partition_code is not None:
        parts = partition_code[kept]
        if len(parts) > 1 and np.any(parts[1:] < parts[:-1]):
            kept = kept[stable_order(parts)]
    return kept, exact, superseded


def select_rows(table: pa.Table, rows: np.ndarray) -> pa.Table:
    """The ``rows`` of ``table`` in that order (one copy)."""
    if len(rows) == table.num_rows and (len(rows) == 0 or np.all(rows[1:] > rows[:-1])):
        return table
    if len(rows) < 2 or np.all(rows[1:] > rows[:-1]):
        # Rows in file order: a boolean filter copies several times faster than a take.
        mask = np.zeros(table.num_rows, dtype=bool)
        mask[rows] = True
        return table.filter(pa.array(mask))
    return table.take(pa.array(rows))


def deduplicate(
    table: pa.Table,
    key: list[str],
    candidates: np.ndarray | None = None,
    partition_code: np.ndarray | None = None,
) -> tuple[pa.Table, int, int]:
    """The rows :func:`duplicate_rows` keeps, as a table, with the two duplicate counts."""
    kept, exact, superseded = duplicate_rows(table, key, candidates, partition_code)
    return select_rows(table, kept), exact, superseded


class BackgroundWriter:
    """Hands output tables to the sink on one background thread, in order, while models run.

    Parquet encoding releases the GIL, so writing the big clean table overlaps with the KPIs or
    RFM computed from it. There is a single writer thread: sink calls are never concurrent with
    each other, and all of them have finished when the ``with`` block exits (the first failed write
    is raised there).
    """

    def __init__(self, sink: OutputSink) -> None:
        self.sink = sink
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="write")
        self._pending: list[Future[None]] = []

    def write(self, table: str, data: pa.Table | Callable[[], pa.Table]) -> None:
        """Queue ``data`` for ``sink.write(table, data)``; a callable is built on the writer thread."""
        self._pending.append(self._pool.submit(self._write, table, data))

    def call(self, work: Callable[[OutputSink], None]) -> None:
        """Queue ``work(sink)`` (several writes that share one built table) on the writer thread."""
        self._pending.append(self._pool.submit(work, self.sink))

    def _write(self, table: str, data: pa.Table | Callable[[], pa.Table]) -> None:
        self.sink.write(table, data if isinstance(data, pa.Table) else data())

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            errors = [e for e in (f.exception() for f in self._pending) if e is not None]
        finally:
            self._pool.shutdown(wait=True)
        if errors and exc_info[0] is None:
            raise errors[0]


def read_all(batches: Iterator[pa.RecordBatch]) -> pa.Table | None:
    """The whole file as one table, or ``None`` for a file without a single batch.

    Built-in datasets need every row before deciding anything (date order, last duplicate,
    per-series statistics), so their batches are gathered; the generic profiler streams instead.
    """
    collected = list(batches)
    if not collected:
        return None
    schema = collected[0].schema
    try:
        return pa.Table.from_batches(collected, schema=schema)
    except pa.ArrowInvalid:
        # Parquet and JSON-lines readers may type the same column differently across batches.
        return pa.concat_tables([pa.Table.from_batches([b]) for b in collected], promote_options="permissive")


def fixed_schema(spec: TableSpec) -> pa.Schema:
    """The schema of a built-in table (always fixed, unlike generic datasets')."""
    if spec.schema is None:
        raise ValueError(f"table {spec.name} has no fixed schema")
    return spec.schema


def with_source_id(table: pa.Table, source_id: str) -> pa.Table:
    """``table`` with a constant ``source_id`` column, added after rows are selected (a million
    copies of the same string are then built once, never filtered)."""
    return table.append_column("source_id", pa.repeat(pa.scalar(source_id, pa.string()), table.num_rows))


def conform(table: pa.Table, spec: TableSpec) -> pa.Table:
    """``table`` with exactly the columns, order and types of ``spec`` (a fixed schema)."""
    if spec.schema is None:
        return table
    return table.select(spec.schema.names).cast(spec.schema)


def _percent(share: float) -> str:
    """``0.2`` → ``20%``, ``0.201`` → ``20.1%``, ``0.025`` → ``2.5%``: never rounded onto the tolerance."""
    return f"{share * 100:.4g}%"


@dataclass(frozen=True)
class Tolerance:
    """The tolerance rule, in one place: a file is refused whole when more than ``share`` of its rows
    were rejected, by its contract or as lines no parser could read. The pipelines apply it to the
    rows they checked, the handler to those plus the unreadable lines."""

    share: float = DEFAULT_TOLERANCE

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, object], dataset: str, default: float = DEFAULT_TOLERANCE
    ) -> Tolerance:
        """The ``tolerance`` of ``settings/<dataset>.json``, else ``default``."""
        value = settings.get("tolerance", default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise SettingsError(
                f"settings/{dataset}.json: tolerance must be a share between 0 and 1 (0.2 = 20%), not {value!r}"
            )
        return cls(float(value))

    def exceeded(self, rejected: int, rows_in: int) -> bool:
        return rows_in > 0 and rejected / rows_in > self.share

    def refusal(self, rejected: int, rows_in: int, by_reason: Mapping[str, int]) -> str:
        """Why the file was refused and what to do, for the event and the exception."""
        top = ", ".join(f"{code} ({n})" for code, n in sorted(by_reason.items(), key=lambda kv: -kv[1])[:5])
        return (
            f"{rejected} of {rows_in} rows ({_percent(rejected / rows_in)}) were rejected, more than the "
            f"dataset's tolerance of {_percent(self.share)}, so the whole file was refused; most common "
            f"reasons: {top or 'none'}. "
            "No output was published and every row is in quarantine with its reason (_reason column): fix "
            "the export and upload it again"
        )


class ContractPipeline:
    """What the built-in pipelines share: contract, recognised exports, quarantine, tolerance.
    Subclasses add the rest."""

    contract: Contract
    #: Vendor exports this dataset recognises (see analytics.exports).
    exports: tuple[KnownExport, ...] = ()

    def __init__(self, dataset: str, tolerance: float = DEFAULT_TOLERANCE) -> None:
        self.dataset = dataset
        self.tolerance = tolerance

    def columns(
        self, table: pa.Table, source: SourceInfo, result: PipelineResult, sink: OutputSink | None = None
    ) -> tuple[Prepared, dict[str, str]]:
        """Recognise the file's export, apply the settings' mapping, and resolve the contract's columns.

        Returns the prepared file (its table has any constant columns added, and a recognised export's
        rows brought to the contract's grain) and contract column → its header. Records the export in
        ``result`` (``rows_in`` stays the file's rows). Raises :class:`MissingColumnsError` naming what
        is missing and the settings that would map it; any error raised carries ``source_format``.
        """
        result.rows_in = table.num_rows
        prepared = prepare(table, self.contract, self.exports, source.settings)
        result.source_format = prepared.source_format
        result.export_facts = dict(prepared.facts)
        if prepared.constants:
            result.export_facts.update({f"constant_{k}": v for k, v in prepared.constants.items()})
        try:
            cols = self.contract.resolve(prepared.table.column_names, preset=prepared.mapping, shown=prepared.header)
        except ContractError as exc:
            exc.source_format = prepared.source_format  # type: ignore[attr-defined]
            raise
        # The lake's sink pseudonymises what it is told is personal (StagingSink.personal_columns).
        declare = getattr(sink, "personal_columns", None)
        if prepared.shape is not None and prepared.shape.personal and declare is not None:
            # the output column and the export's own header (which quarantine rows keep) alike
            names = {**prepared.shape.personal}
            names.update({cols[c]: kind for c, kind in prepared.shape.personal.items() if c in cols})
            declare(names)
        return prepared, cols

    def check_tolerance(
        self,
        *,
        rows_in: int,
        rejected: int,
        by_reason: dict[str, int],
        good: Callable[[], pa.Table | None],
        sink: OutputSink,
    ) -> None:
        """Refuse the file when more than the tolerance of its ``rows_in`` rows were ``rejected``, before any
        output is written.

        The good rows (``good()``, as quarantine rows) then go to quarantine too (reason code
        ``file_rejected``, as the handler uses) so that nothing of a half-broken export reaches
        ``curated/`` and nothing is lost.
        """
        tolerance = Tolerance(self.tolerance)
        if not tolerance.exceeded(rejected, rows_in):
            return
        kept = good()
        if kept is not None and kept.num_rows:
            sink.quarantine(kept)
        raise ToleranceExceededError(f"this {self.dataset} file: {tolerance.refusal(rejected, rows_in, by_reason)}")

    def quarantine_and_check(
        self,
        table: pa.Table,
        checks: RowChecks,
        sink: OutputSink,
        result: PipelineResult,
        prepared: Prepared | None = None,
    ) -> np.ndarray:
        """Write rejected rows to quarantine, enforce the tolerance; returns the kept-row mask of ``table``.

        For a reshaped export (Shopify's line items folded into orders) the quarantine holds the file's
        rows that made each rejected row, with their numbers in the file, and the tolerance counts file rows.
        """
        n = table.num_rows
        row_numbers = np.arange(1, n + 1, dtype=np.int64)
        rejected = checks.rejected()
        reshaped = prepared is not None and prepared.origin is not None and prepared.source is not None
        if rejected.any():
            rows, by_reason = checks.quarantine_rows(table, row_numbers)
            if reshaped:
                assert prepared is not None and prepared.origin is not None and prepared.source is not None
                position = np.full(n, -1, dtype=np.int64)
                position[rejected] = np.arange(int(rejected.sum()))
                source_rows = prepared.source_rows(rejected)
                which = pa.array(position[prepared.origin[source_rows]])
                codes = rows.column(QUARANTINE_REASON_CODE).take(which)
                rows = quarantine_table(
                    prepared.source.take(pa.array(source_rows)),
                    source_rows + 1,
                    codes,
                    rows.column(QUARANTINE_REASON).take(which),
                )
                by_reason = {i["values"].as_py(): i["counts"].as_py() for i in pc.value_counts(codes)}
            sink.quarantine(rows)
            result.rows_rejected = rows.num_rows
            result.rejected_by_reason = dict(sorted(by_reason.items()))
        good = ~rejected

        def good_rows() -> pa.Table | None:
            if not good.any():
                return None
            message = (
                f"row is valid, but the file was refused: {result.rows_rejected} of {result.rows_in} rows "
                f"({_percent(result.rows_rejected / max(result.rows_in, 1))}) broke the {self.dataset} contract, "
                f"above the {_percent(self.tolerance)} tolerance"
            )
            if reshaped:
                assert prepared is not None and prepared.source is not None
                source_rows = prepared.source_rows(good)
                return quarantine_table(
                    prepared.source.take(pa.array(source_rows)), source_rows + 1, FILE_OVER_TOLERANCE, message
                )
            return quarantine_table(table.filter(pa.array(good)), row_numbers[good], FILE_OVER_TOLERANCE, message)

        try:
            self.check_tolerance(
                rows_in=result.rows_in if reshaped else n,
                rejected=result.rows_rejected if rejected.any() else 0,
                by_reason=result.rejected_by_reason,
                good=good_rows,
                sink=sink,
            )
        except ToleranceExceededError as exc:
            exc.source_format = result.source_format  # type: ignore[attr-defined]
            raise
        return good

    def write_clean(
        self,
        sink: OutputSink,
        spec: TableSpec,
        rows: pa.Table,
        source: SourceInfo,
        hashes: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Write the file's clean rows of the dataset's own table, then their profile to
        ``dataset_profiles`` (one row per column, lineage columns left out), as the generic pipeline does.

        The profile describes exactly the rows written (after quarantine and de-duplication), so a
        report's profile and its histograms count the same rows. Every pipeline's ``tables()`` lists
        :data:`PROFILE_TABLE_SPEC` for it. ``hashes``: a column's value hashes, one per row of ``rows``,
        when the pipeline has them (its key's), so they are not computed twice.
        """
        sink.write(spec.name, rows)
        if rows.num_rows:
            sink.write(PROFILE_TABLE_SPEC.name, profile_table(rows, source, hashes))

    def tables(self, source: SourceInfo) -> Sequence[TableSpec]:  # pragma: no cover - overridden
        """The output tables; overridden by each pipeline."""
        raise NotImplementedError
