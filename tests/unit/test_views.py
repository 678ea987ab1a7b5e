"""Athena (Presto) views as Glue stores them: the text Athena writes, read back (no network)."""

from __future__ import annotations

import base64
import json

import pytest

from query.views import PrestoView, ViewDefinitionError, is_view, read_view

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
