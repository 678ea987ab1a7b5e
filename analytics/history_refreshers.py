"""Refreshers that feed the models over history their SQL features (see ``analytics.registry``).

Each is pure: it asks ``query`` (Athena SQL over the curated tables, run by the refresh stage on
DuckDB or Athena) for per-entity aggregates and hands them to the model's own module.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from analytics.base import ModelFact, ModelTable, RefreshContext, RefreshResult

#: Share of the history (first order day to the newest) held out at its end to choose between
#: BG/NBD and MBG/NBD: both are fitted on the days before and scored on the order days after.
HOLDOUT_SHARE = 0.25

#: Per-customer aggregates for BG/NBD and Gamma-Gamma (``analytics.clv.CUSTOMER_AGGREGATES``): a
#: purchase is an order day, and the first day's spend is kept apart (Gamma-Gamma models repeat spend);
#: the calibration columns split each customer's order days at ``calibration_end``.
CUSTOMER_AGGREGATES_SQL = f"""
WITH days AS (
    SELECT customer_id, order_date, sum(amount) AS amount
    FROM orders
    WHERE customer_id IS NOT NULL AND order_date IS NOT NULL AND amount IS NOT NULL
    GROUP BY customer_id, order_date
),
split AS (
    SELECT CAST(date_add('day', -CAST(floor(date_diff('day', min(order_date), max(order_date)) * {HOLDOUT_SHARE})
                                       AS integer), max(order_date)) AS date) AS calibration_end
    FROM days
)
SELECT d.customer_id,
       min(d.order_date) AS first_order_date,
       max(d.order_date) AS last_order_date,
       count(*) AS order_days,
       sum(d.amount) AS total_amount,
       min_by(d.amount, d.order_date) AS first_day_amount,
       CAST(sum(CASE WHEN d.order_date <= s.calibration_end THEN 1 ELSE 0 END) AS bigint) AS calibration_order_days,
       max(CASE WHEN d.order_date <= s.calibration_end THEN d.order_date END) AS calibration_last_order_date,
       min(s.calibration_end) AS calibration_end
FROM days d CROSS JOIN split s
GROUP BY d.customer_id
"""


def refresh_customer_value(query: Callable[[str], pa.Table], context: RefreshContext | None = None) -> RefreshResult:
    """``orders`` → ``customer_value`` as of the newest order date; a fit that cannot be made (too
    few repeat customers, no convergence) writes nothing and its facts say why."""
    from analytics.clv import CUSTOMER_VALUE, MODEL_VERSION, customer_value  # scipy's optimiser, on use

    aggregates = query(CUSTOMER_AGGREGATES_SQL)
    if aggregates.num_rows == 0:
        fact = ModelFact("customer_value", MODEL_VERSION, {"customers": 0, "note": "no orders in the history"})
        return RefreshResult(facts=(fact,))
    as_of = pc.max(aggregates.column("last_order_date")).as_py()
    result = customer_value(aggregates, as_of)
    if result.keep_previous:
        return RefreshResult(facts=result.facts)
    return RefreshResult(tables=(ModelTable(CUSTOMER_VALUE, result.table, as_of),), facts=result.facts)


#: Per channel × campaign × day sums from the keyed ``ad_performance`` view (a re-exported row counted
#: once, from the newest file); ad groups of a campaign-day are summed.
CAMPAIGN_DAYS_SQL = """
SELECT date, channel, campaign,
       sum(impressions) AS impressions,
       sum(clicks) AS clicks,
       sum(spend) AS spend,
       sum(conversions) AS conversions,
       sum(revenue) AS revenue
FROM ad_performance
WHERE date IS NOT NULL
GROUP BY date, channel, campaign
"""


#: Each stored snapshot of ``campaign_kpis_history`` and the first day it scored.
KPI_SNAPSHOTS_SQL = "SELECT as_of, min(date) AS first_day FROM campaign_kpis_history GROUP BY as_of"

_SUMS = ("impressions", "clicks", "spend", "conversions", "revenue")


def _changed_days_sql() -> str:
    """Per day of the input or of what ``campaign_kpis`` shows: whether a campaign-day of it changed
    (appeared, disappeared, or its sums differ as :func:`analytics.kpi_history.scoring_start` compares
    them: impressions and clicks rounded, 1e-9 relative and absolute), has rows with a channel and
    campaign, and is in the input. A few hundred rows, whatever the number of campaigns."""
    from analytics.base import covering_rows_sql

    name = "campaign_kpis_history"
    shown = covering_rows_sql(name, name, ["channel", "campaign", "date", *_SUMS])
    differs = " OR ".join(
        f"o.{c} IS NULL OR abs({'round(' if c in ('impressions', 'clicks') else '('}CAST(n.{c} AS double)) "
        f"- CAST(o.{c} AS double)) > 1e-9 + 1e-9 * abs(CAST(o.{c} AS double))"
        for c in _SUMS
    )
    return f"""
WITH sums AS ({CAMPAIGN_DAYS_SQL}),
input_days AS (
    SELECT date, channel, campaign, {", ".join(f"coalesce({c}, 0) AS {c}" for c in _SUMS)}
    FROM sums
),
shown AS ({shown}),
compared AS (
    SELECT coalesce(n.date, o.date) AS date,
           n.date IS NOT NULL AS in_input,
           n.date IS NOT NULL AND n.channel IS NOT NULL AND n.campaign IS NOT NULL AS has_rows,
           CASE WHEN n.date IS NOT NULL AND (n.channel IS NULL OR n.campaign IS NULL) THEN false
                WHEN n.date IS NULL OR o.date IS NULL THEN true
                ELSE ({differs}) END AS changed
    FROM input_days n FULL OUTER JOIN shown o ON n.channel = o.channel AND n.campaign = o.campaign AND n.date = o.date
)
SELECT date, bool_or(changed) AS changed, bool_or(has_rows) AS has_rows, bool_or(in_input) AS in_input
FROM compared
GROUP BY date
"""


def _campaign_days_since_sql(since: date) -> str:
    """The campaign-day sums from ``since`` on, each with its campaign's first day in the whole history."""
    return f"""
SELECT date, channel, campaign, {", ".join(_SUMS)}, first_day
FROM (SELECT date, channel, campaign, {", ".join(_SUMS)},
             min(date) OVER (PARTITION BY channel, campaign) AS first_day
      FROM ({CAMPAIGN_DAYS_SQL}) s) w
WHERE date >= DATE '{since.isoformat()}'
"""


def refresh_kpi_history(query: Callable[[str], pa.Table], context: RefreshContext | None = None) -> RefreshResult:
    """``ad_performance`` → ``campaign_kpis_history`` and ``kpi_anomalies_history`` as of the newest
    day (each day against its campaign's earlier days, from any file).

    Only the days from the earliest one whose sums differ from what ``campaign_kpis`` shows are
    scored and written (a daily file: its day; a re-export of an old day: from that day); earlier
    days are the baseline, and the current views show each day from the newest snapshot that
    scored it (``TableSpec.covered_by``). The comparison runs in the query engine, and only the days
    the scored days' baselines reach come back (``BASELINE_REACH`` days before the first), so what a
    daily refresh brings into Python and scores is its new day and 8 weeks, not the whole history."""
    from analytics.kpi_history import (
        BASELINE_REACH,
        CAMPAIGN_KPIS_HISTORY,
        KPI_ANOMALIES_HISTORY,
        kpi_history,
        scoring_start_of_days,
    )

    context = context or RefreshContext()
    as_of: date | None = None
    scored_from = None
    if CAMPAIGN_KPIS_HISTORY.name in context.tables:
        as_of, scored_from = scoring_start_of_days(query(_changed_days_sql()), query(KPI_SNAPSHOTS_SQL))
        if as_of is None:
            return RefreshResult(facts=(_no_ad_rows(),))
    if scored_from is None or as_of is None:
        daily = query(CAMPAIGN_DAYS_SQL)
        if daily.num_rows == 0:
            return RefreshResult(facts=(_no_ad_rows(),))
        as_of = pc.max(daily.column("date")).as_py()
    else:
        daily = query(_campaign_days_since_sql(scored_from - timedelta(days=BASELINE_REACH)))
    history = kpi_history(daily, as_of, scored_from=scored_from)
    return RefreshResult(
        tables=(
            ModelTable(CAMPAIGN_KPIS_HISTORY, history.kpis, as_of),
            ModelTable(KPI_ANOMALIES_HISTORY, history.anomalies, as_of),
        ),
        facts=(history.fact,),
    )


def _no_ad_rows() -> ModelFact:
    return ModelFact("kpi_anomalies_history", "1", {"campaign_days": 0, "note": "no ad rows in the history"})


#: One row per experiment × variant × user over every exposure file (``experiment_exposures_sources``
#: keeps each file's rows; the ``experiment_exposures`` view would hide a user's variant in an older
#: file, and a user seen in two variants must be excluded, not resolved by recency).
EXPOSURES_BY_USER_SQL = """
SELECT experiment_id, variant, user_id,
       bool_or(converted) AS converted,
       max(revenue) AS revenue
FROM experiment_exposures_sources
GROUP BY experiment_id, variant, user_id
"""

#: The newest ingest date: the day the results are as of (exposure logs carry no date of their own).
EXPOSURES_AS_OF_SQL = "SELECT max(ingest_date) AS as_of FROM experiment_exposures_sources"


def refresh_experiments(query: Callable[[str], pa.Table], context: RefreshContext | None = None) -> RefreshResult:
    """``experiments`` → ``experiment_results_history`` (and the users left out for being seen in two
    variants, ``experiment_crossed_users``) over every exposure file, as of the newest file's day.

    The always-valid p-value and interval carry over from the latest earlier snapshot of
    ``experiment_results_history`` (running minimum and intersection), read back through ``query``.
    """
    from analytics.experiment_history import EXPERIMENT_CROSSED_USERS, EXPERIMENT_RESULTS_HISTORY, experiment_history

    context = context or RefreshContext()
    as_of = query(EXPOSURES_AS_OF_SQL).column("as_of")[0].as_py()
    if as_of is None:
        fact = ModelFact("experiment_history", "1", {"experiments": 0, "note": "no exposures in the history"})
        return RefreshResult(facts=(fact,))
    exposures = query(EXPOSURES_BY_USER_SQL)
    if pc.all(pc.is_null(exposures.column("revenue"))).as_py():
        exposures = exposures.drop_columns(["revenue"])  # no file had revenue: no revenue tests
    previous = None
    if EXPERIMENT_RESULTS_HISTORY.name in context.tables:
        previous = query(
            f"SELECT * FROM {EXPERIMENT_RESULTS_HISTORY.name} WHERE as_of = "
            f"(SELECT max(as_of) FROM {EXPERIMENT_RESULTS_HISTORY.name} WHERE as_of < DATE '{as_of.isoformat()}')"
        )
    history = experiment_history(exposures, as_of, settings=context.settings, previous=previous)
    crossed = history.crossed_users.append_column(
        "as_of", pa.repeat(pa.scalar(as_of, pa.date32()), history.crossed_users.num_rows)
    )
    return RefreshResult(
        tables=(
            ModelTable(EXPERIMENT_RESULTS_HISTORY, history.results, as_of),
            ModelTable(EXPERIMENT_CROSSED_USERS, crossed, as_of),
        ),
        facts=(history.fact,),
    )
