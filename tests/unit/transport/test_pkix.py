"""Item 4 of issue 12: chains judged as RFC 5280 §6.1 path validation (as OpenSSL-based MTAs do),
with a web-PKI profile deviation reported apart. Pure: chain shapes built here, no network.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from mecsa.certs import Tlsa, match_record, verify_chain
from mecsa.pkix import validate_path
from tests.unit.transport.chains import NOW, Node, Shape, ca, cross_sign, ed25519_key, leaf

MX = "mx.example.test"
NON_CRITICAL_BC = Shape(bc_critical=False)


def _tlsa(node: Node, selector: int, mtype: int) -> Tlsa:
    if selector == 0:
        data = node.cert.public_bytes(serialization.Encoding.DER)
    else:
        data = node.cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    digest = {0: data, 1: hashlib.sha256(data).digest(), 2: hashlib.sha512(data).digest()}[mtype]
    return Tlsa(2, selector, mtype, digest)


def test_a_well_formed_chain_is_valid_without_deviation() -> None:
    root = ca("Root", None)
    issuing = ca("Issuing", root)
    mx = leaf(issuing, MX)
    result = validate_path(mx.cert, [issuing.cert], (root.cert,), NOW)
    assert result.valid and result.webpki_deviation is None and not result.unsupported
    assert [c.subject for c in result.chain] == [mx.cert.subject, issuing.cert.subject, root.cert.subject]


def test_non_critical_basic_constraints_is_valid_with_a_webpki_deviation() -> None:
    root = ca("Root", None)
    issuing = ca("Issuing", root, NON_CRITICAL_BC)
    mx = leaf(issuing, MX)
    result = validate_path(mx.cert, [issuing.cert], (root.cert,), NOW)
    assert result.valid
    assert result.webpki_deviation is not None and "2.5.29.19" in result.webpki_deviation
    assert verify_chain(mx.cert, [issuing.cert], (root.cert,), NOW)[0]  # the x509 check's entry point


@pytest.mark.parametrize(("selector", "mtype"), [(0, 1), (1, 1), (1, 2)])
def test_dane_ta_at_depth_1_matches_an_issuer_with_non_critical_basic_constraints(
    selector: int, mtype: int
) -> None:
    root = ca("Root", None)
    issuing = ca("Issuing", root, NON_CRITICAL_BC)
    mx = leaf(issuing, MX)
    result = match_record(_tlsa(issuing, selector, mtype), [mx.cert, issuing.cert], (MX,), NOW)
    assert result.matched, result.note
    assert result.webpki_deviation is not None and "2.5.29.19" in result.webpki_deviation


@pytest.mark.parametrize(("selector", "mtype"), [(0, 1), (1, 1), (1, 2)])
def test_dane_ta_at_depth_2_matches_a_root_above_a_non_critical_intermediate(
    selector: int, mtype: int
) -> None:
    root = ca("Root", None)
    issuing = ca("Issuing", root, NON_CRITICAL_BC)
    mx = leaf(issuing, MX)
    chain = [mx.cert, issuing.cert, root.cert]
    result = match_record(_tlsa(root, selector, mtype), chain, (MX,), NOW)
    assert result.matched, result.note
    assert result.webpki_deviation is not None


def test_dane_ta_at_depth_2_with_two_non_critical_intermediates() -> None:
    root = ca("Root", None, NON_CRITICAL_BC)
    upper = ca("Upper", root, NON_CRITICAL_BC)
    lower = ca("Lower", upper, NON_CRITICAL_BC)
    mx = leaf(lower, MX)
    chain = [mx.cert, lower.cert, upper.cert]
    assert match_record(_tlsa(upper, 1, 1), chain, (MX,), NOW).matched
    assert validate_path(mx.cert, chain[1:], (root.cert,), NOW).valid


def test_a_cross_signed_intermediate_reaches_either_root() -> None:
    old_root, new_root = ca("Old Root", None), ca("New Root", None)
    issuing = ca("Issuing", new_root)
    cross = cross_sign(issuing, old_root, NON_CRITICAL_BC)
    mx = leaf(issuing, MX)
    presented = [issuing.cert, cross.cert]
    new = validate_path(mx.cert, presented, (new_root.cert,), NOW)
    assert new.valid and new.webpki_deviation is None and new.chain[-1] == new_root.cert
    old = validate_path(mx.cert, presented, (old_root.cert,), NOW)
    assert old.valid and old.chain[1] == cross.cert and old.webpki_deviation is not None
    # DANE-TA on the cross-signed copy's certificate (2 0 1) and on the shared key (2 1 1).
    chain = [mx.cert, *presented]
    assert match_record(_tlsa(cross, 0, 1), chain, (MX,), NOW).matched
    assert match_record(_tlsa(issuing, 1, 1), chain, (MX,), NOW).matched


def test_dane_ta_2_1_1_uses_the_cross_signed_copy_when_the_first_match_is_expired() -> None:
    root, other = ca("Root", None), ca("Other Root", None)
    issuing = ca("Issuing", root, Shape(not_after=NOW - dt.timedelta(days=1)))
    renewed = cross_sign(issuing, other)  # same key, still valid
    mx = leaf(issuing, MX)
    record = _tlsa(issuing, 1, 1)
    result = match_record(record, [mx.cert, issuing.cert, renewed.cert], (MX,), NOW)
    assert result.matched, result.note
    alone = match_record(record, [mx.cert, issuing.cert], (MX,), NOW)
    assert not alone.matched and "does not chain" in alone.note


def test_a_ca_with_server_auth_eku_only_is_valid() -> None:
    # The client verifier's web-PKI CA policy wanted clientAuth in a CA's EKU; TLS servers need serverAuth.
    root = ca("Root", None)
    issuing = ca("Issuing", root, Shape(eku=(ExtendedKeyUsageOID.SERVER_AUTH,)))
    mx = leaf(issuing, MX)
    result = validate_path(mx.cert, [issuing.cert], (root.cert,), NOW)
    assert result.valid and result.webpki_deviation is None


@pytest.mark.parametrize(
    ("shape", "why"),
    [
        (Shape(ca=False, bc_critical=False), "cA"),
        (Shape(basic_constraints=False, key_usage=False), "2.5.29.19"),
        (Shape(key_cert_sign=False), "keyCertSign"),
        (Shape(eku=(ExtendedKeyUsageOID.CLIENT_AUTH,)), "serverAuth"),
    ],
    ids=["ca-false", "no-basic-constraints-nor-key-usage", "no-keycertsign", "eku-client-only"],
)
def test_what_rfc5280_and_openssl_refuse_stays_invalid(shape: Shape, why: str) -> None:
    root = ca("Root", None)
    issuing = ca("Issuing", root, shape)
    mx = leaf(issuing, MX)
    result = validate_path(mx.cert, [issuing.cert], (root.cert,), NOW)
    assert not result.valid and not result.unsupported
    assert why in result.reason
    dane = match_record(_tlsa(issuing, 1, 1), [mx.cert, issuing.cert], (MX,), NOW)
    assert not dane.matched and "does not chain" in dane.note


def test_a_path_length_constraint_is_enforced() -> None:
    root = ca("Root", None)
    upper = ca("Upper", root, dataclasses.replace(NON_CRITICAL_BC, path_length=0))
    lower = ca("Lower", upper)
    mx = leaf(lower, MX)
    result = validate_path(mx.cert, [lower.cert, upper.cert], (root.cert,), NOW)
    assert not result.valid and "path length" in result.reason


def test_missing_key_usage_and_key_identifiers_are_only_a_deviation() -> None:
    root = ca("Root", None)
    issuing = ca("Issuing", root, Shape(key_usage=False, key_identifiers=False))
    mx = leaf(issuing, MX)
    result = validate_path(mx.cert, [issuing.cert], (root.cert,), NOW)
    assert result.valid and result.webpki_deviation is not None


def test_an_algorithm_the_verifier_refuses_is_unsupported_not_invalid() -> None:
    root = ca("Root", None)
    issuing = ca("Issuing", root, key=ed25519_key())  # RFC 8410: allowed by RFC 5280 and OpenSSL
    mx = leaf(issuing, MX)
    result = validate_path(mx.cert, [issuing.cert], (root.cert,), NOW)
    assert not result.valid and result.unsupported


def test_dane_ta_anchor_without_basic_constraints_but_with_key_cert_sign_matches() -> None:
    # RFC 5280 §6.1.1 (d): the anchor is a name and a key; OpenSSL takes it for a CA (X509_check_ca).
    root = ca("Root", None)
    issuing = ca("Issuing", root, Shape(basic_constraints=False))
    mx = leaf(issuing, MX)
    result = match_record(_tlsa(issuing, 1, 1), [mx.cert, issuing.cert], (MX,), NOW)
    assert result.matched, result.note
    assert result.webpki_deviation is not None
    # As an intermediate of the path it still needs the extension (§6.1.4 (k)).
    assert not validate_path(mx.cert, [issuing.cert], (root.cert,), NOW).valid


def test_a_root_anchor_without_basic_constraints_is_valid_and_reported_as_given() -> None:
    root = ca("Root", None, Shape(basic_constraints=False))
    issuing = ca("Issuing", root)
    mx = leaf(issuing, MX)
    result = validate_path(mx.cert, [issuing.cert], (root.cert,), NOW)
    assert result.valid and result.webpki_deviation is not None
    assert result.chain[-1] == root.cert  # the anchor itself, not the stand-in built for the verifier
    assert match_record(_tlsa(root, 0, 1), [mx.cert, issuing.cert, root.cert], (MX,), NOW).matched


def test_an_anchor_without_basic_constraints_or_key_cert_sign_is_refused() -> None:
    root = ca("Root", None)
    issuing = ca("Issuing", root, Shape(basic_constraints=False, key_usage=False))
    mx = leaf(issuing, MX)
    assert not match_record(_tlsa(issuing, 1, 1), [mx.cert, issuing.cert], (MX,), NOW).matched


def test_a_remembered_result_is_reused_only_while_the_same_certificates_are_within_their_dates() -> None:
    """validate_path remembers results per process (issue 20); an expiry in between is not missed."""
    root = ca("Root", None)
    issuing = ca("Issuing", root)
    mx = leaf(issuing, MX)
    anchors = (root.cert,)  # one trust store, as `load_anchors` gives it
    end = mx.cert.not_valid_after_utc
    before, same_window = end - dt.timedelta(days=2), end - dt.timedelta(days=1)
    after = end + dt.timedelta(seconds=1)
    first = validate_path(mx.cert, [issuing.cert], anchors, before)
    assert first.valid
    assert validate_path(mx.cert, [issuing.cert], anchors, same_window) is first  # reused
    expired = validate_path(mx.cert, [issuing.cert], anchors, after)
    assert not expired.valid
    at_the_end = validate_path(mx.cert, [issuing.cert], anchors, end)  # not_after is inclusive
    assert at_the_end.valid
    other_anchors = validate_path(mx.cert, [issuing.cert], (ca("Other root", None).cert,), before)
    assert not other_anchors.valid
