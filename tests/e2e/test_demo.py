"""``make demo`` runs ``lake demo``: the whole pipeline on the sample files, a second month of orders,
ending with queries that show how customers moved between segments."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd
import pytest

from lake.standin.server import free_port
from tests.e2e.cli import LAKE, Background, cli_env
from tests.e2e.cli import lake as run_lake

pytestmark = pytest.mark.e2e


def table_under(lines: list[str], first_column: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the printed result table whose header starts with ``first_column`` (cells
    split on 2+ spaces)."""
    [at] = [i for i, line in enumerate(lines) if line.startswith(first_column + "  ")]
    assert set(lines[at + 1]) == {"-", " "}  # the header's rule
    rows = []
    for line in lines[at + 2 :]:
        if not line or line.startswith(("◆", "▶", "→", "SELECT")):
            break
        rows.append(re.split(r"\s{2,}", line))
    assert rows, f"no rows under {first_column}"
    return re.split(r"\s{2,}", lines[at]), rows


def independent_rfm(csv_files: list[Path]) -> pd.DataFrame:
    """RFM per customer straight from the export files, with pandas: the rows the orders contract keeps
    (a customer id, a valid timestamp, a non-negative amount), each order id once (the newest file's)."""
    raw = pd.concat([pd.read_csv(p, dtype=str, keep_default_na=False) for p in csv_files], ignore_index=True)
    raw["day"] = pd.to_datetime(raw["order_date"], format="%Y-%m-%d %H:%M:%S", errors="coerce").dt.normalize()
    raw["value"] = pd.to_numeric(raw["amount"], errors="coerce")
    kept = raw[(raw["customer_id"].str.strip() != "") & raw["day"].notna() & (raw["value"] >= 0)]
    kept = kept.drop_duplicates("order_id", keep="last")
    per = kept.groupby("customer_id").agg(
        first=("day", "min"),
        last=("day", "max"),
        orders=("order_id", "size"),
        order_days=("day", "nunique"),
        total_amount=("value", "sum"),
    )
    as_of = per["last"].max()
    per["recency_days"] = (as_of - per["last"]).dt.days
    per["tenure_days"] = (as_of - per["first"]).dt.days
    per["as_of"] = as_of.date().isoformat()
    return per.reset_index()


def test_the_demo_shows_a_second_month_of_orders_moving_customers_between_segments(tmp_path: Path) -> None:
    # WHEN a newcomer runs the demo (on a free port, in its own work folder), keeping its lake
    workdir, kept = tmp_path / "demo", tmp_path / "lake"
    result = run_lake("demo", "--workdir", str(workdir), "--state-dir", str(kept), env=cli_env(None), timeout=420)

    # THEN it succeeds: five files and the next month's orders processed, the truncated gzip refused
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert out.count("  ✔ raw/") == 6
    [refused] = [line for line in out.splitlines() if line.startswith("  ✘ ")]
    assert "web_sessions-2026-09.csv.gz: the gzip data is damaged" in refused
    assert "re-upload the complete file" in refused
    # AND each orders export asked the refresh function for RFM and segments over all orders so far
    refreshed = [line for line in out.splitlines() if line.startswith("  ⟳ orders models")]
    as_ofs = [found.group(1) for line in refreshed if (found := re.search(r"customer_rfm as of (\S+)", line))]
    assert len(as_ofs) == 2 and as_ofs[0] < as_ofs[1], refreshed
    assert out.index("▶ a month later: uploaded shop_orders_2026-01.csv") < out.index(refreshed[1])
    # AND the Athena SQL queries print result tables with rows
    assert out.count("  ◆ ") == 5
    lines = [line.strip() for line in out.splitlines()]
    for first_column in ("channel", "experiment_id"):
        table_under(lines, first_column)
    # AND customer segments are shown at both as_of dates
    assert {row[0] for row in table_under(lines, "as_of")[1]} == set(as_ofs)
    # AND the moves table counts customers by segment before (rows) and after (columns), some moving
    header, moves = table_under(lines, f"segment on {as_ofs[0]}")
    after = [name.lower() for name in header[1:-1]]
    moved = sum(
        int(count)
        for row in moves
        if row[0] != "(new customer)"
        for name, count in zip(after, row[1:-1], strict=True)
        if name != row[0].lower()
    )
    assert moved > 0, moves
    assert any(row[0] == "(new customer)" for row in moves)
    [summary] = table_under(lines, "customers")[1]
    assert int(summary[-1]) == moved  # changed_segment agrees with the table
    assert f"{moved:,} of the" in out and "what you see" in out
    # AND it ends by writing a report per refreshed dataset and the ledger's, each page showing
    # the later as_of's segment moves (orders) or its own dataset
    reports = {Path(p).stem: Path(p) for p in re.findall(r"^  (\S+\.html) \(", out, re.MULTILINE)}
    assert set(reports) == {"orders", "experiments", "ad_performance", "ops"}, out[-2000:]
    assert all(path.parent == workdir / "reports" and path.stat().st_size > 10_000 for path in reports.values())
    orders_page = reports["orders"].read_text()
    assert as_ofs[1] in orders_page and as_ofs[0] in orders_page
    assert "processing_log" in reports["ops"].read_text()
    assert "Traceback" not in result.stderr
    assert out.rstrip().endswith("Done.")

    # WHEN the user brings the demo's lake back and queries it
    with Background(
        [LAKE, "up", "--port", str(port := free_port()), "--log", str(tmp_path / "up.log"), "--state-dir", str(kept)],
        cli_env(None),
    ) as up:
        up.wait_for("ready:", timeout=180)
        query = run_lake(
            "query",
            "--format",
            "csv",
            "SELECT customer_id, first_order_date, last_order_date, orders, order_days, total_amount, recency_days, "
            "tenure_days, as_of FROM customer_rfm ORDER BY as_of, customer_id",
            endpoint_url=f"http://127.0.0.1:{port}",
        )
        segments = run_lake(
            "query",
            "--format",
            "csv",
            "SELECT DISTINCT as_of FROM customer_segments",
            endpoint_url=f"http://127.0.0.1:{port}",
        )
    assert query.returncode == 0 and segments.returncode == 0, query.stderr + segments.stderr
    rfm = pd.read_csv(io.StringIO(query.stdout), dtype={"customer_id": str})

    # THEN both as_of snapshots are there, in customer_rfm and customer_segments
    assert sorted(rfm["as_of"].unique()) == as_ofs
    assert sorted(pd.read_csv(io.StringIO(segments.stdout))["as_of"]) == as_ofs
    # AND each equals RFM computed independently from the export files it covers
    first, second = sorted((workdir / "samples").glob("shop_orders_*.csv"))
    for as_of, files in ((as_ofs[0], [first]), (as_ofs[1], [first, second])):
        expected = independent_rfm(files)
        got = rfm[rfm["as_of"] == as_of].reset_index(drop=True)
        assert expected["as_of"].unique().tolist() == [as_of]
        assert got["customer_id"].tolist() == expected["customer_id"].tolist()
        for column in ("orders", "order_days", "recency_days", "tenure_days"):
            assert got[column].tolist() == expected[column].tolist(), column
        assert got["first_order_date"].tolist() == expected["first"].dt.date.astype(str).tolist()
        assert got["last_order_date"].tolist() == expected["last"].dt.date.astype(str).tolist()
        assert got["total_amount"].to_numpy() == pytest.approx(expected["total_amount"].to_numpy(), rel=1e-9)


def test_the_demo_refuses_a_state_dir_that_already_holds_a_lake(tmp_path: Path) -> None:
    # GIVEN a folder where a lake was saved
    from lake.standin.state import StateDir

    StateDir(tmp_path / "lake").save({"raw files": 1})
    # WHEN the demo is asked to keep its lake there
    result = run_lake("demo", "--workdir", str(tmp_path / "demo"), "--state-dir", str(tmp_path / "lake"))
    # THEN it refuses in one line, before starting anything, and the saved lake is untouched
    assert result.returncode != 0 and "Traceback" not in result.stderr
    [error] = result.stderr.strip().splitlines()
    assert "already holds a lake" in error and "empty --state-dir" in error
    assert "starting the local stand-in" not in result.stdout
    assert StateDir(tmp_path / "lake").header().holds == {"raw files": 1}  # type: ignore[union-attr]
