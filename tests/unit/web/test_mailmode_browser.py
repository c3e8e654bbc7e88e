"""Mail mode in Chromium (selenium) against `mecsa serve --mailmode` on loopback, as users run it.

The service is a subprocess with its SMTP receiver inside; the user's provider (user.test: its
MX, its zone) runs in this test. The page must update in place as the probe lands, then open
the provider report by itself once the reply is analysed, with no CSP violation on the way.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mecsa.lab.senders import private_key_pem
from tests.chromium import SKIP_REASON, browser_log, start_chromium
from tests.chromium import installed as chromium_installed
from tests.unit.mailmode.test_autoreply import KEY
from tests.unit.web.mailmode_support import TEST_DOMAIN, USER, reply, user_provider
from tests.unit.web.service import closed_port
from tests.webserve import wait_until_healthy

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not chromium_installed(), reason=SKIP_REASON),
]

if True:  # selenium is imported only when the browser is there (the skip above)
    pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """(site URL, SMTP port of its receiver)."""
    with user_provider(tmp_path) as (mx, server):
        port, smtp = closed_port(), closed_port()
        (tmp_path / "dkim.pem").write_bytes(private_key_pem(KEY))
        config = tmp_path / "mailmode.toml"
        config.write_text(
            f'domain = "{TEST_DOMAIN}"\nstore = "mailmode.sqlite3"\nlisten = "127.0.0.1:{smtp}"\n'
            f'dkim_key = "dkim.pem"\ndkim_selector = "mm1"\nsmtp_port = {mx.port}\nsmtp_timeout = 5\n'
            "window_minutes = 0\n"
        )
        command = [
            sys.executable, "-m", "mecsa", "serve", "--listen", f"127.0.0.1:{port}",
            "--store", str(tmp_path / "web.sqlite"), "--resolver", server.address, "--timeout", "0.5",
            "--smtp-timeout", "0.5", "--smtp-port", str(closed_port()), "--no-tls-versions",
            "--allow-private", "--mailmode", str(config), "--public-url", f"http://127.0.0.1:{port}",
        ]  # fmt: skip
        log = (tmp_path / "serve.log").open("wb")
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_healthy(base, process, tmp_path / "serve.log")
            yield base, smtp
        finally:
            process.terminate()
            process.wait(10)
            log.close()


def test_the_page_follows_the_probe_and_the_reply_then_shows_the_report(
    served: tuple[str, int], tmp_path: Path
) -> None:
    base, smtp = served
    driver = start_chromium(tmp_path / "chromium", browser_logs=True)
    try:
        driver.get(base + "/")
        assert "type your e-mail address" in driver.find_element(By.CSS_SELECTOR, "p.lead").text.lower()
        driver.find_element(By.ID, "target").send_keys(USER)
        driver.find_element(By.ID, "start").click()
        WebDriverWait(driver, 20).until(lambda d: "/mail/" in d.current_url)
        token = driver.current_url.rpartition("/")[2]
        control = driver.find_element(By.CSS_SELECTOR, '#reply-to code[data-role="control"]').text
        traps = [e.text for e in driver.find_elements(By.CSS_SELECTOR, '#reply-to code[data-role$="trap"]')]
        assert control == f"{token}@{TEST_DOMAIN}" and len(traps) == 2
        driver.execute_script("document.body.dataset.mark = 'first'")
        live = driver.find_element(By.ID, "mail-live")
        WebDriverWait(driver, 30, 0.1).until(
            lambda d: live.get_attribute("data-stage") == "waiting_for_reply"
        )
        assert driver.execute_script("return document.body.dataset.mark") == "first"  # in place
        assert driver.find_element(By.ID, "step-probe").get_attribute("class") == "done"
        assert "reached your provider" in driver.find_element(By.ID, "probe-status").text

        reply(smtp, control, traps)
        WebDriverWait(driver, 60, 0.2).until(lambda d: d.find_elements(By.ID, "provider-report"))
        report = driver.find_element(By.ID, "provider-report")
        assert "Mail provider of user.test" in report.find_element(By.TAG_NAME, "h1").text
        assert report.find_elements(By.CSS_SELECTOR, "#area-mecsa-confidentiality .level")
        assert "does not enforce DANE" in driver.find_element(By.ID, "trap-dane").text
        assert not driver.find_elements(By.ID, "mailmode-script")  # final: the page stopped following
        logged = browser_log(driver)
        errors = [e for e in logged if e["level"] == "SEVERE" and "favicon.ico" not in e["message"]]
        assert errors == [], errors  # no CSP refusal, no script error
    finally:
        driver.quit()
