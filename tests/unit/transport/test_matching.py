"""Pure evaluators: RFC 6125 name matching and RFC 7672 TLSA matching, no network."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization

from mecsa.certs import Tlsa, match_record, name_matches
from tests.unit.transport.pki import Pki

MX = "mx.example.test"
NOW = dt.datetime.now(dt.UTC)


@pytest.mark.parametrize(
    ("pattern", "reference", "expected"),
    [
        ("mx.example.test", "mx.example.test", True),
        ("MX.Example.Test.", "mx.example.test", True),
        ("*.example.test", "mx.example.test", True),
        ("*.example.test", "a.mx.example.test", False),  # one label only
        ("*.example.test", "example.test", False),
        ("m*.example.test", "mx.example.test", False),  # never a partial-label wildcard
        ("*x.example.test", "mx.example.test", False),
        ("mx.*.test", "mx.example.test", False),  # left-most label only
        ("*.test", "example.test", False),  # too broad
        ("mx.example.test", "mx.example.test.evil", False),  # not a substring test
        ("example.test", "mx.example.test", False),
    ],
)
def test_rfc6125_name_matching(pattern: str, reference: str, expected: bool) -> None:
    assert name_matches(pattern, reference) is expected


def _data(der: bytes, spki: bytes, selector: int, mtype: int) -> bytes:
    data = der if selector == 0 else spki
    return {0: data, 1: hashlib.sha256(data).digest(), 2: hashlib.sha512(data).digest()}[mtype]


@pytest.mark.parametrize("selector", [0, 1])
@pytest.mark.parametrize("mtype", [0, 1, 2])
def test_dane_ee_matches_every_selector_and_matching_type(pki: Pki, selector: int, mtype: int) -> None:
    leaf = pki.leaf(MX)
    spki = leaf.cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = Tlsa(3, selector, mtype, _data(leaf.der, spki, selector, mtype))
    chain = [leaf.cert, pki.intermediate.cert]
    assert match_record(record, chain, (MX,), NOW).matched
    other = pki.leaf(MX)
    assert not match_record(record, [other.cert, pki.intermediate.cert], (MX,), NOW).matched


def test_dane_ee_ignores_name_and_dates(pki: Pki) -> None:
    leaf = pki.leaf("elsewhere.test", expired=True)
    record = Tlsa(3, 1, 1, bytes.fromhex(leaf.spki_sha256()))
    assert match_record(record, [leaf.cert], (MX,), NOW).matched


def test_dane_ta_needs_the_leaf_to_name_the_mx(pki: Pki) -> None:
    leaf = pki.leaf("elsewhere.test")
    record = Tlsa(2, 1, 1, bytes.fromhex(pki.intermediate.spki_sha256()))
    result = match_record(record, [leaf.cert, pki.intermediate.cert], (MX,), NOW)
    assert not result.matched and "names none of" in result.note
    assert match_record(record, [leaf.cert, pki.intermediate.cert], ("elsewhere.test",), NOW).matched


def test_dane_ta_needs_a_real_signature_path(pki: Pki) -> None:
    stranger = Pki.create("Other")
    leaf = stranger.leaf(MX)  # issued by another CA, but our intermediate is presented beside it
    record = Tlsa(2, 0, 1, hashlib.sha256(pki.intermediate.der).digest())
    result = match_record(record, [leaf.cert, pki.intermediate.cert], (MX,), NOW)
    assert not result.matched and "does not chain" in result.note


def test_dane_ta_checks_dates(pki: Pki) -> None:
    leaf = pki.leaf(MX, expired=True)
    record = Tlsa(2, 1, 1, bytes.fromhex(pki.intermediate.spki_sha256()))
    assert not match_record(record, [leaf.cert, pki.intermediate.cert], (MX,), NOW).matched


def test_unusable_records_say_why() -> None:
    assert Tlsa(3, 1, 1, b"").unusable_because is None
    assert "PKIX-TA" in (Tlsa(0, 1, 1, b"").unusable_because or "")
    assert "PKIX-EE" in (Tlsa(1, 0, 0, b"").unusable_because or "")
    assert "selector" in (Tlsa(3, 2, 1, b"").unusable_because or "")
    assert "matching type" in (Tlsa(3, 1, 3, b"").unusable_because or "")
