"""Browser tests: Debian's chromium + chromium-driver through selenium, against `mecsa serve` on loopback.

The service runs as users run it (a subprocess of `python -m mecsa serve`, --allow-private since the
test zone's MX hosts are on loopback), resolving through this test's zone server. The screenshots
for the README are written to docs/screenshots/ when MECSA_UPDATE_SCREENSHOTS=1 (otherwise to the
test's own temporary directory, so that a test run leaves the working tree as it found it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mecsa.dns.zoneserver import Fault, ThreadedZoneServer, ZoneData
from tests.unit.web.service import HOSTILE_SCRIPT, ORIGIN, closed_port, zone_text

CHROMIUM = Path("/usr/bin/chromium")
DRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = Path(__file__).parents[3] / "docs" / "screenshots"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM.exists() and DRIVER.exists()), reason="needs Debian's chromium and chromium-driver"
    ),
]

if True:  # selenium is imported only when the browser is there (the skip above)
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.wait import WebDriverWait


def free_port() -> int:
    return closed_port()


class Zones:
    """The zone server with data that a test may change between two assessments."""

    def __init__(self) -> None:
        # slowish: its _mta-sts record never answers, so its assessment runs for about 1.5 s and
        # the progress page shows checks finishing one by one
        self.data = ZoneData.from_texts(
            {ORIGIN + ".": zone_text(good_dmarc="v=DMARC1; p=none") + slowish()},
            secure=[ORIGIN + "."],
            faults={"_mta-sts.slowish.web.test": Fault.TIMEOUT},
        )
        self.server = ThreadedZoneServer(self.data)

    def set_good_dmarc(self, record: str) -> None:
        self.data.add_zone(ORIGIN + ".", zone_text(good_dmarc=record) + slowish())


def slowish() -> str:
    return (
        "slowish MX 10 mx.good\n"
        'slowish TXT "v=spf1 mx -all"\n'
        '_dmarc.slowish TXT "v=DMARC1; p=reject; rua=mailto:d@slowish.web.test"\n'
    )


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Zones]]:
    zones = Zones()
    directory = tmp_path_factory.mktemp("serve")
    port = free_port()
    with zones.server:
        command = [
            sys.executable, "-m", "mecsa", "serve",
            "--listen", f"127.0.0.1:{port}",
            "--store", str(directory / "store.sqlite"),
            "--resolver", zones.server.address,
            "--timeout", "0.5",
            "--smtp-timeout", "0.5",
            "--smtp-port", str(closed_port()),
            "--no-tls-versions",
            "--fresh-minutes", "0",
            "--allow-private",
        ]  # fmt: skip
        log = (directory / "serve.log").open("wb")
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(base + "/api/v1/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((directory / "serve.log").read_text())
                time.sleep(0.1)
            yield base, zones
        finally:
            process.terminate()
            process.wait(10)
            log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}", "--window-size=1100,1400",
    ):  # fmt: skip
        options.add_argument(flag)
    # Always the driver's path: without it Selenium Manager would try to download one.
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def submit(browser: WebDriver, base: str, target: str) -> None:
    browser.get(base + "/")
    field = browser.find_element(By.ID, "target")
    field.clear()
    field.send_keys(target)
    browser.find_element(By.ID, "start").click()


def wait_for_report(browser: WebDriver) -> None:
    WebDriverWait(browser, 30, poll_frequency=0.05).until(lambda d: "/report/" in d.current_url)
    WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.ID, "area-confidentiality"))


def shoot(browser: WebDriver, name: str) -> None:
    import os
    import tempfile

    target = SCREENSHOTS if os.environ.get("MECSA_UPDATE_SCREENSHOTS") == "1" else Path(tempfile.gettempdir())
    target.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(target / name)), name


def test_the_live_progress_reaches_the_finished_report(
    service: tuple[str, Zones], browser: WebDriver
) -> None:
    base, _ = service
    browser.get(base + "/")
    shoot(browser, "home.png")
    submit(browser, base, "slowish.web.test")
    WebDriverWait(browser, 10, poll_frequency=0.02).until(lambda d: "/progress/" in d.current_url)
    # Checks appear as they finish, while the slow one still runs.
    seen: set[str] = set()

    def some_finished_while_running(d: WebDriver) -> bool:
        if "/progress/" not in d.current_url:
            return False
        try:
            state = d.find_element(By.ID, "status").get_attribute("data-state")
            rows = d.find_elements(By.CSS_SELECTOR, "ul.checks li.finished")
            seen.update(r.get_attribute("id") or "" for r in rows)
        except Exception:  # the page went on to the report meanwhile
            return False
        return state == "running" and bool(rows)

    WebDriverWait(browser, 10, poll_frequency=0.02).until(some_finished_while_running)
    assert "check-mta-sts" not in seen  # the slow check had not finished
    assert browser.execute_script("return document.getElementById('check-mta-sts').className") == "pending"
    wait_for_report(browser)
    permalink = browser.find_element(By.ID, "permalink").get_attribute("href") or ""
    assert permalink == browser.current_url and permalink.startswith(base + "/report/")


def test_the_report_shows_stars_the_mx_table_and_fixes_with_copy_buttons(
    service: tuple[str, Zones], browser: WebDriver
) -> None:
    base, _ = service
    submit(browser, base, "good.web.test")
    wait_for_report(browser)
    stars = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".area .stars")]
    assert len(stars) == 3 and all(len(s) == 5 and set(s) <= set("★½☆") for s in stars)
    levels = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".area .level")]
    assert levels[0] == "level 0/10"  # no STARTTLS on a closed port: confidentiality 0
    host = browser.find_element(By.CSS_SELECTOR, "#host-1 h3").text
    assert host.startswith("mx.good.web.test")
    cells = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "#host-1 table.addresses td")]
    assert cells[0] == "127.0.0.1"
    buttons = browser.find_elements(By.CSS_SELECTOR, ".fix button.copy")
    assert buttons, "no fix with a copy button"
    # the copy script ran under the page's CSP nonce
    assert browser.execute_script("return document.documentElement.dataset.copyReady") == "yes"
    shoot(browser, "report.png")
    buttons[0].click()
    WebDriverWait(browser, 5).until(lambda d: buttons[0].text == "Copied")


def test_the_history_page_shows_the_diff_of_two_assessments(
    service: tuple[str, Zones], browser: WebDriver
) -> None:
    base, zones = service
    submit(browser, base, "good.web.test")  # p=none (or the previous test's result)
    wait_for_report(browser)
    zones.set_good_dmarc("v=DMARC1; p=reject; rua=mailto:d@good.web.test")
    submit(browser, base, "good.web.test")
    wait_for_report(browser)
    browser.find_element(By.ID, "history-link").click()
    WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.ID, "diff"))
    rows = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#diff-protocols tr")]
    assert "dmarc_policy fail pass" in rows
    removed = browser.find_element(By.ID, "diff-removed").text
    assert "dmarc_policy.none" in removed
    assert len(browser.find_elements(By.CSS_SELECTOR, "#chart circle.dot-phishing")) >= 2
    shoot(browser, "history.png")


def test_hostile_dns_text_injects_no_element(service: tuple[str, Zones], browser: WebDriver) -> None:
    base, _ = service
    submit(browser, base, "hostile.web.test")
    wait_for_report(browser)
    scripts = browser.execute_script("return document.querySelectorAll('script').length")
    images = browser.execute_script("return document.querySelectorAll('img, [onerror]').length")
    assert scripts == 1  # the page's own copy script, nothing else
    assert images == 0
    assert browser.title == "mecsa report: hostile.web.test"  # neither payload ran
    body = browser.find_element(By.TAG_NAME, "body").text
    assert HOSTILE_SCRIPT in body  # shown as text, which is what escaping means
    for path in ("/domain/hostile.web.test", "/"):
        browser.get(base + path)
        assert browser.execute_script("return document.querySelectorAll('img, [onerror]').length") == 0
        assert "pwned" not in browser.title
