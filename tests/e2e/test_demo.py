"""``make demo`` runs ``lake demo``: the whole pipeline on the sample files, ending with queries."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.cli import cli_env
from tests.e2e.cli import lake as run_lake

pytestmark = pytest.mark.e2e


def test_the_demo_processes_every_sample_and_ends_with_three_queries(tmp_path: Path) -> None:
    # WHEN a newcomer runs the demo (on a free port, in its own work folder)
    result = run_lake("demo", "--workdir", str(tmp_path / "demo"), env=cli_env(None), timeout=300)

    # THEN it succeeds: five files processed, the truncated gzip refused with what to do
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert out.count("  ✔ raw/") == 5
    [refused] = [line for line in out.splitlines() if line.startswith("  ✘ ")]
    assert "web_sessions-2026-09.csv.gz: the gzip data is damaged" in refused
    assert "re-upload the complete file" in refused
    # AND the orders export asked the refresh function for RFM and segments over all orders
    [refreshed] = [line for line in out.splitlines() if line.startswith("  ⟳ orders models")]
    assert "customer_rfm as of" in refreshed and "customer_segmentation" in refreshed
    # AND three Athena SQL queries print result tables with rows
    assert out.count("  ◆ ") == 3
    lines = [line.strip() for line in out.splitlines()]
    for first_column in ("channel", "experiment_id", "segment_name"):
        [at] = [i for i, line in enumerate(lines) if line.split()[:1] == [first_column]]
        assert set(lines[at + 1]) == {"-", " "}  # the header's rule
        assert lines[at + 2] and not lines[at + 2].startswith(("◆", "▶")), f"no rows under {first_column}"
    assert "Traceback" not in result.stderr
    assert out.rstrip().endswith("Done.")
