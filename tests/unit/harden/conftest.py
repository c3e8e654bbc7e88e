"""Fixed inputs for the hardening tests: stored keys and certificate, a fixed selector, goldens."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
        "postmaster": "admin",
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


def fixed_dkim_keys() -> dict[str, DkimPrivateKey]:
    return {
        "s202611": load_key((FIXTURES / "dkim-rsa.pem").read_bytes()),
        "s202611-ed25519": load_key((FIXTURES / "dkim-ed25519.pem").read_bytes()),
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
