"""What the web mail-mode tests share: the user's provider on loopback, its zone, the service over it.

The user's provider is user.test: its MX (a mail-mode receiver taking `<token>@user.test`, with
STARTTLS and a matching DNSSEC-signed TLSA record) on 127.0.0.1, its outbound address 127.0.0.10
in its SPF, its DKIM key `s1`, and DMARC p=reject. The service's test domain is receiver.test;
its receiver runs inside the app (`listen = "127.0.0.1:0"`).
"""

from __future__ import annotations

import asyncio
import smtplib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from mecsa.dns.zoneserver import Fault, ThreadedZoneServer, ZoneData
from mecsa.harden.records import dkim_txt, spki_sha256
from mecsa.lab.senders import private_key_pem
from mecsa.mailmode.receiver import Receiver, ReceiverSettings, server_tls_context
from mecsa.mailmode.store import MailStore, StoredEntry
from mecsa.store import Store
from mecsa.web.app import create_app
from mecsa.web.mailmode_config import MailModeConfig
from mecsa.web.settings import ServiceSettings
from tests.unit.mailmode.certs import write_self_signed
from tests.unit.mailmode.signing import HEAD, key_line, message, rsa_record, sign_rsa
from tests.unit.mailmode.test_autoreply import KEY
from tests.unit.web.service import closed_port

USER = "user1234user5678@user.test"
USER_OUT = "127.0.0.10"  # where user.test's provider sends from (in its SPF)
TEST_DOMAIN = "receiver.test"
PUBLIC_URL = "https://mecsa.example"


class UserMx:
    """The user's MX on its own event loop thread (the app's TestClient runs another loop)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.receiver: Receiver | None = None
        self.store: MailStore | None = None

    def _run(self, work: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(30)

    def start(self) -> str:
        """Start it; return the zone text of user.test (its TLSA names the port it listens on)."""
        self.thread.start()
        cert, key, certificate = write_self_signed(self.directory, "mx.user.test")

        async def start() -> None:
            self.store = await MailStore.open(self.directory / "user-mx.sqlite3")
            settings = ReceiverSettings("user.test", port=0, analyse=False, record_connections=False)
            self.receiver = await Receiver(settings, self.store, None, server_tls_context(cert, key)).start()

        self._run(start())
        assert self.receiver is not None
        return (
            HEAD
            + "@ IN MX 10 mx\nmx IN A 127.0.0.1\n"
            + f"_{self.receiver.port}._tcp.mx IN TLSA 3 1 1 {spki_sha256(certificate)}\n"
            + f'@ IN TXT "v=spf1 ip4:{USER_OUT} -all"\n'
            + key_line("s1", rsa_record("good"))
            + '_dmarc IN TXT "v=DMARC1; p=reject"\n'
        )

    @property
    def port(self) -> int:
        assert self.receiver is not None
        return self.receiver.port

    def messages(self) -> list[StoredEntry]:
        """Every message the MX took (the probes, the auto-replies), with its raw bytes."""
        assert self.store is not None
        store = self.store
        return list(self._run(store.entries(USER.partition("@")[0], with_raw=True)))

    def stop(self) -> None:
        async def stop() -> None:
            if self.receiver is not None:
                await self.receiver.stop()
            if self.store is not None:
                await self.store.close()

        self._run(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@contextmanager
def user_provider(directory: Path) -> Iterator[tuple[UserMx, ThreadedZoneServer]]:
    mx = UserMx(directory)
    user_zone = mx.start()
    zones = {
        "test.": HEAD,
        "user.test.": user_zone,
        # internal.test: its MX is on loopback like user.test's; without --allow-private the guard refuses it
        "internal.test.": HEAD + "@ IN MX 10 mx\nmx IN A 127.0.0.1\n",
        "nomx.test.": HEAD + '@ IN TXT "v=spf1 -all"\n',
        # slow.test never answers its MX question: a probe to it stays in flight for a while
        "slow.test.": HEAD,
    }
    secure = ["test.", "user.test.", "internal.test.", "nomx.test.", "slow.test."]
    data = ZoneData.from_texts(zones, secure=secure, faults={"slow.test": Fault.TIMEOUT})
    try:
        with ThreadedZoneServer(data) as server:
            yield mx, server
    finally:
        mx.stop()


def mail_settings(directory: Path, server: ThreadedZoneServer, mx: UserMx, **changes: Any) -> ServiceSettings:
    """The service with mail mode on: receiver inside, probes to the user MX's port, signed by mm1."""
    key = directory / "dkim.pem"
    key.write_bytes(private_key_pem(KEY))
    config = MailModeConfig(
        TEST_DOMAIN,
        str(directory / "mailmode.sqlite3"),
        listen=("127.0.0.1", 0),
        dkim_key=str(key),
        dkim_selector="mm1",
        public_url=PUBLIC_URL,
        smtp_port=mx.port,
        smtp_timeout=5.0,
        window_minutes=0.0,
        autoreply_interval_minutes=0.0,
        **changes,
    )
    from mecsa.observe import AssessOptions

    return ServiceSettings(
        store_url=str(directory / "web.sqlite"),
        resolvers=(server.address,),
        dns_timeout=0.5,
        assess_options=AssessOptions(
            smtp_timeout=0.5, smtp_port=closed_port(), https_port=closed_port(), tls_versions=False
        ),
        allow_private=True,
        mailmode=config,
    )


@contextmanager
def mail_client(store: Store, settings: ServiceSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, store=store)) as client:
        yield client


def receiver_port(client: TestClient) -> int:
    port: int = client.app.state.mailmode.receiver.port  # type: ignore[attr-defined]
    return port


def reply(port: int, to: str, cc: list[str], *, from_addr: str = USER, subject_extra: str = "") -> None:
    """The user's provider replies: signed d=user.test s1, from its SPF address, over plain SMTP."""
    extra = f"Cc: {', '.join(cc)}\r\n" if cc else ""
    raw = message(from_addr=from_addr, to=to, extra=extra + subject_extra)
    signed = sign_rsa(raw.replace(b"@sender.test>", b"@user.test>"), "s1", "user.test", "good")
    with smtplib.SMTP(
        "127.0.0.1", port, local_hostname="mail.user.test", source_address=(USER_OUT, 0)
    ) as smtp:
        smtp.sendmail(from_addr, [to, *cc], signed)


def wait_state(client: TestClient, token: str, stages: set[str], timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        got: dict[str, Any] = client.get(f"/api/v1/mail/{token}").json()
        if got["state"]["stage"] in stages:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{token} still {got['state']['stage']}: {got['state']}")
        time.sleep(0.1)


def dkim_dns(name: bytes, timeout: int = 5) -> bytes:
    """The test domain's key, for verifying its auto-reply's signature."""
    assert name == f"mm1._domainkey.{TEST_DOMAIN}.".encode()
    return dkim_txt("mm1", TEST_DOMAIN, KEY.public_key()).value.encode()


def with_changes(settings: ServiceSettings, **changes: Any) -> ServiceSettings:
    assert settings.mailmode is not None
    return replace(settings, mailmode=replace(settings.mailmode, **changes))
