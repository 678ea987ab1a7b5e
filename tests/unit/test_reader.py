"""Reading raw files: formats, sniffing, and a clear error for every kind of bad input."""

from __future__ import annotations

import gzip
import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.errors import UnreadableFileError
from handlers.adapters.reader import SourceReader, _LineCounter, detect_format
from handlers.errors import UnsupportedObjectError


def read(key: str, data: bytes) -> tuple[pa.Table, SourceReader]:
    reader = SourceReader(key, detect_format(key), lambda: io.BytesIO(data))
    batches = list(reader.batches())
    return pa.Table.from_batches(batches) if batches else pa.table({}), reader


@pytest.mark.parametrize(
    ("key", "fmt"),
    [
        ("raw/a/x.csv", "csv"),
        ("raw/a/X.CSV.GZ", "csv.gz"),
        ("raw/a/x.ndjson", "jsonl"),
        ("raw/a/x.json", "jsonl"),
        ("raw/a/x.jsonl", "jsonl"),
        ("raw/a/x.parquet", "parquet"),
        ("raw/a/x.tsv", "tsv"),
        ("raw/a/Report.XLSX", "xlsx"),
    ],
)
def test_format_follows_the_extension(key: str, fmt: str) -> None:
    assert detect_format(key) == fmt


def test_unknown_extension_lists_the_supported_ones() -> None:
    with pytest.raises(UnsupportedObjectError, match=r"\.csv\.gz"):
        detect_format("raw/a/report.numbers")


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_csv_delimiter_is_sniffed_and_values_stay_text(delimiter: str) -> None:
    data = delimiter.join(["id", "amount", "note"]) + "\n" + delimiter.join(["00042", "1.5", "a b"]) + "\n"
    table, _ = read("raw/a/x.csv", data.encode())
    assert table.column_names == ["id", "amount", "note"]
    assert table.to_pylist() == [{"id": "00042", "amount": "1.5", "note": "a b"}]


def test_utf8_bom_is_not_part_of_the_first_column_name() -> None:
    table, _ = read("raw/a/x.csv", "\ufeffname,city\nZoë,Köln\n".encode())
    assert table.column_names == ["name", "city"]
    assert table.to_pylist() == [{"name": "Zoë", "city": "Köln"}]


def test_malformed_lines_are_collected_with_their_line_number() -> None:
    data = b"a,b,c\n1,2,3\n4,5\n6,7,8\n9,10,11,12\n"
    table, reader = read("raw/a/x.csv", data)
    assert table.num_rows == 2
    assert [m.reason() for m in reader.malformed] == [
        "line 3 has 2 fields, the header has 3",
        "line 5 has 4 fields, the header has 3",
    ]


def test_gzip_csv_is_read() -> None:
    table, _ = read("raw/a/x.csv.gz", gzip.compress(b"a;b\n1;2\n3;4\n"))
    assert table.num_rows == 2


def test_json_lines_and_json_array_are_read() -> None:
    lines = b'{"a": 1, "b": "x"}\n{"a": 2, "b": "y"}\n'
    assert read("raw/a/x.jsonl", lines)[0].num_rows == 2
    array = json.dumps([{"a": 1}, {"a": 2}, {"a": 3}]).encode()
    assert read("raw/a/x.json", array)[0].num_rows == 3


def test_parquet_is_read() -> None:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"a": [1, 2, 3]}), buffer)
    assert read("raw/a/x.parquet", buffer.getvalue())[0].column("a").to_pylist() == [1, 2, 3]


def _truncated_gzip() -> bytes:
    rows = "".join(f"{i},{i * 7919 % 104729}\n" for i in range(100_000))
    compressed = gzip.compress(("a,b\n" + rows).encode())
    return compressed[: len(compressed) // 2]


@pytest.mark.parametrize(
    ("key", "data", "message"),
    [
        ("raw/a/empty.csv", b"", "is empty"),
        ("raw/a/blank.csv", b"\n\n  \n", "is empty"),
        ("raw/a/header.csv", b"id,amount\n", r"has a header \(id, amount\) but no data rows"),
        ("raw/a/junk.csv", bytes(range(256)) * 8, "binary data"),
        ("raw/a/notgz.csv.gz", b"a,b\n1,2\n", "not gzip-compressed"),
        ("raw/a/cut.csv.gz", _truncated_gzip(), "gzip data"),
        ("raw/a/notjson.jsonl", b"a,b\n1,2\n", "not JSON lines"),
        ("raw/a/empty.jsonl", b"", "is empty"),
        ("raw/a/notparquet.parquet", b"a,b\n1,2\n", "not a Parquet file"),
        ("raw/a/cut.parquet", b"PAR1" + b"\x00" * 64, "damaged Parquet"),
    ],
)
def test_bad_files_fail_with_a_message_naming_the_object_and_the_fix(key: str, data: bytes, message: str) -> None:
    with pytest.raises(UnreadableFileError, match=message) as caught:
        read(key, data)
    assert str(caught.value).startswith(key + ":")


def test_invalid_utf8_after_the_sniffed_head_is_reported() -> None:
    data = b"a,b\n" + b"1,2\n" * 40_000 + "é,3\n".encode("latin-1")
    with pytest.raises(UnreadableFileError, match="not valid UTF-8"):
        read("raw/a/x.csv", data)


def test_lines_and_rows_are_counted_and_a_runaway_quote_is_taken_out() -> None:
    data = b'a,b,c\n1,"x\n2,y,z\n3,q"r,s\n\n4,"Hello, world\nbye",5\n6,"ok",7'
    table, reader = read("raw/a/x.csv", data)
    # Physical lines after the header, the blank one not counted; the row of "Hello, world / bye" is kept.
    assert reader.lines == 6
    assert table.column("a").to_pylist() == ["4", "6"]
    assert reader.multiline == 1
    [runaway] = reader.malformed
    assert (runaway.code, runaway.column, runaway.swallowed) == ("unterminated_quote", "b", 2)
    assert "never closed" in runaway.reason()


class _Chunked(io.RawIOBase):
    """Hands out ``data`` in reads of the given sizes (then what is left), as a network stream might."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self._data, self._sizes = memoryview(data), list(sizes)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self._sizes.pop(0) if self._sizes else len(buffer), len(self._data))
        buffer[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


@given(
    lines=st.lists(st.sampled_from(["1,2", "", "\r", "x,y\r"]), min_size=1, max_size=30),
    final_newline=st.booleans(),
    sizes=st.lists(st.integers(min_value=1, max_value=7), max_size=40),
)
@settings(max_examples=300, deadline=None)
def test_data_lines_count_every_non_blank_line_however_the_bytes_arrive(
    lines: list[str], final_newline: bool, sizes: list[int]
) -> None:
    text = "a,b\n" + "\n".join(lines) + ("\n" if final_newline else "")
    counter = _LineCounter(_Chunked(text.encode(), sizes))
    while counter.read(8):
        pass
    # The reference: the lines after the header that hold more than a line end ("" and "\r" are blank).
    expected = sum(1 for line in text.split("\n")[1:] if line not in ("", "\r"))
    assert counter.data_lines() == expected
    assert counter.tail == text.encode()[-_LineCounter.TAIL :]


def test_other_formats_have_no_line_count() -> None:
    _, reader = read("raw/a/x.jsonl", b'{"a": 1}\n{"a": 2}\n')
    assert (reader.lines, reader.multiline) == (None, 0)
