"""Every column name a file can bring survives the lake's readers: ``lake query`` (Athena SQL
translated for DuckDB), ``lake.read``, ``lake describe`` and the report drawers.

Tables here are real Iceberg tables in a temporary folder (:mod:`tests.local_iceberg`), read by the
same scan and query code as the stand-in's; no moto, so hypothesis can try many headers.
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.adapters.staging import GLUE_NAME_LIMIT, QUARANTINE_OWN, spelled_as_stored, storable_names
from lake.cli.describe import _describe_table, render
from query.errors import QueryError
from query.local import run_on_catalog
from query.scan import scan
from query.sql import TableRef, quote
from reports import generic
from reports.base import Context, Section, Sources
from tests.local_iceberg import FolderLake, local_table

#: What exports put in headers: Shopify's, GA4's, SQL keywords, quotes, punctuation, leading digits.
ODD_NAMES = (
    "Order #", "Created at", "Lineitem name", "at", "select", 'a"b', "Total (USD)", "ça va", "1st", "`",
    "a.b", "'x'", "--", "/* c */", ";", "$1", "?", "# Sessions", "from", "order", "group", "date", "null",
    "_col0", "*", "Amount", "amount", "source_key", "_reason", "x\ny", "é" * 200,
)  # fmt: skip
names_strategy = st.one_of(
    st.sampled_from(ODD_NAMES),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12),
)


@st.composite
def headers(draw: Any) -> list[str]:
    """A header as a reader gives it: names unique as written, some differing from another by case."""
    names = list(dict.fromkeys(draw(st.lists(names_strategy, min_size=1, max_size=8))))
    for name in draw(st.lists(st.sampled_from(names), max_size=2)):
        for variant in (name.upper(), name.swapcase(), name.title()):
            if variant not in names:
                names.append(variant)
                break
    return names


def _query(lake: FolderLake, sql: str) -> pa.Table:
    return run_on_catalog(lake, sql, "lake_curated")


@pytest.fixture(scope="module")
def folder() -> Any:
    with tempfile.TemporaryDirectory(prefix="lake-names-") as path:
        yield Path(path)


@given(header=headers())
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_headers_names_are_stored_once_each_as_athena_and_glue_take_them(header: list[str]) -> None:
    stored = storable_names([*header, *QUARANTINE_OWN[:3]])
    assert len({n.casefold() for n in stored}) == len(stored)  # Athena lowercases: no two may meet
    assert stored[-3:] == list(QUARANTINE_OWN[:3])  # the lake's own columns keep their names
    for raw, name in zip(header, stored, strict=False):
        assert name and len(name.encode()) <= GLUE_NAME_LIMIT  # Glue's limit, in bytes
        assert not any(unicodedata.category(c) == "Cc" for c in name)  # one line, as Glue takes it
        if (
            raw == raw.strip()
            and not any(unicodedata.category(c) == "Cc" for c in raw)
            and raw.casefold() not in {s.casefold() for s in QUARANTINE_OWN}
        ):
            assert raw.startswith(re.sub(r"_[0-9]+$", "", name))  # kept (perhaps cut), or with a _2 suffix
    # A later file's name in another case fills the column already stored.
    assert spelled_as_stored([n.upper() for n in stored], stored) == stored


_counter = iter(range(1_000_000))


@given(header=headers())
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_name_survives_query_read_describe_and_the_report(folder: Path, header: list[str]) -> None:
    # GIVEN a quarantine table and a curated table whose columns a file's header named
    names = storable_names(header)
    text = pa.table({n: [f"v{i}", None, f"w{i}"] for i, n in enumerate(names)})
    landed = pa.array([dt.datetime(2026, 3, 1)] * 3, pa.timestamp("us"))
    quarantined = text.append_column("_reason_code", pa.array(["contract_violation"] * 3)).append_column(
        "ingested_at", landed
    )
    numbers = pa.table({n: pa.array([i, i + 1, None], pa.int64()) for i, n in enumerate(names)}).append_column(
        "ingested_at", landed
    )
    number = next(_counter)
    q_ref, c_ref = TableRef("lake_quarantine", f"q{number}"), TableRef("lake_curated", f"c{number}")
    lake = FolderLake(
        local={q_ref: local_table(folder, q_ref, quarantined), c_ref: local_table(folder, c_ref, numbers)}
    )

    # WHEN lake query reads every column, THEN each comes back, named as Athena names it, values intact
    everything = _query(lake, f"SELECT * FROM {q_ref}")
    assert everything.column_names == [n.lower() for n in quarantined.column_names]
    assert [c.to_pylist() for c in everything.columns] == [c.to_pylist() for c in quarantined.columns]
    # AND each name quoted selects its column and filters on it (a filter the scan pushes down)
    listed = ", ".join(quote(n) for n in names)
    for i, name in enumerate(names):
        found = _query(lake, f"SELECT {listed} FROM {q_ref} WHERE {quote(name)} = 'w{i}'")
        assert found.to_pylist() == [{n.lower(): f"w{j}" for j, n in enumerate(names)}]
    counted = _query(lake, f"SELECT count({quote(names[-1])}) AS n, min({quote(names[0])}) AS low FROM {c_ref}")
    assert counted.to_pylist() == [{"n": 2, "low": 0}]

    # AND lake.read's scan gives the names exactly as stored
    table = lake.table(q_ref)
    assert scan(table, table.current_snapshot()).read_all().column_names == quarantined.column_names

    # AND lake describe lists each column on a line of its own
    description = _describe_table(q_ref, table)
    assert [c.name for c in description.columns] == quarantined.column_names
    shown = render(description).splitlines()
    start = shown.index(f"columns ({len(quarantined.column_names)}):")
    rendered = shown[start + 3 : start + 3 + len(quarantined.column_names)]
    assert all(line.strip().startswith(n) for line, n in zip(rendered, quarantined.column_names, strict=True))


@given(header=headers())
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_report_draws_every_column_whatever_its_name(folder: Path, header: list[str]) -> None:
    # GIVEN a dataset's curated and quarantine tables whose columns a file's header named (the
    # charts cost a second each: fewer examples)
    names = storable_names(header)
    landed = pa.array([dt.datetime(2026, 3, 1)] * 3, pa.timestamp("us"))
    numbers = pa.table({n: pa.array([i, i + 1, None], pa.int64()) for i, n in enumerate(names)}).append_column(
        "ingested_at", landed
    )
    quarantined = numbers.append_column("_reason_code", pa.array(["contract_violation"] * 3))
    dataset = f"d{next(_counter)}"
    c_ref, q_ref = TableRef("lake_curated", dataset), TableRef("lake_quarantine", dataset)
    lake = FolderLake(
        local={c_ref: local_table(folder, c_ref, numbers), q_ref: local_table(folder, q_ref, quarantined)}
    )
    # WHEN the dataset's sections are drawn, THEN each numeric column has its histogram
    results: list[pa.Table] = []

    def query(sql: str) -> pa.Table:
        results.append(_query(lake, sql))
        return results[-1]

    ctx = Context(dataset, query, Sources(frozenset({dataset, f"lake_quarantine.{dataset}"})), None)
    histograms = Section("h", "h")
    generic._histograms(ctx, histograms)
    drawn = [n for n in names if not n.lower().startswith("_") and n.lower() not in generic.LINEAGE]
    if drawn:
        assert histograms.notes == []
        # the last statement counts every drawn column's bins (GROUPING SETS: a bin_<i> per column)
        binned = [c for c in results[-1].column_names if c.startswith("bin_")]
        assert len(binned) == len(drawn)
        assert all(results[-1].column(c).drop_null().to_pylist() for c in binned)
    # AND the quarantined rows are drawn by reason: a chart and the table of days
    quarantine = generic._quarantine(ctx)
    assert len(quarantine.parts) == 2
    assert "contract_violation" in quarantine.parts[1]


@pytest.mark.parametrize(
    ("sql", "says"),
    [
        (
            "SELECT Created at FROM {t}",
            'did you mean "Created at"? A name with spaces or punctuation is written in double',
        ),
        ("SELECT ça va FROM {t}", 'did you mean "ça va"? A name with spaces or punctuation'),
        ("SELECT Total (USD) FROM {t}", 'total(...) is not a function; did you mean the column "Total (USD)"?'),
        (
            "SELECT Order # FROM {t}",
            'a column name with spaces or punctuation is written in double quotes, e.g. "Order #"',
        ),
        ("SELECT `Order #` FROM {t}", "Athena SQL quotes a name with double quotes, not backticks"),
    ],
)
def test_an_odd_name_written_bare_is_answered_with_how_to_quote_it(folder: Path, sql: str, says: str) -> None:
    ref = TableRef("lake_quarantine", "shopify")
    header = {"Order #": ["#1"], "Created at": ["2026-03-01"], "Total (USD)": ["1"], "ça va": ["oui"]}
    lake = FolderLake(local={ref: local_table(folder, ref, pa.table(header))})
    with pytest.raises(QueryError) as raised:
        _query(lake, sql.format(t=ref))
    assert says in str(raised.value)
