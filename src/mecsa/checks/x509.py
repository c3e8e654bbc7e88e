"""The MX certificates (MECSA `x509`): chain, name, dates, key and signature, on every MX address.

MECSA's x509 passes for a host when its certificate chains to a trusted root, names the MX host
and is within its dates. Trust anchors: the system CA bundle, or `--ca-file PEM` (the lab's CA).
The per-MX share and the 80% rule are those of `starttls` (see `checks/starttls.py`).

Chain validation is RFC 5280 §6.1 path validation, as OpenSSL-based MTAs do it (`mecsa.pkix`):
a chain that passes it but breaks the CA/Browser Forum web-PKI profile (a non-critical
basicConstraints, say) is valid, with a `x509.webpki_deviation` warning of its own. The name and
the dates are judged separately here so that each failure gets its own finding.

Revocation (MECSA's certificate check includes it): the leaf's OCSP responder, then its CRL
distribution points, over HTTP through the assessment's resolver (`probes/revocation.py`,
bounded in size and time), judged by `mecsa.revocation`. A revoked certificate fails the host;
a status that could not be found out is a warning, never a failure. No OCSP stapling: Python's
ssl module cannot ask for it (see `probes/revocation.py`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import ssl
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from mecsa.checks.base import CheckSpec, Context
from mecsa.checks.mx import MxObservation
from mecsa.checks.starttls import (
    HostSessions,
    TransportObservation,
    host_address_findings,
    host_outcome,
    observe_transport,
    preamble_findings,
    share_verdict,
    shared_catalogue,
    tls_denied,
    unreachable_finding,
)
from mecsa.model import CheckResult, Finding, Status
from mecsa.pkix import PathValidation, validate_path
from mecsa.probes.revocation import RevocationObservation, fingerprint, probe_presented_chains
from mecsa.probes.revocation import make_client as revocation_client
from mecsa.probes.smtp import SmtpObservation
from mecsa.revocation import RevocationState, RevocationVerdict, judge_observation, revocation_points

PROTOCOL = "x509"
EXPIRY_WARNING_DAYS = 14
MIN_RSA_BITS = 2048


# --- RFC 6125 name matching (written here: the stdlib's match_hostname is gone since 3.12) -------


def name_matches(pattern: str, reference: str) -> bool:
    """RFC 6125 §6.4: exact match, or a `*` that is the whole left-most label and covers one label.

    Partial-label wildcards (`m*.example.com`), wildcards elsewhere, and wildcards over fewer than
    two remaining labels (`*.com`) never match.
    """
    pattern, reference = pattern.lower().rstrip("."), reference.lower().rstrip(".")
    if not pattern or not reference:
        return False
    if "*" not in pattern:
        return pattern == reference
    first, _, rest = pattern.partition(".")
    if first != "*" or "*" in rest or rest.count(".") < 1:
        return False
    ref_first, _, ref_rest = reference.partition(".")
    return bool(ref_first) and ref_rest == rest


def certificate_names(cert: x509.Certificate) -> tuple[tuple[str, ...], bool]:
    """The DNS names the certificate claims, and whether they come from the CN (no DNS SAN at all)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = ()
    if names:
        return names, False
    cns = tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME))
    return cns, True


# --- trust anchors -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrustAnchors:
    certificates: tuple[x509.Certificate, ...]
    source: str
    error: str | None = None


@functools.lru_cache(maxsize=8)
def load_anchors(ca_file: str | None) -> TrustAnchors:
    """The trust anchors: `ca_file` (PEM) or the system bundle. Cached per process and path."""
    path = ca_file or ssl.get_default_verify_paths().cafile or ssl.get_default_verify_paths().openssl_cafile
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        return TrustAnchors((), path, f"could not load trust anchors from {path}: {exc}")
    # One certificate at a time: a single odd entry in a system bundle (say, a negative serial,
    # which cryptography warns about and will refuse) must not cost every other anchor.
    certs = []
    end = b"-----END CERTIFICATE-----"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for block in text.split(end)[:-1]:
            with contextlib.suppress(ValueError):
                certs.append(x509.load_pem_x509_certificate(block + end))
    if not certs:
        return TrustAnchors((), path, f"no usable PEM certificate in {path}")
    return TrustAnchors(tuple(certs), path)


# --- chain validation ----------------------------------------------------------------------------


def verify_chain(
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    anchors: tuple[x509.Certificate, ...],
    when: dt.datetime,
) -> tuple[bool, str, tuple[x509.Certificate, ...]]:
    """Whether `leaf` chains to one of `anchors` at `when` (RFC 5280 §6.1, see `mecsa.pkix`).

    Returns (ok, reason, the validated chain); the server name is not checked here.
    """
    result = validate_path(leaf, intermediates, anchors, when)
    return result.valid, result.reason, result.chain


# --- facts about one certificate -------------------------------------------------------------------


def key_description(cert: x509.Certificate) -> tuple[str, int | None, bool]:
    """(type, size in bits, weak?) of the certificate's public key."""
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size, key.key_size < MIN_RSA_BITS
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}", key.curve.key_size, key.curve.key_size < 224
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256, False
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456, False
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size, True
    return type(key).__name__, None, False


def signature_description(cert: x509.Certificate) -> tuple[str, bool]:
    """(signature algorithm name, weak?): MD5 and SHA-1 signatures are weak."""
    name = getattr(cert.signature_algorithm_oid, "_name", None) or cert.signature_algorithm_oid.dotted_string
    return name, any(weak in name.lower() for weak in ("md5", "sha1", "md2"))


def cert_json(cert: x509.Certificate) -> dict[str, Any]:
    key_type, key_bits, _ = key_description(cert)
    names, from_cn = certificate_names(cert)
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "serial": format(cert.serial_number, "x"),
        "dns_names": list(names),
        "names_from_cn": from_cn,
        "key": {"type": key_type, "bits": key_bits},
        "signature_algorithm": signature_description(cert)[0],
    }


# --- the check -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class X509Observation:
    transport: TransportObservation
    anchors: TrustAnchors
    checked_at: dt.datetime
    revocation: tuple[RevocationObservation, ...] = ()
    revocation_checked: bool = True


async def observe(ctx: Context, mx: MxObservation | None = None) -> X509Observation:
    transport = await observe_transport(ctx, mx)
    anchors = load_anchors(ctx.options.ca_file)
    revocation: tuple[RevocationObservation, ...] = ()
    chains = [s.tls.chain for h in transport.hosts for s in h.sessions if s.tls and s.tls.chain]
    if ctx.options.revocation and chains:

        async def build() -> httpx.AsyncClient:
            return revocation_client()

        client = await ctx.shared("probes.revocation.client", build)
        revocation = await probe_presented_chains(ctx.resolver, client, chains, anchors.certificates)
    now = dt.datetime.now(dt.UTC)
    return X509Observation(transport, anchors, now, revocation, ctx.options.revocation)


def parse_chain(chain: tuple[bytes, ...]) -> list[x509.Certificate] | str:
    """The presented chain parsed, or the reason it could not be."""
    try:
        return [x509.load_der_x509_certificate(der) for der in chain]
    except ValueError as exc:
        return f"a presented certificate could not be parsed: {exc}"


@dataclass(frozen=True, slots=True)
class _Judge:
    anchors: TrustAnchors
    now: dt.datetime
    add: Callable[[Finding], None]
    revocation: Mapping[str, RevocationObservation] = field(default_factory=dict)
    revocation_checked: bool = True


def _no_tls(s: SmtpObservation, judge: _Judge) -> Status:
    where, subject = f"{s.host} [{s.address}]", f"{s.host} {s.address}"
    if not s.reachable:
        judge.add(unreachable_finding(PROTOCOL, "x509", s))
        return Status.ERROR
    if not tls_denied(s):
        judge.add(
            Finding(
                "x509.tls_error",
                Status.ERROR,
                PROTOCOL,
                f"{where}: the TLS session broke off before a certificate was seen ({s.reason})",
                subject=subject,
            )
        )
        return Status.ERROR
    judge.add(
        Finding(
            "x509.no_tls",
            Status.FAIL,
            PROTOCOL,
            f"{where}: no TLS session, so no certificate to check",
            remediation="starttls.enable",
            subject=subject,
        )
    )
    return Status.FAIL


def _address(s: SmtpObservation, judge: _Judge) -> tuple[Status, dict[str, Any]]:
    """Judge one address's certificate; returns its outcome and its details."""
    if s.tls is None:
        return _no_tls(s, judge), {}
    where, subject = f"{s.host} [{s.address}]", f"{s.host} {s.address}"
    add = judge.add
    parsed = parse_chain(s.tls.chain) if s.tls.chain else "the server presented no certificate"
    if isinstance(parsed, str):
        add(Finding("x509.no_certificate", Status.FAIL, PROTOCOL, f"{where}: {parsed}", subject=subject))
        return Status.FAIL, {}
    leaf, rest = parsed[0], parsed[1:]
    evidence = (f"subject={leaf.subject.rfc4514_string()}", f"issuer={leaf.issuer.rfc4514_string()}")
    chain_ok = _judge_chain(s, leaf, rest, judge, evidence)
    name_ok = _judge_name(s, leaf, add)
    dates_ok = _judge_dates(s, leaf, judge)
    key_type, bits, weak_key = key_description(leaf)
    if weak_key:
        add(
            Finding(
                "x509.weak_key",
                Status.WARN,
                PROTOCOL,
                f"{where}: weak key ({key_type}, {bits} bits)",
                evidence,
                "x509.replace",
                subject,
            )
        )
    sig, weak_sig = signature_description(leaf)
    if weak_sig:
        add(
            Finding(
                "x509.weak_signature",
                Status.WARN,
                PROTOCOL,
                f"{where}: weak signature algorithm {sig}",
                evidence,
                "x509.replace",
                subject,
            )
        )
    details = {
        "certificate": cert_json(leaf),
        "chain": [cert_json(c) for c in rest],
        "full_chain_seen": s.tls.full_chain,
        "days_left": (leaf.not_valid_after_utc - judge.now).days,
    }
    revocation = _judge_revocation(where, subject, leaf, judge)
    details["revocation"] = revocation.to_json() if revocation else None
    revoked = revocation is not None and revocation.state is RevocationState.REVOKED
    if not (name_ok and dates_ok) or chain_ok is False or revoked:
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
        judge.add(Finding("x509.anchors_error", Status.ERROR, PROTOCOL, judge.anchors.error, subject=subject))
        return None
    path_result = validate_path(leaf, rest, judge.anchors.certificates, judge.now)
    if not path_result.valid and not _within_dates(leaf, judge.now):
        # Dates have their own finding: ask whether the chain was (or will be) trusted at the nearest
        # moment of the leaf's own validity.
        nearest = min(max(judge.now, leaf.not_valid_before_utc), leaf.not_valid_after_utc)
        path_result = validate_path(leaf, rest, judge.anchors.certificates, nearest)
    ok, reason, chain = path_result.valid, path_result.reason, path_result.chain
    if ok:
        path = tuple(c.subject.rfc4514_string() for c in chain)
        _webpki_deviation(where, subject, path_result, judge)
        judge.add(
            Finding(
                "x509.chain_valid",
                Status.PASS,
                PROTOCOL,
                f"{where}: the chain is trusted (anchors: {judge.anchors.source})",
                path,
                subject=subject,
            )
        )
        return True
    if path_result.unsupported:
        judge.add(
            Finding(
                "x509.chain_unsupported",
                Status.ERROR,
                PROTOCOL,
                f"{where}: the chain uses an algorithm this tool's verifier cannot judge",
                (*evidence, reason),
                subject=subject,
            )
        )
        return None
    if leaf.issuer == leaf.subject and not rest:
        judge.add(
            Finding(
                "x509.self_signed",
                Status.FAIL,
                PROTOCOL,
                f"{where}: the certificate is self-signed",
                evidence,
                "x509.replace",
                subject,
            )
        )
        return False
    if not s.tls or not s.tls.full_chain:
        judge.add(
            Finding(
                "x509.chain_unknown",
                Status.ERROR,
                PROTOCOL,
                f"{where}: only the leaf could be read here, and it does not chain on its own",
                (*evidence, reason),
                subject=subject,
            )
        )
        return None
    judge.add(
        Finding(
            "x509.chain_untrusted",
            Status.FAIL,
            PROTOCOL,
            f"{where}: the chain does not lead to a trusted root ({judge.anchors.source})",
            (*evidence, reason),
            "x509.replace",
            subject,
        )
    )
    return False


def _judge_revocation(
    where: str, subject: str, leaf: x509.Certificate, judge: _Judge
) -> RevocationVerdict | None:
    """Judge the leaf's OCSP/CRL answers (`mecsa.revocation`); None when none were looked up."""
    seen = judge.revocation.get(fingerprint(leaf))
    if seen is None:
        if not revocation_points(leaf).any:
            why = "the certificate names no OCSP responder and no CRL distribution point"
            judge.add(
                Finding(
                    "x509.revocation_not_published", Status.INFO, PROTOCOL, f"{where}: {why}", subject=subject
                )
            )
        elif not judge.revocation_checked:
            why = "revocation was not checked (--no-revocation)"
            judge.add(
                Finding(
                    "x509.revocation_not_checked", Status.INFO, PROTOCOL, f"{where}: {why}", subject=subject
                )
            )
        return None  # or no issuer was found: the chain findings say why
    verdict = judge_observation(seen, leaf, judge.now)
    evidence = tuple(a.describe() for a in verdict.answers)
    deciding = verdict.deciding
    if verdict.state is RevocationState.REVOKED and deciding is not None:
        message = f"{where}: the certificate is revoked ({deciding.source}: {deciding.detail})"
        judge.add(Finding("x509.revoked", Status.FAIL, PROTOCOL, message, evidence, "x509.replace", subject))
        return verdict
    if verdict.state is RevocationState.GOOD and deciding is not None:
        message = f"{where}: not revoked ({deciding.source}: {deciding.detail})"
        judge.add(Finding("x509.not_revoked", Status.PASS, PROTOCOL, message, evidence, subject=subject))
        return verdict
    # RFC 6960 §2.2 / RFC 5280 §6.3: no counted answer. Could not find out: a warning, never a failure.
    message = f"{where}: the revocation status could not be found out"
    judge.add(Finding("x509.revocation_unknown", Status.WARN, PROTOCOL, message, evidence, subject=subject))
    return verdict


def _webpki_deviation(where: str, subject: str, result: PathValidation, judge: _Judge) -> None:
    if result.webpki_deviation is None:
        return
    judge.add(
        Finding(
            "x509.webpki_deviation",
            Status.WARN,
            PROTOCOL,
            f"{where}: the chain is valid (RFC 5280 path validation, as OpenSSL-based MTAs judge it) "
            "but breaks the CA/Browser Forum web-PKI profile",
            (result.webpki_deviation,),
            "x509.replace",
            subject,
        )
    )


def _judge_name(s: SmtpObservation, leaf: x509.Certificate, add: Callable[[Finding], None]) -> bool:
    where, subject = f"{s.host} [{s.address}]", f"{s.host} {s.address}"
    names, from_cn = certificate_names(leaf)
    matched = [n for n in names if name_matches(n, s.host)]
    if matched:
        add(
            Finding(
                "x509.name_match",
                Status.PASS,
                PROTOCOL,
                f"{where}: the certificate names {s.host}",
                tuple(matched),
                subject=subject,
            )
        )
        if from_cn:
            add(
                Finding(
                    "x509.name_from_cn",
                    Status.WARN,
                    PROTOCOL,
                    f"{where}: the name is only in the subject CN; RFC 6125 wants a DNS SAN",
                    tuple(names),
                    "x509.replace",
                    subject,
                )
            )
        return True
    add(
        Finding(
            "x509.name_mismatch",
            Status.FAIL,
            PROTOCOL,
            f"{where}: the certificate does not name {s.host} (RFC 6125)",
            tuple(names) or ("no DNS names",),
            "x509.replace",
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
            Finding(
                "x509.expired",
                Status.FAIL,
                PROTOCOL,
                f"{where}: the certificate expired {(judge.now - after).days} day(s) ago",
                dates,
                "x509.replace",
                subject,
            )
        )
        return False
    if judge.now < before:
        judge.add(
            Finding(
                "x509.not_yet_valid",
                Status.FAIL,
                PROTOCOL,
                f"{where}: the certificate is not valid before {before.isoformat()}",
                dates,
                "x509.replace",
                subject,
            )
        )
        return False
    days = (after - judge.now).days
    status = Status.WARN if days < EXPIRY_WARNING_DAYS else Status.PASS
    fid = "x509.expires_soon" if status is Status.WARN else "x509.dates_valid"
    judge.add(
        Finding(
            fid,
            status,
            PROTOCOL,
            f"{where}: valid for {days} more day(s)",
            dates,
            "x509.replace" if status is Status.WARN else None,
            subject,
        )
    )
    return True


def evaluate(obs: X509Observation) -> CheckResult:
    transport = obs.transport
    findings = preamble_findings(PROTOCOL, "x509", transport.mx)
    findings += host_address_findings(PROTOCOL, "x509", transport.hosts)
    revocation = {r.leaf_sha256: r for r in obs.revocation}
    judge = _Judge(obs.anchors, obs.checked_at, findings.append, revocation, obs.revocation_checked)
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
    findings={
        **shared_catalogue("x509"),
        "x509.tls_error": "the TLS session broke off (timeout): could not find out",
        "x509.no_tls": "no TLS session, so no certificate",
        "x509.no_certificate": "no (parseable) certificate presented",
        "x509.anchors_error": "the trust anchors could not be loaded",
        "x509.chain_valid": "the chain leads to a trusted root",
        "x509.chain_untrusted": "the chain does not lead to a trusted root",
        "x509.chain_unknown": "only the leaf was readable; the chain could not be checked",
        "x509.chain_unsupported": "the chain uses an algorithm the verifier cannot judge: could not find out",
        "x509.revoked": "the certificate is revoked (OCSP or CRL)",
        "x509.not_revoked": "an OCSP responder or a CRL says the certificate is not revoked",
        "x509.revocation_unknown": "revocation status unknown: source unreachable, unsigned or stale",
        "x509.revocation_not_published": "the certificate names no OCSP responder and no CRL",
        "x509.revocation_not_checked": "revocation was not checked (--no-revocation)",
        "x509.webpki_deviation": "valid under RFC 5280 path validation, but not under the web-PKI profile",
        "x509.self_signed": "the certificate is self-signed",
        "x509.name_match": "the certificate names the MX host (RFC 6125)",
        "x509.name_from_cn": "the name is only in the subject CN",
        "x509.name_mismatch": "the certificate does not name the MX host",
        "x509.dates_valid": "within its validity dates",
        "x509.expires_soon": "expires within 14 days",
        "x509.expired": "expired",
        "x509.not_yet_valid": "not yet valid",
        "x509.weak_key": "RSA under 2048 bits, small curve, or DSA",
        "x509.weak_signature": "MD5 or SHA-1 signature",
    },
)
