"""Fixed inputs for the hardening tests: stored keys and certificate, a fixed selector, goldens."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID

from mecsa.harden.opendkim import DkimPrivateKey, load_key
from mecsa.harden.settings import HardenSettings, settings_from_mapping

FIXTURES = Path(__file__).parent / "fixtures"
GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("MECSA_UPDATE_GOLDEN") == "1"  # set to rewrite the golden files after a review


def base_settings(**changes: object) -> dict[str, object]:
    raw: dict[str, object] = {
        "domain": "example.test",
        "mx_host": "mx.example.test",
        "ipv4": ["127.0.0.25"],
        "ipv6": ["2001:db8::25"],
        "cert": str(FIXTURES / "tls-cert.pem"),
        "key": str(FIXTURES / "tls-key.pem"),
        "selector": "s202611",  # explicit: goldens must not depend on the date
        "postmaster": "root",  # a user every system has: apply checks that it exists
        "mynetworks": ["192.0.2.0/24", "2001:db8:1::/48"],
        "dkim_ed25519": True,
    }
    raw.update(changes)
    return raw


def make_settings(**changes: object) -> HardenSettings:
    return settings_from_mapping(base_settings(**changes))


@pytest.fixture
def settings() -> HardenSettings:
    return make_settings()


def fixed_dkim_keys(domain: str = "example.test") -> dict[tuple[str, str], DkimPrivateKey]:
    return {
        (domain, "s202611"): load_key((FIXTURES / "dkim-rsa.pem").read_bytes()),
        (domain, "s202611-ed25519"): load_key((FIXTURES / "dkim-ed25519.pem").read_bytes()),
    }


def check_golden(name: str, actual: str | bytes) -> None:
    """Compare with tests/unit/harden/golden/<name>; MECSA_UPDATE_GOLDEN=1 rewrites it instead."""
    path = GOLDEN / name
    data = actual.encode("utf-8") if isinstance(actual, str) else actual
    # the fixture paths depend on where the checkout is
    data = data.replace(str(FIXTURES).encode(), b"@FIXTURES@")
    if UPDATE or not path.exists():
        path.write_bytes(data)
        if not UPDATE:
            pytest.fail(f"golden file {name} was missing and has been written: review it and rerun")
    assert data.decode("utf-8") == path.read_bytes().decode("utf-8"), f"differs from golden/{name}"


def write_tls_pair(
    directory: Path,
    host: str = "mx.example.test",
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    key: ec.EllipticCurvePrivateKey | None = None,
    name: str = "tls",
) -> tuple[Path, Path]:
    """A self-signed certificate for `host` and its key, written as `<name>-cert.pem` / `<name>-key.pem`."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - dt.timedelta(days=1))
        .not_valid_after(not_after or now + dt.timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{name}-cert.pem", directory / f"{name}-key.pem"
    cert_path.write_bytes(cert.public_bytes(Encoding.PEM))
    key_path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return cert_path, key_path
