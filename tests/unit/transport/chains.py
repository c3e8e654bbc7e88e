"""Chain shapes for the path-validation tests, built with `cryptography`: CA certificates whose
basicConstraints, keyUsage and extendedKeyUsage are chosen by the test, and cross-signed copies.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.unit.transport.pki import Issued, Key, new_key

NOW = dt.datetime.now(dt.UTC)
SigningKey = Key | ed25519.Ed25519PrivateKey


@dataclass(frozen=True)
class Shape:
    """How one CA certificate deviates from a well-formed one."""

    ca: bool = True
    basic_constraints: bool = True
    bc_critical: bool = True
    path_length: int | None = None
    key_usage: bool = True
    key_cert_sign: bool = True
    key_identifiers: bool = True
    eku: tuple[x509.ObjectIdentifier, ...] = ()
    not_after: dt.datetime = field(default_factory=lambda: NOW + dt.timedelta(days=3650))


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass(frozen=True)
class Node:
    """A certificate with the key that signs below it (which may be Ed25519)."""

    cert: x509.Certificate
    key: SigningKey

    @property
    def issued(self) -> Issued:
        assert isinstance(self.key, ec.EllipticCurvePrivateKey)
        return Issued(self.cert, self.key)


def _sign(builder: x509.CertificateBuilder, key: SigningKey) -> x509.Certificate:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return builder.sign(key, None)
    return builder.sign(key, hashes.SHA256())


def ca(subject: str, issuer: Node | None, shape: Shape = Shape(), *, key: SigningKey | None = None) -> Node:
    """A CA certificate for `subject` (self-signed when `issuer` is None) of the given shape."""
    key = key or new_key()
    signer = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.cert.subject if issuer else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=30))
        .not_valid_after(shape.not_after)
    )
    if shape.basic_constraints:
        constraints = x509.BasicConstraints(ca=shape.ca, path_length=shape.path_length if shape.ca else None)
        builder = builder.add_extension(constraints, critical=shape.bc_critical)
    if shape.key_identifiers:
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        builder = builder.add_extension(ski, critical=False)
        if issuer is not None:
            aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key())
            builder = builder.add_extension(aki, critical=False)
    if shape.key_usage:
        usage = x509.KeyUsage(
            digital_signature=not shape.key_cert_sign,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=shape.key_cert_sign,
            crl_sign=shape.key_cert_sign,
            encipher_only=False,
            decipher_only=False,
        )
        builder = builder.add_extension(usage, critical=True)
    if shape.eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(shape.eku)), critical=False)
    return Node(_sign(builder, signer), key)


def cross_sign(node: Node, other_issuer: Node, shape: Shape = Shape()) -> Node:
    """The same subject and key as `node`, issued by `other_issuer` (a cross-signed intermediate)."""
    return ca(node.cert.subject.rfc4514_string()[3:], other_issuer, shape, key=node.key)


def leaf(issuer: Node, *names: str) -> Node:
    """A TLS server certificate for `names`, issued by `issuer`."""
    key = new_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=60))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    )
    return Node(_sign(builder, issuer.key), key)


def ed25519_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()
