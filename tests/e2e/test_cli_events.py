"""``lake up``, ``lake put`` and ``lake events`` through the real console script, against the moto
server; the AWS CLI (a client we did not write) drops a file into a running ``lake up``."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lake.standin.runner import Runner
from lake.standin.server import client, free_port
from tests.conftest import Lake
from tests.e2e.cli import LAKE, Background, cli_env
from tests.e2e.cli import lake as run_lake

pytestmark = pytest.mark.e2e

AWS = str(Path(LAKE).parent / "aws")
CSV = b"campaign,day,clicks\nspring,2026-03-01,4\nsummer,2026-03-02,7\n"


@pytest.fixture
def running(lake: Lake, tmp_path: Path) -> Iterator[Runner]:
    with Runner(lake.endpoints, log_path=str(tmp_path / "worker.log")) as runner:
        yield runner


def temporary_subscriptions(lake: Lake) -> tuple[list[str], list[str]]:
    """The queues and rules ``lake events`` creates for itself (``lake-events-cli-*``)."""
    queues = lake.sqs.list_queues(QueueNamePrefix="lake-events-cli-").get("QueueUrls", [])
    events = client("events", lake.endpoints.endpoint_url)
    rules = [r["Name"] for r in events.list_rules(EventBusName=lake.endpoints.topology.bus_name)["Rules"]]
    return queues, [r for r in rules if r.startswith("lake-events-cli-")]


def test_every_subscriber_sees_the_event_of_a_put_file_and_leaves_nothing_behind(
    lake: Lake, running: Runner, tmp_path: Path
) -> None:
    # GIVEN three subscribers: one following, one waiting for one event as JSON, one for another dataset
    url = lake.endpoints.endpoint_url
    follower = Background([LAKE, "events", "--follow"], cli_env(url))
    one_json = Background([LAKE, "events", "--json", "--timeout", "60"], cli_env(url))
    other = Background([LAKE, "events", "--follow", "--dataset", "orders"], cli_env(url))
    with follower, one_json, other:
        for subscriber in (follower, one_json, other):
            subscriber.wait_for("listening for")
        assert len(temporary_subscriptions(lake)[0]) == 3

        # WHEN a file is put into the lake with `lake put`
        (tmp_path / "march.csv").write_bytes(CSV)
        put = run_lake("put", str(tmp_path / "march.csv"), "--dataset", "spring_campaigns", endpoint_url=url)
        assert put.returncode == 0, put.stderr
        assert put.stdout.strip() == (
            f"uploaded {tmp_path / 'march.csv'} → s3://lake-local/raw/spring_campaigns/march.csv ({len(CSV)} bytes)"
        )

        # THEN each subscriber of all datasets sees its completion event
        line = follower.wait_for("raw/spring_campaigns/march.csv")
        assert line.startswith("✔ raw/spring_campaigns/march.csv → spring_campaigns (2 rows)")
        one_json.wait_for('"detail-type"')
        assert one_json.process.wait(30) == 0
        [event] = [json.loads(x) for x in one_json.lines if x.startswith("{")]
        assert event["detail-type"] == "Dataset Processed"
        assert event["detail"]["source"]["key"] == "raw/spring_campaigns/march.csv"
        assert event["detail"]["outputs"][0]["rows"] == 2

        # AND the subscriber of another dataset sees nothing; Ctrl-C ends the followers with exit 0
        assert other.stop() == 0
        assert not any("spring_campaigns" in x for x in other.lines)
        assert follower.stop() == 0
    # AND their temporary queues and rules are gone
    assert temporary_subscriptions(lake) == ([], [])


def test_events_times_out_with_its_own_exit_code_and_cleans_up(lake: Lake) -> None:
    result = run_lake("events", "--dataset", "orders", "--timeout", "1", endpoint_url=lake.endpoints.endpoint_url)
    assert result.returncode == 124
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1].startswith("lake: 0 of 1 event(s) within 1s; is the runner")
    assert temporary_subscriptions(lake) == ([], [])


def test_put_keeps_a_folders_structure_and_checks_everything_before_uploading(lake: Lake, tmp_path: Path) -> None:
    # GIVEN a folder with a sub-folder, a hidden file and a hidden folder
    folder = tmp_path / "exports"
    (folder / "2026" / "03").mkdir(parents=True)
    (folder / ".cache").mkdir()
    (folder / "a.csv").write_bytes(CSV)
    (folder / "2026" / "03" / "b.jsonl").write_text('{"x": 1}\n')
    (folder / ".DS_Store").write_bytes(b"\0")
    (folder / ".cache" / "c.csv").write_bytes(CSV)
    url = lake.endpoints.endpoint_url

    # WHEN it is put with a missing path, or with a file the processor does not read
    missing = run_lake("put", str(folder), str(tmp_path / "nope.csv"), "--dataset", "clicks", endpoint_url=url)
    (tmp_path / "notes.txt").write_text("hello")
    unreadable = run_lake("put", str(folder), str(tmp_path / "notes.txt"), "--dataset", "clicks", endpoint_url=url)

    # THEN each is refused in one line, and nothing is uploaded
    assert missing.returncode == 1
    assert (
        missing.stderr
        == f"lake: {tmp_path / 'nope.csv'}: no such file or folder; check the path (nothing was uploaded)\n"
    )
    assert unreadable.returncode == 1
    assert len(unreadable.stderr.splitlines()) == 1
    assert "notes.txt" in unreadable.stderr and "--force" in unreadable.stderr
    assert lake.keys("raw/") == []

    # WHEN the folder is put alone, and the odd file with --force
    assert run_lake("put", str(folder), "--dataset", "clicks", endpoint_url=url).returncode == 0
    forced = run_lake("put", str(tmp_path / "notes.txt"), "--dataset", "clicks", "--force", endpoint_url=url)
    assert forced.returncode == 0, forced.stderr

    # THEN the folder's files keep their relative paths, hidden ones are skipped
    assert lake.keys("raw/") == ["raw/clicks/2026/03/b.jsonl", "raw/clicks/a.csv", "raw/clicks/notes.txt"]


def test_a_large_put_goes_up_in_parts_with_a_progress_bar_on_a_terminal(lake: Lake, tmp_path: Path) -> None:
    big = tmp_path / "big.csv"
    big.write_bytes(b"n\n" + b"123456789\n" * (9 * 1024 * 1024 // 10))
    # The progress bar goes to stderr when it is a terminal.
    main, terminal = pty.openpty()
    try:
        result = subprocess.run(
            [LAKE, "put", str(big), "--dataset", "big"],
            env=cli_env(lake.endpoints.endpoint_url),
            stdout=subprocess.PIPE,
            stderr=terminal,
            text=True,
            timeout=120,
            check=False,
        )
        os.close(terminal)
        shown = b""
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(main)
    assert result.returncode == 0
    assert "100% 9.0/9.0 MiB" in shown.decode()
    assert result.stdout.startswith(f"uploaded {big} → s3://lake-local/raw/big/big.csv (")
    head = lake.s3.head_object(Bucket=lake.bucket, Key="raw/big/big.csv")
    assert head["ContentLength"] == big.stat().st_size
    assert "-" in head["ETag"]  # a multipart upload's ETag


def test_no_stand_in_or_no_credentials_is_one_line_without_traceback(tmp_path: Path) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    (tmp_path / "a.csv").write_bytes(CSV)
    for args in (["put", str(tmp_path / "a.csv"), "--dataset", "x"], ["events", "--timeout", "1"]):
        result = run_lake(*args, endpoint_url=nobody)
        assert result.returncode == 1
        assert result.stderr == (
            f"lake: nothing answers at {nobody}; start the stand-in with `lake up` in another terminal, "
            "or fix --endpoint-url / LAKE_ENDPOINT_URL\n"
        )
    no_aws = cli_env(
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
    )
    result = run_lake("events", env=no_aws)
    assert result.returncode == 1
    assert result.stderr.startswith("lake: no AWS credentials found;")
    assert len(result.stderr.splitlines()) == 1


def test_the_aws_cli_drops_a_file_into_a_running_lake_up(tmp_path: Path) -> None:
    # GIVEN `lake up` on a free port, as a user starts it
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = cli_env()
    with Background(
        [
            LAKE,
            "up",
            "--port",
            str(port),
            "--log",
            str(tmp_path / "worker.log"),
            "--state-dir",
            str(tmp_path / "state"),
        ],
        env,
    ) as up:
        up.wait_for("ready", timeout=90)
        export = up.wait_for("export LAKE_ENDPOINT_URL=").split("export ", 1)[1]
        terminal = cli_env(**dict(pair.split("=", 1) for pair in export.split()))
        assert terminal["LAKE_ENDPOINT_URL"] == url

        # WHEN a second `lake up` wants the same port
        second = run_lake("up", "--port", str(port), env=env)
        assert second.returncode == 1
        assert second.stderr.startswith(f"lake: port {port} on 127.0.0.1 is already in use;")

        # AND the AWS CLI, with the credentials `lake up` printed, copies a file into raw/<dataset>/
        (tmp_path / "data.csv").write_bytes(CSV)
        copy = subprocess.run(
            [AWS, "--endpoint-url", url, "s3", "cp", str(tmp_path / "data.csv"), "s3://lake-local/raw/web_clicks/"],
            env=terminal,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert copy.returncode == 0, copy.stderr

        # THEN `lake up` shows the processed file, and its curated Parquet is there
        line = up.wait_for("raw/web_clicks/data.csv", timeout=90)
        assert line.strip().startswith("✔ raw/web_clicks/data.csv → web_clicks (2 rows)")
        listing = subprocess.run(
            [AWS, "--endpoint-url", url, "s3", "ls", "--recursive", "s3://lake-local/curated/web_clicks/"],
            env=terminal,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert ".parquet" in listing.stdout

        # AND Ctrl-C stops everything cleanly
        # (exit 0: it stopped on the signal, not on Background's kill; the lake was saved for the next start)
        assert up.stop() == 0
        assert up.lines[-1].startswith("stopped; state saved")
        assert not any("Traceback" in x for x in up.lines)


def test_a_terminated_subscriber_removes_its_queue_and_rule(lake: Lake) -> None:
    with Background([LAKE, "events", "--follow"], cli_env(lake.endpoints.endpoint_url)) as follower:
        follower.wait_for("listening for")
        assert len(temporary_subscriptions(lake)[1]) == 1
        follower.process.terminate()
        assert follower.process.wait(15) == 0
    assert temporary_subscriptions(lake) == ([], [])
