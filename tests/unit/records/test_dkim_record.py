"""The DKIM key record parser: RFC 6376 / RFC 8463 examples, key decoding and malformed records."""

from __future__ import annotations

import pytest

from mecsa.records.dkim import KeyFormat, looks_like_dkim_key, parse_dkim_key
from mecsa.records.taglist import IssueSeverity
from tests.unit.dkim_keys import ed25519_p, rsa_p

# RFC 6376 Appendix C (brisbane._domainkey.example.com), a 1024-bit RSA key
RFC6376_KEY = (
    "v=DKIM1; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDwIRP/UC3SBsEmGqZ9ZJW3/DkMoGeLnQg1fWn7/zYtIxN2SnFCjxO"
    "CKG9v3b4jYfcTNh5ijSsq631uBItLa7od+v/RtdC2UzJ1lWT947qR+Rcac2gbto/NMqJ0fzfVjH4OuKhitdY9tf6mcwGjaNBcWToIMmPSPDdQPNUYckcQ2QIDAQAB"
)
# RFC 8463 Appendix A.2
RFC8463_KEY = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="


def _codes(text: str) -> list[tuple[IssueSeverity, str]]:
    return [(i.severity, i.code) for i in parse_dkim_key(text).issues]


def test_rfc6376_example_key_is_1024_bit_rsa_spki() -> None:
    parsed = parse_dkim_key(RFC6376_KEY)
    record = parsed.record
    assert parsed.issues == () and record is not None
    assert (record.version, record.key_type, record.key_bits, record.key_format) == (
        "DKIM1",
        "rsa",
        1024,
        KeyFormat.SPKI,
    )
    assert record.hash_algorithms is None and record.sha256_allowed
    assert record.service_types == ("*",) and record.for_email
    assert not record.revoked and not record.testing


def test_rfc8463_example_ed25519_key() -> None:
    parsed = parse_dkim_key(RFC8463_KEY)
    assert parsed.issues == () and parsed.record is not None
    assert (parsed.record.key_type, parsed.record.key_bits, parsed.record.key_format) == (
        "ed25519",
        256,
        KeyFormat.RAW,
    )
    assert len(parsed.record.public_key) == 32


def test_generated_2048_bit_key_with_whitespace_in_p() -> None:
    key = rsa_p(2048)
    folded = " ".join(key[i : i + 60] for i in range(0, len(key), 60))
    parsed = parse_dkim_key(f"v=DKIM1; k=rsa; p={folded}")
    assert parsed.issues == () and parsed.record is not None and parsed.record.key_bits == 2048


def test_bare_pkcs1_key_is_accepted_with_a_warning() -> None:
    parsed = parse_dkim_key(f"v=DKIM1; p={rsa_p(1024, pkcs1=True)}")
    assert parsed.record is not None
    assert parsed.record.key_format is KeyFormat.PKCS1 and parsed.record.key_bits == 1024
    assert [i.code for i in parsed.warnings] == ["p.pkcs1"]


def test_v_is_optional() -> None:
    parsed = parse_dkim_key(f"k=rsa; p={rsa_p(1024)}")
    assert parsed.record is not None and parsed.record.version is None


def test_empty_p_means_revoked() -> None:
    parsed = parse_dkim_key("v=DKIM1; p=")
    assert parsed.issues == () and parsed.record is not None
    assert parsed.record.revoked and parsed.record.key_bits is None


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("v=DKIM2; p=", "v.bad"),
        ("p=; v=DKIM1", "v.not_first"),
        ("v=DKIM1; k=rsa", "p.missing"),
        ("v=DKIM1; k=dsa; p=", "k.unknown"),
        ("v=DKIM1; p=not*base64", "p.base64"),
        ("v=DKIM1; p=AAAA", "p.undecodable"),
        ("v=DKIM1; p=; p=", "taglist.duplicate"),
        ("v=DKIM1; p", "taglist.no_equals"),
    ],
)
def test_unusable_records_are_errors(text: str, code: str) -> None:
    parsed = parse_dkim_key(text)
    assert parsed.record is None
    assert code in [i.code for i in parsed.errors]


def test_errors_are_located() -> None:
    text = "v=DKIM1; h=sha256; p=; h=sha1"
    (error,) = parse_dkim_key(text).errors
    assert (error.code, error.position, error.tag) == ("taglist.duplicate", text.rindex("h=sha1"), "h")


def test_ed25519_key_in_spki_form_is_rejected() -> None:
    parsed = parse_dkim_key(f"v=DKIM1; k=ed25519; p={ed25519_p(spki=True)}")
    assert parsed.record is None and [i.code for i in parsed.errors] == ["p.ed25519_size"]


def test_rsa_type_with_an_ed25519_spki_key_is_a_mismatch() -> None:
    parsed = parse_dkim_key(f"v=DKIM1; p={ed25519_p(spki=True)}")
    assert [i.code for i in parsed.errors] == ["p.type_mismatch"]


def test_h_rsa_sha256_is_the_guide_mistake() -> None:
    parsed = parse_dkim_key(f"v=DKIM1; h=rsa-sha256; k=rsa; p={rsa_p(2048)}")
    assert parsed.record is not None
    assert parsed.record.hash_algorithms == ("rsa-sha256",) and not parsed.record.sha256_allowed
    (issue,) = parsed.warnings
    assert issue.code == "h.signature_algorithm" and "reject every signature" in issue.message


@pytest.mark.parametrize(
    ("h", "allowed", "codes"),
    [
        ("sha256", True, []),
        ("sha1:sha256", True, []),
        ("sha256:rsa-sha256", True, ["h.unknown"]),
        ("sha1", False, ["h.no_sha256"]),
        ("md5", False, ["h.no_sha256"]),
    ],
)
def test_h_values(h: str, allowed: bool, codes: list[str]) -> None:
    parsed = parse_dkim_key(f"v=DKIM1; h={h}; p={rsa_p(1024)}")
    assert parsed.record is not None and parsed.record.sha256_allowed is allowed
    assert [i.code for i in parsed.warnings] == codes


def test_flags_services_and_notes() -> None:
    record = parse_dkim_key(f"v=DKIM1; t=y:s; s=email; n=rotated 2024; p={rsa_p(1024)}").record
    assert record is not None
    assert record.testing and record.strict_subdomains and record.for_email
    assert record.notes == "rotated 2024"
    other = parse_dkim_key(f"v=DKIM1; s=tlsrpt; p={rsa_p(1024)}").record
    assert other is not None and not other.for_email


def test_tags_are_case_sensitive() -> None:
    assert (IssueSeverity.WARNING, "tag.case") in _codes(f"v=DKIM1; K=rsa; p={rsa_p(1024)}")
    assert (IssueSeverity.ERROR, "p.missing") in _codes(f"v=DKIM1; P={rsa_p(1024)}")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v=DKIM1; p=", True),
        ("k=rsa; p=abc", True),
        ("v=spf1 -all", False),
        ("v=DKIM2; p=abc", False),
        ("google-site-verification=xyz", False),
    ],
)
def test_looks_like_dkim_key(text: str, expected: bool) -> None:
    assert looks_like_dkim_key(text) is expected
