"""What ``lake put`` would upload, and what ``lake events`` subscribes to (no network)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from lake.cli.put import Progress, plan
from lake.cli.subscribe import Subscription
from lake.target import CliError, resolve


def test_files_land_under_the_dataset_and_a_folder_keeps_its_sub_folders(tmp_path: Path) -> None:
    (tmp_path / "q1" / "jan").mkdir(parents=True)
    (tmp_path / "q1" / "jan" / "a.CSV").write_text("x\n1\n")
    (tmp_path / "q1" / ".hidden.csv").write_text("x\n1\n")
    (tmp_path / "b.csv.gz").write_bytes(b"")
    uploads = plan([str(tmp_path / "q1"), str(tmp_path / "b.csv.gz")], "Web Sessions")
    assert [u.key for u in uploads] == ["raw/Web Sessions/jan/a.CSV", "raw/Web Sessions/b.csv.gz"]


@pytest.mark.parametrize("dataset", ["", "a/b", "x" * 129])
def test_a_dataset_must_be_one_folder_name(tmp_path: Path, dataset: str) -> None:
    (tmp_path / "a.csv").write_text("x\n1\n")
    with pytest.raises(CliError, match="must be one folder name"):
        plan([str(tmp_path / "a.csv")], dataset)


def test_two_files_on_the_same_key_are_refused(tmp_path: Path) -> None:
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "a.csv").write_text("x\n1\n")
    with pytest.raises(CliError, match=r"would both land on raw/d/a\.csv"):
        plan([str(tmp_path / "one" / "a.csv"), str(tmp_path / "two" / "a.csv")], "d")


def test_an_empty_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(CliError, match="holds no files"):
        plan([str(tmp_path / "empty")], "d")


def test_the_progress_bar_counts_the_bytes_boto3_reports() -> None:
    out = io.StringIO()
    progress = Progress("big.csv", 4 * 1024 * 1024, out)
    for _ in range(4):
        progress(1024 * 1024)
    assert out.getvalue().rsplit("\r", 1)[-1] == "big.csv [" + "#" * 30 + "] 100% 4.0/4.0 MiB"


def test_a_dataset_filter_matches_the_table_name_events_carry() -> None:
    target = resolve("http://127.0.0.1:1")
    assert Subscription(target, dataset="Web Sessions").pattern()["detail"] == {"dataset": ["web_sessions"]}
    assert "detail" not in Subscription(target).pattern()
    assert Subscription(target).name.startswith("lake-events-cli-")
