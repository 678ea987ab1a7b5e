"""Exploring the lake as a data person does, through the real console script and ``import lake``:
``lake try`` before uploading, ``lake describe``, ``lake query`` output conventions and SQL
mistakes, and the Python API, against the stand-in processed by the runner."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from lake.standin.runner import Runner
from lake.standin.server import StandIn, provision
from tests.conftest import Lake
from tests.e2e.cli import LAKE, cli_env
from tests.e2e.cli import lake as run_lake

pytestmark = pytest.mark.e2e

REGIONS = ("north", "south", "east")


def sales_rows(n: int = 240) -> list[dict[str, str]]:
    """A generic export as spreadsheets write it: money with symbols and separators, percentages."""
    rows = []
    for i in range(n):
        cents = 100_000 + i * 1_234
        rows.append(
            {
                "Order ID": f"S-{i:04d}",
                "Region": REGIONS[i % 3],
                "Amount": f"${cents // 100:,}.{cents % 100:02d}" if i % 7 else f"({cents // 100:,}.{cents % 100:02d})",
                "Discount": f"{(i % 20) / 2}%",
                "Day": f"2026-03-{1 + i % 28:02d}",
            }
        )
    return rows


def amount(row: dict[str, str]) -> float:
    text = row["Amount"]
    value = float(text.strip("$()").replace(",", ""))
    return -value if text.startswith("(") else value


def to_csv(rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


@pytest.fixture(scope="module")
def explored(moto_server: StandIn, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lake]:
    """A stand-in holding the sales export (dataset ``sales``, keyed by order id), processed."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_server.endpoint_url}/moto-api/reset", method="POST"))
    lake = Lake(provision(moto_server.endpoint_url, moto_server.topology))
    log = tmp_path_factory.mktemp("explore") / "worker.log"
    lake.put("settings/sales.json", b'{"key": ["Order ID"]}')
    with Runner(lake.endpoints, log_path=str(log)):
        lake.put("raw/sales/march.csv", to_csv(sales_rows()))
        events = lake.events(1, timeout=90)
    assert [e["detail"]["status"] for e in events] == ["succeeded"], events
    yield lake


# --- lake try ------------------------------------------------------------------------------------
def test_try_shows_types_a_sample_and_the_quarantine_without_a_lake(tmp_path: Path) -> None:
    # GIVEN an export with money, percentages and one amount that is not a number
    rows = sales_rows(50)
    rows[7]["Amount"] = "about $3"
    path = tmp_path / "Sales Export.csv"
    path.write_bytes(to_csv(rows))
    # WHEN it is tried with no stand-in anywhere
    result = run_lake("try", str(path))
    # THEN the tables it would write, typed, a sample, and the quarantined row with its reason; exit 0
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "dataset sales_export" in out and "nothing was uploaded" in out
    assert "table sales_export: 49 rows" in out
    assert "amount double" in out and "discount double" in out and "day date" in out
    assert "1234.56" not in out and "1000" in out  # the sample shows numbers, not "$1,000.00"
    assert "quarantine: 1 row" in out and "type_mismatch: 1" in out and "amount is not float64" in out
    # AND it says why it did not compare with a lake's tables, and what would make it
    assert "not compared with the existing tables: no lake named (start `lake up`" in out
    assert "the file would be accepted" in out


def test_try_exits_1_when_the_file_would_be_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    path.write_text("a,b\n" + "1,2\n" * 5 + "1,2,3,4\n" * 5)
    result = run_lake("try", str(path), "--dataset", "broken")
    assert result.returncode == 1
    assert "malformed_row: 5" in result.stdout
    assert "the file would be refused" in result.stdout and "tolerance" in result.stdout


def test_try_says_what_uploading_would_change_in_the_existing_table(explored: Lake, tmp_path: Path) -> None:
    # GIVEN a corrected export: a new column, 3 keys already in the table, and the same file name
    rows = [{**r, "Channel": "web"} for r in sales_rows(3)] + [
        {**r, "Order ID": f"N-{i}", "Channel": "shop"} for i, r in enumerate(sales_rows(2))
    ]
    path = tmp_path / "march.csv"
    path.write_bytes(to_csv(rows))
    result = run_lake("try", str(path), "--dataset", "sales", endpoint_url=explored.endpoints.endpoint_url)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "keyed by order_id" in out
    assert "new column channel (string)" in out
    assert "replaces the 240 rows an earlier upload of raw/sales/march.csv wrote" in out
    # AND a file whose amount is text where the table has numbers would fail, so exit 1
    other = tmp_path / "april.csv"
    other.write_text("Order ID,Region,Amount,Discount,Day\nS-0001,north,n/a yet,1%,2026-04-01\n" * 1)
    conflict = run_lake("try", str(other), "--dataset", "sales", endpoint_url=explored.endpoints.endpoint_url)
    assert conflict.returncode == 1, conflict.stdout
    assert "column amount holds string values in this file, but table sales_sources has it as double" in (
        conflict.stdout
    )
    assert "1 of its 1 keys (order_id) are already in the table" in conflict.stdout


def test_try_of_a_missing_file_or_a_folder_is_one_line(tmp_path: Path) -> None:
    for args, mention in (([str(tmp_path / "nope.csv")], "no such file"), ([str(tmp_path)], "is a folder")):
        result = run_lake("try", *args)
        assert result.returncode == 1
        assert result.stderr.count("\n") == 1 and mention in result.stderr, result.stderr


# --- lake describe ---------------------------------------------------------------------------------
def test_describe_shows_columns_partitioning_rows_sources_and_snapshots(explored: Lake) -> None:
    result = run_lake("describe", "sales", endpoint_url=explored.endpoints.endpoint_url)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("lake_curated.sales (view)")
    assert "lake_curated.sales_sources (iceberg table)" in out
    assert "partitioning: ingest_date" in out
    assert "rows: 240" in out
    assert "sources: 1 raw object" in out and "raw/sales/march.csv  240 rows" in out
    # AND the JSON form carries the typed columns and the snapshot ids to time-travel with
    described = json.loads(
        run_lake("describe", "sales_sources", "-o", "json", endpoint_url=explored.endpoints.endpoint_url).stdout
    )
    types = {c["name"]: c["type"] for c in described["columns"]}
    assert types["amount"] == "double" and types["day"] == "date" and types["order_id"] == "string"
    assert described["snapshots"] == len(described["latest_snapshots"]) >= 1
    assert described["latest_snapshots"][0]["source"] == "raw/sales/march.csv"


def test_describe_of_a_missing_table_names_the_near_ones(explored: Lake) -> None:
    result = run_lake("describe", "sale", endpoint_url=explored.endpoints.endpoint_url)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "table lake_curated.sale does not exist; did you mean lake_curated.sales" in result.stderr


# --- lake query ------------------------------------------------------------------------------------
def test_money_sums_by_region_equal_the_input(explored: Lake) -> None:
    result = run_lake(
        "query", "SELECT region, sum(amount) AS total FROM sales GROUP BY 1 ORDER BY 1", "-o", "json",
        endpoint_url=explored.endpoints.endpoint_url,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    totals = {r["region"]: r["total"] for r in map(json.loads, result.stdout.splitlines())}
    expected = {region: sum(amount(r) for r in sales_rows() if r["Region"] == region) for region in REGIONS}
    assert totals == pytest.approx(expected)


def run_on_a_terminal(*args: str, env: dict[str, str]) -> tuple[str, str]:
    """``lake ARGS`` with stdout on a pseudo-terminal, as in a user's shell; (stdout, stderr)."""
    primary, secondary = pty.openpty()
    process = subprocess.Popen([LAKE, *args], env=env, stdout=secondary, stderr=subprocess.PIPE, text=True)
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the terminal closes when the command ends
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert process.stderr is not None
    stderr = process.stderr.read()
    assert process.wait(60) == 0, stderr
    os.close(primary)
    return b"".join(chunks).decode().replace("\r\n", "\n"), stderr


def test_a_terminal_shows_the_first_rows_and_says_how_many_were_left_out(explored: Lake) -> None:
    env = cli_env(explored.endpoints.endpoint_url)
    out, err = run_on_a_terminal("query", "SELECT * FROM sales ORDER BY order_id", env=env)
    assert len(out.strip().splitlines()) == 2 + 100  # header, rule, 100 rows
    assert "100 of 240 rows shown, 140 left out; --limit N or --all for more" in err
    out, err = run_on_a_terminal("query", "SELECT order_id FROM sales", "--all", env=env)
    assert len(out.strip().splitlines()) == 2 + 240 and "(240 rows)" in err
    # AND a pipe gets every row, unless --limit says otherwise
    piped = run_lake("query", "SELECT order_id FROM sales", "-o", "csv", endpoint_url=explored.endpoints.endpoint_url)
    assert len(piped.stdout.splitlines()) == 1 + 240 and piped.stderr == ""
    limited = run_lake(
        "query", "SELECT order_id FROM sales", "--format", "csv", "--limit", "5",
        endpoint_url=explored.endpoints.endpoint_url,
    )  # fmt: skip
    assert len(limited.stdout.splitlines()) == 1 + 5 and "235 left out" in limited.stderr


def test_parquet_and_json_output_keep_the_types(explored: Lake, tmp_path: Path) -> None:
    sql = "SELECT order_id, amount, discount, day FROM sales ORDER BY order_id LIMIT 3"
    out = tmp_path / "result.parquet"
    result = run_lake("query", sql, "-o", "parquet", "--out", str(out), endpoint_url=explored.endpoints.endpoint_url)
    assert result.returncode == 0, result.stderr
    assert "wrote 3 rows to" in result.stderr
    table = pq.read_table(out)
    assert [str(t) for t in table.schema.types] == ["string", "double", "double", "date32[day]"]
    first = sales_rows()[0]
    assert table.to_pylist()[0]["amount"] == amount(first)
    [row, *_] = map(
        json.loads,
        run_lake("query", sql, "-o", "json", endpoint_url=explored.endpoints.endpoint_url).stdout.splitlines(),
    )
    assert row == {"order_id": "S-0000", "amount": amount(first), "discount": 0.0, "day": "2026-03-01"}


@pytest.mark.parametrize(
    ("sql", "mentions"),
    [
        (
            "SELECT regoin, count(*) FROM sales GROUP BY 1",
            ("column regoin (at line 1, column 8)", "did you mean region"),
        ),
        ("SELECT sum(region) FROM sales", ("sum(varchar)", "does not take text", "lake describe")),
        ("SELECT * FROM sales WHERE", ("line 1, column 21", "WHERE needs a condition")),
        ("SELECT * FROM sales WHERE amount > -", ("'-' needs a number",)),
        ("SELEC region FROM sales", ("line 1, column 1", "did you mean SELECT")),
        ("SELECT * FROM sale", ("did you mean lake_curated.sales",)),
    ],
)
def test_sql_mistakes_are_one_line_pointing_at_the_place(explored: Lake, sql: str, mentions: tuple[str, ...]) -> None:
    result = run_lake("query", sql, endpoint_url=explored.endpoints.endpoint_url)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("lake: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Required keyword" not in result.stderr and "Binder Error" not in result.stderr
    for mention in mentions:
        assert mention in result.stderr


# --- import lake -------------------------------------------------------------------------------------
def python(code: str, endpoint_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=cli_env(endpoint_url), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_python_reads_tables_and_queries_into_pandas_with_the_catalog_types(explored: Lake) -> None:
    result = python(
        """
        import json, sys
        import lake
        heavy = sorted(m for m in ("pandas", "pyarrow", "boto3", "duckdb") if m in sys.modules)
        sales = lake.read("sales")
        totals = lake.query("SELECT region, sum(amount) AS total FROM sales GROUP BY 1")
        arrow = lake.read("lake_curated.sales_sources", arrow=True)
        print(json.dumps({
            "heavy_on_import": heavy,
            "rows": len(sales),
            "dtypes": {c: str(t) for c, t in sales.dtypes.items()},
            "totals": dict(zip(totals["region"], totals["total"].astype(float))),
            "arrow": type(arrow).__name__,
        }))
        """,
        explored.endpoints.endpoint_url,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["heavy_on_import"] == []
    assert found["rows"] == 240 and found["arrow"] == "Table"
    assert found["dtypes"]["amount"] == "double[pyarrow]"
    assert found["dtypes"]["day"] == "date32[day][pyarrow]"
    expected = {region: sum(amount(r) for r in sales_rows() if r["Region"] == region) for region in REGIONS}
    assert found["totals"] == pytest.approx(expected)


def test_python_read_of_a_missing_table_raises_the_commands_message(explored: Lake) -> None:
    result = python(
        """
        import lake
        try:
            lake.read("sale")
        except lake.LakeError as exc:
            print(exc)
        """,
        explored.endpoints.endpoint_url,
    )
    assert result.returncode == 0, result.stderr
    cli = run_lake("describe", "sale", endpoint_url=explored.endpoints.endpoint_url)
    assert result.stdout.strip() == cli.stderr.strip().removeprefix("lake: ")
