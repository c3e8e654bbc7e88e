"""HTTPS fetch of the MTA-STS policy file (RFC 8461 §3.3): what the server said, nothing judged.

`https://mta-sts.<domain>/.well-known/mta-sts.txt` is fetched the way RFC 8461 wants a sender to:

- the host name is resolved through the assessment's resolver (never the system's), and each
  address is tried in turn (A first, then AAAA) until one gives a definite answer;
- TLS uses SNI = the host name and validates the chain (system CA bundle, or `--ca-file`) and the
  name against the host name, not the address (httpcore's `sni_hostname` request extension sets
  `server_hostname`, which the stdlib ssl module checks);
- no redirect is followed (a 3xx is recorded as it came);
- the body is read as a stream and cut at `MAX_BODY_BYTES`.

Bounded timeouts, stated here: `CONNECT_TIMEOUT_S` for TCP and TLS, `READ_TIMEOUT_S` between reads,
`ATTEMPT_TIMEOUT_S` for one address from connect to last byte (a slow drip cannot stall it).
The httpx client is built by the caller (one per process and event loop: `probes/clients.py`).
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

import httpx

from mecsa import __version__
from mecsa.dns.answer import DnsAnswer
from mecsa.dns.resolver import Resolver

WELL_KNOWN_PATH = "/.well-known/mta-sts.txt"
MAX_BODY_BYTES = 64 * 1024
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 10.0
ATTEMPT_TIMEOUT_S = 20.0


class FailureKind(StrEnum):
    """Why a fetch got no usable answer. `definite` kinds are the server's (or DNS's) own answer."""

    DNS = "dns"  # the policy host's address lookup failed: could not find out
    NO_ADDRESS = "no_address"  # NXDOMAIN or no A/AAAA: definite
    TIMEOUT = "timeout"
    NETWORK = "network"  # unreachable, reset: could not find out
    REFUSED = "refused"  # the host answered with a TCP reset: definite
    CERTIFICATE = "certificate"  # chain or name did not verify: definite
    TLS = "tls"  # the handshake failed otherwise: definite
    PROTOCOL = "protocol"  # the server did not speak HTTP/1.1 properly: definite
    TOO_LARGE = "too_large"  # the body exceeded MAX_BODY_BYTES: definite

    @property
    def definite(self) -> bool:
        return self not in (FailureKind.DNS, FailureKind.TIMEOUT, FailureKind.NETWORK)


@dataclass(frozen=True, slots=True)
class FetchFailure:
    """One failure: `stage` is dns, connect, tls, http or body."""

    stage: str
    kind: FailureKind
    detail: str
    address: str | None = None

    def describe(self) -> str:
        where = f" ({self.address})" if self.address else ""
        return f"{self.stage}{where}: {self.detail}"


@dataclass(frozen=True, slots=True)
class HttpsObservation:
    """The outcome of one policy fetch.

    When `failure` is None, `status`/`headers` hold the response of `address` and `body` its
    content (only read for status 200). `attempts` lists failures of addresses tried before.
    """

    host: str
    port: int
    url: str
    a: DnsAnswer
    aaaa: DnsAnswer
    address: str | None = None
    status: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    tls_version: str | None = None
    failure: FetchFailure | None = None
    attempts: tuple[FetchFailure, ...] = ()
    elapsed_s: float = 0.0

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(rd.to_text() for rd in (*self.a.records, *self.aaaa.records))

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive)."""
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)

    @property
    def media_type(self) -> str | None:
        """The Content-Type without parameters, lower-cased."""
        value = self.header("content-type")
        return None if value is None else value.split(";", 1)[0].strip().lower()

    @property
    def text(self) -> str | None:
        """The body as UTF-8 (RFC 8461 §3.2), or None when absent or not UTF-8."""
        if self.body is None:
            return None
        try:
            return self.body.decode("utf-8")
        except UnicodeDecodeError:
            return None


class _TooLarge(Exception):
    pass


@dataclass(frozen=True, slots=True)
class _Answer:
    """One HTTPS response, as much of it as the policy fetch reads."""

    address: str
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes | None
    tls_version: str | None


@functools.lru_cache(maxsize=8)
def verifying_context(ca_file: str | None) -> ssl.SSLContext:
    """The verifying context for a trust store, built once per process.

    Loading the system CA bundle costs 20-35 ms of CPU that blocks the event loop (measured in
    benchmarks/); a context is safe to share once configured, so bulk scans pay it once.
    """
    return ssl.create_default_context(cafile=ca_file)  # system CA bundle unless a file is given


def make_client(ca_file: str | None) -> httpx.AsyncClient:
    """A client for one trust store: verifying ssl context, no redirects, no proxies, no keep-alive.

    `trust_env=False` keeps proxy variables from routing the fetch around our resolver; no
    keep-alive means no socket outlives a fetch, so the client needs no explicit closing.
    """
    return httpx.AsyncClient(
        verify=verifying_context(ca_file),
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S, pool=CONNECT_TIMEOUT_S),
        limits=httpx.Limits(max_connections=8, max_keepalive_connections=0),
        headers={"User-Agent": f"mecsa/{__version__}", "Accept-Encoding": "identity"},
    )


async def fetch(
    resolver: Resolver, client: httpx.AsyncClient, host: str, port: int, path: str
) -> HttpsObservation:
    """GET `https://host:port/path`, resolving `host` through the given (the assessment's) resolver."""
    started = time.monotonic()
    a, aaaa = await asyncio.gather(resolver.resolve(host, "A"), resolver.resolve(host, "AAAA"))
    shown_port = "" if port == 443 else f":{port}"
    base = HttpsObservation(host, port, f"https://{host}{shown_port}{path}", a, aaaa)
    addresses = base.addresses
    failures: list[FetchFailure] = []
    if not addresses:
        failed = [d for d in (a, aaaa) if d.failed]
        if failed:
            why = "; ".join(d.describe_failure() for d in failed)
            failure = FetchFailure("dns", FailureKind.DNS, f"could not look up {host}: {why}")
        else:
            failure = FetchFailure("dns", FailureKind.NO_ADDRESS, f"{host} has no A or AAAA record")
        return _done(base, started, failures, failure=failure)
    for address in addresses:
        outcome = await _attempt(client, host, shown_port, address, port, path)
        if isinstance(outcome, _Answer):
            return _done(
                base,
                started,
                failures,
                address=outcome.address,
                status=outcome.status,
                headers=outcome.headers,
                body=outcome.body,
                tls_version=outcome.tls_version,
            )
        if outcome.stage != "connect" and outcome.kind.definite:
            return _done(base, started, failures, failure=outcome)
        failures.append(outcome)  # nothing conclusive from this address: try the next one
    # Every address failed: one that could not be reached leaves the question open.
    final = next((f for f in failures if not f.kind.definite), failures[-1])
    return _done(base, started, [f for f in failures if f is not final], failure=final)


def _done(
    base: HttpsObservation, started: float, failures: list[FetchFailure], **changes: Any
) -> HttpsObservation:
    elapsed = round(time.monotonic() - started, 3)
    return replace(base, elapsed_s=elapsed, attempts=tuple(failures), **changes)


async def _attempt(
    client: httpx.AsyncClient, host: str, shown_port: str, address: str, port: int, path: str
) -> FetchFailure | _Answer:
    events: list[str] = []

    async def trace(name: str, info: dict[str, Any]) -> None:
        events.append(name)

    literal = f"[{address}]" if ":" in address else address
    url = f"https://{literal}:{port}{path}"
    headers = {"Host": f"{host}{shown_port}", "Accept": "text/plain"}
    extensions = {"sni_hostname": host, "trace": trace}
    try:
        async with asyncio.timeout(ATTEMPT_TIMEOUT_S):
            async with client.stream("GET", url, headers=headers, extensions=extensions) as response:
                body = await _read_body(response) if response.status_code == 200 else None
                stream = response.extensions.get("network_stream")
                ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
                return _Answer(
                    address,
                    response.status_code,
                    tuple(response.headers.multi_items()),
                    body,
                    ssl_object.version() if ssl_object is not None else None,
                )
    except _TooLarge as exc:
        return FetchFailure("body", FailureKind.TOO_LARGE, str(exc), address)
    except TimeoutError:
        why = f"no complete answer within {ATTEMPT_TIMEOUT_S:g} s"
        return FetchFailure(_stage(events), FailureKind.TIMEOUT, why, address)
    except httpx.HTTPError as exc:
        return _classify(exc, _stage(events), address)


async def _read_body(response: httpx.Response) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _TooLarge(f"Content-Length {declared} exceeds the {MAX_BODY_BYTES}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _TooLarge(f"the body exceeds the {MAX_BODY_BYTES}-byte limit")
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
