"""The generic pipeline: names, types, trimming, duplicates, and nothing lost."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.base import SourceInfo
from analytics.dedupe import SeenRows
from analytics.generic import GenericPipeline, infer_type, snake_case_columns
from tests.fakes import MemorySink

SOURCE = SourceInfo(dataset="visits", source_id="abc", key="raw/visits/a.csv", ingest_date=dt.date(2026, 11, 1))


def run(*batches: dict[str, list[str]], settings: dict[str, object] | None = None) -> tuple[MemorySink, object]:
    sink = MemorySink()
    source = SourceInfo(**{**SOURCE.__dict__, "settings": settings or {}})
    result = GenericPipeline("visits").run(iter(pa.record_batch(b) for b in batches), source, sink)
    return sink, result


def test_column_names_become_unique_snake_case() -> None:
    assert snake_case_columns(["Amount Spent (USD)", "customerID", "Day", "day", "1st Touch", ""]) == [
        "amount_spent_usd",
        "customer_id",
        "day",
        "day_2",
        "c_1st_touch",
        "column_6",
    ]


def test_types_are_inferred_and_ids_with_leading_zeros_stay_text() -> None:
    sink, _ = run(
        {
            "Customer ID": ["00042", "00043", "7"],
            "Visits": ["1", " 2 ", "3"],
            "Spend": ["1.5", "2", "-0.25"],
            "Day": ["2026-01-01", "2026-02-28", "2026-12-31"],
            "Seen At": ["2026-01-01 10:00:00", "2026-01-01T11:30", "2026-01-02 00:00:00"],
            "Opted In": ["yes", "No", "TRUE"],
            "Note": ["  padded  ", "", "N/A"],
        }
    )
    table = sink.table("visits")
    assert table.schema.field("customer_id").type == pa.string()
    assert table.column("customer_id").to_pylist() == ["00042", "00043", "7"]
    assert table.column("visits").to_pylist() == [1, 2, 3]
    assert table.column("spend").to_pylist() == [1.5, 2.0, -0.25]
    assert table.column("day").to_pylist() == [
        dt.date(2026, 1, 1),
        dt.date(2026, 2, 28),
        dt.date(2026, 12, 31),
    ]
    assert table.column("seen_at").to_pylist()[1] == dt.datetime(2026, 1, 1, 11, 30)
    assert table.column("opted_in").to_pylist() == [True, False, True]
    assert table.column("note").to_pylist() == ["padded", None, None]
    assert table.column("ingest_date").to_pylist() == [SOURCE.ingest_date] * 3


def test_impossible_dates_are_not_rolled_over() -> None:
    assert infer_type(pa.array(["2026-02-30"] * 10)).label == "string"


def test_identical_rows_are_kept_and_counted_across_batches() -> None:
    # Two identical sales are two sales: without a key nothing is merged, only counted.
    sink, result = run(
        {"a": ["1", "2", "1"], "b": ["x", "y", "x"]},
        {"a": ["2", "3"], "b": ["y", "z"]},
    )
    assert sink.table("visits").column("a").to_pylist() == [1, 2, 1, 2, 3]
    assert result.duplicates_found == 2  # type: ignore[attr-defined]
    assert result.duplicates_dropped == 0  # type: ignore[attr-defined]


def test_exact_duplicates_are_dropped_across_batches_when_the_dataset_opts_in() -> None:
    sink, result = run(
        {"a": ["1", "2", "1"], "b": ["x", "y", "x"]},
        {"a": ["2", "3"], "b": ["y", "z"]},
        settings={"drop_duplicates": True},
    )
    assert sink.table("visits").column("a").to_pylist() == [1, 2, 3]
    assert result.duplicates_dropped == 2  # type: ignore[attr-defined]


def test_rows_differing_only_by_whitespace_are_duplicates_after_trimming() -> None:
    _, result = run({"a": ["1", " 1"], "b": ["x", "x "]})
    assert result.duplicates_found == 1  # type: ignore[attr-defined]


def test_a_key_in_the_settings_quarantines_rows_without_one_and_repeats_within_the_file() -> None:
    sink, result = run(
        {"SKU": ["a", "b", None, "a"], "qty": ["1", "2", "3", "4"]},
        settings={"key": "sku"},
    )
    assert sink.table("visits").column("sku").to_pylist() == ["a", "b"]
    assert sorted(r["_reason_code"] for t in sink.rejected for r in t.to_pylist()) == ["duplicate_key", "missing_key"]
    assert result.rejected_by_reason == {"missing_key": 1, "duplicate_key": 1}  # type: ignore[attr-defined]


def test_a_column_named_like_a_lineage_column_is_renamed() -> None:
    assert snake_case_columns(["Source Key", "ingested_at"]) == ["source_key_2", "ingested_at_2"]


def test_a_value_that_does_not_fit_its_column_is_quarantined_with_its_reason() -> None:
    sink, result = run({"n": [str(i) for i in range(100)]}, {"n": ["101", "lots"]})
    assert sink.table("visits").num_rows == 101
    rejected = sink.rejected[0].to_pylist()
    assert rejected == [
        {
            "n": "lots",
            "_row_number": 102,
            "_reason_code": "type_mismatch",
            "_reason": "n is not int64 like the rest of its column; fix the value or the column",
        }
    ]
    assert result.rows_rejected == 1  # type: ignore[attr-defined]


def test_seen_rows_remembers_across_many_merges() -> None:
    seen = SeenRows()
    rng = np.random.default_rng(1)
    everything = rng.integers(0, 5_000, size=20_000).astype(np.uint64)
    kept = np.concatenate(
        [everything[i : i + 700][seen.first_seen(everything[i : i + 700])] for i in range(0, 20_000, 700)]
    )
    assert sorted(kept.tolist()) == sorted(set(everything.tolist()))
    assert len(seen) == len(set(everything.tolist()))


cell = st.one_of(st.sampled_from(["", " ", "1", "01", "x", "2026-01-01", "3.5", "yes", "N/A"]), st.text(max_size=4))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(cell, cell, cell), min_size=1, max_size=60), st.integers(1, 20))
def test_no_row_is_lost(rows: list[tuple[str, str, str]], batch_size: int) -> None:
    # GIVEN any rows, split into batches of any size
    batches = [
        {
            "a": [r[0] for r in rows[i : i + batch_size]],
            "b": [r[1] for r in rows[i : i + batch_size]],
            "c": [r[2] for r in rows[i : i + batch_size]],
        }
        for i in range(0, len(rows), batch_size)
    ]
    # WHEN the generic pipeline runs
    sink, result = run(*batches)
    # THEN clean + quarantined + counted duplicates = input
    clean = sum(t.num_rows for t in sink.written.get("visits", []))
    assert clean + sink.quarantined_rows + result.duplicates_dropped == len(rows)  # type: ignore[attr-defined]
    assert result.rows_in == len(rows)  # type: ignore[attr-defined]
