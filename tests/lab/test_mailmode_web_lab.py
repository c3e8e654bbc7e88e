"""Mail mode through the web service in the lab: Chromium (selenium) on the lab's client node,
`mecsa serve --mailmode` on the receiver node (its SMTP receiver inside), real Postfix providers.

- The hardened provider (sender.test): an address there is entered on the home page; the probe
  lands at sender.test's hardened MX (TLS, the lab CA's certificate, DANE); the page updates in
  place; the provider replies to the test address with both traps in Cc; the page shows the
  provider report: 10/10/10 under `mecsa`, and under `mecsa-st` the levels MECSA's combination
  gives (the unit tests' independent reimplementation).
- The `may` provider graded down with "does not enforce DANE", and the provider whose sending
  address is not in its SPF failing SPF: through the service's API.
- The auto-reply: mail to the fixed test address gets a DKIM-signed reply (the lab zone publishes
  mailmode.test's key) with the web link and `Auto-Submitted: auto-replied`, in the user's Maildir.
"""

from __future__ import annotations

import email
import email.policy
import json
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chromium import SKIP_REASON
from tests.chromium import installed as chromium_installed
from tests.lab.helpers import lab_dir, require_lab
from tests.lab.test_mailmode_lab import _mecsa_st_reference, _reply

pytestmark = [pytest.mark.lab, pytest.mark.slow]
REPO = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def web_lab() -> Iterator[Path]:
    require_lab()
    from mecsa.lab import netns
    from mecsa.lab.plan import namespace_prefix
    from mecsa.lab.runner import down, up

    directory = lab_dir("mailweb")
    try:
        up([], directory, mailmode=True)
    except BaseException:
        down(directory)
        raise
    yield directory
    assert down(directory).leftovers == ()
    assert netns.list_namespaces(namespace_prefix(directory) + "-") == []


def _client_argv(directory: Path, argv: list[str]) -> list[str]:
    from mecsa.lab import netns
    from mecsa.lab.plan import CLIENT_NODE
    from mecsa.lab.runner import load_state

    state = load_state(directory)
    return netns.exec_argv(state.ns(CLIENT_NODE), argv, resolv_conf=state.directory / "resolv.conf")


def _api(directory: Path, *args: str) -> dict[str, Any]:
    """The service's API, asked from the lab's client node (the host has no route into the lab)."""
    from mecsa.lab.receiver import web_url

    argv = [sys.executable, "-m", "tests.lab.mailmode_api", args[0], web_url(), *args[1:]]
    done = subprocess.run(
        _client_argv(directory, argv), capture_output=True, text=True, timeout=180, cwd=REPO, check=False
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def _line(process: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    if not ready:
        process.kill()
        raise AssertionError(f"the browser said nothing in {timeout} s: {process.communicate()[1][-3000:]}")
    line = process.stdout.readline()
    if not line:
        raise AssertionError(f"the browser script ended: {process.communicate()[1][-3000:]}")
    data: dict[str, Any] = json.loads(line)
    return data


@pytest.mark.skipif(not chromium_installed(), reason=SKIP_REASON)
def test_the_web_flow_in_chromium_grades_the_hardened_provider_from_both_sides(
    web_lab: Path, tmp_path: Path
) -> None:
    """Screenshots of the page (waiting, then the report) are left in the test's tmp_path."""
    from mecsa.lab.plan import RECEIVER_DOMAIN, SENDERS
    from mecsa.lab.receiver import web_url

    hardened = SENDERS["hardened"]
    script = "tests.lab.mailmode_browser"
    argv = [sys.executable, "-m", script, web_url(), hardened.from_address, str(tmp_path)]
    browser = subprocess.Popen(
        _client_argv(web_lab, argv),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        landed = _line(browser, 90)
        token = landed["token"]
        d = RECEIVER_DOMAIN
        assert landed["addresses"] == {
            "control": f"{token}@{d}",
            "dane-trap": f"{token}@dane-trap.{d}",
            "sts-trap": f"{token}@sts-trap.{d}",
        }
        assert landed["stage"] == "waiting_for_reply", landed
        assert landed["probe"] == "The probe reached your provider: reply to it, to all"
        assert landed["updated_in_place"] is True  # the live update, not a reload

        # the provider replies to all: the control address, the traps in Cc (a DANE sender)
        _, sent = _reply(web_lab, "hardened", token=token)
        assert sent[d].status == "sent" and sent[d].verified_tls, sent
        assert sent[f"dane-trap.{d}"].status == "deferred", sent
        assert browser.stdin is not None
        browser.stdin.write("replied\n")
        browser.stdin.flush()
        shown = _line(browser, 150)
    finally:
        if browser.poll() is None:
            if browser.stdin is not None:
                browser.stdin.close()
            try:
                browser.wait(30)
            except subprocess.TimeoutExpired:
                browser.kill()
    assert shown["url"].endswith(f"/mail/{token}")
    assert shown["dane"] == "enforces DANE"
    assert shown["outbound_rows"] == 1
    assert shown["levels"]["mecsa"] == {"confidentiality": 10, "phishing": 10, "integrity": 10}, shown

    # the same report through the service's API: both sides, and MECSA's combination under mecsa-st
    answer = _api(web_lab, "wait", token, "report_ready", "dane")
    report = answer["report"]
    provider = report["provider"]
    assert provider["domain"] == hardened.domain and provider["messages"] == 1
    assert provider["inbound_hosts"] == 1
    (attempt,) = report["inbound"]["attempts"]
    assert attempt["host"] == hardened.host and attempt["dane"]["status"] == "matched"
    assert attempt["pkix"]["valid"] is True
    assert answer["state"]["levels"]["mecsa"] == shown["levels"]["mecsa"]
    assert shown["levels"]["mecsa-st"] == answer["state"]["levels"]["mecsa-st"]
    assert shown["levels"]["mecsa-st"] == _mecsa_st_reference(report), report["provider"]
    evidence = {p: g["evidence"] for p, g in provider["profiles"]["mecsa-st"]["protocols"].items()}
    assert (evidence["starttls"], evidence["dkim"], evidence["x509"]) == ("both", "outbound", "inbound")


def test_the_may_provider_and_the_one_outside_its_spf_through_the_api(web_lab: Path) -> None:
    from mecsa.lab.plan import RECEIVER_DOMAIN, SENDERS

    d = RECEIVER_DOMAIN
    # --- may: delivers to the DANE trap over unauthenticated TLS -----------------------------------
    started = _api(web_lab, "start", SENDERS["may"].from_address)
    assert started["status"] == 202, started
    token = started["token"]
    assert started["reply_to"] == [f"{token}@{d}", f"{token}@dane-trap.{d}", f"{token}@sts-trap.{d}"]
    assert _api(web_lab, "wait", token, "waiting_for_reply")["state"]["probe"].startswith("the probe reached")
    _, sent = _reply(web_lab, "may", token=token)
    assert sent[f"dane-trap.{d}"].status == "sent", sent
    report = _api(web_lab, "wait", token, "report_ready", "dane")["report"]
    graded = report["provider"]["profiles"]["mecsa"]
    assert {e["trap"]: e["label"] for e in report["enforcement"]}["dane"] == "does not enforce DANE"
    assert not graded["protocols"]["dane"]["counted"]
    assert "does not enforce DANE" in graded["protocols"]["dane"]["why"]
    assert graded["levels"]["confidentiality"] < 10, graded

    # --- the provider whose sending address is not in its SPF ----------------------------------
    started = _api(web_lab, "start", SENDERS["not-in-spf"].from_address)
    token = started["token"]
    _api(web_lab, "wait", token, "waiting_for_reply")
    _reply(web_lab, "not-in-spf", token=token, traps=False)
    report = _api(web_lab, "wait", token, "report_ready")["report"]
    assert report["outbound"]["verdicts"]["spf"]["status"] == "fail"
    spf = report["provider"]["profiles"]["mecsa"]["protocols"]["spf"]
    assert not spf["counted"] and "0 of 1 message(s) passed SPF" in spf["why"]
    assert report["provider"]["profiles"]["mecsa"]["levels"]["phishing"] < 10


def _maildir_autoreply(directory: Path, host: str, token_hint: str, timeout: float) -> Path:
    maildir = directory / "hosts" / host / "mail" / "Maildir" / "new"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(maildir.glob("*")) if maildir.is_dir() else ():
            raw = path.read_bytes()
            if b"Auto-Submitted: auto-replied" in raw and token_hint.encode() in raw:
                return path
        time.sleep(0.2)
    raise AssertionError(f"no auto-reply in {maildir} after {timeout} s")


def test_mail_to_the_test_address_gets_a_signed_auto_reply_with_the_web_link(web_lab: Path) -> None:
    from mecsa.lab.mailflow import send
    from mecsa.lab.plan import RECEIVER_DOMAIN, SENDERS
    from mecsa.lab.receiver import web_url
    from mecsa.lab.runner import load_state

    hardened = SENDERS["hardened"]
    state = load_state(web_lab)
    subject = f"auto-reply check {time.time_ns()}"
    sent = send(state, f"test@{RECEIVER_DOMAIN}", sender=hardened, subject=subject)
    assert sent[f"test@{RECEIVER_DOMAIN}"].status == "sent", sent
    path = _maildir_autoreply(web_lab, hardened.host, subject, 60)
    raw = path.read_bytes()
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["Subject"] == f"Re: {subject}"
    token = message["X-Mecsa-Token"]
    body = message.get_body(("plain",))
    assert body is not None and f"{web_url()}/mail/{token}" in body.get_content()
    # delivered from the null reverse path, so nothing can answer it back
    assert message["Return-Path"] == "<>"
    # the signature verifies against the key the lab zone publishes (asked through the lab resolver)
    script = (
        "import dkim, sys; d = dkim.DKIM(open(sys.argv[1], 'rb').read()); "
        "ok = d.verify(); print(ok, d.domain.decode(), d.selector.decode())"
    )
    done = subprocess.run(
        _client_argv(web_lab, [sys.executable, "-c", script, str(path)]),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", RECEIVER_DOMAIN, "mecsa"], done.stdout
    # and the link is the web service's page of that token
    answer = _api(web_lab, "wait", token, "report_ready")
    assert "it started with your message" in answer["state"]["probe"]
