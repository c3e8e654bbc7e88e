"""One assessment's context (domain, resolver, options, memo) and the process-wide sharing a scan adds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from mecsa.dns.resolver import Resolver
from mecsa.observe.cache import CacheKey, ObservationCache
from mecsa.observe.dmarc import DiscoveryMethod

if TYPE_CHECKING:
    from mecsa.probes.https import Attempt
    from mecsa.probes.smtp import ConnectionLimits

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AssessOptions:
    """Everything a user can tune about one assessment."""

    dkim_selectors: tuple[str, ...] = ()
    ca_file: str | None = None
    smtp_timeout: float = 10.0
    tls_versions: bool = True
    smtp_port: int = 25
    https_port: int = 443
    only: frozenset[str] = frozenset()
    skip: frozenset[str] = frozenset()
    check_deadline: float | None = None  # None: derived from the timeouts (mecsa.observe.deadline)
    revocation: bool = True  # x509 asks the certificates' OCSP responders and CRLs
    # RFC 9989 tree walk (default) or RFC 7489 public suffix list; a profile may name its own
    dmarc_discovery: DiscoveryMethod = DiscoveryMethod.TREEWALK


@dataclass
class SharedObservations:
    """What a scan shares between its assessments: the observation cache and the per-IP limits.

    One per process (per event loop). Transport observations (SMTP sessions, TLS sweeps) are
    keyed by (kind, MX name, IP, port), so every domain that uses an MX host shares one probe.
    """

    cache: ObservationCache = field(default_factory=ObservationCache)
    limits: ConnectionLimits = field(default_factory=lambda: _connection_limits())


@dataclass
class Context:
    """One assessment's shared state: the domain, its resolver (and cache), options and memos.

    `shared` runs an observation once per assessment however many checks ask for it (the MX set,
    say). `across` runs a transport observation once per scan when the assessment belongs to one
    (`scope`), and once per assessment otherwise.
    """

    domain: str
    resolver: Resolver
    options: AssessOptions = field(default_factory=AssessOptions)
    scope: SharedObservations | None = None
    # Who makes the MTA-STS policy requests: None, this process (`mecsa.observe.mta_sts`).
    https_attempt: Attempt | None = None
    started: float = field(default_factory=time.monotonic)  # when the assessment began (its duration)
    _memo: dict[str, asyncio.Task[Any]] = field(default_factory=dict)
    _limits: ConnectionLimits | None = None

    async def shared(self, key: str, make: Callable[[], Awaitable[T]]) -> T:
        task = self._memo.get(key)
        if task is None:
            task = asyncio.ensure_future(make())
            self._memo[key] = task
        result: T = await asyncio.shield(task)
        return result

    async def across(self, key: CacheKey, make: Callable[[], Awaitable[T]]) -> T:
        if self.scope is None:
            return await self.shared(":".join(key), make)
        return await self.shared(":".join(key), lambda: self.scope.cache.get(key, make))  # type: ignore[union-attr]

    @property
    def limits(self) -> ConnectionLimits:
        """The per-IP connection limit: the scan's when there is one, else this assessment's own."""
        if self.scope is not None:
            return self.scope.limits
        if self._limits is None:
            self._limits = _connection_limits()
        return self._limits


def _connection_limits() -> ConnectionLimits:
    # Imported when the first SMTP session needs it: the cold CLI sends its first DNS questions
    # before the transport stack is imported (mecsa.cli.early).
    from mecsa.probes.smtp import ConnectionLimits

    return ConnectionLimits()
