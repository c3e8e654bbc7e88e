"""The revocation status sources of the MX certificates: OCSP responders first, then CRLs.

For each distinct leaf the MX hosts presented, once per assessment (once per scan, keyed by the
leaf's SHA-256 fingerprint): its issuer is found among the presented certificates and then the
trust anchors; each OCSP responder of its AIA is asked (HTTP POST); the CRL distribution points
are fetched (HTTP GET) only when no OCSP answer settled the question, which keeps a bulk scan
from downloading CRLs that add nothing. Each CRL is fetched once per URL and shared by every
leaf that names it (one CA's CRL serves all its leaves), so a scan downloads and holds it once.
A leaf without an issuer here (self-signed, broken chain), or without an http revocation
source, is not looked up.

OCSP stapling is not used: the staple needs the status_request extension in the ClientHello
(RFC 6066 §8), and Python's ssl module, which the SMTP probe uses, can neither ask for it nor
read the answer; no library on the project's list can (pyOpenSSL could, but it is not on the
list and has no asyncio streams). So the AIA responder is always asked.

Bounds: at most `MAX_URLS` URLs of each kind per certificate, and `DEADLINE_S` for the whole
lookup of one certificate; what was not fetched by then is a failure ("could not find out"),
never an answer. The per-fetch bounds are those of `mecsa.probes.revocation`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from mecsa.dns.resolver import Resolver
from mecsa.observe.context import Context
from mecsa.probes.clients import shared_client
from mecsa.probes.revocation import MAX_CRL_BYTES, MAX_OCSP_BYTES, HttpFetch, fetch_http, make_client
from mecsa.revocation import RevocationState, find_issuer, judge_ocsp, ocsp_request, revocation_points

if TYPE_CHECKING:  # httpx is imported when a certificate names a revocation source (issue 20)
    import httpx

DEADLINE_S = 25.0
MAX_URLS = 3
_CLIENT_KEY = "probes.revocation.client"


@dataclass(frozen=True, slots=True)
class RevocationObservation:
    """What the revocation sources of one certificate said. `issuer` is the DER of its issuer."""

    leaf_sha256: str
    issuer: bytes
    ocsp: tuple[HttpFetch, ...] = ()
    crl: tuple[HttpFetch, ...] = ()
    not_fetched: tuple[str, ...] = ()
    failure: str | None = None  # the whole lookup's deadline passed


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
        if judge_ocsp(fetch.url, fetch.body, leaf, issuer, now).state in (
            RevocationState.GOOD,
            RevocationState.REVOKED,
        ):
            return True
    return False


CrlFetcher = Callable[[str], Awaitable[HttpFetch]]


async def probe_revocation(
    resolver: Resolver,
    client: httpx.AsyncClient,
    leaf: x509.Certificate,
    issuer: x509.Certificate,
    fetch_crl: CrlFetcher | None = None,
) -> RevocationObservation:
    """Ask `leaf`'s OCSP responders, then (unless one settled it) its CRL distribution points.

    `fetch_crl` fetches one CRL URL; `observe_revocation` shares each CRL between the certificates
    that name it (one CA's CRL serves all its leaves), so it is downloaded and held once.
    """

    async def direct(url: str) -> HttpFetch:
        return await fetch_http(resolver, client, url, max_bytes=MAX_CRL_BYTES)

    get_crl = fetch_crl or direct
    points = revocation_points(leaf)
    ocsp: list[HttpFetch] = []
    crl: list[HttpFetch] = []

    async def run() -> None:
        if points.ocsp:
            request = ("application/ocsp-request", ocsp_request(leaf, issuer))
            urls = points.ocsp[:MAX_URLS]
            ocsp.extend(
                await asyncio.gather(
                    *(fetch_http(resolver, client, u, max_bytes=MAX_OCSP_BYTES, post=request) for u in urls)
                )
            )
        if not settled(ocsp, leaf, issuer, dt.datetime.now(dt.UTC)):
            crl.extend(await asyncio.gather(*(get_crl(u) for u in points.crl[:MAX_URLS])))

    failure = None
    try:
        async with asyncio.timeout(DEADLINE_S):
            await run()
    except TimeoutError:
        failure = f"the revocation lookup did not finish within {DEADLINE_S:g} s"
    issuer_der = issuer.public_bytes(serialization.Encoding.DER)
    return RevocationObservation(
        fingerprint(leaf), issuer_der, tuple(ocsp), tuple(crl), points.not_fetched, failure
    )


async def observe_revocation(
    ctx: Context, chains: list[tuple[bytes, ...]], anchors: tuple[x509.Certificate, ...]
) -> tuple[RevocationObservation, ...]:
    """The revocation sources of each distinct leaf among `chains` (DER, leaf first)."""
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
    if not leaves:
        return ()

    client = shared_client(_CLIENT_KEY, make_client)  # one per process and event loop

    def fetch_crl(url: str) -> Awaitable[HttpFetch]:
        return ctx.across(
            ("crl", url), lambda: fetch_http(ctx.resolver, client, url, max_bytes=MAX_CRL_BYTES)
        )

    def one(
        key: str, leaf: x509.Certificate, issuer: x509.Certificate
    ) -> asyncio.Future[RevocationObservation]:
        return asyncio.ensure_future(
            ctx.across(
                ("revocation", key), lambda: probe_revocation(ctx.resolver, client, leaf, issuer, fetch_crl)
            )
        )

    return tuple(await asyncio.gather(*(one(key, leaf, issuer) for key, (leaf, issuer) in leaves.items())))
