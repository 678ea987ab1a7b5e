"""Wiring: the registry's lazy built-ins, the sample generator's promises, the benchmark runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow.csv as pacsv
import pytest

from analytics import samples
from analytics.ad_performance import AdPerformancePipeline
from analytics.base import DEFAULT_TOLERANCE
from analytics.experiments import ExperimentsPipeline
from analytics.orders import OrdersPipeline
from analytics.registry import built_in_datasets, get_pipeline
from bench.marketing import main as bench_main


@pytest.mark.parametrize(
    ("segment", "cls"),
    [
        ("ad_performance", AdPerformancePipeline),
        ("orders", OrdersPipeline),
        ("Experiments", ExperimentsPipeline),
    ],
)
def test_built_in_datasets_get_their_pipeline(segment: str, cls: type) -> None:
    pipeline = get_pipeline(segment)
    assert isinstance(pipeline, cls)
    assert pipeline.dataset == segment.lower() and pipeline.tolerance == DEFAULT_TOLERANCE
    assert {"ad_performance", "orders", "experiments"} <= set(built_in_datasets())


def test_importing_the_registry_does_not_load_the_heavy_libraries() -> None:
    heavy = "('sklearn', 'scipy', 'pandas')"
    code = f"import sys, analytics.registry; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_collecting_the_specs_and_a_generic_pipeline_loads_no_model_library() -> None:
    # A file of a generic dataset, or of a built-in one before its models run, pays for neither
    # scikit-learn nor scipy: the dataset modules import them where they are used.
    code = (
        "import sys; from analytics import registry; registry.specs(); registry.refreshers('orders'); "
        "registry.get_pipeline('web_events'); registry.get_pipeline('orders'); "
        "print(sorted(m for m in ('sklearn', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_samples_are_seeded_and_realistic() -> None:
    assert samples.ad_performance_csv(200, seed=4) == samples.ad_performance_csv(200, seed=4)
    assert samples.ad_performance_csv(200, seed=4) != samples.ad_performance_csv(200, seed=5)
    head = samples.ad_performance_csv(50, seed=1).splitlines()[0]
    assert "Amount Spent (USD)" in head and "Link Clicks" in head
    orders = samples.orders_sample(2000, 300, seed=1)
    ids = orders.table.column("customer_id").to_pylist()
    assert any(i.startswith("000") for i in ids if i)
    assert orders.table.num_rows == 2000
    money = samples.format_money([1234.5, -0.5, 1_000_000.0], "eur").to_pylist()
    assert money == ["1.234,50 €", "-0,50 €", "1.000.000,00 €"]


def test_orders_generator_hits_the_requested_size(tmp_path: Path) -> None:
    path = samples.write_orders_csv(tmp_path / "o.csv", 20_000, 2_000, seed=3)
    table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
    assert table.num_rows == 20_000
    assert 1_500 <= len(set(table.column("customer_id").to_pylist())) <= 2_001


def test_next_month_orders_continue_the_history_with_returning_lapsing_and_new_customers() -> None:
    # GIVEN an orders export and the generator of the month after it
    first = samples.orders_sample(3000, 300, seed=2)
    month = samples.next_month_orders(first, "2026-01-01", seed=3)
    # THEN it is seeded, its order ids follow the first file's and its dates fall in that month
    assert month.equals(samples.next_month_orders(first, "2026-01-01", seed=3))
    assert month.column("order_id")[0].as_py() == "SO-00003001"
    assert not set(month.column("order_id").to_pylist()) & set(first.table.column("order_id").to_pylist())
    dates = month.column("order_date").to_pylist()
    assert min(dates) >= "2026-01-01" and max(dates) < "2026-02-01" and dates == sorted(dates)
    # AND some customers come back (champions more often than hibernating ones), some lapse, some are new
    buyers = set(month.column("customer_id").to_pylist())
    known = set(first.customer_archetype)
    back = {kind: 0 for kind in ("Champions", "Hibernating")}
    for customer in buyers & known:
        if first.customer_archetype[customer] in back:
            back[first.customer_archetype[customer]] += 1
    kinds = list(first.customer_archetype.values())
    assert back["Champions"] / kinds.count("Champions") > back["Hibernating"] / kinds.count("Hibernating")
    assert 0 < len(buyers & known) < len(known)
    assert len(buyers - known) == 30 and min(buyers - known) > max(known)


def test_the_benchmark_runs_end_to_end_on_small_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_main(["--rows", "3000", "--customers", "300", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "ad_performance" in out and "orders" in out and "ratio" in out


def test_every_obvious_name_over_history_is_one_the_stack_may_migrate() -> None:
    # The refresh renames an older lake's per-file table out of each current view's way; the stack
    # grants that one deletion on exactly the names topology lists.
    import topology
    from analytics.registry import specs

    views = {t.current_view for s in specs().values() for t in (*s.model_tables, *_history_tables()) if t.current_view}
    assert views == set(topology.CURRENT_VIEWS)
    per_file = {t.name for s in specs().values() for t in s.tables}
    assert {f"{v}_by_file" for v in views} <= per_file and not views & per_file


def _history_tables() -> tuple:  # type: ignore[type-arg]
    from analytics.experiment_history import EXPERIMENT_RESULTS_HISTORY
    from analytics.kpi_history import CAMPAIGN_KPIS_HISTORY, KPI_ANOMALIES_HISTORY

    return (EXPERIMENT_RESULTS_HISTORY, CAMPAIGN_KPIS_HISTORY, KPI_ANOMALIES_HISTORY)
