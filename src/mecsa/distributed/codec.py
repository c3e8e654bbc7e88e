"""What a chunk task carries, as JSON: the scan's configuration and its targets.

Task messages are JSON, not pickle: a message names no code to run, so whoever can write to the
broker can at worst queue domains, not execute anything in the workers.
"""

from __future__ import annotations

from typing import Any

from mecsa.observe import AssessOptions
from mecsa.observe.dmarc import DiscoveryMethod
from mecsa.scan.assessor import ScanConfig
from mecsa.scan.inputs import Target


def config_to_json(config: ScanConfig) -> dict[str, Any]:
    o = config.options
    return {
        "profile": config.profile,
        "resolvers": list(config.resolvers),
        "dns_timeout": config.dns_timeout,
        "concurrency": config.concurrency,
        "per_ip_connections": config.per_ip_connections,
        "per_ip_rate": config.per_ip_rate,
        "options": {
            "dkim_selectors": list(o.dkim_selectors),
            "ca_file": o.ca_file,
            "smtp_timeout": o.smtp_timeout,
            "tls_versions": o.tls_versions,
            "smtp_port": o.smtp_port,
            "https_port": o.https_port,
            "only": sorted(o.only),
            "skip": sorted(o.skip),
            "check_deadline": o.check_deadline,
            "revocation": o.revocation,
            "dmarc_discovery": o.dmarc_discovery.value,
        },
    }


def config_from_json(data: dict[str, Any]) -> ScanConfig:
    o = data["options"]
    options = AssessOptions(
        dkim_selectors=tuple(str(s) for s in o["dkim_selectors"]),
        ca_file=o["ca_file"],
        smtp_timeout=float(o["smtp_timeout"]),
        tls_versions=bool(o["tls_versions"]),
        smtp_port=int(o["smtp_port"]),
        https_port=int(o["https_port"]),
        only=frozenset(o["only"]),
        skip=frozenset(o["skip"]),
        check_deadline=None if o["check_deadline"] is None else float(o["check_deadline"]),
        revocation=bool(o["revocation"]),
        dmarc_discovery=DiscoveryMethod(o["dmarc_discovery"]),
    )
    return ScanConfig(
        options=options,
        profile=str(data["profile"]),
        resolvers=tuple(str(r) for r in data["resolvers"]),
        dns_timeout=float(data["dns_timeout"]),
        concurrency=int(data["concurrency"]),
        per_ip_connections=int(data["per_ip_connections"]),
        per_ip_rate=float(data["per_ip_rate"]),
    )


def target_to_json(entry: Target) -> list[Any]:
    return [entry.line, entry.text, entry.domain, entry.error]


def target_from_json(data: list[Any]) -> Target:
    line, text, domain, error = data
    return Target(
        int(line), str(text), None if domain is None else str(domain), None if error is None else str(error)
    )
