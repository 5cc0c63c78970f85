"""The explorer's page in a real headless Chromium (Selenium): draw, predict, click a unit,
switch on an overlay, and take screenshots.

Skips (with the reason) where selenium, chromium or chromedriver is missing. With
``CONVSCOPE_SCREENSHOTS=1`` the screenshots are also written to ``docs/images/explore-*.png``
for the README.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CONVSCOPE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CONVSCOPE_CHROMEDRIVER", "/usr/bin/chromedriver")
DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
PNG = b"\x89PNG\r\n\x1a\n"

webdriver = pytest.importorskip("selenium.webdriver", reason="the browser test needs selenium")
for binary in (CHROMIUM, CHROMEDRIVER):
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        pytest.skip(f"the browser test needs {binary} (apt-get install chromium chromium-driver)",
                    allow_module_level=True)

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--window-size=1480,1200",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver, tmp_path, name: str, element=None) -> Path:
    """Save a screenshot to tmp (checked to be a PNG) and, when asked, to docs/images."""
    path = tmp_path / f"explore-{name}.png"
    data = element.screenshot_as_png if element is not None else driver.get_screenshot_as_png()
    path.write_bytes(data)
    assert path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG
    if os.environ.get("CONVSCOPE_SCREENSHOTS"):
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_IMAGES / path.name)
    return path


def wait_for(driver, script: str, timeout: float = 20):
    """Wait until the JavaScript expression ``script`` is truthy; return its value."""
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: d.execute_script(f"return {script}"))


def test_draw_predict_click_overlay(browser, lenet, tmp_path):
    browser.get(lenet.url)
    wait_for(browser, "document.body.dataset.ready === '1'")                    # dataset image 0 predicted
    assert browser.find_element(By.ID, "model-title").text.startswith("lenet5")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#layers .layer")) == 12
    before = int(browser.execute_script("return document.body.dataset.predictions"))

    # draw a "1"-like stroke on the canvas
    browser.find_element(By.CSS_SELECTOR, '.tabs button[data-tab="draw"]').click()
    canvas = browser.find_element(By.ID, "draw-canvas")
    actions = ActionChains(browser)
    actions.move_to_element_with_offset(canvas, 10, -100).click_and_hold()
    for _ in range(10):
        actions.move_by_offset(-3, 20)
    actions.release().perform()
    wait_for(browser, f"Number(document.body.dataset.predictions) > {before} && "
                      "document.querySelectorAll('#bars .bar').length === 10")
    widths = browser.execute_script(
        "return Array.from(document.querySelectorAll('#bars .fill'), e => parseFloat(e.style.width))")
    assert len(widths) == 10 and abs(sum(widths) - 100) < 1.0
    top = browser.find_element(By.CSS_SELECTOR, "#bars .bar.top")
    assert max(widths) == pytest.approx(widths[int(top.get_attribute("data-class"))], abs=0.05)

    # click a unit of conv2: its sum, checked against the activation, and its receptive field
    tile = browser.find_element(By.CSS_SELECTOR, '.layer[data-layer="conv2"] canvas[data-channel="3"]')
    ActionChains(browser).move_to_element_with_offset(tile, 2, 2).click().perform()
    wait_for(browser, "document.getElementById('unit-check')")
    assert browser.find_element(By.ID, "unit-check").get_attribute("data-match") == "true"
    assert "conv2 · channel 3" in browser.find_element(By.ID, "unit").get_attribute("data-unit")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#unit table.num")) == 3     # window, kernel, products
    wait_for(browser, "document.querySelector('[data-job=exemplars][data-state=done]') && "
                      "document.querySelector('[data-job=actmax][data-state=done]') && "
                      "document.querySelector('[data-job=deconv][data-state=done]')", timeout=30)
    assert len(browser.find_elements(By.CSS_SELECTOR, "[data-job=exemplars] figure")) == 8
    box_pixels = browser.execute_script(
        "const c = document.getElementById('box-canvas'); const d = c.getContext('2d')"
        ".getImageData(0, 0, c.width, c.height).data; let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n")
    assert box_pixels > 100                                                        # the box is drawn

    # switch on an overlay
    Select(browser.find_element(By.ID, "overlay-method")).select_by_value("grad_cam")
    wait_for(browser, "document.getElementById('overlay-status').dataset.state === 'done'")
    assert "Grad-CAM" in browser.find_element(By.ID, "overlay-status").text
    Select(browser.find_element(By.ID, "overlay-method")).select_by_value("integrated_gradients")
    wait_for(browser, "document.getElementById('overlay-status').dataset.state === 'done' && "
                      "document.getElementById('overlay-status').textContent.includes('integrated')")
    wait_for(browser, "document.querySelector('#run svg polyline') && document.querySelector('table.confusion')")

    screenshot(browser, tmp_path, "page")
    panel = browser.find_element(By.ID, "unit-panel")
    browser.execute_script("arguments[0].style.maxHeight = 'none'; arguments[0].style.position = 'static'", panel)
    screenshot(browser, tmp_path, "unit", panel)
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe


def test_dataset_picker_and_paging(browser, lenet, tmp_path):
    browser.get(lenet.url)
    wait_for(browser, "document.body.dataset.ready === '1'")
    first = browser.execute_script("return document.body.dataset.input")
    browser.find_element(By.ID, "next").click()
    wait_for(browser, f"document.body.dataset.input !== '{first}'")
    assert "test image 1" in browser.find_element(By.ID, "dataset-label").text
    # a fully connected layer's features are one clickable strip
    strip = browser.find_element(By.CSS_SELECTOR, '.layer[data-layer="fc1"] canvas.feature-strip')
    ActionChains(browser).move_to_element_with_offset(strip, -strip.size["width"] // 2 + 3, 0).click().perform()
    wait_for(browser, "document.getElementById('unit-check')")
    assert browser.find_element(By.CSS_SELECTOR, "#unit .explanation").get_attribute("data-kind") == "linear"
    wait_for(browser, "document.querySelector('#run svg polyline') && document.querySelector('table.confusion')")
    panel = browser.find_element(By.ID, "run-panel")
    browser.execute_script("arguments[0].scrollIntoView()", panel)
    screenshot(browser, tmp_path, "run", panel)
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
