"""A small HTTPS responder on loopback that plays the MTA-STS policy host for one test.

It answers every request with one canned reply (or never answers), and records the SNI it was
offered and the request heads it received, so tests can check what the probe really sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Reply:
    status: int = 200
    reason: str = "OK"
    content_type: str | None = "text/plain"
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    declare_length: bool = True
    hang: bool = False


@dataclass
class PolicyServer:
    cert: Path
    key: Path
    reply: Reply
    host: str = "127.0.0.2"
    port: int = 0
    sni: list[str | None] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    requested: asyncio.Event = field(default_factory=asyncio.Event)  # set at the first request
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> PolicyServer:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        context.sni_callback = lambda _obj, name, _ctx: self.sni.append(name)
        self._server = await asyncio.start_server(self._serve, self.host, self.port, ssl=context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.requests.append(head.decode("latin-1"))
            self.requested.set()
            if self.reply.hang:
                await asyncio.Event().wait()
            writer.write(self._response())
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ssl.SSLError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    def _response(self) -> bytes:
        reply = self.reply
        lines = [f"HTTP/1.1 {reply.status} {reply.reason}", "Connection: close"]
        if reply.content_type is not None:
            lines.append(f"Content-Type: {reply.content_type}")
        if reply.declare_length:
            lines.append(f"Content-Length: {len(reply.body)}")
        lines.extend(f"{k}: {v}" for k, v in reply.headers)
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + reply.body
