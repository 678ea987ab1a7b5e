"""`lake up` killed with SIGKILL mid-stream loses nothing it announced; a lake another moto saved is
rebuilt from its raw files. Through the console script, on a real state directory."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from lake.standin.server import client, free_port
from lake.standin.state import STATE_FILE
from tests.e2e.cli import LAKE, Background, cli_env
from tests.e2e.cli import lake as lake_cli

pytestmark = pytest.mark.e2e

BUCKET = "lake-local"
FILES = 8
#: Generous bounds: the machine is shared with other test suites.
SLOW = 240


def csv(day: int) -> bytes:
    """Two rows of their own per file (clicks 1 and 2 on its own days), so each file is countable."""
    return (
        "Campaign,Day,Clicks,Cost (EUR)\n"
        f"spring,2026-03-{2 * day + 1:02d},1,1.00\n"
        f"spring,2026-03-{2 * day + 2:02d},2,2.00\n"
    ).encode()


def key(i: int) -> str:
    return f"raw/campaigns/day{i}.csv"


def start_up(tmp_path: Path, port: int) -> Background:
    argv = [
        LAKE,
        "up",
        "--port",
        str(port),
        "--log",
        str(tmp_path / "worker.log"),
        "--state-dir",
        str(tmp_path / "state"),
    ]
    up = Background(argv, cli_env(None))
    up.wait_for("ready:", timeout=SLOW)
    return up


def rows_by_source(url: str) -> dict[str, int]:
    result = lake_cli(
        "query",
        "SELECT source_key, count(*) AS n, sum(clicks) AS clicks FROM campaigns GROUP BY 1",
        "--format",
        "json",
        endpoint_url=url,
    )
    assert result.returncode == 0, result.stderr
    found = {}
    for line in result.stdout.splitlines():
        row = json.loads(line)
        assert row["clicks"] == 3 * row["n"] // 2, row  # each file's two rows, each once
        found[row["source_key"]] = row["n"]
    return found


def test_a_kill_9_mid_stream_loses_nothing_announced_and_the_rest_is_processed_after_a_restart(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    s3 = client("s3", url)
    # GIVEN a `lake up` with files dropped one after another, two in flight at a time
    up = start_up(tmp_path, port)
    try:
        s3.put_object(Bucket=BUCKET, Key=key(0), Body=csv(0))
        s3.put_object(Bucket=BUCKET, Key=key(1), Body=csv(1))
        for i in range(4):
            up.wait_for(f"✔ {key(i)}", timeout=SLOW)
            s3.put_object(Bucket=BUCKET, Key=key(i + 2), Body=csv(i + 2))
        # WHEN it is killed with SIGKILL while the next files are being processed
        up.process.send_signal(signal.SIGKILL)
        up.process.wait(30)
    finally:
        up.stop()
    announced = {i for i in range(FILES) if any(f"✔ {key(i)}" in line for line in up.lines)}
    assert {0, 1, 2, 3} <= announced
    uploaded = set(range(6))
    assert uploaded - announced, "the kill came after every file was announced: nothing was mid-stream"

    # WHEN it starts again on the same state directory
    with start_up(tmp_path, port) as again:
        assert "restored" in again.wait_for("state:")
        # THEN every file announced before the kill is queryable at once, its rows once
        before = rows_by_source(url)
        assert all(before.get(key(i)) == 2 for i in announced), before
        # AND every file uploaded but not announced is processed now, without waiting for the visibility timeout
        for i in sorted(uploaded - announced):
            again.wait_for(f"✔ {key(i)}", timeout=SLOW)
        # AND the lake goes on as before
        for i in (6, 7):
            s3.put_object(Bucket=BUCKET, Key=key(i), Body=csv(i))
        for i in (6, 7):
            again.wait_for(f"✔ {key(i)}", timeout=SLOW)
        # nothing lost, nothing duplicated
        assert rows_by_source(url) == {key(i): 2 for i in range(FILES)}
        assert again.stop() == 0
    stopped = next(line for line in again.lines if line.startswith("stopped; state saved"))
    assert "checkpoint(s), median" in stopped, again.lines


def test_a_lake_saved_by_another_moto_is_rebuilt_from_its_raw_settings_and_models_objects(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = json.dumps({"tolerance": 0.05}).encode()
    # GIVEN a lake with two raw files and a settings object, stopped as a user does
    with start_up(tmp_path, port) as up:
        s3 = client("s3", url)
        s3.put_object(Bucket=BUCKET, Key="settings/campaigns.json", Body=settings)
        for i in (0, 1):
            s3.put_object(Bucket=BUCKET, Key=key(i), Body=csv(i))
        for i in (0, 1):
            up.wait_for(f"✔ {key(i)}", timeout=SLOW)
        assert up.stop() == 0
    # AND its saved state says another moto made it
    state = tmp_path / "state" / STATE_FILE
    header, _, rest = state.read_bytes().partition(b"\n")
    state.write_bytes(json.dumps(json.loads(header) | {"moto": "5.0.0"}).encode() + b"\n" + rest)

    # WHEN it starts again
    with start_up(tmp_path, port) as again:
        # THEN one line says the lake was rebuilt, and from what
        line = again.wait_for("state:")
        assert "the saved lake was made by moto 5.0.0; rebuilt from its 2 raw objects by reprocessing" in line, line
        # AND the raw files are processed again, the settings object is back, the rows are there once
        for i in (0, 1):
            again.wait_for(f"✔ {key(i)}", timeout=SLOW)
        s3 = client("s3", url)
        assert s3.get_object(Bucket=BUCKET, Key="settings/campaigns.json")["Body"].read() == settings
        assert rows_by_source(url) == {key(0): 2, key(1): 2}
    # AND the old state is kept aside, never deleted
    (aside,) = (tmp_path / "state" / "discarded").iterdir()
    assert (aside / STATE_FILE).read_bytes().endswith(rest)
