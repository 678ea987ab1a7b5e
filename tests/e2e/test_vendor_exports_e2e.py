"""One export of each tool, dropped as the tool downloads it, through the real `lake put`, the runner's
worker processes and `lake query`: Google Ads as "Excel CSV" (UTF-16, tabs), TikTok as .xlsx, the
others as CSV with their titles and totals. The lake's sums are the exports' own."""

from __future__ import annotations

import csv
import io
import math
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from lake.standin.runner import Runner
from lake.standin.server import Endpoints, StandIn, provision
from tests import export_fixtures as fx
from tests.e2e.cli import lake as run_lake
from tests.exports import excel_csv, xlsx

pytestmark = pytest.mark.e2e


def downloaded(export: fx.Export, folder: Path) -> Path:
    """The file as the tool writes it."""
    if export is fx.GOOGLE_ADS:  # "Excel CSV": UTF-16 LE with a BOM, tab-separated
        path = folder / f"{export.name}.csv"
        path.write_bytes(excel_csv(replace(export, delimiter="\t").csv()))
    elif export is fx.TIKTOK_ADS:  # TikTok's "Export" as a workbook
        path = folder / f"{export.name}.xlsx"
        path.write_bytes(xlsx(export.header, export.rows, sheets=("Campaign", "Notes")))
    else:
        path = folder / f"{export.name}.csv"
        path.write_text(export.csv(), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def landed(moto_server: StandIn, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoints]:
    """A stand-in where every export was put with `lake put --wait`, processed by the runner."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_server.endpoint_url}/moto-api/reset", method="POST"))
    endpoints = provision(moto_server.endpoint_url, moto_server.topology)
    folder = tmp_path_factory.mktemp("exports")
    with Runner(endpoints, log_path=str(folder / "worker.log")):
        for export in fx.ALL:
            path = downloaded(export, folder)
            result = run_lake(
                "put",
                str(path),
                "--dataset",
                export.dataset,
                "--wait",
                endpoint_url=endpoints.endpoint_url,
                timeout=300,
            )
            assert result.returncode == 0, f"{export.name}: {result.stdout}\n{result.stderr}"
    yield endpoints


def _query(endpoints: Endpoints, sql: str) -> list[dict[str, str]]:
    result = run_lake("query", sql, "--format", "csv", endpoint_url=endpoints.endpoint_url)
    assert result.returncode == 0, result.stderr
    return list(csv.DictReader(io.StringIO(result.stdout)))


@pytest.mark.parametrize("export", fx.ALL, ids=lambda e: e.name)
def test_each_tools_export_sums_in_the_lake_as_in_the_export(export: fx.Export, landed: Endpoints) -> None:
    sums = ", ".join(f"sum({column}) AS {column}" for column in export.sums)
    key = f"raw/{export.dataset}/{downloaded_name(export)}"
    [row] = _query(landed, f"SELECT count(*) AS n, {sums} FROM {export.dataset}_sources WHERE source_key = '{key}'")
    assert int(row["n"]) == export.curated_rows
    for column, expected in export.sums.items():
        assert math.isclose(float(row[column]), expected, rel_tol=1e-9), (column, row)


def downloaded_name(export: fx.Export) -> str:
    return f"{export.name}.xlsx" if export is fx.TIKTOK_ADS else f"{export.name}.csv"
