"""Built-in datasets through the real handler: contracts, models, scoring with models users bring."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from analytics import samples
from tests.conftest import Lake
from tests.functional.conftest import (
    Invoke,
    InvokeRefresh,
    curated_rows,
    next_messages,
    quarantine_rows,
    refresh_messages,
)

ROOT = Path(__file__).parent.parent.parent


def outputs(event: dict) -> dict[str, int]:  # type: ignore[type-arg]
    # A keyed dataset's rows live in <table>_sources, queried through the view <table>.
    return {o.get("view") or o["table"]: o["rows"] for o in event["detail"]["outputs"]}


def test_an_ad_platform_export_becomes_clean_rows_kpis_and_anomalies(lake: Lake, invoke: Invoke) -> None:
    # GIVEN a Meta-style export with currency strings, US dates and a few bad rows
    lake.put("raw/ad_performance/meta-2026-q3.csv", samples.ad_performance_csv(3_000, seed=3).encode())
    # WHEN it is processed
    assert invoke(next_messages(lake)) == {"batchItemFailures": []}
    [event] = lake.events(1)
    # THEN the three tables and the file's profile are published and catalogued, bad rows quarantined
    assert event["detail-type"] == "Dataset Processed", event["detail"].get("error")
    tables = outputs(event)
    assert set(tables) == {"ad_performance", "campaign_kpis_by_file", "kpi_anomalies_by_file", "dataset_profiles"}
    assert tables["dataset_profiles"] == 11  # one row per column of ad_performance (lineage left out)
    detail = event["detail"]
    assert detail["quarantine"]["rows"] > 0
    assert (
        detail["rows"]["input"]
        == tables["ad_performance"] + detail["rows"]["rejected"] + detail["rows"]["duplicates_dropped"]
    )
    for table in tables:
        lake.glue.get_table(DatabaseName="lake_curated", Name=table)
    kpis = curated_rows(lake, "campaign_kpis_by_file")
    assert kpis and all(r["ctr"] is None or 0 <= r["ctr"] <= 1 for r in kpis)
    facts = {m["name"]: m["metrics"] for m in detail["models"]}
    assert facts["kpi_anomalies"]["series"] > 0
    assert facts["cleaning"]["date_order"] == "MDY"  # US dates, decided for the whole file


def test_orders_are_segmented_and_scored_by_the_model_the_user_published(
    lake: Lake, invoke: Invoke, invoke_refresh: InvokeRefresh, tmp_path: Path
) -> None:
    # GIVEN the example propensity model, trained and published under models/orders/; it scores
    # customer_rfm, which the refresh stage recomputes over every order of the dataset
    subprocess.run(
        [sys.executable, str(ROOT / "examples/train_propensity_model.py"), str(tmp_path), "--orders", "5000"],
        check=True,
        capture_output=True,
    )
    for name in ("model.skops", "manifest.json"):
        lake.put(f"models/orders/{name}", (tmp_path / name).read_bytes())
    lake.sqs.purge_queue(QueueUrl=lake.endpoints.queue_url)
    # AND an orders export lands
    lake.put("raw/orders/2026-10.csv", samples.orders_csv(4_000, seed=5).encode())
    assert invoke(next_messages(lake)) == {"batchItemFailures": []}
    [event] = lake.events(1)
    assert event["detail-type"] == "Dataset Processed", event["detail"].get("error")
    assert "orders_scores" not in outputs(event)  # nothing of this model for the per-file stage
    # WHEN the refresh runs
    assert invoke_refresh(refresh_messages(lake)) == {"batchItemFailures": []}
    [refreshed] = lake.events(1)
    assert refreshed["detail-type"] == "Dataset Models Updated", refreshed["detail"].get("error")
    tables = outputs(refreshed)
    # THEN every customer of customer_rfm has a score from the user's model
    assert tables["customer_rfm_scores"] == tables["customer_rfm"] > 0
    scores = curated_rows(lake, "customer_rfm_scores")
    assert all(0.0 <= r["score"] <= 1.0 for r in scores if r["score"] is not None)
    assert {r["model_name"] for r in scores} == {"repeat_purchase_propensity"}
    facts = {m["name"]: m for m in refreshed["detail"]["models"]}
    assert facts["repeat_purchase_propensity"]["metrics"]["status"] == "scored"
    customers = {r["customer_id"] for r in curated_rows(lake, "customer_rfm")}
    assert {r["key"] for r in scores} == customers
    assert any(c.startswith("0") for c in customers)  # ids keep their leading zeros


def test_a_model_with_an_untrusted_type_is_refused_and_the_data_still_published(
    lake: Lake, invoke: Invoke, invoke_refresh: InvokeRefresh
) -> None:
    import skops.io as sio

    class Sneaky:  # not a type skops trusts: loading it would mean running code from the file
        pass

    lake.put("models/orders/model.skops", sio.dumps({"estimator": Sneaky()}))
    manifest = {"name": "sneaky", "version": "1", "table": "customer_rfm", "features": ["orders"],
                "output_column": "p", "key_columns": ["customer_id"]}  # fmt: skip
    lake.put("models/orders/manifest.json", json.dumps(manifest).encode())
    lake.sqs.purge_queue(QueueUrl=lake.endpoints.queue_url)
    lake.put("raw/orders/2026-10.csv", samples.orders_csv(1_000, seed=2).encode())
    invoke(next_messages(lake))
    [event] = lake.events(1)
    assert event["detail"]["status"] == "succeeded"
    invoke_refresh(refresh_messages(lake))
    [refreshed] = lake.events(1)
    assert refreshed["detail"]["status"] == "succeeded"
    [fact] = [m for m in refreshed["detail"]["models"] if m["name"] == "sneaky"]
    assert fact["metrics"]["status"] == "failed"
    assert "Sneaky" in fact["metrics"]["error"]
    assert "customer_rfm_scores" not in outputs(refreshed)
    assert outputs(refreshed)["customer_rfm"] > 0


def test_experiments_get_results_per_variant(lake: Lake, invoke: Invoke) -> None:
    lake.put("raw/experiments/exposures.csv", samples.experiments_csv(4_000, seed=1).encode())
    invoke(next_messages(lake))
    [event] = lake.events(1)
    assert event["detail"]["status"] == "succeeded", event["detail"].get("error")
    results = curated_rows(lake, "experiment_results_by_file")
    assert {(r["experiment_id"], r["variant"]) for r in results} >= {
        ("checkout_button", "control"),
        ("checkout_button", "treatment"),
    }


def test_a_file_missing_required_columns_fails_and_every_row_is_quarantined(lake: Lake, invoke: Invoke) -> None:
    lake.put("raw/ad_performance/wrong.csv", b"Day,Campaign,Clicks\n2026-01-01,a,3\n2026-01-02,b,4\n")
    assert invoke(next_messages(lake)) == {"batchItemFailures": []}
    [event] = lake.events(1)
    detail = event["detail"]
    assert detail["status"] == "failed"
    assert detail["error"]["type"] == "ContractError"
    assert detail["error"]["message"].startswith("raw/ad_performance/wrong.csv: ")
    assert "impressions" in detail["error"]["message"]
    quarantine = quarantine_rows(lake, "ad_performance")
    assert len(quarantine) == 2
    assert {r["_reason_code"] for r in quarantine} == {"contract_violation"}
    assert curated_rows(lake, "ad_performance") == []


def test_dataset_settings_choose_the_control_and_the_tolerance(lake: Lake, invoke: Invoke) -> None:
    # GIVEN settings for the experiments dataset: variant B is the control, no bad row tolerated
    settings = {"control_variant": "treatment", "tolerance": 0.0}
    lake.put("settings/experiments.json", json.dumps(settings).encode())
    lake.put("raw/experiments/exposures.csv", samples.experiments_csv(2_000, seed=4).encode())
    invoke(next_messages(lake))
    [event] = lake.events(1)
    # THEN users seen in two variants (quarantined rows) now refuse the whole file
    assert event["detail"]["status"] == "failed"
    assert "tolerance of 0%" in event["detail"]["error"]["message"]
    # AND with a tolerance that admits them, the configured control is the one compared against
    settings["tolerance"] = 0.2
    lake.put("settings/experiments.json", json.dumps(settings).encode())
    lake.put("raw/experiments/exposures-2.csv", samples.experiments_csv(2_000, seed=4).encode())
    invoke(next_messages(lake, 1))
    [event] = lake.events(1)
    assert event["detail"]["status"] == "succeeded", event["detail"].get("error")
    results = [r for r in curated_rows(lake, "experiment_results_by_file") if r["experiment_id"] == "checkout_button"]
    control = {r["variant"] for r in results if r["is_control"]}
    assert control == {"treatment"}


def test_malformed_dataset_settings_fail_the_file_with_the_fix(lake: Lake, invoke: Invoke) -> None:
    lake.put("settings/orders.json", b"{not json")
    lake.put("raw/orders/a.csv", samples.orders_csv(200, seed=1).encode())
    invoke(next_messages(lake))
    [event] = lake.events(1)
    assert "settings/orders.json is not valid JSON" in event["detail"]["error"]["message"]
