"""The receiver records every connection: peer, EHLO, STARTTLS, SNI, the verbs, and whether mail came."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiosmtplib

from mecsa.mailmode.connections import CONNECTIONS_TOKEN, ConnectionAttempt, aimed_at
from mecsa.probes.smtp import probe_context
from tests.unit.mailmode.certs import write_self_signed
from tests.unit.mailmode.conftest import DOMAIN, TOKEN, StartReceiver

TRAP_MX = f"mx.dane-trap.{DOMAIN}"


async def _attempts(receiver: object) -> list[ConnectionAttempt]:
    from mecsa.mailmode.receiver import Receiver

    assert isinstance(receiver, Receiver)
    for _ in range(100):  # the server sees the close a moment after the client's QUIT returns
        if receiver.active == 0:
            break
        await asyncio.sleep(0.02)
    await receiver.drain()
    return [ConnectionAttempt.from_json(e.data) for e in await receiver.store.entries(CONNECTIONS_TOKEN)]


async def test_a_client_that_starts_tls_and_quits_is_recorded_as_aborted_after_tls(
    tmp_path: Path, start_receiver: StartReceiver
) -> None:
    from mecsa.mailmode.receiver import server_tls_context

    cert, key, _ = write_self_signed(tmp_path, TRAP_MX)
    receiver = await start_receiver(tls=server_tls_context(cert, key))
    smtp = aiosmtplib.SMTP(
        hostname="127.0.0.1", port=receiver.port, start_tls=False, local_hostname="mail.s.test"
    )
    await smtp.connect()
    await smtp.ehlo()
    await smtp.starttls(server_hostname=TRAP_MX, tls_context=probe_context())
    await smtp.quit()
    (attempt,) = await _attempts(receiver)
    assert (attempt.peer_ip, attempt.local_ip, attempt.ehlo) == ("127.0.0.1", "127.0.0.1", "mail.s.test")
    assert attempt.commands == ("EHLO", "STARTTLS", "QUIT")
    assert attempt.starttls and attempt.tls_version == "TLSv1.3"
    assert attempt.sni == TRAP_MX and aimed_at(attempt, TRAP_MX)
    assert attempt.aborted_after_tls and not attempt.delivered
    assert "quit without sending" in attempt.describe()
    assert CONNECTIONS_TOKEN not in await receiver.store.tokens()


async def test_a_delivery_is_recorded_as_delivered_with_its_recipients(start_receiver: StartReceiver) -> None:
    receiver = await start_receiver()
    smtp = aiosmtplib.SMTP(
        hostname="127.0.0.1", port=receiver.port, start_tls=False, local_hostname="mail.s.test"
    )
    await smtp.connect()
    await smtp.sendmail("a@s.test", [f"{TOKEN}@{DOMAIN}"], b"Subject: x\r\n\r\nhi\r\n")
    await smtp.quit()
    (attempt,) = await _attempts(receiver)
    assert attempt.delivered and not attempt.aborted_after_tls and not attempt.starttls
    assert attempt.recipients == (f"{TOKEN}@{DOMAIN}",)
    assert attempt.commands[:4] == ("EHLO", "MAIL", "RCPT", "DATA")
    assert attempt.sni is None and not aimed_at(attempt, TRAP_MX)
    assert aimed_at(attempt, TRAP_MX, frozenset({"127.0.0.1"}))


async def test_the_store_reads_connections_since_a_time_only(tmp_path: Path) -> None:
    import datetime as dt

    from mecsa.mailmode.store import MailStore

    store = await MailStore.open(tmp_path / "s.sqlite3")
    try:
        await store.add(CONNECTIONS_TOKEN, "connection", {"n": 1})
        middle = dt.datetime.now(dt.UTC)
        await asyncio.sleep(0.01)
        await store.add(CONNECTIONS_TOKEN, "connection", {"n": 2})
        assert [e.data["n"] for e in await store.entries(CONNECTIONS_TOKEN)] == [1, 2]
        assert [e.data["n"] for e in await store.entries(CONNECTIONS_TOKEN, since=middle)] == [2]
    finally:
        await store.close()
