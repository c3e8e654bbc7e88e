"""Chromium through the mail-mode web flow, run INSIDE the lab's client namespace (by the lab test).

`python -m tests.lab.mailmode_browser URL ADDRESS SCREENSHOT_DIR`. It talks to the test on stdio,
one JSON object a line:
1. it enters ADDRESS on the home page, waits until the page lists the test addresses and the
   probe has landed (the page updates in place, through server-sent events), and prints
   `{"token", "addresses", "stage", "probe", "updated_in_place"}`;
2. it waits for a line on stdin (the test has made the provider reply);
3. it waits until the page shows the provider report with the DANE trap judged, and prints
   `{"levels", "dane", "outbound_rows", "title", "url"}`.

Debian's chromium and chromium-driver only (never a downloaded one); the flags are NOTES.md's.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait

from tests.chromium import start_chromium

JUDGED = ("enforces DANE", "does not enforce DANE")


def emit(data: dict[str, Any]) -> None:
    print(json.dumps(data), flush=True)


def _attr(driver: WebDriver, element_id: str, name: str) -> str | None:
    try:
        found = driver.find_elements(By.ID, element_id)
        return found[0].get_attribute(name) if found else None
    except (StaleElementReferenceException, WebDriverException):
        return None  # the page reloaded under us: ask again


def _dane_label(driver: WebDriver) -> str:
    try:
        found = driver.find_elements(By.CSS_SELECTOR, "#provider-report #trap-dane strong")
        return found[0].text if found else ""
    except (StaleElementReferenceException, WebDriverException):
        return ""


def _levels(driver: WebDriver) -> dict[str, dict[str, int]]:
    levels: dict[str, dict[str, int]] = {}
    for area in driver.find_elements(By.CSS_SELECTOR, "#provider-report .areas .area"):
        profile, _, name = (area.get_attribute("id") or "").removeprefix("area-").rpartition("-")
        text = area.find_element(By.CSS_SELECTOR, ".level").text  # "level 10/10"
        levels.setdefault(profile, {})[name] = int(text.split()[1].split("/")[0])
    return levels


def main(url: str, address: str, shots: Path) -> None:
    driver = start_chromium(Path(tempfile.mkdtemp(prefix="mecsa-chromium-")), window="1200,2400")
    try:
        driver.get(url + "/")
        box = driver.find_element(By.ID, "target")
        box.send_keys(address)
        driver.find_element(By.ID, "start").click()
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.ID, "reply-to"))
        token = driver.current_url.rstrip("/").rpartition("/")[2]
        addresses = {
            str(e.get_attribute("data-role")): e.text
            for e in driver.find_elements(By.CSS_SELECTOR, "#reply-to code.address")
        }
        # a mark on this document: if it is still there once the probe landed, the page updated in place
        driver.execute_script("document.body.dataset.mark = 'first-load'")
        WebDriverWait(driver, 60, 0.2).until(
            lambda d: _attr(d, "mail-live", "data-stage") in ("waiting_for_reply", "probe_failed")
        )
        driver.save_screenshot(str(shots / "mailmode-waiting.png"))
        emit(
            {
                "token": token,
                "addresses": addresses,
                "stage": _attr(driver, "mail-live", "data-stage"),
                "probe": driver.find_element(By.ID, "probe-status").text,
                "updated_in_place": driver.execute_script("return document.body.dataset.mark")
                == "first-load",
            }
        )
        sys.stdin.readline()  # the provider has replied
        WebDriverWait(driver, 120, 0.3).until(lambda d: _dane_label(d) in JUDGED)
        driver.save_screenshot(str(shots / "mailmode-report.png"))
        emit(
            {
                "levels": _levels(driver),
                "dane": _dane_label(driver),
                "outbound_rows": len(driver.find_elements(By.CSS_SELECTOR, "#provider-report #outbound tr"))
                - 1,
                "title": driver.title,
                "url": driver.current_url,
            }
        )
    finally:
        driver.quit()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]))
