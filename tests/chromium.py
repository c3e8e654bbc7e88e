"""Debian's Chromium under Selenium: one way to start it, for every browser test.

Never a downloaded browser or driver: the binary and the driver are Debian's (`chromium`,
`chromium-driver`), and the driver's path is always given, since without it Selenium Manager would
try to download one. The flags are those NOTES.md measured here: without the background-networking
ones, Chromium's own connections are refused by this machine's closed network, many at a time.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # selenium is imported only when a browser starts (tests skip without it)
    from selenium.webdriver.chrome.webdriver import WebDriver  # Chrome's: it has get_log

CHROMIUM = Path("/usr/bin/chromium")
DRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
SKIP_REASON = "needs Debian's chromium and chromium-driver"


def installed() -> bool:
    return CHROMIUM.exists() and DRIVER.exists()


def start_chromium(
    user_data_dir: Path,
    *,
    window: str = "1100,1400",
    browser_logs: bool = False,
    page_load_timeout: float | None = None,
) -> WebDriver:
    """A headless Chromium with an empty profile in `user_data_dir`; the caller quits it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    if browser_logs:  # the console, for tests that assert no CSP or script error
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    for flag in (*FLAGS, f"--user-data-dir={user_data_dir}", f"--window-size={window}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    if page_load_timeout is not None:
        driver.set_page_load_timeout(page_load_timeout)
    return driver


def browser_log(driver: WebDriver) -> list[dict[str, Any]]:
    """The console's entries (a driver started with `browser_logs=True`)."""
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]  # selenium's stub
    return entries
