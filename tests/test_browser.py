"""The demo's report.html and map.html in a real browser: headless Chromium from Debian, via selenium.

Opened from disk with no network: the plot must render (an SVG plot with one legend entry per class),
hovering a point must show its tooltip with the QA, the colour buttons must work, and the console must
hold no errors. Screenshots are kept under ``test-artifacts/`` for a person to look at.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="headless browser test needs Debian's chromium and chromium-driver (apt-get install -y chromium "
           "chromium-driver)")]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    webdriver = pytest.importorskip("selenium.webdriver",
                                    reason="the browser test needs selenium (pip install selenium)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}", "--window-size=1400,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(120)
    yield driver
    driver.quit()


def _open(driver, path: Path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(path.resolve().as_uri())
    WebDriverWait(driver, 60).until(ec.presence_of_element_located((By.CSS_SELECTOR, ".js-plotly-plot .main-svg")))
    driver.get_log("browser")  # start the console check from here
    return By


def _errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def _check_map(driver, plot_css: str, classes: list[str], shot: Path) -> None:
    """Render, legend, hover and colour buttons of one plotly value map."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    plot = driver.find_element(By.CSS_SELECTOR, plot_css)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", plot)
    assert plot.find_elements(By.CSS_SELECTOR, "svg.main-svg"), "no SVG rendered"
    legend = [e.get_attribute("textContent")
              for e in plot.find_elements(By.CSS_SELECTOR, "g.legend g.traces text.legendtext")]
    for name in classes:
        assert legend.count(name) == 1, f"legend entry for {name}: {legend}"
    points = plot.find_elements(By.CSS_SELECTOR, ".scatterlayer .trace .points path")
    assert len(points) >= len(classes) * 10
    hovered = None
    for point in points[:: max(1, len(points) // 15)]:  # some points sit under others: try a few
        ActionChains(driver).move_to_element(point).pause(0.3).perform()
        tips = plot.find_elements(By.CSS_SELECTOR, ".hoverlayer .hovertext")
        if tips and "Q:" in tips[0].get_attribute("textContent"):
            hovered = tips[0].get_attribute("textContent")
            break
    assert hovered, "hovering a point showed no tooltip"
    assert "A:" in hovered and any(name.split("$")[0] in hovered for name in classes)
    ARTIFACTS.mkdir(exist_ok=True)
    driver.execute_script("Plotly.Fx.unhover(arguments[0])", plot)
    driver.save_screenshot(str(shot))
    regions = _colour_regions(driver, plot, shot.with_name(shot.stem + "-plot.png"), classes)
    assert len(regions) > 1, f"the map shows one colour region only: {regions}"
    # switch colouring to language and back: both buttons restyle without errors
    buttons = plot.find_elements(By.CSS_SELECTOR, ".updatemenu-button")
    assert len(buttons) == 2
    def fills() -> set[str]:  # the colour of each class trace's first point
        styles = driver.execute_script(
            "return Array.from(arguments[0].querySelectorAll('.scatterlayer .trace')).map("
            "t => { const p = t.querySelector('.points path'); return p ? p.style.fill : null; })", plot)
        return {s for s in styles[: len(classes)] if s}

    n_models = len({c.split("$")[0] for c in classes})
    n_langs = len({c.split("$")[-1] for c in classes})
    assert len(fills()) == n_models  # coloured by model at first
    ActionChains(driver).move_to_element(buttons[1]).click().pause(0.5).perform()
    assert len(fills()) == n_langs  # by language, and the legend lists languages, not classes
    legend = [e.get_attribute("textContent")
              for e in plot.find_elements(By.CSS_SELECTOR, "g.legend g.traces text.legendtext")]
    langs = {c.split("$")[-1] for c in classes}
    assert langs <= set(legend) and not set(classes) & set(legend), legend
    ActionChains(driver).move_to_element(buttons[0]).click().pause(0.5).perform()
    assert len(fills()) == n_models


def _colour_regions(driver, plot, shot: Path, classes: list[str]) -> set[str]:
    """Models whose colour rules some part of the plot, in a screenshot of the plot element.

    The plot area is cut into a 6 x 6 grid; a model rules a cell when at least 12 of the cell's pixels have
    its colour (as drawn: at opacity 0.6 on white) and they are at least 60% of the cell's coloured pixels.
    A map that clumps by question, where the last-drawn colour covers the rest, has one region.
    """
    from PIL import Image

    from univar.viz import colours

    driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", plot)  # 720 px: fits in 1000
    plot.screenshot(str(shot))  # the element alone
    left, top, width, height, ratio = (float(v) for v in driver.execute_script(
        "const p = arguments[0].getBoundingClientRect();"
        "const r = arguments[0].querySelector('.nsewdrag').getBoundingClientRect();"
        "return [r.left - p.left, r.top - p.top, r.width, r.height, window.devicePixelRatio];", plot))
    image = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float64)
    box = image[int(top * ratio): int((top + height) * ratio), int(left * ratio): int((left + width) * ratio)]
    palette = colours([c.split("$")[0] for c in classes])
    drawn = {m: 0.6 * np.array([int(h[i:i + 2], 16) for i in (1, 3, 5)]) + 0.4 * 255 for m, h in palette.items()}
    names = list(drawn)
    dist = np.stack([np.linalg.norm(box - drawn[m], axis=-1) for m in names])  # models x H x W
    nearest, close = dist.argmin(0), dist.min(0) < 30
    ruled = set()
    for r in np.array_split(np.arange(box.shape[0]), 6):
        for c in np.array_split(np.arange(box.shape[1]), 6):
            counts = np.bincount(nearest[np.ix_(r, c)][close[np.ix_(r, c)]], minlength=len(names))
            if counts.max() >= 12 and counts.max() >= 0.6 * counts.sum():
                ruled.add(names[int(counts.argmax())])
    return ruled


def test_map_html_renders_hovers_and_switches_colour(browser, demo_dir):
    out, summary, _ = demo_dir
    _open(browser, out / "map.html")
    _check_map(browser, ".js-plotly-plot", summary["classes"], ARTIFACTS / "map.png")
    assert _errors(browser) == []


def test_report_html_shows_map_heatmap_and_value_id_table(browser, demo_dir):
    from selenium.webdriver.common.by import By

    out, summary, _ = demo_dir
    _open(browser, out / "report.html")
    _check_map(browser, "#value-map", summary["classes"], ARTIFACTS / "report-map.png")
    table = browser.find_element(By.ID, "value-id")
    rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(rows) == len(summary["encoders"])  # each encoder on the question-disjoint split
    assert "%" in rows[0].text
    images = browser.find_elements(By.CSS_SELECTOR, "figure img")
    assert len(images) >= 3
    time.sleep(0.5)
    for img in images:  # every inlined PNG decoded and laid out
        assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) > 100
    alts = [img.get_attribute("alt") for img in images]
    assert any("heatmap" in a for a in alts)
    browser.execute_script("document.getElementById('value-id').scrollIntoView()")
    browser.save_screenshot(str(ARTIFACTS / "report-tables.png"))
    browser.execute_script("window.scrollTo(0, 0)")
    browser.save_screenshot(str(ARTIFACTS / "report-top.png"))
    assert _errors(browser) == []
