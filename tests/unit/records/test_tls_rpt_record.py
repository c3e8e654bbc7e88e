"""The TLS-RPT record parser (RFC 8460 §3): RFC examples, valid variants and located errors."""

from __future__ import annotations

import pytest

from mecsa.records.tls_rpt import TlsRptUri, looks_like_tls_rpt, parse_tls_rpt, parse_uri


def test_rfc_mailto_example() -> None:
    record = parse_tls_rpt("v=TLSRPTv1;rua=mailto:reports@example.com")
    assert record.valid
    assert record.rua == (TlsRptUri("mailto:reports@example.com", "mailto"),)


def test_rfc_https_example_with_spaces_after_delimiter() -> None:
    record = parse_tls_rpt("v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt")
    assert record.valid
    assert record.rua == (TlsRptUri("https://reporting.example.com/v1/tlsrpt", "https"),)


def test_several_uris_trailing_delimiter_and_extension() -> None:
    record = parse_tls_rpt("v=TLSRPTv1 ; rua=mailto:a@example.com , https://r.example.com/x ; ext.v2=1;")
    assert record.valid, record.errors
    assert [u.scheme for u in record.rua] == ["mailto", "https"]
    assert record.extensions == (("ext.v2", "1"),)


def test_two_rua_fields_add_up() -> None:
    record = parse_tls_rpt("v=TLSRPTv1;rua=mailto:a@example.com;rua=mailto:b@example.com")
    assert record.valid
    assert [u.uri for u in record.rua] == ["mailto:a@example.com", "mailto:b@example.com"]


def test_missing_rua_is_an_error_at_the_end() -> None:
    text = "v=TLSRPTv1;foo=bar"
    record = parse_tls_rpt(text)
    assert not record.valid
    assert [(e.position, "no rua=" in e.message) for e in record.errors] == [(len(text), True)]


def test_version_alone_is_invalid() -> None:
    assert not parse_tls_rpt("v=TLSRPTv1").valid
    assert not parse_tls_rpt("v=TLSRPTv1;").valid


def test_version_is_case_sensitive() -> None:
    record = parse_tls_rpt("v=tlsrptv1;rua=mailto:a@example.com")
    assert not record.valid
    assert record.errors[0].position == 0 and "exactly" in record.errors[0].message


def test_version_must_come_first() -> None:
    record = parse_tls_rpt("rua=mailto:a@example.com;v=TLSRPTv1")
    assert not record.valid
    assert record.errors[0].position == 0


def test_leading_space_is_an_error() -> None:
    assert parse_tls_rpt(" v=TLSRPTv1;rua=mailto:a@example.com").errors[0].position == 0


def test_unsupported_scheme_is_located_at_the_uri() -> None:
    text = "v=TLSRPTv1;rua=mailto:a@example.com, http://r.example.com/"
    record = parse_tls_rpt(text)
    assert not record.valid
    (error,) = record.errors
    assert error.position == text.index("http://")
    assert "unsupported URI scheme 'http'" in error.message
    assert [u.uri for u in record.rua] == ["mailto:a@example.com"]  # the good one is still seen


def test_stray_semicolon_in_the_middle() -> None:
    text = "v=TLSRPTv1;;rua=mailto:a@example.com"
    record = parse_tls_rpt(text)
    assert [e.position for e in record.errors] == [11]
    assert "empty field" in record.errors[0].message


def test_field_without_equals_and_uppercase_rua() -> None:
    text = "v=TLSRPTv1;RUA=mailto:a@example.com;junk"
    messages = [(e.position, e.message) for e in parse_tls_rpt(text).errors]
    assert messages[0][0] == 11 and "case-sensitive" in messages[0][1]
    assert messages[1][0] == text.index("junk") and "not name=value" in messages[1][1]
    assert len(messages) == 2  # an uppercase RUA still counts as an attempt at rua: no "no rua" on top


def test_bad_extension_value_with_space() -> None:
    text = "v=TLSRPTv1;rua=mailto:a@example.com;x=a b"
    (error,) = parse_tls_rpt(text).errors
    assert error.position == text.index("a b")


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("", "empty"),
        ("mailto:", "not a mailto"),
        ("mailto:nobody", "not a mailto"),
        ("mailto:a@b@c", "not a mailto"),
        ("https://", "without a host"),
        ("https:/path-only", "without a host"),
        ("mailto:a@example.com!10m", "'!' must be percent-encoded"),
        ("reports@example.com", "no scheme"),
        ("ftp://r.example.com/", "unsupported URI scheme"),
        ("noscheme", "no scheme"),
        ("mailto:a b@example.com", "spaces"),
    ],
)
def test_bad_uris(uri: str, why: str) -> None:
    result = parse_uri(uri)
    assert isinstance(result, str) and why in result


def test_uri_scheme_is_case_insensitive_and_mailto_may_carry_headers() -> None:
    assert parse_uri("MAILTO:tls@example.com?subject=report") == TlsRptUri(
        "MAILTO:tls@example.com?subject=report", "mailto"
    )
    assert parse_uri("HTTPS://r.example.com:8443/tlsrpt") == TlsRptUri(
        "HTTPS://r.example.com:8443/tlsrpt", "https"
    )


@pytest.mark.parametrize(
    ("text", "claims"),
    [
        ("v=TLSRPTv1;rua=mailto:a@example.com", True),
        ("v=TLSRPTv1", True),
        ("v=tlsrptv1; rua=mailto:a@example.com", True),
        ("v=TLSRPTv10;rua=mailto:a@example.com", False),
        ("v=spf1 -all", False),
        ("v=STSv1; id=1", False),
    ],
)
def test_which_txt_records_claim_to_be_tlsrpt(text: str, claims: bool) -> None:
    assert looks_like_tls_rpt(text) is claims
