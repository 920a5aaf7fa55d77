"""The report in a real browser (headless Chromium through Playwright): it loads offline with no
console errors and no network requests, the charts draw, tabs switch charts, tables sort and filter.
Screenshots are saved under results/screenshots/ for the reviewer.

Chromium is Debian's ``chromium`` package, which ``./run`` installs when it is missing. Without it
the test is skipped, except in CI (CI=true), where a missing browser is a failure.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from xentcheck import stability
from xentcheck.checks import Judge
from xentcheck.expectations import Registry

from .fake_adapter import HONEST, FakeAdapter
from .test_history import _versions

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "results" / "screenshots"


def _chromium() -> str:
    exe = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        exe = None
    if exe is None:
        msg = "headless Chromium or playwright is missing (./run installs both: apt chromium, pip playwright)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return exe


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """A report of two versions of the fake framework, with stability sweeps, built by the CLI."""
    old, new = _versions()
    binding = HONEST.bindings()[0]
    for doc, adapter in ((old, HONEST), (new, FakeAdapter("fake", shift=False))):
        doc["stability"] = [
            Judge(Registry([]), {}).sweep(adapter, binding, stability.BY_NAME["logit_magnitude"], dt).to_json()
            for dt in ("float32", "float64")
        ]
    d = tmp_path_factory.mktemp("report")
    import json

    paths = []
    for name, doc in (("old.json", old), ("new.json", new)):
        (d / name).write_text(json.dumps(doc, allow_nan=False))
        paths.append(str(d / name))
    out = d / "report.html"
    r = subprocess.run(
        [sys.executable, "-m", "reports", "build", *paths, "-o", str(out)], cwd=ROOT, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def page(report):
    exe = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.problems = []
        pg.on("console", lambda m: m.type == "error" and pg.problems.append(f"console: {m.text}"))
        pg.on("pageerror", lambda e: pg.problems.append(f"page error: {e}"))
        pg.on("request", lambda r: r.url.startswith("file:") or pg.problems.append(f"request: {r.url}"))
        pg.goto(report.as_uri())
        pg.wait_for_function("window.xentcheckCharts && window.xentcheckCharts.drawn > 0", timeout=30000)
        yield pg
        browser.close()


def test_loads_offline_without_console_errors(page):
    assert page.title() == "xentcheck report"
    assert page.problems == []


def test_the_charts_draw_and_tabs_switch_them(page):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "report-top.png"))
    inked = page.evaluate("""() => Array.from(document.querySelectorAll('.uplot canvas')).map(c => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; })""")
    assert inked and min(inked) > 1000  # each drawn canvas has lines on it, not just a frame
    buttons = page.locator('.tabs[data-group="stability-logit_magnitude"] button')
    assert buttons.count() == 4  # float32 and float64, loss and gradient
    before = page.evaluate("window.xentcheckCharts.drawn")
    buttons.nth(3).click()
    assert page.evaluate("window.xentcheckCharts.drawn") == before + 1
    assert "on" in buttons.nth(3).get_attribute("class")
    buttons.nth(0).click()
    chart = page.locator("#group-stability-logit_magnitude")
    chart.scroll_into_view_if_needed()
    chart.screenshot(path=str(SHOTS / "stability-chart.png"))
    legend = page.locator("#group-stability-logit_magnitude .u-legend .u-series").nth(1)
    legend.click()  # clicking a legend entry hides that series
    assert "u-off" in legend.get_attribute("class")
    assert page.problems == []


def test_tables_sort_and_filter(page):
    table = page.locator("#history ~ table.sortable").first
    header = table.locator("thead th").first
    ids = lambda: [t.strip() for t in table.locator("tbody tr td:first-child").all_inner_texts()]  # noqa: E731
    header.click()
    assert ids() == sorted(ids()) and header.get_attribute("aria-sort") == "ascending"
    header.click()
    assert ids() == sorted(ids(), reverse=True) and header.get_attribute("aria-sort") == "descending"
    filt = page.locator("#history ~ input.filter").first
    filt.fill("grad")
    visible = [r for r in table.locator("tbody tr").all() if r.is_visible()]
    assert visible and all("grad" in r.inner_text() for r in visible) and len(visible) < len(ids())
    page.locator("#changes").scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "report-changes.png"))
    assert page.problems == []


def test_every_section_unpacks_and_the_overview_filters_the_cards(page):
    page.wait_for_function("window.xentcheckReport.loaded === true", timeout=30000)
    assert page.locator("div.lazy").count() == 0 or all(  # what is left waits for its <details> to open
        d.get_attribute("data-when") == "open" for d in page.locator("div.lazy").all()
    )
    for section in ("environment", "summary", "capabilities", "audit"):
        assert page.locator(f"#{section}").count() == 1
    cell = page.locator("#overview a[data-family]").first
    if cell.count():
        family, kind = cell.get_attribute("data-family"), cell.get_attribute("data-kind")
        cell.click()
        shown = [c for c in page.locator("div.card").all() if c.is_visible()]
        assert shown and len(shown) == int(cell.inner_text())
        assert all(
            family in c.get_attribute("data-families").split("|") and c.get_attribute("data-kind") == kind
            for c in shown
        )
        page.locator("#card-filter-clear").click()
        assert all(c.is_visible() for c in page.locator("div.card").all())
    details = page.locator("#coverage ~ details").first
    details.locator("summary").click()
    page.wait_for_function("document.querySelector('#coverage ~ details table') !== null", timeout=30000)
    assert page.problems == []


def test_time_to_first_render(page, report, benchmark):
    """Time from navigation to the verdict and overview drawn, as a benchmark (no threshold: timings
    are the lead's to judge on a quiet machine). XENTCHECK_BENCH_REPORT=path times another report,
    e.g. a default run's."""
    target = Path(os.environ.get("XENTCHECK_BENCH_REPORT") or report).resolve()
    pg = page.context.browser.new_page(viewport={"width": 1400, "height": 1000})

    def first_render() -> float:
        pg.goto(target.as_uri(), wait_until="commit")
        pg.wait_for_selector("#verdict", state="visible")
        return pg.evaluate("window.xentcheckReport.firstRender")

    in_page_ms = benchmark.pedantic(first_render, rounds=5, iterations=1, warmup_rounds=1)
    benchmark.extra_info["first_render_in_page_ms"] = in_page_ms
    benchmark.extra_info["report_bytes"] = target.stat().st_size
    pg.wait_for_function("window.xentcheckReport.loaded === true", timeout=60000)
    pg.close()
