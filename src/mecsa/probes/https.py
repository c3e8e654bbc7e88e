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

This module holds the rules and the results. One address's request (an `Attempt`) is made with
httpx by `mecsa.probes.https_client.request`: in this process, or in the cold CLI's helper process
(`mecsa.probes.https_helper`), which runs the same function, so the results cannot depend on
where. This module does not import httpx: the cold CLI's main process never pays its ~30 ms.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: the helper process imports this module without dnspython
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


@dataclass(frozen=True, slots=True)
class HttpsAnswer:
    """One HTTPS response, as much of it as the policy fetch reads."""

    address: str
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes | None
    tls_version: str | None


# One address's request: (host, shown port, address, port, path) -> its answer or why none came.
Attempt = Callable[[str, str, str, int, str], Awaitable[HttpsAnswer | FetchFailure]]


@dataclass(frozen=True, slots=True)
class Timeouts:
    """The bounds of one attempt, in seconds (the module's constants unless a caller sets its own)."""

    connect_s: float
    read_s: float
    attempt_s: float

    @classmethod
    def current(cls) -> Timeouts:
        # Read at call time: tests shorten the module's constants.
        return cls(CONNECT_TIMEOUT_S, READ_TIMEOUT_S, ATTEMPT_TIMEOUT_S)


@functools.lru_cache(maxsize=8)
def verifying_context(ca_file: str | None) -> ssl.SSLContext:
    """The verifying context for a trust store, built once per process.

    Loading the system CA bundle costs 20-35 ms of CPU that blocks the event loop (measured in
    benchmarks/); a context is safe to share once configured, so bulk scans pay it once.
    """
    return ssl.create_default_context(cafile=ca_file)  # system CA bundle unless a file is given


async def fetch(resolver: Resolver, attempt: Attempt, host: str, port: int, path: str) -> HttpsObservation:
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
        outcome = await attempt(host, shown_port, address, port, path)
        if isinstance(outcome, HttpsAnswer):
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
