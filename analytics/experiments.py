"""``experiments``: A/B exposure and outcome logs → per-variant results with the usual tests
(:mod:`analytics.experiment_statistics`).

A user counts once per experiment and variant (converted if any row converted, revenue summed); a
user seen in two variants of the same experiment is quarantined, all of their rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from analytics import samples
from analytics._kernels import row_codes
from analytics.base import ModelFact, OutputSink, PipelineResult, SourceInfo, TableSpec, col
from analytics.cleaning import Parsed
from analytics.contract import (
    Column,
    Contract,
    ContractPipeline,
    RowChecks,
    conform,
    fixed_schema,
    read_all,
)
from analytics.experiment_statistics import EXPERIMENT_RESULTS, experiment_statistics, statistics_fact
from analytics.history_refreshers import refresh_experiments
from analytics.profile import PROFILE_TABLE_SPEC
from analytics.spec import DatasetSpec, RefresherSpec

CONTRACT = Contract(
    "experiments",
    (
        Column(
            "experiment_id",
            "text",
            aliases=("Experiment", "Experiment ID", "Experiment name", "Test", "Test ID"),
        ),
        Column("variant", "text", aliases=("Variant", "Variation", "Group", "Arm", "Bucket", "Variant name")),
        Column(
            "user_id",
            "id",
            aliases=("User ID", "User", "Visitor ID", "Anonymous ID", "Client ID", "Customer ID"),
        ),
        Column(
            "converted",
            "flag",
            aliases=("Converted", "Conversion", "Is converted", "Goal reached", "Purchased"),
        ),
        Column("revenue", "number", required=False, aliases=("Revenue", "Order value", "Amount", "Value")),
    ),
)


EXPERIMENT_EXPOSURES = TableSpec(
    "experiment_exposures",
    "ingest_date",
    "One row per experiment × user: the variant the user saw, whether they converted and their revenue; "
    "each user once per experiment, from the newest file that has them.",
    pa.schema(
        [
            col("experiment_id", pa.string(), "experiment"),
            col("user_id", pa.string(), "user"),
            col("variant", pa.string(), "the variant the user saw"),
            col("converted", pa.bool_(), "the user converted (in any of their rows of the file)"),
            col(
                "revenue",
                pa.float64(),
                "the user's revenue, summed over their rows of the file (null without a revenue column)",
            ),
            ("source_id", pa.string()),
            col("ingest_date", pa.date32(), "the day the file was stored"),
        ]
    ),
    key=("experiment_id", "user_id"),
)


class ExperimentsPipeline(ContractPipeline):
    """Contract, per-user counting and the statistics for A/B test logs."""

    contract = CONTRACT

    def tables(self, source: SourceInfo) -> Sequence[TableSpec]:
        """``experiment_results_by_file`` and ``experiment_exposures``, partitioned by the file's ingest date, and the
        exposures' profile."""
        return (EXPERIMENT_RESULTS, EXPERIMENT_EXPOSURES, PROFILE_TABLE_SPEC)

    def run(self, batches: Iterator[pa.RecordBatch], source: SourceInfo, sink: OutputSink) -> PipelineResult:
        """Check the log, quarantine bad rows and crossed users, write results per variant."""
        table = read_all(batches)
        if table is None:
            return PipelineResult(rows_in=0)
        result = PipelineResult(rows_in=table.num_rows)
        prepared, cols = self.columns(table, source, result, sink)
        table = prepared.table
        n = table.num_rows
        column = {name: table.column(source_name) for name, source_name in cols.items()}
        parsed = self.contract.parse(column, source)
        checks = RowChecks(n)
        for name in ("experiment_id", "variant", "user_id", "converted"):
            checks.add("missing_value", parsed[name].missing, f"{name} is empty")
        checks.add(
            "invalid_flag",
            parsed["converted"].invalid,
            "converted",
            value_column=cols["converted"],
            suffix=" is not one of 0/1, true/false, yes/no",
        )
        revenue: Parsed | None = parsed.get("revenue")
        if revenue is not None:
            checks.add(
                "invalid_number",
                revenue.invalid,
                "revenue",
                value_column=cols["revenue"],
                suffix=" is not a number",
            )
            values = revenue.values.to_numpy(zero_copy_only=False).astype(float)
            checks.add("negative_value", values < 0, "revenue", value_column=cols["revenue"], suffix=" is negative")

        ids = pa.table(
            {
                "experiment_id": parsed["experiment_id"].values,
                "variant": parsed["variant"].values,
                "user_id": parsed["user_id"].values,
            }
        )
        crossed = users_in_several_variants(ids, ~checks.rejected())
        checks.add(
            "user_in_multiple_variants",
            crossed,
            "user_id",
            value_column=cols["user_id"],
            suffix=" was exposed to more than one variant of this experiment; each user must see exactly one,"
            " so all of this user's rows are left out",
        )
        keep = self.quarantine_and_check(table, checks, sink, result, prepared)

        rev_values = (
            np.nan_to_num(revenue.values.to_numpy(zero_copy_only=False).astype(float), nan=0.0)
            if revenue is not None
            else np.zeros(n)
        )
        per_user = (
            ids.append_column(
                "converted", pa.array(parsed["converted"].values.to_numpy(zero_copy_only=False).astype(bool))
            )
            .append_column("revenue", pa.array(rev_values))
            .filter(pa.array(keep))
            .group_by(["experiment_id", "variant", "user_id"], use_threads=False)
            .aggregate([("converted", "max"), ("revenue", "sum")])
        )
        result.duplicates_dropped = int(keep.sum()) - per_user.num_rows
        results, fact = experiment_results(per_user, source, has_revenue=revenue is not None)
        sink.write(EXPERIMENT_RESULTS.name, results)
        clean = exposures(per_user, source, has_revenue=revenue is not None)
        self.write_clean(sink, EXPERIMENT_EXPOSURES, clean, source)
        result.models.append(fact)
        return result


def exposures(per_user: pa.Table, source: SourceInfo, *, has_revenue: bool = True) -> pa.Table:
    """The per-user table (``converted_max``, ``revenue_sum``) in ``experiment_exposures``' shape; revenue
    is null for a file without a revenue column (the history then knows it was not measured, not zero)."""
    n = per_user.num_rows
    revenue = per_user.column("revenue_sum") if has_revenue else pa.nulls(n, pa.float64())
    return pa.table(
        {
            "experiment_id": per_user.column("experiment_id"),
            "user_id": per_user.column("user_id"),
            "variant": per_user.column("variant"),
            "converted": per_user.column("converted_max"),
            "revenue": revenue,
            "source_id": pa.repeat(pa.scalar(source.source_id, pa.string()), n),
            "ingest_date": pa.repeat(pa.scalar(source.ingest_date, pa.date32()), n),
        }
    )


def users_in_several_variants(ids: pa.Table, candidates: np.ndarray) -> np.ndarray:
    """Rows (among ``candidates``) of users seen in more than one variant of the same experiment."""
    n = ids.num_rows
    out = np.zeros(n, dtype=bool)
    rows = np.flatnonzero(candidates)
    if len(rows) == 0:
        return out
    sub = ids.take(pa.array(rows))
    user = row_codes(sub, ["experiment_id", "user_id"])
    pair = row_codes(sub, ["experiment_id", "user_id", "variant"])
    # Distinct (user, variant) pairs per user: more than one means the user crossed variants.
    first_of_pair = ~pd.Series(pair).duplicated().to_numpy()
    variants_per_user = np.bincount(user[first_of_pair], minlength=int(user.max()) + 1)
    out[rows] = variants_per_user[user] > 1
    return out


def experiment_results(per_user: pa.Table, source: SourceInfo, *, has_revenue: bool) -> tuple[pa.Table, ModelFact]:
    """One row per experiment × variant from the per-user table (converted_max, revenue_sum)."""
    stats = experiment_statistics(per_user, source.settings, has_revenue=has_revenue)
    rows = [{**row, "source_id": source.source_id, "ingest_date": source.ingest_date} for row in stats.rows]
    schema = fixed_schema(EXPERIMENT_RESULTS)
    table = pa.Table.from_pylist(rows, schema=schema) if rows else schema.empty_table()
    return conform(table, EXPERIMENT_RESULTS), statistics_fact(stats, {})


SPEC = DatasetSpec(
    name="experiments",
    contract=CONTRACT,
    pipeline=ExperimentsPipeline,
    tables=(EXPERIMENT_RESULTS, EXPERIMENT_EXPOSURES, PROFILE_TABLE_SPEC),
    refreshers=(
        RefresherSpec(
            "experiment_history",
            refresh_experiments,
            ("experiment_exposures_sources",),
            ("experiment_results_history", "experiment_crossed_users"),
            reads_back=("experiment_results_history",),
        ),
    ),
    data_table="experiment_exposures",
    model_keys={EXPERIMENT_RESULTS.name: ("experiment_id", "variant")},
    sample=samples.experiments_csv,
)
