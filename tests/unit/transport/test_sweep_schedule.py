"""The TLS sweep's schedule beside the main session (issue 20), seen from the server's side.

A loopback server that answers every command 0.1 s late records when each connection opens and
closes. Against a modern server (TLS 1.2 and 1.3, no weak suite) one address must see: the main
session and three sweep sessions (TLSv1 + TLSv1.1 in one ClientHello, then TLSv1.2, beside the
main session; the weak classes in another ClientHello after it), never more than two at once
(`PER_ADDRESS_CONNECTIONS`), and no chain of more than two sessions one after the other: the
sweep adds one session's length to the main one, not three waves.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP

from mecsa.dns.resolver import DnsClient, Nameserver, Resolver
from mecsa.observe import AssessOptions, Context
from mecsa.observe.transport import session, tls_sweep
from mecsa.probes.smtp import PER_ADDRESS_CONNECTIONS
from mecsa.probes.tls import TrialOutcome
from tests.unit.transport.pki import Pki
from tests.unit.transport.servers import server_context

MX = "mx.example.test"
ADDRESS = "127.0.0.2"
DELAY = 0.1


class _Sink:
    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        return "250 OK"


class Recorder:
    """Open and close times of every connection, and the most open at once."""

    def __init__(self) -> None:
        self.spans: list[list[float]] = []
        self.open = 0
        self.most = 0

    def opened(self) -> list[float]:
        self.open += 1
        self.most = max(self.most, self.open)
        span = [time.monotonic(), float("inf")]
        self.spans.append(span)
        return span

    def closed(self, span: list[float]) -> None:
        self.open -= 1
        span[1] = time.monotonic()

    def longest_chain(self) -> int:
        """The most sessions of which each opened only after the one before it had closed."""
        spans = sorted(self.spans)
        depth = [1] * len(spans)
        for i, (start, _) in enumerate(spans):
            depth[i] = 1 + max((depth[j] for j in range(i) if spans[j][1] <= start), default=0)
        return max(depth)


def slow_smtpd(recorder: Recorder, context: Any) -> type[SMTP]:
    class Slow(SMTP):
        def connection_made(self, transport: Any) -> None:
            if getattr(self, "_span", None) is None:  # aiosmtpd calls it again after STARTTLS
                self._span = recorder.opened()
            super().connection_made(transport)

        def connection_lost(self, exc: Exception | None) -> None:
            if self._span[1] == float("inf"):
                recorder.closed(self._span)
            super().connection_lost(exc)

        async def push(self, status: Any) -> None:
            text = status.decode() if isinstance(status, bytes) else status
            if len(text) == 3 or text[3:4] == " ":
                await asyncio.sleep(DELAY)
            await super().push(status)

    return Slow


async def test_modern_server_sees_the_sweep_beside_the_main_session_in_two_slots(
    pki: Pki, tmp_path: Path
) -> None:
    recorder = Recorder()
    tls = server_context(pki.leaf(MX), b"", tmp_path)
    smtpd = slow_smtpd(recorder, tls)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: smtpd(_Sink(), hostname=MX, tls_context=tls, timeout=5), ADDRESS, 0
    )
    port = server.sockets[0].getsockname()[1]
    try:
        resolver = Resolver(DnsClient([Nameserver("127.0.0.1", 9)]))  # never asked: no DNS here
        ctx = Context("example.test", resolver, AssessOptions(smtp_port=port, smtp_timeout=5))
        main = await session(ctx, MX, ADDRESS)
        assert main.tls is not None and main.tls.version == "TLSv1.3"
        sweep = await tls_sweep(ctx, main)
    finally:
        server.close()
        await server.wait_closed()
    outcomes = {t.label: t.outcome for t in (*sweep.versions, *sweep.weak_ciphers)}
    assert [label for label, o in outcomes.items() if o is TrialOutcome.ACCEPTED] == ["TLSv1.2", "TLSv1.3"]
    assert outcomes["TLSv1"] is outcomes["TLSv1.1"] is outcomes["NULL"] is TrialOutcome.REFUSED
    assert len(recorder.spans) == 1 + 3
    assert recorder.most == PER_ADDRESS_CONNECTIONS == 2
    first, second, third, _ = sorted(recorder.spans)
    assert second[0] < first[1]  # the first trial connected while the main session ran
    # and the TLSv1.2 offer followed it in that slot as soon as the main session's handshake
    # showed TLSv1.3, before the main session's last EHLO was answered
    assert second[1] <= third[0] < first[1]
    assert recorder.longest_chain() == 2
