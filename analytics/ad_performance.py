"""``ad_performance``: daily ad-platform exports → clean rows, campaign KPIs and KPI anomalies."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analytics import samples
from analytics._kernels import factorize_ints, row_codes
from analytics.ad_exports import AD_EXPORTS
from analytics.anomaly_rule import ANOMALY_METRICS, MIN_HISTORY, MIN_RELATIVE_CHANGE, Z_THRESHOLD, safe_divide
from analytics.base import ModelFact, OutputSink, PipelineResult, SourceInfo, TableSpec, col
from analytics.cleaning import Parsed
from analytics.contract import (
    BackgroundWriter,
    Column,
    Contract,
    ContractPipeline,
    RowChecks,
    conform,
    duplicate_rows,
    read_all,
    select_rows,
    with_source_id,
)
from analytics.history_refreshers import refresh_kpi_history
from analytics.profile import PROFILE_TABLE_SPEC
from analytics.spec import DatasetSpec, RefresherSpec
from analytics.threads import single_threaded

if TYPE_CHECKING:
    from sklearn.ensemble import IsolationForest

CONTRACT = Contract(
    "ad_performance",
    (
        Column("date", "date", aliases=("Day", "Date", "Reporting starts", "Report date", "Segments date")),
        Column(
            "channel",
            "label",
            aliases=("Platform", "Source", "Network", "Publisher platform", "Channel name"),
            lower=True,
        ),
        Column("campaign", "text", aliases=("Campaign name", "Campaign", "Campaign_name")),
        Column("impressions", "integer", aliases=("Impr.", "Impr", "Impressions")),
        Column("clicks", "integer", aliases=("Link Clicks", "Clicks (all)", "Link clicks", "Clicks")),
        Column(
            "spend",
            "number",
            aliases=(
                "Amount Spent (USD)",
                "Amount spent (EUR)",
                "Amount spent",
                "Cost",
                "Spend (USD)",
                "Spent",
            ),
            currency=True,
        ),
        Column("conversions", "number", aliases=("Results", "Conv.", "Purchases", "Conversions")),
        Column(
            "revenue",
            "number",
            aliases=(
                "Conversion value",
                "Conv. value",
                "Purchases conversion value",
                "Purchase value",
                "Revenue",
            ),
        ),
        Column("currency", "label", required=False, aliases=("Currency code", "Currency")),
        Column("country", "text", required=False, aliases=("Country/Territory", "Country", "Country code")),
        Column("ad_group", "text", required=False, aliases=("Ad group", "Ad group name", "Ad set name", "Ad set")),
    ),
)

SEED = 20240101
MODEL_VERSION = "1"

_KEY = ["date", "channel", "campaign", "ad_group"]

AD_PERFORMANCE = TableSpec(
    "ad_performance",
    "date",
    "Clean ad-platform rows, one per date × channel × campaign × ad group (last occurrence kept).",
    pa.schema(
        [
            col("channel", pa.string(), "channel, lower-case"),
            col("campaign", pa.string(), "campaign name"),
            col("ad_group", pa.string(), "ad group / ad set, null when the export has none"),
            col("country", pa.string(), "country as exported, null when absent"),
            col("currency", pa.string(), "ISO currency of spend and revenue, null when unknown"),
            col("impressions", pa.int64(), "impressions"),
            col("clicks", pa.int64(), "clicks"),
            col("spend", pa.float64(), "spend, in `currency`"),
            col("conversions", pa.float64(), "conversions (platforms report fractional attributed conversions)"),
            col("revenue", pa.float64(), "conversion value, in `currency`"),
            ("source_id", pa.string()),
            col("date", pa.date32(), "the day reported"),
        ]
    ),
    partition_transform="month",
    key=tuple(_KEY),
)

CAMPAIGN_KPIS = TableSpec(
    "campaign_kpis_by_file",
    "date",
    "Daily totals and ratios per channel × campaign of one file (per-file results; `campaign_kpis` answers "
    "over every file); a ratio over zero is null.",
    pa.schema(
        [
            col("channel", pa.string(), "channel"),
            col("campaign", pa.string(), "campaign"),
            col("impressions", pa.int64(), "sum of impressions"),
            col("clicks", pa.int64(), "sum of clicks"),
            col("spend", pa.float64(), "sum of spend"),
            col("conversions", pa.float64(), "sum of conversions"),
            col("revenue", pa.float64(), "sum of revenue"),
            col("ctr", pa.float64(), "clicks / impressions"),
            col("cvr", pa.float64(), "conversions / clicks"),
            col("cpc", pa.float64(), "spend / clicks"),
            col("cpa", pa.float64(), "spend / conversions"),
            col("roas", pa.float64(), "revenue / spend"),
            ("source_id", pa.string()),
            col("date", pa.date32(), "the day"),
        ]
    ),
    partition_transform="month",
)

KPI_ANOMALIES = TableSpec(
    "kpi_anomalies_by_file",
    "date",
    "Per channel × campaign × metric × date of one file (per-file results; `kpi_anomalies` answers over every "
    "file): value, series median, robust z-score and anomaly flags.",
    pa.schema(
        [
            col("channel", pa.string(), "channel"),
            col("campaign", pa.string(), "campaign"),
            col("metric", pa.string(), "`spend`, `ctr`, `cvr`, `cpa` or `roas`"),
            col("value", pa.float64(), "the day's value (null when the ratio is undefined)"),
            col("expected", pa.float64(), "median of the series; null when the series has fewer than 7 values"),
            col(
                "robust_z",
                pa.float64(),
                "modified z-score 0.6745 (value − median) / MAD; when MAD = 0, (value − median) / (1.253314 · mean "
                "absolute deviation); null for short series",
            ),
            col("history_days", pa.int64(), "non-null values in the series"),
            col("is_anomaly", pa.bool_(), "|robust_z| > 3.5 **and** value at least 25% away from `expected`"),
            col(
                "isolation_score",
                pa.float64(),
                "IsolationForest decision function over the day's vector of the five robust z-scores (negative = "
                "unusual); null when fewer than 32 campaign-days",
            ),
            col(
                "isolation_anomaly",
                pa.bool_(),
                "among the 1% most isolated campaign-days (same for the five metric rows of a day)",
            ),
            ("source_id", pa.string()),
            col("date", pa.date32(), "the day"),
        ]
    ),
    partition_transform="month",
)


def robust_z(values: np.ndarray, series: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Modified z-score of every value against its own series: 0.6745 (x − median) / MAD.

    ``values`` is one metric (n) or several side by side (n × m); ``series`` gives each row's
    series. Returns ``(z, median, history)`` shaped like ``values``. Series with fewer than
    :data:`MIN_HISTORY` non-null values get NaN. When the MAD is 0 (more than half the days
    identical) the mean absolute deviation scaled by 1.253314 stands in, as Iglewicz and Hoaglin
    suggest; if that is 0 too, z is NaN.
    """
    x = np.asarray(values, dtype=float)
    wide = x.reshape(len(x), 1) if x.ndim == 1 else x
    # One groupby for all metrics: pandas computes the per-series statistics column by column.
    grouped = pd.DataFrame(wide).groupby(series, sort=False)
    median = grouped.transform("median").to_numpy(dtype=float)
    history = grouped.transform("count").to_numpy(dtype=np.int64)
    deviation = pd.DataFrame(np.abs(wide - median)).groupby(series, sort=False)
    mad = deviation.transform("median").to_numpy(dtype=float)
    mean_ad = deviation.transform("mean").to_numpy(dtype=float)
    z = safe_divide(0.6745 * (wide - median), mad)
    fallback = (mad == 0) & (mean_ad > 0)
    z[fallback] = (wide[fallback] - median[fallback]) / (1.253314 * mean_ad[fallback])
    short = history < MIN_HISTORY
    z[short] = np.nan
    median = np.where(short, np.nan, median)
    return z.reshape(x.shape), median.reshape(x.shape), history.reshape(x.shape)


class AdPerformancePipeline(ContractPipeline):
    """Contract, cleaning, KPIs and anomaly detection for ad-platform exports."""

    contract = CONTRACT
    exports = AD_EXPORTS

    def tables(self, source: SourceInfo) -> Sequence[TableSpec]:
        """``ad_performance``, ``campaign_kpis_by_file`` and ``kpi_anomalies_by_file``, all partitioned by date, and the
        clean rows' profile."""
        return (AD_PERFORMANCE, CAMPAIGN_KPIS, KPI_ANOMALIES, PROFILE_TABLE_SPEC)

    def run(self, batches: Iterator[pa.RecordBatch], source: SourceInfo, sink: OutputSink) -> PipelineResult:
        """Clean the file, quarantine bad rows, write clean rows, KPIs and anomalies."""
        table = read_all(batches)
        if table is None:
            return PipelineResult(rows_in=0)
        result = PipelineResult(rows_in=table.num_rows)
        prepared, cols = self.columns(table, source, result, sink)
        table = prepared.table
        n = table.num_rows
        checks = RowChecks(n)

        column = {name: table.column(source_name) for name, source_name in cols.items()}
        # The key columns also come dictionary-encoded from the parse threads, for the row codes.
        parsed_columns = self.contract.parse(column, source, encoded=("channel", "campaign", "ad_group"))
        encoded = {name: p.encoded for name, p in parsed_columns.items() if p.encoded is not None}
        date = parsed_columns["date"]
        decision = date.date_decision
        checks.add("missing_date", date.missing, "date is empty; every row must say which day it reports")
        checks.add(
            "invalid_date",
            date.invalid,
            "date",
            value_column=cols["date"],
            suffix=" is not a date in ISO (2024-01-31), US (01/31/2024) or EU (31.01.2024) form",
        )
        channel: Parsed = parsed_columns["channel"]
        campaign: Parsed = parsed_columns["campaign"]
        checks.add("missing_value", channel.missing, "channel is empty")
        checks.add("missing_value", campaign.missing, "campaign is empty")

        numbers: dict[str, Parsed] = {}
        decimal_comma: dict[str, bool] = {}
        for name in ("impressions", "clicks"):
            numbers[name] = parsed_columns[name]
        for name in ("spend", "conversions", "revenue"):
            numbers[name] = parsed_columns[name]
            decimal_comma[name] = parsed_columns[name].number_format.decimal_comma
        spend_currency: pa.Array | None = parsed_columns["spend"].number_format.currency
        for name in ("impressions", "clicks", "spend"):
            checks.add("missing_value", numbers[name].missing, f"{name} is empty")
        for name, parsed in numbers.items():
            kind = "a whole number" if name in ("impressions", "clicks") else "a number"
            checks.add("invalid_number", parsed.invalid, name, value_column=cols[name], suffix=f" is not {kind}")
        values = {
            name: np.nan_to_num(p.values.to_numpy(zero_copy_only=False).astype(float), nan=0.0)
            if name in ("conversions", "revenue")
            else p.values.to_numpy(zero_copy_only=False).astype(float)
            for name, p in numbers.items()
        }
        for name in ("spend", "impressions", "clicks", "conversions", "revenue"):
            checks.add("negative_value", values[name] < 0, name, value_column=cols[name], suffix=" is negative")
        checks.add(
            "clicks_exceed_impressions",
            values["clicks"] > values["impressions"],
            "clicks",
            value_column=cols["clicks"],
            suffix=" exceed impressions; check that the columns are not swapped",
        )
        checks.add(
            "conversions_exceed_clicks",
            values["conversions"] > values["clicks"],
            "conversions",
            value_column=cols["conversions"],
            suffix=" exceed clicks; export click-through conversions only, not view-through",
        )
        keep = self.quarantine_and_check(table, checks, sink, result, prepared)

        currency = self._currency(cols, parsed_columns.get("currency"), spend_currency, n)
        optional = {
            name: parsed_columns[name].values if name in parsed_columns else pa.nulls(n, pa.string())
            for name in ("country", "ad_group")
        }
        parsed = pa.table(
            {
                "channel": channel.values,
                "campaign": campaign.values,
                "ad_group": optional["ad_group"],
                "country": optional["country"],
                "currency": currency,
                "impressions": numbers["impressions"].values,
                "clicks": numbers["clicks"].values,
                "spend": numbers["spend"].values,
                "conversions": pa.array(values["conversions"]),
                "revenue": pa.array(values["revenue"]),
                "date": date.values,
            }
        )
        day = np.asarray(pc.fill_null(date.values.view(pa.int32()), 0).to_numpy(zero_copy_only=False))
        # Codes of date × channel × campaign serve both the duplicate key (with ad_group) and KPIs.
        # Row codes over the dictionary-encoded key columns: the same codes as over the strings.
        keys = pa.table(
            {
                "date": date.values,
                "channel": encoded["channel"],
                "campaign": encoded["campaign"],
                "ad_group": encoded.get("ad_group", optional["ad_group"]),
            }
        )
        campaign_day, _ = factorize_ints(row_codes(keys, ["date", "channel", "campaign"]))
        ad_group_code = row_codes(keys, ["ad_group"])
        key_codes = campaign_day.astype(np.int64) * (int(ad_group_code.max(initial=0)) + 1) + ad_group_code
        kept, exact, superseded = duplicate_rows(parsed, _KEY, keep, partition_code=day, key_codes=key_codes)
        result.duplicates_dropped = exact + superseded
        with BackgroundWriter(sink) as writer:
            # The clean table is copied and written on the writer thread while the KPIs and
            # anomalies are computed from row positions.
            writer.call(
                lambda out: self.write_clean(
                    out,
                    AD_PERFORMANCE,
                    conform(with_source_id(select_rows(parsed, kept), source.source_id), AD_PERFORMANCE),
                    source,
                )
            )
            kpis = campaign_kpis_of_rows(parsed, kept, campaign_day, source.source_id, values=values)
            writer.write(CAMPAIGN_KPIS.name, kpis)
            anomalies, facts = kpi_anomalies(kpis, source.source_id)
            writer.write(KPI_ANOMALIES.name, anomalies)

        result.date_decision = decision
        result.models.append(
            ModelFact(
                "cleaning",
                MODEL_VERSION,
                {
                    "date_order": decision.order if decision else "ISO",
                    "date_order_basis": decision.basis if decision else "no ambiguous dates",
                    "decimal_comma_spend": decimal_comma.get("spend", False),
                    "exact_duplicates": exact,
                    "superseded_rows": superseded,
                },
            )
        )
        result.models.append(facts)
        return result

    def _currency(self, cols: dict[str, str], given: Parsed | None, from_symbols: pa.Array | None, n: int) -> pa.Array:
        """The currency column, else the value's symbol (``$``), else the header (``Spend (USD)``)."""
        column = pc.utf8_upper(given.values) if given is not None else pa.nulls(n, pa.string())
        if from_symbols is None:
            from_symbols = pa.nulls(n, pa.string())
        header = cols["spend"]
        from_header = pa.nulls(n, pa.string())
        if "(" in header and header.rstrip().endswith(")"):
            code = header.rsplit("(", 1)[1].rstrip(" )").upper()
            if len(code) == 3 and code.isalpha():
                from_header = pa.repeat(pa.scalar(code), n)
        return pc.coalesce(column, from_symbols, from_header)


_SUMMED = ("impressions", "clicks", "spend", "conversions", "revenue")


def campaign_kpis(clean: pa.Table, source_id: str) -> pa.Table:
    """Totals per date × channel × campaign with ctr, cvr, cpc, cpa and roas (null over zero)."""
    groups = row_codes(clean, ["date", "channel", "campaign"])
    return campaign_kpis_of_rows(clean, np.arange(clean.num_rows), groups, source_id)


def campaign_kpis_of_rows(
    table: pa.Table,
    rows: np.ndarray,
    groups: np.ndarray,
    source_id: str,
    values: Mapping[str, np.ndarray] | None = None,
) -> pa.Table:
    """:func:`campaign_kpis` over the ``rows`` of ``table``, grouped by the codes in ``groups``.

    Working on row positions lets the pipeline aggregate before (and while) the clean table is
    copied and written. Sums run in row order, so the figures are the same on every run.
    ``values`` may give the summed columns of ``table`` as float arrays (null as NaN) already.
    """

    def column(name: str) -> np.ndarray:
        if values is not None and name in values:
            return values[name]
        return table.column(name).to_numpy().astype(float)

    group, _ = factorize_ints(groups[rows])
    # pandas numbers groups by first appearance: where the running maximum grows, a group starts.
    running = np.maximum.accumulate(group) if len(group) else group
    firsts = rows[np.flatnonzero(np.r_[True, running[1:] != running[:-1]])] if len(group) else rows
    sums = {name: np.bincount(group, weights=column(name)[rows]) if len(group) else np.zeros(0) for name in _SUMMED}
    pick = pa.array(firsts)
    kpis = pa.table(
        {
            "date": table.column("date").take(pick),
            "channel": table.column("channel").take(pick),
            "campaign": table.column("campaign").take(pick),
            "impressions": pa.array(np.round(sums["impressions"]).astype(np.int64)),
            "clicks": pa.array(np.round(sums["clicks"]).astype(np.int64)),
            "spend": pa.array(sums["spend"]),
            "conversions": pa.array(sums["conversions"]),
            "revenue": pa.array(sums["revenue"]),
        }
    )
    kpis = kpis.sort_by([("date", "ascending"), ("channel", "ascending"), ("campaign", "ascending")])
    get = {c: kpis.column(c).to_numpy().astype(float) for c in _SUMMED}
    ratios = {
        "ctr": safe_divide(get["clicks"], get["impressions"]),
        "cvr": safe_divide(get["conversions"], get["clicks"]),
        "cpc": safe_divide(get["spend"], get["clicks"]),
        "cpa": safe_divide(get["spend"], get["conversions"]),
        "roas": safe_divide(get["revenue"], get["spend"]),
    }
    for name, arr in ratios.items():
        kpis = kpis.append_column(name, pa.array(arr, mask=np.isnan(arr)))
    kpis = kpis.append_column("source_id", pa.repeat(pa.scalar(source_id), kpis.num_rows))
    return conform(kpis, CAMPAIGN_KPIS)


def kpi_anomalies(kpis: pa.Table, source_id: str) -> tuple[pa.Table, ModelFact]:
    """Robust z-scores per series and a seeded IsolationForest over the KPI z-vector of each day.

    Output rows follow ``kpis`` (date-ordered), one per metric of :data:`ANOMALY_METRICS`.
    """
    n, m = kpis.num_rows, len(ANOMALY_METRICS)
    series = pc.binary_join_element_wise(kpis.column("channel"), kpis.column("campaign"), "\x1f")
    series_id = pc.dictionary_encode(series).combine_chunks().indices.to_numpy() if n else np.zeros(0, np.int64)
    values = np.column_stack([kpis.column(k).to_numpy().astype(float) if n else np.zeros(0) for k in ANOMALY_METRICS])
    z, median, history = robust_z(values.reshape(n, m), series_id)
    iso_score, iso_flag, fitted = isolation_flags(z)

    # Row-major flattening keeps every campaign-day's metrics together and the table date-ordered.
    z_all, value_all, median_all = z.ravel(), values.ravel(), median.ravel()
    deviation = np.abs(value_all - median_all)
    material = np.nan_to_num(deviation >= MIN_RELATIVE_CHANGE * np.abs(median_all), nan=False).astype(bool)
    flags = (np.abs(np.nan_to_num(z_all, nan=0.0)) > Z_THRESHOLD) & material
    take = pa.array(np.repeat(np.arange(n, dtype=np.int64), m))
    table = pa.table(
        {
            "channel": kpis.column("channel").take(take),
            "campaign": kpis.column("campaign").take(take),
            "metric": pa.array(ANOMALY_METRICS, pa.string()).take(pa.array(np.tile(np.arange(m), n))),
            "value": pa.array(value_all, mask=np.isnan(value_all)),
            "expected": pa.array(median_all, mask=np.isnan(median_all)),
            "robust_z": pa.array(z_all, mask=np.isnan(z_all)),
            "history_days": pa.array(history.ravel()),
            "is_anomaly": pa.array(flags),
            "isolation_score": pa.array(np.repeat(iso_score, m), mask=np.repeat(np.isnan(iso_score), m)),
            "isolation_anomaly": pa.array(np.repeat(iso_flag, m), mask=np.repeat(~fitted, m), type=pa.bool_()),
            "source_id": pa.repeat(pa.scalar(source_id), n * m),
            "date": kpis.column("date").take(take),
        }
    )
    fact = ModelFact(
        "kpi_anomalies",
        MODEL_VERSION,
        {
            "method": "robust z (median/MAD) + IsolationForest",
            "metrics": ",".join(ANOMALY_METRICS),
            "series": len(pd.unique(series_id)),
            "campaign_days_scored": int(np.count_nonzero(history[:, 0] >= MIN_HISTORY)),
            "z_threshold": Z_THRESHOLD,
            "min_relative_change": MIN_RELATIVE_CHANGE,
            "min_history_days": MIN_HISTORY,
            "anomalies_found": int(flags.sum()),
            "isolation_anomalies_found": int(iso_flag[fitted].sum()),
            "isolation_trees": ISOLATION_TREES,
            "seed": SEED,
        },
    )
    return conform(table, KPI_ANOMALIES), fact


#: IsolationForest needs a few rows before "unusual" means anything.
MIN_ISOLATION_ROWS = 32
#: Share of campaign-days the forest flags: the most isolated 1%. A fixed share keeps the flag
#: count predictable; the robust z-score is the per-metric test with an absolute threshold.
ISOLATION_CONTAMINATION = 0.01
ISOLATION_FIT_ROWS = 10_000
#: 50 trees over five features give stable scores; more trees cost time on every file.
ISOLATION_TREES = 50


def isolation_flags(z_matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IsolationForest over each day's vector of KPI z-scores: ``(score, flag, fitted)`` per row.

    The features are the per-series robust z-scores rather than raw KPIs, so a campaign with a
    high but steady CPA is not an outlier; a day where several KPIs move together is. Missing
    z-scores (short series, null ratios) count as 0, "as expected". ``score`` is the forest's
    decision function (negative means anomalous).
    """
    n = z_matrix.shape[0]
    fitted = np.full(n, n >= MIN_ISOLATION_ROWS)
    if n < MIN_ISOLATION_ROWS:
        return np.full(n, np.nan), np.zeros(n, dtype=bool), fitted
    from sklearn.ensemble import IsolationForest  # only a file with enough rows pays for scikit-learn

    features = np.clip(np.nan_to_num(z_matrix, nan=0.0), -50.0, 50.0)
    forest = IsolationForest(
        n_estimators=ISOLATION_TREES, contamination=ISOLATION_CONTAMINATION, random_state=SEED, n_jobs=1
    )
    # Each tree sees 256 rows anyway; fitting on a seeded sample only makes the threshold cheaper.
    rng = np.random.default_rng(SEED)
    fit_rows = (
        features if n <= ISOLATION_FIT_ROWS else features[np.sort(rng.choice(n, ISOLATION_FIT_ROWS, replace=False))]
    )
    # Single-threaded for the same reason as the segmentation: small work, costly thread pools.
    with single_threaded():
        forest.fit(fit_rows)
        score = _decision_function(forest, features)
    return score, score < 0, fitted


#: Rows below which scoring stays on the calling thread.
_PARALLEL_SCORING_ROWS = 20_000


def _decision_function(forest: IsolationForest, features: np.ndarray) -> np.ndarray:
    """``forest.decision_function(features)``, in row blocks on a few threads.

    A row's score depends on that row alone (its path length in each tree, summed in tree order),
    so the blocks give exactly the figures of one call; tree traversal releases the GIL.
    """
    workers = min(os.cpu_count() or 1, 4)
    n = len(features)
    if workers <= 1 or n < _PARALLEL_SCORING_ROWS:
        return np.asarray(forest.decision_function(features))
    blocks = np.array_split(features, workers)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="score") as pool:
        scores = list(pool.map(forest.decision_function, blocks))
    return np.concatenate(scores)


SPEC = DatasetSpec(
    name="ad_performance",
    contract=CONTRACT,
    pipeline=AdPerformancePipeline,
    tables=(AD_PERFORMANCE, CAMPAIGN_KPIS, KPI_ANOMALIES, PROFILE_TABLE_SPEC),
    refreshers=(
        RefresherSpec(
            "kpi_history",
            refresh_kpi_history,
            ("ad_performance",),
            ("campaign_kpis_history", "kpi_anomalies_history"),
            # what the current views show, to score only the days that changed since
            reads_back=("campaign_kpis_history",),
        ),
    ),
    model_keys={
        CAMPAIGN_KPIS.name: ("date", "channel", "campaign"),
        KPI_ANOMALIES.name: ("date", "channel", "campaign", "metric"),
    },
    exports=AD_EXPORTS,
    sample=samples.ad_performance_csv,
)
