"""The MTA-STS policy requests made by the cold CLI's helper process (issue 20), both sides.

`mecsa.probes.https_helper` starts the helper and says why. Each request is one JSON line: one
address of the policy host, the path and the bounds (`Timeouts`); the reply is the `HttpsAnswer`
or the `FetchFailure` that `mecsa.probes.https_client.request` gave, the very function the
in-process path calls, so the two paths give the same results. DNS stays in the main process:
the policy host is resolved by the assessment's resolver, which counts and caches every question.

Falling back. A helper that exited, answers nonsense or an error, or stays silent past the
attempt's bound plus `GRACE_S` is given up, and that request and every later one are made in
the main process instead. The cost is time, never a different answer; a request the helper may
already have sent is sent again (one more GET of a public policy file).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from mecsa.probes.https import Attempt, FailureKind, FetchFailure, HttpsAnswer, Timeouts

if TYPE_CHECKING:  # https_helper runs this module's `serve` in the helper process
    from mecsa.probes.https_helper import HelperProcess

# Beyond the attempt's own bound, how long the helper may stay silent before it is given up.
GRACE_S = 5.0
MAX_LINE = 1024 * 1024  # a reply carries at most a 64 KiB body, in base64, and its headers


class HelperGone(Exception):
    """The helper cannot answer (not started, exited, silent, or it said something malformed)."""


class RemoteAttempt:
    """The main process's side, an `Attempt`: sends requests, matches replies, falls back if needed."""

    def __init__(self, helper: HelperProcess, fallback: Callable[[], Attempt]) -> None:
        self._helper = helper
        self._sock = helper.sock
        self._fallback = fallback
        self._local: Attempt | None = None
        self._gone = False
        self._next_id = 0
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._abandoned: set[int] = set()  # cancelled by the caller: their late replies are dropped
        self._reader: asyncio.Task[None] | None = None

    @property
    def gone(self) -> bool:
        return self._gone

    async def __call__(
        self, host: str, shown_port: str, address: str, port: int, path: str
    ) -> HttpsAnswer | FetchFailure:
        """Made by the helper, or here once the helper is gone."""
        if not self._gone:
            try:
                return await self._ask(host, shown_port, address, port, path)
            except HelperGone:
                self._give_up()
        if self._local is None:
            self._local = self._fallback()
        return await self._local(host, shown_port, address, port, path)

    async def _ask(
        self, host: str, shown_port: str, address: str, port: int, path: str
    ) -> HttpsAnswer | FetchFailure:
        loop = asyncio.get_running_loop()
        if self._reader is None:
            self._reader = asyncio.ensure_future(self._read_replies())
        elif self._reader.done():
            raise HelperGone("the helper's replies ended")
        bounds = Timeouts.current()
        self._next_id += 1
        ident = self._next_id
        reply: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._waiting[ident] = reply
        request = {
            "id": ident,
            "host": host,
            "shown_port": shown_port,
            "address": address,
            "port": port,
            "path": path,
            "timeouts": [bounds.connect_s, bounds.read_s, bounds.attempt_s],
        }
        try:
            await loop.sock_sendall(self._sock, json.dumps(request).encode() + b"\n")
            async with asyncio.timeout(bounds.attempt_s + GRACE_S):
                return decode_outcome(await reply)
        except (OSError, TimeoutError, ValueError, KeyError, TypeError) as exc:
            raise HelperGone(str(exc)) from exc
        except asyncio.CancelledError:
            self._abandoned.add(ident)  # the caller gave up (a check's deadline): not the helper
            raise
        finally:
            self._waiting.pop(ident, None)

    async def _read_replies(self) -> None:
        try:
            async for line in _lines(self._sock):
                message = json.loads(line)
                ident = message["id"] if isinstance(message, dict) else None
                if ident in self._abandoned:
                    self._abandoned.discard(ident)
                    continue
                waiter = self._waiting.get(ident) if isinstance(ident, int) else None
                if waiter is None:
                    raise HelperGone("a reply to no request")
                if not waiter.done():
                    waiter.set_result(message)
            raise HelperGone("the helper exited")
        except (HelperGone, OSError, ValueError, KeyError, TypeError) as exc:
            gone = exc if isinstance(exc, HelperGone) else HelperGone(str(exc))
            self._gone = True
            for waiter in self._waiting.values():
                if not waiter.done():
                    waiter.set_exception(gone)

    def _give_up(self) -> None:
        self._gone = True
        if self._reader is not None:
            self._reader.cancel()
        self._helper.kill()


def encode_outcome(ident: int, outcome: HttpsAnswer | FetchFailure) -> bytes:
    if isinstance(outcome, HttpsAnswer):
        body = None if outcome.body is None else base64.b64encode(outcome.body).decode("ascii")
        data: dict[str, Any] = {
            "address": outcome.address,
            "status": outcome.status,
            "headers": [list(h) for h in outcome.headers],
            "body": body,
            "tls_version": outcome.tls_version,
        }
        return json.dumps({"id": ident, "answer": data}).encode() + b"\n"
    failure = {
        "stage": outcome.stage,
        "kind": outcome.kind.value,
        "detail": outcome.detail,
        "address": outcome.address,
    }
    return json.dumps({"id": ident, "failure": failure}).encode() + b"\n"


def decode_outcome(message: dict[str, Any]) -> HttpsAnswer | FetchFailure:
    """The outcome a reply carries; ValueError, KeyError or TypeError when it is malformed."""
    if "answer" in message:
        data = message["answer"]
        headers = tuple((_text(k), _text(v)) for k, v in data["headers"])
        body = data["body"]
        return HttpsAnswer(
            _text(data["address"]),
            _integer(data["status"]),
            headers,
            None if body is None else base64.b64decode(_text(body), validate=True),
            None if data["tls_version"] is None else _text(data["tls_version"]),
        )
    data = message["failure"]
    address = data["address"]
    return FetchFailure(
        _text(data["stage"]),
        FailureKind(data["kind"]),
        _text(data["detail"]),
        None if address is None else _text(address),
    )


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _integer(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


# The helper process's side.


def serve(fd: int, ca_file: str | None) -> int:
    """The helper process's side (`mecsa.probes.https_helper.main`): answer on `fd` until it closes."""
    sock = socket.socket(fileno=fd)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(sock, ca_file))
    return 0


async def _serve(sock: socket.socket, ca_file: str | None) -> None:
    from mecsa.probes import https_client

    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    clients: dict[tuple[float, float], Any] = {}
    defaults = Timeouts.current()
    clients[(defaults.connect_s, defaults.read_s)] = https_client.make_client(ca_file, defaults)
    await https_client.warm_up()
    sending = asyncio.Lock()
    running: set[asyncio.Task[None]] = set()

    async def answer(line: bytes) -> None:
        ident: object = None
        try:
            request = json.loads(line)
            ident = request["id"]
            connect_s, read_s, attempt_s = (float(t) for t in request["timeouts"])
            client = clients.get((connect_s, read_s))
            if client is None:
                client = clients[(connect_s, read_s)] = https_client.make_client(
                    ca_file, Timeouts(connect_s, read_s, attempt_s)
                )
            outcome = await https_client.request(
                client,
                request["host"],
                request["shown_port"],
                request["address"],
                int(request["port"]),
                request["path"],
                attempt_s,
            )
            reply = encode_outcome(int(request["id"]), outcome)
        except Exception as exc:  # the main process then makes this request itself, and meets it
            reply = json.dumps({"id": ident, "error": f"{type(exc).__name__}: {exc}"}).encode() + b"\n"
        async with sending:
            await loop.sock_sendall(sock, reply)

    async for line in _lines(sock):  # until the main process closes its end, or ends
        task = asyncio.ensure_future(answer(line))
        running.add(task)
        task.add_done_callback(running.discard)


async def _lines(sock: socket.socket) -> AsyncIterator[bytes]:
    """The newline-ended lines that arrive on `sock` (non-blocking), until it is closed.

    Both sides read this way; a line longer than any either side writes means the peer is not
    the one it should be (HelperGone).
    """
    loop = asyncio.get_running_loop()
    buffer = b""
    while chunk := await loop.sock_recv(sock, 65536):
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            yield line
        if len(buffer) > MAX_LINE:
            raise HelperGone("a line longer than any the helper or its caller writes")
