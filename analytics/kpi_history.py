"""``ad_performance`` over history: daily campaign KPIs across every file, each day against the days before.

The refresh sums ``ad_performance`` per channel × campaign × date over the whole dataset (the lake's
keyed ``ad_performance`` view already counts a row re-exported for the same date × channel ×
campaign × ad group once: the newest file's copy) and calls :func:`kpi_history`. Rows given here for
the same channel × campaign × date are summed, as the ad groups of one campaign-day are; they are
never deduplicated again.

Each campaign-day's KPI is compared with its own campaign's earlier days only, so a spike in a
one-day file is found against the days other files brought:

* with 8 weeks of the campaign's history before the day (and at least 6 values on that weekday in
  them), against the same weekday of the previous 8 weeks: a weekly rhythm (quiet weekends) is the
  baseline rather than an anomaly;
* otherwise against the trailing 28 days, once at least 7 of them have a value;
* with fewer, the day is not scored, and a campaign none of whose days can be scored gets a note.

The score is the robust z-score (x − median) / (1.4826 · MAD) of the baseline (Iglewicz & Hoaglin,
1993: the MAD scaled to a normal σ; the mean absolute deviation × 1.253314 stands in when the MAD is
0, and the scale is never taken below 1% of the median, so a flat series is not infinitely
sensitive). A day is an anomaly when |z| > 3.5 (Iglewicz & Hoaglin's cut-off, as the per-file
detector) and it is also at least 25% away from the baseline median (nobody acts on a CTR 10% below
its median). The reason says it in words: "spend 4.2× the trailing 28-day median of 120.00".

Output tables, one snapshot per ``as_of`` (the newest date of the history unless given):
``campaign_kpis_history`` (the per-file ``campaign_kpis`` figures summed over every file, without
lineage) and ``kpi_anomalies_history`` (only the anomalous campaign-day × metric rows, with the
baseline used and the reason). The per-file ``campaign_kpis`` / ``kpi_anomalies`` stay as they are:
they describe one file, scored against that file's own days (before and after).
"""

from __future__ import annotations

import calendar
import warnings
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from numpy.lib.stride_tricks import sliding_window_view

from analytics.anomaly_rule import ANOMALY_METRICS, MIN_RELATIVE_CHANGE, Z_THRESHOLD, safe_divide
from analytics.base import ModelFact, TableSpec, col
from analytics.contract import conform, fixed_schema
from analytics.errors import HistoryInputError

MODEL_VERSION = "1"
WINDOW_DAYS = 28
#: Days with a value in the trailing window before a day is scored against it.
MIN_WINDOW_VALUES = 7
SEASONAL_WEEKS = 8
#: Same-weekday values (of the last SEASONAL_WEEKS) needed for the weekday baseline.
MIN_SEASONAL_VALUES = 6
#: Days before a scored day that its baselines read (the weekday one reaches furthest): a refresh that
#: scores from a day needs the history from this many days before it, and each campaign's first day.
BASELINE_REACH = 7 * SEASONAL_WEEKS
#: 1.4826 · MAD estimates σ for normal data; 1.253314 · mean absolute deviation likewise.
MAD_TO_SIGMA = 1.4826
MEAN_AD_TO_SIGMA = 1.253314
#: The scale is never below this share of |median|.
MIN_SCALE_SHARE = 0.01

BASELINE_TRAILING = "trailing_28d"
BASELINE_WEEKDAY = "same_weekday_8w"

_SUMMED = ("impressions", "clicks", "spend", "conversions", "revenue")
_REQUIRED = ("date", "channel", "campaign", *_SUMMED)
_FORMAT = {"ctr": ".4f", "cvr": ".4f"}

CAMPAIGN_KPIS_HISTORY = TableSpec(
    "campaign_kpis_history",
    "as_of",
    "Daily totals and ratios per channel × campaign over every ad file, as of a date; a ratio over zero is null.",
    pa.schema(
        [
            col("channel", pa.string(), "channel"),
            col("campaign", pa.string(), "campaign"),
            col("date", pa.date32(), "the day"),
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
            col("as_of", pa.date32(), "the newest day of the dataset"),
        ]
    ),
    current_view="campaign_kpis",
    covered_by="campaign_kpis_history",
)

KPI_ANOMALIES_HISTORY = TableSpec(
    "kpi_anomalies_history",
    "as_of",
    "Campaign-day KPIs far from the campaign's earlier days (trailing 28 days, or the same weekday of the "
    "last 8 weeks): value, baseline median, robust z-score and the reason in words, as of a date.",
    pa.schema(
        [
            col("channel", pa.string(), "channel"),
            col("campaign", pa.string(), "campaign"),
            col("date", pa.date32(), "the day"),
            col("metric", pa.string(), "`spend`, `ctr`, `cvr`, `cpa` or `roas`"),
            col("value", pa.float64(), "the day's value"),
            col("expected", pa.float64(), "median of the baseline"),
            col(
                "robust_z",
                pa.float64(),
                "(value − median) / (1.4826 · MAD) over the baseline; null when the baseline was all one value and "
                "the day differs",
            ),
            col(
                "baseline",
                pa.string(),
                "`same_weekday_8w` (the same weekday of the previous 8 weeks) or `trailing_28d` (the trailing 28 days)",
            ),
            col("history_days", pa.int64(), "values in the baseline"),
            col(
                "reason",
                pa.string(),
                "the anomaly in words (`spend 4.2× the trailing 28-day median of 99.23 (robust z 79.3)`)",
            ),
            col("as_of", pa.date32(), "the newest day of the dataset"),
        ]
    ),
    current_view="kpi_anomalies",
    covered_by="campaign_kpis_history",
)


@dataclass(frozen=True)
class KpiHistory:
    """The two history tables, a sentence per thing a person should know, and the model fact."""

    kpis: pa.Table
    anomalies: pa.Table
    notes: tuple[str, ...]
    fact: ModelFact


def kpi_history(daily: pa.Table, as_of: date | None = None, *, scored_from: date | None = None) -> KpiHistory:
    """KPIs and anomalies per channel × campaign × date over the whole history up to ``as_of``.

    ``daily`` has ``date``, ``channel``, ``campaign`` and the sums ``impressions``, ``clicks``,
    ``spend``, ``conversions``, ``revenue`` (already counted once per re-exported key). Days after
    ``as_of`` are left out. ``scored_from`` limits both outputs to days from that date (earlier days
    still serve as baseline), so a daily refresh need not rewrite years of rows. With ``scored_from``,
    ``daily`` may hold only the days from :data:`BASELINE_REACH` days before it if it also has
    ``first_day``, each campaign's first day in the whole history (the weekday baseline is used only
    from 8 weeks after it): the result is the same as from every day.
    """
    missing = [c for c in _REQUIRED if c not in daily.column_names]
    if missing:
        raise HistoryInputError(
            f"campaign-day KPIs lack the column(s) {', '.join(missing)}; select date, channel, campaign and the "
            "sums of impressions, clicks, spend, conversions, revenue from ad_performance"
        )
    notes: list[str] = []
    frame = pd.DataFrame({c: daily.column(c).to_pandas() for c in _REQUIRED})
    frame["date"] = pd.to_datetime(frame["date"])
    if "first_day" in daily.column_names:
        frame["first_day"] = pd.to_datetime(daily.column("first_day").to_pandas())
    unusable = frame["date"].isna() | frame["channel"].isna() | frame["campaign"].isna()
    if unusable.any():
        notes.append(f"{int(unusable.sum())} rows without a date, channel or campaign were left out")
        frame = frame[~unusable]
    if as_of is None:
        as_of = frame["date"].max().date() if len(frame) else date.today()
    frame = frame[frame["date"] <= pd.Timestamp(as_of)]
    origins: dict[Any, pd.Timestamp] = (
        frame.groupby(["channel", "campaign"])["first_day"].min().to_dict() if "first_day" in frame else {}
    )
    for column in _SUMMED:
        frame[column] = frame[column].astype(float).fillna(0.0)
    kpis = frame.groupby(["channel", "campaign", "date"], sort=True, as_index=False)[list(_SUMMED)].sum()
    ratios = {
        "ctr": ("clicks", "impressions"),
        "cvr": ("conversions", "clicks"),
        "cpc": ("spend", "clicks"),
        "cpa": ("spend", "conversions"),
        "roas": ("revenue", "spend"),
    }
    for name, (numerator, denominator) in ratios.items():
        kpis[name] = safe_divide(kpis[numerator].to_numpy(), kpis[denominator].to_numpy())

    start = pd.Timestamp(scored_from) if scored_from is not None else None
    anomalies: list[dict[str, object]] = []
    scored = too_short = 0
    for (channel, campaign), series in kpis.groupby(["channel", "campaign"], sort=True):
        found, days_scored = _score_series(series, start, origins.get((channel, campaign)))
        scored += days_scored
        if days_scored == 0 and start is None:
            too_short += 1
            notes.append(
                f"campaign {channel} / {campaign} has {len(series)} day(s) of data and none can be scored yet; "
                f"a day is scored once {MIN_WINDOW_VALUES} earlier days fall in its trailing {WINDOW_DAYS} days"
            )
        anomalies.extend({"channel": channel, "campaign": campaign, **a} for a in found)

    if start is not None:
        kpis = kpis[kpis["date"] >= start]
    kpis_table = _kpis_table(kpis, as_of)
    anomaly_schema = fixed_schema(KPI_ANOMALIES_HISTORY)
    anomalies_table = (
        pa.Table.from_pylist([{**a, "as_of": as_of} for a in anomalies], schema=anomaly_schema)
        if anomalies
        else anomaly_schema.empty_table()
    )
    fact = ModelFact(
        "kpi_anomalies_history",
        MODEL_VERSION,
        {
            "method": "robust z (median/MAD) against the campaign's earlier days",
            "as_of": as_of.isoformat(),
            "metrics": ",".join(ANOMALY_METRICS),
            "series": int(kpis_table.num_rows and len(kpis.groupby(["channel", "campaign"]))),
            "campaign_days": kpis_table.num_rows,
            "scored_from": scored_from.isoformat() if scored_from is not None else None,
            "campaign_day_metrics_scored": scored,
            "anomalies_found": anomalies_table.num_rows,
            "campaigns_too_short": too_short,
            "window_days": WINDOW_DAYS,
            "seasonal_weeks": SEASONAL_WEEKS,
            "z_threshold": Z_THRESHOLD,
            "min_relative_change": MIN_RELATIVE_CHANGE,
            "notes": "; ".join(notes) or None,
        },
    )
    return KpiHistory(kpis_table, anomalies_table, tuple(notes), fact)


def scoring_start(daily: pa.Table, as_of: date, previous: pa.Table, snapshots: pa.Table) -> date | None:
    """The day a refresh of ``daily`` as of ``as_of`` scores from (None: every day).

    ``previous`` is the campaign-day sums as the current ``campaign_kpis`` shows them (``channel``,
    ``campaign``, ``date`` and the five sums); ``snapshots`` has each stored snapshot's ``as_of`` and
    ``first_day`` (the earliest day it scored). The start is the earliest day whose sums changed or
    that appeared or disappeared (a new day, or a re-export of an old one), no later than ``as_of``,
    and no later than the start of a snapshot of the same ``as_of`` it replaces (or that one's earlier
    days would be lost); then moved back to a day that has rows, since the snapshot's earliest row is
    what says where it starts. A history whose newest day went back (the newest file deleted) is
    scored whole.
    """
    if _went_back(as_of, snapshots):
        return None
    keys = ["channel", "campaign", "date"]
    new = _campaign_days(daily, as_of)
    old = previous.select([*keys, *_SUMMED]).to_pandas()
    old["date"] = pd.to_datetime(old["date"])
    old = old[old["date"] <= pd.Timestamp(as_of)]
    merged = new.merge(old, on=keys, how="outer", suffixes=("", "_old"), indicator=True)
    differs = merged["_merge"] != "both"
    for column in _SUMMED:
        a = merged[column].to_numpy(dtype=float)
        b = merged[f"{column}_old"].to_numpy(dtype=float)
        # impressions and clicks are stored rounded; sums may differ in their last bits between runs
        differs |= ~np.isclose(np.round(a) if column in ("impressions", "clicks") else a, b, rtol=1e-9, atol=1e-9)
    changed = merged.loc[differs, "date"].min().date() if differs.any() else None
    return _start(changed, as_of, snapshots, new["date"])


def scoring_start_of_days(days: pa.Table, snapshots: pa.Table) -> tuple[date | None, date | None]:
    """``(as_of, start)`` from the per-day comparison ``CHANGED_DAYS_SQL`` computes in the query engine
    (``analytics.history_refreshers``): each ``date`` of the input or of ``campaign_kpis``, whether a
    campaign-day of it ``changed``, ``has_rows`` (with a channel and campaign) and is ``in_input``.
    The same rules as :func:`scoring_start` (which compares the sums here, and is the reference),
    without bringing every campaign-day into Python. ``as_of`` is None for an input without days."""
    table = days.to_pandas()
    table["date"] = pd.to_datetime(table["date"])
    present = table.loc[table["in_input"].fillna(False).astype(bool), "date"]
    if present.empty:
        return None, None
    as_of = present.max().date()
    if _went_back(as_of, snapshots):
        return as_of, None
    table = table[table["date"] <= pd.Timestamp(as_of)]
    changed_days = table.loc[table["changed"].fillna(False).astype(bool), "date"]
    changed = changed_days.min().date() if len(changed_days) else None
    return as_of, _start(changed, as_of, snapshots, table.loc[table["has_rows"].fillna(False).astype(bool), "date"])


def _went_back(as_of: date, snapshots: pa.Table) -> bool:
    """A stored snapshot is newer than the history: its newest day went back (scored whole)."""
    return any(d > as_of for d in snapshots.column("as_of").to_pylist())


def _start(changed: date | None, as_of: date, snapshots: pa.Table, days: pd.Series) -> date | None:
    """The earliest changed day (``as_of`` when none), no later than a same-``as_of`` snapshot started,
    moved back to a day of ``days`` (the days that have rows); None when none is that early."""
    start = min(changed, as_of) if changed is not None else as_of
    for stored, first in zip(
        snapshots.column("as_of").to_pylist(), snapshots.column("first_day").to_pylist(), strict=True
    ):
        if stored == as_of and first is not None:
            start = min(start, first)
    earlier = days[days <= pd.Timestamp(start)]
    return earlier.max().date() if len(earlier) else None


def _campaign_days(daily: pa.Table, as_of: date) -> pd.DataFrame:
    """The sums per channel × campaign × date up to ``as_of``, as :func:`kpi_history` scores them."""
    frame = pd.DataFrame({c: daily.column(c).to_pandas() for c in _REQUIRED})
    frame["date"] = pd.to_datetime(frame["date"])
    frame = frame[~(frame["date"].isna() | frame["channel"].isna() | frame["campaign"].isna())]
    frame = frame[frame["date"] <= pd.Timestamp(as_of)]
    for column in _SUMMED:
        frame[column] = frame[column].astype(float).fillna(0.0)
    frame["channel"] = frame["channel"].astype(str)
    frame["campaign"] = frame["campaign"].astype(str)
    return frame.groupby(["channel", "campaign", "date"], sort=True, as_index=False)[list(_SUMMED)].sum()


def _kpis_table(kpis: pd.DataFrame, as_of: date) -> pa.Table:
    schema = fixed_schema(CAMPAIGN_KPIS_HISTORY)
    columns: dict[str, pa.Array] = {
        "channel": pa.array(kpis["channel"].astype(str).tolist(), pa.string()),
        "campaign": pa.array(kpis["campaign"].astype(str).tolist(), pa.string()),
        "date": pa.array(kpis["date"].dt.date.tolist(), pa.date32()),
    }
    for name in ("impressions", "clicks"):
        columns[name] = pa.array(np.round(kpis[name].to_numpy(dtype=float)).astype(np.int64))
    for name in ("spend", "conversions", "revenue", "ctr", "cvr", "cpc", "cpa", "roas"):
        values = kpis[name].to_numpy(dtype=float)
        columns[name] = pa.array(values, mask=np.isnan(values))
    columns["as_of"] = pa.repeat(pa.scalar(as_of, pa.date32()), len(kpis))
    return conform(pa.table(columns), CAMPAIGN_KPIS_HISTORY) if len(kpis) else schema.empty_table()


def _score_series(
    series: pd.DataFrame, start: pd.Timestamp | None = None, origin: pd.Timestamp | None = None
) -> tuple[list[dict[str, object]], int]:
    """Anomalies of one campaign (rows sorted by date) on the days from ``start`` (every day when
    None; earlier days still serve as baseline) and the number of day × metric values scored.
    ``origin`` is the campaign's first day when ``series`` leaves out days before its baselines."""
    first = series["date"].iloc[0]
    # Days from the campaign's first day to the series' first row (0 when the series is whole).
    shift = (first - origin).days if origin is not None and not pd.isna(origin) else 0
    offset = ((series["date"] - first).dt.days).to_numpy()
    span = int(offset[-1]) + 1
    full = np.full((span, len(ANOMALY_METRICS)), np.nan)
    full[offset] = series[list(ANOMALY_METRICS)].to_numpy(dtype=float)
    # Only the days from start are scored: the windows (the cost) are built for them alone.
    lo = min(span, max(0, (start - first).days)) if start is not None else 0
    grid = full[lo:]

    # Day i's trailing window is rows i−28 … i−1; its weekday baseline rows i−7, …, i−56.
    padded_trailing = np.vstack([np.full((WINDOW_DAYS, full.shape[1]), np.nan), full])
    trailing = sliding_window_view(padded_trailing, WINDOW_DAYS, 0)[lo:span]  # (day, metric, 28)
    reach = BASELINE_REACH
    padded = np.vstack([np.full((reach, full.shape[1]), np.nan), full])
    lags = np.stack([padded[reach - 7 * k + lo : reach - 7 * k + span] for k in range(1, SEASONAL_WEEKS + 1)], axis=2)

    trailing_n = np.count_nonzero(~np.isnan(trailing), axis=2)
    weekday_n = np.count_nonzero(~np.isnan(lags), axis=2)
    old_enough = (np.arange(lo, span) + shift >= reach)[:, None]
    use_weekday = old_enough & (weekday_n >= MIN_SEASONAL_VALUES)
    use_trailing = ~use_weekday & (trailing_n >= MIN_WINDOW_VALUES)
    baseline = np.where(
        use_weekday[..., None],
        np.pad(lags, ((0, 0), (0, 0), (0, WINDOW_DAYS - SEASONAL_WEEKS)), constant_values=np.nan),
        trailing,
    )
    count = np.where(use_weekday, weekday_n, trailing_n)
    scorable = (use_weekday | use_trailing) & ~np.isnan(grid)

    with warnings.catch_warnings():
        # All-NaN windows (unscorable days) warn; they are masked out below.
        warnings.simplefilter("ignore", RuntimeWarning)
        median = np.nanmedian(baseline, axis=2)
        deviation = np.abs(baseline - median[..., None])
        mad = np.nanmedian(deviation, axis=2)
        mean_ad = np.nanmean(deviation, axis=2)
    scale = np.where(mad > 0, MAD_TO_SIGMA * mad, MEAN_AD_TO_SIGMA * mean_ad)
    scale = np.maximum(scale, MIN_SCALE_SHARE * np.abs(median))
    difference = grid - median
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(scale > 0, difference / scale, np.where(difference == 0, 0.0, np.sign(difference) * np.inf))
    material = np.abs(difference) >= MIN_RELATIVE_CHANGE * np.abs(median)
    flagged = scorable & (np.abs(z) > Z_THRESHOLD) & material

    found: list[dict[str, object]] = []
    for day, metric in zip(*np.nonzero(flagged), strict=True):
        when = (first + pd.Timedelta(days=lo + int(day))).date()
        weekday = bool(use_weekday[day, metric])
        value, expected, score = float(grid[day, metric]), float(median[day, metric]), float(z[day, metric])
        found.append(
            {
                "date": when,
                "metric": ANOMALY_METRICS[metric],
                "value": value,
                "expected": expected,
                "robust_z": score if np.isfinite(score) else None,
                "baseline": BASELINE_WEEKDAY if weekday else BASELINE_TRAILING,
                "history_days": int(count[day, metric]),
                "reason": _reason(
                    ANOMALY_METRICS[metric], value, expected, score, weekday, when, int(count[day, metric])
                ),
            }
        )
    return found, int(np.count_nonzero(scorable))


def _reason(metric: str, value: float, expected: float, z: float, weekday: bool, when: date, count: int) -> str:
    """ "spend 4.2× the trailing 28-day median of 120.00 (robust z 12.3)" and the like."""
    fmt = _FORMAT.get(metric, ".2f")
    baseline = (
        f"median of the previous {count} {calendar.day_name[when.weekday()]}s"
        if weekday
        else f"trailing {WINDOW_DAYS}-day median"
    )
    if expected == 0:
        return f"{metric} {value:{fmt}} where the {baseline} was {expected:{fmt}}"
    ratio = value / expected
    times = f"{ratio:.1f}" if abs(ratio) >= 1 else f"{ratio:.2f}"
    z_text = f" (robust z {z:.1f})" if np.isfinite(z) else ""
    return f"{metric} {times}× the {baseline} of {expected:{fmt}}{z_text}"
