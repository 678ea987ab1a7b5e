"""The generic pipeline: any dataset without a contract still becomes a clean, typed, queryable table.

Streaming: batches are cleaned and written one at a time, so memory does not grow with the file
(except for 8 bytes per distinct row remembered for de-duplication). Column types are inferred
from the first batch; a later value that does not fit its column's type is quarantined with the
reason, never silently turned into null.

Numbers as real exports write them are numbers: money (``$1,234.50``, ``1.234,50 €``, ``(12.00)``
for -12), percentages (``12.5%`` is 0.125) and thousands separators, read by the same parser as the
built-in datasets (:func:`analytics.cleaning.parse_number`). Whether a column's ``,`` or ``.`` is
its decimal mark is decided once, from the evidence in the first batch, and kept for the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from analytics._kernels import column_hashes, row_hashes
from analytics.base import (
    DEFAULT_TOLERANCE,
    LINEAGE_COLUMNS,
    QUARANTINE_REASON,
    QUARANTINE_REASON_CODE,
    QUARANTINE_ROW_NUMBER,
    OutputSink,
    PipelineResult,
    SourceInfo,
    TableSpec,
)
from analytics.cleaning import parse_number
from analytics.dedupe import SeenRows
from analytics.errors import ContractError
from analytics.profile import PROFILE_TABLE_SPEC, ProfileAccumulator

PARTITION_COLUMN = "ingest_date"

_INT = r"^[+-]?(0|[1-9][0-9]{0,17})$"
_FLOAT = r"^[+-]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)([eE][+-]?[0-9]+)?$"
_LEADING_ZERO = r"^[+-]?0[0-9]"
_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_TIMESTAMP = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?$"
_BOOL = "^(?i)(true|false|yes|no)$"
_TRUE_SET = pa.array(["true", "yes"])
_FALSE_SET = pa.array(["false", "no"])
_BOOL_SET = pa.array(["true", "yes", "false", "no"])


def snake_case(name: str) -> str:
    """``Amount Spent (USD)`` -> ``amount_spent_usd``; ``customerID`` -> ``customer_id``."""
    name = name.strip().lstrip("\ufeff")
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    name = re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()
    return name


def snake_case_columns(names: Sequence[str], reserved: Sequence[str] = LINEAGE_COLUMNS) -> list[str]:
    """Unique, Glue-safe snake_case names, in order (``c_`` before a leading digit, ``_2`` on clashes,
    also with the ``reserved`` lineage columns the lake adds: a file's own ``source_key`` is ``source_key_2``)."""
    out: list[str] = []
    seen: set[str] = set(reserved)
    for i, raw in enumerate(names):
        name = snake_case(raw) or f"column_{i + 1}"
        if name[0].isdigit():
            name = f"c_{name}"
        candidate, n = name, 1
        while candidate in seen:
            n += 1
            candidate = f"{name}_{n}"
        seen.add(candidate)
        out.append(candidate)
    return out


@dataclass(frozen=True)
class ColumnType:
    """The type chosen for one column and the pattern a value must match to have it."""

    arrow: pa.DataType
    pattern: str | None  # None: any value fits (strings, or columns typed by the file format)
    label: str
    #: Set for numbers written as exports write them (money, percentages, thousands separators):
    #: the column's decimal mark, True for a comma. Such values go through ``parse_number``.
    decimal_comma: bool | None = None


STRING = ColumnType(pa.string(), None, "string")
FLOAT = ColumnType(pa.float64(), _FLOAT, "float64")


#: Rows of the first batch that decide each column's type.
INFERENCE_ROWS = 20_000
#: A typed column tolerates this share of odd values in the sample; those rows are quarantined.
TYPE_MAJORITY = 0.98
#: Placeholders exports use for "no value"; they become null rather than forcing a column to text.
NULL_TOKENS = ["NA", "N/A", "n/a", "null", "NULL", "None", "none", "-", "#N/A", "NaN", "nan"]


def _share(values: pa.Array, pattern: str) -> float:
    matches = pc.sum(pc.cast(pc.match_substring_regex(values, pattern), pa.int64())).as_py() or 0
    return float(matches) / len(values)


def infer_type(values: pa.Array) -> ColumnType:
    """The narrowest type (nearly) every non-null trimmed value fits.

    Ids with leading zeros (``00042``) keep the column text. A typed column tolerates up to 2% odd
    values in the sample: those rows are quarantined instead of turning the whole column to text.
    """
    present = values.drop_null()
    if len(present) == 0:
        return STRING
    if bool(pc.any(pc.match_substring_regex(present, _LEADING_ZERO)).as_py()):
        return STRING
    if _share(present, _INT) >= TYPE_MAJORITY:
        return ColumnType(pa.int64(), _INT, "int64")
    if _share(present, _FLOAT) >= TYPE_MAJORITY:
        return FLOAT
    number = _number_type(present)
    if number is not None:
        return number
    if _share(present, _BOOL) >= TYPE_MAJORITY:
        return ColumnType(pa.bool_(), _BOOL, "bool")
    if _share(present, _DATE) >= TYPE_MAJORITY and (
        1 - _strict_dates(present).null_count / len(present) >= TYPE_MAJORITY
    ):
        return ColumnType(pa.date32(), _DATE, "date")
    if _share(present, _TIMESTAMP) >= TYPE_MAJORITY:
        return ColumnType(pa.timestamp("us"), _TIMESTAMP, "timestamp")
    return STRING


#: Currencies a generic column may name by code (``USD 12``, ``12 EUR``); any other three capitals
#: (``SKU 123``) mean the column is text, not money.
_CODES = "USD EUR GBP JPY CNY INR CHF CAD AUD NZD SEK NOK DKK PLN CZK HUF RON BGN ISK TRY RUB UAH BRL MXN ARS"
_MORE_CODES = "CLP COP PEN ZAR NGN KES EGP MAD AED SAR ILS KRW SGD HKD TWD THB MYR IDR PHP VND PKR BDT"
CURRENCY_CODES = frozenset(f"{_CODES} {_MORE_CODES}".split())
#: Digits with at most one decimal mark, or grouped by three: ``555 123 4567`` is a phone number.
_GROUPED_NUMBER = r"^(?:[0-9]+|[0-9]{1,3}(?:[,. ' ][0-9]{3})+)(?:[.,][0-9]+)?$"
_AROUND_DIGITS = "$€£¥₹()+-%  ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#: A quick test that a column may hold numbers at all, before the (costlier) money parser runs.
_NUMBER_LIKE = r"[0-9]"


def parse_numbers(values: pa.Array, decimal_comma: bool | None) -> tuple[pa.Array, np.ndarray, bool]:
    """``values`` (trimmed text) as float64, a mask of values that are not numbers, and the decimal
    mark used (decided from the values when ``decimal_comma`` is None)."""
    parsed, fmt = parse_number(values, currency=True, decimal_comma=decimal_comma)
    bad = parsed.invalid.copy()
    present = ~parsed.missing
    codes = fmt.currency
    if codes is not None and codes.null_count < len(codes):
        known = pc.or_(pc.is_null(codes), pc.is_in(codes, pa.array(sorted(CURRENCY_CODES))))
        bad |= present & ~known.to_numpy(zero_copy_only=False)
    digits = pc.utf8_trim(values, characters=_AROUND_DIGITS)
    grouped = pc.fill_null(pc.match_substring_regex(digits, _GROUPED_NUMBER), True)
    bad |= present & ~grouped.to_numpy(zero_copy_only=False)
    numbers = pc.if_else(pa.array(bad), pa.scalar(None, pa.float64()), parsed.values)
    return numbers, bad, fmt.decimal_comma


def _number_type(present: pa.Array) -> ColumnType | None:
    """A number type when (nearly) every value reads as money, a percentage or a grouped number."""
    if _share(present, _NUMBER_LIKE) < TYPE_MAJORITY:
        return None
    numbers, bad, decimal_comma = parse_numbers(present, None)
    if 1 - bad.sum() / len(present) < TYPE_MAJORITY:
        return None
    good = numbers.drop_null().to_numpy(zero_copy_only=False)
    # Whole counts written with separators ("1,234") stay integers; money and shares are doubles.
    symbols = pc.any(pc.match_substring_regex(present, r"[%$€£¥₹(A-Za-z]")).as_py()
    if not symbols and bool(np.all(np.floor(good) == good)) and bool(np.all(np.abs(good) < 2**53)):
        return ColumnType(pa.int64(), None, "int64", decimal_comma)
    return ColumnType(pa.float64(), None, "float64", decimal_comma)


def _strict_dates(values: pa.Array) -> pa.Array:
    """ISO dates as date32; impossible dates such as 2024-02-30 become null (strptime would roll them)."""
    parsed = pc.cast(pc.strptime(values, "%Y-%m-%d", "s", error_is_null=True), pa.date32())
    round_trip = pc.equal(pc.strftime(pc.cast(parsed, pa.timestamp("s")), "%Y-%m-%d"), values)
    return pc.if_else(pc.fill_null(round_trip, False), parsed, pa.scalar(None, pa.date32()))


def _to_bool(values: pa.Array) -> pa.Array:
    lowered = pc.utf8_lower(values)
    return pc.if_else(pc.is_null(lowered), pa.scalar(None, pa.bool_()), pc.is_in(lowered, _TRUE_SET))


def _convert(values: pa.Array, ctype: ColumnType) -> tuple[pa.Array, np.ndarray]:
    """Cast trimmed strings to ``ctype``; returns the array and a mask of values that did not fit."""
    if ctype.pattern is None:
        return values, np.zeros(len(values), dtype=bool)
    fits = pc.match_substring_regex(values, ctype.pattern)
    if pa.types.is_date32(ctype.arrow):
        fits = pc.and_(fits, pc.is_valid(_strict_dates(values)))
    bad = pc.and_(pc.is_valid(values), pc.invert(pc.fill_null(fits, False)))
    bad_mask = bad.to_numpy(zero_copy_only=False)
    clean = pc.if_else(bad, pa.scalar(None, pa.string()), values)
    if pa.types.is_boolean(ctype.arrow):
        converted = _to_bool(clean)
    elif pa.types.is_date32(ctype.arrow):
        converted = _strict_dates(clean)
    elif pa.types.is_timestamp(ctype.arrow):
        converted = pc.cast(pc.replace_substring(clean, "T", " "), pa.timestamp("us"))
    else:
        converted = pc.cast(clean, ctype.arrow)
    return converted, bad_mask


def _normalise_nested(values: pa.Array) -> pa.Array:
    """Nested JSON values become JSON text: Athena and DuckDB both read that without surprises."""
    import json

    return pa.array([None if v is None else json.dumps(v, default=str) for v in values.to_pylist()], pa.string())


_NULL_SET = pa.array(["", *NULL_TOKENS])


_LONGEST_NULL_TOKEN = max(len(t) for t in NULL_TOKENS)


def _ascii_only(column: pa.Array) -> bool:
    """Whether every byte of the column's text is ASCII (checked on the raw buffer, conservatively)."""
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return False
    data = column.buffers()[2]
    return data is None or int(np.frombuffer(data, dtype=np.uint8).max(initial=0)) < 0x80


def _clean_text(column: pa.Array) -> pa.Array:
    """Trim whitespace; blanks and placeholders such as ``N/A`` become null."""
    # ASCII trimming is four times cheaper; Unicode spaces (NBSP from spreadsheets) need the UTF-8 one.
    trimmed = pc.ascii_trim_whitespace(column) if _ascii_only(column) else pc.utf8_trim_whitespace(column)
    if not pc.any(pc.less_equal(pc.binary_length(trimmed), _LONGEST_NULL_TOKEN)).as_py():
        return trimmed
    empty = pc.is_in(trimmed, value_set=_NULL_SET)
    if not pc.any(empty).as_py():
        return trimmed
    return pc.if_else(empty, pa.scalar(None, trimmed.type), trimmed)


def settings_key(source: SourceInfo) -> tuple[str, ...]:
    """The business key ``settings/<dataset>.json`` declares (``"key": ["order_id"]``), snake_cased."""
    key = source.settings.get("key", [])
    if isinstance(key, str):
        key = [key]
    if not isinstance(key, list) or not all(isinstance(k, str) and k.strip() for k in key):
        raise ContractError(
            f"settings/{source.dataset}.json: key must be a column name or a list of them, not {key!r}; "
            "fix the settings"
        )
    return tuple(snake_case(k) for k in key)


def _drop_duplicates(source: SourceInfo) -> bool:
    value = source.settings.get("drop_duplicates", False)
    if not isinstance(value, bool):
        raise ContractError(
            f"settings/{source.dataset}.json: drop_duplicates must be true or false, not {value!r}; fix the settings"
        )
    return value


class GenericPipeline:
    """Clean, type and write any dataset as one table partitioned by ingest date.

    Every row is kept, identical ones included (two sales of the same item at the same price are two
    rows); repeated rows are counted, and dropped only when the dataset's settings say
    ``"drop_duplicates": true``. With a ``"key"``, rows without a key or repeating a key seen earlier
    in the file are quarantined, and the table shows each key once across files (a view).
    """

    tolerance = DEFAULT_TOLERANCE

    def __init__(self, dataset: str) -> None:
        self.dataset = dataset

    def tables(self, source: SourceInfo) -> Sequence[TableSpec]:
        return [
            TableSpec(
                name=self.dataset,
                partition_column=PARTITION_COLUMN,
                description=f"Rows of raw/{source.dataset}/ files, cleaned and typed.",
                key=settings_key(source),
            ),
            PROFILE_TABLE_SPEC,
        ]

    def run(self, batches: Iterator[pa.RecordBatch], source: SourceInfo, sink: OutputSink) -> PipelineResult:
        result = PipelineResult(rows_in=0)
        key = settings_key(source)
        drop_duplicates = _drop_duplicates(source)
        seen = SeenRows()
        seen_keys = SeenRows()
        profile = ProfileAccumulator()
        types: list[ColumnType] | None = None
        names: list[str] = []
        for batch in batches:
            offset = result.rows_in
            result.rows_in += batch.num_rows
            if types is None:
                names = snake_case_columns(batch.schema.names)
                types = [self._infer(batch.column(i)) for i in range(batch.num_columns)]
                missing = [k for k in key if k not in names]
                if missing:
                    raise ContractError(
                        f"settings/{source.dataset}.json names key column(s) {', '.join(missing)}, which this file "
                        f"does not have (its columns: {', '.join(names)}); fix the key in the settings or the export"
                    )
            columns: list[pa.Array] = []
            bad_any = np.zeros(batch.num_rows, dtype=bool)
            reasons: list[tuple[np.ndarray, str, str]] = []
            for i, (raw, name) in enumerate(zip(batch.columns, names, strict=True)):
                ctype = types[i]
                converted, bad = self._column(raw, ctype)
                if bad is not None and bad.any() and ctype.label == "int64":
                    # Decimals after whole numbers: the column widens to double for the whole file
                    # (the sink converts what it already holds) rather than quarantining them.
                    wider_type = (
                        FLOAT if ctype.decimal_comma is None else replace(ctype, arrow=pa.float64(), label="float64")
                    )
                    wider, still_bad = self._column(raw, wider_type)
                    if still_bad is None or int(still_bad.sum()) < int(bad.sum()):
                        types[i], ctype, converted, bad = wider_type, wider_type, wider, still_bad
                if bad is not None and bad.any():
                    reasons.append((bad, name, ctype.label))
                    bad_any |= bad
                columns.append(converted)
            typed = pa.RecordBatch.from_arrays(columns, names=names)
            if bad_any.any():
                self._quarantine_mismatches(batch, offset, bad_any, reasons, sink, result)
                typed = typed.filter(pa.array(~bad_any))
            if key and typed.num_rows:
                typed = self._check_keys(batch, typed, offset, bad_any, key, seen_keys, sink, result)
            hashes = [column_hashes(c) for c in typed.columns]
            keep = seen.first_seen(row_hashes(typed, hashes))
            repeated = int(len(keep) - keep.sum())
            result.duplicates_found += repeated
            if drop_duplicates and repeated:
                result.duplicates_dropped += repeated
                typed = typed.filter(pa.array(keep))
                hashes = [h[keep] for h in hashes]
            if typed.num_rows:
                profile.update(typed, hashes)
                partition = pa.repeat(pa.scalar(source.ingest_date, pa.date32()), typed.num_rows)
                sink.write(self.dataset, typed.append_column(PARTITION_COLUMN, partition))
        if profile.rows:
            sink.write(PROFILE_TABLE_SPEC.name, profile.finish(source))
        return result

    def _check_keys(
        self,
        batch: pa.RecordBatch,
        typed: pa.RecordBatch,
        offset: int,
        bad_any: np.ndarray,
        key: tuple[str, ...],
        seen_keys: SeenRows,
        sink: OutputSink,
        result: PipelineResult,
    ) -> pa.RecordBatch:
        """Quarantine rows of ``typed`` whose key is missing or repeats an earlier row of the file."""
        names = typed.schema.names
        columns = [typed.column(names.index(k)) for k in key]
        missing = np.zeros(typed.num_rows, dtype=bool)
        for column in columns:
            missing |= column.is_null().to_numpy(zero_copy_only=False)
        keyed = pa.RecordBatch.from_arrays(columns, names=list(key))
        first = seen_keys.first_seen(row_hashes(keyed, [column_hashes(c) for c in keyed.columns]))
        repeated = ~first & ~missing
        reject = missing | repeated
        if not reject.any():
            return typed
        # Row numbers of the batch rows still in ``typed`` (type mismatches were taken out before).
        rows = np.flatnonzero(~bad_any)
        original = batch.filter(pa.array(~bad_any)).filter(pa.array(reject))
        label = ", ".join(key)
        reasons = [
            (f"{label} is empty: the dataset's key must be set on every row; fill it in the export"
             if m else f"{label} repeats an earlier row of this file; keep one row per key in the export")
            for m in missing[reject]
        ]  # fmt: skip
        codes = ["missing_key" if m else "duplicate_key" for m in missing[reject]]
        sink.quarantine(
            pa.RecordBatch.from_arrays(
                [
                    *[pc.cast(c, pa.string()) for c in original.columns],
                    pa.array(rows[reject] + offset + 1, pa.int64()),
                    pa.array(codes),
                    pa.array(reasons),
                ],
                names=[*original.schema.names, QUARANTINE_ROW_NUMBER, QUARANTINE_REASON_CODE, QUARANTINE_REASON],
            )
        )
        result.rows_rejected += int(reject.sum())
        for code in ("missing_key", "duplicate_key"):
            count = codes.count(code)
            if count:
                result.rejected_by_reason[code] = result.rejected_by_reason.get(code, 0) + count
        return typed.filter(pa.array(~reject))

    @staticmethod
    def _infer(column: pa.Array) -> ColumnType:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            # The first rows decide; later values that do not fit are quarantined, not lost.
            return infer_type(_clean_text(column.slice(0, INFERENCE_ROWS)))
        if pa.types.is_nested(column.type):
            return STRING
        return ColumnType(column.type, None, str(column.type))

    @staticmethod
    def _column(raw: pa.Array, ctype: ColumnType) -> tuple[pa.Array, np.ndarray | None]:
        """The column in its type, and which rows did not fit (``None``: all did)."""
        if pa.types.is_nested(raw.type):
            return _normalise_nested(raw), None
        if not (pa.types.is_string(raw.type) or pa.types.is_large_string(raw.type)):
            return (raw if raw.type == ctype.arrow else pc.cast(raw, ctype.arrow)), None
        if ctype.decimal_comma is not None:
            numbers, bad, _ = parse_numbers(_clean_text(raw), ctype.decimal_comma)
            if pa.types.is_integer(ctype.arrow):
                values = numbers.to_numpy(zero_copy_only=False)
                bad |= ~np.isnan(values) & (np.floor(values) != values)
                numbers = pc.if_else(pa.array(bad), pa.scalar(None, pa.float64()), numbers)
                return pc.cast(numbers, pa.int64()), (bad if bad.any() else None)
            return numbers, (bad if bad.any() else None)
        if ctype.pattern is None:
            return _clean_text(raw), None
        # Fast path: Arrow's strict cast succeeds on clean data (no blanks, padding or odd values).
        if pa.types.is_boolean(ctype.arrow):
            lowered = pc.ascii_lower(raw)
            truthy = pc.is_in(lowered, _TRUE_SET)
            if pc.all(pc.or_(truthy, pc.is_in(lowered, _FALSE_SET))).as_py():
                return truthy, None
        else:
            try:
                return pc.cast(raw, ctype.arrow), None
            except pa.ArrowInvalid:
                pass
        cleaned = _clean_text(raw)
        if pa.types.is_boolean(ctype.arrow):
            if pc.all(pc.is_in(pc.utf8_lower(cleaned.drop_null()), _BOOL_SET)).as_py() is not False:
                return _to_bool(cleaned), None
        else:
            try:
                return pc.cast(cleaned, ctype.arrow), None
            except pa.ArrowInvalid:
                pass
        return _convert(cleaned, ctype)

    @staticmethod
    def _quarantine_mismatches(
        batch: pa.RecordBatch,
        offset: int,
        bad_any: np.ndarray,
        reasons: list[tuple[np.ndarray, str, str]],
        sink: OutputSink,
        result: PipelineResult,
    ) -> None:
        idx = np.flatnonzero(bad_any)
        messages = []
        for i in idx:
            wrong = [f"{name} is not {label}" for mask, name, label in reasons if mask[i]]
            messages.append("; ".join(wrong) + " like the rest of its column; fix the value or the column")
        rejected = batch.filter(pa.array(bad_any))
        as_text = [pc.cast(col, pa.string()) for col in rejected.columns]
        rows = pa.RecordBatch.from_arrays(
            [
                *as_text,
                pa.array(idx + offset + 1, pa.int64()),
                pa.array(["type_mismatch"] * len(idx)),
                pa.array(messages),
            ],
            names=[*rejected.schema.names, QUARANTINE_ROW_NUMBER, QUARANTINE_REASON_CODE, QUARANTINE_REASON],
        )
        sink.quarantine(rows)
        result.rows_rejected += len(idx)
        result.rejected_by_reason["type_mismatch"] = result.rejected_by_reason.get("type_mismatch", 0) + len(idx)
