"""The refresh stage end to end: files dropped into the stand-in, the runner playing both event
source mappings (the per-file function and the refresh function, each in its own workers)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import topology
from lake.standin.runner import REFRESH_FUNCTION, BatchOutcome, Runner
from lake.standin.server import provision
from tests.conftest import Lake, wait_until
from tests.functional.conftest import iceberg_table, read_rows

pytestmark = pytest.mark.e2e

FILES = 30


@pytest.fixture
def running(lake: Lake, tmp_path: Path) -> Iterator[tuple[Runner, list[BatchOutcome]]]:
    # A cold function imports pandas, pyiceberg, DuckDB and scikit-learn on its first record: on a
    # loaded 2-core machine that alone can pass the fast topology's timeouts, so this test's queues
    # give the functions as long as the deployed ones would (visibility above the timeout).
    topo = lake.endpoints.topology
    slow = replace(
        topo,
        queue=replace(topo.queue, function_timeout_seconds=120, visibility_timeout_seconds=150),
        refresh=replace(
            topo.refresh,
            queue=replace(topo.refresh.queue, function_timeout_seconds=120, visibility_timeout_seconds=150),
        ),
    )
    endpoints = provision(lake.endpoints.endpoint_url, slow)
    outcomes: list[BatchOutcome] = []
    with Runner(endpoints, log_path=str(tmp_path / "worker.log"), listener=outcomes.append) as runner:
        yield runner, outcomes


def test_thirty_files_landing_together_cause_few_refreshes_and_the_last_includes_all(
    lake: Lake, running: tuple[Runner, list[BatchOutcome]]
) -> None:
    runner, outcomes = running
    # GIVEN 30 orders files dropped at once, each with two customers of its own
    for number in range(FILES):
        body = "order_id,customer_id,order_date,amount\n" + "".join(
            f"f{number:02d}-{i},k{number:02d}-{i},2026-04-{1 + number % 28:02d},{10 + i}.00\n" for i in range(2)
        )
        lake.put(f"raw/orders/burst/{number:02d}.csv", body.encode())
    # WHEN the runner processes them and the refresh queue drains
    events: list[dict[str, Any]] = []
    assert wait_until(
        lambda: (
            events.extend(lake.events(100, timeout=1))
            or (
                sum(e["detail-type"] == topology.DETAIL_TYPE_PROCESSED for e in events) == FILES
                and lake.queue_depth(lake.endpoints.refresh_queue_url) == 0
                and any(e["detail-type"] == topology.DETAIL_TYPE_MODELS_UPDATED for e in events)
            )
        ),
        timeout=240,
    ), f"{len(events)} events; refresh queue depth {lake.queue_depth(lake.endpoints.refresh_queue_url)}"
    events += lake.quiet_events(3)
    refreshes = [e for e in events if e["detail-type"] == topology.DETAIL_TYPE_MODELS_UPDATED]
    # THEN fewer refreshes ran than files landed (here files land while refreshes run, so each
    # refresh covers the commits made while the one before it ran; tests/functional shows a
    # burst that landed first collapsing into one), and none failed
    assert 1 <= len(refreshes) <= FILES // 2, [r["detail"]["inputs"] for r in refreshes]
    assert not [e for e in events if e["detail-type"] == topology.DETAIL_TYPE_MODELS_FAILED]
    assert not [o for o in outcomes if o.function == REFRESH_FUNCTION and (o.error or o.failed)]
    assert runner.refresh_invocations < FILES
    # AND the last refresh read the last commit, and its tables hold every file's customers
    current = iceberg_table(lake, "lake_curated", "orders_sources").current_snapshot().snapshot_id
    last = max(refreshes, key=lambda e: e["detail"]["refreshed_at"])
    assert last["detail"]["inputs"][0]["snapshot_id"] == current
    customers = {r["customer_id"] for r in read_rows(lake, "lake_curated", "customer_rfm").to_pylist()}
    assert customers == {f"k{n:02d}-{i}" for n in range(FILES) for i in range(2)}
    # AND the requests said which commit asked (the last refresh covers them all)
    assert json.loads(json.dumps(last["detail"]["requested_by"]))[0]["key"].startswith("raw/orders/burst/")
