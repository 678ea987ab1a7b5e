"""Vectorised parsing of the values real exports contain: money, counts, percentages, dates, flags.

Every parser takes one Arrow column (strings from CSV, or already typed from Parquet / JSON lines)
and returns a :class:`Parsed`: the typed values plus two masks, ``missing`` (no value at all) and
``invalid`` (a value that could not be understood). The caller turns the masks into quarantine
reasons. Nothing here loops over rows in Python: a million-row file is parsed in Arrow kernels,
and the byte-level shortcuts (reading Arrow's string buffers with numpy) live in
:mod:`analytics._kernels`, each equal to the plain ``pyarrow.compute`` call it stands in for.

Decisions that depend on the whole file (is ``03/04/2024`` the 3rd of April or the 4th of March?
is ``1,234`` one thousand two hundred and thirty-four, or one point two three four?) are taken
once per file, from the evidence in the column, and reported back so the pipeline can publish
them as a fact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from analytics._kernels import (
    combine,
    date_part,
    first_bytes,
    is_text,
    may_hold_time,
    null_token_candidates,
    rows_at_edge,
    rows_with,
    trim_whitespace,
)
from analytics._kernels import mask as _mask
from analytics.base import DateDecision, DateHistory, DateOrder

#: Text that means "no value" in real exports (ad platforms write ``--``, spreadsheets ``N/A``).
NULL_TOKENS = ("", "-", "--", "n/a", "na", "null", "none", "nan", "(not set)")
# Matched without lower-casing every value: the spellings exports actually use.
_NULL_SPELLINGS = pa.array(
    sorted({v for t in NULL_TOKENS for v in (t, t.upper(), t.title(), t.capitalize())}), pa.string()
)
#: First bytes of the null tokens' spellings: a value starting otherwise is no null token.
_TOKEN_START = first_bytes(_NULL_SPELLINGS.to_pylist())

_CURRENCY = "(?:[$€£¥₹]|[A-Z]{3})"
# RE2 has no \u escapes; the no-break space (French thousands separator) goes in literally.
_NBSP = "\u00a0"
_NUM = f"[0-9](?:[0-9.,' {_NBSP}]*[0-9])?"
# One pass validates the whole value; a value that does not match (``12abc``, ``1-2``, ``(5``) is
# invalid rather than silently truncated. Either a signed amount with an optional currency before
# or after it and an optional percent sign, or an accounting negative in parentheses.
_MONEY = (
    rf"^(?:[-+]?\s*{_CURRENCY}?\s*[-+]?\s*{_NUM}\s*{_CURRENCY}?\s*%?"
    rf"|\(\s*{_CURRENCY}?\s*{_NUM}\s*{_CURRENCY}?\s*\))$"
)
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#: A number with at most a sign and a decimal dot: cast without the money path.
_PLAIN = r"^[-+]?[0-9]+(?:\.[0-9]+)?$"
#: Characters around the digits of a money value: signs, parentheses, percent, currency.
_AROUND_NUMBER = "$€£¥₹()+-% " + _NBSP + _LETTERS
_SYMBOL_CURRENCY = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR"}
_GROUPED_DOT_DECIMAL = r"^[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?$"
_GROUPED_COMMA_DECIMAL = r"^[0-9]{1,3}(?:\.[0-9]{3})+(?:,[0-9]+)?$"
#: Values looked at to decide a file's decimal mark; evenly spread, so the decision is stable.
_DECISION_SAMPLE = 50_000


@dataclass(frozen=True)
class Parsed:
    """A parsed column: typed values (null where missing or invalid) and why values are null."""

    values: pa.Array
    missing: np.ndarray
    invalid: np.ndarray


def normalise_text(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Strings trimmed, with the null tokens of :data:`NULL_TOKENS` turned into nulls."""
    arr = combine(arr)
    if not is_text(arr):
        arr = pc.cast(arr, pa.string())
    candidates = null_token_candidates(arr, _TOKEN_START)
    if candidates is not None:
        # Nothing to trim; only values that start like a null token (or are empty) are looked up.
        rows = np.flatnonzero(candidates)
        if not len(rows):
            return arr
        hits = _mask(pc.is_in(arr.take(pa.array(rows)), value_set=_NULL_SPELLINGS))
        if not hits.any():
            return arr
        is_token = np.zeros(len(arr), dtype=bool)
        is_token[rows[hits]] = True
        return pc.if_else(pa.array(is_token), pa.scalar(None, pa.string()), arr)
    trimmed = pc.utf8_trim_whitespace(arr)
    is_null_token = pc.is_in(trimmed, value_set=_NULL_SPELLINGS)
    if not pc.any(is_null_token).as_py():
        return trimmed  # the common case; spares copying a million strings
    return pc.if_else(is_null_token, pa.scalar(None, pa.string()), trimmed)


def as_strings(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Original values as strings, for quarantine (typed columns are formatted by Arrow)."""
    arr = combine(arr)
    if is_text(arr):
        return pc.cast(arr, pa.string())
    try:
        return pc.cast(arr, pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return pa.array([None if v is None else str(v) for v in arr.to_pylist()], pa.string())


def parse_text(arr: pa.Array | pa.ChunkedArray, *, lower: bool = False) -> Parsed:
    """A trimmed string column; ``lower`` also case-normalises and collapses inner spaces."""

    def parse(values: pa.Array, _weights: np.ndarray | None) -> Parsed:
        text = normalise_text(values)
        if lower:
            text = pc.utf8_lower(pc.replace_substring_regex(text, r"\s+", " "))
        return Parsed(text, _mask(pc.is_null(text)), np.zeros(len(text), dtype=bool))

    if lower:
        return by_dictionary(arr, parse)
    return parse(combine(arr), None)


#: Below this share of distinct values, parsing the distinct values and expanding is cheaper.
_DICTIONARY_SHARE = 0.2


def by_dictionary(arr: pa.Array | pa.ChunkedArray, parse: Callable[[pa.Array, np.ndarray | None], Parsed]) -> Parsed:
    """Run ``parse`` on the distinct values of a low-cardinality string column and expand.

    A million rows of dates or channel names hold a few hundred distinct strings; parsing those
    is what makes the pipelines fast. ``parse`` gets the distinct values and how often each occurs.
    """
    arr = combine(arr)
    if not is_text(arr) or len(arr) < 1000:
        return parse(arr, None)
    encoded = pc.dictionary_encode(arr)
    dictionary = encoded.dictionary
    if len(dictionary) > _DICTIONARY_SHARE * len(arr):
        return parse(arr, None)
    indices = encoded.indices
    null_rows = _mask(pc.is_null(indices))
    idx = np.asarray(pc.fill_null(indices, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    counts = np.bincount(idx[~null_rows], minlength=len(dictionary)).astype(np.int64)
    parsed = parse(dictionary, counts)
    values = parsed.values.take(pa.array(idx, mask=null_rows))
    missing = parsed.missing[idx] | null_rows if len(dictionary) else null_rows
    invalid = (parsed.invalid[idx] & ~null_rows) if len(dictionary) else np.zeros(len(arr), dtype=bool)
    return Parsed(values, missing, invalid)


def decide_decimal_comma(numbers: pa.Array) -> bool:
    """Whether this file's column writes decimals with a comma (``1.234,50``) rather than a dot.

    ``numbers`` holds the digits-and-separators part of each value. Evidence for a decimal comma:
    a value with both separators where the comma comes last, or a comma followed by one or two
    digits at the end. Evidence for a decimal dot: the mirror image. The majority wins (over at
    most 50,000 values spread evenly over the file); with no evidence at all the dot is assumed.
    """
    if len(numbers) > _DECISION_SAMPLE:
        numbers = numbers.take(pa.array(np.linspace(0, len(numbers) - 1, _DECISION_SAMPLE).astype(np.int64)))
    comma = pc.sum(pc.match_substring_regex(numbers, r"(?:\.[0-9]{3},[0-9]*$)|(?:,[0-9]{1,2}$)")).as_py() or 0
    dot = pc.sum(pc.match_substring_regex(numbers, r"(?:,[0-9]{3}\.[0-9]*$)|(?:\.[0-9]{1,2}$)")).as_py() or 0
    return bool(comma > dot)


@dataclass(frozen=True)
class NumberFormat:
    """What the file's number column revealed about its format (decided once per file)."""

    decimal_comma: bool
    #: ISO currency per row from the value's symbol or code (``$`` → USD); null when there is none.
    currency: pa.Array | None


def _try_cast_float(text: pa.Array) -> pa.Array | None:
    # A failing cast still scans the whole column; a small probe rules out money columns cheaply.
    if len(text) > 2000:
        try:
            pc.cast(text.slice(0, 1000), pa.float64())
        except pa.ArrowInvalid:
            return None
    try:
        return pc.cast(text, pa.float64())
    except pa.ArrowInvalid:
        return None


def _currency_codes(text: pa.Array) -> pa.Array:
    """ISO currency per value from what surrounds its digits (``$``, ``€``, ``EUR``)."""
    token = pc.utf8_trim(text, characters="0123456789.,'()+-% " + _NBSP)
    encoded = (
        pc.dictionary_encode(token).combine_chunks()
        if isinstance(token, pa.ChunkedArray)
        else pc.dictionary_encode(token)
    )
    codes = [
        _SYMBOL_CURRENCY.get(t) if t in _SYMBOL_CURRENCY else (t.upper() if t and len(t) == 3 and t.isalpha() else None)
        for t in encoded.dictionary.to_pylist()
    ]
    return pc.take(pa.array(codes, pa.string()), encoded.indices)


def parse_number(
    arr: pa.Array | pa.ChunkedArray, *, currency: bool = False, decimal_comma: bool | None = None
) -> tuple[Parsed, NumberFormat]:
    """Numbers as float64 from money, counts and percentages.

    Accepts ``1234``, ``1,234.50``, ``$1,234.50``, ``1.234,50 €``, ``USD 12``, ``-$5``, ``(12.50)``
    (accounting negative), ``12.5%`` (becomes 0.125); ``1e-05`` only in a column of plain numbers
    (machine-written files). Whether a lone separator
    (``1,234`` / ``1.234``) is a thousands or a decimal mark is decided once per file by
    :func:`decide_decimal_comma`, unless ``decimal_comma`` says it (a file read in batches keeps the
    decision its first batch took). With ``currency`` the symbol or code of each value is returned too.
    """
    arr = combine(arr)
    n = len(arr)
    if not is_text(arr):
        if pa.types.is_boolean(arr.type) or not (
            pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type) or pa.types.is_decimal(arr.type)
        ):
            return parse_number(normalise_text(arr), currency=currency, decimal_comma=decimal_comma)
        values = pc.cast(arr, pa.float64())
        # NaN and inf in typed input are not numbers anyone can act on; treat them as invalid.
        finite = pc.is_finite(values)
        invalid = _mask(pc.and_(pc.is_valid(values), pc.invert(finite)))
        values = pc.if_else(finite, values, pa.scalar(None, pa.float64()))
        return Parsed(values, _mask(pc.is_null(arr)), invalid), NumberFormat(False, None)

    text = normalise_text(arr)
    missing = _mask(pc.is_null(text))
    # Fast path: count columns are usually plain numbers and cast in one kernel.
    # (Not when the decimal mark is a given comma: "1.234" then means 1234.)
    direct = _try_cast_float(text) if not decimal_comma else None
    if direct is not None:
        out = direct.to_numpy(zero_copy_only=False).astype(float)
        return _finish(out, missing, np.zeros(n, dtype=bool)), NumberFormat(
            False, _currency_codes(text) if currency else None
        )
    # Prices repeat: a million amounts hold a few ten thousand distinct strings, each parsed once
    # here. Whatever depends on the whole file (the plain-number probe, the decimal-mark evidence)
    # is still taken over rows, so the result is the same as parsing every row.
    distinct: pa.Array = text
    value_of_row: np.ndarray | None = None
    encoded: pa.DictionaryArray | None = None
    if _worth_dictionary(text):
        encoded = pc.dictionary_encode(text)
        distinct = encoded.dictionary
        value_of_row = np.asarray(pc.fill_null(encoded.indices, 0).to_numpy(zero_copy_only=False), np.int64)
    present = ~missing
    missing_rows = np.flatnonzero(missing)

    def per_row(per_value: np.ndarray, fill: float | bool) -> np.ndarray:
        if value_of_row is None:
            return per_value
        if not len(per_value):
            return np.full(n, fill, dtype=per_value.dtype)
        out = per_value[value_of_row]  # null rows point at value 0 until filled
        out[missing_rows] = fill
        return out

    currency_codes = None
    if currency:
        currency_codes = _currency_codes(distinct)
        if encoded is not None:
            currency_codes = pc.take(currency_codes, encoded.indices)
    fmt = NumberFormat(False, currency_codes)
    # Plain values ("129.90", "-5") cast directly; only the others take the money path. The
    # decimal mark is decided over both, so "1.234" reads like "1.234,50" elsewhere in the file.
    missing_value = missing if value_of_row is None else np.zeros(len(distinct), dtype=bool)
    if value_of_row is None:
        probe_plain = len(text) <= 2000 or bool(pc.any(pc.match_substring_regex(text.slice(0, 1000), _PLAIN)).as_py())
        plain = _mask(pc.match_substring_regex(text, _PLAIN)) if probe_plain else np.zeros(n, dtype=bool)
    else:
        plain = _mask(pc.match_substring_regex(distinct, _PLAIN))
        head = value_of_row[:1000][present[:1000]]
        probe_plain = len(text) <= 2000 or bool(plain[head].any())
    if not probe_plain:
        # A money column ("$1,234.50" throughout): skip the plain pass, the money path reads all.
        plain = np.zeros(len(distinct), dtype=bool)
    rest = ~plain & ~missing_value
    sub, ok, num = _money_parts(distinct, rest)
    # Evidence from up to 50,000 values of each kind, spread evenly over the file's rows.
    position_in_sub = np.full(len(distinct), -1, dtype=np.int64)
    position_in_sub[np.flatnonzero(rest)] = np.arange(int(rest.sum()))
    rest_rows = np.flatnonzero(per_row(rest, False))
    sub_of_rest_rows = position_in_sub[rest_rows] if value_of_row is None else position_in_sub[value_of_row[rest_rows]]
    ok_positions = sub_of_rest_rows[ok[sub_of_rest_rows]] if len(sub_of_rest_rows) else sub_of_rest_rows
    plain_rows = _spread_positions(np.flatnonzero(per_row(plain, False)))
    plain_values = plain_rows if value_of_row is None else value_of_row[plain_rows]
    evidence = pa.concat_arrays([num.take(_spread(ok_positions)), distinct.take(pa.array(plain_values, pa.int64()))])
    if decimal_comma is None:
        decimal_comma = decide_decimal_comma(evidence)
    fmt = NumberFormat(decimal_comma, fmt.currency)
    if decimal_comma:
        # In a decimal-comma file the dot groups thousands: "1.234" is 1234, via the money path.
        dotted = plain & _mask(pc.match_substring(distinct, "."))
        if dotted.any():
            plain &= ~dotted
            rest |= dotted
            sub, ok, num = _money_parts(distinct, rest)
    out = np.full(len(distinct), np.nan)
    invalid = np.zeros(len(distinct), dtype=bool)
    if plain.any():
        out[plain] = pc.cast(pc.filter(distinct, pa.array(plain)), pa.float64()).to_numpy(zero_copy_only=False)
    if rest.any():
        idx = np.flatnonzero(rest)
        # Thousands separators must group by three: "1,5" in a decimal-dot file is a typo, not 15.
        group_mark, grouped_pattern = (".", _GROUPED_COMMA_DECIMAL) if decimal_comma else (",", _GROUPED_DOT_DECIMAL)
        grouped = rows_with(num, group_mark)
        if grouped.any():
            rows = np.flatnonzero(grouped)
            ok[rows] &= _mask(pc.match_substring_regex(num.take(pa.array(rows)), grouped_pattern))
        if decimal_comma:
            canon = pc.replace_substring(pc.replace_substring(num, ".", ""), ",", ".")
        else:
            canon = pc.replace_substring(num, ",", "")
        # A decimal mark used twice ("1.2.3") is not a number; the cast decides, per value if needed.
        canon = pc.if_else(pa.array(ok), canon, pa.scalar(None, pa.string()))
        cast = _try_cast_float(canon)
        if cast is None:
            canon = pc.replace_substring_regex(canon, f"[' {_NBSP}]", "")
            ok &= _mask(pc.match_substring_regex(canon, r"^[0-9]+(?:\.[0-9]+)?$"))
            canon = pc.if_else(pa.array(ok), canon, pa.scalar(None, pa.string()))
            cast = pc.cast(canon, pa.float64())
        vals = cast.to_numpy(zero_copy_only=False).astype(float)
        # A well-formed value has a minus only as its sign and "(" only as an accounting negative.
        # Byte scans (analytics._kernels) rather than string kernels: the same masks, faster.
        negative = rows_with(sub, "-") | rows_at_edge(sub, "(", last=False)
        pct = rows_at_edge(sub, "%", last=True)
        vals = np.where(negative, -vals, vals)
        vals = np.where(pct, vals / 100.0, vals)
        vals[~ok] = np.nan
        out[idx] = vals
        invalid[idx] = ~ok
    return _finish(per_row(out, np.nan), missing, per_row(invalid, False)), fmt


#: Rows sampled to judge whether a column's values repeat enough to parse them once each.
_CARDINALITY_SAMPLE = 20_000


def _worth_dictionary(text: pa.Array) -> bool:
    """Whether a column probably holds at most :data:`_DICTIONARY_SHARE` distinct values per row.

    Judged by the repeats in an evenly spread sample (a choice of speed only: both ways give the
    same result). At that share, a sample of ``s`` rows repeats about ``s² / (2 · share · n)``
    values; half of that is the bar.
    """
    n = len(text)
    if n < 1000:
        return False
    s = min(n, _CARDINALITY_SAMPLE)
    sample = text if s == n else text.take(pa.array(np.linspace(0, n - 1, s).astype(np.int64)))
    repeats = s - int(pc.count_distinct(sample).as_py())
    if s == n:
        return repeats >= (1 - _DICTIONARY_SHARE) * n
    return repeats >= s * s / (4 * _DICTIONARY_SHARE * n)


def _spread_positions(rows: np.ndarray) -> np.ndarray:
    """At most :data:`_DECISION_SAMPLE` of ``rows``, evenly spaced (deterministic)."""
    if len(rows) > _DECISION_SAMPLE:
        rows = rows[np.linspace(0, len(rows) - 1, _DECISION_SAMPLE).astype(np.int64)]
    return rows


def _spread(rows: np.ndarray) -> pa.Array:
    """At most :data:`_DECISION_SAMPLE` of ``rows``, evenly spaced (deterministic)."""
    return pa.array(_spread_positions(rows), pa.int64())


def _money_parts(text: pa.Array, rows: np.ndarray) -> tuple[pa.Array, np.ndarray, pa.Array]:
    """The ``rows`` of ``text``, whether each is a well-formed money value, and its digits part."""
    idx = np.flatnonzero(rows)
    sub = text if len(idx) == len(text) else pc.take(text, pa.array(idx))
    ok = _mask(pc.match_substring_regex(sub, _MONEY))
    # Spaces and apostrophes grouping thousands ("1 234,50") stay in; the cast step removes them
    # only if it has to, which spares a pass over every value of the usual files.
    num = pc.utf8_trim(sub, characters=_AROUND_NUMBER)
    return sub, ok, num


def _finish(out: np.ndarray, missing: np.ndarray, invalid: np.ndarray) -> Parsed:
    # "1e400" casts to inf, which is not a usable number.
    infinite = np.isinf(out)
    invalid = invalid | infinite
    out[infinite] = np.nan
    return Parsed(pa.array(out, mask=np.isnan(out)), missing, invalid & ~missing)


def parse_integer(arr: pa.Array | pa.ChunkedArray) -> Parsed:
    """Whole numbers (impressions, clicks, quantities) as int64; ``12.5`` is invalid."""
    arr = combine(arr)
    if is_text(arr) and len(arr) > 2000:
        # Fast path: a column of plain integers casts in one kernel, no float round trip.
        text = normalise_text(arr)
        try:
            pc.cast(text.slice(0, 1000), pa.int64())
            values = pc.cast(text, pa.int64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        else:
            missing = _mask(pc.is_null(values))
            return Parsed(values, missing, np.zeros(len(values), dtype=bool))
    parsed, _ = parse_number(arr)
    vals = parsed.values.to_numpy(zero_copy_only=False)
    fractional = np.zeros(len(vals), dtype=bool)
    finite = ~np.isnan(vals)
    fractional[finite] = np.mod(vals[finite], 1.0) != 0
    too_big = np.zeros(len(vals), dtype=bool)
    too_big[finite] = np.abs(vals[finite]) > 2**53
    invalid = parsed.invalid | fractional | too_big
    good = finite & ~fractional & ~too_big
    ints = np.where(good, vals, 0).astype(np.int64)
    return Parsed(pa.array(ints, mask=~good), parsed.missing, invalid)


_TRUE = ("1", "true", "t", "yes", "y", "1.0")
_FALSE = ("0", "false", "f", "no", "n", "0.0")


def parse_flag(arr: pa.Array | pa.ChunkedArray) -> Parsed:
    """Booleans from ``0/1``, ``true/false``, ``yes/no`` (any case), or a typed boolean column."""
    arr = combine(arr)
    if pa.types.is_boolean(arr.type):
        return Parsed(arr, _mask(pc.is_null(arr)), np.zeros(len(arr), dtype=bool))
    text = pc.utf8_lower(normalise_text(arr))
    missing = _mask(pc.is_null(text))
    is_true = _mask(pc.is_in(text, value_set=pa.array(_TRUE)))
    is_false = _mask(pc.is_in(text, value_set=pa.array(_FALSE)))
    invalid = ~missing & ~is_true & ~is_false
    values = pa.array(is_true, mask=~(is_true | is_false))
    return Parsed(values, missing, invalid)


_DATE = r"^(?P<a>[0-9]{1,4})(?P<sep>[/.\-])(?P<b>[0-9]{1,2})[/.\-](?P<c>[0-9]{1,4})(?:[ T].*)?$"
# Dates parsed this way must fall in a plausible window; 0001-01-01 is a typo, not a campaign day.
_MIN_YEAR, _MAX_YEAR = 1970, 2100


def _to_int(arr: pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(pc.cast(arr, pa.int64()), 0).to_numpy(zero_copy_only=False))


def decide_date_order(
    first: np.ndarray,
    second: np.ndarray,
    dotted: np.ndarray,
    configured: str | None,
    weights: np.ndarray | None = None,
    history: Callable[[], DateHistory] | None = None,
) -> DateDecision:
    """Pick DMY or MDY for the whole file from the values whose year comes last.

    Order of precedence: the dataset setting ``date_order``; otherwise a value whose first part
    is above 12 proves day-first and one whose second part is above 12 proves month-first (the
    side with more such rows wins, the other side's rows then fail as invalid dates); with no
    proof, the order earlier files of the same export shape proved (``history``, looked up only
    here, so files with a setting or only ISO dates never pay for the lookup); with neither,
    dot-separated files (``31.01.2024``) are day-first and all others month-first, which is what
    US ad platforms export by default.
    """
    if configured:
        order = configured.strip().upper()
        if order not in ("DMY", "MDY"):
            raise ValueError(f"date_order setting must be 'DMY' or 'MDY', got {configured!r}")
        return DateDecision("DMY" if order == "DMY" else "MDY", "setting date_order", "setting")
    past = history() if history is not None else None
    w = np.ones(len(first), dtype=np.int64) if weights is None else weights
    day_first = int(w[first > 12].sum())
    month_first = int(w[second > 12].sum())
    if day_first or month_first:
        proved: DateOrder
        if day_first >= month_first:
            proved, evidence = "DMY", f"{day_first} value(s) with a first part above 12"
        else:
            proved, evidence = "MDY", f"{month_first} value(s) with a second part above 12"
        basis = evidence
        if past is not None and past.order is not None and past.order != proved:
            basis += (
                f"; disagrees with history: {past.key} proved {past.order} ({past.evidence}); "
                "this file's proof wins and is now the export shape's history"
            )
        return DateDecision(proved, basis, "proof", evidence)
    if past is not None and past.order is not None:
        return DateDecision(past.order, f"history: {past.key} proved {past.order} ({past.evidence})", "history")
    unread = f"; {past.unavailable}" if past is not None and past.unavailable else ""
    if len(dotted) and int(w[dotted].sum()) * 2 > int(w.sum()):
        return DateDecision("DMY", f"no value above 12; dot-separated dates are day-first{unread}")
    return DateDecision("MDY", f"no value above 12; slash dates default to month-first (US){unread}")


def parse_date(
    arr: pa.Array | pa.ChunkedArray,
    *,
    configured_order: str | None = None,
    history: Callable[[], DateHistory] | None = None,
) -> tuple[Parsed, DateDecision | None]:
    """Dates (date32) from ISO ``2024-01-31``, ``2024/01/31``, ``01/31/2024``, ``31.01.2024``,
    two-digit years, or timestamps (the time part is dropped); typed date/timestamp columns pass.
    Ambiguous day/month order is decided by :func:`decide_date_order`; ``history`` is called at
    most once, and only when the column holds dates with the year last and no setting decides.
    """
    arr = combine(arr)
    n = len(arr)
    if pa.types.is_date(arr.type):
        values = pc.cast(arr, pa.date32())
        return Parsed(values, _mask(pc.is_null(arr)), np.zeros(n, dtype=bool)), None
    if pa.types.is_timestamp(arr.type):
        if arr.type.tz is not None:
            arr = pc.cast(arr, pa.timestamp(arr.type.unit))
        values = pc.cast(arr, pa.date32())
        return Parsed(values, _mask(pc.is_null(arr)), np.zeros(n, dtype=bool)), None
    decisions: list[DateDecision] = []

    def parse(values: pa.Array, weights: np.ndarray | None) -> Parsed:
        parsed, decision = _parse_date_text(values, weights, configured_order, history)
        if decision is not None:
            decisions.append(decision)
        return parsed

    text = trim_whitespace(arr)
    if may_hold_time(text):
        # Timestamps: keep the date part, so that a million distinct timestamps become a few
        # hundred distinct dates and parse through the dictionary.
        text = date_part(text)
    parsed = by_dictionary(text, parse)
    return parsed, (decisions[0] if decisions else None)


def _parse_date_text(
    arr: pa.Array,
    weights: np.ndarray | None,
    configured_order: str | None,
    history: Callable[[], DateHistory] | None = None,
) -> tuple[Parsed, DateDecision | None]:
    text = normalise_text(arr)
    missing = _mask(pc.is_null(text))
    parts = pc.extract_regex(text, _DATE)
    matched = _mask(pc.is_valid(parts))
    a_txt = pc.struct_field(parts, "a")
    c_txt = pc.struct_field(parts, "c")
    a = _to_int(pc.if_else(pc.is_valid(parts), a_txt, "0"))
    b = _to_int(pc.if_else(pc.is_valid(parts), pc.struct_field(parts, "b"), "0"))
    c = _to_int(pc.if_else(pc.is_valid(parts), c_txt, "0"))
    a_len = np.asarray(pc.fill_null(pc.utf8_length(a_txt), 0).to_numpy(zero_copy_only=False))
    c_len = np.asarray(pc.fill_null(pc.utf8_length(c_txt), 0).to_numpy(zero_copy_only=False))
    dotted = _mask(pc.equal(pc.struct_field(parts, "sep"), "."))
    ymd = matched & (a_len == 4)
    year_last = matched & ~ymd & ((c_len == 4) | (c_len == 2))
    decision: DateDecision | None = None
    year = np.where(ymd, a, c)
    month = np.where(ymd, b, 0)
    day = np.where(ymd, c, 0)
    if year_last.any():
        decision = decide_date_order(
            a[year_last],
            b[year_last],
            dotted[year_last],
            configured_order,
            None if weights is None else weights[year_last],
            history,
        )
        first_is_day = decision.order == "DMY"
        month = np.where(year_last, b if first_is_day else a, month)
        day = np.where(year_last, a if first_is_day else b, day)
        year = np.where(year_last & (c_len == 2), 2000 + c, year)
    candidate = ymd | year_last
    ok = candidate & (month >= 1) & (month <= 12) & (day >= 1) & (year >= _MIN_YEAR) & (year <= _MAX_YEAR)
    months = np.where(ok, (year - 1970) * 12 + (month - 1), 0).astype("datetime64[M]")
    days = months.astype("datetime64[D]") + np.where(ok, day - 1, 0).astype("timedelta64[D]")
    # Day 31 of a 30-day month rolls into the next month; such dates are invalid, not moved.
    ok &= days.astype("datetime64[M]") == months
    invalid = ~missing & ~ok
    values = pa.array(days.astype("datetime64[D]"), type=pa.date32(), mask=~ok)
    return Parsed(values, missing, invalid), decision
