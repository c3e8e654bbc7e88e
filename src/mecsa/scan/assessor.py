"""One scan process's assessor: its DNS client, its per-IP limits and its shared observations.

Everything that must be shared by the domains of a scan lives here, once per process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mecsa.observe import AssessOptions, ObservationCache, SharedObservations
from mecsa.probes.smtp import ConnectionLimits
from mecsa.scan.inputs import Target
from mecsa.scan.politeness import DEFAULT_PER_ADDRESS, DEFAULT_RATE, PoliteLimits
from mecsa.scan.records import assessment_record


@dataclass(frozen=True, slots=True)
class ScanConfig:
    """What every process of a scan needs to assess a domain (picklable: sent to worker processes)."""

    options: AssessOptions
    profile: str = "mecsa"
    resolvers: tuple[str, ...] = ()  # IP[:PORT] as typed; empty: the system's
    dns_timeout: float = 2.0
    concurrency: int = 100
    per_ip_connections: int = DEFAULT_PER_ADDRESS
    per_ip_rate: float = DEFAULT_RATE

    def to_json(self) -> dict[str, Any]:
        o = self.options
        return {
            "profile": self.profile,
            "resolvers": list(self.resolvers),
            "dns_timeout": self.dns_timeout,
            "concurrency": self.concurrency,
            "per_ip_connections": self.per_ip_connections,
            "per_ip_rate": self.per_ip_rate,
            "dkim_selectors": list(o.dkim_selectors),
            "ca_file": o.ca_file,
            "smtp_timeout": o.smtp_timeout,
            "tls_versions": o.tls_versions,
            "only": sorted(o.only),
            "skip": sorted(o.skip),
            "revocation": o.revocation,
            "dmarc_discovery": str(o.dmarc_discovery.value),
        }


class Assessor:
    """Assesses targets of one scan in this process, sharing one DNS client and one set of limits."""

    def __init__(
        self,
        config: ScanConfig,
        scan_id: int,
        limits: ConnectionLimits | None = None,
        cache: ObservationCache | None = None,
    ) -> None:
        from mecsa.dns.resolver import parse_nameserver
        from mecsa.scan.dnscache import SharedDnsClient

        self.config = config
        self.scan_id = scan_id
        servers = [parse_nameserver(r) for r in config.resolvers]
        self.client = SharedDnsClient(servers or None, timeout=config.dns_timeout)
        self.shared = SharedObservations(
            # `is None`, not `or`: an empty cache has len 0 and is falsy
            cache=ObservationCache() if cache is None else cache,
            limits=PoliteLimits(config.per_ip_connections, config.per_ip_rate) if limits is None else limits,
        )

    def cache_stats(self) -> dict[str, int]:
        """How many observations were asked for, and how many of them were probed."""
        cache = self.shared.cache
        return {"asks": cache.hits + cache.misses, "probes": cache.misses}

    async def __call__(self, entry: Target) -> dict[str, Any]:
        from mecsa.assess import assess

        assert entry.domain is not None
        assessment = await assess(entry.domain, self.client, self.config.options, shared=self.shared)
        return assessment_record(assessment, self.config.profile, self.scan_id)
