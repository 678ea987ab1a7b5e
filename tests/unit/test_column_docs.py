"""Output columns are described once, in the specs; the docs' column tables are rendered from them."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from analytics.base import MAX_DOC_CHARS, column_doc
from analytics.orders import ORDERS
from handlers.adapters.iceberg import documented
from handlers.adapters.staging import LINEAGE_DOCS, LINEAGE_SCHEMA
from lake.cli.docs import (
    REWRITE_COMMAND,
    ColumnDocsError,
    column_meaning,
    marked_tables,
    output_specs,
    rewrite,
    stale_pages,
)


def test_the_docs_column_tables_are_the_specs() -> None:
    stale = [str(p.name) for p in stale_pages()]
    assert not stale, f"the column tables of {', '.join(stale)} differ from the specs; run `{REWRITE_COMMAND}`"


def test_every_built_in_output_table_has_its_columns_in_the_docs() -> None:
    missing = sorted(set(output_specs()) - set(marked_tables()))
    assert not missing, (
        f"no column table in docs/ for {', '.join(missing)}: add <!-- columns:NAME --><!-- /columns --> under "
        f"the table's section and run `{REWRITE_COMMAND}`"
    )


def test_every_column_is_described_within_glues_comment_limit() -> None:
    for name, spec in output_specs().items():
        assert spec.schema is not None
        for field in spec.schema:
            meaning = column_meaning(name, field)  # raises for a column without a description
            assert len(meaning) <= MAX_DOC_CHARS, f"{name}.{field.name}: Glue refuses comments over 255 characters"
    assert all(0 < len(column_doc(f)) <= MAX_DOC_CHARS for f in LINEAGE_SCHEMA)


def test_a_table_edited_by_hand_is_found_and_rendered_again(tmp_path: Path) -> None:
    # GIVEN a page whose orders table someone edited by hand
    page = tmp_path / "page.md"
    page.write_text(
        "# Orders\n\n<!-- columns:orders -->\n| column | type | meaning |\n| amount | int | cents |\n"
        "<!-- /columns -->\n"
    )
    # WHEN checked, then rewritten
    assert stale_pages(tmp_path) == [page]
    assert rewrite(tmp_path) == [page]
    # THEN it lists the spec's columns with their Athena types, partition marked, and is current
    text = page.read_text()
    assert "| amount | double | order amount |" in text
    assert "| order_month | string | **partition**: `YYYY-MM` of `order_date` |" in text
    assert "| source_id | string | the raw object the row came from" in text  # lineage words, not repeated in the spec
    assert "cents" not in text
    assert text.startswith("# Orders\n\n<!-- columns:orders -->\n\n| column |") and text.endswith(
        "\n\n<!-- /columns -->\n"
    )
    assert stale_pages(tmp_path) == []


def test_minus_leaves_out_the_columns_another_table_lists(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("<!-- columns:experiment_results_history minus:experiment_results_by_file -->\n<!-- /columns -->\n")
    rewrite(tmp_path)
    text = page.read_text()
    assert "| always_valid_p_value | double |" in text
    assert "| conversion_rate |" not in text


def test_a_marker_naming_no_table_says_which_names_there_are(tmp_path: Path) -> None:
    (tmp_path / "page.md").write_text("<!-- columns:oders -->\n<!-- /columns -->\n")
    with pytest.raises(ColumnDocsError, match=r"columns:oders --> names no output table; use one of .*orders"):
        stale_pages(tmp_path)


def test_a_column_without_a_description_is_refused_with_the_fix() -> None:
    with pytest.raises(ColumnDocsError, match=r"column tips of table orders has no description; give it one with col"):
        column_meaning("orders", pa.field("tips", pa.float64()))


def test_tables_are_created_with_the_spec_and_lineage_descriptions() -> None:
    staged = pa.schema([*(ORDERS.schema or []), ("source_key", pa.string()), ("ingested_at", pa.timestamp("us"))])
    plain = pa.schema([pa.field(f.name, f.type) for f in staged])
    docs = {f.name: column_doc(f) for f in documented(plain, ORDERS)}
    assert docs["amount"] == "order amount"
    assert docs["source_key"] == LINEAGE_DOCS["source_key"]
    assert docs["source_id"] == LINEAGE_DOCS["source_id"]
