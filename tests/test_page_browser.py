"""report.html in a real browser: Debian's chromium, driven by Selenium through chromedriver.

Every request that is not for the file itself is refused, and recorded: the page must draw
without any. Skipped, saying why, where the browser, its driver or Selenium is missing
(`.ci/run` installs the browser).
"""

from __future__ import annotations

import json
import shutil

import pytest
from test_page import seeded_runs

from dlrun.reporting.page import write_page

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="no chromium/chromedriver: apt-get install chromium chromium-driver",
)


@pytest.fixture
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,800"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=webdriver.ChromeService(DRIVER), options=options)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["http*", "ws*", "ftp*"]})
    yield driver
    driver.quit()


def requests(driver) -> list[str]:
    """Every URL the page asked for."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def test_the_page_draws_offline_and_its_legend_hides_a_configuration(tmp_path, browser):
    page = write_page(seeded_runs(tmp_path / "runs"), tmp_path / "report.html")
    browser.get(page.as_uri())
    first = "document.querySelector('#curves .chart')"
    lines = browser.execute_script(
        f"return {first}.data.filter(t => t.showlegend !== false && t.name !== 'tutorial')"
        ".map(t => t.name)"
    )
    assert lines == ["sgd", "adam"]  # one line per configuration

    browser.find_element("css selector", "#curves .chart .legend .traces .legendtoggle").click()
    hidden = f"return {first}.data.filter(t => t.legendgroup === 'sgd').map(t => t.visible)"
    # Plotly waits out a double click's delay before it takes a click as a single one.
    wait = pytest.importorskip("selenium.webdriver.support.ui").WebDriverWait
    wait(browser, 5).until(lambda _: browser.execute_script(hidden) == ["legendonly"] * 3)

    browser.find_elements("css selector", "#curves .chart .updatemenu-button")[1].click()
    wait(browser, 5).until(
        lambda _: browser.execute_script(f"return {first}.layout.yaxis.type") == "log"
    )

    browser.find_element("css selector", "table.runs tr.run").click()
    assert browser.execute_script("return document.querySelectorAll('.run-charts .chart').length")

    assert browser.save_screenshot(str(tmp_path / "report.png"))
    assert (tmp_path / "report.png").read_bytes()[:4] == b"\x89PNG"
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    assert [url for url in requests(browser) if not url.startswith(("file:", "data:"))] == []
