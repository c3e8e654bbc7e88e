"""Fetch a certificate's revocation status over HTTP: the OCSP responder, then the CRLs.

What the wire said, kept as bytes; `mecsa.revocation` judges it. The order follows what an
OpenSSL-style client does, and keeps a bulk scan polite: each OCSP responder of the AIA is asked
(HTTP POST, `application/ocsp-request`, RFC 6960 Appendix A.1); the CRL distribution points are
fetched (HTTP GET) only when no OCSP answer settled the question (`settled`).

OCSP stapling is not used: the stapled response needs the ClientHello to carry the
status_request extension (RFC 6066 §8), and Python's ssl module, which the SMTP probe uses, can
neither ask for it nor read the staple; no library on the project's list can (pyOpenSSL could,
but it is not on the list and has no asyncio streams). So the AIA responder is always asked.

Like the MTA-STS fetch (`probes/https.py`), each host name is resolved through the assessment's
resolver, never the system's, and each address is connected to as an IP literal with a `Host`
header; no redirect is followed; `trust_env=False` keeps proxy variables out of the way.

Bounds, stated: `CONNECT_TIMEOUT_S` for TCP, `READ_TIMEOUT_S` between reads, `ATTEMPT_TIMEOUT_S`
for one address from connect to the last byte, at most `MAX_ADDRESSES` addresses per URL and
`MAX_URLS` URLs per kind; an OCSP response may be `MAX_OCSP_BYTES`, a CRL `MAX_CRL_BYTES`.
The whole status lookup of one certificate is cut at `DEADLINE_S`; what was not fetched by then
is a failure ("could not find out"), never an answer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from mecsa import __version__
from mecsa.dns.resolver import Resolver
from mecsa.revocation import RevocationState, find_issuer, judge_ocsp, ocsp_request, revocation_points

CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 5.0
ATTEMPT_TIMEOUT_S = 10.0
DEADLINE_S = 25.0
MAX_ADDRESSES = 2
MAX_URLS = 3
MAX_OCSP_BYTES = 64 * 1024
MAX_CRL_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class HttpFetch:
    """One URL fetched: the body of a 200 answer, or why there is none (`failure`)."""

    url: str
    address: str | None = None
    status: int | None = None
    body: bytes | None = None
    failure: str | None = None
    elapsed_s: float = 0.0


@dataclass(frozen=True, slots=True)
class RevocationObservation:
    """What the revocation sources of one certificate said. `issuer` is the DER of its issuer."""

    leaf_sha256: str
    issuer: bytes
    ocsp: tuple[HttpFetch, ...] = ()
    crl: tuple[HttpFetch, ...] = ()
    not_fetched: tuple[str, ...] = ()
    failure: str | None = None  # the whole lookup's deadline passed


class _TooLarge(Exception):
    pass


def make_client() -> httpx.AsyncClient:
    """One plain-HTTP client per assessment: no redirects, no proxies, no keep-alive."""
    return httpx.AsyncClient(
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S, pool=CONNECT_TIMEOUT_S),
        limits=httpx.Limits(max_connections=8, max_keepalive_connections=0),
        headers={"User-Agent": f"mecsa/{__version__}", "Accept-Encoding": "identity"},
    )


async def _addresses(resolver: Resolver, host: str) -> list[str] | str:
    """The addresses to try for `host` (A first, then AAAA), or why there are none."""
    try:
        return [ipaddress.ip_address(host.strip("[]")).compressed]
    except ValueError:
        pass
    a, aaaa = await asyncio.gather(resolver.resolve(host, "A"), resolver.resolve(host, "AAAA"))
    found = [rd.to_text() for rd in (*a.records, *aaaa.records)]
    if found:
        return found[:MAX_ADDRESSES]
    failed = [d.describe_failure() for d in (a, aaaa) if d.failed]
    return f"could not look up {host}: {'; '.join(failed)}" if failed else f"{host} has no A or AAAA record"


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
    method = "POST" if post else "GET"
    try:
        async with asyncio.timeout(ATTEMPT_TIMEOUT_S):
            async with client.stream(
                method, url, headers=headers, content=post[1] if post else None
            ) as response:
                if response.status_code != 200:
                    return response.status_code, None
                return 200, await _read_body(response, max_bytes)
    except _TooLarge as exc:
        return str(exc)
    except TimeoutError:
        return f"no complete answer within {ATTEMPT_TIMEOUT_S:g} s"
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def _read_body(response: httpx.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _TooLarge(f"Content-Length {declared} exceeds the {max_bytes}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise _TooLarge(f"the body exceeds the {max_bytes}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


async def probe_revocation(
    resolver: Resolver,
    client: httpx.AsyncClient,
    leaf: x509.Certificate,
    issuer: x509.Certificate,
    *,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> RevocationObservation:
    """Ask `leaf`'s OCSP responders, then (unless one settled it) its CRL distribution points."""
    points = revocation_points(leaf)
    ocsp: list[HttpFetch] = []
    crl: list[HttpFetch] = []

    async def run() -> None:
        if points.ocsp:
            request = ("application/ocsp-request", ocsp_request(leaf, issuer))
            ocsp.extend(
                await asyncio.gather(
                    *(
                        fetch_http(resolver, client, url, max_bytes=MAX_OCSP_BYTES, post=request)
                        for url in points.ocsp[:MAX_URLS]
                    )
                )
            )
        if not settled(ocsp, leaf, issuer, now()):
            crl.extend(
                await asyncio.gather(
                    *(
                        fetch_http(resolver, client, url, max_bytes=MAX_CRL_BYTES)
                        for url in points.crl[:MAX_URLS]
                    )
                )
            )

    failure = None
    try:
        async with asyncio.timeout(DEADLINE_S):
            await run()
    except TimeoutError:
        failure = f"the revocation lookup did not finish within {DEADLINE_S:g} s"
    return RevocationObservation(
        fingerprint(leaf),
        issuer.public_bytes(serialization.Encoding.DER),
        tuple(ocsp),
        tuple(crl),
        points.not_fetched,
        failure,
    )


def fingerprint(cert: x509.Certificate) -> str:
    """The SHA-256 fingerprint that keys a certificate's revocation observation."""
    return cert.fingerprint(hashes.SHA256()).hex()


def settled(
    fetches: list[HttpFetch], leaf: x509.Certificate, issuer: x509.Certificate, now: dt.datetime
) -> bool:
    """Whether an OCSP answer already counts as good or revoked (then the CRLs are not fetched)."""
    for fetch in fetches:
        if fetch.body is None:
            continue
        state = judge_ocsp(fetch.url, fetch.body, leaf, issuer, now).state
        if state in (RevocationState.GOOD, RevocationState.REVOKED):
            return True
    return False


async def probe_presented_chains(
    resolver: Resolver,
    client: httpx.AsyncClient,
    chains: list[tuple[bytes, ...]],
    anchors: tuple[x509.Certificate, ...],
) -> tuple[RevocationObservation, ...]:
    """The revocation status of each distinct leaf among `chains` (DER, leaf first), looked up once.

    The issuer is found among the presented certificates and then the trust anchors; a leaf
    whose issuer is not found (self-signed, broken chain), or that names no http revocation
    source, is not looked up.
    """
    leaves: dict[str, tuple[x509.Certificate, x509.Certificate]] = {}
    for chain in chains:
        try:
            certs = [x509.load_der_x509_certificate(der) for der in chain]
        except ValueError:
            continue
        leaf = certs[0]
        key = fingerprint(leaf)
        if key in leaves or not revocation_points(leaf).any:
            continue
        issuer = find_issuer(leaf, (*certs[1:], *anchors))
        if issuer is not None:
            leaves[key] = (leaf, issuer)
    return tuple(
        await asyncio.gather(
            *(probe_revocation(resolver, client, leaf, issuer) for leaf, issuer in leaves.values())
        )
    )
