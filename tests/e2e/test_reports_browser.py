"""Each report opened in a real browser: headless Chromium (Debian's package) driven by Playwright.

GIVEN the reports of fixed refreshed tables (orders, experiments, ad_performance, a generic dataset,
the processing ledger) written to disk WHEN Chromium opens each THEN nothing is fetched, nothing
logs an error, no dialog opens, every chart has drawn marks, no legend covers a drawn mark, the
``<script>`` names read as text, and every built-in dataset's report shows the profile its own
pipeline wrote; a full-page screenshot of each is kept under the test's tmp_path.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from reports import build_report
from tests import reports_fixtures as fx

pytestmark = pytest.mark.browser

#: Generous: a loaded 2-core machine starts Chromium slowly; every wait is on observed state.
TIMEOUT_MS = 120_000


def _chromium() -> str:
    """Debian's chromium, installed with apt-get when missing (the tests run as root)."""
    found = shutil.which("chromium")
    if found:
        return found
    attempts = (["apt-get", "install", "-y", "--no-install-recommends", "chromium"], ["apt-get", "update"])
    for command in (attempts[0], attempts[1], attempts[0]):
        try:
            subprocess.run(command, check=False, capture_output=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired):
            break
        found = shutil.which("chromium")
        if found:
            return found
    pytest.skip("Debian's chromium is not installed and `apt-get install -y chromium` could not install it")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is a dev dependency: run `make install` to get it"
    )
    executable = _chromium()
    with sync_api.sync_playwright() as playwright:
        # Playwright's own browser download cannot reach its CDN here: Debian's chromium instead.
        chromium = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"], timeout=TIMEOUT_MS)
        try:
            yield chromium
        finally:
            chromium.close()


#: Built-in datasets' profiles, tables and quarantine are what their pipelines write for a file.
REPORTS: dict[str, dict[str, pa.Table]] = {
    "orders": {**fx.orders_tables(), **fx.built_in_tables("orders")},
    "experiments": {**fx.experiment_tables(), **fx.built_in_tables("experiments")},
    "ad_performance": {**fx.ads_tables(), **fx.built_in_tables("ad_performance")},
    "web_sessions": fx.generic_tables(),
    "ops": fx.ledger_tables(),
}

#: Per chart: its label, how many ``marks-`` elements it holds and how many have a non-empty box.
_CHART_MARKS = """
() => Array.from(document.querySelectorAll('svg.chart')).map(svg => {
  const marks = Array.from(svg.querySelectorAll('[id^="marks"]'));
  const drawn = marks.filter(m => { const b = m.getBoundingClientRect(); return b.width > 0 || b.height > 0; });
  return {label: svg.getAttribute('aria-label'), marks: marks.length, drawn: drawn.length};
})
"""

#: Per chart: every legend box that overlaps the box of a drawn mark (a bar, a point, a line's
#: extent), as the browser lays them out. Boxes that merely touch do not count.
_LEGEND_OVERLAPS = """
() => Array.from(document.querySelectorAll('svg.chart')).flatMap(svg => {
  const box = e => e.getBoundingClientRect();
  const legends = Array.from(svg.querySelectorAll('[id^="legend"]')).map(box);
  const marks = Array.from(svg.querySelectorAll('[id^="marks"]'))
    .map(m => ({id: m.id, b: box(m)})).filter(m => m.b.width > 0 || m.b.height > 0);
  const cut = (a, b) =>
    a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
  return legends.flatMap(l => marks.filter(m => cut(l, m.b))
    .map(m => ({chart: svg.getAttribute('aria-label'), mark: m.id})));
})
"""
#: Charts that have a legend, per report: the overlap check must have something to check.
_WITH_LEGEND = (
    "() => Array.from(document.querySelectorAll('svg.chart')).filter(s => s.querySelector('[id^=\"legend\"]')).length"
)
BUILT_IN = ("orders", "experiments", "ad_performance")


@pytest.mark.parametrize("dataset", sorted(REPORTS))
def test_report_in_chromium(browser: Any, dataset: str, tmp_path: Path) -> None:
    query = fx.ArrowQuery(REPORTS[dataset])
    report = build_report(dataset, query, query.names)
    path = tmp_path / f"{dataset}.html"
    path.write_text(report.html, encoding="utf-8")
    url = path.as_uri()

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    requests: list[str] = []
    failed: list[str] = []
    dialogs: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.on("requestfailed", lambda r: failed.append(r.url))

    def dismiss(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    try:
        page.goto(url, wait_until="load", timeout=TIMEOUT_MS)
        page.wait_for_function("document.readyState === 'complete'", timeout=TIMEOUT_MS)
        charts = page.evaluate(_CHART_MARKS)
        overlaps = page.evaluate(_LEGEND_OVERLAPS)
        with_legend = page.evaluate(_WITH_LEGEND)
        text = page.inner_text("body")
        scripts = page.evaluate("document.querySelectorAll('script').length")
        shot = tmp_path / f"{dataset}.png"
        page.screenshot(path=str(shot), full_page=True, timeout=TIMEOUT_MS)
    finally:
        page.close()
    print(f"screenshot of the {dataset} report: {shot}")

    assert errors == [], f"console errors in the {dataset} report: {errors}"
    assert failed == [], f"failed requests: {failed}"
    assert requests == [url], f"the page fetched more than itself: {requests}"
    assert dialogs == [], f"a dialog opened (a name ran as a script?): {dialogs}"
    assert scripts == 0
    assert charts, f"the {dataset} report has no chart"
    empty = [c["label"] for c in charts if c["drawn"] == 0]
    assert empty == [], f"charts without drawn marks: {empty}"
    assert with_legend > 0, f"the {dataset} report has no chart with a legend to check"
    assert overlaps == [], f"legends drawn over data: {overlaps}"
    if dataset in BUILT_IN:
        assert "distinct (largest per file)" in text, f"the {dataset} report shows no profile"
        assert "no dataset_profiles table" not in text
    if dataset != "orders":
        assert fx.SCRIPT in text, "the <script> name is not shown as text"
    assert shot.stat().st_size > 10_000


def test_the_overlap_check_sees_a_legend_drawn_over_bars(browser: Any, tmp_path: Path) -> None:
    # GIVEN a chart whose legend sits in the middle of five equal bars (the old scores chart's fault)
    from reports import charts, page

    def draw(figure: Any) -> None:
        ax = figure.subplots()
        charts.mark(ax.bar(range(1, 6), [947] * 5, 0.8, label="recency"), "equal")
        ax.legend(loc="center")

    path = tmp_path / "overlap.html"
    path.write_text(page.render("overlap", "", [], []).replace("</body>", charts.svg(draw, slug="x") + "</body>"))
    view = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        view.goto(path.as_uri(), wait_until="load", timeout=TIMEOUT_MS)
        overlaps = view.evaluate(_LEGEND_OVERLAPS)
    finally:
        view.close()
    # THEN the check the reports pass names the bars it covers
    assert {o["mark"] for o in overlaps} & {f"marks-equal-{i}" for i in range(5)}
