"""experiments over history: parts equal the whole, and the always-valid inference keeps its promise."""

from __future__ import annotations

import itertools
import math
from datetime import date

import numpy as np
import pyarrow as pa
import pytest
from scipy import integrate, optimize
from scipy.stats import norm

from analytics import samples
from analytics.errors import HistoryInputError
from analytics.experiment_history import EXPERIMENT_RESULTS_HISTORY, experiment_history
from analytics.experiment_statistics import EXPERIMENT_RESULTS, two_proportion_z_test
from analytics.experiments import ExperimentsPipeline
from analytics.sequential import (
    DEFAULT_TAU,
    compare_conversions,
    confidence_radius,
    log_mixture_likelihood_ratio,
)

from .conftest import CollectingSink, assert_matches_spec, csv_batches, source_for

AS_OF = date(2024, 6, 30)
STAT_COLUMNS = [f.name for f in EXPERIMENT_RESULTS.schema if f.name not in ("source_id", "ingest_date")]  # type: ignore[union-attr]


def exposures_of(text: str) -> tuple[pa.Table, pa.Table, int]:
    """Run the per-file pipeline on CSV text: experiment_results, experiment_exposures, rows quarantined."""
    sink = CollectingSink()
    ExperimentsPipeline("experiments", tolerance=1.0).run(iter(csv_batches(text)), source_for("experiments"), sink)
    return sink.table("experiment_results_by_file"), sink.table("experiment_exposures"), sink.quarantined_rows


def by_variant(table: pa.Table) -> dict[tuple[str, str], dict[str, object]]:
    return {(r["experiment_id"], r["variant"]): r for r in table.to_pylist()}


def assert_same_figures(got: pa.Table, want: pa.Table, columns: list[str]) -> None:
    """Equal per experiment × variant; floats to 12 digits (sums run in another order)."""
    mine, theirs = by_variant(got), by_variant(want)
    assert mine.keys() == theirs.keys()
    for key, row in theirs.items():
        for column in columns:
            expected = row[column]
            assert mine[key][column] == (
                pytest.approx(expected, rel=1e-12) if isinstance(expected, float) else expected
            ), (
                key,
                column,
            )


def test_an_experiment_split_over_three_files_gives_the_single_file_statistics() -> None:
    # GIVEN an exposure log whose crossed users' second rows come last, so a split puts them in another file
    sample = samples.experiments_sample(users=6000, seed=5)
    whole_results, whole_exposures, _ = exposures_of(samples.to_csv(sample.table))
    n = sample.table.num_rows
    cuts = [0, n // 3, 2 * n // 3, n]
    runs = [exposures_of(samples.to_csv(sample.table.slice(a, b - a))) for a, b in itertools.pairwise(cuts)]
    parts = [exposures for _, exposures, _ in runs]
    # WHEN the history is computed over the union of the three files' exposures
    history = experiment_history(pa.concat_tables(parts), AS_OF)
    # THEN every statistic equals the one-file figures, and the users crossing files are the crossed users
    assert_matches_spec(history.results, EXPERIMENT_RESULTS_HISTORY)
    assert_same_figures(history.results, whole_results, STAT_COLUMNS)
    # a file quarantines the users crossing within it (two rows each); the history finds those crossing files
    across = {(r["experiment_id"], r["user_id"]) for r in history.crossed_users.to_pylist()}
    within = sum(quarantined for _, _, quarantined in runs) // 2
    assert across <= set(sample.crossed_users) and len(across) + within == len(sample.crossed_users)
    assert history.fact.metrics["crossed_users_excluded"] == len(across) > 0
    # the whole file's exposures (crossed users already out) give the very same table, sequential columns included
    from_whole = experiment_history(whole_exposures, AS_OF).results
    assert_same_figures(from_whole, history.results, EXPERIMENT_RESULTS_HISTORY.schema.names)  # type: ignore[union-attr]


def test_the_always_valid_interval_contains_the_fixed_n_interval_and_narrows_to_the_truth() -> None:
    # analytic: the radius is never below the fixed-n z·sqrt(V), whatever V and tau
    for variance in (1e-7, 1e-5, 1e-3, 1e-1):
        for tau in (0.005, 0.02, 0.2):
            assert confidence_radius(variance, tau, 0.05) > 1.959963984540054 * math.sqrt(variance)
    # GIVEN a true lift of 2 points (10% → 12%) watched as users accumulate
    rng = np.random.default_rng(11)
    xt = xc = nt = 0
    widths = []
    for users in (500, 2_000, 8_000, 32_000, 128_000, 512_000):
        xt += int(rng.binomial(users - nt, 0.12))
        xc += int(rng.binomial(users - nt, 0.10))
        nt = users
        c = compare_conversions(xt, nt, xc, nt)
        assert c is not None
        # THEN the always-valid interval holds the fixed-n one and the truth at every look
        assert c.ci_low < c.fixed_ci_low < c.estimate < c.fixed_ci_high < c.ci_high
        assert c.ci_low <= 0.02 <= c.ci_high
        widths.append(c.ci_high - c.ci_low)
    # AND narrows towards it: each look narrower, the last under half a point wide
    assert widths == sorted(widths, reverse=True)
    assert widths[-1] < 0.005
    assert c.significant and c.p_value < 1e-6


def test_under_the_null_peeking_after_every_file_keeps_the_always_valid_error_at_alpha() -> None:
    # GIVEN 300 A/A experiments, each looked at after 20 daily files of 250 users per arm
    rng = np.random.default_rng(20240101)
    experiments, looks, per_look, rate, alpha = 300, 20, 250, 0.10, 0.05
    conv_t = rng.binomial(per_look, rate, size=(experiments, looks)).cumsum(axis=1)
    conv_c = rng.binomial(per_look, rate, size=(experiments, looks)).cumsum(axis=1)
    naive_rejected = np.zeros(experiments, dtype=bool)
    sequential_rejected = np.zeros(experiments, dtype=bool)
    for e in range(experiments):
        for look in range(looks):
            n = per_look * (look + 1)
            xt, xc = int(conv_t[e, look]), int(conv_c[e, look])
            _, p = two_proportion_z_test(xt, n, xc, n)
            naive_rejected[e] |= p is not None and p < alpha
            c = compare_conversions(xt, n, xc, n)
            sequential_rejected[e] |= c is not None and c.p_value < alpha
    # THEN a false positive at any look stays within alpha (plus Monte Carlo error: 2.5 standard errors)
    tolerance = 2.5 * math.sqrt(alpha * (1 - alpha) / experiments)
    assert sequential_rejected.mean() <= alpha + tolerance
    # while the fixed-n test, checked at every look, cries wolf far more often than its 5%
    assert naive_rejected.mean() > 0.12
    # AND the always-valid test still finds a real 3-point lift within the same 20 looks
    found = 0
    for _ in range(50):
        xt = int(rng.binomial(per_look * looks, 0.13))
        xc = int(rng.binomial(per_look * looks, 0.10))
        c = compare_conversions(xt, per_look * looks, xc, per_look * looks)
        found += int(c is not None and c.significant)
    assert found >= 40


def _mixture_ratio_by_integration(estimate: float, variance: float, tau: float, theta0: float) -> float:
    """∫ N(θ̂; θ, V) N(θ; θ₀, τ²) dθ / N(θ̂; θ₀, V), numerically."""
    sd = math.sqrt(variance)
    numerator, _ = integrate.quad(
        lambda theta: norm.pdf(estimate, theta, sd) * norm.pdf(theta, theta0, tau),
        theta0 - 12 * tau,
        theta0 + 12 * tau,
        points=[estimate],
        epsabs=0,
        epsrel=1e-11,
        limit=200,
    )
    return numerator / norm.pdf(estimate, theta0, sd)


@pytest.mark.parametrize(
    ("estimate", "variance", "tau", "theta0"),
    [(0.01, 1e-4, 0.02, 0.0), (0.03, 4e-5, 0.02, 0.0), (-0.02, 2.5e-4, 0.05, 0.01), (0.0, 1e-3, 0.01, 0.0)],
)
def test_the_mixture_ratio_equals_direct_integration_of_the_likelihood_ratio(
    estimate: float, variance: float, tau: float, theta0: float
) -> None:
    closed = math.exp(log_mixture_likelihood_ratio(estimate, variance, tau, theta0))
    assert closed == pytest.approx(_mixture_ratio_by_integration(estimate, variance, tau, theta0), rel=1e-7)


def test_the_interval_ends_are_where_the_integrated_ratio_reaches_one_over_alpha() -> None:
    c = compare_conversions(1300, 10_000, 1150, 10_000)
    assert c is not None
    # solve Λ(θ₀) = 1/α with the integrated ratio, independently of the closed-form radius
    target = 1 / c.alpha

    def excess(theta0: float) -> float:
        return math.log(_mixture_ratio_by_integration(c.estimate, c.variance, c.tau, theta0)) - math.log(target)

    upper = optimize.brentq(excess, c.estimate + 1e-6, c.estimate + 0.05, xtol=1e-12)
    lower = optimize.brentq(excess, c.estimate - 0.05, c.estimate - 1e-6, xtol=1e-12)
    assert (c.ci_low, c.ci_high) == pytest.approx((lower, upper), abs=1e-8)
    # and the p-value is 1/Λ at θ₀ = 0
    assert c.p_value == pytest.approx(1 / _mixture_ratio_by_integration(c.estimate, c.variance, c.tau, 0.0), rel=1e-7)


def test_the_interval_is_the_published_gaussian_mixture_asymptotic_confidence_sequence() -> None:
    # Waudby-Smith et al. (2024), Gaussian-mixture AsympCS for a mean of t observations of variance σ²:
    # σ · sqrt(2(tρ² + 1) / (t²ρ²) · log(sqrt(tρ² + 1) / α)); ours with V = σ²/t and τ = ρσ.
    sigma2, rho, alpha = 0.18, 0.04, 0.05
    for t in (100, 1_000, 50_000):
        published = math.sqrt(sigma2) * math.sqrt(
            2 * (t * rho**2 + 1) / (t**2 * rho**2) * math.log(math.sqrt(t * rho**2 + 1) / alpha)
        )
        assert confidence_radius(sigma2 / t, rho * math.sqrt(sigma2), alpha) == pytest.approx(published, rel=1e-12)


def rows(*exposures: tuple[str, str | None, str | None, bool]) -> pa.Table:
    e, v, u, c = zip(*exposures, strict=True)
    return pa.table(
        {
            "experiment_id": pa.array(e, pa.string()),
            "variant": pa.array(v, pa.string()),
            "user_id": pa.array(u, pa.string()),
            "converted": pa.array(c, pa.bool_()),
        }
    )


def ab(experiment: str, a: tuple[int, int], b: tuple[int, int], names: tuple[str, str] = ("A", "B")) -> list:
    """Users per variant: (users, conversions) for each of two variants."""
    out = []
    for name, (users, conversions) in zip(names, (a, b), strict=True):
        out += [(experiment, name, f"{experiment}-{name}-{i}", i < conversions) for i in range(users)]
    return out


def test_one_variant_no_users_and_no_control_are_facts_not_crashes() -> None:
    table = rows(
        *[("solo", "A", f"s{i}", i % 3 == 0) for i in range(30)],
        *ab("nocontrol", (40, 4), (40, 9), names=("red", "blue")),
        *[("empty", "A", f"e{i}", i % 4 == 0) for i in range(20)],
        ("empty", "B", None, False),  # B is known but nobody was exposed yet
    )
    history = experiment_history(table, AS_OF, declared_variants={"solo": ["A"]})
    got = by_variant(history.results)
    assert got[("empty", "B")]["users"] == 0 and got[("empty", "B")]["conversion_rate"] is None
    assert got[("empty", "A")]["users"] == 20
    assert all(r["always_valid_p_value"] is None for r in got.values())
    notes = " | ".join(history.notes)
    assert "experiment solo has one variant (A)" in notes
    assert "experiment empty: variant B has no users" in notes
    assert "experiment nocontrol has no control among blue, red; name one with control_variant" in notes
    assert history.fact.metrics["experiments_without_control"] == "nocontrol"
    # naming the control in settings makes the comparison
    named = experiment_history(table, AS_OF, settings={"control_variant": "red"})
    assert by_variant(named.results)[("nocontrol", "blue")]["always_valid_p_value"] is not None


def test_bad_input_is_one_clear_error() -> None:
    table = rows(*ab("e", (10, 1), (10, 2)))
    with pytest.raises(HistoryInputError, match="lack the column"):
        experiment_history(table.drop(["converted"]), AS_OF)
    with pytest.raises(HistoryInputError, match="sequential_tau 'wide' is not a number"):
        experiment_history(table, AS_OF, settings={"sequential_tau": "wide"})
    empty = experiment_history(table.slice(0, 0), AS_OF)
    assert empty.results.num_rows == 0 and empty.fact.metrics["experiments"] == 0


def test_the_p_value_keeps_its_running_minimum_across_snapshots() -> None:
    # GIVEN a snapshot where B looked strong, then a day that made it look weaker
    early = experiment_history(rows(*ab("e", (2000, 200), (2000, 290))), date(2024, 6, 1))
    later_rows = rows(*ab("e", (4000, 430), (4000, 480)))
    alone = experiment_history(later_rows, date(2024, 6, 2))
    carried = experiment_history(later_rows, date(2024, 6, 2), previous=early.results)
    p_early = by_variant(early.results)[("e", "B")]["always_valid_p_value"]
    p_alone = by_variant(alone.results)[("e", "B")]["always_valid_p_value"]
    got = by_variant(carried.results)[("e", "B")]
    assert p_early < p_alone  # the later look alone would raise the p-value
    assert got["always_valid_p_value"] == p_early  # the running minimum does not
    early_b = by_variant(early.results)[("e", "B")]
    assert got["always_valid_ci_high"] <= early_b["always_valid_ci_high"]
    # a snapshot with another tau, or of the same as_of, is not carried over
    other_tau = experiment_history(
        rows(*ab("e", (2000, 200), (2000, 290))), date(2024, 6, 1), settings={"sequential_tau": 0.05}
    )
    assert (
        by_variant(experiment_history(later_rows, date(2024, 6, 2), previous=other_tau.results).results)[("e", "B")][
            "always_valid_p_value"
        ]
        == p_alone
    )
    assert experiment_history(later_rows, date(2024, 6, 1), previous=early.results).results.equals(
        experiment_history(later_rows, date(2024, 6, 1)).results
    )


def test_the_tuning_parameter_and_method_are_reported() -> None:
    history = experiment_history(rows(*ab("e", (500, 50), (500, 70))), AS_OF)
    comparison = history.comparisons[("e", "B")]
    assert comparison.tau == DEFAULT_TAU and "Johari" in comparison.method
    assert (comparison.n_treatment, comparison.n_control) == (500, 500)
    assert comparison.estimate == pytest.approx(0.04)
    row = by_variant(history.results)[("e", "B")]
    assert row["sequential_tau"] == DEFAULT_TAU and row["as_of"] == AS_OF
    assert row["diff_ci_low"] == pytest.approx(comparison.fixed_ci_low)


def test_the_refresher_reads_back_the_previous_as_of_and_keeps_the_running_minimum() -> None:
    """refresh_experiments with its SQL run by DuckDB (transpiled from Athena's dialect) over the tables
    a refresh would pin: day 1's strong effect, then day 2's users with none."""
    from datetime import timedelta

    import duckdb
    import sqlglot

    from analytics.base import RefreshContext
    from analytics.history_refreshers import refresh_experiments

    day1 = date(2026, 5, 1)

    def rows(users: range, rates: dict[str, float], day: date, seed: int) -> list[dict[str, object]]:
        rng = np.random.default_rng(seed)
        out = []
        for n in users:
            variant = "control" if n % 2 else "treatment"
            out.append(
                {"experiment_id": "e", "variant": variant, "user_id": f"u{n}",
                 "converted": bool(rng.random() < rates[variant]), "revenue": None, "ingest_date": day}
            )  # fmt: skip
        return out

    first = rows(range(0, 4000), {"control": 0.10, "treatment": 0.16}, day1, 1)
    second = rows(range(4000, 12000), {"control": 0.12, "treatment": 0.12}, day1 + timedelta(1), 2)

    def engine(tables: dict[str, pa.Table]) -> object:
        def query(sql: str) -> pa.Table:
            connection = duckdb.connect()
            for name, table in tables.items():
                connection.register(name, table)
            return connection.sql(sqlglot.transpile(sql, read="athena", write="duckdb")[0]).to_arrow_table()

        return query

    exposures1 = pa.Table.from_pylist(first)
    looked = refresh_experiments(engine({"experiment_exposures_sources": exposures1}), RefreshContext())
    [results1, _] = looked.tables
    p1 = {r["variant"]: r for r in results1.rows.to_pylist()}["treatment"]["always_valid_p_value"]
    exposures2 = pa.Table.from_pylist(first + second)
    alone = refresh_experiments(engine({"experiment_exposures_sources": exposures2}), RefreshContext())
    p_alone = {r["variant"]: r for r in alone.tables[0].rows.to_pylist()}["treatment"]["always_valid_p_value"]
    carried = refresh_experiments(
        engine({"experiment_exposures_sources": exposures2, "experiment_results_history": results1.rows}),
        RefreshContext(tables=frozenset({"experiment_results_history"})),
    )
    [results2, crossed] = carried.tables
    assert results2.as_of == day1 + timedelta(1) and results1.as_of == day1
    p2 = {r["variant"]: r for r in results2.rows.to_pylist()}["treatment"]["always_valid_p_value"]
    # the diluted second look alone is weaker than the first; read back, the first look's p stands
    assert p_alone > p1
    assert p2 == pytest.approx(min(p1, p_alone))
    assert crossed.rows.num_rows == 0
