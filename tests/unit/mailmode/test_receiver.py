"""The receiver on loopback: what it refuses (with which codes), what it records, and load."""

from __future__ import annotations

import asyncio
import ssl
import time
from pathlib import Path

import aiosmtplib
import pytest

from mecsa.mailmode.receiver import Receiver, server_tls_context
from mecsa.observe import AssessOptions
from tests.conftest import ServeZones
from tests.unit.mailmode.certs import write_self_signed
from tests.unit.mailmode.conftest import DOMAIN, TOKEN, StartReceiver
from tests.unit.mailmode.signing import message, sign_rsa
from tests.unit.mailmode.zones import zones


async def _client(receiver: Receiver) -> aiosmtplib.SMTP:
    smtp = aiosmtplib.SMTP(
        hostname="127.0.0.1", port=receiver.port, start_tls=False, local_hostname="mail.sender.test"
    )
    await smtp.connect()
    await smtp.ehlo()
    return smtp


async def test_relaying_is_refused_with_550_5_7_1(start_receiver: StartReceiver) -> None:
    smtp = await _client(await start_receiver())
    await smtp.mail("a@sender.test")
    reply = await smtp.execute_command(b"RCPT", b"TO:<victim@elsewhere.test>")
    assert reply.code == 550 and reply.message.startswith("5.7.1")
    await smtp.quit()


async def test_unknown_user_is_refused_with_550_5_1_1(start_receiver: StartReceiver) -> None:
    smtp = await _client(await start_receiver())
    await smtp.mail("a@sender.test")
    for address in ("nobody@receiver.test", "short@dane-trap.receiver.test"):
        reply = await smtp.execute_command(b"RCPT", f"TO:<{address}>".encode())
        assert (reply.code, reply.message[:5]) == (550, "5.1.1"), address
    ok = await smtp.execute_command(b"RCPT", f"TO:<{TOKEN}@receiver.test>".encode())
    assert ok.code == 250
    await smtp.quit()


async def test_oversized_message_is_refused_with_552_5_3_4(start_receiver: StartReceiver) -> None:
    receiver = await start_receiver(max_size=2000)
    smtp = await _client(receiver)
    declared = await smtp.execute_command(b"MAIL", b"FROM:<a@sender.test> SIZE=5000")
    assert (declared.code, declared.message[:5]) == (552, "5.3.4")
    await smtp.rset()
    await smtp.mail("a@sender.test")
    await smtp.rcpt(f"{TOKEN}@{DOMAIN}")
    with pytest.raises(aiosmtplib.SMTPDataError) as refused:
        await smtp.data(message(body="x" * 70 + "\r\n") * 40)
    assert (refused.value.code, refused.value.message[:5]) == (552, "5.3.4")
    await smtp.quit()
    assert await receiver.store.count("delivery") == 0


async def test_connections_over_the_limit_get_421(start_receiver: StartReceiver) -> None:
    receiver = await start_receiver(max_connections=1)
    first = await _client(receiver)
    second = aiosmtplib.SMTP(hostname="127.0.0.1", port=receiver.port, start_tls=False, timeout=5)
    with pytest.raises(aiosmtplib.SMTPConnectError) as refused:
        await second.connect()
    assert "421" in str(refused.value)
    await first.quit()


async def test_message_is_recorded_analysed_and_token_returned(
    start_receiver: StartReceiver, serve_zones: ServeZones
) -> None:
    receiver = await start_receiver(await serve_zones(zones()))
    smtp = await _client(receiver)
    raw = sign_rsa(message(to=f"{TOKEN}@{DOMAIN}"), "s1", "sender.test", "good")
    _, reply = await smtp.sendmail("bounce@sender.test", [f"{TOKEN}@{DOMAIN}"], raw)
    await smtp.quit()
    assert reply == f"2.0.0 Stored for report {TOKEN}"
    await receiver.drain()
    entries = await receiver.store.entries(TOKEN, with_raw=True)
    assert [e.kind for e in entries] == ["delivery", "analysis"]
    delivery, analysis = entries
    conn = delivery.data["connection"]
    assert (conn["peer_ip"], conn["helo"], conn["mail_from"], conn["starttls"]) == (
        "127.0.0.1", "mail.sender.test", "bounce@sender.test", False
    )  # fmt: skip
    assert delivery.raw is not None and b"DKIM-Signature" in delivery.raw
    # delivered from 127.0.0.1, which sender.test's SPF does not list
    assert analysis.data["analysis"]["spf"]["mailfrom"]["result"] == "fail"
    assert analysis.data["analysis"]["dkim"][0]["result"] == "pass"
    verdicts = analysis.data["outbound"]["verdicts"]
    assert {p: v["status"] for p, v in verdicts.items()} == {
        "starttls": "fail", "spf": "fail", "dkim": "pass", "dmarc": "pass"
    }  # fmt: skip


async def test_fixed_address_gets_a_new_token(start_receiver: StartReceiver) -> None:
    receiver = await start_receiver()
    smtp = await _client(receiver)
    _, reply = await smtp.sendmail("a@sender.test", [f"test@{DOMAIN}"], message(to=f"test@{DOMAIN}"))
    await smtp.quit()
    token = reply.rsplit(" ", 1)[1]
    assert len(token) == 16 and token.isalnum()
    assert [e.kind for e in await receiver.store.entries(token)] == ["delivery"]


async def test_starttls_records_version_and_cipher(start_receiver: StartReceiver, tmp_path: Path) -> None:
    cert, key, _ = write_self_signed(tmp_path, f"mx.{DOMAIN}")
    receiver = await start_receiver(tls=server_tls_context(cert, key))
    client_tls = ssl.create_default_context()
    client_tls.check_hostname = False
    client_tls.verify_mode = ssl.CERT_NONE
    client_tls.minimum_version = ssl.TLSVersion.TLSv1_2
    smtp = aiosmtplib.SMTP(
        hostname="127.0.0.1", port=receiver.port, start_tls=True, tls_context=client_tls, timeout=5
    )
    await smtp.connect()
    await smtp.sendmail("a@sender.test", [f"{TOKEN}@{DOMAIN}"], message())
    await smtp.quit()
    (delivery,) = await receiver.store.entries(TOKEN)
    conn = delivery.data["connection"]
    assert conn["starttls"] is True
    assert conn["tls"]["version"] == "TLSv1.3"
    assert conn["tls"]["cipher"].startswith("TLS_") and conn["tls"]["bits"] >= 128


@pytest.mark.slow
async def test_200_concurrent_connections_lose_nothing(
    start_receiver: StartReceiver, serve_zones: ServeZones
) -> None:
    receiver = await start_receiver(await serve_zones(zones()))
    started = time.monotonic()

    async def one(i: int) -> str:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=receiver.port, start_tls=False, timeout=10)
        await smtp.connect()
        _, reply = await smtp.sendmail(f"a{i}@sender.test", [f"{TOKEN}@{DOMAIN}"], message(body=f"n={i}\r\n"))
        await smtp.quit()
        return reply

    replies = await asyncio.gather(*(one(i) for i in range(200)))
    assert all(r.startswith("2.0.0 Stored") for r in replies)
    assert await receiver.store.count("delivery") == 200
    entries = await receiver.store.entries(TOKEN)
    bodies = {e.data["connection"]["mail_from"] for e in entries if e.kind == "delivery"}
    assert len(bodies) == 200
    await receiver.drain()
    assert await receiver.store.count("analysis") == 200
    elapsed = time.monotonic() - started
    assert elapsed < 10, f"200 sessions and analyses took {elapsed:.1f} s"


async def test_sender_domain_is_assessed_once_per_token(
    start_receiver: StartReceiver, serve_zones: ServeZones
) -> None:
    receiver = await start_receiver(
        await serve_zones(zones()), assess_sender=True, assess_options=AssessOptions(only=frozenset({"spf"}))
    )
    smtp = await _client(receiver)
    for _ in range(2):
        await smtp.sendmail("bounce@sender.test", [f"{TOKEN}@{DOMAIN}"], message())
    await smtp.quit()
    await receiver.drain()
    kinds = [e.kind for e in await receiver.store.entries(TOKEN)]
    assert sorted(kinds) == ["analysis", "analysis", "assessment", "delivery", "delivery"]
    (assessed,) = [e for e in await receiver.store.entries(TOKEN) if e.kind == "assessment"]
    assert assessed.data["domain"] == "sender.test"
    assert assessed.data["assessment"]["domain"] == "sender.test"


async def test_sender_domain_assessment_asks_for_the_selector_that_just_verified(
    start_receiver: StartReceiver, serve_zones: ServeZones
) -> None:
    """Selector `lab` is in no built-in list: the domain assessment finds the key only because the
    reply's verified signature named it (no "no key under the selectors tried")."""
    from tests.unit.mailmode.signing import HEAD, key_line, rsa_record

    all_zones = zones()
    # only selector `lab`: the built-in list (s1, default, ...) finds nothing here
    all_zones["sender.test."] = HEAD + key_line("lab", rsa_record("good"))
    receiver = await start_receiver(
        await serve_zones(all_zones),
        assess_sender=True,
        assess_options=AssessOptions(only=frozenset({"dkim"})),
    )
    smtp = await _client(receiver)
    await smtp.sendmail(
        "bounce@sender.test", [f"{TOKEN}@{DOMAIN}"], sign_rsa(message(), "lab", "sender.test", "good")
    )
    await smtp.quit()
    await receiver.drain()
    (analysed,) = [e for e in await receiver.store.entries(TOKEN) if e.kind == "analysis"]
    assert [(s["s"], s["result"]) for s in analysed.data["analysis"]["dkim"]] == [("lab", "pass")]
    (assessed,) = [e for e in await receiver.store.entries(TOKEN) if e.kind == "assessment"]
    dkim = assessed.data["assessment"]["protocols"]["dkim"]
    assert dkim["status"] == "pass", dkim
