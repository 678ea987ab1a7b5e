"""``lake maintain`` on an Iceberg table of many small commits: fewer files, fewer snapshots, same rows."""

from __future__ import annotations

import datetime as dt

import pytest

from handlers.adapters.table_properties import table_properties
from lake.cli.main import main
from lake.engine import run_query
from lake.target import CliError, resolve
from query.catalog import glue_catalog
from tests.conftest import Lake
from tests.e2e.cli import lake as run_lake
from tests.functional.iceberg_tables import ORDERS_SCHEMA, ORDERS_SPEC, order, source_rows

COMMITS = 8
SQL = "SELECT order_id, order_date, amount, source_key FROM orders_sources ORDER BY order_id"


@pytest.fixture
def small_commits(lake: Lake) -> Lake:
    """``lake_curated.orders_sources`` after COMMITS appends of two rows each, all in March."""
    catalog = glue_catalog(lake.glue, lake.endpoints.region, lake.endpoints.endpoint_url)
    table = catalog.create_table(
        "lake_curated.orders_sources",
        schema=ORDERS_SCHEMA,
        location=f"s3://{lake.bucket}/curated/orders_sources/",
        partition_spec=ORDERS_SPEC,
        properties=table_properties(),
    )
    for n in range(COMMITS):
        rows = [order(2 * n + i, dt.date(2026, 3, 1 + n), "web", float(n * 10 + i)) for i in (1, 2)]
        table.append(source_rows(f"raw/orders/{n}.csv", "v1", dt.datetime(2026, 3, 9, tzinfo=dt.UTC), rows))
    return lake


def counts(lake: Lake) -> tuple[int, int]:
    """(data files of the current snapshot, snapshots) as pyiceberg sees them afresh."""
    table = glue_catalog(lake.glue, lake.endpoints.region, lake.endpoints.endpoint_url).load_table(
        "lake_curated.orders_sources"
    )
    return len(list(table.scan().plan_files())), len(table.snapshots())


def parquet_objects(lake: Lake) -> int:
    return sum(key.endswith(".parquet") for key in lake.keys("curated/orders_sources/data/"))


def test_maintain_compacts_and_expires_and_a_query_returns_the_same_rows(
    small_commits: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = small_commits
    target = resolve(endpoint_url=lake.endpoints.endpoint_url)
    before = run_query(target, SQL).to_pylist()
    assert len(before) == 2 * COMMITS
    assert counts(lake) == (COMMITS, COMMITS)
    data_objects = parquet_objects(lake)
    endpoint = ["--endpoint-url", lake.endpoints.endpoint_url]

    # A dry run says what it would do and changes nothing.
    assert main(["maintain", *endpoint, "--dry-run", "--older-than", "0s", "--retain-last", "1"]) == 0
    assert "would compact 1 partition(s): data files 8 → 1" in capsys.readouterr().out
    assert counts(lake) == (COMMITS, COMMITS)

    assert main(["maintain", "orders_sources", *endpoint, "--older-than", "0s", "--retain-last", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("lake_curated.orders_sources: compact 1 partition(s): data files 8 → 1; expire 8 snapshot(s)")
    # THEN one data file, one snapshot, the small files gone from S3, and the same rows
    assert counts(lake) == (1, 1)
    assert parquet_objects(lake) == 1 < data_objects
    assert run_query(target, SQL).to_pylist() == before
    # AND time travel to an expired snapshot says which snapshots remain
    with pytest.raises(CliError, match="has no snapshot 1; recent snapshots: "):
        run_query(target, "SELECT * FROM orders_sources FOR VERSION AS OF 1")


def test_maintain_keeps_recent_snapshots_and_leaves_few_files_alone(
    small_commits: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint = ["--endpoint-url", small_commits.endpoints.endpoint_url]
    assert main(["maintain", *endpoint, "--min-files", "9"]) == 0  # 8 small files; snapshots younger than 7 days
    assert capsys.readouterr().out.strip() == (
        "lake_curated.orders_sources: no partition to compact (8 data files); no snapshot to expire (8 kept)"
    )
    assert counts(small_commits) == (COMMITS, COMMITS)


def test_maintain_mistakes_are_one_line(small_commits: Lake) -> None:
    endpoint = small_commits.endpoints.endpoint_url
    missing = run_lake("maintain", "no_such_table", endpoint_url=endpoint)
    assert (missing.returncode, missing.stderr.strip()) == (
        1,
        "lake: table lake_curated.no_such_table does not exist; `lake tables` lists the tables",
    )
    bad_age = run_lake("maintain", "--older-than", "a week", endpoint_url=endpoint)
    assert bad_age.returncode == 2
    assert "'a week' is not an age; write a number and a unit: 7d, 12h, 30m or 0s" in bad_age.stderr
