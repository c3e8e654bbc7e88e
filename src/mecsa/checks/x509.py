"""The MX certificates (MECSA `x509`): chain, name, dates, key and signature, on every MX address.

MECSA's x509 passes for a host when its certificate chains to a trusted root, names the MX host
and is within its dates. Trust anchors: the system CA bundle, or `--ca-file PEM` (the lab's CA).
The per-MX share and the 80% rule are those of `starttls` (see `checks/permx.py`).

Chain validation is RFC 5280 §6.1 path validation, as OpenSSL-based MTAs do it (`mecsa.pkix`):
a chain that passes it but breaks the CA/Browser Forum web-PKI profile (a non-critical
basicConstraints, say) is valid, with a `x509.webpki_deviation` warning of its own. The name and
the dates are judged separately here so that each failure gets its own finding.

Revocation (MECSA's certificate check includes it): the leaf's OCSP responder, then its CRL
distribution points, over HTTP through the assessment's resolver (`observe/revocation.py`,
bounded in size and time), judged by `mecsa.revocation`. A revoked certificate fails the host;
a status that could not be found out is a warning, never a failure. No OCSP stapling: Python's
ssl module cannot ask for it (see `observe/revocation.py`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from cryptography import x509

from mecsa.certs import (
    CertificateSummary,
    TrustAnchors,
    certificate_names,
    key_description,
    load_anchors,
    name_matches,
    parse_chain,
    signature_description,
)
from mecsa.checks.base import CheckSpec
from mecsa.checks.permx import (
    HostFacts,
    TransportKinds,
    find_address,
    host_address_findings,
    host_outcome,
    preamble_findings,
    share_verdict,
    tls_denied,
    unreachable_finding,
)
from mecsa.model import CheckResult, Finding, FindingKind, JsonValue, Status
from mecsa.observe import Context
from mecsa.observe.mx import MxObservation
from mecsa.observe.revocation import RevocationObservation, fingerprint, observe_revocation
from mecsa.observe.transport import HostSessions, TransportObservation, observe_transport
from mecsa.pkix import PathValidation, validate_path
from mecsa.probes.smtp import SmtpObservation
from mecsa.revocation import RevocationState, RevocationVerdict, judge_observation, revocation_points

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
CHAIN_UNSUPPORTED = FindingKind(
    "x509.chain_unsupported",
    Status.ERROR,
    PROTOCOL,
    "the chain uses an algorithm the verifier cannot judge: could not find out",
)
WEBPKI_DEVIATION = FindingKind(
    "x509.webpki_deviation",
    Status.WARN,
    PROTOCOL,
    "valid under RFC 5280 path validation, but not under the web-PKI profile",
    "x509.replace",
)
REVOKED = FindingKind(
    "x509.revoked", Status.FAIL, PROTOCOL, "the certificate is revoked (OCSP or CRL)", "x509.replace"
)
NOT_REVOKED = FindingKind(
    "x509.not_revoked",
    Status.PASS,
    PROTOCOL,
    "an OCSP responder or a CRL says the certificate is not revoked",
)
REVOCATION_UNKNOWN = FindingKind(
    "x509.revocation_unknown",
    Status.WARN,
    PROTOCOL,
    "revocation status unknown: source unreachable, unsigned or stale",
)
REVOCATION_NOT_PUBLISHED = FindingKind(
    "x509.revocation_not_published",
    Status.INFO,
    PROTOCOL,
    "the certificate names no OCSP responder and no CRL",
)
REVOCATION_NOT_CHECKED = FindingKind(
    "x509.revocation_not_checked", Status.INFO, PROTOCOL, "revocation was not checked (--no-revocation)"
)

EXPIRY_WARNING_DAYS = 14


# --- the check -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class X509Observation:
    """The SMTP sessions, the trust anchors and the revocation answers, judged at `checked_at`."""

    transport: TransportObservation
    anchors: TrustAnchors
    checked_at: dt.datetime
    revocation: tuple[RevocationObservation, ...] = ()
    revocation_checked: bool = True


async def observe(ctx: Context, mx: MxObservation | None = None) -> X509Observation:
    transport = await observe_transport(ctx, mx)
    anchors = load_anchors(ctx.options.ca_file)
    revocation: tuple[RevocationObservation, ...] = ()
    if ctx.options.revocation:
        chains = [s.tls.chain for h in transport.hosts for s in h.sessions if s.tls and s.tls.chain]
        revocation = await observe_revocation(ctx, chains, anchors.certificates)
    now = dt.datetime.now(dt.UTC)
    return X509Observation(transport, anchors, now, revocation, ctx.options.revocation)


@dataclass(frozen=True, slots=True)
class _Judge:
    """What judging one presented chain needs: the anchors, the time and the revocation answers."""

    anchors: TrustAnchors
    now: dt.datetime
    add: Callable[[Finding], None]
    revocation: Mapping[str, RevocationObservation] = field(default_factory=dict)
    revocation_checked: bool = True


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


@dataclass(frozen=True, slots=True)
class PresentedCertificate:
    """The certificate an address presented: the leaf and the rest of the chain, and its days left.

    `certificate` and `chain_seen` are the leaf and the rest as the document keeps them; `leaf` and
    `chain` are the parsed certificates, for live readers. A certificate rebuilt from a stored
    document (`from_json`) has only the summaries (the document keeps no DER): its `leaf` is None
    and its `chain` empty, so those two take no part in equality.
    """

    certificate: CertificateSummary
    chain_seen: tuple[CertificateSummary, ...]
    full_chain_seen: bool
    days_left: int
    revocation: RevocationVerdict | None = None
    leaf: x509.Certificate | None = field(default=None, compare=False)
    chain: tuple[x509.Certificate, ...] = field(default=(), compare=False)

    @classmethod
    def of(
        cls,
        leaf: x509.Certificate,
        chain: tuple[x509.Certificate, ...],
        full_chain_seen: bool,
        days_left: int,
        revocation: RevocationVerdict | None = None,
    ) -> PresentedCertificate:
        summaries = tuple(CertificateSummary.of(c) for c in chain)
        return cls(
            CertificateSummary.of(leaf), summaries, full_chain_seen, days_left, revocation, leaf, chain
        )

    @property
    def name(self) -> str | None:
        """The first DNS name it claims (SAN, else CN), for a one-line summary."""
        names = self.certificate.dns_names
        return names[0] if names else None

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "certificate": self.certificate.to_json(),
            "chain": [c.to_json() for c in self.chain_seen],
            "full_chain_seen": self.full_chain_seen,
            "days_left": self.days_left,
            "revocation": self.revocation.to_json() if self.revocation else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> PresentedCertificate:
        revocation = data["revocation"]
        return cls(
            CertificateSummary.from_json(data["certificate"]),
            tuple(CertificateSummary.from_json(c) for c in data["chain"]),
            bool(data["full_chain_seen"]),
            int(data["days_left"]),
            None if revocation is None else RevocationVerdict.from_json(revocation),
        )


@dataclass(frozen=True, slots=True)
class AddressCertificate:
    """What one MX address presented, and the x509 outcome for it."""

    address: str
    outcome: Status
    presented: PresentedCertificate | None

    def to_json(self) -> dict[str, JsonValue]:
        extra = self.presented.to_json() if self.presented else {}
        return {"address": self.address, "outcome": self.outcome.value, **extra}

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> AddressCertificate:
        # an address that presented no certificate has no "certificate" key (to_json adds nothing)
        presented = PresentedCertificate.from_json(data) if "certificate" in data else None
        return cls(str(data["address"]), Status(data["outcome"]), presented)


@dataclass(frozen=True, slots=True)
class X509Facts:
    """What the x509 check found per MX host and address."""

    trust_anchors: str
    checked_at: dt.datetime
    hosts: tuple[HostFacts[AddressCertificate], ...]

    def address(self, host: str, address: str) -> AddressCertificate | None:
        return find_address(self.hosts, host, address)

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "trust_anchors": self.trust_anchors,
            "checked_at": self.checked_at.isoformat(),
            "hosts": [h.to_json() for h in self.hosts],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> X509Facts:
        return cls(
            str(data["trust_anchors"]),
            dt.datetime.fromisoformat(data["checked_at"]),
            tuple(HostFacts.from_json(h, AddressCertificate.from_json) for h in data["hosts"]),
        )


def _address(s: SmtpObservation, judge: _Judge) -> tuple[Status, PresentedCertificate | None]:
    """Judge one address's certificate; returns its outcome and its details."""
    if s.tls is None:
        return _no_tls(s, judge), None
    where, subject = f"{s.host} [{s.address}]", f"{s.host} {s.address}"
    add = judge.add
    parsed = parse_chain(s.tls.chain) if s.tls.chain else "the server presented no certificate"
    if isinstance(parsed, str):
        add(NO_CERTIFICATE(f"{where}: {parsed}", subject=subject))
        return Status.FAIL, None
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
    revocation = _judge_revocation(where, subject, leaf, judge)
    revoked = revocation is not None and revocation.state is RevocationState.REVOKED
    presented = PresentedCertificate.of(
        leaf, tuple(rest), s.tls.full_chain, (leaf.not_valid_after_utc - judge.now).days, revocation
    )
    if not (name_ok and dates_ok) or chain_ok is False or revoked:
        return Status.FAIL, presented  # a proven fault fails the host even when the chain is unknown
    return (Status.PASS if chain_ok else Status.ERROR), presented


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
    result = validate_path(leaf, rest, judge.anchors.certificates, judge.now)
    if not result.valid and not _within_dates(leaf, judge.now):
        # Dates have their own finding: ask whether the chain was (or will be) trusted at the nearest
        # moment of the leaf's own validity.
        nearest = min(max(judge.now, leaf.not_valid_before_utc), leaf.not_valid_after_utc)
        result = validate_path(leaf, rest, judge.anchors.certificates, nearest)
    reason = result.reason
    if result.valid:
        path = tuple(c.subject.rfc4514_string() for c in result.chain)
        judge.add(
            CHAIN_VALID(f"{where}: the chain is trusted (anchors: {judge.anchors.source})", path, subject)
        )
        _webpki_deviation(where, subject, result, judge)
        return True
    if result.unsupported:
        judge.add(
            CHAIN_UNSUPPORTED(
                f"{where}: the chain uses an algorithm this tool's verifier cannot judge",
                (*evidence, reason),
                subject,
            )
        )
        return None
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


def _webpki_deviation(where: str, subject: str, result: PathValidation, judge: _Judge) -> None:
    if result.webpki_deviation is None:
        return
    judge.add(
        WEBPKI_DEVIATION(
            f"{where}: the chain is valid (RFC 5280 path validation, as OpenSSL-based MTAs judge it) "
            "but breaks the CA/Browser Forum web-PKI profile",
            (result.webpki_deviation,),
            subject,
        )
    )


def _judge_revocation(
    where: str, subject: str, leaf: x509.Certificate, judge: _Judge
) -> RevocationVerdict | None:
    """Judge the leaf's OCSP/CRL answers (`mecsa.revocation`); None when none were looked up."""
    seen = judge.revocation.get(fingerprint(leaf))
    if seen is None:
        if not revocation_points(leaf).any:
            why = "the certificate names no OCSP responder and no CRL distribution point"
            judge.add(REVOCATION_NOT_PUBLISHED(f"{where}: {why}", subject=subject))
        elif not judge.revocation_checked:
            judge.add(REVOCATION_NOT_CHECKED(f"{where}: revocation was not checked", subject=subject))
        return None  # or no issuer was found: the chain findings say why
    verdict = judge_observation(seen, leaf, judge.now)
    evidence = tuple(a.describe() for a in verdict.answers)
    deciding = verdict.deciding
    if verdict.state is RevocationState.REVOKED and deciding is not None:
        judge.add(
            REVOKED(
                f"{where}: the certificate is revoked ({deciding.source}: {deciding.detail})",
                evidence,
                subject,
            )
        )
    elif verdict.state is RevocationState.GOOD and deciding is not None:
        judge.add(
            NOT_REVOKED(f"{where}: not revoked ({deciding.source}: {deciding.detail})", evidence, subject)
        )
    else:
        # RFC 6960 §2.2, RFC 5280 §6.3: no answer that counts. Could not find out: a warning, never a failure.
        judge.add(
            REVOCATION_UNKNOWN(f"{where}: the revocation status could not be found out", evidence, subject)
        )
    return verdict


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
    revocation = {r.leaf_sha256: r for r in obs.revocation}
    judge = _Judge(obs.anchors, obs.checked_at, findings.append, revocation, obs.revocation_checked)
    hosts = tuple(_host(h, judge) for h in transport.hosts)
    outcomes = {h.name: h.outcome for h in hosts}
    verdict = share_verdict(PROTOCOL, transport.mx, outcomes, "present a valid certificate")
    facts = X509Facts(obs.anchors.source, obs.checked_at, hosts)
    return CheckResult.of("x509", tuple(findings), (verdict,), facts)


def _host(h: HostSessions, judge: _Judge) -> HostFacts[AddressCertificate]:
    addresses = tuple(AddressCertificate(s.address, *_address(s, judge)) for s in h.sessions)
    outcome = host_outcome((a.outcome for a in addresses), complete=not h.host.lookup_failed)
    return HostFacts(h.host.name, outcome, addresses)


CHECK = CheckSpec(
    name="x509",
    summary="MX certificates: chain to a trusted root, RFC 6125 name, dates, key and signature",
    protocols=(PROTOCOL,),
    observe=observe,
    evaluate=evaluate,
    facts=X509Facts,
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
        CHAIN_UNSUPPORTED,
        WEBPKI_DEVIATION,
        REVOKED,
        NOT_REVOKED,
        REVOCATION_UNKNOWN,
        REVOCATION_NOT_PUBLISHED,
        REVOCATION_NOT_CHECKED,
    ),
)
