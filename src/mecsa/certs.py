"""Pure certificate and DANE logic, shared by the x509 and dane checks and by mail mode.

Nothing here does I/O except reading a trust-anchor file. Name matching follows RFC 6125; chain
validation is RFC 5280 §6.1 path validation as OpenSSL judges it (`mecsa.pkix`, on cryptography's
verifier); DANE matching follows RFC 7672 (usages 2 and 3, selectors 0 and 1, matching types 0, 1
and 2). No check imports another check: they import this module.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import ssl
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from mecsa.dns.answer import DnsAnswer, DnssecStatus
from mecsa.pkix import validate_path

MIN_RSA_BITS = 2048
USABLE_USAGES = {2: "DANE-TA", 3: "DANE-EE"}
USAGE_NAMES = {0: "PKIX-TA", 1: "PKIX-EE", **USABLE_USAGES}


# RFC 6125 name matching is written here: the stdlib's match_hostname is gone since 3.12.
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


@dataclass(frozen=True, slots=True)
class TrustAnchors:
    """The CA certificates a chain must lead to (`--ca-file` or the system bundle), and where from."""

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


def verify_chain(
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    anchors: tuple[x509.Certificate, ...],
    when: dt.datetime,
) -> tuple[bool, str, tuple[x509.Certificate, ...]]:
    """Whether `leaf` chains to one of `anchors` at `when` (RFC 5280 §6.1, see `mecsa.pkix`).

    Returns (ok, reason, the validated chain); the server name is not checked here. Callers that
    report a web-PKI deviation or an unsupported algorithm use `mecsa.pkix.validate_path`.
    """
    result = validate_path(leaf, intermediates, anchors, when)
    return result.valid, result.reason, result.chain


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


@dataclass(frozen=True, slots=True)
class CertificateSummary:
    """What the assessment document keeps of a certificate: its names, dates, key and SPKI digest.

    The document keeps no DER, so a certificate rebuilt from a stored document is this summary.
    """

    subject: str
    issuer: str
    not_before: dt.datetime
    not_after: dt.datetime
    serial: int
    dns_names: tuple[str, ...]
    names_from_cn: bool
    key_type: str
    key_bits: int | None
    signature_algorithm: str
    spki_sha256: str

    @classmethod
    def of(cls, cert: x509.Certificate) -> CertificateSummary:
        """The summary of `cert`, made once per certificate in a process (issue 20: a scan meets
        the same MX hosts' certificates over and over). Keyed by the certificate itself, whose
        equality and hash are its DER octets, of which the summary is a function."""
        return _summary(cert) if cls is CertificateSummary else cls._of(cert)

    @classmethod
    def _of(cls, cert: x509.Certificate) -> CertificateSummary:
        key_type, key_bits, _ = key_description(cert)
        names, from_cn = certificate_names(cert)
        return cls(
            cert.subject.rfc4514_string(),
            cert.issuer.rfc4514_string(),
            cert.not_valid_before_utc,
            cert.not_valid_after_utc,
            cert.serial_number,
            names,
            from_cn,
            key_type,
            key_bits,
            signature_description(cert)[0],
            spki_sha256(cert),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "serial": format(self.serial, "x"),
            "dns_names": list(self.dns_names),
            "names_from_cn": self.names_from_cn,
            "key": {"type": self.key_type, "bits": self.key_bits},
            "signature_algorithm": self.signature_algorithm,
            # the TLSA 3 1 1 data of this key: what the monitor compares to see a key change (RFC 6698 §2.1)
            "spki_sha256": self.spki_sha256,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CertificateSummary:
        key = data["key"]
        bits = key["bits"]
        return cls(
            str(data["subject"]),
            str(data["issuer"]),
            dt.datetime.fromisoformat(data["not_before"]),
            dt.datetime.fromisoformat(data["not_after"]),
            int(data["serial"], 16),
            tuple(str(n) for n in data["dns_names"]),
            bool(data["names_from_cn"]),
            str(key["type"]),
            None if bits is None else int(bits),
            str(data["signature_algorithm"]),
            str(data["spki_sha256"]),
        )


def cert_json(cert: x509.Certificate) -> dict[str, Any]:
    return CertificateSummary.of(cert).to_json()


def spki_sha256(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate's SubjectPublicKeyInfo, in hex (a TLSA 3 1 1 record's data)."""
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


@functools.lru_cache(maxsize=1024)
def _summary(cert: x509.Certificate) -> CertificateSummary:
    return CertificateSummary._of(cert)


def parse_chain(chain: tuple[bytes, ...]) -> list[x509.Certificate] | str:
    """The presented chain parsed, or the reason it could not be."""
    try:
        return [x509.load_der_x509_certificate(der) for der in chain]
    except ValueError as exc:
        return f"a presented certificate could not be parsed: {exc}"


@dataclass(frozen=True, slots=True)
class Tlsa:
    """One TLSA record, typed."""

    usage: int
    selector: int
    mtype: int
    data: bytes

    def __str__(self) -> str:
        return f"{self.usage} {self.selector} {self.mtype} {self.data.hex()}"

    @classmethod
    def from_text(cls, text: str) -> Tlsa:
        """The record from its `str()` form ("3 1 1 <hex>"), as the document keeps it."""
        usage, selector, mtype, *data = text.split(" ", 3)
        return cls(int(usage), int(selector), int(mtype), bytes.fromhex(data[0] if data else ""))

    @property
    def unusable_because(self) -> str | None:
        """Why this record cannot be used for SMTP, or None when it can."""
        if self.usage not in USABLE_USAGES:
            name = USAGE_NAMES.get(self.usage, str(self.usage))
            return f"usage {name} is unusable for SMTP (RFC 7672 §3.1.3)"
        if self.selector not in (0, 1):
            return f"unknown selector {self.selector}"
        if self.mtype not in (0, 1, 2):
            return f"unknown matching type {self.mtype}"
        return None

    def matches(self, cert: x509.Certificate) -> bool:
        """Whether this record's data matches `cert` under its selector and matching type."""
        if self.selector == 0:
            data = cert.public_bytes(serialization.Encoding.DER)
        else:
            data = cert.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        if self.mtype == 1:
            data = hashlib.sha256(data).digest()
        elif self.mtype == 2:
            data = hashlib.sha512(data).digest()
        return data == self.data


def tlsa_records(answer: DnsAnswer) -> tuple[Tlsa, ...]:
    return tuple(
        Tlsa(int(rd.usage), int(rd.selector), int(rd.mtype), bytes(rd.cert))  # type: ignore[attr-defined]
        for rd in answer.records
    )


@dataclass(frozen=True, slots=True)
class TlsaMatch:
    """Whether one TLSA record matched the presented chain, and why (RFC 6698 §2.1, RFC 7671)."""

    record: Tlsa
    matched: bool
    note: str
    webpki_deviation: str | None = None  # a DANE-TA match whose chain breaks the web-PKI profile

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"record": str(self.record), "matched": self.matched, "note": self.note}
        if self.webpki_deviation is not None:  # additive: only a DANE-TA match with a deviation has it
            out["webpki_deviation"] = self.webpki_deviation
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TlsaMatch:
        # not .get: details of another shape (a list) must raise TypeError, which readers expect
        deviation = data["webpki_deviation"] if "webpki_deviation" in data else None  # noqa: SIM401
        return cls(
            Tlsa.from_text(str(data["record"])),
            bool(data["matched"]),
            str(data["note"]),
            None if deviation is None else str(deviation),
        )


def match_record(
    record: Tlsa, chain: list[x509.Certificate], names: tuple[str, ...], now: dt.datetime
) -> TlsaMatch:
    """Match one usable record against a presented chain (leaf first), per RFC 7672 §3.1.

    DANE-TA: the matched certificate is the trust anchor of RFC 5280 §6.1 path validation
    (RFC 6698 §2.1.1), judged the way OpenSSL does (`mecsa.pkix`); a 2 1 x record matches every
    presented certificate with that key (a cross-signed intermediate), and any of them may anchor.
    """
    leaf = chain[0]
    if record.usage == 3:
        hit = record.matches(leaf)
        return TlsaMatch(record, hit, "the leaf matches" if hit else "the leaf does not match")
    failures: list[str] = []
    for ta in chain[1:]:
        if not record.matches(ta):
            continue
        result = validate_path(leaf, chain[1:], (ta,), now)
        issuer = ta.subject.rfc4514_string()
        if not result.valid:
            failures.append(f"matches {issuer}, but the leaf does not chain to it: {result.reason}")
            continue
        dns_names, _ = certificate_names(leaf)
        if not any(name_matches(n, ref) for n in dns_names for ref in names):
            return TlsaMatch(
                record, False, f"matches {issuer}, but the leaf names none of {', '.join(names)}"
            )
        return TlsaMatch(record, True, f"matches trust anchor {issuer}", result.webpki_deviation)
    if failures:
        return TlsaMatch(record, False, "; ".join(failures))
    return TlsaMatch(record, False, "no certificate above the leaf matches")


class DaneProblem(StrEnum):
    """Why DANE cannot apply to an MX host at all. `definite` problems fail; the rest are unknowns."""

    NOT_LOOKED_UP = "not_looked_up"
    TLSA_BOGUS = "tlsa_bogus"
    TLSA_LOOKUP_FAILED = "tlsa_lookup_failed"
    NO_TLSA = "no_tlsa"
    DNSSEC_UNKNOWN = "dnssec_unknown"
    NOT_SECURE = "not_secure"
    ADDRESS_NOT_SECURE = "address_not_secure"
    UNUSABLE = "unusable"

    @property
    def definite(self) -> bool:
        return self not in (
            DaneProblem.NOT_LOOKED_UP,
            DaneProblem.TLSA_LOOKUP_FAILED,
            DaneProblem.DNSSEC_UNKNOWN,
        )


@dataclass(frozen=True, slots=True)
class DaneApplicability:
    """Whether a host's TLSA records apply (RFC 7672 §2.2): the problem and why, or the usable records."""

    problem: DaneProblem | None
    why: str
    usable: tuple[Tlsa, ...]
    records: tuple[Tlsa, ...]


def dane_applicability(
    answer: DnsAnswer | None, host: str, address_answers: tuple[DnsAnswer, ...]
) -> DaneApplicability:
    """Judge a host's TLSA answer and address answers: DNSSEC-secure, present, usable (RFC 7672 §2.2.2)."""

    def blocked(problem: DaneProblem, why: str, records: tuple[Tlsa, ...] = ()) -> DaneApplicability:
        return DaneApplicability(problem, why, (), records)

    if answer is None:
        return blocked(DaneProblem.NOT_LOOKED_UP, "no address, no TLSA lookup")
    owner = answer.qname
    if answer.failed:
        if answer.dnssec is DnssecStatus.BOGUS:
            why = f"{owner} TLSA is DNSSEC-bogus: DANE senders will defer mail ({answer.describe_failure()})"
            return blocked(DaneProblem.TLSA_BOGUS, why)
        return blocked(DaneProblem.TLSA_LOOKUP_FAILED, answer.describe_failure())
    records = tlsa_records(answer)
    if not records:
        return blocked(DaneProblem.NO_TLSA, f"no TLSA records at {owner}")
    if answer.dnssec is DnssecStatus.INDETERMINATE:
        why = f"{owner} TLSA: DNSSEC status unknown ({answer.dnssec_link}), so usability is unknown"
        return blocked(DaneProblem.DNSSEC_UNKNOWN, why, records)
    if answer.dnssec is not DnssecStatus.SECURE:
        why = f"TLSA records at {owner} are not DNSSEC-secure ({answer.dnssec.value}): DANE does not apply"
        return blocked(DaneProblem.NOT_SECURE, why, records)
    addresses = [a for a in address_answers if a.records]
    if any(a.dnssec is DnssecStatus.INDETERMINATE for a in addresses):
        why = f"the DNSSEC status of {host}'s addresses is unknown"
        return blocked(DaneProblem.DNSSEC_UNKNOWN, why, records)
    if any(a.dnssec is not DnssecStatus.SECURE for a in addresses):
        why = f"{host}'s address records are not DNSSEC-secure, so its TLSA records do not apply"
        return blocked(DaneProblem.ADDRESS_NOT_SECURE, why, records)
    usable = tuple(r for r in records if r.unusable_because is None)
    if not usable:
        return blocked(
            DaneProblem.UNUSABLE, f"none of the TLSA records at {owner} is usable for SMTP", records
        )
    return DaneApplicability(None, "", usable, records)
