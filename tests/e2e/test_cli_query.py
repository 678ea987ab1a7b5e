"""``lake query`` and ``lake tables`` through the real console script: files dropped into the
stand-in, processed by the runner, then queried with Athena SQL and compared with figures computed
from the input files themselves."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyiceberg.expressions import EqualTo

from lake.standin.runner import Runner
from lake.standin.server import Endpoints, StandIn, free_port, provision
from query.catalog import glue_catalog
from query.views import is_view
from tests.conftest import Lake
from tests.e2e.cli import lake as run_lake

pytestmark = pytest.mark.e2e

FIRST_DAY = dt.date(2026, 3, 20)  # 20 days over two months: two partitions of month(date)
DAYS = 20
CHANNELS = ("meta", "google")
CAMPAIGNS = ("spring", "brand")


def ad_rows() -> list[dict[str, str]]:
    """Clean ad-platform rows: one per day × channel × campaign, every figure different."""
    rows = []
    for day in range(DAYS):
        for c, channel in enumerate(CHANNELS):
            for k, campaign in enumerate(CAMPAIGNS):
                n = day * 4 + c * 2 + k
                impressions = 1000 + 37 * n
                clicks = 20 + (n * 7) % 90
                rows.append(
                    {
                        "date": (FIRST_DAY + dt.timedelta(days=day)).isoformat(),
                        "channel": channel,
                        "campaign": campaign,
                        "impressions": str(impressions),
                        "clicks": str(clicks),
                        "spend": f"{10 + (n * 13) % 70 + 0.25 * (n % 4):.2f}",
                        "conversions": str(clicks // 10),
                        "revenue": f"{(clicks // 10) * 19.5:.2f}",
                    }
                )
    return rows


#: Rows the contract rejects: clicks above impressions (2) and a negative spend (1).
BAD_AD_ROWS = [
    {"date": "2026-04-01", "channel": "meta", "campaign": "x", "impressions": "5", "clicks": "9",
     "spend": "1.00", "conversions": "0", "revenue": "0"},
    {"date": "2026-04-02", "channel": "meta", "campaign": "x", "impressions": "5", "clicks": "8",
     "spend": "1.00", "conversions": "0", "revenue": "0"},
    {"date": "2026-04-03", "channel": "meta", "campaign": "x", "impressions": "50", "clicks": "8",
     "spend": "-1.00", "conversions": "0", "revenue": "0"},
]  # fmt: skip


def to_csv(rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def campaign_csv(rows: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Campaign", "Day", "Clicks", "Cost (EUR)"])
    for i in range(rows):
        writer.writerow([f"spring-{i % 7}", f"2026-03-{1 + i % 28:02d}", i % 50, f"{i * 0.37:.2f}"])
    return out.getvalue().encode()


AD_CSV = to_csv(ad_rows() + BAD_AD_ROWS)
CAMPAIGNS_CSV = campaign_csv(300)


def test_tables_on_an_empty_lake_says_how_to_fill_it(stand_in: Endpoints) -> None:
    result = run_lake("tables", endpoint_url=stand_in.endpoint_url)
    assert result.returncode == 0, result.stderr
    assert "no tables yet" in result.stdout
    assert "lake put" in result.stdout


@pytest.fixture(scope="module")
def filled(moto_server: StandIn, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lake]:
    """A stand-in holding one ad-platform export and one generic file, processed by the runner."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_server.endpoint_url}/moto-api/reset", method="POST"))
    lake = Lake(provision(moto_server.endpoint_url, moto_server.topology))
    log = tmp_path_factory.mktemp("query") / "worker.log"
    with Runner(lake.endpoints, log_path=str(log)):
        lake.put("raw/ad_performance/march.csv", AD_CSV)
        lake.put("raw/campaigns/march.csv", CAMPAIGNS_CSV)
        events = lake.events(2, timeout=90)
    assert sorted(e["detail"]["status"] for e in events) == ["succeeded", "succeeded"], events
    yield lake


def query(lake: Lake, sql: str, fmt: str = "json") -> list[dict[str, object]]:
    result = run_lake("query", sql, "--format", fmt, endpoint_url=lake.endpoints.endpoint_url)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_query_results_equal_figures_computed_from_the_input_file(filled: Lake) -> None:
    expected: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for row in csv.DictReader(io.StringIO(ad_rows_csv())):
        for column in ("impressions", "clicks", "spend", "revenue"):
            expected[row["channel"]][column] += float(row[column])
        expected[row["channel"]]["rows"] += 1
    rows = query(
        filled,
        "SELECT channel, count(*) AS rows, sum(impressions) AS impressions, sum(clicks) AS clicks, "
        "sum(spend) AS spend, sum(revenue) AS revenue, sum(clicks) / count(*) AS clicks_per_row "
        "FROM lake_curated.ad_performance GROUP BY channel "
        "ORDER BY channel",
    )
    assert [r["channel"] for r in rows] == sorted(CHANNELS)
    for row in rows:
        figures = expected[str(row["channel"])]
        assert row["rows"] == figures["rows"]
        assert row["impressions"] == figures["impressions"]
        assert row["clicks"] == figures["clicks"]
        assert row["spend"] == pytest.approx(figures["spend"])
        assert row["revenue"] == pytest.approx(figures["revenue"])
        assert row["clicks_per_row"] == figures["clicks"] // figures["rows"]  # Athena: bigint / bigint is a bigint


def ad_rows_csv() -> str:
    return to_csv(ad_rows()).decode()


def test_csv_output_of_an_unqualified_table_matches_the_input(filled: Lake) -> None:
    # GIVEN independent aggregates of the generic file
    clicks: Counter[str] = Counter()
    for row in csv.DictReader(io.StringIO(CAMPAIGNS_CSV.decode())):
        clicks[row["Campaign"]] += int(row["Clicks"])
    # WHEN the table is named without its database (lake_curated, as in the workgroup)
    result = run_lake(
        "query",
        "SELECT campaign, sum(clicks), count(*) AS n FROM campaigns GROUP BY campaign ORDER BY campaign",
        "--format",
        "csv",
        endpoint_url=filled.endpoints.endpoint_url,
    )
    assert result.returncode == 0, result.stderr
    # THEN a header named as Athena names it, and one line per campaign with the input's figures
    lines = list(csv.reader(io.StringIO(result.stdout)))
    assert lines[0] == ["campaign", "_col1", "n"]
    assert {name: int(total) for name, total, _ in lines[1:]} == dict(clicks)
    assert sum(int(n) for _, _, n in lines[1:]) == 300
    assert result.stderr == ""


def test_table_output_is_aligned_with_the_row_count_on_stderr(filled: Lake) -> None:
    result = run_lake(
        "query",
        "SELECT campaign, count(*) AS days FROM ad_performance GROUP BY campaign ORDER BY campaign",
        endpoint_url=filled.endpoints.endpoint_url,
    )
    assert result.returncode == 0, result.stderr
    header, rule, *rows = result.stdout.splitlines()
    assert header.split() == ["campaign", "days"]
    assert set(rule.replace(" ", "")) == {"-"}
    assert [r.split() for r in rows] == [["brand", str(DAYS * 2)], ["spring", str(DAYS * 2)]]
    assert len({len(line) for line in (header, rule)}) == 1
    assert result.stderr.strip() == "(2 rows)"


def test_a_partition_filter_reads_only_that_partition(filled: Lake) -> None:
    # GIVEN a damaged data file of another month (March's, the first day's) under ad_performance
    day = FIRST_DAY + dt.timedelta(days=15)
    assert day.month != FIRST_DAY.month
    table = iceberg_table(filled, "ad_performance")
    [first_day_file, *_] = [
        t.file.file_path for t in table.scan(row_filter=EqualTo("date", FIRST_DAY.isoformat())).plan_files()
    ]
    damaged = first_day_file.removeprefix(f"s3://{filled.bucket}/")
    original = filled.s3.get_object(Bucket=filled.bucket, Key=damaged)["Body"].read()
    filled.put(damaged, b"not parquet")
    try:
        # WHEN a query filters on one day, THEN it answers from that day's month's files only
        rows = query(
            filled,
            f"SELECT date, count(*) AS n, sum(clicks) AS clicks FROM ad_performance WHERE date = DATE '{day}' "
            "GROUP BY date",
        )
        expected = [r for r in ad_rows() if r["date"] == day.isoformat()]
        assert rows == [
            {"date": day.isoformat(), "n": len(expected), "clicks": sum(int(r["clicks"]) for r in expected)}
        ]
        # AND a query over every partition opens the damaged file and says which table and what to do
        result = run_lake("query", "SELECT count(*) FROM ad_performance", endpoint_url=filled.endpoints.endpoint_url)
        assert result.returncode != 0
        assert_one_line_error(result.stderr, str(table.name()[-1]), damaged.rsplit("/", 1)[-1])
    finally:
        filled.put(damaged, original)


def iceberg_table(lake: Lake, name: str) -> Any:
    """The Iceberg table that holds dataset ``name``'s rows: ``<name>_sources`` under a view, else ``<name>``."""
    catalog = glue_catalog(lake.glue, lake.endpoints.region, lake.endpoints.endpoint_url)
    entry = lake.glue.get_table(DatabaseName="lake_curated", Name=name)["Table"]
    return catalog.load_table(("lake_curated", f"{name}_sources" if is_view(entry) else name))


def test_quarantined_rows_are_queryable_with_their_reasons(filled: Lake) -> None:
    rows = query(
        filled,
        "SELECT _reason_code, count(*) AS n FROM lake_quarantine.ad_performance GROUP BY 1 ORDER BY 1",
    )
    assert rows == [{"_reason_code": "clicks_exceed_impressions", "n": 2}, {"_reason_code": "negative_value", "n": 1}]


def test_tables_lists_rows_snapshots_and_locations(filled: Lake) -> None:
    result = run_lake("tables", "--format", "json", endpoint_url=filled.endpoints.endpoint_url)
    assert result.returncode == 0, result.stderr
    listed = {(r["database"], r["table"]): r for r in map(json.loads, result.stdout.splitlines())}
    table = iceberg_table(filled, "ad_performance")
    name = table.name()[-1]
    ads = listed["lake_curated", name]
    assert (ads["kind"], ads["rows"], ads["snapshots"]) == ("iceberg", len(ad_rows()), len(table.snapshots()))
    assert "date" in ads["partition_spec"]
    assert ads["location"].rstrip("/") == f"s3://{filled.bucket}/curated/{name}"
    assert dt.datetime.fromisoformat(ads["last_commit"]).date() >= dt.date.today() - dt.timedelta(days=1)
    assert listed["lake_curated", "campaigns"]["rows"] == 300
    assert listed["lake_quarantine", "ad_performance"]["rows"] == len(BAD_AD_ROWS)
    # The text table shows the same, one line per table.
    text = run_lake("tables", endpoint_url=filled.endpoints.endpoint_url).stdout
    [line] = [line for line in text.splitlines() if line.startswith("lake_curated") and f" {name} " in line]
    assert line.split()[2] == "iceberg"
    assert str(len(ad_rows())) in line.split()


def test_json_output_serialises_dates_and_nulls(filled: Lake) -> None:
    [row] = query(
        filled,
        "SELECT max(date) AS last_day, CAST(NULL AS double) AS nothing, "
        "CAST('2026-03-05 10:30:00' AS timestamp) AS ts FROM ad_performance",
    )
    assert row == {"last_day": (FIRST_DAY + dt.timedelta(days=DAYS - 1)).isoformat(), "nothing": None,
                   "ts": "2026-03-05T10:30:00"}  # fmt: skip


def assert_one_line_error(stderr: str, *mentions: str) -> None:
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("lake: ")
    for text in mentions:
        assert text in lines[0], lines[0]


@pytest.mark.parametrize(
    ("sql", "mentions"),
    [
        ("SELECT * FROM lake_curated.nothing_here", ("lake_curated.nothing_here does not exist", "lake tables")),
        ("SELECT * FROM no_such_db.ads", ("no_such_db.ads does not exist",)),
        ("SELECT campaign, FROM ad_performance WHERE", ("SQL syntax error", "line 1")),
        ("SELECT no_such_column FROM ad_performance", ("no_such_column", "lake describe")),
        ("DROP TABLE ad_performance", ("not DROP",)),
    ],
)
def test_query_mistakes_are_one_line_with_what_to_do(filled: Lake, sql: str, mentions: tuple[str, ...]) -> None:
    result = run_lake("query", sql, endpoint_url=filled.endpoints.endpoint_url)
    assert result.returncode != 0
    assert result.stdout == ""
    assert_one_line_error(result.stderr, *mentions)


@pytest.mark.parametrize("command", [["query", "SELECT * FROM ad_performance"], ["tables"]])
def test_no_stand_in_running_is_one_line_with_what_to_do(command: list[str], tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    result = run_lake(*command, endpoint_url=endpoint)
    assert result.returncode != 0
    assert_one_line_error(result.stderr, f"nothing answers at {endpoint}", "lake up")
