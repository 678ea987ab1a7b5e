"""The cost model (``python -m bench.cost``): the arithmetic a reader of docs/deploy.md relies on."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench.cost import (
    WORKLOADS,
    Deployment,
    M,
    before,
    before_tasks,
    estimate,
    files_per_commit,
    main,
    render,
)
from topology.pricing import PRICES

MARKETING, ORDERS, CLICKSTREAM = WORKLOADS
US_EAST_1 = PRICES["us-east-1"]


def test_graviton_costs_a_fifth_less_compute_for_the_same_durations() -> None:
    arm = estimate(MARKETING, Deployment(architecture="arm64")).items["processing compute"]
    x86 = estimate(MARKETING, Deployment(architecture="x86_64")).items["processing compute"]
    assert arm / x86 == pytest.approx(0.8, abs=0.01)


def test_processing_compute_is_files_times_in_image_seconds_plus_cold_starts() -> None:
    # GIVEN a 1 GB orders file a day at the measured in-image seconds (fixed + per MB)
    seconds = M.orders_file_seconds + M.seconds_per_mb * 1024
    cold = ORDERS.cold_starts_per_day * 30 * M.cold_start_extra_seconds
    expected = (30 * seconds + cold) * 3008 / 1024 * US_EAST_1.lambda_gb_second_arm64
    assert estimate(ORDERS).items["processing compute"] == pytest.approx(expected)


def test_every_function_is_counted_and_the_refresh_reads_athena_above_the_threshold() -> None:
    orders = estimate(ORDERS).items
    assert orders["refresh compute"] == pytest.approx(30 * 56.0 * 3008 / 1024 * US_EAST_1.lambda_gb_second_arm64)
    # A year of daily 1 GB exports is far above the 128 MiB threshold: each refresh scans it on Athena.
    assert orders["Athena"] == pytest.approx(30 * 365 * 0.3 / 1024 * 5.0)
    # A dataset without models has no refresh at all.
    assert estimate(CLICKSTREAM).items["refresh compute"] == 0 == estimate(CLICKSTREAM).items["Athena"]
    # 0.5 GB of ad history is above the threshold too (a history that large is not measured to fit one
    # function): its five refreshes a day scan it on Athena
    assert estimate(MARKETING).items["Athena"] == pytest.approx(30 * 5 * 0.5 / 1024 * 5.0)


def test_grouping_divides_the_commit_overhead_and_adds_the_intents() -> None:
    alone = estimate(CLICKSTREAM, Deployment(files_per_commit=1)).items["Iceberg commits (S3, Glue)"]
    grouped = estimate(CLICKSTREAM, Deployment(files_per_commit=10)).items["Iceberg commits (S3, Glue)"]
    table_files = CLICKSTREAM.files_per_month * (CLICKSTREAM.tables_per_file + CLICKSTREAM.quarantined_share)
    # per commit: 3 PUT, 4 GET, 3 Glue calls; per file: the data file's PUT and its intent's PUT;
    # per commit the LIST of pending intents (a PUT's price)
    per_commit = 3 * 0.005 / 1000 + 4 * 0.0004 / 1000 + 3 / 1e6 + 0.005 / 1000
    per_file = 2 * 0.005 / 1000
    assert alone == pytest.approx(table_files * (per_file + per_commit))
    # grouped by 10: 9 of 10 files wait, each with a done marker's PUT and four GETs
    waiting = 0.9 * (0.005 / 1000 + 4 * 0.0004 / 1000)
    assert grouped == pytest.approx(table_files * (per_file + per_commit / 10 + waiting))
    assert grouped < alone


def test_without_a_fixed_figure_files_share_a_commit_as_they_land_during_one() -> None:
    # the clickstream peaks at 20,000 files an hour: 5.6 land during a 1 s commit
    assert CLICKSTREAM.peak_files_per_hour == 20_000
    assert files_per_commit(CLICKSTREAM, Deployment()) == pytest.approx(20_000 / 3600)
    # a few exports a day never meet: one file per commit
    assert files_per_commit(MARKETING, Deployment()) == 1


def test_the_ledger_append_is_shared_by_the_files_of_an_invocation() -> None:
    one = estimate(replace(CLICKSTREAM, files_per_invocation=1)).items["ledger appends (S3, Glue)"]
    ten = estimate(CLICKSTREAM).items["ledger appends (S3, Glue)"]
    assert one == pytest.approx(10 * ten)


def test_fixed_costs_count_the_stacks_alarms_and_every_tables_optimizers() -> None:
    items = estimate(MARKETING).items
    assert items["CloudWatch alarms"] == pytest.approx(14 * 0.10)
    assert items["Glue table optimizers"] == pytest.approx(MARKETING.tables * 2 * 0.44)
    assert items["log storage"] > 0


def test_the_always_on_design_is_sized_for_the_peak_and_costs_more_for_every_workload() -> None:
    assert before_tasks(CLICKSTREAM) > before_tasks(MARKETING) == 1
    for workload in WORKLOADS:
        assert before(workload).total > estimate(workload).total
        assert before(workload).per_thousand_files > estimate(workload).per_thousand_files


def test_the_printed_table_names_each_workload_and_warns_where_the_deployment_cannot_keep_up(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.strip() == render().strip()
    for workload in WORKLOADS:
        assert workload.name in out
    assert "per 1,000 files" in out and "per GB" in out and "before: total / month" in out
    # at 50 concurrent executions and grouped commits every workload keeps up; at 2 the clickstream does not
    assert "above what" not in out
    assert "above what 2 concurrent executions do" in render(Deployment(max_concurrency=2))


@pytest.mark.parametrize("argv", [["--memory-mb", "64"], ["--files-per-commit", "0"]])
def test_bad_inputs_are_one_line_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("bench.cost: ") and err.count("\n") == 1
