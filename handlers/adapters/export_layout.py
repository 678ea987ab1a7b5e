"""Where the table is in an export: the header line, the lines above it, summary rows and footers.

Tools write reports as people read them: a title and a date range above the header (Google Ads),
``#`` comment lines (GA4), ``Total: Account`` rows and notes under the table. The rules here are
dataset-agnostic, decided on the first lines of the file (the header) and per batch (summary rows):

- **Header**: the body's width is the most common field count among the first lines (comments and
  blank lines aside; one-cell lines too, when any line has several). The header is the first line
  of that width, unless that line is sparse (half or fewer of its cells filled: a title padded with
  delimiters) or the first line has another width; then
  it is the first later line of that width that is dense and does not look like data (mostly numbers
  or dates), provided no line above it fills more than half the table's width (a filled line there is
  the header of a ragged file, whose odd rows are reported as malformed). Every line above it is
  preamble. ``header_row`` in the dataset's settings overrides this.
- **Summary row**: its first non-empty cell is a totals label — ``Total``, ``Totals``, ``Grand total``
  (any case), alone or followed by ``:`` or ``-`` and a name (``Total: Account``) — and it sits in the
  block of such rows right under the header or at the end of the table, or none of its other cells
  holds text (only numbers, ``--`` or nothing); the bare word ``Total`` with text beside it is a row
  wherever it is. A campaign called ``Total Recall`` is never a summary; one called ``Total`` is kept
  unless only numbers (and dates) stand beside it.
- **Footer**: lines after the table's last row that hold a single filled cell of text (a note, a
  copyright line; when the line has the table's width, as in a sheet, the table has three columns
  or more and the text three words or more), and ``#`` comment lines after the header with the
  lines of another width after them (the next table of a GA4 download). Otherwise a short or long
  line with values stays a malformed row.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from analytics.errors import UnreadableFileError

#: How many records at the top of a file decide where its header is.
DETECT_RECORDS = 400

_LABEL = r"^\s*(grand\s+)?totals?(\s*[:\-–—]\s*.*)?\s*$"
LABEL = re.compile(_LABEL, re.IGNORECASE | re.DOTALL)
#: The same rule for Arrow's RE2 (case-insensitive, ``.`` matches a line break).
ARROW_LABEL = "(?is)" + _LABEL
FILLERS = frozenset({"", "-", "--", "—", "–", "n/a", "N/A"})
_LETTER = re.compile(r"[^\W\d_]")
_NUMBER = re.compile(r"^[\s$€£¥+\-−(]*\d[\d.,\s']*%?[\s)$€£¥%]*$")
_DATE = re.compile(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T]\d{1,2}:\d{2}(:\d{2})?)?$")
_RANGE = re.compile(r"\d.*(\s[-–—]\s|\bto\b|\bbis\b|\bau\b).*\d", re.IGNORECASE)


@dataclass(frozen=True)
class Record:
    """One parsed line (or record spanning lines) at the top of a file."""

    line: int  #: 1-based physical line where it starts
    cells: tuple[str, ...]
    comment: bool = False

    @property
    def blank(self) -> bool:
        return not self.comment and all(not c.strip() for c in self.cells)

    @property
    def filled(self) -> int:
        return sum(1 for c in self.cells if c.strip())

    @property
    def width(self) -> int:
        return len(self.cells)


def effective(cells: Sequence[str]) -> tuple[str, ...]:
    """Cells up to the last filled one (a spreadsheet row has the sheet's width, filled or not)."""
    end = len(cells)
    while end and not cells[end - 1].strip():
        end -= 1
    return tuple(cells[:end])


def looks_like_data(cells: Sequence[str]) -> bool:
    """Most filled cells are numbers or dates: a data row, not a header."""
    filled = [c.strip() for c in cells if c.strip()]
    numeric = sum(1 for c in filled if _NUMBER.match(c) or _DATE.match(c))
    return bool(filled) and numeric * 2 > len(filled)


def _dense(record: Record, width: int) -> bool:
    return record.filled * 2 > width


def describe(record: Record) -> str:
    """What a line above a header looks like, for messages: a title, a date range, a comment..."""
    if record.comment:
        return "a comment"
    if record.blank:
        return "a blank line"
    text = " ".join(c.strip() for c in record.cells if c.strip())
    if _RANGE.search(text):
        return "a date range"
    if record.filled == 1 and not looks_like_data(record.cells):
        return "a title"
    return "a note"


def _lines(first: int, last: int) -> str:
    return f"line {first}" if first == last else f"lines {first}–{last}"


def _join(parts: list[str]) -> str:
    unique = list(dict.fromkeys(parts))
    return unique[0] if len(unique) == 1 else ", ".join(unique[:-1]) + " and " + unique[-1]


@dataclass(frozen=True)
class Header:
    """Where the table starts: the header record and what lies above it."""

    record: Record
    width: int  #: the body's most common field count
    preamble: tuple[Record, ...] = field(default_factory=tuple)


class LayoutError(UnreadableFileError):
    """The file's layout (where its header is) cannot be recognised; the message says what was seen."""


def find_header(records: Sequence[Record], *, header_row: int | None, settings_key: str) -> Header:
    """The header among ``records`` (the first lines of a file), by the rules in the module docstring.

    ``header_row`` (1-based line) overrides the detection. Raises ``LayoutError`` when no line can be
    the header, saying what the first lines look like and what to do.
    """
    rows = [r for r in records if not r.comment and not r.blank]
    if not rows:
        raise LayoutError("has no header line, only comments or blank lines; upload the export with its table")
    # Titles, date ranges and notes are one cell: with any line of several, the table is among those
    # (a short report's one-cell preamble and footer can outnumber its rows).
    several = [r for r in rows if r.width > 1]
    counts = Counter(r.width for r in (several or rows))
    width = max(counts, key=lambda w: (counts[w], w))
    if header_row is not None:
        chosen = next((r for r in records if r.line == header_row), None)
        if chosen is None or chosen.comment or chosen.blank:
            seen = "is a comment or blank" if chosen else f"is not among the first {len(records)} lines"
            raise LayoutError(
                f"header_row in {settings_key} is {header_row}, but that line {seen}; "
                "set it to the line that holds the column names"
            )
        return Header(chosen, width, tuple(r for r in records if r.line < chosen.line))
    first = rows[0]
    if first.width == width and (_dense(first, width) or width < 2):
        return Header(first, width, tuple(r for r in records if r.line < first.line))
    candidate = next((r for r in rows[1:] if r.width == width and _dense(r, width)), None)
    # Lines above a header are titles, date ranges and notes: half the table's width filled at most.
    # A filled line above the candidate is more likely the header of a ragged file than a preamble.
    plausible = candidate is not None and all(r.filled * 2 <= width for r in rows if r.line < candidate.line)
    if candidate is not None and plausible and not looks_like_data(candidate.cells):
        return Header(candidate, width, tuple(r for r in records if r.line < candidate.line))
    if first.width < width and first.filled * 2 <= width:
        # The first line is a title or a note, and nothing below it reads like column names.
        above = [r for r in records if r.line < (candidate.line if candidate else first.line + 1)]
        above = [r for r in above if not r.blank] or [first]
        looks = _join([describe(r) for r in above])
        seen = f"{_lines(above[0].line, above[-1].line)} look{'s' if len(above) == 1 else ''} like {looks}"
        if candidate is not None and not looks_like_data(candidate.cells):
            filled = [r.line for r in rows if r.line < candidate.line and r.filled * 2 > width]
            raise LayoutError(
                f"has no recognisable header: {seen}; the header seems to be line {candidate.line}, the first "
                f"with the table's {width} fields, but {_lines(filled[0], filled[-1])} "
                f"above it hold{'s' if len(filled) == 1 else ''} more than a title would: set "
                f'"header_row": {candidate.line} in {settings_key}, or remove the lines above it'
            )
        if candidate is not None:
            raise LayoutError(
                f"has no recognisable header: {seen}, and line {candidate.line}, the first with the table's "
                f"{width} fields, looks like data. If line {candidate.line} is the header, set "
                f'"header_row": {candidate.line} in {settings_key}; otherwise add a line of column names'
            )
        raise LayoutError(
            f"has no recognisable header: {seen}, and no line below has the {width} fields of the table "
            f'with column names; set "header_row" in {settings_key} to the line of column names'
        )
    # No preamble: a ragged file, whose odd lines are reported one by one as malformed rows.
    return Header(first, width, tuple(r for r in records if r.line < first.line))


def is_label(value: str | None) -> bool:
    return value is not None and LABEL.match(value) is not None


def is_note(cells: Sequence[str | None], width: int, *, sentence: bool = True) -> bool:
    """A footer-like row: a single filled cell, of text (not a number). In a row of the table's width
    (``sentence``) the text must read like a sentence, three words or more (``©2026 Google LLC. All
    rights reserved.``), so a row with only its name filled stays a row."""
    filled = [c for c in cells if c is not None and c.strip()]
    if len(filled) != 1 or not _LETTER.search(filled[0]) or is_label(filled[0]):
        return False
    return not sentence or (width >= 3 and len(filled[0].split()) >= 3)


def _first_filled(cells: Sequence[str | None]) -> str | None:
    return next((c for c in cells if c is not None and c.strip()), None)


def _plain_beside_label(cells: Sequence[str | None]) -> bool:
    """Besides its label, the row holds only numbers, fillers (``--``) or nothing."""
    seen_label = False
    for cell in cells:
        if cell is None or cell.strip() in FILLERS:
            continue
        if not seen_label:
            seen_label = True
            continue
        if _LETTER.search(cell) and not _NUMBER.match(cell):
            return False
    return True


_LABEL_STARTS = np.frombuffer(b"tTgG \t\xc2\xe2", dtype=np.uint8).astype(np.int16)  # \xc2, \xe2: no-break spaces


def _first_bytes(column: pa.Array) -> np.ndarray:
    """The first byte of each string (-1 for an empty or null one), read from the Arrow buffers."""
    n = len(column)
    if n == 0:
        return np.zeros(0, dtype=np.int16)
    if column.null_count:
        column = pc.fill_null(column, "")
    _, offsets_buffer, data_buffer = column.buffers()
    width = np.int64 if pa.types.is_large_string(column.type) else np.int32
    offsets: Any = np.frombuffer(offsets_buffer, dtype=width)[column.offset : column.offset + n + 1]
    if data_buffer is None or offsets[-1] == offsets[0]:
        return np.full(n, -1, dtype=np.int16)
    data = np.frombuffer(data_buffer, dtype=np.uint8)
    starts = offsets[:-1]
    nonempty = offsets[1:] > starts
    first = np.full(n, -1, dtype=np.int16)
    first[nonempty] = data[starts[nonempty]]
    return first


class Trimmer:
    """Takes summary rows and footers out of a stream of string batches (see the module docstring).

    The block of label and note rows at the end of each batch is held back until the next batch shows
    whether table rows follow it; what is held when the stream ends is the table's tail.
    """

    def __init__(self, width: int) -> None:
        self.width = width
        self.summary: list[list[str | None]] = []
        self.footer: list[str] = []
        self._held: pa.RecordBatch | None = None
        self._started = False

    def feed(self, batch: pa.RecordBatch) -> pa.RecordBatch | None:
        """The rows of ``batch`` that belong to the table (None when none do yet)."""
        if self._held is not None:
            batch = pa.Table.from_batches([self._held, batch]).combine_chunks().to_batches()[0]
            self._held = None
        n = batch.num_rows
        if n == 0:
            return None
        drop = self._labels(batch)
        # The block right under the header.
        start = 0
        if not self._started:
            while start < n and self._block_summary(self._row(batch, start)):
                self.summary.append(self._row(batch, start))
                start += 1
        # The block at the end of the batch: held back.
        end = n
        while end > start and (
            self._block_summary(self._row(batch, end - 1)) or is_note(self._row(batch, end - 1), self.width)
        ):
            end -= 1
        if end < n:
            self._held = batch.slice(end)
        if end > start:
            self._started = True
        # Label rows in the middle are summaries when nothing but numbers stands beside the label.
        middle = set()
        for i in (start + np.flatnonzero(drop[start:end])).tolist():
            if _plain_beside_label(self._row(batch, i)):
                self.summary.append(self._row(batch, i))
                middle.add(i)
        if start == 0 and end == n and not middle:
            return batch
        if start == end:
            return None
        if not middle:
            return batch.slice(start, end - start)
        keep = [i for i in range(start, end) if i not in middle]
        return batch.take(pa.array(keep, pa.int64())) if keep else None

    def finish(self) -> None:
        """The stream ended: what is held is the table's tail of summary rows and notes."""
        held, self._held = self._held, None
        if held is None:
            return
        for i in range(held.num_rows):
            row = self._row(held, i)
            if is_label(_first_filled(row)):
                self.summary.append(row)
            else:
                self.footer.append(" ".join(c.strip() for c in row if c and c.strip()))

    def _labels(self, batch: pa.RecordBatch) -> np.ndarray:
        """Rows whose first filled cell is a totals label. Vectorised: the regex runs only on the cells
        whose first byte could start a label (``t``, ``g``, a space), found from the column's buffers."""
        n = batch.num_rows
        found = np.zeros(n, dtype=bool)
        pending = np.ones(n, dtype=bool)
        for column in batch.columns:
            first = _first_bytes(column)
            maybe = pending & np.isin(first, _LABEL_STARTS)
            if maybe.any():
                rows = np.flatnonzero(maybe)
                match = pc.match_substring_regex(column.take(pa.array(rows)), ARROW_LABEL)
                found[rows[pc.fill_null(match, False).to_numpy(zero_copy_only=False)]] = True
            pending &= first < 0
            if not pending.any():
                break
        return found

    @staticmethod
    def _block_summary(row: Sequence[str | None]) -> bool:
        """A label row in the block under the header or at the end: a summary unless it is the bare
        word ``Total`` with text beside it (a campaign called Total)."""
        label = _first_filled(row)
        if not is_label(label):
            return False
        assert label is not None
        return label.strip().lower() != "total" or _plain_beside_label(row)

    @staticmethod
    def _row(batch: pa.RecordBatch, i: int) -> list[str | None]:
        return [column[i].as_py() for column in batch.columns]
