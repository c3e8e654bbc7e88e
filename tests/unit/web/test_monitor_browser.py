"""A browser check of /monitor, /monitor/alerts and /reports: Debian's chromium, `mecsa serve --watchlist`.

The service runs as users run it (`python -m mecsa serve --watchlist FILE`), its monitor assessing
the test zone's domains (one of them serves DNS text made to break out of HTML), with reports
ingested beforehand whose organisation and reverse names carry markup. The browser signs in with
the token through the form, as a person would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mecsa.dns.zoneserver import ThreadedZoneServer, ZoneData
from mecsa.store import open_store
from mecsa.store.api_tokens import create_token
from tests.chromium import SKIP_REASON, start_chromium
from tests.chromium import installed as chromium_installed
from tests.unit.web.service import HOSTILE_SCRIPT, ORIGIN, closed_port, zone_text
from tests.unit.web.test_reports_pages import EVIL_ORG, EVIL_PTR, REVERSE, ingest
from tests.webserve import wait_until_healthy

SCREENSHOTS = Path(__file__).parents[3] / "docs" / "screenshots"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not chromium_installed(), reason=SKIP_REASON),
]

if True:  # selenium is imported only when the browser is there (the skip above)
    pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.wait import WebDriverWait


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    driver = start_chromium(tmp_path_factory.mktemp("chromium"), page_load_timeout=30)
    try:
        yield driver
    finally:
        driver.quit()


def shoot(page: WebDriver, name: str) -> None:
    """A screenshot: into docs/screenshots with MECSA_UPDATE_SCREENSHOTS=1, else a temporary directory."""
    import tempfile

    target = SCREENSHOTS if os.environ.get("MECSA_UPDATE_SCREENSHOTS") == "1" else Path(tempfile.gettempdir())
    target.mkdir(parents=True, exist_ok=True)
    assert page.save_screenshot(str(target / name)), name


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL, API token) of a running `mecsa serve --watchlist`."""
    directory = tmp_path_factory.mktemp("serve-monitor")
    texts = {
        ORIGIN + ".": zone_text(),
        REVERSE: f"$TTL 300\n@ SOA ns.{ORIGIN}. h.{ORIGIN}. 1 300 300 300 300\n@ NS ns.{ORIGIN}.\n"
        f"9 PTR {EVIL_PTR}.\n",
    }
    with ThreadedZoneServer(ZoneData.from_texts(texts, secure=[ORIGIN + "."])) as zones:
        store_path = directory / "store.sqlite"
        with open_store(store_path) as store:
            token = create_token(store, "browser")
            ingest(store)
        watch = directory / "watch.toml"
        watch.write_text(
            f'interval = "1h"\nnotify = []\n\n[assess]\nresolvers = ["{zones.address}"]\ntimeout = 0.5\n'
            f"smtp_timeout = 0.5\nsmtp_port = {closed_port()}\n\n"
            f'[[domain]]\nname = "good.{ORIGIN}"\n\n[[domain]]\nname = "hostile.{ORIGIN}"\n'
        )
        port = closed_port()
        command = [
            sys.executable, "-m", "mecsa", "serve",
            "--listen", f"127.0.0.1:{port}",
            "--store", str(store_path),
            "--resolver", zones.address,
            "--timeout", "0.5",
            "--watchlist", str(watch),
        ]  # fmt: skip
        log = (directory / "serve.log").open("wb")
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_healthy(base, process, directory / "serve.log")
            yield base, token
        finally:
            process.terminate()
            assert process.wait(15) is not None  # the monitor's thread does not hold the exit
            log.close()


def _no_injection(page: WebDriver) -> None:
    assert page.execute_script("return document.querySelectorAll('script').length") == 0
    assert page.execute_script("return document.querySelectorAll('img, [onerror]').length") == 0
    assert page.title.startswith("mecsa: ")  # no payload set it


def test_a_browser_signs_in_and_reads_the_watch_list_the_alerts_and_the_reports(
    monitored: tuple[str, str],
    browser: WebDriver,
) -> None:
    base, token = monitored
    browser.get(base + "/monitor")
    assert browser.find_elements(By.ID, "signin-form")
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.ID, "signin").click()
    WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.ID, "watchlist"))
    assert browser.current_url == base + "/monitor"

    def passed(d: WebDriver) -> bool:  # the in-process monitor's first pass, as the page shows it
        d.refresh()
        return "not yet" not in d.find_element(By.ID, "watchlist").text

    WebDriverWait(browser, 60, poll_frequency=0.5).until(passed)
    shoot(browser, "monitor.png")
    row = browser.find_element(By.ID, f"watch-good.{ORIGIN}")
    assert "1h" in row.text and ("★" in row.text or "☆" in row.text)
    row.find_element(By.CSS_SELECTOR, "a.open-alerts").click()
    WebDriverWait(browser, 10).until(lambda d: "/monitor/alerts" in d.current_url)
    assert browser.find_elements(By.CSS_SELECTOR, "#open-alerts details.alert")
    shoot(browser, "monitor-alerts.png")

    browser.get(base + f"/monitor/alerts?domain=hostile.{ORIGIN}")
    _no_injection(browser)
    assert HOSTILE_SCRIPT in browser.find_element(By.TAG_NAME, "body").text  # shown as text

    browser.get(base + f"/reports?domain=good.{ORIGIN}")
    WebDriverWait(browser, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "section.dmarc"))
    _no_injection(browser)
    body = browser.find_element(By.TAG_NAME, "body").text
    assert EVIL_ORG in body and EVIL_PTR in body  # as text
    assert browser.execute_script("return document.querySelectorAll('section svg rect').length") > 0
    # the sections' style sheet applied under the page's nonce (the CSP blocks any other)
    colour = browser.execute_script(
        "return getComputedStyle(document.querySelector('.reports rect.bad')).fill"
    )
    assert colour == "rgb(198, 40, 40)"
    shoot(browser, "reports.png")
