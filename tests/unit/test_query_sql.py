"""How ``lake query`` reads Athena SQL before DuckDB sees it, and how it writes results (no network)."""

from __future__ import annotations

import datetime as dt
import decimal
import io
import json

import duckdb
import pyarrow as pa
import pytest

from lake.cli.querying import render, write
from query.errors import QueryError
from query.parse import parse
from query.sql import TableRef, athena_column_names, table_refs, to_duckdb


def refs(sql: str) -> list[str]:
    return [str(r) for r in table_refs(parse(sql), "lake_curated")]


def test_unqualified_tables_are_in_the_default_database_and_qualified_ones_keep_theirs() -> None:
    assert refs("SELECT * FROM orders o JOIN lake_quarantine.Orders q ON o.order_id = q.order_id") == [
        "lake_curated.orders",
        "lake_quarantine.orders",
    ]


def test_cte_names_are_not_tables_but_what_they_read_is() -> None:
    sql = "WITH recent AS (SELECT * FROM web_sessions), top AS (SELECT * FROM recent) SELECT * FROM top, recent"
    assert refs(sql) == ["lake_curated.web_sessions"]


def test_a_table_in_a_subquery_or_a_union_is_found_once() -> None:
    sql = "SELECT a FROM (SELECT a FROM t1) UNION ALL SELECT a FROM t1 WHERE a IN (SELECT a FROM lake_curated.t2)"
    assert refs(sql) == ["lake_curated.t1", "lake_curated.t2"]


def test_the_glue_catalog_name_is_accepted_and_other_catalogs_are_not() -> None:
    assert refs("SELECT * FROM awsdatacatalog.lake_curated.orders") == ["lake_curated.orders"]
    with pytest.raises(QueryError, match="catalog hive is not the lake's"):
        refs("SELECT * FROM hive.lake_curated.orders")


def test_the_rewritten_query_names_every_table_with_its_database_for_duckdb() -> None:
    tree = parse("WITH x AS (SELECT * FROM orders) SELECT 1 FROM x JOIN awsdatacatalog.lake_curated.rfm r ON 1=1")
    assert table_refs(tree, "lake_curated") == [TableRef("lake_curated", "orders"), TableRef("lake_curated", "rfm")]
    duckdb_sql = tree.sql(dialect="duckdb")
    assert "FROM lake_curated.orders" in duckdb_sql
    assert "JOIN lake_curated.rfm AS r" in duckdb_sql
    assert "awsdatacatalog" not in duckdb_sql


def test_result_columns_are_named_as_athena_names_them() -> None:
    assert athena_column_names(parse("SELECT Channel, count(*), sum(x) AS Total, t.y FROM t")) == [
        "channel",
        "_col1",
        "total",
        "y",
    ]
    assert athena_column_names(parse("SELECT * FROM t")) is None  # DuckDB's own names, lower-cased


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT a FROM t WHERE", "SQL syntax error at line 1"),
        ("SELECT 1; SELECT 2", "expected one SQL statement, got 2"),
    ],
)
def test_bad_sql_is_one_line(sql: str, message: str) -> None:
    with pytest.raises(QueryError, match=message) as raised:
        parse(sql)
    assert "\n" not in str(raised.value)
    assert "\x1b" not in str(raised.value)


RESULT = pa.table(
    {
        "day": pa.array([dt.date(2026, 3, 1), None], pa.date32()),
        "at": pa.array([dt.datetime(2026, 3, 1, 10, 30), None], pa.timestamp("us")),
        "amount": pa.array([decimal.Decimal("12.50"), None], pa.decimal128(10, 2)),
        "ratio": pa.array([0.123456789, float("nan")]),
        "ok": pa.array([True, None]),
    }
)


def formatted(fmt: str) -> str:
    out = io.StringIO()
    write(RESULT, fmt, out)
    return out.getvalue()


def test_json_lines_carry_iso_dates_exact_decimals_and_null_for_nan() -> None:
    # Decimals are JSON numbers with every digit (a reader may keep them exact).
    rows = [json.loads(line, parse_float=decimal.Decimal) for line in formatted("json").splitlines()]
    assert rows == [
        {
            "day": "2026-03-01",
            "at": "2026-03-01T10:30:00",
            "amount": decimal.Decimal("12.50"),
            "ratio": decimal.Decimal("0.123456789"),
            "ok": True,
        },
        {"day": None, "at": None, "amount": None, "ratio": None, "ok": None},
    ]


def test_csv_has_a_header_and_empty_fields_for_missing_values() -> None:
    assert formatted("csv").splitlines() == [
        "day,at,amount,ratio,ok",
        "2026-03-01,2026-03-01 10:30:00,12.50,0.123456789,true",
        ",,,nan,",
    ]


def test_the_text_table_aligns_numbers_right_and_shows_null() -> None:
    header, rule, first, second = render(RESULT).splitlines()
    assert header.split() == ["day", "at", "amount", "ratio", "ok"]
    assert first.split() == ["2026-03-01", "2026-03-01", "10:30:00", "12.50", "0.1235", "true"]
    assert second.split() == ["NULL", "NULL", "NULL", "nan", "NULL"]
    assert set(rule.replace(" ", "")) == {"-"}
    assert header.index("amount") + len("amount") == first.index("12.50") + len("12.50")


def test_integer_division_keeps_athenas_meaning_once_typed_from_the_catalog() -> None:
    tree = parse(
        "WITH a AS (SELECT * FROM ads) SELECT sum(clicks) / count(*) AS per_row, sum(spend) / 2 AS half FROM a"
    )
    table_refs(tree, "lake_curated")
    duckdb_sql = to_duckdb(tree, {"lake_curated": {"ads": {"clicks": "bigint", "spend": "double", "day": "date"}}})
    connection = duckdb.connect()
    connection.execute("CREATE SCHEMA lake_curated")
    connection.execute("CREATE TABLE lake_curated.ads (clicks BIGINT, spend DOUBLE, day DATE)")
    connection.execute("INSERT INTO lake_curated.ads VALUES (7, 5.0, DATE '2026-01-01'), (8, 1.0, DATE '2026-01-02')")
    assert connection.execute(duckdb_sql).fetchall() == [(7, 3.0)]  # 15 / 2 is 7 in Athena, not 7.5


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            "COLUMN_NOT_FOUND: line 1:8: Column 'regoin' cannot be resolved or requester is not authorized",
            "column regoin (at line 1, column 8) cannot be resolved",
        ),
        (
            "SYNTAX_ERROR: line 1:26: mismatched input '<EOF>'. Expecting: '(', 'ALL', 'ANY', 'ARRAY'",
            "SQL syntax error at line 1, column 26: mismatched input '<EOF>'; fix the query",
        ),
        (
            "TABLE_NOT_FOUND: line 1:15: Table 'awsdatacatalog.lake_curated.sale' does not exist",
            "table lake_curated.sale does not exist; did you mean lake_curated.sales?",
        ),
        (
            "SYNTAX_ERROR: line 1:14: mismatched input '#'. Expecting: ',', 'FROM', <EOF>",
            "SQL syntax error at line 1, column 14: mismatched input '#'; a column name with spaces or punctuation "
            'is written in double quotes, e.g. "Order #"; fix the query',
        ),
    ],
)
def test_athena_errors_are_one_line_in_the_users_terms(error: str, expected: str) -> None:
    from query.messages import athena_message

    message = athena_message(error, lambda ref: f"table {ref} does not exist; did you mean {ref.database}.sales?")
    assert expected in message
    assert "\n" not in message


def test_a_remembered_translation_is_never_served_for_other_column_types() -> None:
    # GIVEN one statement translated over a table whose columns are whole numbers
    sql = "SELECT clicks / impressions AS ctr FROM lake_curated.ads"
    whole = {"lake_curated": {"ads": {"clicks": "bigint", "impressions": "bigint"}}}
    first = to_duckdb(parse(sql), whole)
    # WHEN the same statement is translated again, and then over the same table with decimal columns
    again = to_duckdb(parse(sql), whole)
    fractional = to_duckdb(parse(sql), {"lake_curated": {"ads": {"clicks": "double", "impressions": "double"}}})
    # THEN the repeat is the same text, and the other types get their own: Athena divides whole
    # numbers as whole numbers (1 / 4 = 0), so only the bigint translation keeps the division whole
    assert again == first

    def run(text: str, kind: pa.DataType) -> list[tuple[object, ...]]:
        con = duckdb.connect()
        con.register("ads", pa.table({"clicks": pa.array([1], kind), "impressions": pa.array([4], kind)}))
        return con.sql(text.replace('"lake_curated"."ads"', "ads")).fetchall()

    assert run(first, pa.int64()) == [(0,)]
    assert run(fractional, pa.float64()) == [(0.25,)]
