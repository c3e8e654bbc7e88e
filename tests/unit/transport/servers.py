"""SMTP servers on loopback for the transport tests: aiosmtpd for the well-behaved ones, plain
asyncio for the hostile ones. All bind 127.0.0.x on one shared port, so that one
`AssessOptions(smtp_port=...)` reaches every MX host of a test zone.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiosmtpd.smtp import SMTP

from tests.unit.transport.pki import Issued

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def server_context(
    leaf: Issued, extra: bytes, tmp: Path, *, version: ssl.TLSVersion | None = None
) -> ssl.SSLContext:
    """A server context presenting `leaf` (+ `extra` PEM certificates), optionally pinned to one version."""
    cert = tmp / f"chain-{id(leaf)}.pem"
    key = tmp / f"key-{id(leaf)}.pem"
    cert.write_bytes(leaf.pem + extra)
    key.write_bytes(leaf.key_pem())
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    if version is not None:
        context.set_ciphers("ALL:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = version
            context.maximum_version = version
    return context


class _Sink:
    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        return "250 OK"


def smtpd_factory(context: ssl.SSLContext | None, hostname: str = "mx.test") -> Callable[[], SMTP]:
    """aiosmtpd speaking SMTP, with STARTTLS when `context` is given."""
    return lambda: SMTP(_Sink(), hostname=hostname, tls_context=context, timeout=5)


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accepts, then says nothing."""
    with contextlib.suppress(Exception):
        await reader.read()
    writer.close()


async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Greets with something that is not SMTP."""
    writer.write(b"HTTP/1.1 400 Bad Request\r\n\x00\xff\xfe garbage\r\n")
    with contextlib.suppress(Exception):
        await writer.drain()
        await reader.read()
    writer.close()


async def long_line(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Sends a 1 MB banner line."""
    writer.write(b"220 " + b"x" * (1 << 20) + b"\r\n")
    with contextlib.suppress(Exception):
        await writer.drain()
        await reader.read()
    writer.close()


async def broken_tls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Offers STARTTLS, says 220 to it, then answers the ClientHello with junk."""
    try:
        writer.write(b"220 broken.test ESMTP\r\n")
        while line := await reader.readline():
            verb = line.strip().upper()
            if verb.startswith(b"EHLO"):
                writer.write(b"250-broken.test\r\n250-SIZE 1000\r\n250 STARTTLS\r\n")
            elif verb == b"STARTTLS":
                writer.write(b"220 go ahead\r\n")
                await writer.drain()
                await reader.read(1)
                writer.write(b"this is not a TLS record\r\n" * 4)
                await writer.drain()
                break
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                break
            else:
                writer.write(b"502 no\r\n")
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    writer.close()


class ResetsTls:
    """Offers STARTTLS, says 220 to it, then resets the TCP connection on the ClientHello.

    `connections` counts the sessions accepted, so tests can see the probe's one retry.
    """

    def __init__(self) -> None:
        self.connections = 0

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            writer.write(b"220 resets.test ESMTP\r\n")
            while line := await reader.readline():
                verb = line.strip().upper()
                if verb.startswith(b"EHLO"):
                    writer.write(b"250-resets.test\r\n250 STARTTLS\r\n")
                elif verb == b"STARTTLS":
                    writer.write(b"220 go ahead\r\n")
                    await writer.drain()
                    await reader.read(1)
                    # SO_LINGER 0: close() sends a TCP RST, what a crashing or filtering server does.
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()
                    return
                else:
                    writer.write(b"502 no\r\n")
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        writer.close()


class LoopbackServers:
    """Servers on 127.0.0.x sharing one ephemeral port."""

    def __init__(self) -> None:
        self.port = 0
        self.connections: dict[str, int] = {}  # aiosmtpd sessions accepted, per address
        self._servers: list[asyncio.Server] = []

    async def add_smtpd(self, host: str, context: ssl.SSLContext | None) -> None:
        """aiosmtpd at `host`, offering STARTTLS with `context` when given."""
        loop = asyncio.get_running_loop()
        make = smtpd_factory(context)

        def counted() -> SMTP:
            self.connections[host] = self.connections.get(host, 0) + 1
            return make()

        await self._bind(lambda port: loop.create_server(counted, host, port))

    async def add_raw(self, host: str, handler: Handler) -> None:
        """A plain asyncio server at `host` (for hostile behaviour)."""
        await self._bind(lambda port: asyncio.start_server(handler, host, port))

    async def _bind(self, start: Callable[[int], Awaitable[asyncio.Server]]) -> None:
        server = await start(self.port)
        self.port = self.port or server.sockets[0].getsockname()[1]
        self._servers.append(server)

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1)
