"""Mail mode in the web service: the address on the home page, the live page, the report, the limits.

The whole loop on loopback: the service sends the probe to the user's MX (user.test), the user's
provider replies to the test address with the traps in Cc, the service's own receiver (inside
the app) takes it, analyses it and assesses user.test, and the page shows the provider report.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import dkim
import pytest
from fastapi.testclient import TestClient

from mecsa.dns.zoneserver import ThreadedZoneServer
from mecsa.store import Store, open_store
from tests.unit.web.mailmode_support import (
    PUBLIC_URL,
    TEST_DOMAIN,
    USER,
    UserMx,
    dkim_dns,
    mail_client,
    mail_settings,
    receiver_port,
    reply,
    user_provider,
    wait_state,
    with_changes,
)


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[tuple[UserMx, ThreadedZoneServer]]:
    with user_provider(tmp_path) as both:
        yield both


@pytest.fixture
def web_store(tmp_path: Path) -> Iterator[Store]:
    with open_store(tmp_path / "web.sqlite") as opened:
        yield opened


def _start(client: TestClient, address: str) -> str:
    response = client.post("/assess", data={"target": address}, follow_redirects=False)
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert re.fullmatch(r"/mail/[a-z2-7]{16}", location), location
    token: str = location.rpartition("/")[2]
    return token


def test_the_whole_loop_through_the_web_service(
    tmp_path: Path, provider: tuple[UserMx, ThreadedZoneServer], web_store: Store
) -> None:
    mx, server = provider
    with mail_client(web_store, mail_settings(tmp_path, server, mx)) as client:
        home = client.get("/")
        assert "type your e-mail address" in home.text and 'id="mailmode-help"' in home.text
        token = _start(client, USER)
        page = client.get(f"/mail/{token}")
        assert page.status_code == 200
        addresses = re.findall(r'<code class="address" data-role="([a-z-]+)">([^<]+)</code>', page.text)
        assert addresses == [
            ("control", f"{token}@{TEST_DOMAIN}"),
            ("dane-trap", f"{token}@dane-trap.{TEST_DOMAIN}"),
            ("sts-trap", f"{token}@sts-trap.{TEST_DOMAIN}"),
        ]
        assert 'id="mailmode-script"' in page.text and f'data-events="/mail/{token}/events"' in page.text
        nonce = re.search(r"script-src 'nonce-([^']+)'", page.headers["content-security-policy"])
        assert nonce and f'<script nonce="{nonce.group(1)}" id="mailmode-script"' in page.text

        # the probe lands at the user's MX, signed by the test domain, naming the three addresses
        waiting = wait_state(client, token, {"waiting_for_reply", "probe_failed"})
        assert waiting["state"]["stage"] == "waiting_for_reply", waiting
        assert waiting["report"] is None
        (probe,) = mx.messages()
        assert probe.raw is not None
        sent = email.message_from_bytes(probe.raw)
        assert sent["X-Mecsa-Token"] == token and f"d={TEST_DOMAIN}" in " ".join(
            sent["DKIM-Signature"].split()
        )
        assert " ".join(sent["Reply-To"].split()) == ", ".join(a for _, a in addresses)
        page = client.get(f"/mail/{token}")
        assert 'class="done"' in page.text and "reached your provider" in page.text

        # the provider replies to all: To the control address, Cc both traps
        reply(receiver_port(client), addresses[0][1], [addresses[1][1], addresses[2][1]])
        ready = wait_state(client, token, {"report_ready"}, timeout=60)
        levels = ready["state"]["levels"]
        assert set(levels) == {"mecsa", "mecsa-st"}
        report = ready["report"]
        assert report["provider"]["domain"] == "user.test"
        verdicts = {p: v["status"] for p, v in report["outbound"]["verdicts"].items()}
        assert verdicts == {"starttls": "fail", "spf": "pass", "dkim": "pass", "dmarc": "pass"}, verdicts
        assert report["inbound"]["delivered"] is True
        assert {e["trap"]: e["label"] for e in report["enforcement"]}["dane"] == "does not enforce DANE"

        # the page now carries the provider report inside the site's layout, with no live script
        page = client.get(f"/mail/{token}")
        assert '<nav class="top">' in page.text and 'id="provider-report"' in page.text
        assert 'Mail provider of <span class="domain">user.test</span>' in page.text
        for profile, by_area in levels.items():
            for area, level in by_area.items():
                block = page.text.split(f'id="area-{profile}-{area}"', 1)[1]
                assert f"level {level}/10" in block.split("</div>\n  </div>", 1)[0]
        assert 'id="outbound"' in page.text and 'id="trap-dane"' in page.text
        assert "<strong>does not enforce DANE</strong>" in page.text
        assert 'id="mailmode-script"' not in page.text  # final: nothing pending (window 0 here)
        # the same sections as `mecsa mailmode report --html`
        download = client.get(f"/mail/{token}/report.html")
        assert download.status_code == 200 and "attachment" in download.headers["content-disposition"]
        assert "script-src" not in download.headers["content-security-policy"]
        assert 'id="evidence"' in download.text and "user.test" in download.text

        # the event stream: the state, then `final`
        with client.stream("GET", f"/mail/{token}/events") as stream:
            text = "".join(stream.iter_text())
        events = re.findall(r"event: (\w+)\ndata: (.*)\n\n", text)
        assert [kind for kind, _ in events] == ["state", "final"]
        state = json.loads(events[0][1])
        assert state["stage"] == "report_ready" and state["final"] is True
        assert state["steps"]["report"]["class"] == "done"


def test_mail_to_the_fixed_address_gets_a_signed_auto_reply_with_the_web_link(
    tmp_path: Path, provider: tuple[UserMx, ThreadedZoneServer], web_store: Store
) -> None:
    mx, server = provider
    with mail_client(web_store, mail_settings(tmp_path, server, mx)) as client:
        reply(receiver_port(client), f"test@{TEST_DOMAIN}", [])
        deadline = time.monotonic() + 30
        while not mx.messages() and time.monotonic() < deadline:
            time.sleep(0.1)
        (auto,) = mx.messages()
        assert auto.raw is not None
        message = email.message_from_bytes(auto.raw, policy=email.policy.default)
        assert message["Auto-Submitted"] == "auto-replied"
        assert auto.data["connection"]["mail_from"] == ""  # the null reverse path: nothing answers it
        assert dkim.verify(auto.raw, dnsfunc=dkim_dns)
        token = message["X-Mecsa-Token"]
        body = message.get_body(("plain",))
        assert body is not None and f"{PUBLIC_URL}/mail/{token}" in body.get_content()
        # the link works: a test started by mail has no probe to wait for
        state = wait_state(client, token, {"report_ready"}, timeout=60)["state"]
        assert "it started with your message" in state["probe"]
        assert client.get(f"/mail/{token}").status_code == 200


def test_probes_are_rate_limited_per_client_and_per_recipient(
    tmp_path: Path, provider: tuple[UserMx, ThreadedZoneServer], web_store: Store
) -> None:
    mx, server = provider
    settings = with_changes(
        mail_settings(tmp_path, server, mx), probes_per_client=3, probes_per_recipient=1, listen=None
    )
    with mail_client(web_store, settings) as client:
        _start(client, "a@nomx.test")
        again = client.post("/assess", data={"target": "A@nomx.test"}, follow_redirects=False)
        assert again.status_code == 429 and "to this e-mail address" in again.text
        assert int(again.headers["retry-after"]) > 0
        _start(client, "b@nomx.test")
        api = client.post("/api/v1/mail", json={"address": "c@nomx.test"})
        assert api.status_code == 202, api.text
        assert api.json()["reply_to"][0] == f"{api.json()['token']}@{TEST_DOMAIN}"
        over = client.post("/api/v1/mail", json={"address": "d@nomx.test"})
        assert over.status_code == 429 and "from your address" in over.json()["detail"]
        bad = client.post("/assess", data={"target": "not an <address>@x"}, follow_redirects=False)
        assert bad.status_code == 400 and "is not an e-mail address" in bad.text


def test_probes_in_flight_are_bounded(
    tmp_path: Path, provider: tuple[UserMx, ThreadedZoneServer], web_store: Store
) -> None:
    mx, server = provider
    settings = with_changes(mail_settings(tmp_path, server, mx), max_running_probes=1, listen=None)
    with mail_client(web_store, settings) as client:
        token = _start(client, "a@slow.test")  # its MX question is never answered
        busy = client.post("/assess", data={"target": "b@nomx.test"}, follow_redirects=False)
        assert busy.status_code == 503 and "as many test messages as it may" in busy.text
        assert client.post("/api/v1/mail", json={"address": "b@nomx.test"}).status_code == 503
        failed = wait_state(client, token, {"probe_failed"})
        assert failed["state"]["stage"] == "probe_failed"
        _start(client, "b@nomx.test")  # the slot is free again, and the refusals were not counted


def test_the_guard_refuses_a_probe_to_an_internal_mx(
    tmp_path: Path, provider: tuple[UserMx, ThreadedZoneServer], web_store: Store
) -> None:
    mx, server = provider
    settings = mail_settings(tmp_path, server, mx)
    from dataclasses import replace

    with mail_client(web_store, replace(settings, allow_private=False)) as client:
        token = _start(client, USER)
        failed = wait_state(client, token, {"probe_failed", "waiting_for_reply"})
        assert failed["state"]["stage"] == "probe_failed", failed
        assert "does not connect to internal addresses" in failed["state"]["probe"]
        assert "mx.user.test (127.0.0.1)" in failed["state"]["probe"]
        page = client.get(f"/mail/{token}")
        assert 'class="failed"' in page.text and "internal addresses" in page.text
    assert mx.messages() == []  # nothing was sent


def test_mail_mode_off_keeps_the_notice_and_has_no_pages(web_store: Store) -> None:
    from mecsa.web.app import create_app
    from mecsa.web.settings import ServiceSettings

    with TestClient(create_app(ServiceSettings(), store=web_store)) as client:
        home = client.post("/assess", data={"target": "me@example.org"})
        assert home.status_code == 200 and 'id="notice"' in home.text
        assert client.get("/mail/abcdefghabcdefgh").status_code == 404
        assert client.post("/api/v1/mail", json={"address": "me@example.org"}).status_code == 404
        assert "/api/v1/mail" not in client.get("/api/v1/openapi.json").json()["paths"]


def test_unknown_and_malformed_tokens_are_404(
    tmp_path: Path, provider: tuple[UserMx, ThreadedZoneServer], web_store: Store
) -> None:
    mx, server = provider
    with mail_client(web_store, with_changes(mail_settings(tmp_path, server, mx), listen=None)) as client:
        for path in ("/mail/abcdefghabcdefgh", "/mail/x'><script>", "/api/v1/mail/abcdefghabcdefgh"):
            response = client.get(path)
            assert response.status_code == 404, path
            assert "<script>" not in response.text
        assert client.get("/mail/abcdefghabcdefgh/events").status_code == 404
