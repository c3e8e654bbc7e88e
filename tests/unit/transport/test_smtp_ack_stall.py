"""The EHLO after STARTTLS must not wait for the client's delayed ACK (issue 20).

Postfix leaves Nagle on and, under TLS 1.3, writes its session tickets right after the handshake,
one record per write. The first ticket leaves at once; Nagle holds everything after it until that
segment is acknowledged. The client, which has just sent its EHLO, delays that ACK (Linux: 40 ms
at least), so the server's 250 sits in its send queue for the whole delayed-ACK timer. The probe
asks for immediate ACKs (TCP_QUICKACK) so that the reply comes back in one round trip.

The server below is a thread with blocking sockets, so that Nagle stays on as in Postfix (asyncio
turns it off on every socket it accepts). Loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mecsa.probes import smtp
from mecsa.probes.smtp import SmtpTimeouts, probe_smtp
from tests.unit.transport.pki import Pki
from tests.unit.transport.servers import server_context

MX = "mx.example.test"
TIMEOUTS = SmtpTimeouts.from_base(2.0)
SESSIONS = 3


class PostfixLike:
    """Speaks SMTP as Postfix does on the wire: Nagle on, TLS 1.3 with two session tickets, and
    each reply in one write. Records, per session, the time from the EHLO after TLS to the QUIT."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.ehlo_to_quit: list[float] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn, contextlib.suppress(OSError, ssl.SSLError):
                self._session(conn)

    def _session(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0  # Nagle on, as Postfix
        plain = conn.makefile("rb")
        conn.sendall(b"220 mx.example.test ESMTP Postfix\r\n")
        plain.readline()  # EHLO
        conn.sendall(b"250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 STARTTLS\r\n")
        plain.readline()  # STARTTLS
        conn.sendall(b"220 2.0.0 Ready to start TLS\r\n")
        tls = self.context.wrap_socket(conn, server_side=True)  # sends the tickets at the end
        secure = tls.makefile("rb")
        secure.readline()  # EHLO
        ehlo_at = time.monotonic()
        tls.sendall(b"250-mx.example.test\r\n250-PIPELINING\r\n250 SIZE 10240000\r\n")
        if secure.readline().upper().startswith(b"QUIT"):
            self.ehlo_to_quit.append(time.monotonic() - ehlo_at)
            tls.sendall(b"221 2.0.0 Bye\r\n")

    def close(self) -> None:
        self.listener.close()
        self.thread.join(timeout=5)


@pytest.fixture
def postfix_like(pki: Pki, tmp_path: Path) -> Iterator[PostfixLike]:
    context = server_context(pki.leaf(MX), pki.intermediate.pem, tmp_path)
    context.num_tickets = 2  # OpenSSL's default, and what Postfix sends
    server = PostfixLike(context)
    yield server
    server.close()


async def _fastest_ehlo_round_trip(server: PostfixLike) -> float:
    for _ in range(SESSIONS):
        obs = await probe_smtp(MX, "127.0.0.1", server.port, timeouts=TIMEOUTS)
        assert obs.failed_stage is None and obs.tls is not None and obs.tls.version == "TLSv1.3"
        assert obs.extensions_tls  # the EHLO after TLS was answered
    # The probe does not wait for the 221 (module docstring of probes/smtp.py): let the server
    # thread note the last QUIT.
    for _ in range(100):
        if len(server.ehlo_to_quit) == SESSIONS:
            break
        await asyncio.sleep(0.01)
    assert len(server.ehlo_to_quit) == SESSIONS
    # The fastest session: load on the machine can only add time, never take the 40 ms timer away.
    return min(server.ehlo_to_quit)


@pytest.mark.skipif(not hasattr(socket, "TCP_QUICKACK"), reason="TCP_QUICKACK is Linux's")
async def test_ehlo_after_tls_is_answered_without_the_delayed_ack_stall(postfix_like: PostfixLike) -> None:
    assert await _fastest_ehlo_round_trip(postfix_like) < 0.020


@pytest.mark.skipif(not hasattr(socket, "TCP_QUICKACK"), reason="TCP_QUICKACK is Linux's")
async def test_the_server_reproduces_the_stall_without_quick_acks(
    postfix_like: PostfixLike, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The control: without the socket option the same server shows the delayed-ACK timer, so the
    # test above measures the option and not a server that never stalls.
    monkeypatch.setattr(smtp, "_ack_promptly", lambda writer: None)
    assert await _fastest_ehlo_round_trip(postfix_like) >= 0.035
