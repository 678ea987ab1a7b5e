"""The reader finds the table in exports as the tools write them: lines above the header, summary rows,
footers, other encodings, tab-separated text and workbooks. Nothing around the table becomes a row."""

from __future__ import annotations

import datetime as dt
import io
import tracemalloc
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import xlsxwriter

from analytics.errors import SettingsError, UnreadableFileError
from handlers.adapters import reader as READER
from handlers.adapters.export_layout import _first_bytes
from handlers.adapters.reader import ReadOptions, SourceReader, detect_format
from tests.exports import (
    ADS_HEADER,
    ADS_PREAMBLE,
    ADS_ROWS,
    ADS_TOTALS,
    GA4_PREAMBLE,
    csv_text,
    excel_csv,
    ga4_csv,
    google_ads_csv,
    xlsx,
)

SETTINGS = "settings/ads.json"


def read(key: str, data: bytes, **options: object) -> tuple[list[dict[str, str]], SourceReader]:
    reader = SourceReader(
        key, detect_format(key), lambda: io.BytesIO(data), ReadOptions(**options, settings_key=SETTINGS)
    )  # type: ignore[arg-type]
    batches = list(reader.batches())
    return (pa.Table.from_batches(batches).to_pylist() if batches else []), reader


ADS_DICTS = [dict(zip(ADS_HEADER, row, strict=True)) for row in ADS_ROWS]


def test_a_google_ads_download_reads_as_its_table_with_the_title_date_range_and_totals_left_out() -> None:
    # GIVEN a Google Ads UI download: report name and date range above the header, two Total rows below
    rows, reader = read("raw/ads/campaigns.csv", google_ads_csv().encode())
    # THEN the rows are the campaigns' rows, "Total Recall" (a campaign) among them
    assert rows == ADS_DICTS
    assert reader.columns == list(ADS_HEADER)
    # AND what was left out is counted, not reported as malformed
    assert (reader.header_line, reader.preamble_lines, reader.summary_rows) == (3, 2, 2)
    assert reader.preamble == list(ADS_PREAMBLE)
    assert [row[0] for row in reader.summary] == ["Total: Account", "Total: Search campaigns"]
    assert reader.malformed == []
    assert (reader.encoding, reader.delimiter) == ("utf-8", ",")


def test_excel_csv_utf16_tab_separated_reads_like_the_utf8_csv() -> None:
    data = excel_csv(google_ads_csv(delimiter="\t"))
    rows, reader = read("raw/ads/campaigns.csv", data)
    assert rows == ADS_DICTS
    assert (reader.encoding, reader.delimiter, reader.preamble_lines, reader.summary_rows) == ("utf-16", "\t", 2, 2)


def test_utf16_big_endian_with_bom_is_read() -> None:
    rows, reader = read("raw/ads/x.csv", b"\xfe\xff" + "a\tb\r\nZoë\t1\r\n".encode("utf-16-be"))
    assert rows == [{"a": "Zoë", "b": "1"}]
    assert reader.encoding == "utf-16"


def test_windows_1252_is_detected_and_read_as_text() -> None:
    text = "Campagne;Coût;Ville\nÉté 2026;1 234,50 €;Besançon\nNoël;99,00 €;Zürich\n"
    rows, reader = read("raw/ads/fr.csv", text.encode("cp1252"))
    assert reader.encoding == "cp1252"
    assert rows == [
        {"Campagne": "Été 2026", "Coût": "1 234,50 €", "Ville": "Besançon"},
        {"Campagne": "Noël", "Coût": "99,00 €", "Ville": "Zürich"},
    ]


@pytest.mark.parametrize(
    ("encoding", "text"),
    [
        ("cp1252", "Brand;Search\ndéjà;vu\n"),
        ("cp1250", "Kampania;Koszt\nZażółć gęślą jaźń;12\nŁódź;3\n"),
        ("cp1251", "Имя;Город\nИван;Москва\n"),
        ("cp1253", "Πόλη;Τιμή\nΑθήνα;12\n"),
    ],
)
def test_short_files_in_other_code_pages_keep_their_letters(encoding: str, text: str) -> None:
    rows, reader = read("raw/x/x.csv", text.encode(encoding))
    header, *body = [line.split(";") for line in text.splitlines()]
    assert rows == [dict(zip(header, row, strict=True)) for row in body]
    assert reader.encoding == encoding


def _peak_python_memory(path: Path) -> tuple[int, int]:
    reader = SourceReader(f"raw/x/{path.name}", "csv", lambda: path.open("rb"))
    tracemalloc.start()
    try:
        rows = sum(batch.num_rows for batch in reader.batches())
        return rows, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_transcoding_holds_no_more_than_reading_utf8(tmp_path: Path) -> None:
    # GIVEN the same 2,000,000 rows as UTF-8 (30 MB) and as UTF-16 (57 MB) files
    text = "id\tcity\r\n" + "00042\tMünchen\r\n" * 2_000_000
    (tmp_path / "a.csv").write_bytes(text.encode())
    (tmp_path / "b.csv").write_bytes(b"\xff\xfe" + text.encode("utf-16-le"))
    rows8, peak8 = _peak_python_memory(tmp_path / "a.csv")
    rows16, peak16 = _peak_python_memory(tmp_path / "b.csv")
    # THEN both read whole, and transcoding (1 MB chunks) adds no more than a few MB to what the
    # UTF-8 path holds, though the UTF-16 file is twice the bytes (decoding it whole would add 57 MB)
    assert rows8 == rows16 == 2_000_000
    assert peak16 < peak8 + 8 * 2**20, (peak8 / 2**20, peak16 / 2**20)


def test_latin1_beyond_the_first_block_is_transcoded_as_it_streams() -> None:
    # GIVEN a Latin-1 file much larger than the head the encoding is detected on
    text = "name,city\n" + "José,München\n" * 50_000 + "Zoë,Köln\n"
    rows, reader = read("raw/ads/big.csv", text.encode("latin-1"))
    assert len(rows) == 50_001 and rows[-1] == {"name": "Zoë", "city": "Köln"}
    assert reader.encoding in {"cp1252", "latin_1", "iso8859-1", "iso8859_15"}


def test_tsv_is_tab_separated_even_when_values_hold_commas() -> None:
    data = csv_text([["campaign", "cost"], ["Shoes, red", "1,234.50"], ["Hats", "5"]], "\t").encode()
    rows, reader = read("raw/ads/x.tsv", data)
    assert rows == [{"campaign": "Shoes, red", "cost": "1,234.50"}, {"campaign": "Hats", "cost": "5"}]
    assert reader.delimiter == "\t"


def test_a_ga4_download_skips_its_comment_preamble() -> None:
    header = ("Page title and screen class", "Views", "Users", "Average engagement time")
    body = [("Home", "1,204", "830", "0m 42s"), ("Checkout", "311", "290", "1m 05s")]
    rows, reader = read("raw/web/pages.csv", ga4_csv(header, body).encode())
    assert rows == [dict(zip(header, row, strict=True)) for row in body]
    # the eight comment lines and the blank line under them
    assert (reader.header_line, reader.preamble_lines) == (len(GA4_PREAMBLE) + 2, len(GA4_PREAMBLE) + 1)
    assert reader.malformed == []


def test_a_ga4_download_with_a_second_table_reads_the_first_and_counts_the_rest_as_footer() -> None:
    first = ga4_csv(("Date", "Users"), [("20260101", "830"), ("20260102", "790")])
    second = (
        "\n".join(GA4_PREAMBLE[:3]) + "\n\n" + csv_text([("Country", "Users", "New users"), ("Germany", "900", "120")])
    )
    rows, reader = read("raw/web/snapshot.csv", (first + "\n" + second).encode())
    assert rows == [{"Date": "20260101", "Users": "830"}, {"Date": "20260102", "Users": "790"}]
    assert reader.malformed == []
    assert reader.footer == [*GA4_PREAMBLE[:3], "Country,Users,New users", "Germany,900,120"]


def test_a_footer_after_the_totals_is_left_out_and_counted() -> None:
    text = google_ads_csv() + "\n©2026 Google LLC. All rights reserved.\n"
    rows, reader = read("raw/ads/x.csv", text.encode())
    assert rows == ADS_DICTS
    assert reader.footer == ["©2026 Google LLC. All rights reserved."]
    assert (reader.summary_rows, reader.malformed) == (2, [])


def test_a_title_padded_to_the_table_width_is_preamble() -> None:
    # Spreadsheet tools save a title cell over a wide table as "Title,,,,"
    text = csv_text(
        [["Weekly report", "", "", ""], ["sku", "store", "units", "revenue"], ["A-1", "Berlin", "3", "9.90"]]
    )
    rows, reader = read("raw/x/x.csv", text.encode())
    assert rows == [{"sku": "A-1", "store": "Berlin", "units": "3", "revenue": "9.90"}]
    assert reader.preamble_lines == 1


def test_a_header_over_rows_with_trailing_delimiters_stays_the_header() -> None:
    # Not a preamble: the first line is filled, so the rows (one field longer) are reported as malformed
    rows, reader = read("raw/x/x.csv", "name,city\nZoë,Köln,\nAli,Bonn,\n".encode())
    assert (rows, reader.columns, reader.preamble_lines) == ([], ["name", "city"], 0)
    assert [m.reason() for m in reader.malformed] == [
        "line 2 has 3 fields, the header has 2",
        "line 3 has 3 fields, the header has 2",
    ]


def test_totals_in_the_middle_are_summary_only_with_nothing_but_numbers_beside_them() -> None:
    header = ("Campaign", "Network", "Clicks")
    body = [
        ("Total", "Search", "10"),  # a campaign called "Total", with text beside it: a row
        ("Brand", "Search", "5"),
        ("Total: Search", "--", "15"),  # a subtotal: label and numbers only
        ("Shoes", "Display", "7"),
        ("Total Recall", "Display", "8"),
    ]
    rows, reader = read("raw/x/x.csv", csv_text([header, *body]).encode())
    assert [r["Campaign"] for r in rows] == ["Total", "Brand", "Shoes", "Total Recall"]
    assert reader.summary == [["Total: Search", "--", "15"]]


def test_grand_total_right_under_the_header_is_summary() -> None:
    text = csv_text([["Country", "Users"], ["Grand total", "1,500"], ["Germany", "900"], ["France", "600"]])
    rows, reader = read("raw/x/x.csv", text.encode())
    assert [r["Country"] for r in rows] == ["Germany", "France"]
    assert reader.summary_rows == 1


def test_header_row_setting_overrides_the_detection() -> None:
    # GIVEN a preamble whose second line has the table's width and looks like a header
    text = csv_text([["Export"], ["from", "to", "by"], ["a", "b", "c"], ["1", "2", "3"]])
    assert read("raw/x/x.csv", text.encode())[0] == [
        {"from": "a", "to": "b", "by": "c"},
        {"from": "1", "to": "2", "by": "3"},
    ]
    rows, reader = read("raw/x/x.csv", text.encode(), header_row=3)
    assert rows == [{"a": "1", "b": "2", "c": "3"}]
    assert (reader.header_line, reader.preamble_lines) == (3, 2)


def test_a_title_over_rows_without_a_header_says_what_was_seen_and_what_to_do() -> None:
    text = csv_text([["Campaign performance"], ["January 1, 2026 - January 2, 2026"], *[list(r[1:]) for r in ADS_ROWS]])
    with pytest.raises(UnreadableFileError) as caught:
        read("raw/ads/x.csv", text.encode())
    message = str(caught.value)
    assert message.startswith("raw/ads/x.csv: has no recognisable header: lines 1–2 look like a title and a date range")
    assert f'set "header_row": 3 in {SETTINGS}' in message
    assert "quoting" not in message


def test_filled_lines_between_a_title_and_the_header_name_the_header_row_to_set() -> None:
    text = csv_text(
        [["Weekly export"], ["region", "EU", "2026"], ["sku", "store", "units", "revenue"], ["A-1", "Berlin", "3", "9"]]
    )
    with pytest.raises(UnreadableFileError) as caught:
        read("raw/x/x.csv", text.encode())
    assert str(caught.value) == (
        "raw/x/x.csv: has no recognisable header: lines 1–2 look like a title and a note; the header seems to be "
        "line 3, the first with the table's 4 fields, but line 2 above it holds more than a title would: set "
        f'"header_row": 3 in {SETTINGS}, or remove the lines above it'
    )
    rows, _ = read("raw/x/x.csv", text.encode(), header_row=3)
    assert rows == [{"sku": "A-1", "store": "Berlin", "units": "3", "revenue": "9"}]


def test_header_row_naming_a_blank_line_is_refused_with_the_fix() -> None:
    with pytest.raises(
        UnreadableFileError, match=rf"header_row in {SETTINGS} is 2, but that line is a comment or blank"
    ):
        read("raw/x/x.csv", b"# note\n\na,b\n1,2\n", header_row=2)


@pytest.mark.parametrize("settings", [{"header_row": 0}, {"header_row": "3"}, {"sheet": 2}])
def test_bad_read_settings_name_the_settings_file(settings: dict[str, object]) -> None:
    with pytest.raises(SettingsError, match=SETTINGS):
        ReadOptions.from_settings(settings, SETTINGS)


def test_undecodable_text_gets_a_clear_error() -> None:
    # A UTF-16 byte-order mark over bytes that end in half a character pair (a lone surrogate)
    data = b"\xff\xfe" + "a,b\r\n1,2\r\n".encode("utf-16-le") + b"\x00\xd8" + b",\x00"
    with pytest.raises(UnreadableFileError, match=r"is not valid utf-16 .*re-export it as UTF-8"):
        read("raw/x/x.csv", data)


def test_undefined_windows_1252_bytes_after_the_head_get_a_clear_error() -> None:
    data = ("city,n\n" + "".join(f"Zürich Café {i},{i}\n" for i in range(30_000))).encode("cp1252") + b"\x81,2\n"
    with pytest.raises(UnreadableFileError, match=r"is not valid cp1252 \(byte 0x81 at offset"):
        read("raw/x/x.csv", data)


# --- workbooks ----------------------------------------------------------------------------------
XLSX_BELOW = [list(t) for t in ADS_TOTALS]


def _ads_rows_for_xlsx() -> list[tuple[str, ...]]:
    # The workbook holds numbers, not the UI's formatted text: what a CSV of the same numbers holds.
    return [("Brand - Search", "2026-01-01", "1234", "56", "0.0454", "1234.56", "3", "4500"),
            ("Total Recall", "2026-01-02", "980", "12", "0.0122", "45.1", "0", "0")]  # fmt: skip


def test_an_xlsx_download_reads_like_its_csv_with_dates_as_iso_dates() -> None:
    body = _ads_rows_for_xlsx()
    data = xlsx(ADS_HEADER, body, above=ADS_PREAMBLE, below=XLSX_BELOW, sheets=("Report", "Notes"))
    rows, reader = read("raw/ads/campaigns.xlsx", data)
    assert rows == [dict(zip(ADS_HEADER, row, strict=True)) for row in body]
    assert (reader.sheets, reader.sheet) == (["Report", "Notes"], "Report")
    assert (reader.header_line, reader.preamble_lines, reader.summary_rows) == (3, 2, 2)
    assert reader.encoding is None


def test_workbook_numbers_and_times_read_as_a_csv_export_writes_them() -> None:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet, clock = book.add_worksheet(), book.add_format({"num_format": "hh:mm:ss"})
    sheet.write_row(0, 0, ["revenue", "share", "avg. time"])
    for r, (revenue, share, seconds) in enumerate([(12345678.12, 0.0454, 42), (-7.5, 1 / 3, 3725)], start=1):
        sheet.write_number(r, 0, revenue)
        sheet.write_number(r, 1, share)
        sheet.write_datetime(r, 2, dt.time(seconds // 3600, seconds // 60 % 60, seconds % 60), clock)
    book.close()
    rows, _ = read("raw/x/book.xlsx", buffer.getvalue())
    # (fastexcel writes numbers with nine decimals: 12345678.119999999 is shortened back; 1/3 keeps nine)
    assert rows == [
        {"revenue": "12345678.12", "share": "0.0454", "avg. time": "00:00:42"},
        {"revenue": "-7.5", "share": "0.333333333", "avg. time": "01:02:05"},
    ]


def test_the_sheet_named_in_settings_is_read() -> None:
    data = xlsx(("a", "b"), [("x", "1")], sheets=("Cover", "Data"), data_sheet=1)
    rows, reader = read("raw/x/book.xlsx", data, sheet="Data")
    assert rows == [{"a": "x", "b": "1"}] and reader.sheet == "Data"
    # without the setting the first sheet with cells is read
    assert read("raw/x/book.xlsx", data)[1].sheet == "Data"


def test_a_sheet_named_in_settings_that_does_not_exist_lists_the_sheets() -> None:
    data = xlsx(("a", "b"), [("x", "1")], sheets=("Report", "Notes"))
    with pytest.raises(UnreadableFileError, match=r"has no sheet 'Data' .*its sheets are 'Report', 'Notes'"):
        read("raw/x/book.xlsx", data, sheet="Data")


def test_a_workbook_without_data_fails_naming_its_sheets() -> None:
    data = xlsx(("a",), [], sheets=("Empty", "Blank"), data_sheet=9)
    with pytest.raises(UnreadableFileError, match=r"none of its sheets \(Empty, Blank\) holds data"):
        read("raw/x/book.xlsx", data)


def test_a_truncated_workbook_asks_for_the_complete_file() -> None:
    data = xlsx(ADS_HEADER, _ads_rows_for_xlsx())
    with pytest.raises(UnreadableFileError, match=r"damaged or truncated workbook.*re-upload the complete file"):
        read("raw/x/book.xlsx", data[: len(data) // 2])


def test_a_password_protected_workbook_says_to_remove_the_password() -> None:
    # GIVEN a workbook encrypted with a password, as Excel does (msoffcrypto-tool writes the same format)
    from msoffcrypto.format.ooxml import OOXMLFile

    encrypted = io.BytesIO()
    OOXMLFile(io.BytesIO(xlsx(("a", "b"), [("x", "1")]))).encrypt("secret", encrypted)
    with pytest.raises(UnreadableFileError, match=r"password-protected workbook.*save it without a password"):
        read("raw/x/book.xlsx", encrypted.getvalue())


def test_a_zip_that_is_not_a_workbook_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "hi")
    with pytest.raises(UnreadableFileError, match="damaged or truncated workbook"):
        read("raw/x/book.xlsx", buffer.getvalue())


# --- workbooks: the sheet's text, a batch at a time ---------------------------------------------


def _reference_csv_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """The sheet text's rules as regexes over every cell (the reader before it decided per column)."""
    column = pc.fill_null(column, "")
    stamps = pc.sum(pc.match_substring_regex(column, r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")).as_py() or 0
    if stamps and pc.sum(pc.match_substring_regex(column, r"^\d{4}-\d{2}-\d{2} 00:00:00$")).as_py() == stamps:
        column = pc.replace_substring_regex(column, r"^(\d{4}-\d{2}-\d{2}) 00:00:00$", r"\1")
    elif stamps and pc.sum(pc.match_substring_regex(column, r"^1899-12-3[01] \d{2}:\d{2}:\d{2}")).as_py() == stamps:
        column = pc.replace_substring_regex(column, r"^1899-12-3[01] ", "")
    long = pc.match_substring_regex(column, r"^-?\d+\.\d{9}$")
    if pc.any(long).as_py():
        shortest = pc.cast(pc.cast(pc.if_else(long, column, None), pa.float64()), pa.string())
        column = pc.if_else(long, shortest, column)
    return column


SHEET_COLUMNS = {
    "midnight dates among text": ["Date", "2026-01-05 00:00:00", None, "2026-02-01 00:00:00", "n/a", ""],
    "a date-time not at midnight": ["2026-01-05 00:00:00", "2026-01-05 13:04:05", None, "x"],
    "times of day": ["avg. time", "1899-12-31 00:00:42", "1899-12-30 01:02:05", None],
    "day zero at midnight": ["1899-12-30 00:00:00", "1899-12-31 00:00:00"],
    "date-times with fractions": ["2026-01-05 00:00:00.5", "2026-01-05 00:00:00"],
    "nine decimals": ["revenue", "12345678.119999999", "0.333333333", "-7.500000000", "1234", None],
    "nine decimals after day zero": ["1899-12-31 13:04:05", "1899-12-31 0.123456789"],
    "long text": ["Brand - Search - Exact", "München Café 0.123456789", "2026-01-05 00:00:00 UTC"],
    "short values": ["a", "1", None, "", "0.5"],
    "empty": [None, None, None],
}


@pytest.mark.parametrize("name", SHEET_COLUMNS)
def test_a_sheet_columns_text_is_what_the_regex_rules_give_for_any_slice(name: str) -> None:
    # GIVEN a column as fastexcel writes a sheet's cells as text
    column = pa.array(SHEET_COLUMNS[name], pa.string())
    text = READER._SheetText(column)
    expected = _reference_csv_text(pa.chunked_array([column])).combine_chunks()
    # THEN the whole column, and the column a slice at a time, read as the rules give
    assert text.of(column).equals(expected)
    for size in (1, 2, 3):
        parts = [text.of(column.slice(at, size)) for at in range(0, len(column), size)]
        assert pa.concat_arrays(parts).equals(expected)


HEADER = ("order", "shipped", "paid", "amount")


def _dated_workbook(rows: list[tuple[object, ...]], header: tuple[str, ...]) -> bytes:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet, day = book.add_worksheet("Data"), book.add_format({"num_format": "yyyy-mm-dd"})
    sheet.write_string(0, 0, "Orders export")  # a title above the header
    sheet.write_row(2, 0, header)
    for r, row in enumerate(rows, start=3):
        for c, value in enumerate(row):
            if isinstance(value, dt.datetime):
                sheet.write_datetime(r, c, value, day)
            elif isinstance(value, float):
                sheet.write_number(r, c, value)
            elif value is not None:
                sheet.write_string(r, c, str(value))
    book.close()
    return buffer.getvalue()


def test_a_sheet_longer_than_a_batch_decides_dates_over_the_whole_column(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a sheet of 10 rows read 3 rows a batch: "shipped" has no date in its first batch, only midnight
    # dates later; "paid" has midnight dates first and a time of day in its last batch; "amount" a number
    # that fastexcel writes with nine decimals only in its last batch
    monkeypatch.setattr(READER, "BATCH_ROWS", 3)
    day = dt.datetime(2026, 1, 5)
    rows: list[tuple[object, ...]] = [
        (f"#{i}", day + dt.timedelta(days=i) if i >= 5 else None, day + dt.timedelta(days=i), float(i))
        for i in range(10)
    ]
    rows[9] = ("#9", day, day + dt.timedelta(hours=13, minutes=4, seconds=5), 12345678.12)
    reader = SourceReader("raw/x/book.xlsx", "xlsx", lambda: io.BytesIO(_dated_workbook(rows, HEADER)))
    batches = list(reader.batches())
    # THEN the rows come in batches, each read by what holds for its whole column
    assert [b.num_rows for b in batches] == [3, 3, 3, 1]
    got = pa.Table.from_batches(batches).to_pylist()
    shipped = ["2026-01-10", "2026-01-11", "2026-01-12", "2026-01-13", "2026-01-05"]
    assert [r["shipped"] for r in got] == [""] * 5 + shipped
    assert [r["paid"] for r in got][:2] == ["2026-01-05 00:00:00", "2026-01-06 00:00:00"]
    assert got[9]["paid"] == "2026-01-05 13:04:05"
    assert [r["amount"] for r in got] == [str(i) for i in range(9)] + ["12345678.12"]
    assert (reader.header_line, reader.preamble, reader.columns) == (3, ["Orders export", ""], list(HEADER))
    # AND every batch reads as the same sheet read in one batch
    monkeypatch.undo()
    whole = SourceReader("raw/x/book.xlsx", "xlsx", lambda: io.BytesIO(_dated_workbook(rows, HEADER)))
    assert pa.Table.from_batches(list(whole.batches())).to_pylist() == got


@pytest.mark.parametrize("kind", [pa.string(), pa.large_string()])
def test_first_bytes_from_the_buffers_equal_the_first_character_in_python(kind: pa.DataType) -> None:
    values = ["Total", "", None, "grand", "é", " x", "t", "", "Z"] * 3
    array = pa.array(values, kind).slice(4, 20)
    expected = [-1 if not v else v.encode()[0] for v in values[4:24]]
    assert _first_bytes(array).tolist() == expected
