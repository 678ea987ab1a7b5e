"""``lake dlq`` and ``lake reprocess`` through the real console script, against the moto server."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from lake.cli.tables import read_table
from lake.standin.runner import Runner
from lake.standin.server import client, free_port
from tests.conftest import Lake, wait_until
from tests.e2e.cli import LAKE, Background, cli_env
from tests.e2e.cli import lake as lake_cli

pytestmark = pytest.mark.e2e


def campaign_csv(rows: int, offset: int = 0) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Campaign", "Day", "Clicks", "Cost (EUR)", "Account ID"])
    for i in range(offset, offset + rows):
        writer.writerow([f"spring-{i % 7}", f"2026-03-{1 + i % 28:02d}", i % 50, f"{i * 0.37:.2f}", f"{i % 13:05d}"])
    return out.getvalue().encode()


def curated_rows(lake: Lake) -> list[dict[str, object]]:
    """Every row of the campaigns table read back through the Iceberg catalog, in a stable order."""
    table = read_table(lake.glue, None, "lake_curated", "campaigns")
    return sorted(table.to_pylist(), key=lambda row: json.dumps(row, default=str, sort_keys=True))


def one_line_error(result: object) -> str:
    """The error of a failed command: one line on stderr, no traceback."""
    assert result.returncode != 0, result.stdout  # type: ignore[attr-defined]
    stderr: str = result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert stderr.startswith("lake: ")
    return stderr


def test_a_dead_lettered_file_is_listed_with_its_error_then_redriven_and_processed(lake: Lake, tmp_path: Path) -> None:
    url = lake.endpoints.endpoint_url
    # GIVEN the curated Glue database is missing (a deployment mistake that retrying cannot fix yet)
    lake.glue.delete_database(Name="lake_curated")
    with Runner(lake.endpoints, log_path=str(tmp_path / "w.log")):
        lake.put("raw/campaigns/march.csv", campaign_csv(10))
        # WHEN SQS has tried it maxReceiveCount times, it moves to the dead-letter queue
        assert wait_until(lambda: lake.queue_depth(lake.endpoints.dlq_url) == 1, timeout=240)
        [failed] = lake.events(1)
        assert failed["detail"]["status"] == "failed"

        # THEN `lake dlq list` names the object, how often it was tried, since when, and why
        listed = lake_cli("dlq", "list", endpoint_url=url)
        assert listed.returncode == 0, listed.stderr
        assert "raw/campaigns/march.csv" in listed.stdout
        assert "lake_curated" in listed.stdout  # the error names the missing database
        assert "1 message(s) in the dead-letter queue" in listed.stdout
        [letter] = json.loads(lake_cli("dlq", "list", "--json", endpoint_url=url).stdout)
        assert letter["key"] == "raw/campaigns/march.csv"
        assert letter["failed_attempts"] == 3
        assert letter["receive_count"] >= 3
        assert letter["first_failed_at"] <= letter["last_failed_at"]
        # (the Iceberg catalog's own error since the tables became Iceberg tables)
        assert "NoSuchNamespaceError" in letter["last_error"] and "lake_curated" in letter["last_error"]
        # AND listing left the message in the DLQ, visible for a redrive
        assert lake.queue_depth(lake.endpoints.dlq_url) == 1

        # WHEN the cause is fixed and the message redriven
        lake.glue.create_database(DatabaseInput={"Name": "lake_curated"})
        redriven = lake_cli("dlq", "redrive", endpoint_url=url)
        assert redriven.returncode == 0, redriven.stderr
        assert "moved 1 message(s)" in redriven.stdout

        # THEN it is processed and announced, and the DLQ is empty
        [done] = lake.events(1, timeout=60)
        assert done["detail"]["status"] == "succeeded"
        assert done["detail"]["source"]["key"] == "raw/campaigns/march.csv"
    assert lake.keys("curated/campaigns/")
    assert lake.queue_depth(lake.endpoints.dlq_url) == 0
    empty = lake_cli("dlq", "list", endpoint_url=url)
    assert empty.returncode == 0
    assert "the dead-letter queue is empty" in empty.stdout


def test_reprocess_gives_identical_curated_data_and_a_dry_run_sends_nothing(lake: Lake, tmp_path: Path) -> None:
    url = lake.endpoints.endpoint_url
    # GIVEN two processed files and a file the processor does not read, in one dataset folder
    with Runner(lake.endpoints, log_path=str(tmp_path / "w.log")):
        lake.put("raw/campaigns/march.csv", campaign_csv(40))
        lake.put("raw/campaigns/april.csv", campaign_csv(30, offset=100))
        lake.put("raw/campaigns/notes.txt", b"exported by hand")
        assert len(lake.events(3)) == 3
    before = curated_rows(lake)
    assert len(before) == 70

    # WHEN a dry run names the folder, THEN it says what it would send and sends nothing
    dry = lake_cli("reprocess", f"s3://{lake.bucket}/raw/campaigns/", "--dry-run", endpoint_url=url)
    assert dry.returncode == 0, dry.stderr
    assert "raw/campaigns/march.csv" in dry.stdout and "raw/campaigns/april.csv" in dry.stdout
    assert "notes.txt" in dry.stdout and "skip" in dry.stdout
    assert "2 process request(s) would be enqueued" in dry.stdout
    assert lake.queue_depth(lake.endpoints.queue_url) == 0

    # WHEN one object is reprocessed for real
    run = lake_cli("reprocess", f"s3://{lake.bucket}/raw/campaigns/march.csv", "--reason", "backfill", endpoint_url=url)
    assert run.returncode == 0, run.stderr
    assert "enqueued 1 process request(s)" in run.stdout
    assert "lake events" in run.stdout
    with Runner(lake.endpoints, log_path=str(tmp_path / "w.log")):
        # THEN exactly one new completion event says it was a reprocess, and why
        [event] = lake.events(1)
        assert lake.quiet_events(2) == []
    assert event["detail-type"] == "Dataset Processed"
    assert event["detail"]["source"]["key"] == "raw/campaigns/march.csv"
    assert event["detail"]["source"]["trigger"] == "process-request"
    assert event["detail"]["source"]["reason"] == "backfill"
    # AND the table holds the same rows, once: the object's own rows were replaced, lineage included
    assert curated_rows(lake) == before
    assert lake.queue_depth(lake.endpoints.queue_url) == 0


def test_a_foreign_message_in_the_dlq_is_listed_as_such(lake: Lake) -> None:
    lake.sqs.send_message(QueueUrl=lake.endpoints.dlq_url, MessageBody="hello from somewhere else")
    listed = lake_cli("dlq", endpoint_url=lake.endpoints.endpoint_url)
    assert listed.returncode == 0, listed.stderr
    assert "(not a lake message) hello from somewhere else" in listed.stdout
    assert "unknown (crash or timeout?" in listed.stdout


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("s3://someone-elses-bucket/raw/campaigns/", "is not the lake bucket"),
        ("s3://lake-local/curated/campaigns/", "outside raw/"),
        ("lake-local/raw/campaigns/", "must start with s3://"),
        ("s3://lake-local/raw/nothing-here/", "nothing under s3://lake-local/raw/nothing-here/"),
    ],
)
def test_reprocess_refuses_what_it_cannot_do_in_one_line(lake: Lake, url: str, says: str) -> None:
    result = lake_cli("reprocess", url, endpoint_url=lake.endpoints.endpoint_url)
    assert says in one_line_error(result)
    assert lake.queue_depth(lake.endpoints.queue_url) == 0


def test_dlq_commands_on_an_empty_queue_and_without_a_stand_in(lake: Lake) -> None:
    url = lake.endpoints.endpoint_url
    for action in ("list", "redrive"):
        result = lake_cli("dlq", action, endpoint_url=url)
        assert result.returncode == 0, result.stderr
        assert "the dead-letter queue is empty" in result.stdout
    nowhere = f"http://127.0.0.1:{free_port()}"
    for argv in (("dlq", "list"), ("dlq", "redrive"), ("reprocess", "s3://lake-local/raw/campaigns/")):
        assert "`lake up`" in one_line_error(lake_cli(*argv, endpoint_url=nowhere))


def test_lake_up_with_quick_retries_shows_a_failing_file_reach_the_dlq(tmp_path: Path) -> None:
    # GIVEN `lake up` retrying after 2 s instead of the deployed 30 minutes
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [LAKE, "up", "--port", str(port), "--retry-after", "2", "--log", str(tmp_path / "worker.log")]
    argv += ["--state-dir", str(tmp_path / "state")]
    with Background(argv, cli_env(None)) as up:
        # Every wait below is on something `lake up` prints; the timeouts only bound a hung run.
        up.wait_for("ready:", timeout=180)
        assert "a failed message comes back after 2 s; after 3 receives" in up.wait_for("retries:")
        # AND a cause retrying cannot fix yet: the curated Glue database is missing
        client("glue", url).delete_database(Name="lake_curated")

        # WHEN a file is dropped
        (tmp_path / "march.csv").write_bytes(campaign_csv(5))
        put = lake_cli("put", str(tmp_path / "march.csv"), "--dataset", "campaigns", endpoint_url=url)
        assert put.returncode == 0, put.stderr

        # THEN `lake up` shows each failed attempt, naming the file, then the failure that sends it to the DLQ
        failed = up.wait_for("✘ raw/campaigns/march.csv", timeout=300)
        assert "lake_curated" in failed and "attempt 3 of 3" in failed and "lake dlq redrive" in failed
        # (the third attempt's line follows its failure event: the handler publishes before it returns)
        attempts = up.wait_for_count("invocation of 1 record(s) failed", 3, timeout=120)
        assert all("raw/campaigns/march.csv" in line and "lake_curated" in line for line in attempts), attempts
        # AND `lake dlq` lists it with the error
        assert wait_until(lambda: "raw/campaigns/march.csv" in lake_cli("dlq", endpoint_url=url).stdout, timeout=60)
        assert up.stop() == 0
