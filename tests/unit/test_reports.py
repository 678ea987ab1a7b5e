"""Reports drawn from fixed refreshed tables: what a reader sees in the page, checked against pandas."""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from reports import Report, ReportError, build_report
from tests import reports_fixtures as fx

# GIVEN fixed tables WHEN a report is drawn THEN the page's figures match an independent computation.


class _Tables(HTMLParser):
    """Every <table> of a page as rows of cell text (headers included), and every <p> text."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.paragraphs: list[str] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._p: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "p":
            self._p = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[-1].append(self._row)
            self._row = None
        elif tag == "p" and self._p is not None:
            self.paragraphs.append("".join(self._p).strip())
            self._p = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._p is not None:
            self._p.append(data)


def parse(html: str) -> _Tables:
    parser = _Tables()
    parser.feed(html)
    return parser


def tables_with(html: str, header: str) -> list[list[dict[str, str]]]:
    """Every table whose header row has ``header``, each as dicts by header."""
    return [[dict(zip(t[0], row, strict=True)) for row in t[1:]] for t in parse(html).tables if t and header in t[0]]


def table_with(html: str, header: str) -> list[dict[str, str]]:
    """The first table whose header row has ``header``."""
    found = tables_with(html, header)
    assert found, f"no table with a {header!r} column"
    return found[0]


def num(text: str) -> float:
    return float(text.replace(",", "").replace("%", "").replace("+", ""))


def report(dataset: str, tables: dict[str, pa.Table], as_of: dt.date | None = None) -> tuple[Report, fx.ArrowQuery]:
    query = fx.ArrowQuery(tables)
    return build_report(dataset, query, query.names, as_of), query


# --- orders ---


@pytest.fixture(scope="module")
def orders() -> dict[str, pa.Table]:
    return {**fx.orders_tables(), **fx.built_in_tables("orders")}


@pytest.fixture(scope="module")
def orders_report(orders: dict[str, pa.Table]) -> Report:
    return report("orders", orders)[0]


def test_orders_segment_sizes_and_change_since_previous_as_of(orders, orders_report):
    rfm = orders["customer_rfm"].to_pandas()
    counts = rfm.groupby(["as_of", "segment_name"]).size().unstack(0).fillna(0).astype(int)
    shown = table_with(orders_report.html, "change")
    assert orders_report.as_of == fx.AS_OF_2
    assert {r["segment"] for r in shown} == set(counts.index)
    for r in shown:
        before, now = counts.loc[r["segment"], fx.AS_OF_1], counts.loc[r["segment"], fx.AS_OF_2]
        assert num(r[f"customers on {fx.AS_OF_1}"]) == before
        assert num(r[f"customers on {fx.AS_OF_2}"]) == now
        assert num(r["change"]) == now - before


def test_orders_moves_matrix_counts_customers_between_snapshots(orders, orders_report):
    rfm = orders["customer_rfm"].to_pandas()
    before = rfm[rfm.as_of == fx.AS_OF_1].set_index("customer_id").segment_name
    now = rfm[rfm.as_of == fx.AS_OF_2].set_index("customer_id").segment_name
    joined = pd.concat([before.rename("from"), now.rename("to")], axis=1).fillna({"from": "(new customer)"})
    expected = pd.crosstab(joined["from"], joined["to"])
    shown = table_with(orders_report.html, f"segment on {fx.AS_OF_1}")
    for r in shown:
        for to in expected.columns:
            assert num(r[to]) == expected.loc[r[f"segment on {fx.AS_OF_1}"], to], (r, to)
    assert num(next(r for r in shown if r[f"segment on {fx.AS_OF_1}"] == "(new customer)")["customers"]) == 20


def test_orders_score_distribution_and_value_by_segment(orders, orders_report):
    rfm = orders["customer_rfm"].to_pandas()
    latest = rfm[rfm.as_of == fx.AS_OF_2]
    # The R×F grid: customers and spend per cell, as pandas' crosstab of customer_rfm counts and sums them
    customers = pd.crosstab(latest.r_score, latest.f_score)
    spend = pd.crosstab(latest.r_score, latest.f_score, values=latest.total_amount, aggfunc="sum").fillna(0)
    grid = table_with(orders_report.html, "recency score")
    assert [r["recency score"] for r in grid] == ["R 5", "R 4", "R 3", "R 2", "R 1"]
    for r in grid:
        rs = int(r["recency score"][2:])
        for fs in range(1, 6):
            n, value = r[f"F {fs}"].split(" · ")
            assert num(n) == customers.loc[rs].get(fs, 0), (rs, fs)
            assert num(value) == pytest.approx(spend.loc[rs].get(fs, 0.0), abs=0.5), (rs, fs)
        assert num(r["customers"]) == customers.loc[rs].sum()
    assert "marks-rf-grid" in orders_report.html
    value = orders["customer_value"].to_pandas().merge(latest[["customer_id", "segment_name"]], on="customer_id")
    means = value.groupby("segment_name").expected_value_365d.mean()
    for r in table_with(orders_report.html, "mean value 365 d"):
        assert num(r["mean value 365 d"]) == pytest.approx(means[r["segment"]], abs=0.006)
    # The model parameters are not in any table: the page says where they are.
    assert any("kept in no table" in n for n in orders_report.notes)  # drawn without the refresh's facts


def test_a_table_the_function_may_not_read_costs_its_section_not_the_page(orders):
    # GIVEN the quarantine table readable by name but refused when read (an IAM denial on AWS)
    query = fx.ArrowQuery(orders)

    def refusing(sql: str) -> pa.Table:
        if "lake_quarantine" in sql:
            raise PermissionError("AccessDenied: s3:GetObject on quarantine/orders/metadata")
        return query(sql)

    # WHEN the report is drawn
    built = build_report("orders", refusing, query.names)
    # THEN the orders sections and the profile are there, and the quarantine section says why it is empty
    assert built.as_of == fx.AS_OF_2
    assert 'id="segments"' in built.html or "Customer segments" in built.html
    assert "Profile of the data" in built.html
    assert [n for n in built.notes if "could not be drawn" in n and "AccessDenied" in n], built.notes


def test_the_fitted_parameters_the_refresh_reports_are_shown(orders):
    # GIVEN the refresh's facts with CDNOW's published BG/NBD parameters (Fader, Hardie & Lee 2005)
    facts = [
        {"name": "clv_bg_nbd", "version": "1", "metrics": {"status": "fitted", "r": 0.2426, "alpha": 4.4136,
                                                            "a": 0.7929, "b": 2.4259, "fit_customers": 2357}},
    ]  # fmt: skip
    query = fx.ArrowQuery(orders)
    built = build_report("orders", query, query.names, facts=facts)
    [row] = [r for r in table_with(built.html, "parameters") if r["model"] == "BG/NBD"]
    assert row["parameters"] == "r = 0.2426, α = 4.414, a = 0.7929, b = 2.426"
    assert row["status"] == "fitted" and row["customers fitted"] == "2,357"
    assert not [n for n in built.notes if "kept in no table" in n]


def with_p_alive_of_one_order_customers(orders: dict[str, pa.Table], bg_nbd: bool) -> dict[str, pa.Table]:
    """``orders`` whose one-order customers have P(alive) 1 (as BG/NBD gives them) or below (MBG/NBD)."""
    value = orders["customer_value"].to_pandas()
    once = value.frequency == 0
    value.loc[once, "p_alive"] = 1.0 if bg_nbd else 0.4
    table = pa.Table.from_pandas(value, preserve_index=False).cast(orders["customer_value"].schema)
    return {**orders, "customer_value": table}


def test_one_order_customers_at_p_alive_one_are_said_in_words_not_averaged_in(orders):
    # GIVEN a customer_value snapshot whose one-order customers all have P(alive) = 100%, as BG/NBD makes them
    tables = with_p_alive_of_one_order_customers(orders, bg_nbd=True)
    built, _ = report("orders", tables)
    value = tables["customer_value"].to_pandas()
    once = value.frequency == 0
    assert once.sum() > 20
    # THEN the page says how many and why, in words
    [said] = [p for p in parse(built.html).paragraphs if "single order" in p]
    assert said.startswith(f"{once.sum():,} of the {len(value):,} customers have a single order and a P(alive) of 100%")
    assert "how BG/NBD" in said and "left out of every mean P(alive)" in said
    # AND each segment's mean P(alive) is over the other customers, with the one-order ones counted apart
    latest = tables["customer_rfm"].to_pandas()
    latest = latest[latest.as_of == fx.AS_OF_2][["customer_id", "segment_name"]]
    merged = value.merge(latest, on="customer_id")
    estimated = merged[merged.frequency > 0].groupby("segment_name").p_alive.mean()
    counted = merged[merged.frequency == 0].groupby("segment_name").size()
    shown = table_with(built.html, "mean P(alive) (estimated)")
    for r in shown:
        name = r["segment"]
        if name in estimated:
            assert num(r["mean P(alive) (estimated)"]) == pytest.approx(100 * estimated[name], abs=0.06), name
        assert num(r["one order, P(alive) 100% by construction"]) == counted.get(name, 0), name
    [summary] = table_with(built.html, "with a repeat purchase")
    assert num(summary["mean P(alive) (estimated)"]) == pytest.approx(100 * value.p_alive[~once].mean(), abs=0.06)


def test_with_one_order_customers_estimated_the_means_take_every_customer_and_the_choice_is_named(orders):
    # GIVEN one-order customers with an estimated P(alive) (MBG/NBD) and the refresh's choice in its facts
    tables = with_p_alive_of_one_order_customers(orders, bg_nbd=False)
    facts = [
        {
            "name": "clv_purchase_model",
            "version": "1",
            "metrics": {"as_of": fx.AS_OF_2.isoformat(), "model": "MBG/NBD", "chosen_by": "held-out log-likelihood",
                        "holdout_days": 760, "holdout_log_likelihood_bg_nbd": -199967.0,
                        "holdout_log_likelihood_mbg_nbd": -189373.0},
        },
        {"name": "clv_mbg_nbd", "version": "1", "metrics": {"status": "fitted", "chosen": True, "r": 3.16,
                                                             "alpha": 619.6, "a": 1.76, "b": 2.47}},
    ]  # fmt: skip
    query = fx.ArrowQuery(tables)
    built = build_report("orders", query, query.names, facts=facts)
    paragraphs = parse(built.html).paragraphs
    # THEN nothing is set apart, and the page says which model was chosen and how
    assert not [p for p in paragraphs if "single order" in p]
    assert (
        "MBG/NBD was chosen over BG/NBD by the log-likelihood of the order days of the last 760 days, held out from "
        "a fit on the days before (-189,373.0 against -199,967.0)."
    ) in paragraphs
    value = tables["customer_value"].to_pandas()
    [summary] = table_with(built.html, "with a repeat purchase")
    assert num(summary["mean P(alive)"]) == pytest.approx(100 * value.p_alive.mean(), abs=0.06)
    assert [r["model"] for r in table_with(built.html, "parameters")] == ["MBG/NBD (chosen)"]


def test_orders_as_of_draws_that_snapshot_and_an_unknown_as_of_says_which_exist(orders):
    older, _ = report("orders", orders, fx.AS_OF_1)
    assert older.as_of == fx.AS_OF_1
    assert any("one as_of so far" in n or "need two as_of" in n for n in older.notes)
    with pytest.raises(
        ReportError, match=r"no customer_segments snapshot as of 2020-01-01: its as_of dates are 2025-12-28, 2026-01-31"
    ):
        report("orders", orders, dt.date(2020, 1, 1))


def test_orders_aggregates_in_sql_never_reading_customers_into_python():
    # GIVEN 20,000 customers per snapshot WHEN the report is drawn THEN no query returns more than a few hundred rows.
    tables = fx.orders_tables(customers=20_000)
    built, query = report("orders", tables)
    assert built.as_of == fx.AS_OF_2
    assert max(query.result_rows) < 100
    assert len(built.html) < 300_000


# --- experiments ---


@pytest.fixture(scope="module")
def experiments_report() -> Report:
    return report("experiments", fx.experiment_tables())[0]


def test_experiments_srm_verdict_in_words(experiments_report):
    paragraphs = parse(experiments_report.html).paragraphs
    verdicts = [p for p in paragraphs if "ample ratio" in p]
    pricing = next(p for p in verdicts if "annual" in p)
    assert pricing.startswith("Sample ratio mismatch") and "Distrust" in pricing
    clean = next(p for p in verdicts if "green" in p)
    assert clean.startswith("No sample ratio mismatch")
    assert any(p.startswith("Sample ratio cannot be checked: one variant only") for p in verdicts)


def test_experiments_rates_and_lift_as_in_the_table(experiments_report):
    history = fx.experiment_tables()["experiment_results_history"].to_pandas()
    latest = history[(history.as_of == fx.EXP_DATES[-1]) & (history.experiment_id == "checkout_button")]
    (table,) = [
        t for t in tables_with(experiments_report.html, "always-valid p") if any(r["variant"] == "green" for r in t)
    ]
    shown = {r["variant"]: r for r in table}
    green = latest[latest.variant == "green"].iloc[0]
    assert num(shown["green"]["rate"]) == pytest.approx(green.conversion_rate * 100, abs=0.006)
    assert num(shown["green"]["lift (pp)"]) == pytest.approx(green.abs_lift * 100, abs=0.006)
    assert shown["control (control)"]["lift (pp)"] == "–"
    # Three refreshes: the always-valid interval over time is drawn for the two-variant experiments.
    assert experiments_report.html.count("always-valid interval of") >= 3


# --- ad_performance ---


@pytest.fixture(scope="module")
def ads() -> dict[str, pa.Table]:
    return fx.ads_tables()


@pytest.fixture(scope="module")
def ads_report(ads) -> Report:
    return report("ad_performance", ads)[0]


def test_ads_top_anomalies_strongest_first(ads, ads_report):
    anomalies = ads["kpi_anomalies_history"].to_pandas()
    # A null robust z (the baseline never varied) is the strongest; then by |z|.
    anomalies["strength"] = anomalies.robust_z.abs().fillna(float("inf"))
    expected = anomalies.sort_values(
        ["strength", "date", "channel", "campaign", "metric"], ascending=[False, False, True, True, True]
    )
    shown = table_with(ads_report.html, "robust z")
    assert [(r["campaign"], r["metric"]) for r in shown] == list(zip(expected.campaign, expected.metric, strict=True))[
        : len(shown)
    ]
    assert shown[0]["robust z"] == "no spread"
    campaigns = {r["campaign"]: r for r in table_with(ads_report.html, "anomalies")}
    spend = ads["campaign_kpis_history"].to_pandas().groupby("campaign").spend.sum()
    for name, r in campaigns.items():
        assert num(r["spend"]) == pytest.approx(spend[name], abs=0.006)


def test_ads_anomalies_are_marked_with_their_reason_on_hover(ads_report):
    # Each drawn anomaly is a marked point whose SVG <title> carries the reason (escaped).
    titles = re.findall(r'<g id="marks-camp\d+-anomaly-\d+"><title>([^<]*)</title>', ads_report.html)
    assert len(titles) == 3
    assert all("trailing 28-day median" in t for t in titles)
    assert any("&lt;script&gt;" in t for t in titles)


# --- any dataset ---


def test_profile_and_quarantine_of_any_dataset():
    tables = fx.generic_tables()
    built, _ = report("web_sessions", tables)
    assert built.as_of is None
    profile = tables["dataset_profiles"].to_pandas()
    nulls = profile.groupby("column").nulls.sum() / profile.groupby("column").rows.sum()
    for r in table_with(built.html, "distinct (largest per file)"):
        assert num(r["missing"]) == pytest.approx(nulls[r["column"]] * 100, abs=0.06)
    quarantine = tables["lake_quarantine.web_sessions"].to_pandas()
    quarantine["day"] = quarantine.ingested_at.dt.date
    expected = quarantine.groupby(["day", "_reason_code"]).size()
    shown = table_with(built.html, "rows quarantined")
    assert len(shown) == len(expected)
    for r in shown:
        assert num(r["rows quarantined"]) == expected[(dt.date.fromisoformat(r["day"]), r["reason"])]
        assert num(r["rows that day"]) == 200
    # Histograms of the numeric columns only, one marked bar series each.
    assert "marks-hist-0-0" in built.html and "marks-hist-1-0" in built.html
    assert "marks-hist-2" not in built.html


@pytest.mark.parametrize("dataset", ["orders", "ad_performance", "experiments"])
def test_every_built_in_report_shows_the_profile_its_pipeline_wrote(dataset):
    # GIVEN what the dataset's own pipeline wrote for a file (its table, dataset_profiles, quarantine)
    tables = fx.built_in_tables(dataset)
    own = next(t for name, t in tables.items() if name != "dataset_profiles" and "." not in name).to_pandas()
    # WHEN its report is drawn
    built, _ = report(dataset, tables)
    # THEN the profile lists every column of the dataset's table with pandas' row and missing counts
    assert not any("dataset_profiles" in n for n in built.notes), built.notes
    shown = {r["column"]: r for r in table_with(built.html, "distinct (largest per file)")}
    assert sorted(shown) == sorted(c for c in own.columns if c != "source_id")
    for column, r in shown.items():
        assert num(r["rows"]) == len(own)
        assert num(r["missing"]) == pytest.approx(own[column].isna().mean() * 100, abs=0.06)
    # and the quarantined rows are a share of the file's rows as the profile counts them
    for r in table_with(built.html, "rows quarantined"):
        assert num(r["rows that day"]) == len(own)
    assert "marks-hist-0-0" in built.html


# --- the processing ledger ---


def test_ops_files_per_day_failures_and_cost_per_gb():
    from topology.pricing import PRICES

    tables = fx.ledger_tables()
    built, _ = report("ops", tables)
    ledger = tables["lake_ops.processing_log"].to_pandas()
    files = ledger[ledger.kind == "file"]
    per_day = files.groupby(["log_date", "status"]).size().unstack(fill_value=0)
    for r in table_with(built.html, "rows written"):
        day = dt.date.fromisoformat(r["day"])
        for status in per_day.columns:
            assert num(r[status]) == per_day.loc[day, status]
    failures = table_with(built.html, "message")
    assert len(failures) == (ledger.status == "failed").sum()
    measured = files[files.memory_mb.notna()]
    seconds = measured.billed_duration_ms.fillna(measured.duration_ms) / 1000
    measured = measured.assign(gb_s=measured.memory_mb / 1024 * seconds)
    for r in table_with(built.html, "US$ per GB"):
        if r["kind"] != "file":
            continue
        mine = measured[measured.dataset == r["dataset"]]
        expected = mine.gb_s.sum() * PRICES["us-east-1"].lambda_gb_second_arm64 / (mine.bytes.sum() / 1e9)
        assert num(r["US$ per GB"]) == pytest.approx(expected, abs=0.00006)
    assert any("no function memory recorded" in n for n in built.notes)


def cost_column(built: Report) -> list[float]:
    return [num(r["cost (US$)"]) for r in table_with(built.html, "US$ per GB")]


def test_ops_prices_the_architecture_and_region_the_stack_reports():
    # GIVEN the same ledger, drawn for an x86_64 and for an arm64 stack, and with no architecture known
    query = fx.ArrowQuery(fx.ledger_tables())
    x86 = build_report("ops", query, query.names, architecture="x86_64", region="us-east-1")
    arm = build_report("ops", query, query.names, architecture="arm64", region="us-east-1")
    unknown = build_report("ops", query, query.names)
    # THEN each says what it priced, x86_64 costs a quarter more, and no price is unknown
    assert "Lambda x86_64 price" in x86.html and "Lambda arm64 price" in arm.html
    assert "the stack&#x27;s default" in unknown.html or "the stack's default" in unknown.html
    assert cost_column(unknown) == cost_column(arm)
    assert sum(cost_column(x86)) == pytest.approx(sum(cost_column(arm)) * 1.25, rel=0.01)
    assert not any("price is unknown" in n for n in x86.notes)
    # A region the price table lacks is priced at us-east-1's figures, and the page says so.
    elsewhere = build_report("ops", query, query.names, architecture="arm64", region="ap-south-2")
    assert "ap-south-2 is not in topology/pricing.py" in elsewhere.html


def test_reports_and_the_image_packages_never_import_bench():
    # The image ships topology, analytics, handlers and reports; bench/ is not in it nor in the wheel.
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for package in ("reports", "topology", "handlers", "analytics"):
        for path in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else []
                )
                assert not [n for n in names if n.split(".")[0] == "bench"], f"{path} imports bench"


# --- bad input: each renders, says what cannot be drawn and why, never raises ---


def test_one_file_and_no_history():
    tables = fx.orders_tables()
    single = {
        k: v.filter(pa.compute.equal(v.column("as_of"), pa.scalar(fx.AS_OF_1, pa.date32()))) for k, v in tables.items()
    }
    built, _ = report("orders", single)
    assert built.as_of == fx.AS_OF_1
    assert any("one as_of so far" in n for n in built.notes)
    assert any("need two as_of dates" in n for n in built.notes)
    assert any("customer_value has no snapshot on or before" in n for n in built.notes)


def test_one_variant_experiment():
    history = fx.experiment_tables()["experiment_results_history"]
    solo = history.filter(pa.compute.equal(history.column("experiment_id"), "solo_launch"))
    built, _ = report("experiments", {"experiment_results_history": solo})
    assert any("one variant" in n and "no control" in n for n in built.notes)
    assert "marks-exp0-rate-0" in built.html


def test_one_day_campaign():
    kpis = fx.ads_tables()["campaign_kpis_history"]
    one = kpis.filter(pa.compute.equal(kpis.column("campaign"), "one_day_blast"))
    built, _ = report("ad_performance", {"campaign_kpis_history": one})
    assert any("1 day of data" in n for n in built.notes)
    assert any("no kpi_anomalies_history table" in n for n in built.notes)
    assert "marks-camp0-spend" in built.html


def test_text_only_table():
    built, _ = report("notes", fx.text_only_tables())
    assert any("no numeric columns: no histograms to draw" in n for n in built.notes)
    assert table_with(built.html, "distinct (largest per file)")


def test_no_tables_at_all():
    for dataset in ("orders", "experiments", "ad_performance", "web_sessions", "ops"):
        built, _ = report(dataset, {})
        assert built.notes, dataset
        assert "<h1>" in built.html


def test_html_in_names_is_shown_as_text_and_never_a_script():
    pages = {
        "experiments": report("experiments", fx.experiment_tables())[0].html,
        "ad_performance": report("ad_performance", fx.ads_tables())[0].html,
        "web_sessions": report("web_sessions", fx.generic_tables())[0].html,
        "ops": report("ops", fx.ledger_tables())[0].html,
    }
    for name, html in pages.items():
        assert "<script" not in html.lower(), name
        assert (
            "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
            or "&lt;script&gt;alert('x')&lt;/script&gt;" in html
        ), name
        assert "default-src 'none'" in html  # the browser would refuse a script even if one slipped through


def test_pages_are_deterministic_and_small():
    tables = fx.ads_tables()
    first, second = report("ad_performance", tables)[0].html, report("ad_performance", tables)[0].html
    assert first == second
    assert len(first) < 300_000


def test_a_few_customers_as_the_real_refresher_writes_them():
    # GIVEN the refresher's own output for three customers (fewer than the segments need: everyone
    # is in "All customers") WHEN drawn THEN the page shows them and says what needs more history.
    from analytics.orders import customer_features_table, rfm_from_features

    features = customer_features_table(
        ["a", "b", "c"], [20000, 20010, 20020], [20030, 20040, 20050], [2, 3, 1], [2, 3, 1], [10.0, 30.0, 5.0]
    )
    rfm, segments, _ = rfm_from_features(features)
    built, _ = report("orders", {"customer_rfm": rfm, "customer_segments": segments})
    assert [(r["segment"], r[f"customers on {built.as_of}"]) for r in table_with(built.html, "share")] == [
        ("All customers", "3")
    ]
    assert any("one as_of so far" in n for n in built.notes)
    assert any("no customer_value table" in n for n in built.notes)


def test_a_keyed_dataset_s_histograms_count_each_key_once_reading_its_view_twice():
    # GIVEN a keyed dataset: every file's rows, where a later file exported every session again with
    # other values, and the lake's view over them (each key once, from the newest file)
    from handlers.adapters.views import latest_by_key_sql
    from query.sql import transpile

    tables = fx.generic_tables("web_sessions")
    first = tables.pop("web_sessions")
    again = first.set_column(
        first.schema.get_field_index("pages"), "pages", pa.array([p * 2 for p in first.column("pages").to_pylist()])
    ).set_column(
        first.schema.get_field_index("ingested_at"),
        "ingested_at",
        pa.array([dt.datetime(2026, 3, 5, 9)] * first.num_rows, pa.timestamp("us", tz="UTC")),
    )
    every = pa.concat_tables([first, again])
    tables["web_sessions_sources"] = every.append_column("source_key", pa.array(["raw/a.csv"] * every.num_rows))
    query = fx.ArrowQuery(tables)
    columns = list(every.column_names)
    view = latest_by_key_sql(fx.CURATED, "web_sessions_sources", columns, ["session_id"])
    query.connection.execute(
        f'CREATE VIEW "{fx.CURATED}"."web_sessions" AS {transpile(view, query.catalog, fx.CURATED)}'
    )
    sources = query.catalog[fx.CURATED]["web_sessions_sources"]
    query.catalog[fx.CURATED]["web_sessions"] = {c: sources[c] for c in columns}
    # WHEN the report is drawn
    built = build_report("web_sessions", query, query.names | {"web_sessions"})
    # THEN each session counts once, with the newer file's values: the bins are those pandas gives
    from reports.base import Context, Sources
    from reports.generic import BINS, _bins

    ctx = Context("web_sessions", query, Sources(query.names | {"web_sessions"}), None)
    found, edges = _bins(ctx, "web_sessions", ["pages", "duration_seconds"])
    newest = again.to_pandas()
    for i, column in enumerate(["pages", "duration_seconds"]):
        values = newest[column].astype(float)
        lo, hi = values.min(), values.max()
        assert edges[i] == (lo, hi)
        expected = pd.Series(np.floor((values - lo) / ((hi - lo) / BINS)).clip(upper=BINS - 1).astype(int))
        assert found[i] == expected.value_counts().to_dict()
        assert sum(found[i].values()) == len(newest)  # not twice the sessions
    # and the view is read twice in all (bounds, then every column's bins), never once per column
    reading = [q for q in query.statements if 'FROM "web_sessions"' in q and "LIMIT 0" not in q]
    assert len(reading) == 2 + 2, built.notes  # the page's two statements, and this test's own call of _bins
    assert "numeric column of web_sessions (" in built.html, built.notes


def test_histogram_sparklines_escape_names_tell_tiny_bins_apart_and_let_empty_bins_be_hovered():
    # GIVEN a dataset whose numeric columns are named with markup, span a thousandth, or hold one value
    from reports.charts import sparkline_bars

    tables = fx.generic_tables()
    n = tables["web_sessions"].num_rows
    hostile = "<img src=x onerror=alert(1)>"
    tables["web_sessions"] = (
        tables["web_sessions"]
        .append_column(hostile, pa.array(np.linspace(0.0, 1.0, n)))
        .append_column("rate", pa.array(np.linspace(0.1, 0.101, n)))
        .append_column("constant", pa.array([7.0] * n))
    )
    # WHEN the report is drawn
    built, _ = report("web_sessions", tables)
    # THEN the name is text wherever it appears: in the table cell and in the sparkline's label
    assert hostile not in built.html
    assert "histogram of &lt;img src=x onerror=alert(1)&gt;: 600 rows from 0.000 to 1.000" in built.html
    # AND bins a 20,000th wide get edges that differ (not "0.10 to 0.10")
    rate = re.search(r"<tr><td>rate</td>.*?</tr>", built.html).group(0)
    edges = re.findall(r"<title>([\d.,]+) to ([\d.,]+): ", rate)
    assert len(edges) == 20 and all(a != b for a, b in edges)
    assert edges[0][0] == "0.100000" and edges[-1][1] == "0.101000"
    # AND a column holding one value is one bar, said so in its label
    constant = re.search(r"<tr><td>constant</td>.*?</tr>", built.html).group(0)
    assert "every value the same" in constant and 'id="marks-hist-' in constant

    # AND in a sparkline an empty bin still has a tooltip over its column but no drawn bar, and the
    # smallest non-empty bar sits above the baseline instead of on it
    svg = sparkline_bars([0, 1, 1000], slug="s", label="l", tips=["a<b", "b", "c"], height=32)
    assert "<title>a&lt;b</title>" in svg
    assert re.search(r'id="marks-s-0"[^>]*height="0.00"', svg)
    one = re.search(r'id="marks-s-1" x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.]+)"', svg)
    assert float(one.group(1)) + float(one.group(2)) <= 31 and float(one.group(2)) >= 1
    with pytest.raises(ValueError):
        sparkline_bars([1], slug='x" onload="y', label="l", tips=["t"])


def test_a_number_that_rounds_to_zero_is_shown_without_a_sign():
    from reports.page import number

    # a tiny negative change is 0.00, not "-0.00", and a tiny positive one is not "+0.00"
    assert number(-0.0001, 2) == "0.00"
    assert number(-0.0001, 2, percent=True, signed=True) == "-0.01%"
    assert number(0.00001, 2, percent=True, signed=True) == "0.00%"
    assert number(-0.0001, 4) == "-0.0001"
    assert number(0.5, 1, percent=True, signed=True) == "+50.0%"
