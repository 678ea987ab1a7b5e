"""The statistics of A/B experiments, per experiment and variant, for one file or a whole history:

* conversion rate per variant with the Wilson score 95% interval;
* absolute and relative lift against the control and the two-sided two-proportion z-test with
  pooled variance (``significant`` when p < 0.05);
* a chi-square test of independence (no continuity correction) over all variants;
* revenue per user and Welch's t-test against the control, when revenue is given;
* a sample-ratio-mismatch check: chi-square goodness of fit against an equal split, flagged when
  p < 0.001 (the assignment is probably broken and the other figures should not be trusted).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from analytics.base import ModelFact, TableSpec, col

MODEL_VERSION = "1"
ALPHA = 0.05
SRM_ALPHA = 0.001
#: z for a two-sided 95% interval, norm.ppf(0.975).
Z_95 = 1.959963984540054
#: Variant names taken as the control when the dataset settings name none (case-insensitive).
DEFAULT_CONTROLS = ("control", "a")

EXPERIMENT_RESULTS = TableSpec(
    "experiment_results_by_file",
    "ingest_date",
    "One row per experiment × variant of one exposure file (per-file results; `experiment_results` answers "
    "over every file): conversion, Wilson interval, lift and tests against control.",
    pa.schema(
        [
            col("experiment_id", pa.string(), "experiment"),
            col("variant", pa.string(), "variant"),
            col("is_control", pa.bool_(), "this variant is the control"),
            col("users", pa.int64(), "distinct users"),
            col("conversions", pa.int64(), "users who converted"),
            col("conversion_rate", pa.float64(), "conversions / users"),
            col("ci_low", pa.float64(), "lower end of the Wilson score 95% interval of the conversion rate"),
            col("ci_high", pa.float64(), "upper end of the Wilson score 95% interval of the conversion rate"),
            col("abs_lift", pa.float64(), "conversion_rate − control's"),
            col("rel_lift", pa.float64(), "abs_lift / control's rate (null when the control's rate is 0)"),
            col("z_statistic", pa.float64(), "two-proportion z-test against the control, pooled variance"),
            col("p_value", pa.float64(), "its two-sided p-value"),
            col("significant", pa.bool_(), "p_value < 0.05"),
            col(
                "chi2_statistic",
                pa.float64(),
                "chi-square test of independence over all variants of the experiment (no continuity correction; "
                "same on every row of the experiment)",
            ),
            col("chi2_dof", pa.int64(), "its degrees of freedom (variants − 1)"),
            col("chi2_p_value", pa.float64(), "its p-value"),
            col("revenue_per_user", pa.float64(), "mean revenue per user (null without a revenue column)"),
            col("revenue_t_statistic", pa.float64(), "Welch's t-test of revenue per user against the control"),
            col("revenue_p_value", pa.float64(), "its two-sided p-value"),
            col(
                "srm_p_value",
                pa.float64(),
                "chi-square goodness of fit of users per variant against an equal split",
            ),
            col("srm_flag", pa.bool_(), "sample-ratio mismatch: srm_p_value < 0.001 — distrust the other figures"),
            col("control_variant", pa.string(), "the variant used as control"),
            ("source_id", pa.string()),
            col("ingest_date", pa.date32(), "the day the file was stored"),
        ]
    ),
)


def wilson_interval(conversions: int, users: int, z: float = Z_95) -> tuple[float | None, float | None]:
    """Wilson score interval for a proportion: better than p ± z·se for small counts and p near 0/1.

    centre = (p + z²/2n) / (1 + z²/n), half width = z / (1 + z²/n) · sqrt(p(1−p)/n + z²/4n²).
    """
    if users <= 0:
        return None, None
    p = conversions / users
    z2 = z * z
    denominator = 1 + z2 / users
    centre = (p + z2 / (2 * users)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / users + z2 / (4 * users * users))
    return max(0.0, centre - half), min(1.0, centre + half)


def two_proportion_z_test(x1: int, n1: int, x2: int, n2: int) -> tuple[float | None, float | None]:
    """Two-sided z-test of p1 = p2 with pooled variance: ``(z, p_value)``; z > 0 when p1 > p2.

    z = (p1 − p2) / sqrt(p̂(1−p̂)(1/n1 + 1/n2)) with p̂ = (x1 + x2)/(n1 + n2); None when undefined.
    """
    from scipy.stats import norm  # imported on use: collecting the dataset specs stays light

    if n1 <= 0 or n2 <= 0:
        return None, None
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return None, None
    z = (x1 / n1 - x2 / n2) / se
    return z, float(2 * norm.sf(abs(z)))


def chi_square_independence(conversions: Sequence[int], users: Sequence[int]) -> tuple[float | None, int, float | None]:
    """Chi-square test that conversion is independent of the variant: ``(statistic, dof, p)``.

    The 2 × k table is (converted, not converted) per variant; no continuity correction, so with two
    variants the statistic equals the squared pooled z. None when a row or column total is 0.
    """
    from scipy.stats import chi2_contingency  # imported on use: collecting the dataset specs stays light

    table = np.array([list(conversions), [u - c for u, c in zip(users, conversions, strict=True)]], dtype=float)
    dof = max(len(users) - 1, 0)
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any() or (table.sum(axis=0) == 0).any():
        return None, dof, None
    result = chi2_contingency(table, correction=False)
    return float(result.statistic), int(result.dof), float(result.pvalue)


def sample_ratio_test(users: Sequence[int]) -> float | None:
    """p-value of the chi-square goodness-of-fit test of the user counts against an equal split."""
    from scipy.stats import chisquare  # imported on use: collecting the dataset specs stays light

    counts = np.asarray(users, dtype=float)
    if len(counts) < 2 or counts.sum() == 0:
        return None
    return float(chisquare(counts).pvalue)


def welch_t_test(treatment: np.ndarray, control: np.ndarray) -> tuple[float | None, float | None]:
    """Welch's t-test (unequal variances) of mean revenue per user: ``(t, p_value)``."""
    from scipy.stats import ttest_ind  # imported on use: collecting the dataset specs stays light

    if len(treatment) < 2 or len(control) < 2:
        return None, None
    if np.var(treatment) == 0 and np.var(control) == 0:
        return None, None
    with warnings.catch_warnings():
        # scipy warns about precision when one arm's revenues are all equal; the result stands.
        warnings.simplefilter("ignore", RuntimeWarning)
        result = ttest_ind(treatment, control, equal_var=False)
    return float(result.statistic), float(result.pvalue)


def choose_control(variants: Sequence[str], settings: Mapping[str, Any]) -> str | None:
    """The control variant: the setting ``control_variant``, else ``control``, else ``A``."""
    configured = settings.get("control_variant")
    wanted = [str(configured)] if configured else list(DEFAULT_CONTROLS)
    by_lower = {v.lower(): v for v in sorted(variants)}
    for name in wanted:
        if name.lower() in by_lower:
            return by_lower[name.lower()]
    return None


@dataclass
class ExperimentStatistics:
    """Per experiment × variant figures (rows without lineage columns) and counts for the facts."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    experiments: list[str] = field(default_factory=list)
    significant: int = 0
    srm_flags: int = 0
    without_control: list[str] = field(default_factory=list)


def experiment_statistics(
    per_user: pa.Table,
    settings: Mapping[str, Any],
    *,
    has_revenue: bool,
    declared_variants: Mapping[str, Sequence[str]] | None = None,
) -> ExperimentStatistics:
    """The statistics of every experiment in a per-user table (``converted_max``, ``revenue_sum``).

    ``declared_variants`` names variants per experiment that must get a row even with no users
    (their figures are then null). Rows whose ``user_id`` is null count for no user but still
    make their variant known.
    """
    out = ExperimentStatistics()
    # Sorted once by experiment, each experiment is a zero-copy slice (no filter per experiment).
    per_user = per_user.sort_by([("experiment_id", "ascending"), ("variant", "ascending")])
    ids = per_user.column("experiment_id").to_numpy(zero_copy_only=False)
    starts = [0, *(np.flatnonzero(ids[1:] != ids[:-1]) + 1).tolist()] if len(ids) else []
    bounds = list(zip(starts, [*starts[1:], len(ids)], strict=True)) if starts else []
    out.experiments = [str(ids[start]) for start, _ in bounds]
    has_user = per_user.column("user_id").is_valid().to_numpy(zero_copy_only=False)
    for experiment, (start, end) in zip(out.experiments, bounds, strict=True):
        sub = per_user.slice(start, end - start)
        present = has_user[start:end]
        variant_col = sub.column("variant").to_numpy(zero_copy_only=False)
        converted = sub.column("converted_max").to_numpy(zero_copy_only=False).astype(bool)
        revenue = sub.column("revenue_sum").to_numpy(zero_copy_only=False).astype(float)
        declared = (declared_variants or {}).get(experiment, ())
        variants = sorted(set(variant_col.tolist()) | set(declared))
        control = choose_control(variants, settings)
        if control is None:
            out.without_control.append(experiment)
        in_variant = {v: (variant_col == v) & present for v in variants}
        users = [int(np.count_nonzero(in_variant[v])) for v in variants]
        conversions = [int(np.count_nonzero(converted[in_variant[v]])) for v in variants]
        chi2, dof, chi2_p = chi_square_independence(conversions, users)
        srm_p = sample_ratio_test(users)
        srm = srm_p is not None and srm_p < SRM_ALPHA
        out.srm_flags += int(srm)
        c_index = variants.index(control) if control is not None else None
        for i, variant in enumerate(variants):
            n, x = users[i], conversions[i]
            low, high = wilson_interval(x, n)
            row: dict[str, Any] = {
                "experiment_id": experiment,
                "variant": variant,
                "is_control": variant == control,
                "users": n,
                "conversions": x,
                "conversion_rate": x / n if n else None,
                "ci_low": low,
                "ci_high": high,
                "abs_lift": None,
                "rel_lift": None,
                "z_statistic": None,
                "p_value": None,
                "significant": None,
                "chi2_statistic": chi2,
                "chi2_dof": dof,
                "chi2_p_value": chi2_p,
                "revenue_per_user": float(revenue[in_variant[variant]].mean()) if has_revenue and n else None,
                "revenue_t_statistic": None,
                "revenue_p_value": None,
                "srm_p_value": srm_p,
                "srm_flag": srm,
                "control_variant": control,
            }
            cn = users[c_index] if c_index is not None else 0
            if c_index is not None and i != c_index and n > 0 and cn > 0:
                cx = conversions[c_index]
                rate, c_rate = x / n, cx / cn
                row["abs_lift"] = rate - c_rate
                row["rel_lift"] = (rate - c_rate) / c_rate if c_rate > 0 else None
                z, p = two_proportion_z_test(x, n, cx, cn)
                row["z_statistic"], row["p_value"] = z, p
                row["significant"] = p is not None and p < ALPHA
                out.significant += int(bool(row["significant"]))
                if has_revenue:
                    t, tp = welch_t_test(revenue[in_variant[variant]], revenue[in_variant[control]])
                    row["revenue_t_statistic"], row["revenue_p_value"] = t, tp
            out.rows.append(row)
    return out


def statistics_fact(stats: ExperimentStatistics, extra: Mapping[str, float | int | str | bool | None]) -> ModelFact:
    """The ``experiment_tests`` model fact of :func:`experiment_statistics`, plus ``extra`` metrics."""
    return ModelFact(
        "experiment_tests",
        MODEL_VERSION,
        {
            "experiments": len(stats.experiments),
            "variants": len(stats.rows),
            "comparisons": sum(1 for r in stats.rows if r["p_value"] is not None),
            "significant": stats.significant,
            "srm_flags": stats.srm_flags,
            "experiments_without_control": ",".join(stats.without_control) or None,
            "alpha": ALPHA,
            "tests": "wilson95,two_proportion_z_pooled,chi2_independence,welch_t,srm_chi2",
            **extra,
        },
    )
