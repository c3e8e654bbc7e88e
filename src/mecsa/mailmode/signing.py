"""DKIM signing of the mail the receiver sends (the probe, the auto-reply), as the test domain.

The probe must be accepted anywhere: DKIM-signed with d= the test domain, which is also its From
domain (DMARC alignment, RFC 7489 §3.1.1), and sent from an address inside the test domain's SPF
(`mecsa mailmode zone --probe-ipv4`). The key record is printed by `mecsa mailmode zone --dkim-key`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

# RFC 6376 §5.4.1: From is required; the others are what a reader sees and what threads a reply
SIGNED_HEADERS = (
    b"from",
    b"to",
    b"cc",
    b"reply-to",
    b"subject",
    b"date",
    b"message-id",
    b"in-reply-to",
    b"references",
    b"auto-submitted",
)


class SignerError(ValueError):
    """A key that cannot sign (unreadable, or neither RSA nor Ed25519)."""


@dataclass(frozen=True, slots=True)
class DkimSigner:
    """A private key, its selector and the signing domain (d=)."""

    domain: str
    selector: str
    key_pem: bytes

    @classmethod
    def from_file(cls, domain: str, selector: str, path: str | Path) -> DkimSigner:
        pem = Path(path).read_bytes()
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise SignerError(f"{path}: not an unencrypted PEM private key ({exc})") from exc
        if not isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
            raise SignerError(f"{path}: DKIM keys are RSA or Ed25519, not {type(key).__name__}")
        return cls(domain, selector, pem)

    def public_key(self) -> rsa.RSAPublicKey | ed25519.Ed25519PublicKey:
        key = serialization.load_pem_private_key(self.key_pem, password=None)
        assert isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey)
        return key.public_key()

    def sign(self, message: bytes) -> bytes:
        """`message` with a DKIM-Signature header field prepended (relaxed/relaxed)."""
        import base64

        import dkim

        key = serialization.load_pem_private_key(self.key_pem, password=None)
        present = {
            line.split(b":", 1)[0].strip().lower()
            for line in message.split(b"\r\n\r\n", 1)[0].splitlines()
            if b":" in line
        }
        headers = [h for h in SIGNED_HEADERS if h in present]
        if isinstance(key, ed25519.Ed25519PrivateKey):
            seed = key.private_bytes(
                serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
            )
            header: bytes = dkim.sign(
                message,
                self.selector.encode(),
                self.domain.encode(),
                base64.b64encode(seed),
                include_headers=headers,
                signature_algorithm=b"ed25519-sha256",
                canonicalize=(b"relaxed", b"relaxed"),
            )
        else:
            header = dkim.sign(
                message,
                self.selector.encode(),
                self.domain.encode(),
                self.key_pem,
                include_headers=headers,
                canonicalize=(b"relaxed", b"relaxed"),
            )
        return header + message
