"""``experiments`` over history: every exposure file of an experiment at once, with always-valid inference.

The refresh reads ``experiment_exposures`` (one row per experiment × user: the lake keeps each user
once per experiment, from the newest file that has them) and calls :func:`experiment_history`. The
figures are those of :mod:`analytics.experiment_statistics` (Wilson, pooled z, chi-square, Welch t, SRM) over
the union of the files, plus the always-valid interval and p-value of :mod:`analytics.sequential`,
because people look at the results after every daily file and the fixed-n p-value is only valid
for one pre-planned look.

Output: ``experiment_results_history``, one snapshot per ``as_of``. It is a table of its own rather
than an ``as_of`` partition of the per-file ``experiment_results``: that table's rows belong to a
source object (a corrected file replaces them, a deleted file removes them), these belong to a
refresh (a refresh with the same ``as_of`` replaces them), and mixing both lifecycles in one Iceberg
table would let a file's replace delete refresh rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from analytics.base import ModelFact, TableSpec, col
from analytics.contract import conform, fixed_schema
from analytics.errors import HistoryInputError
from analytics.experiment_statistics import EXPERIMENT_RESULTS, experiment_statistics, statistics_fact
from analytics.sequential import DEFAULT_ALPHA, DEFAULT_TAU, METHOD, SequentialComparison, compare_conversions

_LINEAGE = ("source_id", "ingest_date")

EXPERIMENT_RESULTS_HISTORY = TableSpec(
    "experiment_results_history",
    "as_of",
    "One row per experiment × variant over every exposure file, as of a date: conversion, Wilson interval, "
    "lift and tests against control, and the always-valid (mSPRT) interval and p-value for the lift, "
    "safe to check after every file.",
    pa.schema(
        [
            *(f for f in fixed_schema(EXPERIMENT_RESULTS) if f.name not in _LINEAGE),
            col(
                "diff_ci_low",
                pa.float64(),
                "lower end of the fixed-n 95% Wald interval for `abs_lift`: valid only for one look planned in advance",
            ),
            col("diff_ci_high", pa.float64(), "upper end of the fixed-n 95% Wald interval for `abs_lift`"),
            col(
                "always_valid_ci_low",
                pa.float64(),
                "lower end of the 95% confidence sequence for `abs_lift`: valid at every look at once",
            ),
            col("always_valid_ci_high", pa.float64(), "upper end of the 95% confidence sequence for `abs_lift`"),
            col(
                "always_valid_p_value",
                pa.float64(),
                'always-valid p-value of "no difference" (running minimum across snapshots)',
            ),
            col("always_valid_significant", pa.bool_(), "always_valid_p_value < 0.05"),
            col("sequential_method", pa.string(), "`mSPRT normal mixture (Johari, Pekelis & Walsh 2022)`"),
            col("sequential_tau", pa.float64(), "the mixture's spread τ (setting `sequential_tau`, default 0.02)"),
            col("as_of", pa.date32(), "the newest `ingest_date` of the exposures"),
        ]
    ),
    current_view="experiment_results",
)

_REQUIRED = ("experiment_id", "variant", "user_id", "converted")
_CROSSED = pa.schema(
    [
        col("experiment_id", pa.string(), "experiment"),
        col("user_id", pa.string(), "user left out of the experiment's results"),
        col("variants", pa.string(), "the variants the exposure files show the user in, sorted, comma-separated"),
    ]
)

EXPERIMENT_CROSSED_USERS = TableSpec(
    "experiment_crossed_users",
    "as_of",
    "Users left out of an experiment's results over history because the exposure files show them in more "
    "than one variant (in one file or across files), as of a date: experiment, user and the variants seen.",
    pa.schema([*_CROSSED, col("as_of", pa.date32(), "the newest `ingest_date` of the exposures")]),
)


@dataclass(frozen=True)
class ExperimentHistory:
    """What :func:`experiment_history` found: the table, each comparison, the excluded users, notes."""

    results: pa.Table
    #: (experiment_id, variant) → its comparison with the control, for every comparable variant.
    comparisons: Mapping[tuple[str, str], SequentialComparison]
    #: Users seen in more than one variant of an experiment: experiment_id, user_id, variants.
    crossed_users: pa.Table
    #: One sentence per thing a person should know (an experiment that cannot be compared, ...).
    notes: tuple[str, ...]
    fact: ModelFact


def experiment_history(
    exposures: pa.Table,
    as_of: date,
    *,
    settings: Mapping[str, Any] | None = None,
    previous: pa.Table | None = None,
    declared_variants: Mapping[str, Sequence[str]] | None = None,
) -> ExperimentHistory:
    """Results per experiment × variant over every exposure row, as of ``as_of``.

    ``exposures`` has ``experiment_id``, ``variant``, ``user_id``, ``converted`` and optionally
    ``revenue``, one row per experiment × user. Should a user still appear twice (say the caller
    read ``experiment_exposures_sources``), the same variant counts once (converted if any row is,
    the largest revenue, since a re-export repeats it) and two variants exclude the user, who is
    returned in ``crossed_users``. A row with no ``user_id`` counts for no user but makes its
    variant known, as do ``declared_variants``; such a variant gets a row with null figures.

    ``previous`` is the last snapshot of ``experiment_results_history`` before ``as_of``: the
    always-valid p-value keeps its running minimum and the interval its intersection across
    snapshots (rows with another tau, or not earlier than ``as_of``, are ignored). Without it each
    snapshot's figures are still valid at every look, just not monotone.
    """
    settings = settings or {}
    tau = _tau(settings)
    missing = [c for c in _REQUIRED if c not in exposures.column_names]
    if missing:
        raise HistoryInputError(
            f"experiment exposures lack the column(s) {', '.join(missing)}; select experiment_id, variant, "
            "user_id, converted (and revenue) from experiment_exposures"
        )
    has_revenue = "revenue" in exposures.column_names
    notes: list[str] = []
    frame = pd.DataFrame(
        {
            "experiment_id": exposures.column("experiment_id").to_pandas().astype("string"),
            "variant": exposures.column("variant").to_pandas().astype("string"),
            "user_id": exposures.column("user_id").cast(pa.string()).to_pandas().astype("string"),
            "converted": exposures.column("converted").to_pandas().fillna(False).astype(bool),
            "revenue": exposures.column("revenue").to_pandas().astype(float).fillna(0.0)
            if has_revenue
            else np.zeros(exposures.num_rows),
        }
    )
    unnamed = frame["experiment_id"].isna() | frame["variant"].isna()
    if unnamed.any():
        notes.append(f"{int(unnamed.sum())} exposure rows without an experiment_id or variant were left out")
        frame = frame[~unnamed]
    per_user, crossed = _one_row_per_user(frame)
    for experiment, count in crossed.groupby("experiment_id").size().items():
        notes.append(
            f"experiment {experiment}: {count} user(s) seen in more than one variant are left out of every figure"
        )

    stats = experiment_statistics(
        pa.Table.from_pandas(per_user, preserve_index=False),
        settings,
        has_revenue=has_revenue,
        declared_variants=declared_variants,
    )
    carried = _previous_looks(previous, as_of, tau)
    comparisons: dict[tuple[str, str], SequentialComparison] = {}
    by_experiment: dict[str, list[dict[str, Any]]] = {}
    for row in stats.rows:
        by_experiment.setdefault(row["experiment_id"], []).append(row)
    for experiment, rows in by_experiment.items():
        notes.extend(_experiment_notes(experiment, rows))
        control = next((r for r in rows if r["is_control"]), None)
        for row in rows:
            row.update(
                diff_ci_low=None,
                diff_ci_high=None,
                always_valid_ci_low=None,
                always_valid_ci_high=None,
                always_valid_p_value=None,
                always_valid_significant=None,
                sequential_method=METHOD,
                sequential_tau=tau,
                as_of=as_of,
            )
            if control is None or row is control:
                continue
            comparison = compare_conversions(
                row["conversions"], row["users"], control["conversions"], control["users"], tau=tau
            )
            if comparison is None:
                if row["users"] and control["users"]:
                    notes.append(
                        f"experiment {experiment}: {row['variant']} and {control['variant']} each converted all "
                        "of their users or none; the always-valid interval needs some of each"
                    )
                continue
            key = (experiment, row["variant"])
            if key in carried and carried[key][3] == control["variant"]:
                comparison = comparison.carried_over(*carried[key][:3])
            comparisons[key] = comparison
            row.update(
                diff_ci_low=comparison.fixed_ci_low,
                diff_ci_high=comparison.fixed_ci_high,
                always_valid_ci_low=comparison.ci_low,
                always_valid_ci_high=comparison.ci_high,
                always_valid_p_value=comparison.p_value,
                always_valid_significant=comparison.significant,
            )
    schema = fixed_schema(EXPERIMENT_RESULTS_HISTORY)
    table = pa.Table.from_pylist(stats.rows, schema=schema) if stats.rows else schema.empty_table()
    fact = statistics_fact(
        stats,
        {
            "as_of": as_of.isoformat(),
            "sequential_method": METHOD,
            "sequential_tau": tau,
            "sequential_alpha": DEFAULT_ALPHA,
            "always_valid_significant": sum(1 for c in comparisons.values() if c.significant),
            "crossed_users_excluded": len(crossed),
            "notes": "; ".join(notes) or None,
        },
    )
    crossed_table = pa.Table.from_pandas(crossed, schema=_CROSSED, preserve_index=False)
    return ExperimentHistory(conform(table, EXPERIMENT_RESULTS_HISTORY), comparisons, crossed_table, tuple(notes), fact)


def _tau(settings: Mapping[str, Any]) -> float:
    """The mixture spread from settings ``sequential_tau``, checked."""
    raw = settings.get("sequential_tau", DEFAULT_TAU)
    try:
        tau = float(raw)
    except (TypeError, ValueError):
        tau = float("nan")
    if not 0 < tau < 1:
        raise HistoryInputError(
            f"settings sequential_tau {raw!r} is not a number between 0 and 1; give the spread of conversion-rate "
            f"differences the experiments are run to detect, for example {DEFAULT_TAU}"
        )
    return tau


def _one_row_per_user(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per experiment × user: one row (``converted_max``, ``revenue_sum``), and the crossed users."""
    with_user = frame[frame["user_id"].notna()]
    variants = with_user.groupby(["experiment_id", "user_id"], sort=False)["variant"].nunique()
    crossed_keys = variants[variants > 1].index
    crossed_rows = with_user.set_index(["experiment_id", "user_id"]).loc[crossed_keys].reset_index()
    crossed = pd.DataFrame(
        [
            {"experiment_id": e, "user_id": u, "variants": ",".join(sorted(set(v)))}
            for (e, u), v in crossed_rows.groupby(["experiment_id", "user_id"], sort=True)["variant"]
        ],
        columns=["experiment_id", "user_id", "variants"],
    )
    keep = ~frame.set_index(["experiment_id", "user_id"]).index.isin(crossed_keys)
    kept = frame[keep]
    users = (
        kept[kept["user_id"].notna()]
        .groupby(["experiment_id", "variant", "user_id"], sort=False)
        .agg(converted_max=("converted", "max"), revenue_sum=("revenue", "max"))
        .reset_index()
    )
    # A variant known only from rows without a user still needs a row to be listed.
    no_user = kept[kept["user_id"].isna()][["experiment_id", "variant"]].drop_duplicates()
    no_user = no_user.assign(user_id=None, converted_max=False, revenue_sum=0.0)
    per_user = pd.concat([users, no_user], ignore_index=True) if len(no_user) else users
    per_user["user_id"] = per_user["user_id"].astype("string")
    return per_user, crossed


def _experiment_notes(experiment: str, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Why an experiment's comparisons are missing, one sentence each."""
    names = ", ".join(r["variant"] for r in rows)
    with_users = [r for r in rows if r["users"]]
    notes = [
        f"experiment {experiment}: variant {r['variant']} has no users; its figures are null"
        for r in rows
        if not r["users"]
    ]
    if len(rows) == 1:
        notes.append(f"experiment {experiment} has one variant ({names}); nothing to compare until a second has users")
    elif not any(r["is_control"] for r in rows):
        notes.append(
            f"experiment {experiment} has no control among {names}; name one with control_variant in the "
            "dataset's settings (settings/experiments.json)"
        )
    elif len(with_users) < 2:
        notes.append(f"experiment {experiment}: fewer than two variants have users; nothing to compare yet")
    return notes


def _previous_looks(
    previous: pa.Table | None, as_of: date, tau: float
) -> dict[tuple[str, str], tuple[float | None, float | None, float | None, str]]:
    """(experiment, variant) → (p, ci_low, ci_high, control) from an earlier snapshot with the same tau."""
    if previous is None or previous.num_rows == 0:
        return {}
    out: dict[tuple[str, str], tuple[float | None, float | None, float | None, str]] = {}
    for row in previous.to_pylist():
        if row.get("as_of") is None or row["as_of"] >= as_of or row.get("sequential_tau") != tau:
            continue
        if row.get("always_valid_p_value") is None or row.get("control_variant") is None:
            continue
        out[(row["experiment_id"], row["variant"])] = (
            row["always_valid_p_value"],
            row["always_valid_ci_low"],
            row["always_valid_ci_high"],
            row["control_variant"],
        )
    return out
