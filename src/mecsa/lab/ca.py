"""The lab's certificate authority: one CA, and the MX and MTA-STS server certificates it issues.

Certificates carry Subject/Authority Key Identifiers because strict verifiers (cryptography's)
reject a leaf without an AKI. Deviation scenarios ask for expired, wrong-name or self-signed ones,
or for one issued by the lenient intermediate: a CA under the lab CA whose basicConstraints is not
marked critical (valid under RFC 5280 path validation, which OpenSSL and Postfix follow; not under
the web-PKI profile). A leaf may name an OCSP responder and a CRL (`RevocationUrls`); the CA signs
the CRLs and the OCSP responses (`openssl ocsp` with its key, see `mecsa.lab.revocation`).
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
class RevocationUrls:
    """Where a leaf says its revocation status is: AIA OCSP responders and CRL distribution points."""

    ocsp: tuple[str, ...] = ()
    crl: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class IssuedCert:
    """A server certificate: key and chain in PEM, the DANE-EE (3 1 1) digest of its key, the
    DANE-TA (2 1 1) digest of its issuer's key, and the leaf itself (for revocation entries)."""

    key_pem: bytes
    chain_pem: bytes
    spki_sha256: str
    issuer_spki_sha256: str = ""
    certificate: x509.Certificate | None = None

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
            # One CA may sit below: the lenient intermediate of the lenient-ca scenarios.
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .add_extension(ski, critical=False)
            .sign(self._key, hashes.SHA256())
        )

        self._lenient: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None

    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        """The CA's private key (PKCS#8 PEM), for the lab's OCSP responder."""
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def lenient_intermediate(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """An intermediate CA under the lab CA whose basicConstraints is not marked critical."""
        if self._lenient is None:
            key = ec.generate_private_key(ec.SECP256R1())
            now = dt.datetime.now(dt.UTC)
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mecsa lab lenient intermediate")])
            cert = (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(self.certificate.subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - _DAY)
                .not_valid_after(now + 30 * _DAY)
                # RFC 5280 §4.2.1.9 asks a CA to mark it critical; §6.1.4 (k) does not check that.
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=False)
                .add_extension(_key_usage(ca=True), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
                )
                .sign(self._key, hashes.SHA256())
            )
            self._lenient = (cert, key)
        return self._lenient

    def crl(self, revoked: list[x509.Certificate], *, days: int = 7) -> bytes:
        """A DER CRL of the lab CA listing `revoked` (reason keyCompromise)."""
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(now - dt.timedelta(minutes=5))
            .next_update(now + days * _DAY)
        )
        for cert in revoked:
            entry = (
                x509.RevokedCertificateBuilder()
                .serial_number(cert.serial_number)
                .revocation_date(now - _DAY)
                .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
                .build()
            )
            builder = builder.add_revoked_certificate(entry)
        return builder.sign(self._key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def issue(
        self, names: list[str], kind: str = "valid", revocation: RevocationUrls = RevocationUrls()
    ) -> IssuedCert:
        """A server certificate for `names` (DNS SANs).

        `kind` is valid | expired | wrong-name | self-signed | lenient-ca (issued by the lenient
        intermediate, which the chain then carries); `revocation` adds AIA OCSP and CRL URLs.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        if kind == "wrong-name":
            names = [f"wrong-name.{names[0]}.invalid"]
        before, after = (
            (now - 30 * _DAY, now - 2 * _DAY) if kind == "expired" else (now - _DAY, now + 30 * _DAY)
        )
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
        self_signed = kind == "self-signed"
        issuer_cert, issuer_key = (
            self.lenient_intermediate() if kind == "lenient-ca" else (self.certificate, self._key)
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject if self_signed else issuer_cert.subject)
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
        builder = _with_revocation(builder, revocation)
        if self_signed:
            leaf = builder.sign(key, hashes.SHA256())
            chain = leaf.public_bytes(serialization.Encoding.PEM)
            issuer_spki = spki_sha256(leaf)
        else:
            aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key())
            leaf = builder.add_extension(aki, critical=False).sign(issuer_key, hashes.SHA256())
            chain = leaf.public_bytes(serialization.Encoding.PEM) + issuer_cert.public_bytes(
                serialization.Encoding.PEM
            )
            issuer_spki = spki_sha256(issuer_cert)
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return IssuedCert(key_pem, chain, spki_sha256(leaf), issuer_spki, leaf)


def _with_revocation(builder: x509.CertificateBuilder, urls: RevocationUrls) -> x509.CertificateBuilder:
    if urls.ocsp:
        access = [
            x509.AccessDescription(
                x509.oid.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(u)
            )
            for u in urls.ocsp
        ]
        builder = builder.add_extension(x509.AuthorityInformationAccess(access), critical=False)
    if urls.crl:
        points = [
            x509.DistributionPoint([x509.UniformResourceIdentifier(u)], None, None, None) for u in urls.crl
        ]
        builder = builder.add_extension(x509.CRLDistributionPoints(points), critical=False)
    return builder


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
