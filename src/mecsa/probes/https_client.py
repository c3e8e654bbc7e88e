"""One address's MTA-STS policy request, made with httpx (the `Attempt` of `mecsa.probes.https`).

Apart from `mecsa.probes.https` so that its imports (httpx, httpcore, anyio, h11: ~30 ms) are paid
only by the process that makes the request: the in-process path imports this module on its first
fetch, and the cold CLI's helper process (`mecsa.probes.https_helper`) imports it at its start.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from typing import Any

import httpx

from mecsa import __version__
from mecsa.probes.https import (
    MAX_BODY_BYTES,
    Attempt,
    FailureKind,
    FetchFailure,
    HttpsAnswer,
    Timeouts,
    verifying_context,
)


def make_client(ca_file: str | None, timeouts: Timeouts | None = None) -> httpx.AsyncClient:
    """A client for one trust store: verifying ssl context, no redirects, no proxies, no keep-alive.

    `trust_env=False` keeps proxy variables from routing the fetch around our resolver; no
    keep-alive means no socket outlives a fetch, so the client needs no explicit closing.
    """
    bounds = timeouts or Timeouts.current()
    return httpx.AsyncClient(
        verify=verifying_context(ca_file),
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(bounds.read_s, connect=bounds.connect_s, pool=bounds.connect_s),
        limits=httpx.Limits(max_connections=8, max_keepalive_connections=0),
        headers={"User-Agent": f"mecsa/{__version__}", "Accept-Encoding": "identity"},
    )


async def warm_up() -> None:
    """Import now what the first request would: httpcore's anyio backend (~20-30 ms of imports).

    The helper process runs this while it waits for its first question, so that the question's
    answer does not wait for them. anyio's public names; the backend module is loaded by the
    first checkpoint on this event loop, as the first request's would load it.
    """
    import anyio.lowlevel
    import anyio.streams.tls
    import anyio.to_thread  # the connect's too

    await anyio.lowlevel.checkpoint()


def client_attempt(client: httpx.AsyncClient, attempt_s: float | None = None) -> Attempt:
    """The `Attempt` that asks with `client`, each within `attempt_s` (default: the module's)."""

    async def attempt(
        host: str, shown_port: str, address: str, port: int, path: str
    ) -> HttpsAnswer | FetchFailure:
        limit = Timeouts.current().attempt_s if attempt_s is None else attempt_s
        return await request(client, host, shown_port, address, port, path, limit)

    return attempt


class BodyTooLarge(Exception):
    """The body is larger than the caller reads (`read_capped`)."""


async def request(
    client: httpx.AsyncClient,
    host: str,
    shown_port: str,
    address: str,
    port: int,
    path: str,
    attempt_s: float,
) -> HttpsAnswer | FetchFailure:
    """GET `path` from `address`, as `host` (SNI, certificate name and Host header)."""
    events: list[str] = []

    async def trace(name: str, info: dict[str, Any]) -> None:
        events.append(name)

    literal = f"[{address}]" if ":" in address else address
    url = f"https://{literal}:{port}{path}"
    headers = {"Host": f"{host}{shown_port}", "Accept": "text/plain"}
    extensions = {"sni_hostname": host, "trace": trace}
    try:
        async with asyncio.timeout(attempt_s):
            async with client.stream("GET", url, headers=headers, extensions=extensions) as response:
                body = await read_capped(response, MAX_BODY_BYTES) if response.status_code == 200 else None
                stream = response.extensions.get("network_stream")
                ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
                return HttpsAnswer(
                    address,
                    response.status_code,
                    tuple(response.headers.multi_items()),
                    body,
                    ssl_object.version() if ssl_object is not None else None,
                )
    except BodyTooLarge as exc:
        return FetchFailure("body", FailureKind.TOO_LARGE, str(exc), address)
    except TimeoutError:
        why = f"no complete answer within {attempt_s:g} s"
        return FetchFailure(_stage(events), FailureKind.TIMEOUT, why, address)
    except httpx.HTTPError as exc:
        return _classify(exc, _stage(events), address)


async def read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    """The body of a streamed response, read as it comes; BodyTooLarge past `max_bytes`.

    Also the revocation fetches' reader (`mecsa.probes.revocation`).
    """
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge(f"Content-Length {declared} exceeds the {max_bytes}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge(f"the body exceeds the {max_bytes}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _stage(events: list[str]) -> str:
    if "connection.start_tls.complete" in events:
        return "http"
    if "connection.connect_tcp.complete" in events:
        return "tls"
    return "connect"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _classify(exc: httpx.HTTPError, stage: str, address: str) -> FetchFailure:
    chain = list(_causes(exc))
    detail = str(exc) or type(exc).__name__
    for cause in chain:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return FetchFailure(stage, FailureKind.CERTIFICATE, cause.verify_message or str(cause), address)
    if isinstance(exc, httpx.TimeoutException) or any(isinstance(c, TimeoutError) for c in chain):
        return FetchFailure(stage, FailureKind.TIMEOUT, f"timed out: {detail}", address)
    if stage == "tls" and any(isinstance(c, ssl.SSLError) for c in chain):
        return FetchFailure(stage, FailureKind.TLS, detail, address)
    if any(isinstance(c, ConnectionRefusedError) for c in chain):
        return FetchFailure(stage, FailureKind.REFUSED, "connection refused", address)
    if isinstance(exc, httpx.ProtocolError):
        return FetchFailure(stage, FailureKind.PROTOCOL, detail, address)
    return FetchFailure(stage, FailureKind.NETWORK, detail, address)
