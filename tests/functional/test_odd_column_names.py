"""Column names as exports write them (``Order #``, ``Created at``, ``at``, ``a"b``...) survive every
reader: a refused file's rows are readable where its failure event says they are, and a kept
file's rows in its curated table, through ``lake query``, ``lake.read``, ``lake describe`` and the
report."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

import lake as lake_api
from lake.cli.describe import describe, render
from lake.cli.report import draw_now
from lake.engine import run_query
from lake.target import CliError, Target, resolve
from query.sql import quote
from tests.conftest import Lake
from tests.functional.conftest import Invoke, InvokeRefresh, next_messages
from tests.functional.test_refresh import land, models_events, monthly_orders, orders_csv, refresh_all

#: A Shopify-like header with every kind of name a header brings.
HEADER = ["Order #", "Created at", "Lineitem name", "at", "select", 'a"b', "Total (USD)", "ça va", "1st", "`"]
LINEAGE = ["source_key", "source_version", "source_id", "ingested_at"]


def _csv(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, *rows])
    return out.getvalue().encode()


def _row(i: int) -> list[str]:
    return [f"#10{i}", f"2026-03-0{i + 1}", "Mug", f"at{i}", f"sel{i}", f"q{i}", f"1{i}.50", "oui", str(i), "tick"]


@pytest.fixture
def target(lake: Lake) -> Target:
    return resolve(endpoint_url=lake.endpoints.endpoint_url)


def _read(lake: Lake, name: str) -> Any:
    return lake_api.read(name, endpoint_url=lake.endpoints.endpoint_url)


def test_a_refused_orders_exports_rows_are_readable_where_the_failure_event_says(
    lake: Lake, invoke: Invoke, target: Target
) -> None:
    # GIVEN a Shopify orders export without the columns orders needs, dropped into raw/orders/
    lake.put("raw/orders/shopify.csv", _csv(HEADER, [_row(i) for i in range(3)]))
    invoke(next_messages(lake))
    # WHEN it is refused, THEN its failure event names the quarantine table that holds its rows
    [event] = lake.events(1)
    assert event["detail-type"] == "Dataset Processing Failed"
    assert event["detail"]["quarantine"]["table"] == "lake_quarantine.orders"
    assert event["detail"]["quarantine"]["rows"] == 3
    # AND the query of issue 17 reads them, every column named as Athena names it
    result = run_query(target, "SELECT * FROM lake_quarantine.orders ORDER BY _row_number LIMIT 2")
    assert result.column_names[: len(HEADER)] == [n.lower() for n in HEADER]
    first = result.to_pylist()[0]
    assert [first[n.lower()] for n in HEADER] == _row(0)
    # AND each name, quoted, selects and filters its column
    picked = run_query(
        target,
        'SELECT "Order #", "a""b", "Total (USD)", "at", "select", "1st", "`" FROM lake_quarantine.orders '
        "WHERE \"Created at\" = '2026-03-02' AND \"ça va\" = 'oui'",
    )
    assert picked.to_pylist() == [
        {"order #": "#101", 'a"b': "q1", "total (usd)": "11.50", "at": "at1", "select": "sel1", "1st": "1", "`": "tick"}
    ]
    # AND lake.read gives the columns exactly as the header named them, then the lake's own
    frame = _read(lake, "lake_quarantine.orders")
    assert list(frame.columns) == [*HEADER, "_row_number", "_reason_code", "_reason", *LINEAGE]
    assert sorted(frame["Order #"].tolist()) == ["#100", "#101", "#102"]
    # AND lake describe lists each column on its own line
    shown = render(describe(target, "lake_quarantine.orders"))
    for name in HEADER:
        assert f"\n  {name} " in shown, name
    # AND the dataset's report draws its quarantine
    html = draw_now(target, "orders").html
    assert "could not be drawn" not in html
    assert "contract_violation" in html


def test_the_refresh_reads_and_draws_a_quarantine_with_odd_names(
    lake: Lake, invoke: Invoke, invoke_refresh: InvokeRefresh
) -> None:
    # GIVEN a refused Shopify export in the orders quarantine, then a good orders export
    lake.put("raw/orders/shopify.csv", _csv(HEADER, [_row(i) for i in range(3)]))
    invoke(next_messages(lake))
    [refused] = lake.events(1)
    assert refused["detail"]["status"] == "failed"
    [rows] = monthly_orders(months=1)
    land(lake, invoke, "raw/orders/2026-01.csv", orders_csv(rows))
    # WHEN the refresh (SQL on DuckDB over the pinned snapshots) draws the report
    refresh_all(lake, invoke_refresh)
    [models] = models_events(lake, 1)
    # THEN the models were refreshed and the quarantine section drew the refused file's rows
    assert models["detail-type"] == "Dataset Models Updated", models["detail"].get("error")
    notes = models["detail"]["report"]["notes"]
    assert not [n for n in notes if "could not be drawn" in n or "no quarantine table" in n], notes
    bucket, _, key = models["detail"]["report"]["uri"].removeprefix("s3://").partition("/")
    page = lake.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    assert "contract_violation" in page


def test_a_generic_files_odd_names_survive_curated_quarantine_view_and_report(
    lake: Lake, invoke: Invoke, target: Target
) -> None:
    # GIVEN a dataset keyed on its "Order #" column, and a file with that header, names differing
    # only by case, and one malformed line
    lake.put("settings/shop_lines.json", b'{"key": ["Order #"]}')
    header = [*HEADER, "Amount", "amount"]
    rows = [[*_row(i), str(i), str(10 * i)] for i in range(6)]
    body = _csv(header, rows) + b"#bad,1,2\n"
    lake.put("raw/shop_lines/a.csv", body)
    invoke(next_messages(lake))
    [event] = lake.events(1)
    assert event["detail"]["status"] == "succeeded", event["detail"].get("error")
    # WHEN the curated view and table are read, THEN the snake_cased names answer
    view = run_query(target, 'SELECT "order", created_at, "at", "select", a_b, c_1st FROM shop_lines ORDER BY 1')
    assert [r["order"] for r in view.to_pylist()] == ["#100", "#101", "#102", "#103", "#104", "#105"]
    assert len(_read(lake, "shop_lines")) == 6  # lake.read of a view
    assert len(_read(lake, "shop_lines_sources")) == 6
    # AND the quarantined line keeps the header's names; Amount and amount are two columns there
    frame = _read(lake, "lake_quarantine.shop_lines")
    assert list(frame.columns[: len(header)]) == [*HEADER, "Amount", "amount_2"]
    counted = run_query(
        target,
        'SELECT count(*) AS n, count("Order #") AS "order #", max(_raw_line) AS line FROM lake_quarantine.shop_lines',
    )
    assert counted.to_pylist() == [{"n": 1, "order #": 0, "line": "#bad,1,2"}]
    # AND a later (refused) file writing a name in another case fills the column already stored
    lake.put("raw/shop_lines/b.csv", _csv(["ORDER #", "AMOUNT"], [["#200", "1"], ["#201", "1", "2"]]))
    invoke(next_messages(lake))
    lake.events(1)
    later = _read(lake, "lake_quarantine.shop_lines")
    assert "ORDER #" not in later.columns and "#200" in set(later["Order #"])
    # AND the report is drawn over every column
    html = draw_now(target, "shop_lines").html
    assert "could not be drawn" not in html


GA4 = (
    "# ----------------------------------------\n"
    "# Traffic acquisition: Session primary channel group (Default channel group)\n"
    "# Account: Shop\n"
    "# Property: shop.example\n"
    "# ----------------------------------------\n"
    "#\n"
    "# Start date: 20260101\n"
    "# End date: 20260131\n"
    "Session primary channel group (Default channel group),Sessions,Engaged sessions,Engagement rate,"
    "Events per session,Event count,Key events,Total revenue\n"
    "Organic Search,1200,800,0.6667,5.2,6240,12,340.50\n"
    "Direct,900,500,0.5556,4.1,3690,8,210.00\n"
    "Paid Search,400,210,0.525,3.9,1560,5,99.90,extra\n"
)


def test_a_ga4_download_s_quarantine_reads_with_select_star(lake: Lake, invoke: Invoke, target: Target) -> None:
    # GIVEN a GA4 download (comment preamble, then a header of names with spaces and parentheses)
    # with one line that has a field too many
    lake.put("raw/ga4/traffic.csv", GA4.encode())
    invoke(next_messages(lake))
    [event] = lake.events(1)
    assert event["detail"]["quarantine"]["table"] == "lake_quarantine.ga4", event["detail"]
    # WHEN the quarantine is read as issue 17 read it, THEN it answers with every row it holds
    result = run_query(target, "SELECT * FROM lake_quarantine.ga4")
    assert result.num_rows == event["detail"]["quarantine"]["rows"] >= 1
    assert any("Paid Search" in str(r.get("_raw_line")) for r in result.to_pylist())
    # AND every column the file brought, "#" and all, is one name to a query
    for name in _read(lake, "lake_quarantine.ga4").columns:
        picked = run_query(target, f"SELECT count({quote(name)}) AS n FROM lake_quarantine.ga4")
        assert picked.num_rows == 1, name


def test_an_odd_name_written_bare_is_answered_with_how_to_quote_it(lake: Lake, invoke: Invoke, target: Target) -> None:
    lake.put("raw/orders/shopify.csv", _csv(HEADER, [_row(0)]))
    invoke(next_messages(lake))
    lake.events(1)
    with pytest.raises(CliError) as raised:
        run_query(target, "SELECT Created at FROM lake_quarantine.orders")
    message = str(raised.value)
    assert f"did you mean {quote('Created at')}? A name with spaces or punctuation is written in double quotes" in (
        message
    )
