"""The pure MTA-STS parsers: the _mta-sts TXT record, the policy file, and MX patterns."""

from __future__ import annotations

import pytest

from mecsa.records.mta_sts import (
    MxPattern,
    StsMode,
    looks_like_sts_record,
    parse_policy,
    parse_sts_record,
    pattern_problem,
)

# RFC 8461 §3.2's example policy.
RFC_POLICY = (
    "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmx: backupmx.example.com\n"
    "max_age: 604800\n"
)


# --- TXT record ---------------------------------------------------------------------------------


def test_rfc_example_record_parses() -> None:
    record = parse_sts_record("v=STSv1; id=20160831085700Z;")
    assert record.valid and record.id == "20160831085700Z" and record.extensions == ()


@pytest.mark.parametrize(
    "text", ["v=STSv1; id=abc", "v=STSv1;id=abc;", "v=STSv1 ;\tid=abc ; ", "v=STSv1; id=" + "a" * 32]
)
def test_record_spacing_and_trailing_separator_accepted(text: str) -> None:
    assert parse_sts_record(text).valid


def test_record_extension_kept() -> None:
    record = parse_sts_record("v=STSv1; id=1; ext-1.x=va:lue")
    assert record.valid and record.extensions == (("ext-1.x", "va:lue"),)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("v=STSv1", "id= is required"),
        ("v=STSv1;", "id= is required"),
        ("v=STSv1; id=" + "a" * 33, "bad id"),
        ("v=STSv1; id=2024-05-01", "bad id"),
        ("v=STSv1; id=", "bad id"),
        ("v=STSv1; ID=abc", "case-sensitive"),
        ("v=STSv1; foo=bar", "no id= field"),
    ],
)
def test_record_without_a_valid_id(text: str, needle: str) -> None:
    record = parse_sts_record(text)
    assert not record.valid and record.id is None
    assert any(needle in e for e in record.errors), record.errors


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("v=STSv1; id=abc; id=def", "more than one id"),
        ("v=STSv1;; id=abc", "stray"),
        ("v=STSv1; id=abc; foo", "not name=value"),
        ("v=STSv1; id=abc; foo=a b", "bad value"),
        ("v=STSv1; id=abc; _x=1", "bad field name"),
        ("v=STSv1; v=STSv1; id=abc", "more than once"),
    ],
)
def test_record_syntax_errors_keep_the_id(text: str, needle: str) -> None:
    record = parse_sts_record(text)
    assert not record.valid and record.id == "abc"
    assert any(needle in e for e in record.errors), record.errors


@pytest.mark.parametrize(
    ("text", "claims"),
    [
        ("v=STSv1; id=1", True),
        ("v=STSv1", True),
        ("v=STSv1 ; id=1", True),
        ("v=STSv10; id=1", False),
        ("V=STSv1; id=1", False),
        (" v=STSv1; id=1", False),
        ("v=spf1 -all", False),
    ],
)
def test_which_txt_records_claim_to_be_sts(text: str, claims: bool) -> None:
    assert looks_like_sts_record(text) is claims


# --- policy file --------------------------------------------------------------------------------


def test_rfc_example_policy_parses_with_lf() -> None:
    parsed = parse_policy(RFC_POLICY)
    assert parsed.errors == () and parsed.notes == () and parsed.line_endings == "LF"
    policy = parsed.policy
    assert policy is not None
    assert policy.version == "STSv1" and policy.mode is StsMode.ENFORCE and policy.max_age == 604800
    assert [p.text for p in policy.mx] == ["mail.example.com", "*.example.net", "backupmx.example.com"]


def test_crlf_policy_parses_the_same() -> None:
    lf = parse_policy(RFC_POLICY)
    crlf = parse_policy(RFC_POLICY.replace("\n", "\r\n"))
    assert crlf.policy == lf.policy and crlf.line_endings == "CRLF"


def test_policy_without_final_newline_and_tight_delimiter() -> None:
    parsed = parse_policy("version:STSv1\nmode:\ttesting\nmx: a.example\nmax_age: 0")
    assert parsed.policy is not None and parsed.policy.mode is StsMode.TESTING and parsed.policy.max_age == 0


def test_unknown_keys_are_ignored_but_kept() -> None:
    parsed = parse_policy(RFC_POLICY + "x-note: hello world\n")
    assert parsed.policy is not None and parsed.policy.extensions == (("x-note", "hello world"),)


def test_mode_none_needs_no_mx() -> None:
    parsed = parse_policy("version: STSv1\nmode: none\nmax_age: 86400\n")
    assert parsed.policy is not None and parsed.policy.mode is StsMode.NONE and parsed.policy.mx == ()


def test_blank_line_is_a_note_not_an_error() -> None:
    parsed = parse_policy(RFC_POLICY.replace("mode: enforce\n", "mode: enforce\n\n") + "\n")
    assert parsed.policy is not None
    assert len(parsed.notes) == 2 and "blank line" in parsed.notes[0]


def test_max_age_limit_is_inclusive() -> None:
    parsed = parse_policy(RFC_POLICY.replace("604800", "31557600"))
    assert parsed.policy is not None and parsed.policy.max_age == 31557600


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ("mode: enforce\n", "mode: enforce\nmode: testing\n", "'mode' appears 2 times"),
        ("max_age: 604800\n", "max_age: 604800\nmax_age: 1\n", "'max_age' appears 2 times"),
        ("version: STSv1\n", "", "no 'version' line"),
        ("mode: enforce\n", "", "no 'mode' line"),
        ("max_age: 604800\n", "", "no 'max_age' line"),
        ("version: STSv1", "version: STSv2", "version must be"),
        ("version: STSv1", "version: stsv1", "version must be"),
        ("mode: enforce", "mode: Enforce", "mode must be"),
        ("mode: enforce", "mode: report", "mode must be"),
        ("max_age: 604800", "max_age: 31557601", "exceeds"),
        ("max_age: 604800", "max_age: -1", "1 to 10 digits"),
        ("max_age: 604800", "max_age: 12345678901", "1 to 10 digits"),
        ("max_age: 604800", "max_age: 1d", "1 to 10 digits"),
        ("mode: enforce", "mode : enforce", "bad key"),
        ("mode: enforce", "mode enforce", "not 'key: value'"),
        ("mx: *.example.net", "mx: *.*.example.net", "wildcard"),
        ("mx: *.example.net", "mx: mx*.example.net", "wildcard"),
        ("mx: *.example.net", "mx: example.net.", "not a valid host name"),
        ("mx: *.example.net", "mx: -bad.example.net", "not a valid host name"),
        ("mx: *.example.net", "mx:", "empty name"),
        ("mode: enforce\n", "mode: enforce\r", "bare CR"),
    ],
)
def test_malformed_policies_are_rejected(old: str, new: str, needle: str) -> None:
    text = RFC_POLICY.replace(old, new, 1)
    assert text != RFC_POLICY
    parsed = parse_policy(text)
    assert parsed.policy is None
    assert any(needle in e for e in parsed.errors), parsed.errors


def test_enforce_without_mx_is_rejected() -> None:
    parsed = parse_policy("version: STSv1\nmode: enforce\nmax_age: 86400\n")
    assert parsed.policy is None and any("no mx" in e for e in parsed.errors)


def test_html_page_is_not_a_policy() -> None:
    parsed = parse_policy("<html><body>Not found</body></html>\n")
    assert parsed.policy is None and len(parsed.errors) >= 4


# --- MX patterns (RFC 8461 §4.1) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "host", "matches"),
    [
        ("mail.example.com", "mail.example.com", True),
        ("mail.example.com", "MAIL.Example.COM.", True),
        ("Mail.Example.com", "mail.example.com", True),
        ("mail.example.com", "mail2.example.com", False),
        ("mail.example.com", "x.mail.example.com", False),
        ("*.example.com", "mx1.example.com", True),
        ("*.example.com", "MX1.EXAMPLE.COM.", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "a.b.example.com", False),
        ("*.example.com", "mxexample.com", False),
        ("*.example.com", ".example.com", False),
    ],
)
def test_mx_pattern_matching(pattern: str, host: str, matches: bool) -> None:
    assert MxPattern(pattern).matches(host) is matches


def test_covering_returns_the_first_matching_pattern() -> None:
    policy = parse_policy(RFC_POLICY).policy
    assert policy is not None
    assert policy.covering("mx7.example.net") == MxPattern("*.example.net")
    assert policy.covering("backupmx.example.com") == MxPattern("backupmx.example.com")
    assert policy.covering("other.example.com") is None


@pytest.mark.parametrize(
    ("text", "ok"),
    [("mx.example.com", True), ("*.example.com", True), ("*", False), ("*.", False), ("a..b", False)],
)
def test_pattern_syntax(text: str, ok: bool) -> None:
    assert (pattern_problem(text) is None) is ok
