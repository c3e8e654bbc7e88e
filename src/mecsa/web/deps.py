"""What routes ask of a request: the client's address, its API token, a domain from user input."""

from __future__ import annotations

import asyncio

from fastapi import Request

from mecsa.domain import DomainError, normalise_domain
from mecsa.store.api_tokens import token_is_valid
from mecsa.web.service import service_of

MAX_INPUT = 320  # an address is at most 254 octets (RFC 5321 §4.5.3.1.3), a domain 253


def client_key(request: Request) -> str:
    """The client's IP address: behind the proxy, the last X-Forwarded-For entry (the one it added)."""
    if service_of(request).settings.behind_proxy:
        forwarded = request.headers.get("x-forwarded-for", "")
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        if hops:
            return hops[-1]
    return request.client.host if request.client else "unknown"


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


async def authenticated(request: Request, token: str | None = None) -> bool:
    """Whether the request carries a valid API token (the header, or `token` from a form)."""
    chosen = token or bearer_token(request)
    if not chosen:
        return False
    return await asyncio.to_thread(token_is_valid, service_of(request).store, chosen)


def parse_domain(text: str) -> str:
    """The A-label form of a domain typed by a user; DomainError with a one-line reason otherwise."""
    if len(text) > MAX_INPUT:
        raise DomainError("that is too long to be a domain name")
    return normalise_domain(text)


def is_address(text: str) -> bool:
    return "@" in text.strip()
