"""DKIM test keys, generated once per test session (RSA generation is slow-ish), and zone helpers."""

from __future__ import annotations

import base64
import functools

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa


@functools.cache
def _rsa(bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def rsa_p(bits: int, *, pkcs1: bool = False) -> str:
    """The base64 p= value of an RSA public key of `bits` bits (SubjectPublicKeyInfo or bare PKCS#1)."""
    fmt = serialization.PublicFormat.PKCS1 if pkcs1 else serialization.PublicFormat.SubjectPublicKeyInfo
    der = _rsa(bits).public_key().public_bytes(serialization.Encoding.DER, fmt)
    return base64.b64encode(der).decode()


@functools.cache
def ed25519_p(*, spki: bool = False) -> str:
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    if spki:
        der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(der).decode()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def zone_txt(text: str) -> str:
    """TXT rdata in zone-file syntax, split into 255-octet strings as a 2048-bit key must be."""
    return " ".join(f'"{text[i : i + 255]}"' for i in range(0, len(text), 255))


def weak_rsa_p(bits: int) -> str:
    """A p= value for an RSA public key smaller than `cryptography` will generate.

    Only the public half is needed, so any odd modulus of the right size will do.
    """
    modulus = (1 << (bits - 1)) | 0xB5 | 1
    public = rsa.RSAPublicNumbers(65537, modulus).public_key()
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()
