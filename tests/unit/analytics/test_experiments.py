"""experiments: Wilson, pooled z, chi-square and Welch figures equal to hand-worked values."""

from __future__ import annotations

import math
import statistics

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics import samples
from analytics.base import QUARANTINE_REASON_CODE, QUARANTINE_ROW_NUMBER
from analytics.experiment_statistics import (
    EXPERIMENT_RESULTS,
    chi_square_independence,
    choose_control,
    sample_ratio_test,
    two_proportion_z_test,
    wilson_interval,
)
from analytics.experiments import ExperimentsPipeline

from .conftest import CollectingSink, RunCsv, assert_matches_spec, source_for

Z = 1.959963984540054  # the 97.5% normal quantile


def test_wilson_interval_equals_the_formula_worked_by_hand() -> None:
    # 12 conversions of 100 users: p = 0.12, z² = 3.841458820694124
    z2 = Z * Z
    centre = (0.12 + z2 / 200) / (1 + z2 / 100)
    half = Z / (1 + z2 / 100) * math.sqrt(0.12 * 0.88 / 100 + z2 / 40000)
    low, high = wilson_interval(12, 100)
    assert low == pytest.approx(centre - half, abs=1e-9)
    assert high == pytest.approx(centre + half, abs=1e-9)
    # worked on paper: centre 0.1392073 / 1.0384146 = 0.1340575, half width 1.8874570 × 0.0339417 = 0.0640634
    assert (low, high) == pytest.approx((0.0699941, 0.1981210), abs=1e-6)
    # no conversions: the interval starts at 0 and ends at z²/(n + z²)
    low0, high0 = wilson_interval(0, 10)
    assert low0 == 0.0
    assert high0 == pytest.approx(z2 / (10 + z2), abs=1e-9)


def test_pooled_z_test_equals_the_formula_worked_by_hand() -> None:
    # treatment 120/1000 vs control 100/1000: pooled p = 0.11
    se = math.sqrt(0.11 * 0.89 * (1 / 1000 + 1 / 1000))
    expected_z = (0.12 - 0.10) / se
    expected_p = math.erfc(abs(expected_z) / math.sqrt(2))  # two-sided normal tail
    z, p = two_proportion_z_test(120, 1000, 100, 1000)
    assert z == pytest.approx(expected_z, abs=1e-9)
    assert p == pytest.approx(expected_p, abs=1e-9)
    assert z == pytest.approx(1.4293008, abs=1e-6)  # 0.02 / sqrt(0.0001958)
    assert two_proportion_z_test(0, 10, 0, 10) == (None, None)  # no variance: undefined, not inf


def test_chi_square_equals_the_sum_worked_by_hand() -> None:
    conversions, users = [30, 45, 25], [300, 300, 250]
    total_conv, total = sum(conversions), sum(users)
    statistic = 0.0
    for c, n in zip(conversions, users, strict=True):
        for observed, share in ((c, total_conv / total), (n - c, 1 - total_conv / total)):
            expected = n * share
            statistic += (observed - expected) ** 2 / expected
    chi2, dof, p = chi_square_independence(conversions, users)
    assert chi2 == pytest.approx(statistic, abs=1e-9)
    assert dof == 2
    assert p == pytest.approx(math.exp(-statistic / 2), abs=1e-9)  # chi-square(2) survival function
    # with two variants, chi-square (no continuity correction) is the square of the pooled z
    chi2_two, _, p_two = chi_square_independence([120, 100], [1000, 1000])
    z, p_z = two_proportion_z_test(120, 1000, 100, 1000)
    assert chi2_two == pytest.approx(z * z, abs=1e-9)
    assert p_two == pytest.approx(p_z, abs=1e-9)


def test_sample_ratio_mismatch_is_the_goodness_of_fit_worked_by_hand() -> None:
    # 1000 vs 1200 users: chi² = 2 × 100² / 1100, one degree of freedom
    statistic = 2 * 100**2 / 1100
    assert sample_ratio_test([1000, 1200]) == pytest.approx(math.erfc(math.sqrt(statistic / 2)), abs=1e-9)


def test_control_is_the_setting_then_control_then_a() -> None:
    assert choose_control(["A", "B"], {}) == "A"
    assert choose_control(["B", "Control"], {}) == "Control"
    assert choose_control(["A", "B"], {"control_variant": "b"}) == "B"
    assert choose_control(["x", "y"], {}) is None


def log(rows: list[tuple[str, str, str, str, str]]) -> str:
    return "\n".join(["experiment_id,variant,user_id,converted,revenue", *(",".join(r) for r in rows)]) + "\n"


def test_results_per_variant_with_lift_tests_and_welch(run_csv: RunCsv) -> None:
    # GIVEN control 2/4 converted and treatment 3/4, with revenue
    rows = [
        ("e1", "control", "u1", "1", "10"),
        ("e1", "control", "u2", "yes", "20"),
        ("e1", "control", "u3", "0", "0"),
        ("e1", "control", "u4", "no", "0"),
        ("e1", "treatment", "u5", "true", "30"),
        ("e1", "treatment", "u6", "1", "40"),
        ("e1", "treatment", "u7", "1", "50"),
        ("e1", "treatment", "u8", "false", "0"),
    ]
    result, sink = run_csv(ExperimentsPipeline("experiments"), log(rows))
    table = sink.table("experiment_results_by_file")
    assert_matches_spec(table, EXPERIMENT_RESULTS)
    control, treatment = table.to_pylist()
    assert (control["variant"], control["is_control"], control["users"], control["conversions"]) == (
        "control",
        True,
        4,
        2,
    )
    assert treatment["abs_lift"] == pytest.approx(0.25, abs=1e-12)
    assert treatment["rel_lift"] == pytest.approx(0.5, abs=1e-12)
    z, p = two_proportion_z_test(3, 4, 2, 4)
    assert (treatment["z_statistic"], treatment["p_value"]) == (z, p)
    assert treatment["significant"] is False and control["significant"] is None
    # Welch's t by hand: means 30 vs 7.5, sample variances over n − 1
    t = (30 - 7.5) / math.sqrt(statistics.variance([30, 40, 50, 0]) / 4 + statistics.variance([10, 20, 0, 0]) / 4)
    assert treatment["revenue_t_statistic"] == pytest.approx(t, abs=1e-9)
    assert treatment["revenue_per_user"] == 30.0 and control["revenue_per_user"] == 7.5
    assert control["srm_flag"] is False
    fact = result.models[0]
    assert fact.metrics["comparisons"] == 1 and fact.metrics["significant"] == 0


def test_users_in_two_variants_are_quarantined_and_repeat_rows_count_once(run_csv: RunCsv) -> None:
    rows = [
        ("e1", "A", "u1", "0", "0"),
        ("e1", "B", "u1", "1", "5"),  # u1 crossed: both rows out
        ("e1", "A", "u2", "0", "0"),
        ("e1", "A", "u2", "1", "7"),  # u2 seen twice in A: one user, converted
        ("e1", "B", "u3", "maybe", "0"),
        ("e1", "B", "u4", "1", "-2"),
        ("e1", "", "u5", "1", "0"),
        ("e1", "B", "u6", "1", "lots"),
    ] + [("e1", "A" if i % 2 else "B", f"f{i}", "0", "0") for i in range(30)]
    result, sink = run_csv(ExperimentsPipeline("experiments"), log(rows))
    rejected = sink.quarantined()
    got = dict(
        zip(
            rejected.column(QUARANTINE_ROW_NUMBER).to_pylist(),
            rejected.column(QUARANTINE_REASON_CODE).to_pylist(),
            strict=True,
        )
    )
    assert got == {
        1: "user_in_multiple_variants",
        2: "user_in_multiple_variants",
        5: "invalid_flag",
        6: "negative_value",
        7: "missing_value",
        8: "invalid_number",
    }
    a = next(r for r in sink.table("experiment_results_by_file").to_pylist() if r["variant"] == "A")
    assert a["users"] == 16 and a["conversions"] == 1 and a["revenue_per_user"] == pytest.approx(7 / 16)
    assert result.duplicates_dropped == 1


def test_a_lopsided_split_raises_the_srm_flag(run_csv: RunCsv) -> None:
    rows = [("e1", "A", f"a{i}", "0", "0") for i in range(1000)] + [("e1", "B", f"b{i}", "0", "0") for i in range(1200)]
    _, sink = run_csv(ExperimentsPipeline("experiments"), log(rows))
    results = sink.table("experiment_results_by_file")
    assert pc.all(results.column("srm_flag")).as_py()
    # nobody converted: the tests are undefined and say so with nulls, not with inf or NaN
    assert results.column("chi2_statistic").null_count == 2
    assert results.column("p_value").null_count == 2


def test_generated_log_gives_the_planted_effects(run_csv: RunCsv) -> None:
    sample = samples.experiments_sample(users=20000, seed=1)
    result, sink = run_csv(ExperimentsPipeline("experiments"), samples.to_csv(sample.table))
    assert result.rejected_by_reason == {"user_in_multiple_variants": 2 * len(sample.crossed_users)}
    rows = {(r["experiment_id"], r["variant"]): r for r in sink.table("experiment_results_by_file").to_pylist()}
    assert rows[("checkout_button", "treatment")]["significant"] is True  # 10% → 12% on 10k users per arm
    assert rows[("pricing_page", "B")]["significant"] is False  # planted no effect
    assert rows[("pricing_page", "A")]["control_variant"] == "A"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.tuples(st.sampled_from(["A", "B", "", "C"]), st.integers(0, 8), st.sampled_from(["0", "1", "x"])),
        min_size=1,
        max_size=40,
    )
)
def test_no_row_is_lost(run_csv: RunCsv, rows: list[tuple[str, int, str]]) -> None:
    text = log([("e1", v, f"u{u}", c, "1") for v, u, c in rows])
    result, sink = run_csv(ExperimentsPipeline("experiments", tolerance=1.0), text)
    counted = (
        sum(sink.table("experiment_results_by_file").column("users").to_pylist())
        if "experiment_results_by_file" in sink.written
        else 0
    )
    assert counted + sink.quarantined_rows + result.duplicates_dropped == result.rows_in == len(rows)


def test_typed_flags_and_revenue_are_accepted() -> None:
    batch = pa.record_batch(
        {
            "experiment_id": ["e1"] * 4,
            "variant": ["A", "A", "B", "B"],
            "user_id": pa.array([1, 2, 3, 4]),
            "converted": pa.array([True, False, True, True]),
            "revenue": pa.array([10.0, None, 5.0, 7.5]),
        }
    )
    sink = CollectingSink()
    result = ExperimentsPipeline("experiments").run(iter([batch]), source_for("experiments"), sink)
    assert result.rows_rejected == 0
    b = next(r for r in sink.table("experiment_results_by_file").to_pylist() if r["variant"] == "B")
    assert (b["users"], b["conversions"], b["revenue_per_user"]) == (2, 2, 6.25)
