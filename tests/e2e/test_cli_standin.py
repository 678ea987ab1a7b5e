"""`lake up` remembers, `lake status` tells, and `lake` explains itself: through the console script."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path

import pytest

import topology
from lake.cli.main import build_parser
from lake.standin.server import client, free_port
from lake.standin.state import STATE_FILE
from tests.e2e.cli import LAKE, Background, cli_env
from tests.e2e.cli import lake as lake_cli

pytestmark = pytest.mark.e2e

CSV = b"Campaign,Day,Clicks,Cost (EUR),Account ID\nspring,2026-03-01,4,1.50,00001\nspring,2026-03-02,7,2.25,00001\n"


def start_up(tmp_path: Path, port: int, *extra: str) -> Background:
    state = str(tmp_path / "state")
    argv = [LAKE, "up", "--port", str(port), "--log", str(tmp_path / "worker.log"), "--state-dir", state, *extra]
    up = Background(argv, cli_env(None))
    up.wait_for("ready:", timeout=180)
    return up


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


# --- discoverable ----------------------------------------------------------------------------------
def test_lake_alone_lists_every_command_on_one_line() -> None:
    result = lake_cli()
    assert result.returncode == 0, result.stderr
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")}
    commands = {"up", "demo", "status", "put", "events", "query", "tables", "maintain", "dlq", "reprocess"}
    assert commands <= listed
    for line in result.stdout.splitlines():
        if line.startswith("  "):
            assert len(line.split(maxsplit=1)) == 2, f"{line!r} has no description"


def test_lake_version_prints_the_installed_version() -> None:
    from importlib.metadata import version

    result = lake_cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"lake {version('lake-processor')}"


def _parsers(parser: argparse.ArgumentParser, name: str = "lake") -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(name, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                found += _parsers(sub, f"{name} {sub_name}")
    return found


def test_every_option_of_every_command_has_help() -> None:
    missing = [
        f"{name} {'/'.join(action.option_strings) or action.dest}"
        for name, parser in _parsers(build_parser())
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction) and not action.help
    ]
    assert missing == []


def test_aws_only_options_are_grouped_and_absent_where_they_mean_nothing() -> None:
    query_help = lake_cli("query", "--help").stdout
    aws_section = query_help.split("AWS only", 1)[1]
    assert all(flag in aws_section for flag in ("--region", "--profile", "--stack"))
    for local_only in ("up", "demo", "status"):
        text = lake_cli(local_only, "--help").stdout
        assert "--region" not in text and "--stack" not in text and "--profile" not in text, text


def test_shell_completion_offers_commands_and_options(tmp_path: Path) -> None:
    # The protocol bash's `register-python-argcomplete lake` speaks, with the answer written to a file.
    answer = tmp_path / "completions"
    env = cli_env(
        _ARGCOMPLETE="1",
        _ARGCOMPLETE_IFS="\n",
        COMP_LINE="lake st",
        COMP_POINT="7",
        _ARGCOMPLETE_STDOUT_FILENAME=str(answer),
    )
    subprocess.run([LAKE], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert set(answer.read_text().split()) == {"status"}
    env |= {"COMP_LINE": "lake up --st", "COMP_POINT": str(len("lake up --st"))}
    subprocess.run([LAKE], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert answer.read_text().split() == ["--state-dir"]


# --- the stand-in remembers ------------------------------------------------------------------------
def test_lake_up_remembers_objects_tables_queues_and_idempotency_records_across_a_restart(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    (tmp_path / "march.csv").write_bytes(CSV)
    # GIVEN a `lake up` that processed a file, and a message waiting in the DLQ
    with start_up(tmp_path, port) as up:
        assert "(empty)" in up.wait_for("state:")
        assert lake_cli("put", str(tmp_path / "march.csv"), "--dataset", "campaigns", endpoint_url=url).returncode == 0
        assert up.wait_for("✔ raw/campaigns/march.csv", timeout=180)
        sqs = client("sqs", url)
        sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName=topology.DEFAULT.dlq_name)["QueueUrl"], MessageBody="x")
        # WHEN it is stopped as a user does (Ctrl-C)
        assert up.stop() == 0
    assert any(line.startswith("stopped; state saved") for line in up.lines), up.lines
    # THEN `lake status` says it is not running, what the state holds and what it processed last
    status = lake_cli("status", "--state-dir", str(tmp_path / "state"))
    assert status.returncode == 3, status.stderr
    assert "not running" in status.stdout and "1 raw files" in status.stdout
    assert "raw/campaigns/march.csv" in status.stdout

    # WHEN it starts again
    with start_up(tmp_path, port) as up:
        assert "restored" in up.wait_for("state:")
        # THEN the table, its rows, the raw object, the DLQ message and the idempotency records are back
        tables = lake_cli("tables", endpoint_url=url)
        assert tables.returncode == 0, tables.stderr
        assert "campaigns" in tables.stdout
        # (a terminal with LAKE_ENDPOINT_URL alone, no AWS variables, reads the tables' files too)
        rows = lake_cli("query", "SELECT sum(clicks) AS clicks FROM campaigns", "--format", "json", endpoint_url=url)
        assert rows.returncode == 0, rows.stderr
        assert "11" in rows.stdout
        s3 = client("s3", url)
        assert s3.get_object(Bucket="lake-local", Key="raw/campaigns/march.csv")["Body"].read() == CSV
        dynamodb = client("dynamodb", url)
        items = dynamodb.scan(TableName=topology.DEFAULT.idempotency_table)["Items"]
        assert any(i["id"]["S"].startswith(topology.SOURCE_RECORD_PREFIX) for i in items), items
        status = lake_cli("status", "--state-dir", str(tmp_path / "state"))
        assert status.returncode == 0, status.stderr
        assert f"running (pid {up.process.pid}) on {url}" in status.stdout
        assert "DLQ lake-processing-dlq: 1 message(s)" in status.stdout
        # AND a file dropped now is processed as before (the restored queues and rules still route)
        (tmp_path / "april.csv").write_bytes(CSV.replace(b"2026-03", b"2026-04"))
        assert lake_cli("put", str(tmp_path / "april.csv"), "--dataset", "campaigns", endpoint_url=url).returncode == 0
        assert up.wait_for("✔ raw/campaigns/april.csv", timeout=180)


def _saved_state(tmp_path: Path) -> Path:
    """A real saved state: `lake up` started and stopped once."""
    with start_up(tmp_path, free_port()) as up:
        assert up.stop() == 0
    state = tmp_path / "state" / STATE_FILE
    assert state.exists(), up.lines
    return state


def test_a_damaged_or_foreign_state_is_refused_untouched_and_fresh_moves_it_aside(tmp_path: Path) -> None:
    state = _saved_state(tmp_path)
    good = state.read_bytes()
    argv = ("up", "--port", str(free_port()), "--state-dir", str(state.parent))

    # A state cut short (a full disk, a copy interrupted) is refused with its path and the way out
    state.write_bytes(good[: len(good) // 2])
    error = one_line_error(lake_cli(*argv))
    assert str(state) in error and "damaged" in error and "--fresh" in error
    assert state.read_bytes() == good[: len(good) // 2]  # never silently emptied

    # A state of a format this lake does not read says so and offers --fresh (a state another moto
    # saved is rebuilt instead: tests/e2e/test_standin_crash.py)
    header, _, body = good.partition(b"\n")
    foreign = json.loads(header) | {"format": 99}
    state.write_bytes(json.dumps(foreign).encode() + b"\n" + body)
    error = one_line_error(lake_cli(*argv))
    assert "another version" in error and "format 99" in error and "--fresh" in error

    # --fresh starts empty and keeps the old state aside
    with start_up(tmp_path, free_port(), "--fresh") as up:
        assert "moved to" in up.wait_for("starting fresh")
        assert "(empty)" in up.wait_for("state:")
    kept = list((state.parent / "discarded").iterdir())
    assert len(kept) == 1 and (kept[0] / STATE_FILE).read_bytes().endswith(body)


def test_a_second_lake_up_on_the_same_state_directory_is_refused(tmp_path: Path) -> None:
    with start_up(tmp_path, free_port()) as up:
        second = lake_cli("up", "--port", str(free_port()), "--state-dir", str(tmp_path / "state"))
        error = one_line_error(second)
        assert f"pid {up.process.pid}" in error and "--state-dir" in error


def test_status_without_a_lake_up_says_how_to_start_one(tmp_path: Path) -> None:
    result = lake_cli("status", "--state-dir", str(tmp_path / "nothing"))
    assert result.returncode == 3
    assert "not running" in result.stdout and "lake up" in result.stdout
    assert not os.path.exists(tmp_path / "nothing")  # asking creates nothing
