"""dataset_profiles: streaming figures per column, a bounded and mergeable distinct sketch."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pytest

from analytics.profile import PROFILE_TABLE_SPEC, SKETCH_SIZE, DistinctSketch, ProfileAccumulator, hash_values

from .conftest import assert_matches_spec, source_for


def test_small_file_gives_exact_figures_in_column_order() -> None:
    acc = ProfileAccumulator()
    acc.update(pa.record_batch({"id": ["b", "a", None], "n": [3, 1, 2]}))
    acc.update(
        pa.record_batch({"id": ["a", "c"], "n": [None, 10], "when": pa.array([date(2024, 1, 2), date(2024, 1, 1)])})
    )
    table = acc.finish(source_for("things"))
    assert_matches_spec(table, PROFILE_TABLE_SPEC)
    rows = {r["column"]: r for r in table.to_pylist()}
    assert [r["column"] for r in table.to_pylist()] == ["id", "n", "when"]
    assert rows["id"] | {} == rows["id"]
    assert (rows["id"]["rows"], rows["id"]["nulls"], rows["id"]["distinct_estimate"]) == (5, 1, 3)
    assert (rows["id"]["min"], rows["id"]["max"]) == ("a", "c")
    assert rows["n"]["null_share"] == pytest.approx(0.2)
    assert (rows["n"]["min"], rows["n"]["max"], rows["n"]["type"]) == ("1", "10", "int64")
    # a column first seen in the second batch counts the first batch's rows as nulls
    assert (rows["when"]["rows"], rows["when"]["nulls"], rows["when"]["min"]) == (5, 3, "2024-01-01")
    assert rows["when"]["distinct_is_exact"] is True
    assert {r["ingest_date"] for r in rows.values()} == {date(2024, 6, 1)}


def test_distinct_estimate_is_close_and_memory_does_not_grow_with_rows() -> None:
    # GIVEN 400,000 rows holding 100,000 distinct values, streamed in 40 batches
    acc = ProfileAccumulator()
    rng = np.random.default_rng(0)
    values = rng.permutation(np.repeat(np.arange(100_000), 4))
    for chunk in np.array_split(values, 40):
        acc.update(pa.record_batch({"v": pa.array(chunk)}))
        # THEN the sketch never holds more than K hashes
        sketch = acc.columns["v"].sketch
        assert sketch is not None and len(sketch.hashes) <= SKETCH_SIZE
    row = acc.finish(source_for("big")).to_pylist()[0]
    assert row["rows"] == 400_000
    assert row["distinct_estimate"] == pytest.approx(100_000, rel=0.1)
    assert row["distinct_is_exact"] is False


def test_sketches_merge_to_the_sketch_of_the_union() -> None:
    a, b, both = DistinctSketch(), DistinctSketch(), DistinctSketch()
    left = hash_values(pa.array([f"x{i}" for i in range(3000)]))
    right = hash_values(pa.array([f"x{i}" for i in range(2000, 6000)]))
    assert left is not None and right is not None
    a.add(left)
    b.add(right)
    both.add(np.concatenate([left, right]))
    merged = a.merge(b)
    assert np.array_equal(merged.hashes, both.hashes)
    assert merged.estimate() == pytest.approx(6000, rel=0.1)


def test_nested_columns_have_no_distinct_estimate_but_still_count_nulls() -> None:
    acc = ProfileAccumulator()
    acc.update(pa.record_batch({"tags": pa.array([[1, 2], None, []])}))
    row = acc.finish(source_for("x")).to_pylist()[0]
    assert (row["nulls"], row["distinct_estimate"], row["min"]) == (1, None, None)


def test_the_k_smallest_distinct_hashes_are_found_under_a_threshold_as_over_everything() -> None:
    # GIVEN a million hashes: all distinct, a hundred thousand distinct, and 700 distinct
    rng = np.random.default_rng(5)
    for distinct in (1_000_000, 100_000, 700):
        values = rng.integers(0, 2**63, distinct, dtype=np.int64).astype(np.uint64) * np.uint64(2)
        hashes = values[rng.integers(0, distinct, 1_000_000)] if distinct < 1_000_000 else values
        # WHEN a sketch takes them in one go
        sketch = DistinctSketch()
        sketch.add(hashes)
        # THEN it holds the K smallest distinct hashes, as sorting every distinct one gives
        expected = np.unique(hashes)[:SKETCH_SIZE]
        assert np.array_equal(sketch.hashes, expected)


@pytest.mark.parametrize("dataset", ["orders", "ad_performance", "experiments"])
def test_built_in_pipelines_profile_the_rows_they_write(dataset: str) -> None:
    # GIVEN a generated file of a built-in dataset, run through its pipeline
    from analytics import samples
    from analytics.registry import get_pipeline, spec

    from .conftest import CollectingSink, csv_batches

    found = spec(dataset)
    assert found is not None
    pipeline = get_pipeline(dataset)
    text = {"orders": samples.orders_csv, "ad_performance": samples.ad_performance_csv}.get(
        dataset, samples.experiments_csv
    )(3000, seed=4)
    sink = CollectingSink()
    source = source_for(dataset)
    pipeline.run(iter(csv_batches(text)), source, sink)
    # THEN dataset_profiles is among its declared tables and holds one row per column of its own table,
    assert PROFILE_TABLE_SPEC in found.tables
    assert PROFILE_TABLE_SPEC in pipeline.tables(source)
    own = sink.table(found.own_table).to_pandas()
    profile = sink.table(PROFILE_TABLE_SPEC.name)
    assert_matches_spec(profile, PROFILE_TABLE_SPEC)
    by_column = {r["column"]: r for r in profile.to_pylist()}
    assert list(by_column) == [c for c in own.columns if c != "source_id"]
    # with the figures pandas gives over the clean rows written (distinct counts are exact below 1,024
    # and within 10% above)
    for name, row in by_column.items():
        values = own[name]
        assert (row["dataset"], row["source_id"], row["rows"]) == (dataset, source.source_id, len(own))
        assert row["nulls"] == int(values.isna().sum()), name
        true_distinct = values.nunique()
        if row["distinct_is_exact"]:
            assert row["distinct_estimate"] == true_distinct, name
        else:
            assert row["distinct_estimate"] == pytest.approx(true_distinct, rel=0.1), name
        present = values.dropna()
        if len(present) and not isinstance(present.iloc[0], bool | np.bool_):
            assert row["min"] == str(present.min())[:200] or row["min_number"] == pytest.approx(float(present.min()))
            assert row["max"] == str(present.max())[:200] or row["max_number"] == pytest.approx(float(present.max()))


def test_a_whole_table_profiles_as_its_batches_do_few_distinct_labels_included() -> None:
    # GIVEN 200,000 rows: labels with few values (and nulls), ids mostly distinct, numbers and dates
    from analytics.profile import profile_table

    rng = np.random.default_rng(9)
    n = 200_000
    labels = rng.choice(["web", "app", "store", None], n).tolist()
    table = pa.table(
        {
            "channel": pa.array(labels, pa.string()),
            "customer_id": pa.array([f"c{v:06d}" for v in rng.integers(0, 150_000, n)]),
            "amount": pa.array(rng.gamma(2.0, 30.0, n)),
            "quantity": pa.array(rng.integers(1, 9, n)),
            "day": pa.array(rng.integers(19000, 19400, n).astype(np.int32)).view(pa.date32()),
            "source_id": pa.array(["f"] * n),
        }
    )
    source = source_for("orders")
    # WHEN profiled whole (distinct labels found first) and batch by batch (every value hashed)
    whole = profile_table(table, source)
    acc = ProfileAccumulator()
    for batch in table.drop_columns(["source_id"]).to_batches(max_chunksize=10_000):
        acc.update(batch)
    # THEN the rows are the same, the lineage column left out
    assert whole.to_pylist() == acc.finish(source).to_pylist()
    assert whole.column("column").to_pylist() == ["channel", "customer_id", "amount", "quantity", "day"]
