"""Revocation of a server certificate, judged from OCSP responses and CRLs: pure, no network.

What is read from the certificate (RFC 5280 §4.2.2.1, §4.2.1.13): the OCSP responders of its
Authority Information Access and the full-name URIs of its CRL distribution points. Only `http:`
URLs are fetched (`mecsa.probes.revocation`); RFC 5280 §4.2.1.13 and RFC 6960 Appendix A name
HTTP as the transport, and an https or ldap URL is listed as not fetched.

An OCSP response counts (RFC 6960) when it is `successful`, has a SingleResponse for this
certificate's CertID (serial, issuer name hash and issuer key hash), is signed by the issuer or
by a responder certificate the issuer signed with id-kp-OCSPSigning (§4.2.2.2), and is current:
thisUpdate not in the future and nextUpdate, when given, not in the past (§4.2.2.1; a few
minutes of clock skew are allowed).

A CRL counts (RFC 5280 §6.3) when the issuer named it and signed it (its keyUsage, when
present, asserting cRLSign), when it is current (nextUpdate not passed), and when it is a complete
CRL for end-entity certificates: a delta CRL, an indirect CRL or one that covers only some
reasons is not judged here (not supported, said so: never read as "not revoked").

The verdict: revoked when any counted answer says so (a certificateHold entry too, as OpenSSL
reads it); good when a counted answer says good and none says revoked; otherwise unknown, with
each source's reason. Unknown is a warning for the x509 check, never a failure.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

if TYPE_CHECKING:
    from mecsa.observe.revocation import RevocationObservation

CLOCK_SKEW = dt.timedelta(minutes=5)


class RevocationState(StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"  # the responder does not know the certificate (RFC 6960 §2.2)
    UNUSABLE = "unusable"  # no answer that counts: unreachable, malformed, unsigned, stale


@dataclass(frozen=True, slots=True)
class RevocationAnswer:
    """What one source (an OCSP responder or a CRL) said about the certificate, judged."""

    source: str  # "ocsp" or "crl"
    url: str
    state: RevocationState
    detail: str
    revoked_at: dt.datetime | None = None
    reason: str | None = None

    def describe(self) -> str:
        return f"{self.source} {self.url}: {self.state.value} ({self.detail})"

    def to_json(self) -> dict[str, str | None]:
        return {
            "source": self.source,
            "url": self.url,
            "state": self.state.value,
            "detail": self.detail,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RevocationAnswer:
        when, reason = data["revoked_at"], data["reason"]
        return cls(
            str(data["source"]),
            str(data["url"]),
            RevocationState(data["state"]),
            str(data["detail"]),
            None if when is None else dt.datetime.fromisoformat(when),
            None if reason is None else str(reason),
        )


@dataclass(frozen=True, slots=True)
class RevocationPoints:
    """Where a certificate says its revocation status can be found."""

    ocsp: tuple[str, ...]
    crl: tuple[str, ...]
    not_fetched: tuple[str, ...]  # URLs of other schemes (https, ldap): listed, not fetched

    @property
    def any(self) -> bool:
        return bool(self.ocsp or self.crl or self.not_fetched)


def _http(url: str) -> bool:
    return url.lower().startswith("http://")


def revocation_points(cert: x509.Certificate) -> RevocationPoints:
    """The OCSP responder and CRL distribution point URLs of `cert`."""
    ocsp_urls: list[str] = []
    crl_urls: list[str] = []
    with contextlib.suppress(x509.ExtensionNotFound, ValueError):
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
        for desc in aia:
            if desc.access_method == AuthorityInformationAccessOID.OCSP and isinstance(
                desc.access_location, x509.UniformResourceIdentifier
            ):
                ocsp_urls.append(desc.access_location.value)
    with contextlib.suppress(x509.ExtensionNotFound, ValueError):
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        for point in points:
            for name in point.full_name or ():
                if isinstance(name, x509.UniformResourceIdentifier):
                    crl_urls.append(name.value)
    other = tuple(u for u in (*ocsp_urls, *crl_urls) if not _http(u))
    return RevocationPoints(
        tuple(u for u in ocsp_urls if _http(u)), tuple(u for u in crl_urls if _http(u)), other
    )


def find_issuer(leaf: x509.Certificate, candidates: tuple[x509.Certificate, ...]) -> x509.Certificate | None:
    """The candidate that issued `leaf`: its subject is the leaf's issuer and its key signed the leaf."""
    for candidate in candidates:
        if candidate.subject != leaf.issuer:
            continue
        try:
            leaf.verify_directly_issued_by(candidate)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return candidate
    return None


def ocsp_request(leaf: x509.Certificate, issuer: x509.Certificate) -> bytes:
    """A DER OCSP request for `leaf`, with a SHA-1 CertID (RFC 5019 §2.1.1: what responders index by)."""
    request = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, hashes.SHA1()).build()
    return request.public_bytes(serialization.Encoding.DER)


def _key_hash(cert: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
    # The hash of the subjectPublicKey BIT STRING's value (RFC 6960 §4.1.1): SPKI minus its header.
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    bits = _bit_string_value(spki)
    digest = hashes.Hash(algorithm)
    digest.update(bits)
    return digest.finalize()


def _der_length(data: bytes, at: int) -> tuple[int, int]:
    first = data[at]
    if first < 0x80:
        return first, at + 1
    count = first & 0x7F
    return int.from_bytes(data[at + 1 : at + 1 + count], "big"), at + 1 + count


def _bit_string_value(spki: bytes) -> bytes:
    """The public key bits of a DER SubjectPublicKeyInfo: SEQUENCE { AlgorithmIdentifier, BIT STRING }."""
    _, at = _der_length(spki, 1)  # outer SEQUENCE
    algorithm_length, body = _der_length(spki, at + 1)  # AlgorithmIdentifier SEQUENCE
    at = body + algorithm_length
    length, body = _der_length(spki, at + 1)  # BIT STRING
    return spki[body + 1 : body + length]  # skip the unused-bits octet


def _name_hash(cert: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
    digest = hashes.Hash(algorithm)
    digest.update(cert.subject.public_bytes())
    return digest.finalize()


def _verify_signature(
    public_key: object, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm | None
) -> bool:
    """Whether `signature` over `data` verifies (PKCS#1 v1.5, ECDSA, Ed25519, Ed448)."""
    try:
        if isinstance(public_key, rsa.RSAPublicKey) and algorithm is not None:
            public_key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(public_key, ec.EllipticCurvePublicKey) and algorithm is not None:
            public_key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(public_key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            public_key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _responder(
    response: ocsp.OCSPResponse, issuer: x509.Certificate, now: dt.datetime
) -> x509.Certificate | str:
    """The certificate whose key signed the response, or why none is acceptable (RFC 6960 §4.2.2.2)."""

    def named(cert: x509.Certificate) -> bool:
        if response.responder_name is not None:
            return cert.subject == response.responder_name
        return response.responder_key_hash == _key_hash(cert, hashes.SHA1())

    if named(issuer):
        return issuer
    for cert in response.certificates:
        if not named(cert):
            continue
        if cert.issuer != issuer.subject:
            return "the responder certificate was not issued by the certificate's issuer"
        try:
            cert.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            return "the responder certificate is not signed by the certificate's issuer"
        try:
            usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            return "the responder certificate lacks id-kp-OCSPSigning"
        if ExtendedKeyUsageOID.OCSP_SIGNING not in list(usages):
            return "the responder certificate lacks id-kp-OCSPSigning"
        if not cert.not_valid_before_utc - CLOCK_SKEW <= now <= cert.not_valid_after_utc + CLOCK_SKEW:
            return "the responder certificate is outside its validity dates"
        return cert
    return "signed by neither the issuer nor a delegated responder it names"


# What cryptography raises on bytes it cannot use; bytes from the network must never crash the check.
_UNREADABLE = (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion)


def judge_ocsp(
    url: str, der: bytes, leaf: x509.Certificate, issuer: x509.Certificate, now: dt.datetime
) -> RevocationAnswer:
    """Judge one OCSP response body for `leaf` (issued by `issuer`) at `now`."""
    try:
        return _judge_ocsp(url, der, leaf, issuer, now)
    except _UNREADABLE as exc:
        return RevocationAnswer(
            "ocsp", url, RevocationState.UNUSABLE, f"the response could not be read: {exc}"
        )


def _judge_ocsp(
    url: str, der: bytes, leaf: x509.Certificate, issuer: x509.Certificate, now: dt.datetime
) -> RevocationAnswer:

    def unusable(why: str) -> RevocationAnswer:
        return RevocationAnswer("ocsp", url, RevocationState.UNUSABLE, why)

    try:
        response = ocsp.load_der_ocsp_response(der)
    except ValueError as exc:
        return unusable(f"not an OCSP response: {exc}")
    if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        return unusable(f"the responder answered {response.response_status.name.lower()}")
    single = None
    for candidate in response.responses:
        algorithm = candidate.hash_algorithm
        if (
            candidate.serial_number == leaf.serial_number
            and candidate.issuer_name_hash == _name_hash(issuer, algorithm)
            and candidate.issuer_key_hash == _key_hash(issuer, algorithm)
        ):
            single = candidate
            break
    if single is None:
        return unusable("the response is about another certificate")
    responder = _responder(response, issuer, now)
    if isinstance(responder, str):
        return unusable(responder)
    signed = _verify_signature(
        responder.public_key(),
        response.signature,
        response.tbs_response_bytes,
        response.signature_hash_algorithm,
    )
    if not signed:
        return unusable("the response signature does not verify")
    if single.this_update_utc > now + CLOCK_SKEW:
        return unusable(f"thisUpdate {single.this_update_utc.isoformat()} is in the future")
    if single.next_update_utc is not None and single.next_update_utc < now - CLOCK_SKEW:
        return unusable(f"stale: nextUpdate {single.next_update_utc.isoformat()} has passed")
    status = single.certificate_status
    if status is ocsp.OCSPCertStatus.REVOKED:
        reason = single.revocation_reason.value if single.revocation_reason else None
        when = single.revocation_time_utc
        return RevocationAnswer(
            "ocsp", url, RevocationState.REVOKED, _revoked_detail(when, reason), when, reason
        )
    if status is ocsp.OCSPCertStatus.UNKNOWN:
        return RevocationAnswer(
            "ocsp", url, RevocationState.UNKNOWN, "the responder does not know the certificate"
        )
    return RevocationAnswer(
        "ocsp", url, RevocationState.GOOD, f"good as of {single.this_update_utc.isoformat()}"
    )


def _revoked_detail(when: dt.datetime | None, reason: str | None) -> str:
    text = f"revoked on {when.isoformat()}" if when else "revoked"
    return f"{text}, reason {reason}" if reason else text


def _load_crl(data: bytes) -> x509.CertificateRevocationList:
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_crl(data)
    return x509.load_der_x509_crl(data)


def _crl_scope_problem(crl: x509.CertificateRevocationList) -> str | None:
    """Why this CRL cannot settle an end-entity certificate's status here, or None."""
    with contextlib.suppress(x509.ExtensionNotFound, ValueError):
        crl.extensions.get_extension_for_class(x509.DeltaCRLIndicator)
        return "a delta CRL (not supported here)"
    with contextlib.suppress(x509.ExtensionNotFound, ValueError):
        scope = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
        if scope.indirect_crl:
            return "an indirect CRL (not supported here)"
        if scope.only_some_reasons:
            return "a CRL for some reasons only (not supported here)"
        if scope.only_contains_ca_certs or scope.only_contains_attribute_certs:
            return "a CRL that does not cover end-entity certificates"
    return None


def judge_crl(
    url: str, data: bytes, leaf: x509.Certificate, issuer: x509.Certificate, now: dt.datetime
) -> RevocationAnswer:
    """Judge one CRL (DER, or PEM as some servers send it) for `leaf` at `now` (RFC 5280 §6.3)."""
    try:
        return _judge_crl(url, data, leaf, issuer, now)
    except _UNREADABLE as exc:
        return RevocationAnswer("crl", url, RevocationState.UNUSABLE, f"the CRL could not be read: {exc}")


def _judge_crl(
    url: str, data: bytes, leaf: x509.Certificate, issuer: x509.Certificate, now: dt.datetime
) -> RevocationAnswer:

    def unusable(why: str) -> RevocationAnswer:
        return RevocationAnswer("crl", url, RevocationState.UNUSABLE, why)

    try:
        crl = _load_crl(data)
    except ValueError as exc:
        return unusable(f"not a CRL: {exc}")
    if crl.issuer != leaf.issuer:
        return unusable(f"issued by {crl.issuer.rfc4514_string()}, not by the certificate's issuer")
    with contextlib.suppress(x509.ExtensionNotFound, ValueError):
        usage = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
        if not usage.crl_sign:
            return unusable("the issuer's keyUsage lacks cRLSign (RFC 5280 §6.3.3 (f))")
    try:
        signed = crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    except (TypeError, ValueError):
        signed = False
    if not signed:
        return unusable("the CRL signature does not verify with the issuer's key")
    problem = _crl_scope_problem(crl)
    if problem:
        return unusable(problem)
    if crl.last_update_utc > now + CLOCK_SKEW:
        return unusable(f"thisUpdate {crl.last_update_utc.isoformat()} is in the future")
    if crl.next_update_utc is not None and crl.next_update_utc < now - CLOCK_SKEW:
        return unusable(f"stale: nextUpdate {crl.next_update_utc.isoformat()} has passed")
    entry = crl.get_revoked_certificate_by_serial_number(leaf.serial_number)
    if entry is None:
        return RevocationAnswer(
            "crl", url, RevocationState.GOOD, f"not listed as of {crl.last_update_utc.isoformat()}"
        )
    reason = None
    with contextlib.suppress(x509.ExtensionNotFound, ValueError):
        reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.value
    when = entry.revocation_date_utc
    return RevocationAnswer("crl", url, RevocationState.REVOKED, _revoked_detail(when, reason), when, reason)


@dataclass(frozen=True, slots=True)
class RevocationVerdict:
    """The combined verdict on one certificate, with every source's answer."""

    state: RevocationState
    answers: tuple[RevocationAnswer, ...]

    @property
    def deciding(self) -> RevocationAnswer | None:
        return next((a for a in self.answers if a.state is self.state), None)

    def to_json(self) -> dict[str, object]:
        return {"state": self.state.value, "answers": [a.to_json() for a in self.answers]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RevocationVerdict:
        return cls(
            RevocationState(data["state"]), tuple(RevocationAnswer.from_json(a) for a in data["answers"])
        )


def combine(answers: tuple[RevocationAnswer, ...]) -> RevocationVerdict:
    """Revoked if any counted answer says so; good if one says good; unknown otherwise."""
    for state in (RevocationState.REVOKED, RevocationState.GOOD):
        if any(a.state is state for a in answers):
            return RevocationVerdict(state, answers)
    return RevocationVerdict(RevocationState.UNKNOWN, answers)


def judge_observation(
    seen: RevocationObservation, leaf: x509.Certificate, now: dt.datetime
) -> RevocationVerdict:
    """Judge every source fetched for `leaf` (see `mecsa.probes.revocation`) and combine them."""
    issuer = x509.load_der_x509_certificate(seen.issuer)
    answers: list[RevocationAnswer] = []
    for kind, fetches, judge in (("ocsp", seen.ocsp, judge_ocsp), ("crl", seen.crl, judge_crl)):
        for fetch in fetches:
            if fetch.body is None:
                answers.append(
                    RevocationAnswer(kind, fetch.url, RevocationState.UNUSABLE, fetch.failure or "no body")
                )
            else:
                answers.append(judge(fetch.url, fetch.body, leaf, issuer, now))
    for url in seen.not_fetched:
        answers.append(RevocationAnswer("url", url, RevocationState.UNUSABLE, "only http URLs are fetched"))
    if seen.failure:
        answers.append(RevocationAnswer("lookup", "-", RevocationState.UNUSABLE, seen.failure))
    return combine(tuple(answers))
