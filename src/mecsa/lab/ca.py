"""The lab's certificate authority: one CA, and the MX and MTA-STS server certificates it issues.

Certificates carry Subject/Authority Key Identifiers because strict verifiers (cryptography's)
reject a leaf without an AKI. Deviation scenarios ask for expired, wrong-name or self-signed ones.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mecsa.harden.records import spki_sha256

_DAY = dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class IssuedCert:
    """A server certificate: key and chain in PEM, and the DANE-EE (3 1 1) digest of its key."""

    key_pem: bytes
    chain_pem: bytes
    spki_sha256: str

    def write(self, directory: Path) -> tuple[Path, Path]:
        """Write `key.pem` (mode 0600) and `chain.pem` (leaf first); return their paths."""
        directory.mkdir(parents=True, exist_ok=True)
        key, chain = directory / "key.pem", directory / "chain.pem"
        key.write_bytes(self.key_pem)
        key.chmod(0o600)
        chain.write_bytes(self.chain_pem)
        return key, chain


class LabCa:
    """A throw-away CA valid for a few days, created for one lab run."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mecsa lab CA")])
        now = dt.datetime.now(dt.UTC)
        ski = x509.SubjectKeyIdentifier.from_public_key(self._key.public_key())
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _DAY)
            .not_valid_after(now + 30 * _DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .add_extension(ski, critical=False)
            .sign(self._key, hashes.SHA256())
        )

    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue(self, names: list[str], kind: str = "valid") -> IssuedCert:
        """A server certificate for `names` (DNS SANs); `kind` is valid|expired|wrong-name|self-signed."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        if kind == "wrong-name":
            names = [f"wrong-name.{names[0]}.invalid"]
        before, after = (
            (now - 30 * _DAY, now - 2 * _DAY) if kind == "expired" else (now - _DAY, now + 30 * _DAY)
        )
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
        self_signed = kind == "self-signed"
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject if self_signed else self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(before)
            .not_valid_after(after)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        )
        if self_signed:
            leaf = builder.sign(key, hashes.SHA256())
            chain = leaf.public_bytes(serialization.Encoding.PEM)
        else:
            aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key())
            leaf = builder.add_extension(aki, critical=False).sign(self._key, hashes.SHA256())
            chain = leaf.public_bytes(serialization.Encoding.PEM) + self.pem()
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return IssuedCert(key_pem, chain, spki_sha256(leaf))


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )
