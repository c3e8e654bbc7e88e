"""The one explicit list of checks. Adding a check: one module plus one line here.

Everything else about the checks is derived from their declarations: the CLI choices, the finding
catalogue (`mecsa checks`, docs/findings.md), the remediation keys and their fix builders, and the
JSON schema's lists of protocols and findings (`schema_lists`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mecsa.checks import dane, dkim, dmarc, dnssec, mta_sts, mx, spf, starttls, tls_rpt, x509
from mecsa.checks.base import CheckSpec, declared_kinds
from mecsa.fixes import FIXES, FixBuilder
from mecsa.model import PROTOCOLS, FindingKind

CHECKS: tuple[CheckSpec[Any], ...] = (
    mx.CHECK,
    tls_rpt.CHECK,
    dnssec.CHECK,
    mta_sts.CHECK,
    dmarc.CHECK,
    dkim.CHECK,
    spf.CHECK,
    starttls.CHECK,
    x509.CHECK,
    dane.CHECK,
)


def check_names() -> tuple[str, ...]:
    return tuple(c.name for c in CHECKS)


def finding_kinds() -> tuple[FindingKind, ...]:
    """Every finding any check can emit, its crash findings included, in registry order."""
    return tuple(k for c in CHECKS for k in declared_kinds(c))


def finding_catalogue() -> dict[str, str]:
    """Every finding id any check can emit, with its meaning: for docs and the JSON schema."""
    out: dict[str, str] = {}
    for kind in finding_kinds():
        out.setdefault(kind.id, kind.meaning)
    return out


def remedies() -> dict[str, FixBuilder]:
    """Every remediation key with its fix builder: the shared ones, plus each check's own."""
    out: dict[str, FixBuilder] = dict(FIXES)
    for check in CHECKS:
        for key, builder in check.remedies.items():
            if key in out:
                raise RuntimeError(f"remediation key {key} defined twice (by {check.name})")
            out[key] = builder
    return out


def owned_protocols() -> tuple[str, ...]:
    """The protocols the checks own, MECSA's order first, then any a newer check adds."""
    owned = [p for c in CHECKS for p in c.protocols]
    return (*(p for p in PROTOCOLS if p in owned), *(p for p in owned if p not in PROTOCOLS))


def schema_lists() -> Mapping[str, list[str]]:
    """The lists the committed JSON schema must hold: protocols (and checks without one) and statuses."""
    protocols = [*owned_protocols(), *(c.name for c in CHECKS if not c.protocols)]
    return {"protocols": protocols, "finding_ids": sorted(finding_catalogue())}


def _owners() -> dict[str, str]:
    owners: dict[str, str] = {}
    for check in CHECKS:
        for protocol in check.protocols:
            if protocol in owners:
                raise RuntimeError(f"protocol {protocol} owned by both {owners[protocol]} and {check.name}")
            owners[protocol] = check.name
    return owners


PROTOCOL_OWNERS = _owners()
