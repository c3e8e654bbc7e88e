"""Plain-HTTP fetches for revocation data (OCSP responses, CRLs): what the server said, nothing judged.

The observation layer (`mecsa.observe.revocation`) decides what to fetch and `mecsa.revocation`
judges it. OCSP is an HTTP POST of `application/ocsp-request` (RFC 6960 Appendix A.1), a CRL an
HTTP GET (RFC 5280 §4.2.1.13).

Like the MTA-STS fetch (`probes/https.py`), each host name is resolved through the assessment's
resolver, never the system's, and each address is connected to as an IP literal with a `Host`
header; no redirect is followed; `trust_env=False` keeps proxy variables out of the way. The URL
is the certificate maker's choice, so link-local, multicast and unspecified addresses are never
fetched from (a POST to a cloud metadata service at 169.254.169.254 is not ours to send).

Bounds, stated: `CONNECT_TIMEOUT_S` for TCP, `READ_TIMEOUT_S` between reads, `ATTEMPT_TIMEOUT_S`
for one address from connect to the last byte, at most `MAX_ADDRESSES` addresses per URL; the
caller gives the size limit (`MAX_OCSP_BYTES` for an OCSP response, `MAX_CRL_BYTES` for a CRL).
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mecsa import __version__
from mecsa.dns.resolver import Resolver

CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 5.0
ATTEMPT_TIMEOUT_S = 10.0
MAX_ADDRESSES = 2
MAX_OCSP_BYTES = 64 * 1024
MAX_CRL_BYTES = 8 * 1024 * 1024

if TYPE_CHECKING:  # imported by the functions that use it: most MX certificates of a cold CLI run
    import httpx  # name no revocation source, and httpx's imports cost ~30 ms (issue 20)


@dataclass(frozen=True, slots=True)
class HttpFetch:
    """One URL fetched: the body of a 200 answer, or why there is none (`failure`)."""

    url: str
    address: str | None = None
    status: int | None = None
    body: bytes | None = None
    failure: str | None = None
    elapsed_s: float = 0.0


def make_client() -> httpx.AsyncClient:
    """A plain-HTTP client (one per process and event loop): no redirects, no proxies, no keep-alive."""
    import httpx

    return httpx.AsyncClient(
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S, pool=CONNECT_TIMEOUT_S),
        limits=httpx.Limits(max_connections=8, max_keepalive_connections=0),
        headers={"User-Agent": f"mecsa/{__version__}", "Accept-Encoding": "identity"},
    )


def _never_fetched(address: str) -> bool:
    """Addresses a certificate's URL must not make us send to: link-local (cloud metadata
    services live at 169.254.169.254), multicast, unspecified. The URL comes from whoever made
    the certificate, and the fetch is a POST."""
    ip = ipaddress.ip_address(address)
    return ip.is_link_local or ip.is_multicast or ip.is_unspecified


async def _addresses(resolver: Resolver, host: str) -> list[str] | str:
    """The addresses to try for `host` (A first, then AAAA), or why there are none."""
    try:
        found = [ipaddress.ip_address(host.strip("[]")).compressed]
    except ValueError:
        a, aaaa = await asyncio.gather(resolver.resolve(host, "A"), resolver.resolve(host, "AAAA"))
        found = [rd.to_text() for rd in (*a.records, *aaaa.records)]
        if not found:
            failed = [d.describe_failure() for d in (a, aaaa) if d.failed]
            why = (
                f"could not look up {host}: {'; '.join(failed)}"
                if failed
                else f"{host} has no A or AAAA record"
            )
            return why
    usable = [address for address in found if not _never_fetched(address)]
    if not usable:
        return f"{host} resolves only to addresses that are never fetched from ({', '.join(found)})"
    return usable[:MAX_ADDRESSES]


async def fetch_http(
    resolver: Resolver,
    client: httpx.AsyncClient,
    url: str,
    *,
    max_bytes: int,
    post: tuple[str, bytes] | None = None,
) -> HttpFetch:
    """GET `url`, or POST `post` = (content type, body) to it, resolving through `resolver`."""
    started = time.monotonic()
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or 80
    except ValueError:
        return HttpFetch(url, failure="the URL's port is not a number")
    addresses = await _addresses(resolver, host) if host else "the URL has no host"
    if isinstance(addresses, str):
        return HttpFetch(url, failure=addresses, elapsed_s=time.monotonic() - started)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {"Host": parts.netloc.rsplit("@", 1)[-1]}
    if post:
        headers["Content-Type"] = post[0]
    failures: list[str] = []
    for address in addresses:
        literal = f"[{address}]" if ":" in address else address
        outcome = await _attempt(client, f"http://{literal}:{port}{target}", headers, post, max_bytes)
        if isinstance(outcome, str):
            failures.append(f"{address}: {outcome}")
            continue
        status, body = outcome
        elapsed = time.monotonic() - started
        if status != 200:
            return HttpFetch(url, address, status, None, f"HTTP status {status}", elapsed)
        return HttpFetch(url, address, status, body, None, elapsed)
    return HttpFetch(url, failure="; ".join(failures), elapsed_s=time.monotonic() - started)


async def _attempt(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    post: tuple[str, bytes] | None,
    max_bytes: int,
) -> tuple[int, bytes | None] | str:
    import httpx

    from mecsa.probes.https_client import BodyTooLarge, read_capped

    method = "POST" if post else "GET"
    try:
        async with asyncio.timeout(ATTEMPT_TIMEOUT_S):
            async with client.stream(
                method, url, headers=headers, content=post[1] if post else None
            ) as response:
                if response.status_code != 200:
                    return response.status_code, None
                return 200, await read_capped(response, max_bytes)
    except BodyTooLarge as exc:
        return str(exc)
    except TimeoutError:
        return f"no complete answer within {ATTEMPT_TIMEOUT_S:g} s"
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
