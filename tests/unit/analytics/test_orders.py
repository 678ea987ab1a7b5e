"""orders: rejection reasons, RFM figures worked by hand, quintile ties, planted segments."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score

from analytics import samples
from analytics.base import QUARANTINE_REASON, QUARANTINE_REASON_CODE, QUARANTINE_ROW_NUMBER
from analytics.orders import (
    CUSTOMER_RFM,
    CUSTOMER_SEGMENTS,
    ORDERS,
    OrdersPipeline,
    customer_features_table,
    customer_tables,
    name_segments,
    quintile_scores,
    refresh_customers,
    rfm_from_features,
    segment_customers,
)

from .conftest import CollectingSink, RunCsv, assert_matches_spec, source_for

HEADER = "Order ID,Customer ID,Order Date,Total,Qty,Channel,Country"


def filler(count: int) -> list[str]:
    return [f"F{i},9{i:05d},2024-01-31 10:00:00,10.00,1,web,US" for i in range(count)]


def test_every_rejection_reason_is_given_to_the_row_built_for_it(run_csv: RunCsv) -> None:
    built = [
        ("O1,000123,2024-01-01 09:00:00,$25.00,1,Web,US", None),
        ("O2,,2024-01-01,25.00,1,web,US", "missing_customer_id"),
        ("O3,000124,,25.00,1,web,US", "missing_date"),
        ("O4,000125,yesterday,25.00,1,web,US", "invalid_date"),
        ("O5,000126,2024-01-02,,1,web,US", "missing_value"),
        ("O6,000127,2024-01-02,12 dollars,1,web,US", "invalid_number"),
        ("O7,000128,2024-01-02,-5.00,1,web,US", "negative_amount"),
        ("O8,000129,2024-01-02,5.00,1.5,web,US", "invalid_number"),
        ("O9,000130,2024-01-02,5.00,-1,web,US", "negative_value"),
    ]
    text = "\n".join([HEADER, *(row for row, _ in built), *filler(40)]) + "\n"
    result, sink = run_csv(OrdersPipeline("orders"), text)
    rejected = sink.quarantined()
    got = dict(
        zip(
            rejected.column(QUARANTINE_ROW_NUMBER).to_pylist(),
            rejected.column(QUARANTINE_REASON_CODE).to_pylist(),
            strict=True,
        )
    )
    assert got == {i: code for i, (_, code) in enumerate(built, start=1) if code}
    assert result.rows_rejected == 8
    negative = rejected.filter(pc.equal(rejected.column(QUARANTINE_ROW_NUMBER), 7))
    assert "amount '-5.00' is negative" in negative.column(QUARANTINE_REASON)[0].as_py()
    orders = sink.table("orders")
    assert orders.num_rows == 41
    first = orders.filter(pc.equal(orders.column("order_id"), "O1")).to_pylist()[0]
    # leading zeros are kept; timestamps become the order date; the month is the partition
    assert first["customer_id"] == "000123"
    assert first["order_date"] == date(2024, 1, 1)
    assert first["order_month"] == "2024-01"
    assert first["channel"] == "web"


def test_rfm_figures_equal_the_hand_worked_ones(run_csv: RunCsv) -> None:
    # GIVEN customer 007 with three orders on two days, and customer 042 with one order on the last day
    text = (
        "\n".join(
            [
                "customer_id,order_date,amount",
                "007,2024-01-01,10.00",
                "007,2024-01-01 18:00:00,20.00",
                "007,2024-01-10,30.00",
                "042,2024-01-31,5.00",
            ]
        )
        + "\n"
    )
    _, sink = run_csv(OrdersPipeline("orders"), text)
    rfm_table, segments, _ = customer_tables(sink.table("orders"))
    rfm = {row["customer_id"]: row for row in rfm_table.to_pylist()}
    # THEN as_of is the last order date and each figure is what it should be
    a = rfm["007"]
    assert a["as_of"] == date(2024, 1, 31)
    assert (a["first_order_date"], a["last_order_date"]) == (date(2024, 1, 1), date(2024, 1, 10))
    assert (a["orders"], a["order_days"], a["total_amount"], a["avg_order_amount"]) == (3, 2, 60.0, 20.0)
    assert (a["recency_days"], a["tenure_days"]) == (21, 30)
    b = rfm["042"]
    assert (b["orders"], b["recency_days"], b["tenure_days"]) == (1, 0, 0)
    # two customers: too few to segment, everyone is in segment 0
    assert {r["segment_name"] for r in rfm.values()} == {"All customers"}
    assert segments.to_pylist()[0]["customers"] == 2


def test_quintile_ties_are_broken_by_customer_id_deterministically() -> None:
    values = np.zeros(10)
    tie_break = np.array([9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
    assert quintile_scores(values, tie_break).tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert quintile_scores(np.arange(10.0), np.zeros(10)).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_planted_clusters_are_recovered() -> None:
    # GIVEN five well-separated planted RFM segments
    features, truth = samples.planted_rfm(per_segment=200, seed=3)
    # WHEN segmented
    seg = segment_customers(features["recency_days"], features["orders"], features["total_amount"])
    # THEN the clusters match the planted ones (adjusted Rand index ≥ 0.9) and k is 5
    assert seg.k == 5
    assert adjusted_rand_score(truth, seg.labels) >= 0.9
    # and the planted best customers (label 0) are the Champions, the lapsed one-timers Hibernating
    champions = {seg.names[int(x)] for x in seg.labels[truth == 0]}
    assert champions == {"Champions"}
    assert {seg.names[int(x)] for x in seg.labels[truth == 4]} == {"Hibernating"}


def test_segmentation_is_deterministic() -> None:
    features, _ = samples.planted_rfm(per_segment=100, seed=4)
    a = segment_customers(features["recency_days"], features["orders"], features["total_amount"])
    b = segment_customers(features["recency_days"], features["orders"], features["total_amount"])
    assert np.array_equal(a.labels, b.labels) and a.silhouette == b.silhouette


def test_segment_names_follow_centroid_ranks() -> None:
    # recency (lower is better), frequency, monetary of four clusters
    names = name_segments(
        np.array([5.0, 400.0, 300.0, 8.0]),
        np.array([30.0, 1.0, 12.0, 1.0]),
        np.array([3000.0, 40.0, 900.0, 50.0]),
    )
    assert names == ["Champions", "Hibernating", "At risk", "New"]


def test_a_recent_cluster_is_never_called_hibernating() -> None:
    # GIVEN three clusters: frequent buyers, lapsed light buyers, and recent one-or-two-order buyers,
    # where the recent and the lapsed ones tie on the sum of their R, F and M ranks
    # (the recent one first: a tie goes to the lower cluster index)
    names = name_segments(
        np.array([47.0, 24.0, 417.0]),
        np.array([20.0, 1.9, 2.9]),
        np.array([2308.0, 115.0, 165.0]),
    )
    # THEN the lapsed cluster is Hibernating and the recent one New
    assert names == ["Champions", "New", "Hibernating"]


def test_duplicate_order_ids_keep_the_last_row(run_csv: RunCsv) -> None:
    text = (
        "\n".join(
            [
                HEADER,
                "O1,000123,2024-01-01,25.00,1,web,US",
                "O1,000123,2024-01-01,25.00,1,web,US",
                "O1,000123,2024-01-01,30.00,1,web,US",
            ]
        )
        + "\n"
    )
    result, sink = run_csv(OrdersPipeline("orders"), text)
    assert sink.table("orders").column("amount").to_pylist() == [30.0]
    assert result.duplicates_dropped == 2


def test_generated_orders_pipeline_outputs_match_specs_and_facts(run_csv: RunCsv) -> None:
    text = samples.orders_csv(6000, 600, seed=2)
    _, sink = run_csv(OrdersPipeline("orders"), text)
    # RFM and segments come from the refresh stage; the file's profile is written with its orders
    assert set(sink.written) == {"orders", "dataset_profiles"}
    rfm, segments, facts = customer_tables(sink.table("orders"))
    for spec, table in ((ORDERS, sink.table("orders")), (CUSTOMER_RFM, rfm), (CUSTOMER_SEGMENTS, segments)):
        assert_matches_spec(table, spec)
    assert rfm.num_rows == pc.count_distinct(sink.table("orders").column("customer_id")).as_py()
    assert all(len(c) == 7 for c in rfm.column("customer_id").to_pylist())  # zero-padded ids kept
    assert sum(segments.column("customers").to_pylist()) == rfm.num_rows
    assert pc.sum(segments.column("share")).as_py() == pytest.approx(1.0)
    fact = next(f for f in facts if f.name == "customer_segmentation")
    assert fact.metrics["k"] in (3, 4, 5, 6) and fact.metrics["silhouette"] is not None


kind = st.sampled_from(["good", "good", "copy", "same_id", "no_customer", "bad_amount", "bad_date"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(kind, st.integers(0, 6)), min_size=1, max_size=40), with_ids=st.booleans())
def test_no_row_is_lost(run_csv: RunCsv, rows: list[tuple[str, int]], with_ids: bool) -> None:
    lines: list[str] = []
    for i, (k, c) in enumerate(rows):
        if k == "copy" and lines:
            lines.append(lines[-1])
            continue
        order_id = f"O{c}" if k == "same_id" else f"N{i}"
        customer = "" if k == "no_customer" else f"{c:04d}"
        amount = "abc" if k == "bad_amount" else f"{i}.50"
        day = "2024-02-31" if k == "bad_date" else f"2024-01-{1 + c:02d}"
        lines.append(f"{order_id + ',' if with_ids else ''}{customer},{day},{amount}")
    header = ("order_id," if with_ids else "") + "customer_id,order_date,amount"
    result, sink = run_csv(OrdersPipeline("orders", tolerance=1.0), "\n".join([header, *lines]) + "\n")
    clean = sink.table("orders").num_rows if "orders" in sink.written else 0
    assert clean + sink.quarantined_rows + result.duplicates_dropped == result.rows_in == len(lines)


def test_typed_input_from_parquet_or_json_lines_is_accepted() -> None:
    # GIVEN typed columns: numeric customer ids, timestamps, float amounts
    batch = pa.record_batch(
        {
            "customer_id": pa.array([42, 42, 7], pa.int64()),
            "order_date": pa.array(
                [datetime(2024, 1, 1, 9), datetime(2024, 1, 3, 23, 59), datetime(2024, 1, 3)],
                pa.timestamp("us"),
            ),
            "amount": pa.array([10.0, 20.0, 5.5]),
        }
    )
    sink = CollectingSink()
    # WHEN processed
    result = OrdersPipeline("orders").run(iter([batch]), source_for("orders"), sink)
    # THEN ids become text, timestamps dates, and RFM is computed as for CSV
    assert result.rows_rejected == 0
    rfm = {r["customer_id"]: r for r in customer_tables(sink.table("orders"))[0].to_pylist()}
    assert rfm["42"]["orders"] == 2 and rfm["42"]["order_days"] == 2 and rfm["42"]["recency_days"] == 0
    assert sink.table("orders").column("order_date").to_pylist()[1] == date(2024, 1, 3)


def test_rfm_from_sql_features_equals_rfm_from_the_orders_themselves(run_csv: RunCsv) -> None:
    # GIVEN generated clean orders, and the per-customer features the refresh's SQL computes from them
    import duckdb

    from analytics.orders import CUSTOMER_FEATURES_SQL

    _, sink = run_csv(OrdersPipeline("orders"), samples.orders_csv(3000, 300, seed=4))
    orders = sink.table("orders")
    connection = duckdb.connect()
    connection.register("orders_arrow", orders)
    features = connection.sql(CUSTOMER_FEATURES_SQL.replace("FROM orders", "FROM orders_arrow")).to_arrow_table()
    # WHEN RFM is computed from the features (the refresh) and from the orders (one pass)
    from_features, segments_a, _ = rfm_from_features(features)
    from_orders, segments_b, _ = customer_tables(orders)
    # THEN every customer's figures, scores and segment are the same
    assert from_features.drop_columns(["total_amount", "avg_order_amount"]).equals(
        from_orders.drop_columns(["total_amount", "avg_order_amount"])
    )
    assert np.allclose(from_features.column("total_amount").to_numpy(), from_orders.column("total_amount").to_numpy())
    assert segments_a.column("customers").equals(segments_b.column("customers"))


def test_the_refresher_reports_an_empty_history_as_a_fact() -> None:
    empty = customer_features_table([], [], [], [], [], [])
    result = refresh_customers(lambda sql: empty)
    assert result.tables == ()
    [fact] = result.facts
    assert fact.metrics["customers"] == 0 and "nothing to segment" in str(fact.metrics["note"])
