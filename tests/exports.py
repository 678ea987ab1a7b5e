"""Exports as the tools write them, rendered from one table: the reader's test fixtures.

The layouts follow the vendors' documentation of their downloads: a Google Ads report downloaded
from the UI ("Download > CSV") has the report's name and its date range above the header and
``Total: …`` rows under the table; "Excel CSV" is the same, UTF-16 LE with a byte-order mark and
tab-separated; a GA4 report download starts with ``#`` comment lines (report name, account,
property, start and end date) and a blank line; an ``.xlsx`` download puts the same lines in cells.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Sequence

import xlsxwriter

Table = tuple[Sequence[str], Sequence[Sequence[str]]]

ADS_HEADER = ("Campaign", "Day", "Impr.", "Clicks", "CTR", "Cost", "Conv.", "Conv. value")
ADS_ROWS = (
    ("Brand - Search", "2026-01-01", "1,234", "56", "4.54%", "1,234.56", "3.00", "4,500.00"),
    ("Total Recall", "2026-01-01", "980", "12", "1.22%", "45.10", "0.00", "0.00"),
    ("Brand - Search", "2026-01-02", "1,100", "40", "3.64%", "1,001.00", "2.00", "3,000.00"),
    ("Generic - Shoes", "2026-01-02", "2,050", "31", "1.51%", "88.20", "1.00", "150.00"),
)
ADS_TOTALS = (
    ("Total: Account", "--", "5,364", "139", "2.59%", "2,368.86", "6.00", "7,650.00"),
    ("Total: Search campaigns", "--", "5,364", "139", "2.59%", "2,368.86", "6.00", "7,650.00"),
)
ADS_PREAMBLE = ("Campaign performance", "January 1, 2026 - January 2, 2026")


def csv_text(rows: Sequence[Sequence[str]], delimiter: str = ",") -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n" if delimiter == "\t" else "\n").writerows(rows)
    return out.getvalue()


def google_ads_csv(
    header: Sequence[str] = ADS_HEADER,
    rows: Sequence[Sequence[str]] = ADS_ROWS,
    totals: Sequence[Sequence[str]] = ADS_TOTALS,
    delimiter: str = ",",
) -> str:
    """A Google Ads UI download: report name, date range, header, rows, ``Total: …`` rows."""
    return csv_text([[line] for line in ADS_PREAMBLE], delimiter) + csv_text([header, *rows, *totals], delimiter)


def excel_csv(text: str) -> bytes:
    """Google Ads' "Excel CSV": UTF-16 LE with a byte-order mark (the text must be tab-separated)."""
    return b"\xff\xfe" + text.encode("utf-16-le")


GA4_PREAMBLE = (
    "# ----------------------------------------",
    "# Pages and screens: Page title and screen class",
    "# Account: Demo Shop",
    "# Property: demo-shop.example - GA4",
    "# ----------------------------------------",
    "#",
    "# Start date: 20260101",
    "# End date: 20260131",
)


def ga4_csv(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GA4 report download: ``#`` comment lines, a blank line, then the table."""
    return "\n".join(GA4_PREAMBLE) + "\n\n" + csv_text([header, *rows])


_CANONICAL_NUMBER = re.compile(r"^-?(0|[1-9]\d{0,14})(\.\d*[1-9])?$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def xlsx(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    above: Sequence[str] = (),
    below: Sequence[Sequence[str]] = (),
    sheets: Sequence[str] = ("Report",),
    data_sheet: int = 0,
) -> bytes:
    """A workbook as a spreadsheet tool saves one: numbers as numbers, ISO dates as date cells
    (formatted as dates), other values as text; ``above`` lines in column A over the header."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    date_format = book.add_format({"num_format": "yyyy-mm-dd"})
    for index, name in enumerate(sheets):
        sheet = book.add_worksheet(name)
        if index != data_sheet:
            continue
        for r, line in enumerate(above):
            sheet.write_string(r, 0, line)
        for r, row in enumerate([header, *rows, *below], start=len(above)):
            for c, value in enumerate(row):
                if r > len(above) and _CANONICAL_NUMBER.match(value):
                    sheet.write_number(r, c, float(value))
                elif r > len(above) and _ISO_DATE.match(value):
                    sheet.write_datetime(r, c, dt.datetime.fromisoformat(value), date_format)
                elif value:
                    sheet.write_string(r, c, value)
    book.close()
    return buffer.getvalue()
