"""Test messages signed by the tests themselves with dkimpy, and the zones that hold their keys."""

from __future__ import annotations

import base64
import functools

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from tests.unit.dkim_keys import zone_txt

HEAD = "@ 300 IN SOA ns hostmaster 1 300 300 300 300\n@ IN NS ns\nns IN A 127.0.0.53\n"


@functools.cache
def rsa_key(name: str) -> rsa.RSAPrivateKey:
    """One 2048-bit RSA key per name, made once per test session."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@functools.cache
def ed_key(name: str) -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def rsa_record(name: str) -> str:
    der = (
        rsa_key(name)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


def ed_record(name: str) -> str:
    raw = ed_key(name).public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"


def key_line(selector: str, record: str) -> str:
    return f"{selector}._domainkey IN TXT {zone_txt(record)}\n"


def message(
    from_addr: str = "alice@sender.test",
    to: str = "abcdefgh12345678@receiver.test",
    body: str = "Hello, this is a test.\r\n",
    extra: str = "",
) -> bytes:
    text = (
        f"From: Alice <{from_addr}>\r\nTo: {to}\r\nSubject: mail mode test\r\n"
        f"Message-ID: <t1@sender.test>\r\nDate: Mon, 01 Jan 2024 00:00:00 +0000\r\n{extra}\r\n{body}"
    )
    return text.encode()


def sign_rsa(msg: bytes, selector: str, domain: str, key_name: str) -> bytes:
    pem = rsa_key(key_name).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    header: bytes = dkim.sign(msg, selector.encode(), domain.encode(), pem)
    return header + msg


def sign_ed25519(msg: bytes, selector: str, domain: str, key_name: str) -> bytes:
    seed = ed_key(key_name).private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    header: bytes = dkim.sign(
        msg, selector.encode(), domain.encode(), base64.b64encode(seed), signature_algorithm=b"ed25519-sha256"
    )
    return header + msg
