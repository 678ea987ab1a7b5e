"""Athena (Presto) views as Glue stores them: the text Athena writes, read back (no network)."""

from __future__ import annotations

import base64
import json

import pytest

from query.views import (
    LatestByKey,
    PrestoView,
    ViewDefinitionError,
    is_view,
    latest_by_key_of,
    latest_by_key_sql,
    read_view,
)

VIEW = PrestoView(
    database="lake_curated",
    name="orders",
    sql="SELECT order_id, amount FROM (SELECT *, row_number() OVER (PARTITION BY order_id ORDER BY "
    "ingested_at DESC) AS lake_rank FROM lake_curated.orders_sources) WHERE lake_rank = 1",
    columns=(("order_id", "bigint"), ("amount", "double")),
)


def test_the_presto_view_text_round_trips_through_a_glue_table() -> None:
    table = VIEW.table_input()
    assert is_view(table)
    assert read_view("lake_curated", table) == VIEW


def test_the_view_text_is_what_athena_writes() -> None:
    table = VIEW.table_input()
    text = table["ViewOriginalText"]
    assert text.startswith("/* Presto View: ") and text.endswith(" */")
    document = json.loads(base64.b64decode(text.removeprefix("/* Presto View: ").removesuffix(" */")))
    assert document == {
        "originalSql": VIEW.sql,
        "catalog": "awsdatacatalog",
        "schema": "lake_curated",
        "columns": [{"name": "order_id", "type": "bigint"}, {"name": "amount", "type": "double"}],
        "owner": "lake",
        "runAsInvoker": False,
        "properties": {},
    }
    assert table["TableType"] == "VIRTUAL_VIEW"
    assert table["ViewExpandedText"] == "/* Presto View */"
    assert table["Parameters"] == {"presto_view": "true", "comment": "Presto View"}


@pytest.mark.parametrize("text", ["SELECT 1", "/* Presto View: not-base64! */", "/* Presto View: e30= */"])
def test_a_view_that_is_not_athenas_is_one_line(text: str) -> None:
    with pytest.raises(ViewDefinitionError, match=r"lake_curated\.orders") as raised:
        read_view("lake_curated", {"Name": "orders", "TableType": "VIRTUAL_VIEW", "ViewOriginalText": text})
    assert "\n" not in str(raised.value)


def test_a_keyed_view_the_lake_wrote_is_recognised_whatever_its_names_hold() -> None:
    # GIVEN the view of a keyed dataset whose header brought awkward names (a space, a keyword, a quote)
    columns = ["order id", "select", 'a"b', "source_key", "ingested_at"]
    sql = latest_by_key_sql("lake_curated", "my orders_sources", columns, ["order id", "select"])
    # THEN the engine recognises it, with its table, columns and key
    assert latest_by_key_of(sql) == LatestByKey(
        "lake_curated", "my orders_sources", tuple(columns), ("order id", "select")
    )


@pytest.mark.parametrize(
    "sql",
    [
        # the ranking without the tie-break on the source key: not what the lake writes
        'SELECT "order_id" FROM (SELECT *, row_number() OVER (PARTITION BY "order_id" ORDER BY "ingested_at" DESC) '
        'AS "lake_rank" FROM "lake_curated"."orders_sources") WHERE "lake_rank" = 1 OR "order_id" IS NULL',
        # the same words with one more filter a person added
        'SELECT "order_id" FROM (SELECT *, row_number() OVER (PARTITION BY "order_id" ORDER BY "ingested_at" DESC, '
        '"source_key" DESC) AS "lake_rank" FROM "lake_curated"."orders_sources") WHERE "lake_rank" = 1 OR '
        '"order_id" IS NULL AND "amount" > 0',
        "SELECT * FROM lake_curated.orders_sources",
        "not sql at all (",
    ],
)
def test_any_other_view_is_not_taken_for_a_keyed_one(sql: str) -> None:
    assert latest_by_key_of(sql) is None
