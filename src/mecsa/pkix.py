"""Certificate path validation as RFC 5280 §6.1 (and so OpenSSL, and so Postfix) judges it.

cryptography's verifier builds the path and runs §6.1 on it: signatures, validity dates, issuer
and subject name chaining, basicConstraints cA and pathLenConstraint (§6.1.4 (k)-(m)), name
constraints (§6.1.3 (b)-(c)) and the refusal of unrecognised critical extensions (§6.1.4 (o)).
What it checks on each CA certificate's extensions is an `ExtensionPolicy`. Its default,
`webpki_defaults_ca`, is the CA/Browser Forum profile, which asks for more than §6.1 does: a
*critical* basicConstraints, a keyUsage extension, an authority key identifier, and so on.
RFC 5280 §4.2.1.9 tells a CA to mark basicConstraints critical; §6.1.4 (k) only tells a relying
party to see it present with cA=TRUE. OpenSSL-based MTAs follow §6.1, so a chain with a
non-critical basicConstraints delivers mail. `RFC5280_CA_POLICY` asks exactly what §6.1 asks:

- basicConstraints present with cA=TRUE, marked critical or not (§6.1.4 (k)); the trust anchor
  is not a certificate of the path (§6.1.1 (d)): like OpenSSL, an anchor without the extension
  is taken for a CA when its keyUsage asserts keyCertSign (a DANE-TA anchor, say), by hand
  (`_trust_anchor`), since cryptography cannot be told so;
- keyUsage, when present, asserting keyCertSign (§6.1.4 (n));
- extendedKeyUsage, when present on a CA, listing serverAuth or anyExtendedKeyUsage: not §6.1,
  but OpenSSL's "sslserver" purpose, which every OpenSSL TLS client applies to the whole chain;
- any other extension may be there (critical ones still need cryptography to know them).

The web-PKI profile is judged on its own (`webpki_deviation`); the checks report a chain that
passes §6.1 but not the profile as a warning, never as an invalid chain or a failed DANE match.
Both policies use a client verifier (it checks no server name: names are judged apart), so the
profile's EKU rule for CAs is set to serverAuth here instead of the client verifier's clientAuth.

End-entity certificates get `permit_all`: the profile's demands on leaves (AKI, EKU details) are
not MECSA's criteria, and the name and dates are judged by the checks themselves.

Where cryptography cannot be told to follow §6.1: it refuses some public-key and signature
algorithms whatever the policy (Ed25519 and Ed448 CA keys, DSA, unusual RSA-PSS parameters),
which RFC 5280 and OpenSSL accept. Such a chain is `unsupported`: could not judge, never invalid.
It also refuses RSA CA keys under 2048 bits, as OpenSSL does at security level 2, Debian's default.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import warnings
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID

# cryptography's wording when it refuses an algorithm that RFC 5280 itself does not forbid.
_UNSUPPORTED_MARKERS = ("Forbidden public key algorithm", "Forbidden signature algorithm")


def _asserts_key_cert_sign(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    except (x509.ExtensionNotFound, ValueError):
        return False


def _ca_basic_constraints(
    policy: verification.Policy, cert: x509.Certificate, ext: x509.BasicConstraints
) -> None:
    # §6.1.4 (k); cryptography itself checks the pathLenConstraint (§6.1.4 (l), (m)).
    if not ext.ca:
        raise ValueError("basicConstraints cA is not TRUE (RFC 5280 §6.1.4 (k))")


@functools.lru_cache(maxsize=1)
def _stand_in_signer() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@functools.lru_cache(maxsize=1024)
def _trust_anchor(cert: x509.Certificate) -> x509.Certificate:
    """`cert` as the trust anchor of RFC 5280 §6.1.1 (d): by hand where cryptography cannot say it.

    The anchor is a name and a key, not a certificate of the path, so §6.1.4 (k) does not bind
    it. cryptography applies its CA policy to anchors too, and will not accept a CA policy that
    lets basicConstraints be absent. OpenSSL takes an anchor without basicConstraints for a CA
    when its keyUsage asserts keyCertSign (X509_check_ca). For exactly that case a stand-in is
    built: the same subject, key, dates and other extensions, with basicConstraints cA=TRUE,
    signed by a throw-away key (an anchor's own signature is never checked). Any other anchor is
    used as it is.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a system bundle's odd entry (a negative serial) warns here
            cert.extensions.get_extension_for_class(x509.BasicConstraints)
        return cert
    except x509.ExtensionNotFound:
        pass
    except ValueError:
        return cert  # malformed extensions: cryptography will say so
    if not _asserts_key_cert_sign(cert):
        return cert
    try:
        builder = (
            x509.CertificateBuilder()
            .subject_name(cert.subject)
            .issuer_name(cert.issuer)
            .public_key(cert.public_key())
            .serial_number(cert.serial_number)
            .not_valid_before(cert.not_valid_before_utc)
            .not_valid_after(cert.not_valid_after_utc)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        )
        for ext in cert.extensions:
            if not isinstance(ext.value, x509.AuthorityKeyIdentifier):
                builder = builder.add_extension(ext.value, ext.critical)
        return builder.sign(_stand_in_signer(), hashes.SHA256())
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return cert  # a key or an extension the builder cannot take: the anchor as it is


def _ca_key_usage(policy: verification.Policy, cert: x509.Certificate, ext: x509.KeyUsage | None) -> None:
    if ext is not None and not ext.key_cert_sign:
        raise ValueError("keyUsage lacks keyCertSign (RFC 5280 §6.1.4 (n))")


def _ca_server_auth(
    policy: verification.Policy, cert: x509.Certificate, ext: x509.ExtendedKeyUsage | None
) -> None:
    if ext is None:
        return
    usages = set(ext)
    if not usages & {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE}:
        raise ValueError("extendedKeyUsage on a CA without serverAuth (OpenSSL's sslserver purpose)")


RFC5280_CA_POLICY = (
    verification.ExtensionPolicy.permit_all()
    .require_present(x509.BasicConstraints, verification.Criticality.AGNOSTIC, _ca_basic_constraints)
    .may_be_present(x509.KeyUsage, verification.Criticality.AGNOSTIC, _ca_key_usage)
    .may_be_present(x509.ExtendedKeyUsage, verification.Criticality.AGNOSTIC, _ca_server_auth)
)
WEBPKI_CA_POLICY = verification.ExtensionPolicy.webpki_defaults_ca().may_be_present(
    x509.ExtendedKeyUsage, verification.Criticality.AGNOSTIC, _ca_server_auth
)
EE_POLICY = verification.ExtensionPolicy.permit_all()


@dataclass(frozen=True, slots=True)
class PathValidation:
    """The outcome of validating one presented chain against a set of trust anchors.

    `valid`: a path from the leaf to an anchor passes RFC 5280 §6.1 at the given time.
    `unsupported`: cryptography refused an algorithm that RFC 5280 allows, so nothing is known.
    `chain`: the validated path, leaf first, anchor last (empty unless valid).
    `webpki_deviation`: for a valid chain, why the CA/Browser Forum profile would refuse it
    (None when the profile accepts it too).
    """

    valid: bool
    reason: str
    chain: tuple[x509.Certificate, ...] = ()
    webpki_deviation: str | None = None
    unsupported: bool = False


def _verify(
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    anchors: tuple[x509.Certificate, ...],
    when: dt.datetime,
    ca_policy: verification.ExtensionPolicy,
) -> tuple[tuple[x509.Certificate, ...], str]:
    builder = (
        verification.PolicyBuilder()
        .store(verification.Store(list(anchors)))
        .time(when)
        .extension_policies(ca_policy=ca_policy, ee_policy=EE_POLICY)
    )
    try:
        verified = builder.build_client_verifier().verify(leaf, intermediates)
    except verification.VerificationError as exc:
        return (), str(exc)
    return tuple(verified.chain), "valid"


# Results of `validate_path`, most recently used last (see `_dates_key`): a bulk scan judges the
# same few MX chains for thousands of domains, two verifications each (issue 20: warm CPU).
_MEMO: OrderedDict[tuple[object, ...], tuple[tuple[x509.Certificate, ...], PathValidation]] = OrderedDict()
_MEMO_SIZE = 256


@dataclass(frozen=True, slots=True)
class _Bounds:
    """Validity bounds of a set of certificates, sorted: `not_before`s and `not_after`s."""

    starts: tuple[dt.datetime, ...]
    ends: tuple[dt.datetime, ...]

    @classmethod
    def of(cls, certs: Iterable[x509.Certificate]) -> _Bounds:
        listed = list(certs)
        return cls(
            tuple(sorted(c.not_valid_before_utc for c in listed)),
            tuple(sorted(c.not_valid_after_utc for c in listed)),
        )

    def at(self, when: dt.datetime) -> tuple[int, int]:
        # How many have begun (not_before <= when) and how many have ended (not_after < when):
        # for a fixed set, these two counts say exactly which certificates are within their dates.
        return bisect.bisect_right(self.starts, when), bisect.bisect_left(self.ends, when)


_ANCHOR_BOUNDS: dict[int, tuple[tuple[x509.Certificate, ...], _Bounds]] = {}


def _anchor_bounds(anchors: tuple[x509.Certificate, ...]) -> _Bounds:
    # By identity: hashing a bundle of 150 certificates costs more than the lookup saves.
    known = _ANCHOR_BOUNDS.get(id(anchors))
    if known is None or known[0] is not anchors:
        if len(_ANCHOR_BOUNDS) >= 8:
            _ANCHOR_BOUNDS.clear()
        known = _ANCHOR_BOUNDS[id(anchors)] = (anchors, _Bounds.of(anchors))
    return known[1]


def _dates_key(
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    anchors: tuple[x509.Certificate, ...],
    when: dt.datetime,
) -> tuple[object, ...]:
    """What the outcome depends on: the certificates, and which of them are within their dates.

    Time enters RFC 5280 §6.1 only through the validity periods (§6.1.3 (a)(2)); two instants at
    which the same certificates are within their dates give the same result, so it is reused.
    """
    chain = (leaf, *intermediates)
    return (chain, id(anchors), _Bounds.of(chain).at(when), _anchor_bounds(anchors).at(when))


def validate_path(
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    anchors: tuple[x509.Certificate, ...],
    when: dt.datetime,
) -> PathValidation:
    """Whether `leaf` chains to one of `anchors` at `when` under RFC 5280 §6.1 (no name check).

    `intermediates` are the other certificates the server presented, in any order: cross-signed
    intermediates and extra certificates are fine, the verifier builds the path itself.
    Results are remembered per process (`_dates_key`).
    """
    if not anchors:
        return PathValidation(False, "no trust anchors")
    key = _dates_key(leaf, intermediates, anchors, when)
    known = _MEMO.get(key)
    if known is not None and known[0] is anchors:
        _MEMO.move_to_end(key)
        return known[1]
    result = _validate_path(leaf, intermediates, anchors, when)
    _MEMO[key] = (anchors, result)  # the anchors are kept, so that their id is not reused
    while len(_MEMO) > _MEMO_SIZE:
        _MEMO.popitem(last=False)
    return result


def _validate_path(
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    anchors: tuple[x509.Certificate, ...],
    when: dt.datetime,
) -> PathValidation:
    as_anchors = {_trust_anchor(a): a for a in anchors}
    chain, reason = _verify(leaf, intermediates, tuple(as_anchors), when, RFC5280_CA_POLICY)
    if not chain:
        unsupported = any(marker in reason for marker in _UNSUPPORTED_MARKERS)
        return PathValidation(False, reason, unsupported=unsupported)
    strict, strict_reason = _verify(leaf, intermediates, anchors, when, WEBPKI_CA_POLICY)
    chain = tuple(as_anchors.get(c, c) for c in chain)  # the anchor as given, not its stand-in
    return PathValidation(True, "valid", chain, None if strict else strict_reason)
