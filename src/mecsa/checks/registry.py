"""The one explicit list of checks. Adding a check: one module plus one line here."""

from __future__ import annotations

from typing import Any

from mecsa.checks import dane, dkim, dmarc, dnssec, mtasts, mx, spf, starttls, tlsrpt, x509
from mecsa.checks.base import CheckSpec

CHECKS: tuple[CheckSpec[Any], ...] = (
    mx.CHECK,
    tlsrpt.CHECK,
    dnssec.CHECK,
    mtasts.CHECK,
    dmarc.CHECK,
    dkim.CHECK,
    spf.CHECK,
    starttls.CHECK,
    x509.CHECK,
    dane.CHECK,
)


def check_names() -> tuple[str, ...]:
    return tuple(c.name for c in CHECKS)


def finding_catalogue() -> dict[str, str]:
    """Every finding id any check can emit, with its meaning: for docs and the JSON schema."""
    return {fid: text for c in CHECKS for fid, text in c.findings.items()}


def _owners() -> dict[str, str]:
    owners: dict[str, str] = {}
    for check in CHECKS:
        for protocol in check.protocols:
            if protocol in owners:
                raise RuntimeError(f"protocol {protocol} owned by both {owners[protocol]} and {check.name}")
            owners[protocol] = check.name
    return owners


PROTOCOL_OWNERS = _owners()
