"""Fixed refreshed tables for the report tests, and a ``Query`` over them on DuckDB.

The tables have exactly the schemas of the refreshers' table specs (cast on the way in), so a column a
report reads that the lake does not write fails here. :class:`ArrowQuery` runs Athena SQL the way the
refresh does (parsed as Athena/Trino, typed from the columns, written as DuckDB SQL with sqlglot) and
records every statement and result size.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping

import numpy as np
import pyarrow as pa

from analytics.clv import CUSTOMER_VALUE
from analytics.experiment_history import EXPERIMENT_RESULTS_HISTORY
from analytics.kpi_history import CAMPAIGN_KPIS_HISTORY, KPI_ANOMALIES_HISTORY
from analytics.orders import CUSTOMER_RFM, CUSTOMER_SEGMENTS, SEGMENT_IDS
from analytics.profile import PROFILE_TABLE_SPEC
from handlers.adapters.iceberg import athena_type
from query.sql import transpile

CURATED = "lake_curated"
SCRIPT = "<script>alert('x')</script>"

#: The processing ledger's columns (written by the ledger's engineer; the report draws exactly these).
LEDGER_SCHEMA = pa.schema(
    [
        ("logged_at", pa.timestamp("us", tz="UTC")),
        ("log_date", pa.date32()),
        ("kind", pa.string()),
        ("dataset", pa.string()),
        ("key", pa.string()),
        ("version", pa.string()),
        ("trigger", pa.string()),
        ("status", pa.string()),
        ("rows_in", pa.int64()),
        ("rows_written", pa.int64()),
        ("rows_quarantined", pa.int64()),
        ("quarantined_by_reason", pa.string()),
        ("duplicates", pa.int64()),
        ("bytes", pa.int64()),
        ("duration_ms", pa.float64()),
        ("stage_ms", pa.string()),
        ("error_type", pa.string()),
        ("error_message", pa.string()),
        ("event_key", pa.string()),
        ("snapshot_ids", pa.string()),
        ("memory_mb", pa.int32()),
        ("billed_duration_ms", pa.int64()),
        ("request_id", pa.string()),
    ]
)


class ArrowQuery:
    """A ``reports.Query`` over Arrow tables: ``{"customer_rfm": t, "lake_quarantine.orders": q}``."""

    def __init__(self, tables: Mapping[str, pa.Table]) -> None:
        import duckdb

        self.connection = duckdb.connect()
        self.connection.execute("SET TimeZone = 'UTC'")
        self.statements: list[str] = []
        self.result_rows: list[int] = []
        self.catalog: dict[str, dict[str, dict[str, str]]] = {}
        for n, (name, table) in enumerate(tables.items()):
            database, _, short = name.rpartition(".")
            database = database or CURATED
            self.connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{database}"')
            self.connection.register(f"__t{n}", table)
            self.connection.execute(f'CREATE VIEW "{database}"."{short}" AS SELECT * FROM "__t{n}"')
            self.catalog.setdefault(database, {})[short] = {f.name: athena_type(f.type) for f in table.schema}
        self.names = frozenset(tables)

    def __call__(self, sql: str) -> pa.Table:
        self.statements.append(sql)
        result: pa.Table = self.connection.sql(transpile(sql, self.catalog, CURATED)).to_arrow_table()
        self.result_rows.append(result.num_rows)
        return result


def _table(spec_schema: pa.Schema | None, columns: dict[str, list]) -> pa.Table:
    assert spec_schema is not None
    return pa.table({f.name: pa.array(columns[f.name], f.type) for f in spec_schema})


# --- orders ---

AS_OF_1 = dt.date(2025, 12, 28)
AS_OF_2 = dt.date(2026, 1, 31)
SEGMENT_NAMES = {v: k for k, v in SEGMENT_IDS.items()}


def orders_tables(customers: int = 300, seed: int = 7) -> dict[str, pa.Table]:
    """``customer_rfm`` / ``customer_segments`` at two as_of dates, ``customer_value`` at the newest."""
    rng = np.random.default_rng(seed)
    ids = [f"c{i:05d}" for i in range(customers)]
    first = rng.integers(1, 8, customers)  # segments 1..7
    # Some customers move: a third change segment between the two snapshots; 20 new ones arrive.
    second = np.where(rng.random(customers) < 0.33, rng.integers(1, 8, customers), first)
    new_ids = [f"n{i:05d}" for i in range(20)]
    rfm_rows: dict[str, list] = {f.name: [] for f in CUSTOMER_RFM.schema}  # type: ignore[union-attr]
    for as_of, segs, who in ((AS_OF_1, first, ids), (AS_OF_2, np.concatenate([second, np.full(20, 4)]), ids + new_ids)):
        n = len(who)
        scores = rng.integers(1, 6, (n, 3))
        for i, cid in enumerate(who):
            orders = int(rng.integers(1, 12))
            total = float(rng.gamma(2.0, 40.0) * orders)
            rfm_rows["customer_id"].append(cid)
            rfm_rows["first_order_date"].append(as_of - dt.timedelta(days=400))
            rfm_rows["last_order_date"].append(as_of - dt.timedelta(days=int(rng.integers(0, 300))))
            rfm_rows["orders"].append(orders)
            rfm_rows["order_days"].append(orders)
            rfm_rows["total_amount"].append(total)
            rfm_rows["avg_order_amount"].append(total / orders)
            rfm_rows["recency_days"].append(int(rng.integers(0, 300)))
            rfm_rows["tenure_days"].append(400)
            rfm_rows["r_score"].append(int(scores[i, 0]))
            rfm_rows["f_score"].append(int(scores[i, 1]))
            rfm_rows["m_score"].append(int(scores[i, 2]))
            rfm_rows["segment_id"].append(int(segs[i]))
            rfm_rows["segment_name"].append(SEGMENT_NAMES[int(segs[i])])
            rfm_rows["as_of"].append(as_of)
    rfm = _table(CUSTOMER_RFM.schema, rfm_rows)
    # Segments computed from the RFM rows, as the refresher does.
    import pandas as pd

    frame = rfm.to_pandas()
    grouped = frame.groupby(["as_of", "segment_id", "segment_name"]).agg(
        customers=("customer_id", "count"),
        mean_recency_days=("recency_days", "mean"),
        mean_frequency=("orders", "mean"),
        mean_monetary=("total_amount", "mean"),
    )
    grouped = grouped.reset_index()
    grouped["share"] = grouped["customers"] / grouped.groupby("as_of")["customers"].transform("sum")
    segments = (
        pa.Table.from_pandas(grouped, preserve_index=False)
        .select(
            [f.name for f in CUSTOMER_SEGMENTS.schema]  # type: ignore[union-attr]
        )
        .cast(CUSTOMER_SEGMENTS.schema)
    )
    latest = frame[frame["as_of"] == AS_OF_2]
    n = len(latest)
    freq = rng.integers(0, 8, n)
    p_alive = np.clip(rng.beta(2, 1.5, n), 0, 1)
    p_alive[0] = 1.0  # the top edge goes in the last bin
    purchases = rng.gamma(1.5, 1.0, n)
    spend = rng.gamma(3.0, 20.0, n)
    value = pd.DataFrame(
        {
            "customer_id": latest["customer_id"].to_numpy(),
            "frequency": freq,
            "repeat_span_days": rng.integers(0, 300, n),
            "age_days": np.full(n, 400),
            "mean_repeat_spend": np.where(freq > 0, spend, np.nan),
            "p_alive": p_alive,
            "expected_purchases_30d": purchases / 12,
            "expected_purchases_90d": purchases / 4,
            "expected_purchases_365d": purchases,
            "expected_spend": spend,
            "expected_value_30d": purchases / 12 * spend,
            "expected_value_90d": purchases / 4 * spend,
            "expected_value_365d": purchases * spend,
            "as_of": [AS_OF_2] * n,
        }
    )
    customer_value = pa.Table.from_pandas(value, preserve_index=False).cast(CUSTOMER_VALUE.schema)
    return {"customer_rfm": rfm, "customer_segments": segments, "customer_value": customer_value}


# --- experiments ---

EXP_DATES = (dt.date(2026, 3, 1), dt.date(2026, 3, 8), dt.date(2026, 3, 15))


def _variant(
    experiment: str,
    variant: str,
    control: bool,
    users: int,
    conversions: int,
    as_of: dt.date,
    srm_p: float | None,
    control_rate: float | None,
    tighten: float,
) -> dict:
    rate = conversions / users
    half = 1.96 * (rate * (1 - rate) / users) ** 0.5
    lift = None if control or control_rate is None else rate - control_rate
    return {
        "experiment_id": experiment,
        "variant": variant,
        "is_control": control,
        "users": users,
        "conversions": conversions,
        "conversion_rate": rate,
        "ci_low": max(rate - half, 0.0),
        "ci_high": min(rate + half, 1.0),
        "abs_lift": lift,
        "rel_lift": None if lift is None or not control_rate else lift / control_rate,
        "z_statistic": None if lift is None else 2.0,
        "p_value": None if lift is None else 0.04,
        "significant": None if lift is None else True,
        "chi2_statistic": None,
        "chi2_dof": None,
        "chi2_p_value": None,
        "revenue_per_user": None,
        "revenue_t_statistic": None,
        "revenue_p_value": None,
        "srm_p_value": srm_p,
        "srm_flag": None if srm_p is None else srm_p < 0.001,
        "control_variant": None if control_rate is None else "control",
        "diff_ci_low": None if lift is None else lift - 0.01,
        "diff_ci_high": None if lift is None else lift + 0.01,
        "always_valid_ci_low": None if lift is None else lift - 0.03 * tighten,
        "always_valid_ci_high": None if lift is None else lift + 0.03 * tighten,
        "always_valid_p_value": None if lift is None else 0.2 * tighten,
        "always_valid_significant": None if lift is None else 0.2 * tighten < 0.05,
        "sequential_method": "mSPRT normal mixture (Johari, Pekelis & Walsh 2022)",
        "sequential_tau": 0.02,
        "as_of": as_of,
    }


def experiment_tables() -> dict[str, pa.Table]:
    """Three refreshes: a clean A/B test, a three-variant test with SRM, a one-variant experiment
    (its first refresh only) and an experiment named with a script tag."""
    out = []
    for k, as_of in enumerate(EXP_DATES):
        grow = k + 1
        tighten = 1 / grow
        out += [
            _variant("checkout_button", "control", True, 1000 * grow, 100 * grow, as_of, 0.6, 0.1, tighten),
            _variant("checkout_button", "green", False, 1010 * grow, 130 * grow, as_of, 0.6, 0.1, tighten),
            _variant("pricing_page", "control", True, 900 * grow, 90 * grow, as_of, 0.0001, 0.1, tighten),
            _variant("pricing_page", "annual", False, 1200 * grow, 110 * grow, as_of, 0.0001, 0.1, tighten),
            _variant("pricing_page", "monthly", False, 1000 * grow, 95 * grow, as_of, 0.0001, 0.1, tighten),
            _variant(SCRIPT, "control", True, 500 * grow, 50 * grow, as_of, 0.5, 0.1, tighten),
            _variant(SCRIPT, "<b>bold</b>", False, 505 * grow, 60 * grow, as_of, 0.5, 0.1, tighten),
        ]
    out.append(_variant("solo_launch", "only", True, 400, 40, EXP_DATES[-1], None, None, 1.0))
    schema = EXPERIMENT_RESULTS_HISTORY.schema
    assert schema is not None
    return {
        "experiment_results_history": pa.Table.from_pylist(
            [{f.name: r.get(f.name) for f in schema} for r in out], schema
        )
    }


# --- ad_performance ---

ADS_AS_OF = dt.date(2026, 2, 28)


def ads_tables(days: int = 60, seed: int = 3) -> dict[str, pa.Table]:
    """Daily KPIs of three campaigns over ``days`` days (one named with a script tag) and a one-day
    campaign, with anomalies on some days."""
    rng = np.random.default_rng(seed)
    kpis: list[dict] = []
    anomalies: list[dict] = []
    campaigns = [("search", "brand_q1"), ("social", SCRIPT), ("display", "retarget $5 & <more>")]
    for channel, campaign in campaigns:
        for d in range(days):
            date = ADS_AS_OF - dt.timedelta(days=days - 1 - d)
            impressions = int(rng.integers(8000, 12000))
            clicks = int(impressions * rng.uniform(0.01, 0.03))
            spend = float(rng.uniform(80, 120))
            if d == days - 5:
                spend *= 4  # the anomaly
            conversions = float(max(1, int(clicks * 0.05)))
            revenue = conversions * float(rng.uniform(20, 60))
            kpis.append(_kpi(channel, campaign, date, impressions, clicks, spend, conversions, revenue))
            if d == days - 5:
                anomalies.append(
                    _anomaly(
                        channel,
                        campaign,
                        date,
                        "spend",
                        spend,
                        100.0,
                        42.0 if campaign != SCRIPT else None,
                        f"spend {spend / 100:.1f}× the trailing 28-day median of 100.00 <i>{campaign}</i>",
                    )
                )
        anomalies.append(
            _anomaly(channel, campaign, ADS_AS_OF - dt.timedelta(days=10), "cvr", 0.2, 0.05, 9.0, "cvr 4× its median")
        )
    kpis.append(_kpi("email", "one_day_blast", ADS_AS_OF, 5000, 100, 50.0, 5.0, 300.0))
    for row in kpis:
        row["as_of"] = ADS_AS_OF
    for row in anomalies:
        row["as_of"] = ADS_AS_OF
    return {
        "campaign_kpis_history": pa.Table.from_pylist(kpis, CAMPAIGN_KPIS_HISTORY.schema),
        "kpi_anomalies_history": pa.Table.from_pylist(anomalies, KPI_ANOMALIES_HISTORY.schema),
    }


def _kpi(
    channel: str, campaign: str, date: dt.date, imp: int, clicks: int, spend: float, conv: float, rev: float
) -> dict:
    return {
        "channel": channel,
        "campaign": campaign,
        "date": date,
        "impressions": imp,
        "clicks": clicks,
        "spend": spend,
        "conversions": conv,
        "revenue": rev,
        "ctr": clicks / imp,
        "cvr": conv / clicks,
        "cpc": spend / clicks,
        "cpa": spend / conv,
        "roas": rev / spend,
    }


def _anomaly(
    channel: str, campaign: str, date: dt.date, metric: str, value: float, expected: float, z: float | None, reason: str
) -> dict:
    return {
        "channel": channel,
        "campaign": campaign,
        "date": date,
        "metric": metric,
        "value": value,
        "expected": expected,
        "robust_z": z,
        "baseline": "trailing_28d",
        "history_days": 28,
        "reason": reason,
    }


# --- any dataset: profiles, the curated table, quarantine ---

GENERIC_DAYS = (dt.date(2026, 3, 2), dt.date(2026, 3, 3), dt.date(2026, 3, 5))


def generic_tables(dataset: str = "web_sessions", seed: int = 11) -> dict[str, pa.Table]:
    """A web-analytics dataset of three files: its table, profiles and quarantine."""
    rng = np.random.default_rng(seed)
    n = 600
    sessions = pa.table(
        {
            "session_id": [f"s{i}" for i in range(n)],
            "traffic_source": rng.choice(["google", "partner", SCRIPT], n).tolist(),
            "pages": rng.integers(1, 30, n),
            "duration_seconds": rng.gamma(2.0, 60.0, n),
            "source_id": rng.choice(["f1", "f2", "f3"], n).tolist(),
            "ingested_at": pa.array([dt.datetime(2026, 3, 2, 9)] * n, pa.timestamp("us", tz="UTC")),
        }
    )
    profile_rows = []
    for k, (source, day) in enumerate(zip(("f1", "f2", "f3"), GENERIC_DAYS, strict=True)):
        rows_in_file = 200
        for pos, (column, kind) in enumerate(
            (
                ("session_id", "string"),
                ("traffic_source", "string"),
                ("pages", "int64"),
                ("duration_seconds", "double"),
                (SCRIPT, "string"),
            )
        ):
            numeric = kind != "string"
            profile_rows.append(
                {
                    "source_id": source,
                    "dataset": dataset,
                    "column": column,
                    "position": pos,
                    "type": kind,
                    "rows": rows_in_file,
                    "nulls": 10 * k if column == "pages" else 0,
                    "null_share": (10 * k if column == "pages" else 0) / rows_in_file,
                    "distinct_estimate": 29 if column == "pages" else 200,
                    "distinct_is_exact": True,
                    "min": "1" if numeric else "a",
                    "max": "29" if numeric else "z",
                    "min_number": 1.0 + k if numeric else None,
                    "max_number": 29.0 + k if numeric else None,
                    "min_time": None,
                    "max_time": None,
                    "ingest_date": day,
                }
            )
    quarantine_rows = []
    for day, reason, count in (
        (GENERIC_DAYS[0], "bad_number", 5),
        (GENERIC_DAYS[0], "missing_required", 2),
        (GENERIC_DAYS[2], "bad_number", 7),
        (GENERIC_DAYS[2], SCRIPT, 1),
    ):
        for i in range(count):
            quarantine_rows.append(
                {
                    "pages": "x",
                    "_row_number": i,
                    "_reason_code": reason,
                    "_reason": f"{reason} in row {i}",
                    "ingested_at": dt.datetime.combine(day, dt.time(10), dt.UTC),
                }
            )
    quarantine = pa.Table.from_pylist(
        quarantine_rows,
        pa.schema(
            [
                ("pages", pa.string()),
                ("_row_number", pa.int64()),
                ("_reason_code", pa.string()),
                ("_reason", pa.string()),
                ("ingested_at", pa.timestamp("us", tz="UTC")),
            ]
        ),
    )
    return {
        dataset: sessions,
        "dataset_profiles": pa.Table.from_pylist(profile_rows, PROFILE_TABLE_SPEC.schema),
        f"lake_quarantine.{dataset}": quarantine,
    }


def text_only_tables(dataset: str = "notes") -> dict[str, pa.Table]:
    """A dataset of one file with only text columns, no quarantine."""
    table = pa.table({"author": ["a", "b"], "note": ["hello", SCRIPT], "source_id": ["f1", "f1"]})
    profile = [
        {
            "source_id": "f1",
            "dataset": dataset,
            "column": c,
            "position": i,
            "type": "string",
            "rows": 2,
            "nulls": 0,
            "null_share": 0.0,
            "distinct_estimate": 2,
            "distinct_is_exact": True,
            "min": "a",
            "max": "z",
            "min_number": None,
            "max_number": None,
            "min_time": None,
            "max_time": None,
            "ingest_date": GENERIC_DAYS[0],
        }
        for i, c in enumerate(("author", "note"))
    ]
    return {dataset: table, "dataset_profiles": pa.Table.from_pylist(profile, PROFILE_TABLE_SPEC.schema)}


# --- a built-in dataset's own table, profile and quarantine, as its pipeline writes them ---

#: Per built-in dataset: the column of a generated file whose value is spoiled every 50th row.
_SPOILED = {"orders": "amount", "ad_performance": "Link Clicks", "experiments": "revenue"}


class _Sink:
    def __init__(self) -> None:
        self.written: dict[str, list[pa.Table]] = {}
        self.rejected: list[pa.Table] = []

    def write(self, table: str, data: pa.Table | pa.RecordBatch) -> None:
        self.written.setdefault(table, []).append(data if isinstance(data, pa.Table) else pa.Table.from_batches([data]))

    def quarantine(self, rows: pa.Table | pa.RecordBatch) -> None:
        self.rejected.append(rows if isinstance(rows, pa.Table) else pa.Table.from_batches([rows]))


def built_in_tables(dataset: str, rows: int = 2000, seed: int = 3) -> dict[str, pa.Table]:
    """What the dataset's own pipeline writes for one generated file (every 50th row spoiled, so
    quarantined): its own table (as its view shows it: one file, so each key once), the file's
    ``dataset_profiles`` rows and the quarantine, with the lineage the lake adds to the latter."""
    import io

    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    from analytics.base import SourceInfo
    from analytics.registry import get_pipeline, spec

    found = spec(dataset)
    assert found is not None and found.sample is not None
    text = found.sample(rows, seed=seed)
    table = pacsv.read_csv(
        io.BytesIO(text.encode()),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(text.split("\n", 1)[0].replace('"', "").split(","), pa.string())
        ),
    )
    spoiled = table.column_names.index(_SPOILED[dataset])
    values = table.column(spoiled).to_pylist()
    table = table.set_column(
        spoiled, table.column_names[spoiled], pa.array([v if i % 50 else "n/a?" for i, v in enumerate(values)])
    )
    day = GENERIC_DAYS[0]
    sink = _Sink()
    source = SourceInfo(dataset, "file-1", f"raw/{dataset}/file-1.csv", day)
    get_pipeline(dataset).run(iter(table.to_batches()), source, sink)
    landed = pa.scalar(dt.datetime.combine(day, dt.time(10), dt.UTC), pa.timestamp("us", tz="UTC"))
    quarantine = pa.concat_tables(sink.rejected)
    quarantine = quarantine.append_column("ingested_at", pa.repeat(landed, quarantine.num_rows))
    assert pc.sum(pc.equal(quarantine.column("_reason_code"), "invalid_number")).as_py()
    return {
        found.own_table: pa.concat_tables(sink.written[found.own_table]),
        "dataset_profiles": pa.concat_tables(sink.written["dataset_profiles"]),
        f"lake_quarantine.{dataset}": quarantine,
    }


# --- the processing ledger ---

LEDGER_END = dt.date(2026, 3, 10)


def ledger_tables(seed: int = 5) -> dict[str, pa.Table]:
    """Ten days of files and refreshes of two datasets, with failures; Lambda memory on most rows."""
    rng = np.random.default_rng(seed)
    out = []
    for d in range(10):
        day = LEDGER_END - dt.timedelta(days=9 - d)
        for i in range(int(rng.integers(2, 6))):
            dataset = ("orders", "web_sessions")[i % 2]
            status = "failed" if (d + i) % 7 == 0 else ("replaced" if i == 3 else "processed")
            size = int(rng.integers(100_000, 5_000_000))
            duration = 500 + size / 1e6 * 40 + float(rng.uniform(0, 100))
            out.append(
                {
                    "logged_at": dt.datetime.combine(day, dt.time(8, i), dt.UTC),
                    "log_date": day,
                    "kind": "file",
                    "dataset": dataset,
                    "key": f"raw/{dataset}/{day}-{i}.csv",
                    "version": f"v{i}",
                    "trigger": "s3",
                    "status": status,
                    "rows_in": size // 100,
                    "rows_written": 0 if status == "failed" else size // 100 - 3,
                    "rows_quarantined": 3,
                    "quarantined_by_reason": json.dumps({"bad_number": 3}),
                    "duplicates": 0,
                    "bytes": size,
                    "duration_ms": duration,
                    "stage_ms": json.dumps({"read": duration / 2}),
                    "error_type": ("SchemaConflictError" if i % 2 else f"Bad{SCRIPT}") if status == "failed" else None,
                    "error_message": f"column {SCRIPT} is text; rename it" if status == "failed" else None,
                    "event_key": f"k{d}{i}",
                    "snapshot_ids": "{}",
                    "memory_mb": None if d == 0 else 3008,
                    "billed_duration_ms": None if d == 1 else int(duration) + 1,
                    "request_id": f"r{d}{i}",
                }
            )
        out.append(
            {
                "logged_at": dt.datetime.combine(day, dt.time(9), dt.UTC),
                "log_date": day,
                "kind": "refresh",
                "dataset": "orders",
                "key": None,
                "version": None,
                "trigger": "refresh",
                "status": "refreshed",
                "rows_in": 1000,
                "rows_written": 300,
                "rows_quarantined": 0,
                "quarantined_by_reason": "{}",
                "duplicates": 0,
                "bytes": None,
                "duration_ms": 4000.0,
                "stage_ms": "{}",
                "error_type": None,
                "error_message": None,
                "event_key": f"r{d}",
                "snapshot_ids": "{}",
                "memory_mb": 3008,
                "billed_duration_ms": 4001,
                "request_id": f"q{d}",
            }
        )
    return {"lake_ops.processing_log": pa.Table.from_pylist(out, LEDGER_SCHEMA)}
