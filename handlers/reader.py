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
from analytics.errors import UnreadableFileError
from handlers.errors import UnsupportedObjectError

HEAD_BYTES = 64 * 1024
CSV_BLOCK_BYTES = 4 << 20
DELIMITERS = ",;\t|"
BATCH_ROWS = 65_536


def detect_format(key: str) -> str:
    """The format named by the key's extension: csv, csv.gz, jsonl or parquet."""
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
    """Passes bytes through, counting newlines and blank lines (which CSV readers skip)."""

    def __init__(self, inner: io.RawIOBase) -> None:
        self._inner = inner
        self.newlines = 0
        self.blank = 0
        self._previous = b""  # the last two bytes seen, for blank lines across reads
        self._last = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._inner.readinto(buffer) or 0
        if n:
            data = self._previous + bytes(memoryview(buffer)[:n])
            self.newlines += data.count(b"\n") - self._previous.count(b"\n")
            self.blank += data.count(b"\n\n") + data.count(b"\n\r\n") - self._previous.count(b"\n\n")
            self._previous = data[-2:]
            self._last = data[-1:]
        return n

    def data_lines(self) -> int:
        """Non-blank lines after the header."""
        lines = self.newlines + (1 if self._last not in (b"", b"\n") else 0)
        return max(lines - 1 - self.blank, 0)


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


class SourceReader:
    """Streams one raw object. ``open_stream`` returns a fresh binary stream of the object's bytes."""

    def __init__(self, key: str, fmt: str, open_stream: Callable[[], IO[bytes]]) -> None:
        self.key = key
        self.format = fmt
        self._open = open_stream
        self.malformed: list[MalformedRow] = []
        self.rows_read = 0
        self.columns: list[str] = []
        #: A CSV's delimiter, as sniffed from its first lines; None for other formats.
        self.delimiter: str | None = None
        #: Physical lines after a CSV's header (blank ones not counted); None for other formats.
        self.lines: int | None = None
        #: Rows kept whose quoted values hold line breaks (each spans several lines).
        self.multiline = 0
        self._counter: _LineCounter | None = None

    def _fail(self, what: str) -> UnreadableFileError:
        return UnreadableFileError(f"{self.key}: {what}")

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Every record batch of the object, in file order. Raises ``UnreadableFileError``."""
        self.malformed = []
        self.rows_read = 0
        self.lines = None
        self.multiline = 0
        self._counter = None
        stream = self._open()
        try:
            if self.format == "parquet":
                inner = self._parquet(stream)
            elif self.format == "jsonl":
                inner = self._json(stream)
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

    # --- CSV -------------------------------------------------------------------------------------
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
            head = _read_head(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise self._fail(f"the gzip data is damaged ({exc}); re-upload the complete file") from exc
        if not head.strip():
            raise self._fail("is empty; upload a CSV file with a header row and data rows")
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise self._fail("is UTF-16 encoded; save it as UTF-8 (with or without BOM) and upload again")
        if head.startswith(b"\xef\xbb\xbf"):
            head = head[3:]
        if b"\x00" in head:
            raise self._fail("contains binary data, not CSV text; check the file is the export you meant")
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start >= len(head) - 4:  # a character cut by the head boundary
                text = head[: exc.start].decode("utf-8")
            else:
                line = head[: exc.start].count(b"\n") + 1
                raise self._fail(
                    f"is not UTF-8 (invalid byte 0x{head[exc.start]:02x} on line {line}); "
                    "re-export it as UTF-8 and upload again"
                ) from exc
        lines = text.splitlines()
        header_line = lines[0]
        delimiter = self._sniff(lines[:20])
        self.delimiter = delimiter
        header = next(csv.reader([header_line], delimiter=delimiter))
        self.columns = _unique_names(header)
        # A single column is legal, but a binary blob also looks like one: require printable text.
        single = len(self.columns) < 2 and len(lines) > 1 and not any(d in header_line for d in DELIMITERS)
        if single and sum(ch.isprintable() or ch.isspace() for ch in text) < 0.95 * len(text):
            raise self._fail("does not look like CSV text; check the file is the export you meant")
        expected = len(self.columns)

        def on_invalid(row: Any) -> str:
            # A line break inside the bad row means a quote ran on over the lines after it.
            code = UNTERMINATED_QUOTE if "\n" in row.text else MALFORMED_ROW
            self.malformed.append(
                MalformedRow(
                    line=row.number, fields=row.actual_columns, expected=expected, text=row.text, code=code,
                    swallowed=row.text.rstrip("\r\n").count("\n"),
                )
            )  # fmt: skip
            return "skip"

        self._counter = _LineCounter(_Prefixed(head, raw))
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
            for batch in reader:
                yield self._take_out_runaway_quotes(batch, delimiter, expected)
        except (pa.ArrowInvalid, OSError, EOFError, zlib.error) as exc:
            raise self._csv_error(exc) from exc

    def _take_out_runaway_quotes(self, batch: pa.RecordBatch, delimiter: str, expected: int) -> pa.RecordBatch:
        """``batch`` without the rows whose value swallowed CSV lines (recorded as malformed).

        A quoted value may hold line breaks (an address, a comment). One is taken for a quote never
        closed when a later line of it holds a whole row's delimiters, or when its first line holds
        the delimiters of the fields that should have followed it and a later line holds delimiters too.
        """
        breaks: Any = None
        for column in batch.columns:
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
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

    def _csv_error(self, exc: Exception) -> UnreadableFileError:
        message = str(exc)
        if "UTF8" in message or "utf8" in message.lower():
            return self._fail(f"is not valid UTF-8 after row {self.rows_read}; re-export it as UTF-8")
        if isinstance(exc, EOFError | zlib.error) or "gzip" in message.lower() or "compressed" in message:
            return self._fail(
                f"the gzip data ends early or is damaged after {self.rows_read} rows ({message}); "
                "re-upload the complete file"
            )
        return self._fail(f"cannot be parsed as CSV after row {self.rows_read}: {message.splitlines()[0]}")

    @staticmethod
    def _sniff(lines: list[str]) -> str:
        sample = "\n".join(lines)
        try:
            return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
        except csv.Error:
            counts = {d: lines[0].count(d) for d in DELIMITERS}
            best = max(counts, key=lambda d: counts[d])
            return best if counts[best] else ","

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
