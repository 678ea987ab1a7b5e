"""ad_performance over history: a day against its campaign's earlier days, across files, with weekly rhythm."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from analytics.ad_performance import AdPerformancePipeline
from analytics.errors import HistoryInputError
from analytics.kpi_history import (
    BASELINE_TRAILING,
    BASELINE_WEEKDAY,
    CAMPAIGN_KPIS_HISTORY,
    KPI_ANOMALIES_HISTORY,
    kpi_history,
)

from .conftest import CollectingSink, assert_matches_spec, csv_batches, source_for

HEADER = "date,channel,campaign,ad_group,impressions,clicks,spend,conversions,revenue"
START = date(2024, 1, 1)  # a Monday


def day_file(day: date, spend: float) -> str:
    """One day's export: the campaign in two ad groups (halves), KPI ratios steady whatever the spend."""
    rows = []
    for group in ("g1", "g2"):
        half = spend / 2
        impressions = round(half * 100)
        clicks = round(impressions * 0.03)
        rows.append(
            f"{day.isoformat()},Google,brand,{group},{impressions},{clicks},{half:.2f},{clicks // 10},{half * 5:.2f}"
        )
    return "\n".join([HEADER, *rows]) + "\n"


def run_file(text: str) -> CollectingSink:
    sink = CollectingSink()
    AdPerformancePipeline("ad_performance").run(iter(csv_batches(text)), source_for("ad_performance"), sink)
    return sink


def clean_rows(sinks: list[CollectingSink]) -> pa.Table:
    """What the refresh reads: the clean ad_performance rows of every file (no key repeats across them)."""
    return pa.concat_tables([s.table("ad_performance") for s in sinks])


def spends(days: int, seed: int, weekly: bool = False) -> list[float]:
    rng = np.random.default_rng(seed)
    level = [30.0 if weekly and (START + timedelta(d)).weekday() >= 5 else 100.0 for d in range(days)]
    # whole even cents, so the two ad-group halves add back up exactly
    return [round(v * (1 + rng.normal(0, 0.04)) * 50) / 50 for v in level]


def test_a_spike_in_a_one_day_file_is_found_against_the_days_other_files_brought() -> None:
    # GIVEN 39 daily files of steady spend, then a day-40 file with 4× the spend
    values = [*spends(39, seed=3), 420.0]
    sinks = [run_file(day_file(START + timedelta(d), v)) for d, v in enumerate(values)]
    # THEN the day-40 file alone cannot see it: one day is no history
    alone = sinks[-1].table("kpi_anomalies_by_file")
    assert not any(alone.column("is_anomaly").to_pylist())
    # WHEN the history of all 40 files is scored
    history = kpi_history(clean_rows(sinks))
    # THEN the spike is found, on day 40 only, with its reason in words
    assert_matches_spec(history.anomalies, KPI_ANOMALIES_HISTORY)
    assert_matches_spec(history.kpis, CAMPAIGN_KPIS_HISTORY)
    spend = [r for r in history.anomalies.to_pylist() if r["metric"] == "spend"]
    assert [r["date"] for r in spend] == [START + timedelta(39)]
    (row,) = spend
    assert row["baseline"] == BASELINE_TRAILING and row["history_days"] == 28
    expected = float(np.median(values[11:39]))
    assert row["expected"] == pytest.approx(expected)
    assert row["reason"].startswith(f"spend {420 / expected:.1f}× the trailing 28-day median of {expected:.2f}")
    # the steady ratios did not move, so nothing else is flagged on any day
    assert {r["metric"] for r in history.anomalies.to_pylist()} <= {"spend"}
    # AND the KPI history is the per-file KPIs of every file, one row per campaign-day
    per_file = pa.concat_tables([s.table("campaign_kpis_by_file") for s in sinks]).to_pylist()
    got = history.kpis.to_pylist()
    assert len(got) == 40 and history.kpis.column("as_of").unique().to_pylist() == [START + timedelta(39)]
    for mine, theirs in zip(got, per_file, strict=True):
        for column in ("date", "impressions", "clicks", "spend", "conversions", "revenue", "ctr", "cpa", "roas"):
            assert mine[column] == pytest.approx(theirs[column]), column


def test_a_weekly_rhythm_is_not_flagged_but_a_break_of_it_is() -> None:
    # GIVEN 16 weeks of weekday spend near 100 and weekend spend near 30, and one Saturday at weekday level
    values = spends(16 * 7, seed=7, weekly=True)
    broken = next(d for d in range(13 * 7, 14 * 7) if (START + timedelta(d)).weekday() == 5)
    values[broken] = 100.0
    table = clean_rows([run_file(day_file(START + timedelta(d), v)) for d, v in enumerate(values)])
    # WHEN scored over the history
    history = kpi_history(table)
    spend = [r for r in history.anomalies.to_pylist() if r["metric"] == "spend"]
    # THEN from week 9 (8 weeks of history) weekends are compared with weekends: only the break is flagged
    later = [r for r in spend if r["date"] >= START + timedelta(8 * 7)]
    assert [r["date"] for r in later] == [START + timedelta(broken)]
    (row,) = later
    assert row["baseline"] == BASELINE_WEEKDAY and row["history_days"] == 8
    assert "the median of the previous 8 Saturdays of" in row["reason"]
    assert row["value"] / row["expected"] > 3
    # AND with only 7 weeks of history the trailing 28 days are the baseline: they flag ordinary weekends
    # and miss the break, which is why the weekday baseline takes over once 8 weeks are there
    first = START + timedelta(broken - 49)
    short = kpi_history(table.filter(pc.greater_equal(table.column("date"), pa.scalar(first, pa.date32()))))
    short_spend = [r for r in short.anomalies.to_pylist() if r["metric"] == "spend"]
    assert START + timedelta(broken) not in [r["date"] for r in short_spend]
    assert any(r["date"].weekday() == 6 and r["baseline"] == BASELINE_TRAILING for r in short_spend)
    # scored_from keeps the earlier days as baseline but writes only the later ones
    recent = kpi_history(table, scored_from=START + timedelta(8 * 7))
    assert [r["date"] for r in recent.anomalies.to_pylist() if r["metric"] == "spend"] == [START + timedelta(broken)]
    assert min(recent.kpis.column("date").to_pylist()) == START + timedelta(8 * 7)


def test_a_campaign_with_too_few_days_gets_a_note_and_the_others_are_scored() -> None:
    values = [*spends(20, seed=1), 400.0]
    long = clean_rows([run_file(day_file(START + timedelta(d), v)) for d, v in enumerate(values)])
    short = pa.table(
        {
            "date": [START + timedelta(d) for d in range(3)],
            "channel": ["meta"] * 3,
            "campaign": ["launch"] * 3,
            "impressions": [1000, 1000, 50_000],
            "clicks": [10, 10, 900],
            "spend": [5.0, 5.0, 900.0],
            "conversions": [1.0, 0.0, 3.0],
            "revenue": [10.0, 0.0, 30.0],
        }
    )
    history = kpi_history(pa.concat_tables([long.select(short.column_names), short]))
    assert history.notes == (
        "campaign meta / launch has 3 day(s) of data and none can be scored yet; a day is scored once 7 earlier "
        "days fall in its trailing 28 days",
    )
    assert history.fact.metrics["campaigns_too_short"] == 1
    assert {r["campaign"] for r in history.anomalies.to_pylist()} == {"brand"}
    assert history.kpis.num_rows == 24


def test_bad_and_empty_input() -> None:
    with pytest.raises(HistoryInputError, match=r"lack the column\(s\) clicks, spend, conversions, revenue; select"):
        kpi_history(pa.table({"date": [START], "channel": ["x"], "campaign": ["y"], "impressions": [1]}))
    empty = pa.table(
        {
            "date": pa.array([], pa.date32()),
            "channel": pa.array([], pa.string()),
            "campaign": pa.array([], pa.string()),
            **{c: pa.array([], pa.float64()) for c in ("impressions", "clicks", "spend", "conversions", "revenue")},
        }
    )
    history = kpi_history(empty, START)
    assert history.kpis.num_rows == 0 and history.anomalies.num_rows == 0
    assert history.fact.metrics["anomalies_found"] == 0


def test_days_after_as_of_are_left_out() -> None:
    values = [*spends(30, seed=2), 500.0]
    table = clean_rows([run_file(day_file(START + timedelta(d), v)) for d, v in enumerate(values)])
    before = kpi_history(table, START + timedelta(29))
    assert before.anomalies.num_rows == 0 and before.kpis.num_rows == 30
    assert kpi_history(table).anomalies.num_rows >= 1


@pytest.mark.parametrize("from_day", [0, 5, 30, 56, 80, 119, 200])
def test_scoring_from_a_day_gives_exactly_the_full_scoring_of_those_days(from_day: int) -> None:
    # GIVEN 120 days of two campaigns (one starting late, one with gaps) with spikes here and there
    rng = np.random.default_rng(7)
    rows = []
    for campaign, first, gap in (("brand", 0, None), ("late", 40, 70)):
        for d in range(first, 120):
            if gap is not None and gap <= d < gap + 5:
                continue
            spend = 100.0 * (1 + rng.normal(0, 0.05)) * (4 if d % 37 == 36 else 1)
            impressions = int(spend * 100)
            rows.append(
                {"date": START + timedelta(d), "channel": "Google", "campaign": campaign, "impressions": impressions,
                 "clicks": impressions // 30, "spend": spend, "conversions": float(d % 5), "revenue": spend * 3}
            )  # fmt: skip
    table = pa.Table.from_pylist(rows)
    since = START + timedelta(from_day)
    # WHEN scored whole and from a day
    whole = kpi_history(table)
    part = kpi_history(table, scored_from=since)

    # THEN the part is the whole's rows from that day, figure for figure (earlier days are its baseline)
    def later(t: pa.Table) -> list[dict[str, object]]:
        return [r for r in t.to_pylist() if r["date"] >= since]

    assert part.kpis.to_pylist() == later(whole.kpis)
    assert part.anomalies.to_pylist() == later(whole.anomalies)
    assert whole.anomalies.num_rows > 0


def _sums(days: dict[int, float]) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {"date": START + timedelta(d), "channel": "google", "campaign": "brand", "impressions": 1000,
             "clicks": 30, "spend": spend, "conversions": 3.0, "revenue": spend * 5}
            for d, spend in sorted(days.items())
        ]
    )  # fmt: skip


def _snapshots(*pairs: tuple[int, int]) -> pa.Table:
    return pa.Table.from_pylist(
        [{"as_of": START + timedelta(a), "first_day": START + timedelta(f)} for a, f in pairs],
        schema=pa.schema([("as_of", pa.date32()), ("first_day", pa.date32())]),
    )


def test_the_scoring_start_is_the_earliest_changed_day() -> None:
    from analytics.kpi_history import scoring_start

    shown = _sums(dict.fromkeys(range(40), 100.0))  # what campaign_kpis shows: days 0-39, snapshot as of 39
    day = lambda d: START + timedelta(d)  # noqa: E731
    # a new day: scored alone
    assert scoring_start(_sums(dict.fromkeys(range(41), 100.0)), day(40), shown, _snapshots((39, 0))) == day(40)
    # a re-export changing day 12 (the newest day unchanged, its snapshot a daily one): from day 12
    changed = {**dict.fromkeys(range(40), 100.0), 12: 400.0}
    assert scoring_start(_sums(changed), day(39), shown, _snapshots((38, 0), (39, 39))) == day(12)
    # replacing a snapshot of the same as_of that started earlier: no later than it started
    assert scoring_start(_sums(changed), day(39), shown, _snapshots((30, 0), (39, 5))) == day(5)
    # a day gone entirely (its file deleted): from the day with rows before it
    gone = {d: 100.0 for d in range(40) if d != 20}
    assert scoring_start(_sums(gone), day(39), shown, _snapshots((38, 0), (39, 39))) == day(19)
    # nothing changed: the newest day again
    assert scoring_start(shown, day(39), shown, _snapshots((38, 0), (39, 39))) == day(39)
    # the newest day went back (a newer snapshot exists): every day
    assert scoring_start(_sums(dict.fromkeys(range(39), 100.0)), day(38), shown, _snapshots((39, 0))) is None


def _duckdb(tables: dict[str, pa.Table], returned: list[int]) -> Callable[[str], pa.Table]:
    """The refresher's Athena SQL run by DuckDB over ``tables``; ``returned`` gets each result's row count."""
    import duckdb
    import sqlglot

    def query(sql: str) -> pa.Table:
        connection = duckdb.connect()
        for name, table in tables.items():
            connection.register(name, table)
        result = connection.sql(sqlglot.transpile(sql, read="athena", write="duckdb")[0]).to_arrow_table()
        returned.append(result.num_rows)
        return result

    return query


def _ad_rows(days: int, seed: int = 3) -> list[dict[str, object]]:
    """Three campaigns in two ad groups, quiet weekends, spikes on days 45, 90, 130 and 160: one steady,
    one starting on day 30, one pausing on days 104-110 (a refresh from day 160 reads from day 104, where
    this campaign's first row is not its first day: its weekday baseline still applies)."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, object]] = []
    for d in range(days):
        for channel, campaign, first, pause in (("google", "brand", 0, None), ("meta", "late", 30, None),
                                                 ("meta", "pausing", 0, (104, 111))):  # fmt: skip
            if d < first or (pause is not None and pause[0] <= d < pause[1]):
                continue
            spend = 100.0 * (0.6 if (START + timedelta(d)).weekday() >= 5 else 1.0) * (1 + rng.normal(0, 0.05))
            spend *= 4.0 if d in (45, 90, 130, 160) else 1.0
            for group in ("g1", "g2"):
                impressions = int(spend * rng.uniform(40, 60))
                rows.append(
                    {"date": START + timedelta(d), "channel": channel, "campaign": campaign, "ad_group": group,
                     "impressions": impressions, "clicks": impressions // 30, "spend": round(spend / 2, 2),
                     "conversions": float(rng.integers(0, 5)), "revenue": round(spend * rng.uniform(2, 4), 2)}
                )  # fmt: skip
    return rows


@pytest.mark.parametrize("changed_day", [None, 150, 124, 60])
def test_a_refresh_that_scores_from_a_day_reads_only_its_baselines_and_equals_a_full_refresh(
    changed_day: int | None,
) -> None:
    from analytics.base import RefreshContext, covering_rows_sql
    from analytics.history_refreshers import CAMPAIGN_DAYS_SQL, KPI_SNAPSHOTS_SQL, refresh_kpi_history
    from analytics.kpi_history import BASELINE_REACH, scoring_start

    # GIVEN a refresh as of day 159 stored (a full one), then day 160 landing, and maybe a re-export of an
    # earlier day (day 124: four days into the pausing campaign's return, 60: long before the window)
    rows = _ad_rows(161)
    before = pa.Table.from_pylist([r for r in rows if r["date"] < START + timedelta(160)])
    [stored, _] = refresh_kpi_history(_duckdb({"ad_performance": before}, []), RefreshContext()).tables
    if changed_day is not None:
        for r in rows:
            if r["date"] == START + timedelta(changed_day) and r["campaign"] != "brand":
                r["spend"] = round(float(r["spend"]) * 3, 2)  # type: ignore[arg-type]
    ads = pa.Table.from_pylist(rows)
    tables = {"ad_performance": ads, "campaign_kpis_history": stored.rows}

    # WHEN the refresh runs with the stored snapshot, and a full one runs over the same rows
    returned: list[int] = []
    daily = refresh_kpi_history(_duckdb(tables, returned), RefreshContext(tables=frozenset({"campaign_kpis_history"})))
    full = refresh_kpi_history(_duckdb({"ad_performance": ads}, []), RefreshContext())

    # THEN it scored from the changed day (the new day when none), as scoring_start says comparing every sum
    since = START + timedelta(160 if changed_day is None else changed_day)
    [fact] = daily.facts
    assert fact.metrics["scored_from"] == since.isoformat()
    reference = _duckdb(tables, [])
    previous = reference(covering_rows_sql("campaign_kpis_history", "campaign_kpis_history",
                                           ["channel", "campaign", "date", *SUMS]))  # fmt: skip
    everything = reference(CAMPAIGN_DAYS_SQL)
    as_of = START + timedelta(160)
    assert scoring_start(everything, as_of, previous, reference(KPI_SNAPSHOTS_SQL)) == since
    # AND its rows are the full refresh's from that day, figure for figure
    for part, whole in zip(daily.tables, full.tables, strict=True):
        assert part.as_of == whole.as_of == as_of
        assert part.rows.to_pylist() == [r for r in whole.rows.to_pylist() if r["date"] >= since]
    assert full.tables[1].rows.num_rows > 0
    # AND what came back into Python is a row per day (the comparison) or per campaign-day of the days
    # scored and the BASELINE_REACH days before them, not every campaign-day of the history
    window = (START + timedelta(160) - since).days + 1 + BASELINE_REACH
    assert max(returned) <= max(161, 3 * window) < everything.num_rows or changed_day == 60


SUMS = ("impressions", "clicks", "spend", "conversions", "revenue")
