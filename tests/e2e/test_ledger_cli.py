"""The processing ledger end to end: files dropped into the stand-in, processed by the runner's
worker processes (playing Lambda, with its context), then ``lake query`` and ``lake tables``
through the real console script."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lake.standin.runner import Runner
from tests.conftest import Lake, wait_until
from tests.e2e.cli import lake as run_lake
from tests.functional.conftest import read_rows

pytestmark = pytest.mark.e2e

CAMPAIGNS = b"Campaign,Day,Clicks\nspring,2026-03-01,4\nbrand,2026-03-02,7\n"


def test_lake_query_counts_the_runners_outcomes_by_status(lake: Lake, tmp_path: Path) -> None:
    # GIVEN the runner at work, two good files and one the lake does not read
    with Runner(lake.endpoints, log_path=str(tmp_path / "worker.log")):
        lake.put("raw/campaigns/march.csv", CAMPAIGNS)
        lake.put("raw/campaigns/april.csv", CAMPAIGNS)
        lake.put("raw/campaigns/notes.docx", b"minutes of the meeting")
        events = lake.events(3, timeout=90)
        assert len(events) == 3
        # WHEN their invocations have ended (each appends its rows once, after its files)
        assert wait_until(lambda: read_rows(lake, "lake_ops", "processing_log").num_rows == 3, timeout=60)
    # THEN `lake query` counts them by status, as Athena would
    result = run_lake(
        "query",
        "SELECT status, count(*) AS files FROM lake_ops.processing_log GROUP BY 1 ORDER BY 1",
        "--format",
        "json",
        endpoint_url=lake.endpoints.endpoint_url,
    )
    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {"status": "failed", "files": 1},
        {"status": "processed", "files": 2},
    ]
    # AND each row carries the runner's Lambda context: the function's memory and a request id
    result = run_lake(
        "query",
        "SELECT count(*) AS n FROM lake_ops.processing_log WHERE memory_mb > 0 AND request_id IS NOT NULL",
        "--format",
        "json",
        endpoint_url=lake.endpoints.endpoint_url,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"n": 3}
    # AND `lake tables` lists the ledger with the lake's other tables
    tables = run_lake("tables", "--format", "json", endpoint_url=lake.endpoints.endpoint_url)
    assert tables.returncode == 0, tables.stderr
    listed = {(t["database"], t["table"]): t for t in map(json.loads, tables.stdout.splitlines())}
    assert listed[("lake_ops", "processing_log")]["rows"] == 3
    assert listed[("lake_ops", "processing_log")]["partition_spec"] == "log_date"
