"""Fixtures of the mail-mode unit tests: receivers on loopback, stopped after the test."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from mecsa.dns.resolver import DnsClient
from mecsa.mailmode.receiver import Receiver, ReceiverSettings
from mecsa.mailmode.store import MailStore
from tests.conftest import ServeZones

DOMAIN = "receiver.test"
TOKEN = "abcdefgh12345678"
StartReceiver = Callable[..., Awaitable[Receiver]]


@pytest.fixture
async def start_receiver(tmp_path: Path, serve_zones: ServeZones) -> AsyncIterator[StartReceiver]:
    # serve_zones is requested here so that the DNS server outlives the receivers' background work
    running: list[Receiver] = []

    async def start(
        client: DnsClient | None = None, tls: ssl.SSLContext | None = None, **settings: object
    ) -> Receiver:
        store = await MailStore.open(tmp_path / "store.sqlite3")
        opts = {
            "domain": DOMAIN,
            "port": 0,
            "analyse": client is not None,
            "assess_sender": False,
            **settings,
        }
        receiver = await Receiver(ReceiverSettings(**opts), store, client, tls).start()  # type: ignore[arg-type]
        running.append(receiver)
        return receiver

    yield start
    for receiver in running:
        await receiver.stop()
        await receiver.store.close()
