"""docs/python.md runs as written: its Python blocks, cell after cell in one namespace as a notebook
runs them, against a stand-in holding the two example files the page names; its error examples give
the errors shown. Only the block marked ``<!-- not run: ... -->`` (a deployed stack) is left out."""

from __future__ import annotations

import os
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import lake as lake_api
import topology
from lake.standin.runner import Runner
from lake.standin.server import Endpoints, StandIn, provision
from tests.conftest import Lake

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "python.md"
_BLOCK = re.compile(r"(<!-- not run: [^>]*-->\n)?```python\n(.*?)```", re.DOTALL)


def blocks() -> list[tuple[bool, str]]:
    """Every Python block of the page in order: (whether it runs, its code)."""
    return [(not m.group(1), m.group(2)) for m in _BLOCK.finditer(PAGE.read_text())]


@pytest.fixture(scope="module")
def lake_with_examples(moto_server: StandIn, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoints]:
    """A stand-in where examples/sales.csv and examples/orders.csv landed, as the page says to."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_server.endpoint_url}/moto-api/reset", method="POST"))
    lake = Lake(provision(moto_server.endpoint_url, moto_server.topology))
    log = tmp_path_factory.mktemp("docs") / "worker.log"
    with Runner(lake.endpoints, log_path=str(log)):
        for dataset, name in (("sales", "sales.csv"), ("orders", "orders.csv")):
            lake.put(f"{topology.RAW_PREFIX}{dataset}/{name}", (ROOT / "examples" / name).read_bytes())
        events = lake.events(2, timeout=180, where=lambda e: e["detail-type"].startswith("Dataset Process"))
    assert [e["detail"]["status"] for e in events] == ["succeeded", "succeeded"], events
    yield lake.endpoints


def test_the_python_page_runs_as_written(lake_with_examples: Endpoints, monkeypatch: pytest.MonkeyPatch) -> None:
    url = lake_with_examples.endpoint_url
    monkeypatch.setenv("LAKE_ENDPOINT_URL", url)
    namespace: dict[str, object] = {}
    ran = 0
    for runs, code in blocks():
        if not runs or code.lstrip().startswith(">>>"):
            continue
        # The page points at the stand-in's default port; this one listens elsewhere.
        cell = code.replace(f"http://127.0.0.1:{topology.LOCAL_DEFAULT_PORT}", url)
        exec(compile(cell, f"{PAGE.name} block {ran + 1}", "exec"), namespace)
        os.environ["LAKE_ENDPOINT_URL"] = url  # a cell sets it to the default port
        ran += 1
    assert ran >= 3
    by_region = namespace["by_region"]
    assert list(by_region.columns) == ["region", "orders", "revenue", "avg_discount"]  # type: ignore[attr-defined]
    assert len(by_region) == 4  # type: ignore[arg-type]
    quarantined = lake_api.read("lake_quarantine.sales", endpoint_url=url)
    assert len(quarantined) == 1


def test_the_pages_error_examples_give_the_errors_shown(
    lake_with_examples: Endpoints, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAKE_ENDPOINT_URL", lake_with_examples.endpoint_url)
    [errors] = [code for _, code in blocks() if code.lstrip().startswith(">>>")]
    lines = errors.strip().splitlines()
    pairs = [(lines[i].removeprefix(">>> "), lines[i + 1]) for i in range(0, len(lines), 2)]
    for statement, shown in pairs:
        with pytest.raises(lake_api.LakeError) as raised:
            eval(statement, {"lake": lake_api})
        assert str(raised.value) == shown.removeprefix("LakeError: ")
