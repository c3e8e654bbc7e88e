"""Item 7 of issue 12, the pure part: OCSP responses and CRLs judged by `mecsa.revocation`."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509 import ocsp

from mecsa.revocation import (
    RevocationAnswer,
    RevocationState,
    _key_hash,
    combine,
    find_issuer,
    judge_crl,
    judge_ocsp,
    ocsp_request,
    revocation_points,
)
from tests.unit.transport.chains import NOW, ca
from tests.unit.transport.revocation_pki import RevokingCa

URL = "http://ocsp.example.test/"
CRL_URL = "http://crl.example.test/issuing.crl"


@pytest.fixture(scope="module")
def authority() -> RevokingCa:
    return RevokingCa()


def test_points_are_read_from_aia_and_crl_distribution_points(authority: RevokingCa) -> None:
    mx = authority.leaf("mx.example.test", ocsp_urls=(URL, "ldap://dir.example.test/"), crl_urls=(CRL_URL,))
    points = revocation_points(mx.cert)
    assert points.ocsp == (URL,) and points.crl == (CRL_URL,)
    assert points.not_fetched == ("ldap://dir.example.test/",)
    assert not revocation_points(authority.leaf("bare.example.test").cert).any


def test_the_ocsp_request_names_the_certificate(authority: RevokingCa) -> None:
    mx = authority.leaf("mx.example.test")
    request = ocsp.load_der_ocsp_request(ocsp_request(mx.cert, authority.issuing.cert))
    assert request.serial_number == mx.cert.serial_number
    assert isinstance(request.hash_algorithm, hashes.SHA1)
    assert request.issuer_key_hash == _key_hash(authority.issuing.cert, hashes.SHA1())
    # RFC 5280 §4.2.1.2 method 1 is the same SHA-1 of the key's BIT STRING.
    ski = x509.SubjectKeyIdentifier.from_public_key(authority.issuing.cert.public_key())
    assert request.issuer_key_hash == ski.digest


def test_find_issuer_needs_the_signature_not_only_the_name(authority: RevokingCa) -> None:
    mx = authority.leaf("mx.example.test")
    impostor = ca("Revocation Issuing CA", None)  # same name, another key
    assert find_issuer(mx.cert, (impostor.cert, authority.issuing.cert)) == authority.issuing.cert
    assert find_issuer(mx.cert, (impostor.cert,)) is None


@pytest.mark.parametrize(
    ("status", "state"),
    [
        (ocsp.OCSPCertStatus.GOOD, RevocationState.GOOD),
        (ocsp.OCSPCertStatus.REVOKED, RevocationState.REVOKED),
        (ocsp.OCSPCertStatus.UNKNOWN, RevocationState.UNKNOWN),
    ],
)
def test_ocsp_statuses_signed_by_the_issuer(
    authority: RevokingCa, status: ocsp.OCSPCertStatus, state: RevocationState
) -> None:
    mx = authority.leaf("mx.example.test")
    answer = judge_ocsp(URL, authority.ocsp_response(mx, status), mx.cert, authority.issuing.cert, NOW)
    assert answer.state is state, answer.detail
    if state is RevocationState.REVOKED:
        assert answer.reason == "keyCompromise" and answer.revoked_at is not None


def test_ocsp_by_a_delegated_responder(authority: RevokingCa) -> None:
    mx = authority.leaf("mx.example.test")
    good = authority.ocsp_response(
        mx, ocsp.OCSPCertStatus.GOOD, signer=authority.responder(), include_signer=True
    )
    assert judge_ocsp(URL, good, mx.cert, authority.issuing.cert, NOW).state is RevocationState.GOOD
    no_eku = authority.ocsp_response(
        mx, ocsp.OCSPCertStatus.GOOD, signer=authority.responder(ocsp_signing=False), include_signer=True
    )
    answer = judge_ocsp(URL, no_eku, mx.cert, authority.issuing.cert, NOW)
    assert answer.state is RevocationState.UNUSABLE and "OCSPSigning" in answer.detail


def test_ocsp_signed_by_a_stranger_does_not_count(authority: RevokingCa) -> None:
    mx = authority.leaf("mx.example.test")
    stranger = ca("Stranger", None)
    forged = authority.ocsp_response(mx, ocsp.OCSPCertStatus.GOOD, signer=stranger, include_signer=True)
    answer = judge_ocsp(URL, forged, mx.cert, authority.issuing.cert, NOW)
    assert answer.state is RevocationState.UNUSABLE and "not issued by" in answer.detail
    unnamed = authority.ocsp_response(mx, ocsp.OCSPCertStatus.GOOD, signer=stranger)
    answer = judge_ocsp(URL, unnamed, mx.cert, authority.issuing.cert, NOW)
    assert answer.state is RevocationState.UNUSABLE and "neither the issuer" in answer.detail


def test_ocsp_about_another_certificate_or_stale_or_garbage(authority: RevokingCa) -> None:
    mx, other = authority.leaf("mx.example.test"), authority.leaf("other.example.test")
    issuer = authority.issuing.cert
    about_other = authority.ocsp_response(mx, ocsp.OCSPCertStatus.GOOD, about=other)
    assert "another certificate" in judge_ocsp(URL, about_other, mx.cert, issuer, NOW).detail
    stale = authority.ocsp_response(mx, ocsp.OCSPCertStatus.GOOD, next_update=NOW - dt.timedelta(hours=1))
    assert "stale" in judge_ocsp(URL, stale, mx.cert, issuer, NOW).detail
    try_later = ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.TRY_LATER)
    from cryptography.hazmat.primitives import serialization

    answer = judge_ocsp(URL, try_later.public_bytes(serialization.Encoding.DER), mx.cert, issuer, NOW)
    assert answer.state is RevocationState.UNUSABLE and "try_later" in answer.detail
    assert judge_ocsp(URL, b"<html>", mx.cert, issuer, NOW).state is RevocationState.UNUSABLE


@pytest.mark.parametrize("pem", [False, True])
def test_crl_lists_or_does_not_list_the_serial(authority: RevokingCa, pem: bool) -> None:
    mx, other = authority.leaf("mx.example.test"), authority.leaf("other.example.test")
    crl = authority.crl((other,), pem=pem)
    issuer = authority.issuing.cert
    assert judge_crl(CRL_URL, crl, mx.cert, issuer, NOW).state is RevocationState.GOOD
    revoked = judge_crl(CRL_URL, crl, other.cert, issuer, NOW)
    assert revoked.state is RevocationState.REVOKED and revoked.reason == "superseded"


def test_crl_that_does_not_count(authority: RevokingCa) -> None:
    mx = authority.leaf("mx.example.test")
    issuer = authority.issuing.cert
    forged = judge_crl(CRL_URL, authority.crl(signer=ca("Stranger", None)), mx.cert, issuer, NOW)
    assert forged.state is RevocationState.UNUSABLE and "signature" in forged.detail
    stale = judge_crl(CRL_URL, authority.crl(next_update=NOW - dt.timedelta(hours=2)), mx.cert, issuer, NOW)
    assert stale.state is RevocationState.UNUSABLE and "stale" in stale.detail
    delta = judge_crl(CRL_URL, authority.crl((mx,), delta=True), mx.cert, issuer, NOW)
    assert delta.state is RevocationState.UNUSABLE and "delta" in delta.detail
    assert judge_crl(CRL_URL, b"\x30\x03junk", mx.cert, issuer, NOW).state is RevocationState.UNUSABLE


def test_revoked_wins_and_nothing_counted_is_unknown() -> None:
    good = RevocationAnswer("ocsp", URL, RevocationState.GOOD, "good")
    revoked = RevocationAnswer("crl", CRL_URL, RevocationState.REVOKED, "revoked")
    unusable = RevocationAnswer("ocsp", URL, RevocationState.UNUSABLE, "connection refused")
    assert combine((good, revoked)).state is RevocationState.REVOKED
    assert combine((unusable, good)).state is RevocationState.GOOD
    assert combine((unusable,)).state is RevocationState.UNKNOWN
    assert combine(()).state is RevocationState.UNKNOWN


def _key(kind: str) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey:
    if kind.startswith("rsa-"):
        return rsa.generate_private_key(65537, int(kind[4:]))
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(ec.SECP384R1())


@pytest.mark.parametrize("kind", ["rsa-2048", "rsa-4096", "ed25519", "p384"])
def test_the_key_hash_is_that_of_the_bit_string_for_every_key_type(kind: str) -> None:
    key = _key(kind)
    root = ca("Root", None)
    builder = (
        x509.CertificateBuilder()
        .subject_name(root.cert.subject)
        .issuer_name(root.cert.subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=1))
    )
    assert isinstance(root.key, ec.EllipticCurvePrivateKey)
    cert = builder.sign(root.key, hashes.SHA256())
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    assert _key_hash(cert, hashes.SHA1()) == ski.digest


def test_ocsp_and_crl_signed_with_an_rsa_issuer_key() -> None:
    authority = RevokingCa()
    authority.issuing = ca("RSA Issuing CA", authority.root, key=rsa.generate_private_key(65537, 2048))  # type: ignore[arg-type]
    mx = authority.leaf("mx.example.test")
    issuer = authority.issuing.cert
    good = authority.ocsp_response(mx, ocsp.OCSPCertStatus.GOOD)
    assert judge_ocsp(URL, good, mx.cert, issuer, NOW).state is RevocationState.GOOD
    assert judge_crl(CRL_URL, authority.crl((mx,)), mx.cert, issuer, NOW).state is RevocationState.REVOKED


def test_mangled_responses_and_crls_never_raise(authority: RevokingCa) -> None:
    import random

    mx = authority.leaf("mx.example.test")
    issuer = authority.issuing.cert
    samples = {
        "ocsp": authority.ocsp_response(mx, ocsp.OCSPCertStatus.REVOKED),
        "crl": authority.crl((mx,)),
    }
    rng = random.Random(12)
    for kind, good in samples.items():
        judge = judge_ocsp if kind == "ocsp" else judge_crl
        for _ in range(300):
            data = bytearray(good)
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            cut = bytes(data[: rng.randint(1, len(data))]) if rng.random() < 0.3 else bytes(data)
            answer = judge(URL, cut, mx.cert, issuer, NOW)
            assert answer.state in RevocationState
            if answer.state is RevocationState.REVOKED:  # only a signed statement may say so
                assert kind == "crl" or "revoked" in answer.detail
