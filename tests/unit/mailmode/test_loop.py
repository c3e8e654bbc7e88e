"""The whole loop on loopback: the probe to the user's MX, the reply, the report."""

from __future__ import annotations

import datetime as dt
import email
from pathlib import Path

import aiosmtplib

from mecsa.dns.resolver import DnsClient
from mecsa.harden.records import spki_sha256
from mecsa.mailmode.probe import run_probe
from mecsa.mailmode.receiver import Receiver, ReceiverSettings, server_tls_context
from mecsa.mailmode.report import build_report, render_html, render_text
from mecsa.mailmode.store import MailStore
from tests.conftest import ServeZones
from tests.unit.mailmode.certs import write_self_signed
from tests.unit.mailmode.signing import HEAD, message, sign_rsa
from tests.unit.mailmode.zones import zones

TOKEN = "loop1234abcd5678"
USER = "user1234user5678@user.test"


async def _user_mx(tmp_path: Path, serve_zones: ServeZones, *, tlsa_ok: bool) -> tuple[Receiver, DnsClient]:
    """The user's provider: a receiver for user.test with STARTTLS, found through MX and TLSA."""
    cert, key, certificate = write_self_signed(tmp_path, "mx.user.test")
    store = await MailStore.open(tmp_path / "user.sqlite3")
    settings = ReceiverSettings("user.test", port=0, analyse=False)
    receiver = await Receiver(settings, store, None, server_tls_context(cert, key)).start()
    digest = spki_sha256(certificate) if tlsa_ok else "00" * 32
    user_zone = (
        HEAD + "@ IN MX 10 mx\nmx IN A 127.0.0.1\n" + f"_{receiver.port}._tcp.mx IN TLSA 3 1 1 {digest}\n"
    )
    client = await serve_zones({**zones(), "user.test.": user_zone}, secure=["user.test."])
    return receiver, client


async def test_probe_records_inbound_tls_and_dane_and_sends_reply_to(
    tmp_path: Path, serve_zones: ServeZones
) -> None:
    receiver, client = await _user_mx(tmp_path, serve_zones, tlsa_ok=True)
    try:
        result = await run_probe(USER, "receiver.test", TOKEN, client, port=receiver.port, smtp_timeout=3)
        assert result.delivered and result.mx_error is None
        (attempt,) = result.attempts
        assert (attempt.host, attempt.session.starttls_offered) == ("mx.user.test", True)
        assert attempt.session.tls is not None and attempt.session.tls.version == "TLSv1.3"
        assert attempt.dane.status == "matched"
        assert attempt.delivery is not None and attempt.delivery.tls_version == "TLSv1.3"
        assert attempt.pkix is not None and attempt.pkix[0] is False  # self-signed: recorded, not enforced
        (stored,) = await receiver.store.entries("user1234user5678", with_raw=True)
        assert stored.data["connection"]["starttls"] is True
        assert stored.raw is not None
        sent = email.message_from_bytes(stored.raw)
        assert " ".join(sent["Reply-To"].split()) == (
            f"{TOKEN}@receiver.test, {TOKEN}@dane-trap.receiver.test, {TOKEN}@sts-trap.receiver.test"
        )
        assert (
            sent["X-Mecsa-Token"] == TOKEN
            and stored.data["connection"]["mail_from"] == f"{TOKEN}@receiver.test"
        )
    finally:
        await receiver.stop()
        await receiver.store.close()


async def test_probe_reports_a_tlsa_mismatch(tmp_path: Path, serve_zones: ServeZones) -> None:
    receiver, client = await _user_mx(tmp_path, serve_zones, tlsa_ok=False)
    try:
        result = await run_probe(USER, "receiver.test", TOKEN, client, port=receiver.port, smtp_timeout=3)
        (attempt,) = result.attempts
        assert attempt.dane.status == "no_match" and "does not match" in attempt.dane.reason
    finally:
        await receiver.stop()
        await receiver.store.close()


async def test_reply_joins_the_report_with_outbound_and_enforcement_verdicts(
    tmp_path: Path, serve_zones: ServeZones
) -> None:
    client = await serve_zones(zones())
    store = await MailStore.open(tmp_path)
    settings = ReceiverSettings("receiver.test", port=0, assess_sender=False)
    receiver = await Receiver(settings, store, client).start()
    try:
        await store.add(
            TOKEN, "probe", {"recipient": USER, "delivered": True, "mx_error": None, "attempts": []}
        )
        cc = f"Cc: {TOKEN}@dane-trap.receiver.test, {TOKEN}@sts-trap.receiver.test\r\n"
        raw = sign_rsa(message(to=f"{TOKEN}@receiver.test", extra=cc), "s1", "sender.test", "good")
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=receiver.port, local_hostname="mail.sender.test")
        await smtp.connect()
        # a sender that does not enforce DANE delivers to its trap too; the MTA-STS trap gets nothing
        for rcpt in (f"{TOKEN}@receiver.test", f"{TOKEN}@dane-trap.receiver.test"):
            await smtp.sendmail("bounce@sender.test", [rcpt], raw)
        await smtp.quit()
        await receiver.drain()
        entries = await store.entries(TOKEN)
        later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=31)
        report = build_report(TOKEN, entries, later)
        verdicts = {e["trap"]: e["label"] for e in report["enforcement"]}
        assert verdicts == {"dane": "does not enforce DANE", "mta-sts": "enforces MTA-STS"}
        outbound = report["outbound"]["verdicts"]
        assert {p: v["status"] for p, v in outbound.items()} == {
            "starttls": "fail", "spf": "fail", "dkim": "pass", "dmarc": "pass"
        }  # fmt: skip
        assert report["inbound"]["recipient"] == USER
        assert len(report["messages"]) == 2
        assert set(report["outbound"]["scores"]) == {"mecsa", "mecsa-st"}
        text = render_text(report)
        assert "does not enforce DANE" in text and "enforces MTA-STS" in text
        page = render_html(report)
        assert "<strong>does not enforce DANE</strong>" in page and TOKEN in page
        early = build_report(TOKEN, entries, dt.datetime.now(dt.UTC))
        assert {e["trap"]: e["verdict"] for e in early["enforcement"]}["mta-sts"] == "unknown_yet"
    finally:
        await receiver.stop()
        await store.close()
