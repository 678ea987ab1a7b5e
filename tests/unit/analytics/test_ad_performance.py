"""ad_performance: contract, rejection reasons, duplicates, KPIs and anomalies with known answers."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics import samples
from analytics.ad_performance import (
    AD_PERFORMANCE,
    CAMPAIGN_KPIS,
    KPI_ANOMALIES,
    AdPerformancePipeline,
    kpi_anomalies,
)
from analytics.base import QUARANTINE_REASON, QUARANTINE_REASON_CODE, QUARANTINE_ROW_NUMBER
from analytics.errors import ContractError, ToleranceExceededError

from .conftest import CollectingSink, RunCsv, assert_matches_spec, csv_batches, source_for

HEADER = "date,channel,campaign,ad_group,impressions,clicks,spend,conversions,revenue"


def good_rows(count: int, day: str = "2024-01-01") -> list[str]:
    return [f"{day},Google,filler,g{i},1000,50,$10.00,5,$100.00" for i in range(count)]


def test_every_rejection_reason_is_given_to_the_row_built_for_it(run_csv: RunCsv) -> None:
    # GIVEN one row per rejection rule (rows 2-12) among good rows
    built = [
        ("2024-01-01,Google,c1,g1,1000,50,$10.00,5,$100.00", None),
        (",google,c1,g2,1000,50,$10.00,5,$100.00", "missing_date"),
        ("2024-13-45,google,c1,g3,1000,50,$10.00,5,$100.00", "invalid_date"),
        ("2024-01-01,,c1,g4,1000,50,$10.00,5,$100.00", "missing_value"),
        ("2024-01-01,google,,g5,1000,50,$10.00,5,$100.00", "missing_value"),
        ("2024-01-01,google,c1,g6,1000,50,,5,$100.00", "missing_value"),
        ("2024-01-01,google,c1,g7,1000,50,ten,5,$100.00", "invalid_number"),
        ("2024-01-01,google,c1,g8,1000.5,50,$10.00,5,$100.00", "invalid_number"),
        ("2024-01-01,google,c1,g9,1000,50,-$1.00,5,$100.00", "negative_value"),
        ("2024-01-01,google,c1,g10,1000,50,$1.00,5,-3", "negative_value"),
        ("2024-01-01,google,c1,g11,10,20,$1.00,0,0", "clicks_exceed_impressions"),
        ("2024-01-01,google,c1,g12,100,5,$1.00,6,$10.00", "conversions_exceed_clicks"),
    ]
    text = "\n".join([HEADER, *(row for row, _ in built), *good_rows(60)]) + "\n"
    # WHEN the file is processed
    result, sink = run_csv(AdPerformancePipeline("ad_performance"), text)
    # THEN exactly the built rows are quarantined, each with its reason, and the rest is published
    rejected = sink.quarantined()
    got = dict(
        zip(
            rejected.column(QUARANTINE_ROW_NUMBER).to_pylist(),
            rejected.column(QUARANTINE_REASON_CODE).to_pylist(),
            strict=True,
        )
    )
    expected = {number: code for number, (_, code) in enumerate(built, start=1) if code}
    assert got == expected
    assert result.rows_rejected == len(expected)
    assert result.rejected_by_reason["missing_value"] == 3
    assert sink.table("ad_performance").num_rows == 61
    # original values are kept as strings and quoted in a message a person can act on
    row7 = rejected.filter(pc.equal(rejected.column(QUARANTINE_ROW_NUMBER), 7))
    assert row7.column("spend").to_pylist() == ["ten"]
    assert row7.column(QUARANTINE_REASON).to_pylist() == ["spend 'ten' is not a number"]
    row11 = rejected.filter(pc.equal(rejected.column(QUARANTINE_ROW_NUMBER), 11))
    assert "exceed impressions" in row11.column(QUARANTINE_REASON)[0].as_py()


def test_a_row_breaking_several_rules_gets_the_first_code_and_every_message(run_csv: RunCsv) -> None:
    text = "\n".join([HEADER, "2024-01-01,google,c1,g1,-5,20,-$1.00,0,0", *good_rows(20)]) + "\n"
    _, sink = run_csv(AdPerformancePipeline("ad_performance"), text)
    rejected = sink.quarantined()
    assert rejected.column(QUARANTINE_REASON_CODE).to_pylist() == ["negative_value"]
    reason = rejected.column(QUARANTINE_REASON)[0].as_py()
    assert "spend '-$1.00' is negative" in reason
    assert "impressions '-5' is negative" in reason
    assert "clicks '20' exceed impressions" in reason


def test_missing_columns_name_what_is_missing_found_and_accepted() -> None:
    batch = pa.record_batch({"Day": ["2024-01-01"], "Platform": ["meta"], "Campaign name": ["x"], "Impressions": ["1"]})
    with pytest.raises(ContractError) as error:
        AdPerformancePipeline("ad_performance").run(iter([batch]), source_for("ad_performance"), CollectingSink())
    message = str(error.value)
    assert "clicks, spend, conversions, revenue" in message
    assert "'Day', 'Platform', 'Campaign name', 'Impressions'" in message
    assert "'Amount Spent (USD)'" in message and "'Link Clicks'" in message


@pytest.mark.parametrize(
    ("header", "dates", "money"),
    [("meta", "us", "usd"), ("google", "eu", "eur"), ("canonical", "iso", "plain")],
)
def test_platform_exports_are_understood_and_planted_bad_rows_found(
    run_csv: RunCsv, header: str, dates: str, money: str
) -> None:
    # GIVEN a generated export with real header names, currency strings and planted bad rows
    sample = samples.ad_performance_sample(
        3000, seed=5, days=30, header=header, dates=dates, money=money, bad_share=0.02
    )  # type: ignore[arg-type]
    text = samples.to_csv(sample.table)
    # WHEN processed
    result, sink = run_csv(AdPerformancePipeline("ad_performance"), text)
    # THEN every planted bad row is quarantined with the planted reason, and nothing else
    rejected = sink.quarantined()
    got = dict(
        zip(
            rejected.column(QUARANTINE_ROW_NUMBER).to_pylist(),
            rejected.column(QUARANTINE_REASON_CODE).to_pylist(),
            strict=True,
        )
    )
    assert got == {pos + 1: code for pos, code in sample.bad_rows.items()}
    assert result.duplicates_dropped == len(sample.duplicate_rows)
    clean = sink.table("ad_performance")
    assert clean.num_rows == 3000 - len(sample.bad_rows) - len(sample.duplicate_rows)
    # channels are folded to one spelling, dates are the 30 generated days
    assert set(clean.column("channel").to_pylist()) <= {
        "google ads",
        "meta",
        "tiktok",
        "linkedin",
        "microsoft ads",
    }
    assert pc.min(clean.column("date")).as_py() == date(2024, 1, 1)
    assert pc.max(clean.column("date")).as_py() == date(2024, 1, 30)
    if money != "plain":
        assert set(clean.column("currency").to_pylist()) == {"USD" if money == "usd" else "EUR"}


def test_duplicates_exact_and_superseded_keep_the_last_occurrence(run_csv: RunCsv) -> None:
    text = (
        "\n".join(
            [
                HEADER,
                "2024-01-01,Google,c1,g1,1000,50,$1.00,5,$100.00",
                "2024-01-01, google ,c1,g1,1000,50,$1.00,5,$100.00",  # same after case/space folding
                "2024-01-01,GOOGLE,c1,g1,1000,50,$3.00,5,$100.00",  # same key, newer figures
                "2024-01-02,google,c1,g1,1000,50,$7.00,5,$100.00",
            ]
        )
        + "\n"
    )
    result, sink = run_csv(AdPerformancePipeline("ad_performance"), text)
    clean = sink.table("ad_performance")
    assert clean.column("spend").to_pylist() == [3.0, 7.0]
    assert result.duplicates_dropped == 2
    cleaning = next(f for f in result.models if f.name == "cleaning")
    assert cleaning.metrics["exact_duplicates"] == 1
    assert cleaning.metrics["superseded_rows"] == 1


def test_kpis_are_sums_and_ratios_and_division_by_zero_is_null(run_csv: RunCsv) -> None:
    text = (
        "\n".join(
            [
                HEADER,
                "2024-01-01,google,c1,g1,100,10,$5.00,0,0",
                "2024-01-01,google,c1,g2,300,30,$15.00,4,$80.00",
                "2024-01-01,meta,c2,g1,0,0,$0.00,0,0",
            ]
        )
        + "\n"
    )
    _, sink = run_csv(AdPerformancePipeline("ad_performance"), text)
    kpis = sink.table("campaign_kpis_by_file").to_pylist()
    c1 = next(r for r in kpis if r["campaign"] == "c1")
    assert (c1["impressions"], c1["clicks"], c1["spend"], c1["conversions"], c1["revenue"]) == (
        400,
        40,
        20.0,
        4.0,
        80.0,
    )
    assert c1["ctr"] == pytest.approx(0.1) and c1["cvr"] == pytest.approx(0.1)
    assert c1["cpc"] == pytest.approx(0.5) and c1["cpa"] == pytest.approx(5.0) and c1["roas"] == pytest.approx(4.0)
    c2 = next(r for r in kpis if r["campaign"] == "c2")
    assert [c2[k] for k in ("ctr", "cvr", "cpc", "cpa", "roas")] == [None, None, None, None, None]
    for table in sink.written.values():
        for column in table[0].columns:
            if pa.types.is_floating(column.type):
                assert not pc.any(pc.is_inf(column)).as_py()


def synthetic_kpis(
    seed: int = 11, campaigns: int = 20, days: int = 45, planted: int = 25
) -> tuple[pa.Table, set[tuple[str, date]]]:
    """Campaign KPI series with 5% noise and planted spend spikes / conversion drops."""
    rng = np.random.default_rng(seed)
    rows = []
    cells = [(c, d) for c in range(campaigns) for d in range(days)]
    chosen = {cells[i] for i in rng.choice(len(cells), planted, replace=False)}
    for c in range(campaigns):
        ctr, cvr, cpc, aov = (
            rng.uniform(0.01, 0.05),
            rng.uniform(0.02, 0.1),
            rng.uniform(0.3, 2.0),
            rng.uniform(30, 90),
        )
        for d in range(days):
            noise = 1 + 0.05 * rng.standard_normal(5)
            impressions = 10000 * noise[0]
            clicks = impressions * ctr * noise[1]
            conversions = clicks * cvr * noise[2]
            spend = clicks * cpc * noise[3]
            revenue = conversions * aov * noise[4]
            if (c, d) in chosen:
                if d % 2:
                    spend *= 4.0
                else:
                    conversions *= 0.2
                    revenue *= 0.2
            rows.append(
                {
                    "channel": "search" if c % 2 else "social",
                    "campaign": f"camp{c:02d}",
                    "impressions": int(impressions),
                    "clicks": int(clicks),
                    "spend": spend,
                    "conversions": conversions,
                    "revenue": revenue,
                    "ctr": clicks / impressions,
                    "cvr": conversions / clicks,
                    "cpc": spend / clicks,
                    "cpa": spend / conversions,
                    "roas": revenue / spend,
                    "source_id": "s",
                    "date": date(2024, 1, 1) + timedelta(days=d),
                }
            )
    truth = {(f"camp{c:02d}", date(2024, 1, 1) + timedelta(days=d)) for c, d in chosen}
    return pa.Table.from_pylist(rows, schema=CAMPAIGN_KPIS.schema), truth


def test_planted_anomalies_are_found_with_precision_and_recall_of_at_least_80_percent() -> None:
    # GIVEN 20 campaigns × 45 days of KPIs with 25 planted anomalous campaign-days
    kpis, truth = synthetic_kpis()
    # WHEN scored
    anomalies, fact = kpi_anomalies(kpis, "s")
    # THEN a campaign-day flagged on any metric is a planted one, and the planted ones are flagged
    flagged = anomalies.filter(anomalies.column("is_anomaly"))
    found = set(zip(flagged.column("campaign").to_pylist(), flagged.column("date").to_pylist(), strict=True))
    precision = len(found & truth) / len(found)
    recall = len(found & truth) / len(truth)
    assert precision >= 0.8, (precision, recall)
    assert recall >= 0.8, (precision, recall)
    assert fact.metrics["anomalies_found"] == flagged.num_rows
    # and the IsolationForest's few flags (the most isolated 1%) are planted days too
    iso = anomalies.filter(pc.fill_null(anomalies.column("isolation_anomaly"), False))
    iso_days = set(zip(iso.column("campaign").to_pylist(), iso.column("date").to_pylist(), strict=True))
    assert iso_days and len(iso_days & truth) / len(iso_days) >= 0.8


def test_anomaly_scoring_is_deterministic_and_short_series_are_not_scored() -> None:
    kpis, _ = synthetic_kpis(campaigns=6, days=20, planted=3)
    first, _ = kpi_anomalies(kpis, "s")
    second, _ = kpi_anomalies(kpis, "s")
    assert first.equals(second)
    five_days = kpis.filter(pc.less(kpis.column("date"), pa.scalar(date(2024, 1, 6), pa.date32())))
    short, _ = kpi_anomalies(five_days, "s")  # five days per series: below MIN_HISTORY
    assert short.column("robust_z").null_count == short.num_rows
    assert not pc.any(short.column("is_anomaly")).as_py()


def test_outputs_match_their_table_specs(run_csv: RunCsv) -> None:
    text = samples.ad_performance_csv(1500, seed=2, days=20)
    _, sink = run_csv(AdPerformancePipeline("ad_performance"), text)
    for spec in (AD_PERFORMANCE, CAMPAIGN_KPIS, KPI_ANOMALIES):
        assert_matches_spec(sink.table(spec.name), spec)
    assert [s.name for s in AdPerformancePipeline("ad_performance").tables(source_for("ad_performance"))] == [
        "ad_performance",
        "campaign_kpis_by_file",
        "kpi_anomalies_by_file",
        "dataset_profiles",
    ]


def test_typed_input_gives_the_same_result_as_strings(run_csv: RunCsv) -> None:
    text = (
        "\n".join([HEADER, "2024-01-01,google,c1,g1,100,10,5.5,1,20", "2024-01-02,google,c1,g1,200,20,6.5,2,30"]) + "\n"
    )
    _, from_csv = run_csv(AdPerformancePipeline("ad_performance"), text)
    typed = pa.record_batch(
        {
            "date": pa.array([date(2024, 1, 1), date(2024, 1, 2)], pa.date32()),
            "channel": ["google", "google"],
            "campaign": ["c1", "c1"],
            "ad_group": ["g1", "g1"],
            "impressions": pa.array([100, 200], pa.int64()),
            "clicks": pa.array([10, 20], pa.int64()),
            "spend": [5.5, 6.5],
            "conversions": pa.array([1, 2], pa.int64()),
            "revenue": [20.0, 30.0],
        }
    )
    sink = CollectingSink()
    AdPerformancePipeline("ad_performance").run(iter([typed]), source_for("ad_performance"), sink)
    assert sink.table("ad_performance").equals(from_csv.table("ad_performance"))


def test_a_file_above_tolerance_is_refused_whole_and_every_row_quarantined(run_csv: RunCsv) -> None:
    # GIVEN 3 bad rows out of 10 (30% > 20%)
    bad = ["2024-01-01,google,c1,x1,10,20,$1.00,0,0"] * 3
    text = "\n".join([HEADER, *bad, *good_rows(7)]) + "\n"
    sink = CollectingSink()
    pipeline = AdPerformancePipeline("ad_performance")
    # WHEN processed THEN it fails with a message that says what to do, writing no output
    with pytest.raises(ToleranceExceededError, match=r"3 of 10 rows \(30%\).*tolerance of 20%.*upload it again"):
        pipeline.run(iter(csv_batches(text)), source_for("ad_performance"), sink)
    assert sink.written == {}
    rejected = sink.quarantined()
    assert sorted(rejected.column(QUARANTINE_ROW_NUMBER).to_pylist()) == list(range(1, 11))
    codes = rejected.column(QUARANTINE_REASON_CODE).to_pylist()
    assert codes.count("clicks_exceed_impressions") == 3 and codes.count("file_rejected") == 7


row_kind = st.sampled_from(["good", "good", "good", "dup", "negative", "no_date", "bad_number", "clicks"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(st.tuples(row_kind, st.integers(0, 5)), min_size=1, max_size=40))
def test_no_row_is_lost(run_csv: RunCsv, kinds: list[tuple[str, int]]) -> None:
    # GIVEN any mix of good rows (keys from a small pool, so some supersede others), copies and bad rows
    lines = [HEADER]
    for i, (kind, key) in enumerate(kinds):
        if kind == "dup" and len(lines) > 1:
            lines.append(lines[-1])
            continue
        spend = {"negative": "-$2.00", "bad_number": "n/a?"}.get(kind, f"${i}.00")
        day = "" if kind == "no_date" else f"2024-01-0{1 + key % 3}"
        clicks = "900" if kind == "clicks" else "5"
        lines.append(f"{day},google,c{key},g1,100,{clicks},{spend},1,$3.00")
    pipeline = AdPerformancePipeline("ad_performance", tolerance=1.0)
    # WHEN processed
    result, sink = run_csv(pipeline, "\n".join(lines) + "\n")
    # THEN clean + quarantined + counted duplicates = input
    clean = sink.table("ad_performance").num_rows if "ad_performance" in sink.written else 0
    assert clean + sink.quarantined_rows + result.duplicates_dropped == result.rows_in == len(lines) - 1
    assert sink.quarantined_rows == result.rows_rejected


def test_batch_boundaries_do_not_change_the_outputs() -> None:
    # GIVEN the same export read as one batch and as ~70 small batches
    text = samples.ad_performance_csv(3000, seed=9, days=30)
    outputs = []
    for block_size in (None, 4096):
        sink = CollectingSink()
        batches = csv_batches(text, block_size=block_size)
        AdPerformancePipeline("ad_performance").run(iter(batches), source_for("ad_performance"), sink)
        outputs.append({name: sink.table(name) for name in sink.written})
    # THEN every output table is identical
    assert outputs[0].keys() == outputs[1].keys()
    for name in outputs[0]:
        assert outputs[0][name].equals(outputs[1][name]), name
