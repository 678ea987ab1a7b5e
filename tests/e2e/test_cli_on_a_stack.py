"""Without an endpoint, the ``lake`` command works on the deployed stack, with every name taken
from its CloudFormation outputs. Here the "deployment" lives on the moto server (boto3's own
``AWS_ENDPOINT_URL`` points there) and deliberately uses names other than the stand-in's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

import topology
from lake.standin.runner import Runner
from lake.standin.server import Endpoints, StandIn, provision
from tests.conftest import Lake
from tests.e2e.cli import LAKE, Background, cli_env
from tests.e2e.cli import lake as run_lake
from tests.functional.test_target import deploy_outputs_stack

pytestmark = pytest.mark.e2e

CSV = b"page,visits\n/home,12\n/pricing,5\n"


@pytest.fixture
def deployed(lake: Lake, moto_server: StandIn, tmp_path: Path) -> Iterator[Endpoints]:
    """A stack whose resources are named as CloudFormation would name them, with a runner on it."""
    names = replace(
        moto_server.topology,
        bucket="lakeprocessor-storagelakebucket-1a2b3c4d",
        queue_name="LakeProcessor-ProcessingQueue-XyZ",
        dlq_name="LakeProcessor-DeadLetterQueue-XyZ",
        bus_name="lake-events-prod",
        subscriber_queue_name="LakeProcessor-SubscriberQueue-XyZ",
        curated_database="lake_curated_prod",
        quarantine_database="lake_quarantine_prod",
        idempotency_table="LakeProcessor-Idempotency-XyZ",
    )
    endpoints = provision(moto_server.endpoint_url, names)
    deploy_outputs_stack(endpoints, "LakeProcessor")
    with Runner(endpoints, log_path=str(tmp_path / "worker.log")):
        yield endpoints


def aws_env(endpoints: Endpoints) -> dict[str, str]:
    """A terminal logged in to "AWS" (the moto server), with no LAKE_ENDPOINT_URL."""
    return cli_env(
        None,
        AWS_ENDPOINT_URL=endpoints.endpoint_url,
        AWS_ACCESS_KEY_ID="AKIAEXAMPLE",
        AWS_SECRET_ACCESS_KEY="example",
        AWS_DEFAULT_REGION=topology.LOCAL_REGION,
        AWS_EC2_METADATA_DISABLED="true",
    )


def test_put_events_tables_reprocess_and_dlq_find_the_stack_by_its_outputs(deployed: Endpoints, tmp_path: Path) -> None:
    env = aws_env(deployed)
    bucket = deployed.topology.bucket
    # GIVEN a subscriber on the deployed bus
    with Background([LAKE, "events", "--json", "--timeout", "60"], env) as subscriber:
        subscriber.wait_for("listening for")
        assert "bus lake-events-prod of stack LakeProcessor in us-east-1" in subscriber.lines[-1]

        # WHEN a file is put without naming the bucket
        (tmp_path / "pages.csv").write_bytes(CSV)
        put = run_lake("put", str(tmp_path / "pages.csv"), "--dataset", "web_pages", env=env)
        assert put.returncode == 0, put.stderr
        assert f"→ s3://{bucket}/raw/web_pages/pages.csv" in put.stdout

        # THEN its completion event arrives through the subscriber's own queue on the stack's bus
        subscriber.wait_for('"detail-type"')
        [event] = [json.loads(x) for x in subscriber.lines if x.startswith("{")]
        assert event["detail"]["status"] == "succeeded"
        assert event["detail"]["source"]["bucket"] == bucket

    # AND the stack's databases list the table with its rows
    tables = run_lake("tables", "--format", "json", env=env)
    assert tables.returncode == 0, tables.stderr
    # (the processing ledger's row lands after the event, at the end of the invocation: not counted here)
    rows = [json.loads(line) for line in tables.stdout.splitlines() if '"lake_ops"' not in line]
    assert [(r["database"], r["table"], r["rows"]) for r in rows] == [
        ("lake_curated_prod", "dataset_profiles", 2),
        ("lake_curated_prod", "web_pages", 2),
    ]
    # AND a backfill and the DLQ use the stack's bucket and queues
    dry_run = run_lake("reprocess", f"s3://{bucket}/raw/web_pages/", "--dry-run", env=env)
    assert dry_run.returncode == 0, dry_run.stderr
    assert "would enqueue  raw/web_pages/pages.csv" in dry_run.stdout
    dlq = run_lake("dlq", env=env)
    assert (dlq.returncode, dlq.stdout.split(" (")[0]) == (0, "the dead-letter queue is empty")
    assert "stack LakeProcessor in us-east-1" in dlq.stdout


def test_another_stack_name_that_is_not_deployed_is_one_line(deployed: Endpoints) -> None:
    result = run_lake("tables", "--stack", "LakeProcessorStaging", env=aws_env(deployed))
    assert result.returncode == 1
    assert result.stderr == (
        "lake: stack LakeProcessorStaging is not deployed in us-east-1; deploy it (docs/deploy.md), pass "
        "--stack/--region for another deployment, or --endpoint-url for the local stand-in\n"
    )


def test_no_region_is_one_line_that_says_how_to_set_one(tmp_path: Path) -> None:
    env = cli_env(
        None,
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    result = run_lake("query", "SELECT 1 FROM web_sessions", env=env)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == ("lake: no AWS region set; pass --region, set AWS_DEFAULT_REGION, or run `aws configure`\n")
