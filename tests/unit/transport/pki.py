"""Certificates made by the tests: a test CA with an intermediate, leaves, and self-signed ones.

Keys are EC P-256 (fast to generate); one RSA key is used where a test needs RSA.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Key = ec.EllipticCurvePrivateKey


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Issued:
    """A certificate with its key."""

    cert: x509.Certificate
    key: Key

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def spki_sha256(self) -> str:
        spki = self.cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return hashlib.sha256(spki).hexdigest()

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def _build(
    subject: str,
    key: Key,
    issuer: Issued | None,
    *,
    ca: bool,
    names: tuple[str, ...] = (),
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> Issued:
    signer_key = issuer.key if issuer else key
    issuer_name = issuer.cert.subject if issuer else _name(subject)
    start = not_before or _now() - dt.timedelta(days=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(not_after or start + dt.timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
    return Issued(builder.sign(signer_key, hashes.SHA256()), key)


def new_key() -> Key:
    return ec.generate_private_key(ec.SECP256R1())


@dataclass(frozen=True)
class Pki:
    """A root, an intermediate under it, and a helper to issue leaves from the intermediate."""

    root: Issued
    intermediate: Issued

    @classmethod
    def create(cls, label: str = "Test") -> Pki:
        # CAs live long and started long ago: an expired leaf was issued while they were valid.
        start, end = _now() - dt.timedelta(days=3650), _now() + dt.timedelta(days=3650)
        root = _build(f"{label} Root CA", new_key(), None, ca=True, not_before=start, not_after=end)
        issuing = _build(f"{label} Issuing CA", new_key(), root, ca=True, not_before=start, not_after=end)
        return cls(root, issuing)

    def leaf(
        self, *names: str, expired: bool = False, key: Key | None = None, subject: str | None = None
    ) -> Issued:
        """A leaf for `names` (its SANs); its CN is `subject`, else the first name."""
        cn = subject or names[0]
        if expired:
            start = _now() - dt.timedelta(days=100)
            return _build(
                cn,
                key or new_key(),
                self.intermediate,
                ca=False,
                names=names,
                not_before=start,
                not_after=start + dt.timedelta(days=90),
            )
        return _build(cn, key or new_key(), self.intermediate, ca=False, names=names)

    def chain_pem(self, leaf: Issued) -> bytes:
        """The leaf and the intermediate, as a server presents them."""
        return leaf.pem + self.intermediate.pem

    def write_root(self, directory: Path) -> Path:
        path = directory / "root.pem"
        path.write_bytes(self.root.pem)
        return path


def self_signed(*names: str) -> Issued:
    """A self-signed leaf (not a CA): what many mail servers present out of the box."""
    return _build(names[0], new_key(), None, ca=False, names=names)
