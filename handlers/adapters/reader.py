"""Read a raw object as a stream of Arrow record batches, checking the bytes match the extension.

CSV columns are read as strings (the pipelines type them), so ids such as ``00042`` keep their
leading zeros. Malformed CSV lines are not fatal: they are collected in :attr:`SourceReader.malformed`
with their line number so the handler can quarantine them with a reason.

Rows and lines are accounted for: a CSV's physical lines are counted as it streams
(:attr:`SourceReader.lines`), rows whose quoted values hold line breaks are counted
(:attr:`SourceReader.multiline`), and a row that swallowed the lines after it because a quote was
never closed is taken out and reported as ``unterminated_quote`` instead of passing as one odd row.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import queue
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

import topology
from analytics.errors import SettingsError, UnreadableFileError
from handlers.adapters import export_layout as layout
from handlers.errors import UnsupportedObjectError

HEAD_BYTES = 64 * 1024
CSV_BLOCK_BYTES = 4 << 20
DELIMITERS = ",;\t|"
BATCH_ROWS = 65_536


def detect_format(key: str) -> str:
    """The format named by the key's extension: csv, csv.gz, tsv, xlsx, jsonl or parquet."""
    lower = key.lower()
    for ext in topology.RAW_EXTENSIONS:
        if lower.endswith(ext):
            return {"json": "jsonl", "ndjson": "jsonl"}.get(ext[1:], ext[1:])
    raise UnsupportedObjectError(
        f"{key}: the extension is not one the processor reads; use one of {', '.join(topology.RAW_EXTENSIONS)}"
    )


def dataset_of(key: str) -> str:
    """The first path segment after ``raw/``; refuses keys directly under ``raw/``."""
    rest = key[len(topology.RAW_PREFIX) :]
    if "/" not in rest or not rest.split("/", 1)[0]:
        raise UnsupportedObjectError(
            f"{key}: files must sit in a dataset folder, raw/<dataset>/<file>; move it under one"
        )
    return rest.split("/", 1)[0]


def _prefetch(batches: Iterator[pa.RecordBatch], depth: int = 2) -> Iterator[pa.RecordBatch]:
    """Parse the next batches on a background thread while the pipeline works on this one.

    Arrow's parsers release the GIL, so on two cores reading and processing overlap. At most
    ``depth`` batches wait, which bounds memory.
    """
    slots: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        slots.put(("batch", batch), timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(("end", None))
        except BaseException as exc:
            slots.put(("error", exc))

    thread = threading.Thread(target=produce, name="raw-reader", daemon=True)
    thread.start()
    try:
        while True:
            kind, item = slots.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


MALFORMED_ROW = "malformed_row"
UNTERMINATED_QUOTE = "unterminated_quote"


@dataclass(frozen=True)
class MalformedRow:
    """A CSV line whose field count differs from the header's, or a row that swallowed the lines after
    it because a quote opened in it is never closed (``code`` says which)."""

    line: int | None
    fields: int
    expected: int
    text: str
    code: str = MALFORMED_ROW
    #: For an unterminated quote: the column whose value ran on, and how many lines it swallowed.
    column: str | None = None
    swallowed: int = 0

    def reason(self) -> str:
        where = f"line {self.line}" if self.line is not None else "a line"
        if self.code == UNTERMINATED_QUOTE:
            column = f" in column {self.column}" if self.column else ""
            return (
                f"a quote opened{column} is never closed, so the {self.swallowed} line(s) after it were read into "
                "this one row (they are in _raw_line)"
            )
        return f"{where} has {self.fields} fields, the header has {self.expected}"


def _ran_on(value: str, delimiter: str, row_delimiters: int, following_fields: int) -> bool:
    """Whether a multi-line value looks like a quote that ran on over the rows after it."""
    first, *later = value.splitlines()
    if not later:
        return False
    if any(line.count(delimiter) >= row_delimiters for line in later):
        return True
    return following_fields > 0 and first.count(delimiter) >= following_fields and any(delimiter in x for x in later)


class _LineCounter(io.RawIOBase):
    """Passes bytes through, counting newlines and blank lines (which CSV readers skip), and keeping
    the last bytes (where footers are).

    The counting runs in numpy over each chunk read, without copying it: bytes' own ``count`` of the
    two-byte patterns cost 2 ms a megabyte, as much as Arrow's parse of the same bytes.
    """

    TAIL = 64 * 1024

    def __init__(self, inner: io.RawIOBase) -> None:
        self._inner = inner
        self.newlines = 0
        self.blank = 0
        self._previous = b""  # the last two bytes seen, for blank lines across reads
        self.tail = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._inner.readinto(buffer) or 0
        if n:
            fresh = np.frombuffer(memoryview(buffer).cast("B")[:n], dtype=np.uint8)
            newline = fresh == 0x0A
            self.newlines += int(np.count_nonzero(newline))
            # A blank line is "\n\n" or "\n\r\n"; "\n\n\n" holds two. Those ending in this chunk
            # and starting in the last one are counted on the few bytes around the boundary.
            self.blank += int(np.count_nonzero(newline[1:] & newline[:-1]))
            if n > 2:
                self.blank += int(np.count_nonzero(newline[2:] & (fresh[1:-1] == 0x0D) & newline[:-2]))
            self.blank += _blank_lines_across(self._previous, fresh[:2].tobytes())
            ending = fresh[-self.TAIL :].tobytes()
            self._previous = (self._previous + ending)[-2:]
            self.tail = ending if n >= self.TAIL else (self.tail + ending)[-self.TAIL :]
        return n

    def data_lines(self) -> int:
        """Non-blank lines after the header."""
        # A last line without its line end counts, unless it is only a carriage return.
        unended = self._previous[-1:] not in (b"", b"\n") and self._previous != b"\n\r"
        lines = self.newlines + int(unended)
        return max(lines - 1 - self.blank, 0)


def _holds_newline(column: pa.Array) -> bool:
    """Whether a text column may hold a line break: False only when its bytes hold none."""
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return False
    data = column.buffers()[2]
    return data is not None and bool(np.any(np.frombuffer(data, dtype=np.uint8) == 0x0A))


def _blank_lines_across(before: bytes, after: bytes) -> int:
    """Blank lines ("\n\n", "\n\r\n") that start in ``before`` and end in ``after``."""
    joined = before + after
    return sum(
        joined.startswith(pattern, start) and start + len(pattern) > len(before)
        for start in range(len(before))
        for pattern in (b"\n\n", b"\n\r\n")
    )


class _Prefixed(io.RawIOBase):
    """A readable stream that first replays bytes already read (the sniffed head), then the rest."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(view))
        n = len(data)
        view[:n] = data
        return n


class TranscodeError(ValueError):
    """Bytes the detected encoding cannot decode (kept apart: Arrow may wrap what a stream raises)."""


class _Transcoded(io.RawIOBase):
    """Reads another encoding's bytes as UTF-8, a chunk at a time (memory stays one chunk)."""

    CHUNK = 1 << 20

    def __init__(self, inner: IO[bytes] | io.RawIOBase, encoding: str) -> None:
        self._inner = inner
        self.encoding = encoding
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        self._pending = memoryview(b"")
        self._eof = False
        self._consumed = 0
        self.error: TranscodeError | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while not self._pending and not self._eof:
            chunk = self._inner.read(self.CHUNK)
            self._eof = not chunk
            try:
                text = self._decoder.decode(chunk, final=self._eof)
            except UnicodeDecodeError as exc:
                self.error = TranscodeError(
                    f"is not valid {codecs.lookup(self.encoding).name} (byte 0x{chunk[exc.start]:02x} at offset "
                    f"{self._consumed + exc.start:,} cannot be decoded); re-export it as UTF-8 and upload again"
                )
                raise self.error from exc
            self._consumed += len(chunk)
            self._pending = memoryview(text.encode("utf-8"))
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def _read_head(stream: IO[bytes], size: int = HEAD_BYTES) -> bytes:
    chunks: list[bytes] = []
    remaining = size
    while remaining > 0:
        chunk = stream.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for i, raw in enumerate(names):
        name = raw.strip() or f"column_{i + 1}"
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 1
        out.append(name)
    return out


#: The code pages spreadsheet and marketing tools write: others (old Mac and DOS pages) are left out,
#: because on a short sample they would read as well as the right one and mangle every accent.
_CANDIDATES = (
    *("cp1250", "cp1251", "cp1252", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "cp1258"),
    *("latin_1", "iso8859_2", "iso8859_15", "koi8_r", "shift_jis", "euc_jp", "gb18030", "big5", "euc_kr"),
)


def _detect_encoding(head: bytes) -> str | None:
    """The encoding of a non-UTF-8 text sample, as charset-normalizer detects it (None: not text)."""
    from charset_normalizer import from_bytes

    matches = list(from_bytes(head, cp_isolation=list(_CANDIDATES)))
    if not matches:
        return None
    # On a few lines of a table charset-normalizer's ranking is noise between the Latin code pages
    # (``déjà`` scores as clean in Baltic cp1257 as in cp1252, and cp1252 may be left out). Windows-1252
    # is what spreadsheet tools write in the West: it wins whenever the bytes read there as Western
    # text, without the symbols Central European letters turn into (ł as ³, ą as ¹, Ą as ¥, ź as Ÿ).
    # Cyrillic, Greek or Japanese text keeps its own match.
    best = str(matches[0].encoding)
    if best == "cp1252":
        return best
    among = any("cp1252" in (m.encoding, *m.could_be_from_charset) for m in matches)
    if (among or best in _LATIN_OTHERS) and _reads_as_western(head):
        return "cp1252"
    return best


#: Latin-script code pages besides Windows-1252 that a Western text may be mistaken for.
_LATIN_OTHERS = frozenset({"cp1250", "cp1257", "cp1254", "cp1258", "iso8859_2", "latin_1", "iso8859_15"})
#: What Central European letters become when read as Windows-1252; rare in Western text.
_MISREAD = frozenset("¹²³¥¼½¾Ÿ×÷¤¦¨¬¯´¸")


def _reads_as_western(head: bytes) -> bool:
    text = head.decode("cp1252", errors="replace")  # a byte cp1252 leaves undefined: not cp1252
    return "\ufffd" not in text and not any(ch in _MISREAD for ch in text)


def _records(text: str, delimiter: str) -> list[layout.Record]:
    """The first records of a CSV text, with the physical line each starts on."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    records: list[layout.Record] = []
    line = 1
    try:
        for cells in reader:
            # A comment is one cell starting with "#" (GA4's); "#1001,..." is a row (Shopify's order names).
            comment = bool(cells) and cells[0].lstrip().startswith("#") and len(layout.effective(cells)) <= 1
            records.append(layout.Record(line, tuple(cells), comment))
            line = reader.line_num + 1
            if len(records) >= layout.DETECT_RECORDS:
                break
    except csv.Error:
        pass  # a quote never closed in the head: the records before it decide
    return records


def _sniff(text: str, candidates: str = DELIMITERS) -> str:
    """The delimiter that gives the most lines of one width (2+ fields) among the first lines,
    comments aside, so a title or a date range above the header does not mislead it."""
    if len(candidates) == 1:
        return candidates
    scores: dict[str, int] = {}
    for delimiter in candidates:
        widths = [r.width for r in _records(text, delimiter) if not r.comment and not r.blank]
        counts = {w: widths.count(w) for w in set(widths) if w >= 2}
        scores[delimiter] = max(counts.values(), default=0)
    best = max(scores.values())
    tied = [d for d in candidates if scores[d] == best]
    if best == 0 or len(tied) > 1:
        try:
            sniffed = csv.Sniffer().sniff(text[:8192], delimiters="".join(tied) if best else candidates).delimiter
            return sniffed if best == 0 or sniffed in tied else tied[0]
        except csv.Error:
            return tied[0] if best else ","
    return tied[0]


@dataclass(frozen=True)
class ReadOptions:
    """What the dataset's settings say about reading its files (``settings/<dataset>.json``)."""

    #: 1-based line (row of a sheet) holding the column names; None detects it.
    header_row: int | None = None
    #: The sheet of a workbook to read; None reads the first with data.
    sheet: str | None = None
    #: Where the settings live, for messages.
    settings_key: str = "settings/<dataset>.json"
    #: False takes the first line for the header and keeps every row, as the reader did before it
    #: recognised layouts (the benchmark's baseline; not a dataset setting).
    detect_layout: bool = True

    @classmethod
    def from_settings(cls, settings: dict[str, Any], settings_key: str) -> ReadOptions:
        """The options in ``settings``; a wrong type raises ``SettingsError`` naming the key."""
        header_row = settings.get("header_row")
        if header_row is not None and (
            not isinstance(header_row, int) or isinstance(header_row, bool) or header_row < 1
        ):
            raise SettingsError(
                f"{settings_key}: header_row must be a line number from 1 (the line of the column names), "
                f"not {header_row!r}"
            )
        sheet = settings.get("sheet")
        if sheet is not None and not isinstance(sheet, str):
            raise SettingsError(f"{settings_key}: sheet must be the name of a sheet, as text, not {sheet!r}")
        return cls(header_row=header_row, sheet=sheet, settings_key=settings_key)


class SourceReader:
    """Streams one raw object. ``open_stream`` returns a fresh binary stream of the object's bytes."""

    def __init__(
        self, key: str, fmt: str, open_stream: Callable[[], IO[bytes]], options: ReadOptions | None = None
    ) -> None:
        self.key = key
        self.format = fmt
        self._open = open_stream
        self.options = options or ReadOptions()
        self.malformed: list[MalformedRow] = []
        self.rows_read = 0
        #: The table's column names, from its header (made unique; blanks become ``column_<n>``).
        self.columns: list[str] = []
        #: A CSV's delimiter, as sniffed from its first lines; None for other formats.
        self.delimiter: str | None = None
        #: Physical lines after a CSV's header (blank ones not counted); None for other formats.
        self.lines: int | None = None
        #: Rows kept whose quoted values hold line breaks (each spans several lines).
        self.multiline = 0
        #: The text's encoding as read (``utf-8``, ``utf-16``, ``cp1252``...); None for binary formats.
        self.encoding: str | None = None
        #: 1-based line (sheet row) of the header; None for formats without one.
        self.header_line: int | None = None
        #: The lines (sheet rows) above the header: titles, date ranges, ``#`` comments, blank lines.
        self.preamble: list[str] = []
        #: Summary rows taken out of the table (``Total: Account``...), as their cells.
        self.summary: list[list[str | None]] = []
        #: Lines after the table (notes, copyright lines, trailing comments), as text.
        self.footer: list[str] = []
        #: A workbook's sheet names, in order, and the one read; empty and None for other formats.
        self.sheets: list[str] = []
        self.sheet: str | None = None
        self._counter: _LineCounter | None = None

    @property
    def preamble_lines(self) -> int:
        """How many lines (sheet rows) above the header were left out."""
        return len(self.preamble)

    @property
    def summary_rows(self) -> int:
        return len(self.summary)

    @property
    def footer_lines(self) -> int:
        return len(self.footer)

    def _fail(self, what: str) -> UnreadableFileError:
        return UnreadableFileError(f"{self.key}: {what}")

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Every record batch of the object, in file order. Raises ``UnreadableFileError``."""
        self.malformed = []
        self.rows_read = 0
        self.lines = None
        self.multiline = 0
        self.summary, self.footer = [], []
        self._counter = None
        stream = self._open()
        try:
            if self.format == "parquet":
                inner = self._parquet(stream)
            elif self.format == "jsonl":
                inner = self._json(stream)
            elif self.format == "xlsx":
                inner = self._xlsx(stream)
            else:
                inner = self._csv(stream, gzipped=self.format == "csv.gz")
            for batch in _prefetch(inner):
                self.rows_read += batch.num_rows
                if batch.num_rows:
                    yield batch
        finally:
            stream.close()
        if self._counter is not None:
            self.lines = self._counter.data_lines()
        if self.rows_read == 0 and not self.malformed:
            raise self._fail(
                f"has a header ({', '.join(self.columns)}) but no data rows; upload a file with data"
                if self.columns
                else "has no data rows; upload a file with data"
            )

    def _trimmed(self, batches: Iterator[pa.RecordBatch], width: int) -> Iterator[pa.RecordBatch]:
        """``batches`` without summary rows and footers (recorded on the reader)."""
        if not self.options.detect_layout:
            yield from batches
            return
        trimmer = layout.Trimmer(width)
        for batch in batches:
            kept = trimmer.feed(batch)
            if kept is not None and kept.num_rows:
                yield kept
        trimmer.finish()
        self.summary, self.footer = trimmer.summary, trimmer.footer

    # --- CSV -------------------------------------------------------------------------------------
    def _encoding(self, head: bytes) -> str:
        """The encoding of a text file's first bytes: a byte-order mark, valid UTF-8, or detected."""
        if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
            return "utf-32"
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            return "utf-16"
        if head.startswith(b"\xef\xbb\xbf"):
            return "utf-8-sig"
        if b"\x00" in head:
            even, odd = head[0::2], head[1::2]
            if len(head) >= 4 and odd.count(0) > 0.9 * len(odd) and even.count(0) == 0:
                return "utf-16-le"
            if len(head) >= 4 and even.count(0) > 0.9 * len(even) and odd.count(0) == 0:
                return "utf-16-be"
            raise self._fail("contains binary data, not CSV text; check the file is the export you meant")
        try:
            head.decode("utf-8")
            return "utf-8"
        except UnicodeDecodeError as exc:
            if exc.start >= len(head) - 4 and exc.reason == "unexpected end of data":
                return "utf-8"  # a character cut by the head boundary
            bad = exc.start
        detected = _detect_encoding(head)
        if detected is None:
            line = head[:bad].count(b"\n") + 1
            raise self._fail(
                f"is not UTF-8 (invalid byte 0x{head[bad]:02x} on line {line}) and its encoding could not be "
                "detected; re-export it as UTF-8 and upload again"
            )
        return detected

    def _csv(self, stream: IO[bytes], *, gzipped: bool) -> Iterator[pa.RecordBatch]:
        raw: IO[bytes] = stream
        if gzipped:
            magic = _read_head(stream, 2)
            if magic != b"\x1f\x8b":
                raise self._fail(
                    "is named .csv.gz but is not gzip-compressed; compress it with gzip or rename it to .csv"
                )
            raw = gzip.GzipFile(fileobj=_Prefixed(magic, stream), mode="rb")  # type: ignore[assignment]
        try:
            raw_head = _read_head(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise self._fail(f"the gzip data is damaged ({exc}); re-upload the complete file") from exc
        if not raw_head.strip():
            raise self._fail("is empty; upload a CSV file with a header row and data rows")
        encoding = self._encoding(raw_head)
        self.encoding = codecs.lookup(encoding).name if encoding != "utf-8-sig" else "utf-8"
        transcoder: _Transcoded | None = None
        if encoding in ("utf-8", "utf-8-sig"):
            head, source = raw_head.removeprefix(b"\xef\xbb\xbf"), raw
        else:
            transcoder = _Transcoded(_Prefixed(raw_head, raw), encoding)
            try:
                head = _read_head(transcoder)  # type: ignore[arg-type]
            except TranscodeError as exc:
                raise self._fail(str(exc)) from exc
            head = head.removeprefix(b"\xef\xbb\xbf")
            source = transcoder  # type: ignore[assignment]
        # Whether the head holds the whole file (else its last line may be cut).
        complete = len(raw_head) < HEAD_BYTES if transcoder is None else len(head) < HEAD_BYTES - 3
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError as exc:
            text = head[: exc.start].decode("utf-8")  # a character cut by the head boundary
        if not complete and "\n" in text:
            text = text[: text.rindex("\n") + 1]  # the last line may be cut: detect on whole lines
        if not text.strip():
            raise self._fail("is empty; upload a CSV file with a header row and data rows")
        delimiter = _sniff(text, "\t" if self.format == "tsv" else DELIMITERS)
        self.delimiter = delimiter
        records = _records(text, delimiter)
        where = self.options.settings_key
        try:
            header_row = self.options.header_row or (None if self.options.detect_layout else 1)
            found = layout.find_header(records, header_row=header_row, settings_key=where)
        except layout.LayoutError as exc:
            raise self._fail(str(exc)) from exc
        self.header_line = found.record.line
        self.preamble = [delimiter.join(r.cells).rstrip(delimiter) for r in found.preamble]
        header = list(found.record.cells)
        self.columns = _unique_names(header)
        # A single column is legal, but a binary blob also looks like one: require printable text.
        lines = text.split("\n")  # physical lines as csv.reader counts them
        header_text = lines[found.record.line - 1] if found.record.line <= len(lines) else ""
        single = len(self.columns) < 2 and len(lines) > 1 and not any(d in header_text for d in DELIMITERS)
        if single and sum(ch.isprintable() or ch.isspace() for ch in text) < 0.95 * len(text):
            raise self._fail("does not look like CSV text; check the file is the export you meant")
        expected = len(self.columns)
        skipped = found.record.line - 1  # physical lines above the header, left out of what Arrow reads
        offset = len("\n".join(lines[:skipped]).encode("utf-8")) + 1 if skipped else 0
        comments: list[str] = []

        def on_invalid(row: Any) -> str:
            one_line = "\n" not in row.text.rstrip("\r\n")
            # A comment line after the header is not a row; once one came, lines of another width are
            # the next table of the download (GA4 puts several in one file, each under comments).
            # A "#" line with values in several fields is a bad row (an order "#1001" with a stray comma),
            # never a comment dropped unseen.
            commented = row.text.lstrip().startswith("#") and row.actual_columns <= 1
            if one_line and (comments or commented):
                comments.append(row.text.rstrip("\r\n"))
                return "skip"
            # A line break inside the bad row means a quote ran on over the lines after it.
            code = UNTERMINATED_QUOTE if "\n" in row.text.rstrip("\r\n") else MALFORMED_ROW
            self.malformed.append(
                MalformedRow(
                    line=None if row.number is None or row.number < 0 else row.number + skipped,
                    fields=row.actual_columns, expected=expected, text=row.text.rstrip("\r\n"), code=code,
                    swallowed=row.text.rstrip("\r\n").count("\n"),
                )
            )  # fmt: skip
            return "skip"

        self._counter = _LineCounter(_Prefixed(head[offset:], source))
        body = io.BufferedReader(self._counter, buffer_size=1 << 20)
        try:
            reader = pacsv.open_csv(
                body,
                read_options=pacsv.ReadOptions(
                    use_threads=False, block_size=CSV_BLOCK_BYTES, column_names=self.columns, skip_rows=1
                ),
                parse_options=pacsv.ParseOptions(
                    delimiter=delimiter, newlines_in_values=True, invalid_row_handler=on_invalid
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(self.columns, pa.string()),
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
            yield from self._trimmed(
                (self._take_out_runaway_quotes(batch, delimiter, expected) for batch in reader), expected
            )
        except (pa.ArrowInvalid, OSError, EOFError, zlib.error, TranscodeError) as exc:
            raise self._csv_error(exc, transcoder) from exc
        self.footer = [*self._footer_lines(delimiter, expected), *self.footer]
        self.footer += comments

    def _footer_lines(self, delimiter: str, expected: int) -> list[str]:
        """Malformed lines after the table's last row are its footer: take them out of ``malformed``."""
        if not self.malformed or self._counter is None:
            return []
        tail = self._counter.tail.decode("utf-8", errors="replace").splitlines()[1:]
        trailing: list[str] = []
        for line in reversed(tail):
            if not line.strip():
                continue
            if len(next(csv.reader([line], delimiter=delimiter), [])) == expected:
                break
            trailing.append(line)
        else:
            return []  # no row of the table within the tail: too long to be a footer
        footer: list[str] = []
        for line in trailing:
            if not self.malformed or self.malformed[-1].text != line or self.malformed[-1].code != MALFORMED_ROW:
                break
            cells = next(csv.reader([line], delimiter=delimiter), [])
            if layout.is_label(next((c for c in cells if c.strip()), None)):
                self.summary.append(list(cells))
            elif layout.is_note(cells, expected, sentence=False):
                footer.append(line)
            else:
                break  # a row with values, short or long: malformed, not a note
            self.malformed.pop()
        return footer[::-1]

    def _take_out_runaway_quotes(self, batch: pa.RecordBatch, delimiter: str, expected: int) -> pa.RecordBatch:
        """``batch`` without the rows whose value swallowed CSV lines (recorded as malformed).

        A quoted value may hold line breaks (an address, a comment). One is taken for a quote never
        closed when a later line of it holds a whole row's delimiters, or when its first line holds
        the delimiters of the fields that should have followed it and a later line holds delimiters too.
        """
        breaks: Any = None
        for column in batch.columns:
            # Most batches hold no line break at all: one look at the text's bytes says so (5 ms
            # against 85 ms for matching every value, over a 68 MB file's batches).
            if _holds_newline(column):
                found = pc.match_substring(column, "\n")
                breaks = found if breaks is None else pc.or_(breaks, found)
        if breaks is None or not pc.any(breaks).as_py():
            return batch
        rows = np.flatnonzero(pc.fill_null(breaks, False).to_numpy(zero_copy_only=False))
        runaway = np.zeros(batch.num_rows, dtype=bool)
        needed = max(expected - 1, 1)
        for row in rows:  # rows with line breaks are few; look at each in Python
            values = [batch.column(i)[row].as_py() for i in range(batch.num_columns)]
            for position, (name, value) in enumerate(zip(batch.schema.names, values, strict=True)):
                if isinstance(value, str) and _ran_on(value, delimiter, needed, expected - 1 - position):
                    runaway[row] = True
                    text = delimiter.join("" if v is None else str(v) for v in values)
                    self.malformed.append(
                        MalformedRow(
                            line=None, fields=expected, expected=expected, text=text, code=UNTERMINATED_QUOTE,
                            column=name, swallowed=len(value.splitlines()) - 1,
                        )
                    )  # fmt: skip
                    break
        self.multiline += int(len(rows) - runaway.sum())
        return batch.filter(pa.array(~runaway)) if runaway.any() else batch

    def _csv_error(self, exc: Exception, transcoder: _Transcoded | None = None) -> UnreadableFileError:
        if transcoder is not None and transcoder.error is not None:
            return self._fail(f"{transcoder.error} (after row {self.rows_read})")
        message = str(exc)
        if "UTF8" in message or "utf8" in message.lower():
            return self._fail(
                f"is not valid UTF-8 after row {self.rows_read} (its first {HEAD_BYTES // 1024} KB are, so its "
                "encoding was taken for UTF-8); re-export it as UTF-8"
            )
        if isinstance(exc, EOFError | zlib.error) or "gzip" in message.lower() or "compressed" in message:
            return self._fail(
                f"the gzip data ends early or is damaged after {self.rows_read} rows ({message}); "
                "re-upload the complete file"
            )
        return self._fail(f"cannot be parsed as CSV after row {self.rows_read}: {message.splitlines()[0]}")

    # --- JSON lines ------------------------------------------------------------------------------
    def _json(self, stream: IO[bytes]) -> Iterator[pa.RecordBatch]:
        head = _read_head(stream)
        stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
        if not stripped:
            raise self._fail("is empty; upload JSON lines, one object per line")
        if stripped[:1] == b"[":
            # A JSON array rather than JSON lines: small exports do this; it is read whole.
            data = head + stream.read()
            try:
                rows = json.loads(data.decode("utf-8-sig"))
            except (UnicodeDecodeError, ValueError) as exc:
                raise self._fail(f"is not valid JSON ({exc}); upload JSON lines or a JSON array") from exc
            if not rows or not all(isinstance(r, dict) for r in rows):
                raise self._fail("is a JSON array but not of objects; upload one JSON object per row")
            table = pa.Table.from_pylist(rows)
            self.columns = table.column_names
            yield from table.to_batches(max_chunksize=BATCH_ROWS)
            return
        if stripped[:1] != b"{":
            raise self._fail("is not JSON lines (the first character is not '{'); upload one object per line")
        body = io.BufferedReader(_Prefixed(head.removeprefix(b"\xef\xbb\xbf"), stream), buffer_size=1 << 20)
        try:
            reader = pajson.open_json(body, read_options=pajson.ReadOptions(block_size=CSV_BLOCK_BYTES))
            self.columns = reader.schema.names
            yield from reader
        except (pa.ArrowInvalid, OSError) as exc:
            first = str(exc).splitlines()[0]
            raise self._fail(f"is not valid JSON lines after row {self.rows_read}: {first}") from exc

    # --- Parquet ---------------------------------------------------------------------------------
    def _parquet(self, stream: IO[bytes]) -> Iterator[pa.RecordBatch]:
        head = _read_head(stream, 4)
        if head != b"PAR1":
            raise self._fail("is named .parquet but is not a Parquet file; check the export format")
        # Parquet needs random access (the footer is at the end): spool to local disk, not memory.
        with tempfile.TemporaryFile(prefix="lake-raw-") as spool:
            spool.write(head)
            while chunk := stream.read(8 << 20):
                spool.write(chunk)
            spool.seek(0)
            try:
                parquet = pq.ParquetFile(spool)
                self.columns = parquet.schema_arrow.names
                yield from parquet.iter_batches(batch_size=BATCH_ROWS)
            except (pa.ArrowInvalid, OSError) as exc:
                raise self._fail(f"is a damaged Parquet file ({exc}); re-upload the complete file") from exc

    # --- Excel workbooks -------------------------------------------------------------------------
    def _xlsx(self, stream: IO[bytes]) -> Iterator[pa.RecordBatch]:
        import fastexcel

        head = _read_head(stream, 8)
        if head.startswith(b"\xd0\xcf\x11\xe0"):
            data = head + stream.read()
            if "EncryptedPackage".encode("utf-16-le") in data:
                raise self._fail(
                    "is a password-protected workbook, which cannot be read; save it without a password "
                    "(File > Info > Protect Workbook) or export the sheet as CSV, and upload again"
                )
            raise self._fail("is an Excel 97-2003 workbook (.xls) named .xlsx; save it as .xlsx or CSV")
        if not head.startswith(b"PK"):
            raise self._fail("is named .xlsx but is not an Excel workbook; check the export format")
        # A workbook is a zip whose directory is at its end: spool to local disk, not memory.
        with tempfile.NamedTemporaryFile(prefix="lake-raw-", suffix=".xlsx") as spool:
            spool.write(head)
            while chunk := stream.read(8 << 20):
                spool.write(chunk)
            spool.flush()
            try:
                workbook = fastexcel.read_excel(spool.name)
                self.sheets = list(workbook.sheet_names)
            except Exception as exc:  # fastexcel raises its own error types for damaged zips and XML
                raise self._fail(
                    f"is a damaged or truncated workbook ({str(exc).splitlines()[0]}); re-upload the complete file"
                ) from exc
            sheet, texts = self._sheet(workbook)
        # The sheet's text is made a batch at a time as the pipeline takes it, so besides the cells
        # fastexcel gives only a batch or two of their text is held at once.
        body = sheet.slice(self.header_line or 0)
        batches = (
            pa.record_batch(
                [text.of(body.column(i).slice(at, BATCH_ROWS)) for i, text in texts.items()], names=self.columns
            )
            for at in range(0, body.num_rows, BATCH_ROWS)
        )
        yield from self._trimmed(batches, len(self.columns))

    def _sheet(self, workbook: Any) -> tuple[pa.RecordBatch, dict[int, _SheetText]]:
        """The sheet to read (the settings' ``sheet``, else the first with cells) as fastexcel gives its
        cells (text, as it writes them), and the table's columns below its header, by position, with how
        each becomes a CSV export's text; sets ``sheet``, ``header_line``, ``preamble`` and ``columns``."""
        wanted = self.options.sheet
        if wanted is not None and wanted not in self.sheets:
            raise self._fail(
                f"has no sheet {wanted!r} (named by sheet in {self.options.settings_key}); its sheets are "
                f"{', '.join(repr(s) for s in self.sheets)}: set sheet to one of them"
            )
        for name in [wanted] if wanted is not None else self.sheets:
            try:
                # One call parses the whole sheet: fastexcel (calamine) has no row-by-row reading, and
                # n_rows / skip_rows only bound what it converts, each call parsing the sheet again.
                batch = workbook.load_sheet(name, header_row=None, dtypes="string", eager=True)
            except Exception as exc:
                raise self._fail(
                    f"sheet {name!r} cannot be read ({str(exc).splitlines()[0]}); re-upload the complete file"
                ) from exc
            if batch.num_rows and batch.num_columns:
                self.sheet = name
                break
        else:
            which = f"sheet {wanted!r}" if wanted is not None else f"none of its sheets ({', '.join(self.sheets)})"
            raise self._fail(f"is a workbook but {which} holds data; upload the workbook with its table")
        texts = [_SheetText(column) for column in batch.columns]
        top = [
            text.of(column.slice(0, layout.DETECT_RECORDS)).to_pylist()
            for text, column in zip(texts, batch.columns, strict=True)
        ]
        records = [
            layout.Record(i + 1, layout.effective(list(cells))) for i, cells in enumerate(zip(*top, strict=True))
        ]
        try:
            found = layout.find_header(
                records, header_row=self.options.header_row, settings_key=self.options.settings_key
            )
        except layout.LayoutError as exc:
            raise self._fail(f"sheet {self.sheet!r} {exc}") from exc
        self.header_line = found.record.line
        self.preamble = [" ".join(c for c in r.cells if c.strip()) for r in found.preamble]
        header = [*found.record.cells, *[""] * batch.num_columns][: batch.num_columns]
        # Columns with neither a name nor a value are the sheet's formatting, not the table's.
        keep = [
            i
            for i in range(batch.num_columns)
            if header[i].strip() or pc.max(pc.binary_length(batch.column(i).slice(self.header_line))).as_py()
        ]
        self.columns = _unique_names([header[i] for i in keep])
        return batch, {i: texts[i] for i in keep}


_DATETIME = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}"
_TIME_PREFIX = r"^1899-12-3[01] "
#: fastexcel writes a number as text with up to nine decimals, so 12345678.12 comes out as
#: ``12345678.119999999``: such a value is read back as a float and written in its shortest form.
_NINE_DECIMALS = r"^-?\d+\.\d{9}$"


class _SheetText:
    """How a sheet column's text (as fastexcel writes it) becomes what a CSV export of it holds: empty
    cells empty; dates (``2026-01-05 00:00:00``) as ISO dates when every date-time in the column is at
    midnight, times of day (``1899-12-31 13:04:05``, Excel's day zero) as ``13:04:05``; numbers in their
    shortest form.

    What holds for the whole column is decided once, from the cheap facts first (a column whose values
    are all shorter than ``0.123456789`` holds neither date-times nor long numbers), and :meth:`of` then
    converts any slice of it; the rows of a slice are where they are in ``column``.
    """

    def __init__(self, column: pa.Array) -> None:
        self._column = column
        lengths = pc.binary_length(column)
        longest = pc.max(lengths).as_py() or 0
        self.dates = self.times = False
        stamp: pa.Array | None = None
        stamps = 0
        if longest >= len("2026-01-05 00:00:00"):
            stamp = pc.match_substring_regex(column, _DATETIME)
            stamps = pc.sum(stamp).as_py() or 0
        if stamp is not None and stamps:
            # ^\d{4}-\d{2}-\d{2} 00:00:00$ is a date-time of 19 characters ending at midnight
            midnight = pc.and_(pc.equal(lengths, 19), pc.ends_with(column, " 00:00:00"))
            if pc.sum(pc.and_(stamp, midnight)).as_py() == stamps:
                self.dates = True
            else:
                day_zero = pc.or_(pc.starts_with(column, "1899-12-30 "), pc.starts_with(column, "1899-12-31 "))
                self.times = pc.sum(pc.and_(stamp, day_zero)).as_py() == stamps
        #: Which rows hold a date-time that becomes its date, or None; which hold a number with nine
        #: decimals, or None when none does.
        self._stamp = pc.fill_null(stamp, False) if self.dates and stamp is not None else None
        self._long: pa.Array | None = None
        # A date-time is not a number, nor is the date or time of day made of one: only the other cells
        # can hold such numbers (as they read once times of day lost their day zero).
        if longest >= len("0.123456789") and stamps < pc.sum(pc.greater(lengths, 0)).as_py():
            text = self._dated(pc.fill_null(column, "")) if self.times else column
            long = pc.match_substring_regex(text, _NINE_DECIMALS)
            if pc.any(long).as_py():
                self._long = pc.fill_null(long, False)

    def _dated(self, column: pa.Array, at: int = 0) -> pa.Array:
        if self._stamp is not None:  # every date-time at midnight: the stamps become their dates
            return pc.if_else(self._stamp.slice(at, len(column)), pc.utf8_slice_codeunits(column, 0, 10), column)
        if self.times:
            return pc.replace_substring_regex(column, _TIME_PREFIX, "")
        return column

    def of(self, part: pa.Array) -> pa.Array:
        """``part``, a slice of the column, as a CSV export's text."""
        at = part.offset - self._column.offset
        text = pc.fill_null(part, "") if part.null_count else part
        text = self._dated(text, at)
        if self._long is not None:
            long = self._long.slice(at, len(part))
            if pc.any(long).as_py():
                shortest = pc.cast(pc.cast(pc.if_else(long, text, None), pa.float64()), pa.string())
                text = pc.if_else(long, shortest, text)
        return text
