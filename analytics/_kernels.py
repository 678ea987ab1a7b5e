"""Speed kernels: byte-level and numpy code behind the cleaning and contract rules, kept apart.

Nothing here decides anything about a dataset; each function computes exactly what a plain
``pyarrow.compute``, pandas or numpy expression computes (named in its docstring as "must equal"),
only faster, by reading Arrow's string buffers (offsets and bytes) with numpy, looking at two bytes
a value instead of every character, or numbering integers through a table instead of a hash. They
exist for speed alone: a million-row file is parsed in a few Arrow passes. The rules they serve are
in :mod:`analytics.cleaning` (how values are read) and :mod:`analytics.contract` (which rows are
kept); ``tests/unit/analytics/test_kernels.py`` checks every kernel against its reference.

Sections: Arrow helpers; text (trimming, null tokens, byte scans); dates (the date part of a
timestamp); codes (factorising, row codes, sorting); hashes (per value and per row).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# --- Arrow helpers ---------------------------------------------------------------------------


def mask(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean Arrow array as a numpy mask; nulls count as False."""
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def combine(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous array (chunked columns come from multi-batch files)."""
    if isinstance(arr, pa.ChunkedArray):
        return arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    return arr


def is_text(arr: pa.Array | pa.ChunkedArray) -> bool:
    """Whether the column holds strings (CSV) rather than typed values."""
    return pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)


def _string_buffers(text: pa.Array) -> tuple[np.ndarray, np.ndarray] | None:
    """Offsets and the bytes they cover of a string array without nulls (zero-copy), else None."""
    if not pa.types.is_string(text.type) or text.null_count:
        return None
    _, offsets_buffer, data_buffer = text.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32)[text.offset : text.offset + len(text) + 1]
    if data_buffer is None or not len(offsets):
        return offsets, np.zeros(0, np.uint8)
    data = np.frombuffer(data_buffer, dtype=np.uint8)[offsets[0] : offsets[-1]]
    return offsets - offsets[0], data


def _offsets_and_bytes(text: pa.Array) -> tuple[np.ndarray, np.ndarray] | None:
    """Absolute offsets and the whole data buffer of a string array (zero-copy), or None."""
    if not pa.types.is_string(text.type) or not len(text):
        return None
    _, offsets_buffer, data_buffer = text.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32)[text.offset : text.offset + len(text) + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    return offsets, data


# --- text ------------------------------------------------------------------------------------

#: Bytes that may start or end a value with whitespace to trim: the space and every ASCII control
#: byte, and any non-ASCII byte (Unicode spaces such as the no-break space are multi-byte).
_MAY_TRIM = np.zeros(256, dtype=bool)
_MAY_TRIM[: ord(" ") + 1] = True
_MAY_TRIM[0x7F:] = True


_EMPTY_EDGE = ord("0")


def trim_whitespace(arr: pa.Array) -> pa.Array:
    """Must equal ``pc.utf8_trim_whitespace(arr)``; returns ``arr`` itself when no value's first
    or last byte could be whitespace (two bytes a value instead of a pass over every string)."""
    edges = _edge_bytes(arr)
    if edges is not None and not (_MAY_TRIM[edges[0]].any() or _MAY_TRIM[edges[1]].any()):
        return arr
    return pc.utf8_trim_whitespace(arr)


def _edge_bytes(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """First and last byte of every value (``"0"`` for empty ones, a byte that is not whitespace)
    and which values are empty; ``None`` for arrays that are
    not strings without nulls."""
    buffers = _string_buffers(arr)
    if buffers is None or not len(arr):
        return None
    offsets, data = buffers
    starts, ends = offsets[:-1], offsets[1:]
    empty = ends == starts
    if not len(data):
        filler = np.full(len(arr), _EMPTY_EDGE, dtype=np.uint8)
        return filler, filler, empty
    if empty.any():
        # An empty value's neighbours' bytes are read, then replaced.
        first = np.where(empty, _EMPTY_EDGE, data[np.minimum(starts, len(data) - 1)]).astype(np.uint8)
        last = np.where(empty, _EMPTY_EDGE, data[np.maximum(ends - 1, 0)]).astype(np.uint8)
    else:
        first = data[starts]
        last = data[ends - 1]
    return first, last, empty


def first_bytes(tokens: Iterable[str]) -> np.ndarray:
    """A table of 256 flags: which bytes start one of the (ASCII) ``tokens``; empty tokens flag none."""
    table = np.zeros(256, dtype=bool)
    table[sorted({ord(t[0]) for t in tokens if t})] = True
    return table


def null_token_candidates(arr: pa.Array, token_start: np.ndarray) -> np.ndarray | None:
    """For a string array without nulls whose values need no trimming (first and last bytes are
    ASCII and not whitespace): which values could be a null token, empty ones or those whose first
    byte ``token_start`` (:func:`first_bytes`) flags. ``None`` when it is not such an array; then
    the caller trims and looks every value up. Two bytes per value instead of a pass over every
    string. Must hold: every row where ``pc.is_in(pc.utf8_trim_whitespace(arr), tokens)`` is true
    is a candidate, and ``None`` whenever the trim would change a value."""
    edges = _edge_bytes(arr)
    if edges is None:
        return None
    first, last, empty = edges
    if _MAY_TRIM[first].any() or _MAY_TRIM[last].any():
        return None
    return empty | token_start[first]


def _valid_nonempty(text: pa.Array, offsets: np.ndarray) -> np.ndarray:
    keep = np.diff(offsets) > 0
    if text.null_count:
        keep &= mask(pc.is_valid(text))
    return keep


def rows_with(text: pa.Array, characters: str) -> np.ndarray:
    """Must equal ``pc.match_substring`` of any of the ASCII ``characters`` as a mask (nulls False);
    a byte scan, since UTF-8 never uses ASCII bytes inside other characters."""
    buffers = _offsets_and_bytes(text)
    if buffers is None:
        masks = [mask(pc.match_substring(text, c)) for c in characters]
        return np.logical_or.reduce(masks) if masks else np.zeros(len(text), dtype=bool)
    offsets, data = buffers
    region = data[offsets[0] : offsets[-1]]
    hit = np.zeros(len(region), dtype=bool)
    for c in characters:
        hit |= region == ord(c)
    out = np.zeros(len(text), dtype=bool)
    positions = np.flatnonzero(hit) + offsets[0]
    if len(positions):
        # A byte belongs to the last row starting at or before it (empty rows own no bytes).
        out[np.searchsorted(offsets, positions, side="right") - 1] = True
        out &= _valid_nonempty(text, offsets)
    return out


def rows_at_edge(text: pa.Array, character: str, *, last: bool) -> np.ndarray:
    """Must equal ``pc.starts_with`` (with ``last``, ``pc.ends_with``) of one ASCII character, as a
    mask (nulls False); reads one byte a value."""
    buffers = _offsets_and_bytes(text)
    if buffers is None:
        return mask(pc.ends_with(text, character) if last else pc.starts_with(text, character))
    offsets, data = buffers
    keep = _valid_nonempty(text, offsets)
    out = np.zeros(len(text), dtype=bool)
    at = offsets[1:][keep] - 1 if last else offsets[:-1][keep]
    out[keep] = data[at] == ord(character)
    return out


# --- dates -----------------------------------------------------------------------------------

_SPACE, _T = ord(" "), ord("T")


def may_hold_time(text: pa.Array) -> bool:
    """Must equal ``pc.any(pc.match_substring(text, " ") | pc.match_substring(text, "T"))``; a byte
    scan for arrays without nulls."""
    buffers = _string_buffers(text)
    if buffers is None:
        return bool(pc.any(pc.or_(pc.match_substring(text, " "), pc.match_substring(text, "T"))).as_py())
    data = buffers[1]
    return bool(np.count_nonzero(data == _SPACE) or np.count_nonzero(data == _T))


def split_date_part(text: pa.Array) -> pa.Array:
    """The part of each value before its first space or ``T`` (the whole value if it has none): the
    plain pyarrow.compute reference :func:`date_part` must equal."""
    return pc.list_element(pc.split_pattern(pc.replace_substring(text, "T", " "), " ", max_splits=1), 0)


def date_part(text: pa.Array) -> pa.Array:
    """Must equal :func:`split_date_part`, without splitting a million strings in the usual case.

    Machine-written timestamps (``2024-01-31 13:45:00``) put their only separator at one byte
    position ``p``: their date part is a slice of ``p`` characters. Values with a separator
    elsewhere (``not a date``) or longer values without one are split as before and put back,
    so the result always equals the split's.
    """
    buffers = _string_buffers(text)
    if buffers is None or not len(text):
        return split_date_part(text)
    offsets, data = buffers
    if len(data) and int(data.max()) >= 0x80:
        return split_date_part(text)  # non-ASCII: characters and bytes differ
    is_sep = (data == _SPACE) | (data == _T)
    if not is_sep.any():
        return text
    # p: where the first separator of the file sits in its value.
    first = int(np.argmax(is_sep))
    p = first - int(offsets[int(np.searchsorted(offsets, first, side="right")) - 1])
    starts, lengths = offsets[:-1].astype(np.int64), np.diff(offsets)
    long_enough = np.flatnonzero(lengths > p)
    at_p = np.zeros(len(text), dtype=bool)
    at_p[long_enough] = is_sep[starts[long_enough] + p]
    # Rows holding a separator anywhere but at p, and longer rows without any: split those.
    irregular = ~at_p & (lengths > p)
    if np.count_nonzero(at_p) != np.count_nonzero(is_sep):
        expected = np.zeros(len(data), dtype=bool)
        expected[starts[at_p] + p] = True
        stray = np.flatnonzero(is_sep & ~expected)
        irregular[np.searchsorted(offsets, stray, side="right") - 1] = True
    # A byte slice is a character slice here (ASCII), and cheaper.
    sliced = pc.binary_slice(text.view(pa.binary()), 0, p).view(pa.string())
    if not irregular.any():
        return sliced
    rows = np.flatnonzero(irregular)
    index = np.arange(len(text), dtype=np.int64)
    index[rows] = len(text) + np.arange(len(rows))
    split = split_date_part(text.take(pa.array(rows)))
    return pa.concat_arrays([sliced, split]).take(pa.array(index))


# --- codes -----------------------------------------------------------------------------------


def factorize_ints(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Must equal ``pd.factorize`` of an integer array: int64 codes numbered by first appearance,
    and the distinct values in that order.

    When the values span a range not much larger than their count (dates, dictionary indices,
    row codes of a few low-cardinality columns), each value's first position is found with one
    scatter into a table over the range, several times cheaper than hashing; otherwise pandas.
    """
    n = len(values)
    if n == 0 or values.dtype.kind not in "iu":
        codes, uniques = pd.factorize(values)
        return codes.astype(np.int64, copy=False), uniques
    low, high = int(values.min()), int(values.max())
    if high - low > 4 * n + 1024:
        codes, uniques = pd.factorize(values)
        return codes.astype(np.int64, copy=False), uniques
    offset = (values - values.dtype.type(low)).astype(np.int64)
    first = np.full(high - low + 1, n, dtype=np.int64)
    np.minimum.at(first, offset, np.arange(n))
    present = np.flatnonzero(first < n)
    present = present[np.argsort(first[present])]
    rank = np.zeros(len(first), dtype=np.int64)
    rank[present] = np.arange(len(present))
    return rank[offset], present.astype(values.dtype) + values.dtype.type(low)


def row_codes(table: pa.Table, columns: list[str]) -> np.ndarray:
    """An int64 code per row such that two rows share a code iff they agree on ``columns``.

    Nulls are equal to each other. Must form the groups ``pd.DataFrame.groupby(columns,
    dropna=False)`` forms. Used for duplicate detection without hashing rows in Python.
    """
    n = table.num_rows
    code = np.zeros(n, dtype=np.int64)
    size = 1
    for name in columns:
        arr = combine(table.column(name))
        if is_text(arr) or pa.types.is_dictionary(arr.type):
            encoded = arr if pa.types.is_dictionary(arr.type) else pc.dictionary_encode(arr)
            cardinality = len(encoded.dictionary) + 1
            part = np.asarray(pc.fill_null(encoded.indices, cardinality - 1).to_numpy(zero_copy_only=False), np.int64)
        else:
            if pa.types.is_floating(arr.type):
                raw = pc.fill_null(arr, np.nan).to_numpy(zero_copy_only=False).astype(np.float64).view(np.int64)
            else:
                if pa.types.is_date32(arr.type):
                    arr = arr.view(pa.int32())
                elif pa.types.is_temporal(arr.type):
                    arr = arr.view(pa.int64())
                raw = np.asarray(pc.fill_null(pc.cast(arr, pa.int64()), 0).to_numpy(zero_copy_only=False), np.int64)
            nulls = mask(pc.is_null(arr))
            # pandas' hash factorisation: several times faster than np.unique on a million values.
            part, uniq = factorize_ints(raw)
            cardinality = len(uniq) + 1
            part = np.where(nulls, cardinality - 1, part).astype(np.int64)
        if size * cardinality >= 2**62:
            # Re-densify before the combined code could overflow.
            code, uniq = factorize_ints(code)
            code = code.astype(np.int64)
            size = len(uniq) if n else 1
        code = code * cardinality + part
        size *= cardinality
    return code


def stable_order(values: np.ndarray) -> np.ndarray:
    """Must equal ``np.argsort(values, kind="stable")``; integers spanning < 2^16 sort as uint16,
    which numpy sorts by radix, several times faster."""
    if values.dtype.kind in "iu" and len(values):
        low, high = int(values.min()), int(values.max())
        if high - low < 1 << 16:
            return np.argsort((values - low).astype(np.uint16), kind="stable")
    return np.argsort(values, kind="stable")


# --- hashes ----------------------------------------------------------------------------------

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_NULL = np.uint64(0x6A09E667F3BCC909)
#: Strings longer than this are hashed by pandas (a byte matrix this wide would cost more).
_MAX_WORDS = 16


#: _BYTE_MASKS[k] keeps the first k bytes (little-endian) of a word.
_BYTE_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], dtype=np.uint64)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit affects every output bit."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _string_hashes(values: pa.Array) -> np.ndarray:
    """A hash per string, from its length and its bytes eight at a time (nulls hash as empty)."""
    n = len(values)
    _, offsets_buffer, data_buffer = values.buffers()
    offset_type = np.int64 if pa.types.is_large_string(values.type) else np.int32
    offsets = np.frombuffer(offsets_buffer, dtype=offset_type)[values.offset : values.offset + n + 1].astype(np.int64)
    lengths = np.diff(offsets)
    words = int((lengths.max(initial=0) + 7) // 8)
    if words > _MAX_WORDS:
        return pd.util.hash_array(np.asarray(values.to_numpy(zero_copy_only=False), dtype=object))
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    padded = np.concatenate([data, np.zeros(8 * words + 8, np.uint8)])
    # A view of every (unaligned) 8-byte window of the data: one gather reads a whole word.
    windows = np.ndarray(shape=(len(padded) - 7,), dtype="<u8", buffer=padded, strides=(1,))
    starts = offsets[:-1]
    hashes = lengths.astype(np.uint64) * _GOLDEN
    for w in range(words):
        valid = np.clip(lengths - 8 * w, 0, 8)
        word = windows[starts + 8 * w] & _BYTE_MASKS[valid]
        hashes = _mix(hashes ^ word)
    return hashes


def column_hashes(values: pa.Array) -> np.ndarray:
    """One uint64 hash per value; equal values (and all nulls) hash alike.

    Must hold: ``pd.factorize`` of the hashes gives the codes ``pd.factorize`` of the values gives
    (nulls one value), barring a 64-bit collision. Strings are read eight bytes at a time straight
    from the Arrow buffers and mixed with splitmix64's finaliser, about five times faster than
    ``pd.util.hash_array``.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    nulls = values.is_null().to_numpy(zero_copy_only=False) if values.null_count else None
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        hashes = _string_hashes(values)
    elif pa.types.is_boolean(values.type):
        hashes = _mix(values.fill_null(False).to_numpy(zero_copy_only=False).astype(np.uint64) + np.uint64(1))
    elif pa.types.is_floating(values.type):
        floats = values.cast(pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False)
        hashes = _mix(floats.view(np.uint64))
    elif pa.types.is_integer(values.type) or pa.types.is_temporal(values.type):
        if pa.types.is_temporal(values.type):  # dates and times are integers underneath
            values = values.view(pa.int32() if values.type.bit_width == 32 else pa.int64())
        ints = pc.cast(values.fill_null(0), pa.int64())
        hashes = _mix(np.asarray(ints.to_numpy(zero_copy_only=False)).view(np.uint64))
    else:
        hashes = pd.util.hash_array(np.asarray(values.cast(pa.string()).to_numpy(zero_copy_only=False), dtype=object))
    if nulls is not None:
        hashes = np.where(nulls, _NULL, hashes)
    return hashes


def row_hashes(batch: pa.RecordBatch | pa.Table, columns: list[np.ndarray] | None = None) -> np.ndarray:
    """One uint64 hash per row, equal for rows with equal values in every column.

    ``columns`` may give the per-column hashes when they were computed already.
    """
    hashes = np.zeros(batch.num_rows, dtype=np.uint64)
    for column in columns if columns is not None else (column_hashes(c) for c in batch.columns):
        hashes = _mix(hashes * _GOLDEN ^ column)
    return hashes


def hmac_sha256_hex(key: bytes, values: Iterable[str | None], chars: int = 64) -> list[str | None]:
    """Must equal ``[hmac.new(key, v.encode(), hashlib.sha256).hexdigest()[:chars] for v in values]``
    (None for None). RFC 2104 with the padded key's inner and outer SHA-256 states computed once and
    copied per value: about 40% less time than copying an ``hmac`` object per value."""
    import hashlib

    block = hashlib.sha256().block_size
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    out: list[str | None] = []
    for value in values:
        if value is None:
            out.append(None)
            continue
        i = inner.copy()
        i.update(value.encode())
        o = outer.copy()
        o.update(i.digest())
        out.append(o.hexdigest()[:chars])
    return out
