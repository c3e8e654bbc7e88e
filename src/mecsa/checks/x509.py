"""The MX certificates (MECSA `x509`): chain, name, dates, key and signature, on every MX address.

MECSA's x509 passes for a host when its certificate chains to a trusted root, names the MX host
and is within its dates. Trust anchors: the system CA bundle, or `--ca-file PEM` (the lab's CA).
The per-MX share and the 80% rule are those of `starttls` (see `checks/permx.py`).

Chain validation uses cryptography's verifier. Its web-PKI profile rejects end-entity certificates
without an Authority Key Identifier and with other extension details that mail servers commonly
lack; the end-entity extension policy is relaxed to `permit_all` (CA certificates keep the strict
web-PKI rules), and the name and the dates are then judged separately here so that each failure
gets its own finding. OCSP is not queried (no network beyond SMTP here): not done, not claimed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from mecsa.certs import (
    TrustAnchors,
    cert_json,
    certificate_names,
    key_description,
    load_anchors,
    name_matches,
    parse_chain,
    signature_description,
    verify_chain,
)
from mecsa.checks.base import CheckSpec
from mecsa.checks.permx import (
    TransportKinds,
    host_address_findings,
    host_outcome,
    preamble_findings,
    share_verdict,
    tls_denied,
    unreachable_finding,
)
from mecsa.model import CheckResult, Finding, FindingKind, Status
from mecsa.observe import Context
from mecsa.observe.mx import MxObservation
from mecsa.observe.transport import HostSessions, TransportObservation, observe_transport
from mecsa.probes.smtp import SmtpObservation

PROTOCOL = "x509"

# --- the findings this check declares (id, status, protocol, meaning, remedy) ---

TRANSPORT = TransportKinds.declare("x509", PROTOCOL)

TLS_ERROR = FindingKind(
    "x509.tls_error", Status.ERROR, PROTOCOL, "the TLS session broke off (timeout): could not find out"
)
NO_TLS = FindingKind(
    "x509.no_tls", Status.FAIL, PROTOCOL, "no TLS session, so no certificate", "starttls.enable"
)
NO_CERTIFICATE = FindingKind(
    "x509.no_certificate", Status.FAIL, PROTOCOL, "no (parseable) certificate presented"
)
ANCHORS_ERROR = FindingKind(
    "x509.anchors_error", Status.ERROR, PROTOCOL, "the trust anchors could not be loaded"
)
CHAIN_VALID = FindingKind("x509.chain_valid", Status.PASS, PROTOCOL, "the chain leads to a trusted root")
CHAIN_UNTRUSTED = FindingKind(
    "x509.chain_untrusted", Status.FAIL, PROTOCOL, "the chain does not lead to a trusted root", "x509.replace"
)
CHAIN_UNKNOWN = FindingKind(
    "x509.chain_unknown", Status.ERROR, PROTOCOL, "only the leaf was readable; the chain could not be checked"
)
SELF_SIGNED = FindingKind(
    "x509.self_signed", Status.FAIL, PROTOCOL, "the certificate is self-signed", "x509.replace"
)
NAME_MATCH = FindingKind(
    "x509.name_match", Status.PASS, PROTOCOL, "the certificate names the MX host (RFC 6125)"
)
NAME_FROM_CN = FindingKind(
    "x509.name_from_cn", Status.WARN, PROTOCOL, "the name is only in the subject CN", "x509.replace"
)
NAME_MISMATCH = FindingKind(
    "x509.name_mismatch", Status.FAIL, PROTOCOL, "the certificate does not name the MX host", "x509.replace"
)
DATES_VALID = FindingKind("x509.dates_valid", Status.PASS, PROTOCOL, "within its validity dates")
EXPIRES_SOON = FindingKind(
    "x509.expires_soon", Status.WARN, PROTOCOL, "expires within 14 days", "x509.replace"
)
EXPIRED = FindingKind("x509.expired", Status.FAIL, PROTOCOL, "expired", "x509.replace")
NOT_YET_VALID = FindingKind("x509.not_yet_valid", Status.FAIL, PROTOCOL, "not yet valid", "x509.replace")
WEAK_KEY = FindingKind(
    "x509.weak_key", Status.WARN, PROTOCOL, "RSA under 2048 bits, small curve, or DSA", "x509.replace"
)
WEAK_SIGNATURE = FindingKind(
    "x509.weak_signature", Status.WARN, PROTOCOL, "MD5 or SHA-1 signature", "x509.replace"
)

EXPIRY_WARNING_DAYS = 14


# --- the check -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class X509Observation:
    transport: TransportObservation
    anchors: TrustAnchors
    checked_at: dt.datetime


async def observe(ctx: Context, mx: MxObservation | None = None) -> X509Observation:
    transport = await observe_transport(ctx, mx)
    return X509Observation(transport, load_anchors(ctx.options.ca_file), dt.datetime.now(dt.UTC))


@dataclass(frozen=True, slots=True)
class _Judge:
    anchors: TrustAnchors
    now: dt.datetime
    add: Callable[[Finding], None]


def _no_tls(s: SmtpObservation, judge: _Judge) -> Status:
    where, subject = f"{s.host} [{s.address}]", f"{s.host} {s.address}"
    if not s.reachable:
        judge.add(unreachable_finding(TRANSPORT, s))
        return Status.ERROR
    if not tls_denied(s):
        judge.add(
            TLS_ERROR(
                f"{where}: the TLS session broke off before a certificate was seen ({s.reason})",
                subject=subject,
            )
        )
        return Status.ERROR
    judge.add(NO_TLS(f"{where}: no TLS session, so no certificate to check", subject=subject))
    return Status.FAIL


def _address(s: SmtpObservation, judge: _Judge) -> tuple[Status, dict[str, Any]]:
    """Judge one address's certificate; returns its outcome and its details."""
    if s.tls is None:
        return _no_tls(s, judge), {}
    where, subject = f"{s.host} [{s.address}]", f"{s.host} {s.address}"
    add = judge.add
    parsed = parse_chain(s.tls.chain) if s.tls.chain else "the server presented no certificate"
    if isinstance(parsed, str):
        add(NO_CERTIFICATE(f"{where}: {parsed}", subject=subject))
        return Status.FAIL, {}
    leaf, rest = parsed[0], parsed[1:]
    evidence = (f"subject={leaf.subject.rfc4514_string()}", f"issuer={leaf.issuer.rfc4514_string()}")
    chain_ok = _judge_chain(s, leaf, rest, judge, evidence)
    name_ok = _judge_name(s, leaf, add)
    dates_ok = _judge_dates(s, leaf, judge)
    key_type, bits, weak_key = key_description(leaf)
    if weak_key:
        add(WEAK_KEY(f"{where}: weak key ({key_type}, {bits} bits)", evidence, subject))
    sig, weak_sig = signature_description(leaf)
    if weak_sig:
        add(WEAK_SIGNATURE(f"{where}: weak signature algorithm {sig}", evidence, subject))
    details = {
        "certificate": cert_json(leaf),
        "chain": [cert_json(c) for c in rest],
        "full_chain_seen": s.tls.full_chain,
        "days_left": (leaf.not_valid_after_utc - judge.now).days,
    }
    if not (name_ok and dates_ok) or chain_ok is False:
        return Status.FAIL, details  # a proven fault fails the host even when the chain is unknown
    return (Status.PASS if chain_ok else Status.ERROR), details


def _judge_chain(
    s: SmtpObservation,
    leaf: x509.Certificate,
    rest: list[x509.Certificate],
    judge: _Judge,
    evidence: tuple[str, ...],
) -> bool | None:
    """True/False when the chain is/is not trusted; None when we could not find out."""
    where, subject = f"{s.host} [{s.address}]", f"{s.host} {s.address}"
    if judge.anchors.error:
        judge.add(ANCHORS_ERROR(judge.anchors.error, subject=subject))
        return None
    ok, reason, chain = verify_chain(leaf, rest, judge.anchors.certificates, judge.now)
    if not ok and not _within_dates(leaf, judge.now):
        # Dates have their own finding: ask whether the chain was (or will be) trusted at the nearest
        # moment of the leaf's own validity.
        nearest = min(max(judge.now, leaf.not_valid_before_utc), leaf.not_valid_after_utc)
        ok, reason, chain = verify_chain(leaf, rest, judge.anchors.certificates, nearest)
    if ok:
        path = tuple(c.subject.rfc4514_string() for c in chain)
        judge.add(
            CHAIN_VALID(f"{where}: the chain is trusted (anchors: {judge.anchors.source})", path, subject)
        )
        return True
    if leaf.issuer == leaf.subject and not rest:
        judge.add(SELF_SIGNED(f"{where}: the certificate is self-signed", evidence, subject))
        return False
    if not s.tls or not s.tls.full_chain:
        judge.add(
            CHAIN_UNKNOWN(
                f"{where}: only the leaf could be read here, and it does not chain on its own",
                (*evidence, reason),
                subject,
            )
        )
        return None
    judge.add(
        CHAIN_UNTRUSTED(
            f"{where}: the chain does not lead to a trusted root ({judge.anchors.source})",
            (*evidence, reason),
            subject,
        )
    )
    return False


def _judge_name(s: SmtpObservation, leaf: x509.Certificate, add: Callable[[Finding], None]) -> bool:
    where, subject = f"{s.host} [{s.address}]", f"{s.host} {s.address}"
    names, from_cn = certificate_names(leaf)
    matched = [n for n in names if name_matches(n, s.host)]
    if matched:
        add(NAME_MATCH(f"{where}: the certificate names {s.host}", tuple(matched), subject))
        if from_cn:
            add(
                NAME_FROM_CN(
                    f"{where}: the name is only in the subject CN; RFC 6125 wants a DNS SAN",
                    tuple(names),
                    subject,
                )
            )
        return True
    add(
        NAME_MISMATCH(
            f"{where}: the certificate does not name {s.host} (RFC 6125)",
            tuple(names) or ("no DNS names",),
            subject,
        )
    )
    return False


def _within_dates(cert: x509.Certificate, now: dt.datetime) -> bool:
    return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


def _judge_dates(s: SmtpObservation, leaf: x509.Certificate, judge: _Judge) -> bool:
    where, subject = f"{s.host} [{s.address}]", f"{s.host} {s.address}"
    after, before = leaf.not_valid_after_utc, leaf.not_valid_before_utc
    dates = (f"not_before={before.isoformat()}", f"not_after={after.isoformat()}")
    if judge.now > after:
        judge.add(
            EXPIRED(f"{where}: the certificate expired {(judge.now - after).days} day(s) ago", dates, subject)
        )
        return False
    if judge.now < before:
        judge.add(
            NOT_YET_VALID(
                f"{where}: the certificate is not valid before {before.isoformat()}", dates, subject
            )
        )
        return False
    days = (after - judge.now).days
    kind = EXPIRES_SOON if days < EXPIRY_WARNING_DAYS else DATES_VALID
    judge.add(kind(f"{where}: valid for {days} more day(s)", dates, subject))
    return True


def evaluate(obs: X509Observation) -> CheckResult:
    transport = obs.transport
    findings = preamble_findings(TRANSPORT, transport.mx)
    findings += host_address_findings(TRANSPORT, transport.hosts)
    judge = _Judge(obs.anchors, obs.checked_at, findings.append)
    outcomes: dict[str, Status] = {}
    hosts_json = [_host(h, judge, outcomes) for h in transport.hosts]
    verdict = share_verdict(PROTOCOL, transport.mx, outcomes, "present a valid certificate")
    details = {
        "trust_anchors": obs.anchors.source,
        "checked_at": obs.checked_at.isoformat(),
        "hosts": hosts_json,
    }
    return CheckResult("x509", tuple(findings), (verdict,), details)


def _host(h: HostSessions, judge: _Judge, outcomes: dict[str, Status]) -> dict[str, Any]:
    addresses, statuses = [], []
    for s in h.sessions:
        status, details = _address(s, judge)
        statuses.append(status)
        addresses.append({"address": s.address, "outcome": status.value, **details})
    outcomes[h.host.name] = host_outcome(statuses, complete=not h.host.lookup_failed)
    return {"name": h.host.name, "outcome": outcomes[h.host.name].value, "addresses": addresses}


CHECK = CheckSpec(
    name="x509",
    summary="MX certificates: chain to a trusted root, RFC 6125 name, dates, key and signature",
    protocols=(PROTOCOL,),
    observe=observe,
    evaluate=evaluate,
    findings=(
        *TRANSPORT.all(),
        TLS_ERROR,
        NO_TLS,
        NO_CERTIFICATE,
        ANCHORS_ERROR,
        CHAIN_VALID,
        CHAIN_UNTRUSTED,
        CHAIN_UNKNOWN,
        SELF_SIGNED,
        NAME_MATCH,
        NAME_FROM_CN,
        NAME_MISMATCH,
        DATES_VALID,
        EXPIRES_SOON,
        EXPIRED,
        NOT_YET_VALID,
        WEAK_KEY,
        WEAK_SIGNATURE,
    ),
)
