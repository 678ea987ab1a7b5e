"""``lake report``: fetching a stored report, and the mistakes a user makes, through the real command.

The reports here are objects put where a refresh puts them; tests/functional/test_reports_refresh.py
shows a refresh writing them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lake.standin.runner import Runner
from tests.conftest import Lake
from tests.e2e.cli import lake as run_lake
from tests.e2e.test_cli_query import assert_one_line_error, campaign_csv

PAGE = "<!doctype html><title>orders</title><p>as of 2026-05-31: 1,204 customers</p>"


def store(lake: Lake, name: str, html: str, as_of: str) -> None:
    lake.s3.put_object(
        Bucket=lake.bucket,
        Key=f"reports/orders/{name}.html",
        Body=html.encode(),
        ContentType="text/html; charset=utf-8",
        Metadata={"as-of": as_of},
    )


@pytest.fixture
def stored(lake: Lake) -> Lake:
    store(lake, "2026-04-30", "<p>april</p>", "2026-04-30")
    store(lake, "2026-05-31", PAGE, "2026-05-31")
    store(lake, "latest", PAGE, "2026-05-31")
    return lake


def test_the_latest_report_is_written_under_its_as_of(stored: Lake, tmp_path: Path) -> None:
    result = run_lake("report", "orders", "--out", str(tmp_path), endpoint_url=stored.endpoints.endpoint_url)
    assert result.returncode == 0, result.stderr
    written = tmp_path / "orders-2026-05-31.html"
    assert written.read_text() == PAGE
    assert f"wrote {written}" in result.stdout and "as of 2026-05-31" in result.stdout


def test_an_earlier_as_of_is_fetched_by_date(stored: Lake, tmp_path: Path) -> None:
    out = tmp_path / "april.html"
    result = run_lake(
        "report", "orders", "--as-of", "2026-04-30", "--out", str(out), endpoint_url=stored.endpoints.endpoint_url
    )
    assert result.returncode == 0, result.stderr
    assert out.read_text() == "<p>april</p>"


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["orders", "--as-of", "2026-03-31"], ("no report of orders as of 2026-03-31", "2026-04-30, 2026-05-31")),
        (["orders", "--as-of", "31/05/2026"], ("not a date", "YYYY-MM-DD")),
    ],
)
def test_a_missing_or_malformed_as_of_says_which_exist(
    stored: Lake, tmp_path: Path, args: list[str], mentions: tuple[str, ...]
) -> None:
    result = run_lake("report", *args, "--out", str(tmp_path), endpoint_url=stored.endpoints.endpoint_url)
    assert result.returncode != 0
    for mention in mentions:
        assert mention in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("dataset", "mentions"),
    [
        ("orders", ("no report of orders yet", "raw/orders/", "lake events")),
        ("web_sessions", ("no table of web_sessions", "raw/web_sessions/", "lake tables")),
    ],
)
def test_no_report_yet_says_how_one_is_made(
    lake: Lake, tmp_path: Path, dataset: str, mentions: tuple[str, ...]
) -> None:
    result = run_lake("report", dataset, "--out", str(tmp_path), endpoint_url=lake.endpoints.endpoint_url)
    assert result.returncode != 0
    assert_one_line_error(result.stderr, *mentions)
    assert list(tmp_path.iterdir()) == []


def test_a_dataset_without_models_is_drawn_on_demand_from_its_tables(lake: Lake, tmp_path: Path) -> None:
    # GIVEN a generic dataset (no refresh draws its report) processed by the runner
    with Runner(lake.endpoints, log_path=str(tmp_path / "worker.log")):
        lake.put("raw/campaigns/march.csv", campaign_csv(300))
        [event] = lake.events(1, timeout=90)
    assert event["detail"]["status"] == "succeeded", event["detail"].get("error")
    # WHEN the user asks for its report
    out = tmp_path / "campaigns.html"
    result = run_lake("report", "campaigns", "--out", str(out), endpoint_url=lake.endpoints.endpoint_url)
    # THEN it is drawn now from its table and its profile: every column of the file is profiled
    assert result.returncode == 0, result.stderr
    assert "drawn now from campaigns, dataset_profiles" in result.stdout
    page = out.read_text()
    assert "Profile of the data" in page and "<script" not in page.lower()
    for column in ("campaign", "day", "clicks", "cost_eur"):
        assert f">{column}<" in page, column
