"""Browser tests of `mecsa serve` against the lab: Debian's chromium + chromium-driver through selenium.

The service runs as users run it (`python -m mecsa serve`, with --allow-private since the lab's
addresses are private) inside the lab's client namespace, so it resolves through the lab's Unbound
and probes the lab's real Postfix MX hosts, MTA-STS web server and signed zones. The browser runs
on this host; its connections to the service's loopback port inside the namespace go through a
relay whose inside sockets are made by a thread that entered the namespace (`setns`). Nothing
leaves this host: the lab's namespaces have no route out.

The screenshots for the README are written to docs/screenshots/ when MECSA_UPDATE_SCREENSHOTS=1
(otherwise to the test's temporary directory, so a test run leaves the working tree as it was).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.chromium import SKIP_REASON, start_chromium
from tests.chromium import installed as chromium_installed
from tests.lab.helpers import lab_dir, require_lab
from tests.webserve import wait_until_healthy

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "src" / "mecsa" / "lab" / "scenarios"
SCREENSHOTS = REPO / "docs" / "screenshots"
HOSTILE_SCRIPT = "<script>document.title='pwned'</script>"
HOSTILE_IMG = '"><img src=x onerror="document.title=1">'
CLONE_NEWNET = 0x40000000

pytestmark = [
    pytest.mark.lab,
    pytest.mark.slow,
    pytest.mark.skipif(not chromium_installed(), reason=SKIP_REASON),
]

if True:  # selenium is imported only when the browser is there (the skip above)
    pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.wait import WebDriverWait


def hostile_scenario() -> str:
    """A lab domain whose SPF and DMARC texts are made to break out of HTML (TOML literal strings)."""
    return f"""
description = "DNS text made to break out of HTML: the web pages must show it as text."
domain = "webhostile.test"
spf = '''v=spf1 {HOSTILE_SCRIPT} mx -all'''
dmarc = ['''v=DMARC1; p={HOSTILE_IMG}''']

[expect]
fail = ["spf_policy", "dmarc", "dmarc_policy"]
error = []
"""


class NamespaceRelay:
    """Listens on this host's loopback and relays each connection to a port on a namespace's loopback."""

    def __init__(self, namespace: str, port: int) -> None:
        self.target = port
        self._namespace = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
        self._libc = ctypes.CDLL("libc.so.6", use_errno=True)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _inside(self) -> socket.socket:
        """A socket connected inside the namespace: made by a thread that entered it (setns moves
        only the calling thread), and a socket stays in the namespace it was made in."""
        made: list[socket.socket | BaseException] = []

        def enter() -> None:
            try:
                if self._libc.setns(self._namespace, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
                made.append(socket.create_connection(("127.0.0.1", self.target), timeout=10))
            except BaseException as exc:
                made.append(exc)

        thread = threading.Thread(target=enter)
        thread.start()
        thread.join()
        if isinstance(made[0], BaseException):
            raise made[0]
        made[0].settimeout(None)
        return made[0]

    def _accept(self) -> None:
        while True:
            try:
                outside, _ = self.listener.accept()
            except OSError:
                return
            try:
                inside = self._inside()
            except OSError:
                outside.close()
                continue
            self._open += [outside, inside]
            for a, b in ((outside, inside), (inside, outside)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.listener.close()
        for s in self._open:
            with contextlib.suppress(OSError):
                s.close()
        os.close(self._namespace)


@dataclass
class Served:
    base: str
    state: Any
    directory: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    require_lab()
    from mecsa.lab import netns
    from mecsa.lab.plan import CLIENT_NODE
    from mecsa.lab.runner import down, load_state, up

    work = tmp_path_factory.mktemp("web-lab")
    hostile = work / "webhostile.toml"
    hostile.write_text(hostile_scenario())
    directory = lab_dir("web")
    up([SCENARIOS / "top-score.toml", hostile], directory)
    relay = None
    try:
        state = load_state(directory)
        selector = state.domains["top.test"]["selector"]
        port = 8088
        command = [
            sys.executable, "-m", "mecsa", "serve", "--listen", f"127.0.0.1:{port}",
            "--store", str(work / "store.sqlite"),
            "--resolver", str(state.data.get("resolver", "10.53.0.3")),
            "--ca-file", str(state.data["ca_file"]), "--dkim-selector", selector,
            "--allow-private", "--fresh-minutes", "0", "--timeout", "3", "--smtp-timeout", "5",
        ]  # fmt: skip
        argv = netns.exec_argv(state.ns(CLIENT_NODE), command, resolv_conf=state.directory / "resolv.conf")
        log = (work / "serve.log").open("ab")
        process = subprocess.Popen(
            argv, cwd=REPO, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
        state.add_daemon("mecsa-serve", CLIENT_NODE, process.pid)  # `down` stops it, and its workers
        relay = NamespaceRelay(state.ns(CLIENT_NODE), port)
        base = f"http://127.0.0.1:{relay.port}"
        wait_until_healthy(base, process, work / "serve.log", within=60, pause=0.2)
        yield Served(base, state, directory)
    finally:
        if relay is not None:
            relay.close()
        result = down(directory)
    assert result.leftovers == ()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    driver = start_chromium(tmp_path_factory.mktemp("chromium"), page_load_timeout=60)
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
    WebDriverWait(browser, 120, poll_frequency=0.1).until(
        lambda d: d.find_elements(By.ID, "area-confidentiality")
    )


def shoot(browser: WebDriver, name: str) -> None:
    update = os.environ.get("MECSA_UPDATE_SCREENSHOTS") == "1"
    target = SCREENSHOTS if update else Path(tempfile.gettempdir())
    target.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(target / name)), name


def test_the_live_progress_on_the_permanent_page_reaches_the_report(
    served: Served, browser: WebDriver
) -> None:
    browser.get(served.base + "/")
    shoot(browser, "home.png")
    submit(browser, served.base, "top.test")
    WebDriverWait(browser, 20, poll_frequency=0.02).until(lambda d: "/report/" in d.current_url)
    page = browser.current_url
    # Checks appear as they finish while others still run (the TLS sweep is paced per MX address).
    seen: dict[str, set[str]] = {"finished": set(), "pending": set()}

    def some_finished_while_running(d: WebDriver) -> bool:
        try:
            state = d.find_element(By.ID, "status").get_attribute("data-state")
            finished = d.find_elements(By.CSS_SELECTOR, "ul.checks li.finished")
            pending = d.find_elements(By.CSS_SELECTOR, "ul.checks li.pending")
            seen["finished"] = {r.get_attribute("id") or "" for r in finished}
            seen["pending"] = {r.get_attribute("id") or "" for r in pending}
        except Exception:  # the report replaced the progress meanwhile
            return False
        return state == "running" and bool(finished) and bool(pending)

    WebDriverWait(browser, 30, poll_frequency=0.02).until(some_finished_while_running)
    assert seen["finished"] and seen["pending"] and not seen["finished"] & seen["pending"]
    wait_for_report(browser)
    assert browser.current_url == page  # the report at the very address of the progress
    permalink = browser.find_element(By.ID, "permalink").get_attribute("href") or ""
    assert permalink == page and permalink.startswith(served.base + "/report/")


def test_the_report_shows_stars_the_mx_table_and_fixes_with_copy_buttons(
    served: Served, browser: WebDriver
) -> None:
    submit(browser, served.base, "top.test")
    wait_for_report(browser)
    levels = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".area .level")]
    assert levels == ["level 10/10"] * 3  # the lab's hardened domain, probed for real
    stars = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".area .stars")]
    assert stars == ["★★★★★"] * 3
    host = browser.find_element(By.CSS_SELECTOR, "#host-1 h3").text
    assert host.startswith("mx1.top.test")
    cells = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "#host-1 table.addresses td")]
    assert cells[0].startswith("10.53.")
    assert browser.execute_script("return document.documentElement.dataset.copyReady") == "yes"
    shoot(browser, "report.png")
    # a domain with problems: its fixes come with copy buttons that work under the CSP
    submit(browser, served.base, "webhostile.test")
    wait_for_report(browser)
    buttons = browser.find_elements(By.CSS_SELECTOR, ".fix button.copy")
    assert buttons, "no fix with a copy button"
    buttons[0].click()
    WebDriverWait(browser, 5).until(lambda d: buttons[0].text == "Copied")


def test_the_history_page_shows_the_diff_of_two_assessments(served: Served, browser: WebDriver) -> None:
    from tests.lab.test_monitor_lab import _edit_zone, _restart_unbound

    submit(browser, served.base, "top.test")
    wait_for_report(browser)
    _edit_zone(served.directory, "p=reject; sp=reject", "p=none; sp=none")
    _restart_unbound(served.state)
    submit(browser, served.base, "top.test")
    wait_for_report(browser)
    browser.find_element(By.ID, "history-link").click()
    WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.ID, "diff"))
    rows = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#diff-protocols tr")]
    assert "dmarc_policy pass fail" in rows
    added = browser.find_element(By.ID, "diff-added").text
    assert "dmarc_policy.none" in added
    assert len(browser.find_elements(By.CSS_SELECTOR, "#chart circle.dot-phishing")) >= 2
    shoot(browser, "history.png")


def test_hostile_dns_text_injects_no_element(served: Served, browser: WebDriver) -> None:
    submit(browser, served.base, "webhostile.test")
    wait_for_report(browser)
    scripts = browser.execute_script("return document.querySelectorAll('script').length")
    images = browser.execute_script("return document.querySelectorAll('img, [onerror]').length")
    assert scripts == 1  # the page's own copy script, nothing else
    assert images == 0
    assert browser.title == "mecsa report: webhostile.test"  # neither payload ran
    body = browser.find_element(By.TAG_NAME, "body").text
    assert HOSTILE_SCRIPT in body  # shown as text, which is what escaping means
    for path in ("/domain/webhostile.test", "/", "/stats"):
        browser.get(served.base + path)
        assert browser.execute_script("return document.querySelectorAll('img, [onerror]').length") == 0
        assert "pwned" not in browser.title and browser.title != "1"
