"""The provider report end to end on loopback: a real message, the sender domain's real
assessment, the provider grade under both profiles, and the pages (text and HTML)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import aiosmtplib

from mecsa.mailmode.report import load_report, render_html, render_text
from mecsa.observe import AssessOptions
from tests.conftest import ServeZones
from tests.unit.mailmode.conftest import DOMAIN, TOKEN, StartReceiver
from tests.unit.mailmode.signing import message, sign_rsa
from tests.unit.mailmode.zones import zones


async def test_provider_report_grades_both_sides_and_says_which_evidence_counted(
    start_receiver: StartReceiver, serve_zones: ServeZones, tmp_path: Path
) -> None:
    # the MX of sender.test listens nowhere: its inbound side fails on proof, as it would for real
    options = AssessOptions(smtp_port=9, smtp_timeout=1.0, https_port=9, tls_versions=False)
    receiver = await start_receiver(await serve_zones(zones()), assess_sender=True, assess_options=options)
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=receiver.port, local_hostname="<b>evil</b>")
    await smtp.connect()
    raw = sign_rsa(message(to=f"{TOKEN}@{DOMAIN}"), "s1", "sender.test", "good")
    await smtp.sendmail("bounce@sender.test", [f"{TOKEN}@{DOMAIN}"], raw)
    await smtp.quit()
    await receiver.drain()
    report = await load_report(receiver.store, TOKEN)
    assert report is not None
    provider = report["provider"]
    assert (provider["domain"], provider["messages"], provider["assessed"]) == ("sender.test", 1, True)
    mecsa = provider["profiles"]["mecsa"]["protocols"]
    st = provider["profiles"]["mecsa-st"]["protocols"]
    assert mecsa["dkim"]["evidence"] == "both" and st["dkim"]["evidence"] == "outbound"
    assert st["dkim"]["counted"]  # 1 of 1 message carried a valid signature: MECSA's dkim
    assert not mecsa["starttls"]["counted"]  # delivered without TLS, and the MX cannot be reached
    assert mecsa["spf"]["counted"] is False  # the message came from 127.0.0.1, outside sender.test's SPF
    assert st["spf"]["why"].startswith("50%")  # the record counts half, the failed message nothing
    assert provider["mecsa_st_shares"]["dkim"] == 100.0
    text = render_text(report)
    assert "Provider grade for sender.test (1 message(s) from it):" in text
    assert "which evidence counted (mecsa | mecsa-st):" in text
    assert "see --json" not in text and "Domain sender.test in domain mode" in text
    page = render_html(report)
    for part in ('id="profile-mecsa"', 'id="profile-mecsa-st"', 'id="evidence-dkim"', 'id="outbound"',
                 'id="enforcement"', "★", "☆", "Inbound: how your provider receives mail"):  # fmt: skip
        assert part in page, part
    assert "<b>evil</b>" not in page and "&lt;b&gt;evil&lt;/b&gt;" in page
    assert ">True<" not in page and ">False<" not in page  # the old page printed Python booleans


async def test_the_text_report_shows_the_probe_certificate_and_what_the_delivery_did(
    start_receiver: StartReceiver, tmp_path: Path
) -> None:
    from mecsa.mailmode.report import build_report

    receiver = await start_receiver()
    said = "the provider's server refused the probe for good at RCPT (550 No such user here)"
    tls = {"version": "TLSv1.3", "cipher": "X"}
    attempt = {
        "host": "mx.user.test",
        "session": {"address": "127.0.0.1", "starttls_offered": True, "tls": tls},
        "dane": {"status": "no_tlsa", "reason": "no TLSA record", "records": []},
        "pkix": {"valid": False, "reason": "self-signed certificate"},
        "delivery": {"accepted": False, "code": 550, "reply": "No such user here", "explanation": said},
    }
    probe = {"recipient": "bob@user.test", "delivered": False, "mx_error": None, "attempts": [attempt]}
    await receiver.store.add(TOKEN, "probe", probe)
    report = build_report(TOKEN, await receiver.store.entries(TOKEN), dt.datetime.now(dt.UTC))
    text = render_text(report)
    assert "to bob@user.test: NOT delivered" in text
    assert "certificate: NOT valid (self-signed certificate)" in text
    assert (
        "delivery: the provider's server refused the probe for good at RCPT (550 No such user here)" in text
    )
    assert "code: None" not in text
