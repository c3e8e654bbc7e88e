"""Headers on every response, and bounded request bodies: pure ASGI middleware (streams untouched).

- A strict Content Security Policy: scripts and style sheets only with this response's nonce, no
  other origin, no framing (`frame-ancestors 'none'`). A route that sets its own policy (the
  downloadable report, which carries its script's hash) keeps it.
- `Strict-Transport-Security` when the request came over TLS (directly, or per the trusted proxy's
  `X-Forwarded-Proto`): a plain-HTTP answer must not carry it (RFC 6797 §7.2).
- `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`, `X-Frame-Options: DENY`.
- A body larger than the limit is refused with 413, whether it announces its length or not.
"""

from __future__ import annotations

import secrets
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HSTS = "max-age=31536000"


def content_security_policy(nonce: str) -> str:
    return (
        "default-src 'none'; "
        f"script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "img-src 'self' data:; connect-src 'self'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    )


def request_is_tls(scope: Scope, behind_proxy: bool) -> bool:
    if scope.get("scheme") in ("https", "wss"):
        return True
    if behind_proxy:
        for name, value in scope.get("headers", ()):
            if name == b"x-forwarded-proto":
                return bool(value.decode("latin-1").split(",")[0].strip().lower() == "https")
    return False


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, behind_proxy: bool = False) -> None:
        self.app = app
        self.behind_proxy = behind_proxy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(18)
        scope.setdefault("state", {})["csp_nonce"] = nonce
        tls = request_is_tls(scope, self.behind_proxy)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[tuple[bytes, bytes]] = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                extra = {
                    b"content-security-policy": content_security_policy(nonce).encode(),
                    b"x-content-type-options": b"nosniff",
                    b"referrer-policy": b"no-referrer",
                    b"x-frame-options": b"DENY",
                }
                if tls:
                    extra[b"strict-transport-security"] = HSTS.encode()
                headers += [(k, v) for k, v in extra.items() if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """Refuse request bodies above `max_bytes` with 413 before the application reads them whole."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_bytes):
                await _too_large(send, self.max_bytes)
                return
        received = 0
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited_receive, send_tracking)
        except _TooLarge:
            if not started:
                await _too_large(send, self.max_bytes)


class _TooLarge(Exception):
    pass


async def _too_large(send: Send, limit: int) -> None:
    body = f'{{"detail":"the request body is larger than {limit} bytes"}}'.encode()
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
