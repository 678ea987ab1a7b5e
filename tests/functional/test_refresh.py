"""The refresh stage against the stand-in: the per-file handler asks, the refresh function (in
process, as Lambda's FIFO event source mapping calls it) recomputes RFM and segments over every
order of the dataset, writes one snapshot per as_of and announces it."""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import Any

import pytest

import topology
from lake.engine import run_query
from lake.standin.server import client, provision
from lake.target import resolve
from tests.conftest import Lake, wait_until
from tests.functional.conftest import (
    Invoke,
    InvokeRefresh,
    iceberg_table,
    next_messages,
    read_rows,
    refresh_messages,
)


def orders_csv(rows: list[tuple[str, str, str, float]]) -> bytes:
    lines = ["order_id,customer_id,order_date,amount"]
    lines += [f"{oid},{cid},{day},{amount:.2f}" for oid, cid, day, amount in rows]
    return ("\n".join(lines) + "\n").encode()


def monthly_orders(months: int = 3, customers: int = 60, seed: int = 7) -> list[list[tuple[str, str, str, float]]]:
    """Orders of ``customers`` customers over ``months`` months, one list per month."""
    rng = random.Random(seed)
    out: list[list[tuple[str, str, str, float]]] = []
    number = 0
    for month in range(months):
        rows = []
        for customer in range(customers):
            for _ in range(rng.choice([0, 0, 1, 1, 2, 4])):
                number += 1
                day = dt.date(2026, 1 + month, rng.randint(1, 28))
                rows.append((f"o{number:06d}", f"c{customer:03d}", day.isoformat(), round(rng.uniform(5, 300), 2)))
        out.append(rows)
    return out


def land(lake: Lake, invoke: Invoke, key: str, body: bytes) -> dict[str, Any]:
    lake.put(key, body)
    assert invoke(next_messages(lake)) == {"batchItemFailures": []}
    [event] = lake.events(1, where=lambda e: e["detail-type"].startswith("Dataset Process"))
    assert event["detail"]["status"] == "succeeded", event["detail"].get("error")
    return event


def refresh_all(lake: Lake, invoke_refresh: InvokeRefresh) -> int:
    """Run the refresh function on every request waiting; the number of invocations. The requests
    were sent by invocations that returned in this process, so an empty receive means none is left."""
    invocations = 0
    while messages := refresh_messages(lake, wait=0):
        assert invoke_refresh(messages) == {"batchItemFailures": []}
        invocations += 1
    return invocations


def models_events(lake: Lake, count: int, timeout: float = 30) -> list[dict[str, Any]]:
    return lake.events(count, timeout=timeout, where=lambda e: e["detail-type"].startswith("Dataset Models"))


def rfm_rows(lake: Lake) -> dict[str, dict[str, Any]]:
    return {r["customer_id"]: r for r in read_rows(lake, "lake_curated", "customer_rfm").to_pylist()}


def test_monthly_files_give_the_rfm_of_the_same_orders_in_one_file(
    lake: Lake, invoke: Invoke, invoke_refresh: InvokeRefresh
) -> None:
    # GIVEN three monthly orders exports, each asking for a refresh after its commit
    months = monthly_orders()
    for number, rows in enumerate(months, start=1):
        land(lake, invoke, f"raw/orders/2026-0{number}.csv", orders_csv(rows))
    # WHEN the refresh function runs on the requests
    refresh_all(lake, invoke_refresh)
    [event] = models_events(lake, 1)
    # THEN it announces RFM and segments over all three months, with the input snapshot it read
    detail = event["detail"]
    assert event["detail-type"] == topology.DETAIL_TYPE_MODELS_UPDATED
    orders_table = iceberg_table(lake, "lake_curated", "orders_sources")
    [read] = detail["inputs"]
    assert read["table"] == "orders_sources"
    assert read["snapshot_id"] == orders_table.current_snapshot().snapshot_id
    assert detail["engine"] == "duckdb"
    assert {o["table"] for o in detail["outputs"]} == {"customer_rfm", "customer_segments"}
    facts = {m["name"]: m["metrics"] for m in detail["models"]}
    customers = {o[1] for m in months for o in m}
    assert facts["customer_segmentation"]["customers"] == len(customers)
    history = rfm_rows(lake)
    assert {r["as_of"] for r in history.values()} == {max(dt.date.fromisoformat(o[2]) for m in months for o in m)}

    # AND the same orders dropped as one file (the monthly files removed) give the same RFM
    for number in range(1, 4):
        lake.s3.delete_object(Bucket=lake.bucket, Key=f"raw/orders/2026-0{number}.csv")
        assert invoke(next_messages(lake)) == {"batchItemFailures": []}
    assert [e["detail"]["change"] for e in lake.events(3)] == ["removed"] * 3
    land(lake, invoke, "raw/orders/all.csv", orders_csv([o for m in months for o in m]))
    refresh_all(lake, invoke_refresh)
    models_events(lake, 1)
    single = rfm_rows(lake)
    assert single.keys() == history.keys()
    for customer, row in single.items():
        for column in ("orders", "order_days", "recency_days", "tenure_days", "r_score", "f_score", "m_score"):
            assert row[column] == history[customer][column], (customer, column)
        assert row["total_amount"] == pytest.approx(history[customer]["total_amount"])
        assert row["segment_name"] == history[customer]["segment_name"]
    # AND the same as_of was replaced, not doubled
    assert read_rows(lake, "lake_curated", "customer_rfm").num_rows == len(customers)


def test_a_burst_of_files_causes_few_refreshes_and_the_last_sees_every_file(
    lake: Lake, invoke: Invoke, invoke_refresh: InvokeRefresh
) -> None:
    # GIVEN 30 files committed before the refresh function gets to run, ten to an invocation of the
    # per-file function as Lambda batches them (each file still asks for its own refresh; a batch's
    # files are staged in parallel and committed in groups, the deployed path)
    for number in range(30):
        rows = [
            (f"b{number:02d}-{i}", f"k{number:02d}{i}", f"2026-03-{1 + number % 28:02d}", 10.0 + i) for i in range(2)
        ]
        lake.put(f"raw/orders/burst-{number:02d}.csv", orders_csv(rows))
    for _ in range(3):
        assert invoke(next_messages(lake, 10)) == {"batchItemFailures": []}
    processed = lake.events(30, where=lambda e: e["detail-type"].startswith("Dataset Process"))
    assert sorted(e["detail"]["source"]["key"] for e in processed) == [
        f"raw/orders/burst-{n:02d}.csv" for n in range(30)
    ]
    assert {e["detail"]["status"] for e in processed} == {"succeeded"}
    assert lake.queue_depth(lake.endpoints.refresh_queue_url) == 30
    # WHEN the refresh function works through the queue, ten requests a batch
    invocations = refresh_all(lake, invoke_refresh)
    # THEN one refresh did the work: the requests behind it found their commits covered
    assert invocations == 3
    events = lake.settled_events(where=lambda e: e["detail-type"].startswith("Dataset Models"))
    assert len(events) == 1
    assert len(rfm_rows(lake)) == 60  # every file's customers
    current = iceberg_table(lake, "lake_curated", "orders_sources").current_snapshot().snapshot_id
    assert events[0]["detail"]["inputs"][0]["snapshot_id"] == current
    # AND a request for what was already refreshed is skipped
    lake.sqs.send_message(
        QueueUrl=lake.endpoints.refresh_queue_url,
        MessageBody=json.dumps({"source": topology.REFRESH_REQUEST_SOURCE, "detail": {"dataset": "orders"}}),
        MessageGroupId="orders",
        MessageDeduplicationId="by-hand",
    )
    assert refresh_all(lake, invoke_refresh) == 1
    assert lake.settled_events() == []


def test_a_refresh_that_fails_transiently_is_retried_and_then_succeeds(
    lake: Lake, invoke: Invoke, invoke_refresh: InvokeRefresh
) -> None:
    land(lake, invoke, "raw/orders/one.csv", orders_csv(monthly_orders(1)[0]))
    # GIVEN the lake bus is gone when the refresh wants to announce (EventBridge refuses)
    topo = lake.endpoints.topology
    eventbridge = client("events", lake.endpoints.endpoint_url)
    eventbridge.remove_targets(Rule=topo.subscriber_rule_name, EventBusName=topo.bus_name, Ids=["example-subscriber"])
    eventbridge.delete_rule(Name=topo.subscriber_rule_name, EventBusName=topo.bus_name)
    eventbridge.delete_event_bus(Name=topo.bus_name)
    [request] = refresh_messages(lake)
    # WHEN the refresh runs: the record fails and stays on the queue
    response = invoke_refresh([request])
    assert response["batchItemFailures"] == [{"itemIdentifier": request["MessageId"]}]
    # AND once the bus is back, SQS delivers the request again after its visibility timeout (made
    # short here, as the stand-in's runner does with `lake up --retry-after`)
    provision(lake.endpoints.endpoint_url, lake.endpoints.topology)
    lake.sqs.change_message_visibility(
        QueueUrl=lake.endpoints.refresh_queue_url, ReceiptHandle=request["ReceiptHandle"], VisibilityTimeout=2
    )
    retried: list[dict[str, Any]] = []
    assert wait_until(lambda: retried.extend(refresh_messages(lake)) or retried, timeout=30)
    assert retried[0]["Attributes"]["ApproximateReceiveCount"] == "2"
    assert invoke_refresh(retried) == {"batchItemFailures": []}
    # THEN the second attempt refreshes and announces
    [event] = models_events(lake, 1)
    assert event["detail"]["status"] == "succeeded"
    assert len(rfm_rows(lake)) > 0


def test_too_few_customers_is_a_fact_not_a_crash(lake: Lake, invoke: Invoke, invoke_refresh: InvokeRefresh) -> None:
    rows = [(f"o{i}", f"c{i % 3}", f"2026-02-0{1 + i}", 20.0 * (i + 1)) for i in range(5)]
    land(lake, invoke, "raw/orders/tiny.csv", orders_csv(rows))
    refresh_all(lake, invoke_refresh)
    [event] = models_events(lake, 1)
    facts = {m["name"]: m["metrics"] for m in event["detail"]["models"]}
    assert facts["customer_segmentation"]["customers"] == 3
    assert facts["customer_segmentation"]["k"] == 1
    assert "fewer than the 20" in facts["customer_segmentation"]["note"]
    [segment] = read_rows(lake, "lake_curated", "customer_segments").to_pylist()
    assert (segment["segment_name"], segment["customers"]) == ("All customers", 3)


def test_the_per_file_orders_pipeline_writes_no_model_tables(lake: Lake, invoke: Invoke) -> None:
    event = land(lake, invoke, "raw/orders/one.csv", orders_csv(monthly_orders(1)[0]))
    # the orders and their profile; the models come from the refresh the commit asks for
    assert {o["table"] for o in event["detail"]["outputs"]} == {"orders_sources", "dataset_profiles"}
    assert iceberg_table(lake, "lake_curated", "customer_rfm") is None
    [request] = refresh_messages(lake)
    detail = json.loads(request["Body"])["detail"]
    assert detail["dataset"] == "orders" and detail["key"] == "raw/orders/one.csv"
    assert detail["snapshots"] == {f"lake_curated.{o['table']}": o["snapshot_id"] for o in event["detail"]["outputs"]}


def test_a_dataset_without_models_over_history_asks_for_no_refresh(lake: Lake, invoke: Invoke) -> None:
    land(lake, invoke, "raw/web/visits.csv", b"page,visits\n/a,3\n/b,4\n")
    assert lake.queue_depth(lake.endpoints.refresh_queue_url) == 0


def test_customer_value_is_refreshed_from_the_same_history(
    lake: Lake, invoke: Invoke, invoke_refresh: InvokeRefresh
) -> None:
    # GIVEN a year of orders of 600 customers, buying and lapsing as BG/NBD assumes
    from analytics import samples

    land(lake, invoke, "raw/orders/2025.csv", samples.orders_csv(6000, 600, seed=5).encode())
    # WHEN the refresh runs
    refresh_all(lake, invoke_refresh)
    [event] = models_events(lake, 1)
    facts = {m["name"]: m["metrics"] for m in event["detail"]["models"]}
    # THEN the BG/NBD and Gamma-Gamma fit is a refresher of orders too, written per as_of
    outputs = {o["table"]: o for o in event["detail"]["outputs"]}
    assert "customer_value" in outputs, facts
    value = read_rows(lake, "lake_curated", "customer_value").to_pylist()
    assert len(value) == outputs["customer_value"]["rows"] == len(rfm_rows(lake))
    assert all(0.0 <= r["p_alive"] <= 1.0 for r in value)
    assert {r["as_of"].isoformat() for r in value} == {outputs["customer_rfm"]["as_of"]}


def test_ad_exports_refresh_kpis_and_anomalies_over_their_history(
    lake: Lake, invoke: Invoke, invoke_refresh: InvokeRefresh
) -> None:
    from analytics import samples

    # GIVEN an ad-platform export
    land(lake, invoke, "raw/ad_performance/meta.csv", samples.ad_performance_csv(3_000, seed=3).encode())
    # WHEN the refresh runs
    refresh_all(lake, invoke_refresh)
    [event] = models_events(lake, 1)
    # THEN the KPI history and its anomalies are written for the newest day, from the keyed view
    outputs = {o["table"]: o for o in event["detail"]["outputs"]}
    assert set(outputs) == {"campaign_kpis_history", "kpi_anomalies_history"}
    kpis = read_rows(lake, "lake_curated", "campaign_kpis_history")
    assert kpis.num_rows == outputs["campaign_kpis_history"]["rows"] > 0
    [read] = event["detail"]["inputs"]
    assert read["table"] == "ad_performance_sources"


def exposures_csv(rows: list[tuple[str, str, str, bool, float]]) -> bytes:
    lines = ["experiment_id,user_id,variant,converted,revenue"]
    lines += [f"{e},{u},{v},{'true' if c else 'false'},{r:.2f}" for e, u, v, c, r in rows]
    return ("\n".join(lines) + "\n").encode()


def test_an_experiment_split_over_three_files_has_the_statistics_of_one_file(
    lake: Lake, invoke: Invoke, invoke_refresh: InvokeRefresh
) -> None:
    import scipy.stats

    # GIVEN an experiment's exposure log in three parts, one user logged in both variants (in two
    # different files: no single file shows the conflict)
    rng = random.Random(11)
    rows = []
    for n in range(900):
        variant = "control" if n % 2 else "treatment"
        converted = rng.random() < (0.10 if variant == "control" else 0.16)
        rows.append(("checkout", f"u{n:04d}", variant, converted, round(rng.uniform(10, 90), 2) if converted else 0.0))
    parts = [rows[0:300], rows[300:600], rows[600:900]]
    parts[2].append(("checkout", "u0001", "treatment", True, 50.0))  # u0001 is control in the first part
    for number, part in enumerate(parts, start=1):
        land(lake, invoke, f"raw/experiments/part-{number}.csv", exposures_csv(part))
    # WHEN the refresh runs
    refresh_all(lake, invoke_refresh)
    [event] = models_events(lake, 1)
    detail = event["detail"]
    assert detail["status"] == "succeeded", detail.get("error")
    assert {o["table"] for o in detail["outputs"]} == {"experiment_results_history", "experiment_crossed_users"}
    history = {r["variant"]: r for r in read_rows(lake, "lake_curated", "experiment_results_history").to_pylist()}
    # the name a user queries, experiment_results, read through the query engine (a view over the history)
    target = resolve(endpoint_url=lake.endpoints.endpoint_url)
    obvious = run_query(target, "SELECT * FROM experiment_results").to_pylist()
    # AND a request asking again with nothing new is skipped, though the refresh wrote (and reads
    # back) its own results table since
    from handlers.adapters.refresh_requests import RefreshRequest

    again = RefreshRequest("experiments", reason="asked again")
    lake.sqs.send_message(
        QueueUrl=lake.endpoints.refresh_queue_url,
        MessageBody=again.body(),
        MessageGroupId="experiments",
        MessageDeduplicationId="asked-again",
    )
    assert refresh_all(lake, invoke_refresh) == 1
    assert lake.settled_events(where=lambda e: e["detail-type"].startswith("Dataset Models")) == []
    # THEN the crossed user is left out and listed
    crossed = read_rows(lake, "lake_curated", "experiment_crossed_users").to_pylist()
    assert [(r["experiment_id"], r["user_id"], r["variants"]) for r in crossed] == [
        ("checkout", "u0001", "control,treatment")
    ]
    kept = [r for r in rows if r[1] != "u0001"]
    # AND the counts and the pooled z-test are those of every other user, by scipy on the raw rows
    counts = {v: (sum(1 for r in kept if r[2] == v), sum(1 for r in kept if r[2] == v and r[3])) for v in history}
    for variant, (users, conversions) in counts.items():
        assert (history[variant]["users"], history[variant]["conversions"]) == (users, conversions)
    (n_t, x_t), (n_c, x_c) = counts["treatment"], counts["control"]
    pooled = (x_t + x_c) / (n_t + n_c)
    z = (x_t / n_t - x_c / n_c) / (pooled * (1 - pooled) * (1 / n_t + 1 / n_c)) ** 0.5
    assert history["treatment"]["z_statistic"] == pytest.approx(z, rel=1e-9)
    assert history["treatment"]["p_value"] == pytest.approx(2 * scipy.stats.norm.sf(abs(z)), rel=1e-9)
    # AND the always-valid interval contains the fixed-horizon one and is reported with its method
    treatment = history["treatment"]
    assert treatment["always_valid_ci_low"] <= treatment["diff_ci_low"] <= treatment["diff_ci_high"]
    assert treatment["diff_ci_high"] <= treatment["always_valid_ci_high"]
    assert treatment["always_valid_p_value"] >= treatment["p_value"]
    assert treatment["sequential_method"]

    # AND the same users dropped as one file (the parts removed) give the same figures
    for number in range(1, 4):
        lake.s3.delete_object(Bucket=lake.bucket, Key=f"raw/experiments/part-{number}.csv")
        assert invoke(next_messages(lake)) == {"batchItemFailures": []}
    assert [e["detail"]["change"] for e in lake.events(3)] == ["removed"] * 3
    land(lake, invoke, "raw/experiments/all.csv", exposures_csv(kept))
    refresh_all(lake, invoke_refresh)
    models_events(lake, 1)
    single = {r["variant"]: r for r in read_rows(lake, "lake_curated", "experiment_results_history").to_pylist()}
    # AND after the split log, experiment_results showed one row per variant with the single file's statistics
    assert sorted(r["variant"] for r in obvious) == sorted(single)
    for row in obvious:
        for column in ("users", "conversions", "conversion_rate", "p_value", "always_valid_p_value"):
            assert row[column] == pytest.approx(single[row["variant"]][column]), (row["variant"], column)
    for variant, row in single.items():
        for column in ("users", "conversions", "conversion_rate", "z_statistic", "p_value", "revenue_per_user",
                       "always_valid_p_value", "always_valid_ci_low", "always_valid_ci_high"):  # fmt: skip
            assert row[column] == pytest.approx(history[variant][column]), (variant, column)
    assert read_rows(lake, "lake_curated", "experiment_crossed_users").num_rows == 0


def ad_rows(day: dt.date, spend: float) -> list[str]:
    """One campaign-day in two ad groups, KPI ratios steady whatever the spend."""
    rows = []
    for group in ("g1", "g2"):
        half = spend / 2
        impressions = round(half * 100)
        clicks = round(impressions * 0.03)
        rows.append(
            f"{day.isoformat()},Google,brand,{group},{impressions},{clicks},{half:.2f},{clicks // 10},{half * 5:.2f}"
        )
    return rows


AD_HEADER = "date,channel,campaign,ad_group,impressions,clicks,spend,conversions,revenue"


def test_a_spike_in_a_daily_ad_file_is_found_against_the_days_earlier_files_brought(
    lake: Lake, invoke: Invoke, invoke_refresh: InvokeRefresh
) -> None:
    # GIVEN five weeks of steady spend in one export, then a one-day export with 4x the spend
    rng = random.Random(5)
    start = dt.date(2026, 3, 2)
    steady = [round(100 * (1 + rng.gauss(0, 0.04)) * 50) / 50 for _ in range(35)]
    history = [row for d, spend in enumerate(steady) for row in ad_rows(start + dt.timedelta(d), spend)]
    spike_day = start + dt.timedelta(35)
    land(lake, invoke, "raw/ad_performance/weeks.csv", "\n".join([AD_HEADER, *history, ""]).encode())
    land(lake, invoke, "raw/ad_performance/day.csv", "\n".join([AD_HEADER, *ad_rows(spike_day, 420.0), ""]).encode())
    # THEN the one-day file alone flags nothing: one day is no history
    per_file = read_rows(lake, "lake_curated", "kpi_anomalies_by_file").to_pylist()
    day_rows = [r for r in per_file if r["source_key"] == "raw/ad_performance/day.csv"]
    assert day_rows and not any(r["is_anomaly"] for r in day_rows)
    # WHEN the refresh scores the history of both files
    refresh_all(lake, invoke_refresh)
    [event] = models_events(lake, 1)
    assert event["detail"]["status"] == "succeeded", event["detail"].get("error")
    # THEN the spike is found on its day, against the trailing 28 days the other file brought
    anomalies = read_rows(lake, "lake_curated", "kpi_anomalies_history").to_pylist()
    spend = [r for r in anomalies if r["metric"] == "spend"]
    assert [r["date"] for r in spend] == [spike_day]
    expected = sorted(steady[-28:])
    median = (expected[13] + expected[14]) / 2
    assert spend[0]["expected"] == pytest.approx(median)
    assert spend[0]["history_days"] == 28
    # AND the name a marketer queries, kpi_anomalies, answers over every file: the spike is there
    target = resolve(endpoint_url=lake.endpoints.endpoint_url)
    found = run_query(target, "SELECT date, metric FROM kpi_anomalies WHERE metric = 'spend'").to_pylist()
    assert found == [{"date": spike_day, "metric": "spend"}]
    kpis = run_query(
        target, "SELECT count(DISTINCT date) AS days, count(DISTINCT as_of) AS snapshots FROM campaign_kpis"
    )
    assert kpis.to_pylist() == [{"days": 36, "snapshots": 1}]


def test_a_refresh_reads_a_table_a_later_file_widened(
    lake: Lake, invoke: Invoke, invoke_refresh: InvokeRefresh
) -> None:
    # GIVEN orders whose amounts were whole numbers in the first file and decimals in the second
    # (the table's amount column is widened from bigint to double by the second commit)
    months = monthly_orders(2)
    whole = [(o, c, d, float(round(a))) for o, c, d, a in months[0]]
    lines = ["order_id,customer_id,order_date,amount", *(f"{o},{c},{d},{int(a)}" for o, c, d, a in whole)]
    land(lake, invoke, "raw/orders/whole.csv", ("\n".join(lines) + "\n").encode())
    land(lake, invoke, "raw/orders/decimal.csv", orders_csv(months[1]))
    # WHEN the refresh runs over both
    refresh_all(lake, invoke_refresh)
    [event] = models_events(lake, 1)
    # THEN it succeeds, and each customer's spend is the sum of both files' amounts
    assert event["detail"]["status"] == "succeeded", event["detail"].get("error")
    totals: dict[str, float] = {}
    for _, customer, _, amount in [*whole, *months[1]]:
        totals[customer] = totals.get(customer, 0.0) + amount
    rfm = rfm_rows(lake)
    assert rfm.keys() == totals.keys()
    for customer, total in totals.items():
        assert rfm[customer]["total_amount"] == pytest.approx(total), customer


def test_a_warm_refresh_function_sees_the_tables_its_earlier_refresh_created(
    lake: Lake, invoke: Invoke, invoke_refresh: InvokeRefresh
) -> None:
    # GIVEN an experiment's first exposure file, refreshed: that refresh creates the results table
    rows = [("checkout", f"u{n:04d}", "control" if n % 2 else "treatment", n % 7 == 0, 0.0) for n in range(400)]
    land(lake, invoke, "raw/experiments/part-1.csv", exposures_csv(rows[:200]))
    refresh_all(lake, invoke_refresh)
    [first] = models_events(lake, 1)
    # THEN its report draws the results it just wrote (the table did not exist when it started)
    assert first["detail"]["report"] is not None, first["detail"]["models"]
    assert not [n for n in first["detail"]["report"]["notes"] if "experiment_results_history" in n]
    # WHEN a second file lands and the same (warm) function refreshes again
    land(lake, invoke, "raw/experiments/part-2.csv", exposures_csv(rows[200:]))
    refresh_all(lake, invoke_refresh)
    [second] = models_events(lake, 1)
    # THEN it read back the results table its first refresh created (the running minimum's input)
    assert "experiment_results_history" in {i["table"] for i in second["detail"]["inputs"]}


def test_an_older_lakes_per_file_table_makes_way_for_the_view_of_the_history(
    lake: Lake, invoke: Invoke, invoke_refresh: InvokeRefresh
) -> None:
    from query.catalog import glue_catalog
    from query.views import is_view

    rows = [("checkout", f"u{n:03d}", "control" if n % 2 else "treatment", n % 5 == 0, 0.0) for n in range(200)]
    land(lake, invoke, "raw/experiments/old.csv", exposures_csv(rows))
    # GIVEN a lake from before the rule: its per-file results are a *table* named experiment_results
    catalog = glue_catalog(lake.glue, lake.endpoints.region, lake.endpoints.endpoint_url)
    catalog.rename_table(("lake_curated", "experiment_results_by_file"), ("lake_curated", "experiment_results"))
    # WHEN the refresh runs
    refresh_all(lake, invoke_refresh)
    [event] = models_events(lake, 1)
    assert event["detail"]["status"] == "succeeded", event["detail"].get("error")
    # THEN experiment_results is the view over the history, and the old per-file rows kept their table
    assert is_view(lake.glue.get_table(DatabaseName="lake_curated", Name="experiment_results")["Table"])
    kept = read_rows(lake, "lake_curated", "experiment_results_by_file")
    assert sorted(kept.column("variant").to_pylist()) == ["control", "treatment"]
    target = resolve(endpoint_url=lake.endpoints.endpoint_url)
    assert run_query(target, "SELECT count(*) AS n FROM experiment_results").to_pylist() == [{"n": 2}]
