"""The rendered leaderboard page in a real headless browser (Debian's chromium driven by Playwright).

Checks what a reader sees: every model in the table, sorting by clicking a header, plots that
actually render, and a console free of errors. Skipped only when chromium or Playwright is absent
(CI installs both: .ci/browser.sh and the `test` extra).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from chrombench.leaderboard import render as lb

pytestmark = pytest.mark.browser

CHROMIUM = next((p for p in (os.environ.get("CHROMBENCH_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"))
                 if p and Path(p).is_file()), None)
if CHROMIUM is None:
    pytest.skip("chromium is not installed (apt-get install chromium chromium-driver, or run .ci/browser.sh)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
MODELS = {"attentivechrome": 0.83, "lstm": 0.81, "deepchrome": 0.80, "xgboost": 0.78, "logistic-regression": 0.74}
TASKS = ["E003", "E004", "E005", "E112", "E116", "E123"]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A persistent context on a new, empty profile (Playwright's way to pass --user-data-dir)."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True,
                                                       args=FLAGS, viewport={"width": 1280, "height": 900})
        yield context
        context.close()


def open_page(browser, path: Path):
    """Open ``path`` and collect console errors and uncaught page errors."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.goto(path.resolve().as_uri())
    page.wait_for_load_state("load")
    return page, errors


@pytest.fixture
def rendered(tmp_path, records_factory, records_writer):
    rng = np.random.default_rng(0)
    shift = {t: rng.normal(0, 0.03) for t in TASKS}
    aurocs = {m: {t: [b + shift[t] + rng.normal(0, 0.006) for _ in range(3)] for t in TASKS} for m, b in MODELS.items()}
    records_writer(tmp_path / "out", records_factory(aurocs, oracle={t: 0.92 + shift[t] for t in TASKS}))
    return lb.render([tmp_path / "out"], tmp_path / "board", render_command="chrombench leaderboard render")


def column_values(page, table, header: str) -> list[str]:
    """The data-value (or text) of one column, top to bottom, read from the live DOM."""
    return table.evaluate(
        """(t, header) => {
             const i = Array.from(t.tHead.rows[0].cells).findIndex(c => c.textContent.trim() === header);
             return Array.from(t.tBodies[0].rows).map(r => r.cells[i].dataset.value ?? r.cells[i].textContent.trim());
           }""", header)


def test_table_sorting_plots_and_console(browser, rendered, tmp_path):
    page, errors = open_page(browser, rendered.html)
    table = page.locator("section.results table.sortable").first
    models = column_values(page, table, "model")
    assert sorted(models) == sorted(MODELS)  # every model is in the table
    assert page.locator("#reproduce").is_visible()

    before = [float(x) for x in column_values(page, table, "mean AUROC")]
    assert before == sorted(before, reverse=True)  # best first as rendered
    table.locator("thead th", has_text="mean AUROC").click()
    after = [float(x) for x in column_values(page, table, "mean AUROC")]
    assert after == sorted(before) and after != before
    assert table.locator("thead th", has_text="mean AUROC").get_attribute("aria-sort") == "ascending"
    table.locator("thead th", has_text="mean AUROC").click()
    assert [float(x) for x in column_values(page, table, "mean AUROC")] == before
    table.locator("thead th", has_text="model").first.click()
    assert column_values(page, table, "model") == sorted(MODELS)

    captions = [c.strip() for c in page.locator("figure.plot figcaption").all_inner_texts()]
    # heatmap, distributions, critical-difference diagram, and (DeepChrome is in the table) the
    # calibration scatter: its per-task AUROC here against the published one on the real data
    assert [c.split(" ")[0] for c in captions] == ["Test", "Per-model", "Critical-difference", "Calibration,"]
    assert "published DeepChrome AUROC" in captions[3]
    plots = page.locator("figure.plot svg")
    assert plots.count() == len(captions)
    for i in range(plots.count()):
        box = plots.nth(i).bounding_box()
        assert box and box["width"] > 100 and box["height"] > 50
    # the heatmap's cells are a raster embedded in its SVG: it must have decoded
    assert page.evaluate("""() => Array.from(document.querySelectorAll('figure.plot svg image'))
                                     .every(im => im.getBBox().width > 0)""")
    images = page.locator("img")
    for i in range(images.count()):
        assert images.nth(i).evaluate("im => im.complete && im.naturalWidth > 0")

    page.locator("details summary").first.click()  # the per-task table opens
    assert page.locator("details table").first.is_visible()
    page.screenshot(path=str(tmp_path / "leaderboard.png"), full_page=True)
    if os.environ.get("CHROMBENCH_SCREENSHOT"):  # keep a copy to look at (CI artefact, local check)
        shutil.copyfile(tmp_path / "leaderboard.png", os.environ["CHROMBENCH_SCREENSHOT"])
    assert errors == []


def test_empty_page_loads_cleanly(browser, tmp_path):
    r = lb.render([tmp_path / "no-results"], tmp_path / "board")
    page, errors = open_page(browser, r.html)
    assert page.locator("#no-results").is_visible()
    assert "chrombench run" in page.locator("#no-results").inner_text()
    page.locator("#reported details summary").click()  # the published per-task table still sorts
    table = page.locator("#reported table.sortable")
    first = table.locator("tbody tr").first.inner_text()
    table.locator("thead th", has_text="DeepChrome AUROC").click()
    values = [float(x) for x in column_values(page, table, "DeepChrome AUROC")]
    assert values == sorted(values) and table.locator("tbody tr").first.inner_text() != first
    assert errors == []
