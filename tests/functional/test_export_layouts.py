"""Exports as the tools write them, dropped into a dataset without a contract, through the handler."""

from __future__ import annotations

import pytest

from tests.conftest import Lake
from tests.exports import ADS_HEADER, ADS_ROWS, excel_csv, google_ads_csv, xlsx
from tests.functional.conftest import Invoke, curated_rows, iceberg_table, next_messages


def test_a_google_ads_download_with_title_and_totals_is_curated_whole_and_nothing_is_quarantined(
    lake: Lake, invoke: Invoke
) -> None:
    # GIVEN a Google Ads UI download (report name and date range above the header, Total rows below)
    lake.put("raw/google_ads_campaigns/2026-01.csv", google_ads_csv().encode())
    # WHEN the handler processes it
    assert invoke(next_messages(lake)) == {"batchItemFailures": []}
    # THEN every campaign row is curated, typed ("1,234" is 1234, "4.54%" is 0.0454), and no total is
    rows = sorted(curated_rows(lake, "google_ads_campaigns"), key=lambda r: (r["day"], r["campaign"]))
    assert [(r["campaign"], str(r["day"]), r["impr"]) for r in rows] == [
        ("Brand - Search", "2026-01-01", 1234),
        ("Total Recall", "2026-01-01", 980),
        ("Brand - Search", "2026-01-02", 1100),
        ("Generic - Shoes", "2026-01-02", 2050),
    ]
    assert [r["ctr"] for r in rows] == pytest.approx([0.0454, 0.0122, 0.0364, 0.0151])
    # AND the event counts what was left out around the table, and quarantines nothing
    [event] = lake.events(1)
    detail = event["detail"]
    assert event["detail-type"] == "Dataset Processed"
    assert detail["rows"]["input"] == len(ADS_ROWS)
    assert (detail["rows"]["preamble"], detail["rows"]["summary"], detail["rows"]["footer"]) == (2, 2, 0)
    assert detail["rows"]["rejected"] == 0 and detail["quarantine"]["rows"] == 0
    assert iceberg_table(lake, "lake_quarantine", "google_ads_campaigns") is None
    assert detail["read"] == {
        "format": "csv", "encoding": "utf-8", "delimiter": ",", "header_line": 3, "sheets": [], "sheet": None,
    }  # fmt: skip


def test_excel_csv_and_a_workbook_of_the_same_report_are_read_and_named_in_the_event(
    lake: Lake, invoke: Invoke
) -> None:
    lake.put("raw/ads_excel/2026-01.csv", excel_csv(google_ads_csv(delimiter="\t")))
    invoke(next_messages(lake))
    [event] = lake.events(1)
    assert event["detail"]["read"]["encoding"] == "utf-16" and event["detail"]["read"]["delimiter"] == "\t"
    assert event["detail"]["rows"]["summary"] == 2 and event["detail"]["rows"]["rejected"] == 0

    body = [("Brand", "2026-01-01", "1234", "56", "0.0454", "1234.56", "3", "4500")]
    lake.put(
        "raw/ads_book/2026-01.xlsx", xlsx(ADS_HEADER, body, above=["Campaign performance"], sheets=["Data", "Info"])
    )
    invoke(next_messages(lake))
    [event] = lake.events(1)
    assert event["detail-type"] == "Dataset Processed"
    assert (event["detail"]["read"]["sheets"], event["detail"]["read"]["sheet"]) == (["Data", "Info"], "Data")
    [row] = curated_rows(lake, "ads_book")
    assert (row["campaign"], str(row["day"]), row["impr"]) == ("Brand", "2026-01-01", 1234)


def test_a_sheet_missing_from_the_workbook_fails_listing_its_sheets(lake: Lake, invoke: Invoke) -> None:
    lake.put("settings/ads_book.json", b'{"sheet": "Campaigns"}')
    lake.put("raw/ads_book/2026-01.xlsx", xlsx(("a", "b"), [("x", "1")], sheets=["Data", "Info"]))
    assert invoke(next_messages(lake)) == {"batchItemFailures": []}  # a bad file is not retried
    [event] = lake.events(1)
    assert event["detail-type"] == "Dataset Processing Failed"
    message = event["detail"]["error"]["message"]
    assert "has no sheet 'Campaigns'" in message and "its sheets are 'Data', 'Info'" in message
    assert "settings/ads_book.json" in message


def test_a_title_over_rows_without_a_header_fails_saying_what_was_seen_and_quarantines_nothing(
    lake: Lake, invoke: Invoke
) -> None:
    # GIVEN a report whose title and date range sit over data rows, with the header line deleted
    text = google_ads_csv().splitlines()
    lake.put("raw/ads_noheader/2026-01.csv", "\n".join([*text[:2], *text[3:]]).encode())
    assert invoke(next_messages(lake)) == {"batchItemFailures": []}
    [event] = lake.events(1)
    assert event["detail-type"] == "Dataset Processing Failed"
    message = event["detail"]["error"]["message"]
    assert "lines 1–2 look like a title and a date range" in message
    assert 'set "header_row": 3 in settings/ads_noheader.json' in message
    assert "quoting" not in message
    assert event["detail"]["quarantine"]["rows"] == 0
    assert curated_rows(lake, "ads_noheader") == []
