"""The DMARC record parser: RFC 7489 examples, defaults, and malformed records with their places."""

from __future__ import annotations

import pytest

from mecsa.records.dmarc import Alignment, Policy, ReportUri, is_dmarc_record, parse_dmarc
from mecsa.records.taglist import IssueSeverity


def _codes(text: str) -> list[tuple[IssueSeverity, str]]:
    return [(i.severity, i.code) for i in parse_dmarc(text).issues]


def test_rfc7489_appendix_b_monitoring_record_with_defaults() -> None:
    parsed = parse_dmarc("v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com")
    record = parsed.record
    assert parsed.issues == ()
    assert record is not None
    assert record.policy is Policy.NONE
    assert record.subdomain_policy is None and record.effective_subdomain_policy is Policy.NONE
    assert (record.adkim, record.aspf, record.pct, record.ri) == (
        Alignment.RELAXED,
        Alignment.RELAXED,
        100,
        86400,
    )
    assert record.fo == ("0",) and record.rf == ("afrf",)
    assert record.rua == (
        ReportUri("mailto:dmarc-feedback@example.com", "mailto", "dmarc-feedback@example.com", "example.com"),
    )


def test_rfc7489_appendix_b_quarantine_with_size_limit_and_pct() -> None:
    parsed = parse_dmarc(
        "v=DMARC1; p=quarantine; rua=mailto:dmarc-feedback@example.com,"
        "mailto:tld-test@thirdparty.example.net!10m; pct=25"
    )
    record = parsed.record
    assert parsed.issues == () and record is not None
    assert record.policy is Policy.QUARANTINE and record.pct == 25
    assert [(u.domain, u.max_bytes) for u in record.rua] == [
        ("example.com", None),
        ("thirdparty.example.net", 10 * 2**20),
    ]


def test_all_tags_parsed() -> None:
    record = parse_dmarc(
        "v=DMARC1;p=reject;sp=quarantine;np=reject;adkim=s;aspf=s;fo=1:d;rf=afrf;ri=3600;pct=0;"
        "ruf=mailto:f@example.org!500k"
    ).record
    assert record is not None
    assert record.subdomain_policy is Policy.QUARANTINE and record.nonexistent_policy is Policy.REJECT
    assert (record.adkim, record.aspf) == (Alignment.STRICT, Alignment.STRICT)
    assert record.fo == ("1", "d") and record.ri == 3600 and record.pct == 0
    assert record.ruf[0].max_bytes == 500 * 1024


def test_values_are_case_insensitive_but_version_is_not() -> None:
    assert parse_dmarc("v=DMARC1; p=Reject").record is not None
    assert parse_dmarc("v=DMARC1; p=Reject").record.policy is Policy.REJECT  # type: ignore[union-attr]
    assert not is_dmarc_record("v=dmarc1; p=reject")
    assert (IssueSeverity.ERROR, "v.bad") in _codes("v=dmarc1; p=reject")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v=DMARC1; p=reject", True),
        ("  v = DMARC1 ;p=reject", True),
        ("v=DMARC1", True),
        ("v=DMARC10; p=reject", False),
        ("p=reject; v=DMARC1", False),
        ("v=spf1 -all", False),
        ("", False),
    ],
)
def test_discovery_counts_only_v_dmarc1_first(text: str, expected: bool) -> None:
    assert is_dmarc_record(text) is expected


def test_v_must_come_first() -> None:
    parsed = parse_dmarc("p=reject; v=DMARC1")
    assert parsed.record is None
    assert (IssueSeverity.ERROR, "v.not_first") in _codes("p=reject; v=DMARC1")


def test_missing_p_is_an_error() -> None:
    parsed = parse_dmarc("v=DMARC1; rua=mailto:d@example.com")
    assert parsed.record is None
    assert [i.code for i in parsed.errors] == ["p.missing"]


@pytest.mark.parametrize("bad", ["p=rejected", "p=", "p=none reject"])
def test_bad_p_value_is_an_error_located_at_the_tag(bad: str) -> None:
    text = f"v=DMARC1; {bad}"
    parsed = parse_dmarc(text)
    assert parsed.record is None
    (error,) = parsed.errors
    assert error.code == "p.bad" and error.tag == "p" and error.position == text.index("p=")


def test_bad_sp_discards_the_record() -> None:
    parsed = parse_dmarc("v=DMARC1; p=reject; sp=block")
    assert parsed.record is None and [i.code for i in parsed.errors] == ["sp.bad"]


def test_bad_np_is_ignored_with_a_warning() -> None:
    parsed = parse_dmarc("v=DMARC1; p=reject; np=block")
    assert parsed.record is not None and parsed.record.nonexistent_policy is None
    assert [i.code for i in parsed.warnings] == ["np.bad"]


def test_duplicate_tag_invalidates_the_record_and_says_where() -> None:
    text = "v=DMARC1; p=none; P=reject"
    parsed = parse_dmarc(text)
    assert parsed.record is None
    (error,) = parsed.errors
    assert error.code == "taglist.duplicate" and error.position == text.index("P=")


@pytest.mark.parametrize(
    ("pct", "valid"), [("0", True), ("100", True), ("101", False), ("-1", False), ("5.5", False)]
)
def test_pct_must_be_integer_0_to_100(pct: str, valid: bool) -> None:
    parsed = parse_dmarc(f"v=DMARC1; p=reject; pct={pct}")
    assert parsed.record is not None
    if valid:
        assert parsed.record.pct == int(pct) and parsed.issues == ()
    else:
        assert parsed.record.pct == 100
        assert [i.code for i in parsed.warnings] == ["pct.bad"]


def test_bad_rua_uris_are_dropped_and_located() -> None:
    text = "v=DMARC1; p=reject; rua=dmarc@example.com, mailto:ok@example.com, mailto:nobody"
    parsed = parse_dmarc(text)
    assert parsed.record is not None
    assert [u.uri for u in parsed.record.rua] == ["mailto:ok@example.com"]
    bad = [i for i in parsed.warnings if i.code == "rua.bad_uri"]
    assert [i.position for i in bad] == [text.index("dmarc@"), text.index("mailto:nobody")]


def test_rua_without_any_usable_uri_warns_no_reports() -> None:
    parsed = parse_dmarc("v=DMARC1; p=reject; rua=report-here")
    assert parsed.record is not None and parsed.record.rua == ()
    assert {i.code for i in parsed.warnings} == {"rua.bad_uri", "rua.empty"}


def test_bad_size_suffix_and_non_mailto_scheme() -> None:
    parsed = parse_dmarc("v=DMARC1; p=reject; rua=mailto:a@example.com!10x, https://r.example.com/dmarc")
    assert parsed.record is not None
    assert [u.scheme for u in parsed.record.rua] == ["https"]
    assert [i.code for i in parsed.warnings] == ["rua.bad_uri", "rua.not_mailto"]


def test_unknown_tag_empty_tag_and_bad_optional_values_warn() -> None:
    parsed = parse_dmarc("v=DMARC1; p=reject;; adkim=x; fo=2; rf=iodef; ri=soon; foo=bar;")
    assert parsed.record is not None
    assert parsed.record.adkim is Alignment.RELAXED and parsed.record.ri == 86400
    assert [i.code for i in parsed.warnings] == [
        "taglist.empty",
        "tag.unknown",
        "adkim.bad",
        "fo.bad",
        "rf.bad",
        "ri.bad",
    ]


def test_tag_without_equals_and_bad_characters_are_errors() -> None:
    assert (IssueSeverity.ERROR, "taglist.no_equals") in _codes("v=DMARC1; p=reject; rua")
    assert (IssueSeverity.ERROR, "taglist.bad_char") in _codes("v=DMARC1; p=reject; rua=mailto:é@example.com")


def test_p_not_second_is_only_a_warning() -> None:
    parsed = parse_dmarc("v=DMARC1; rua=mailto:a@example.com; p=reject")
    assert parsed.record is not None and [i.code for i in parsed.warnings] == ["p.not_second"]


def test_policy_for_uses_p_at_the_record_domain_and_sp_below_it() -> None:
    record = parse_dmarc("v=DMARC1; p=reject; sp=none; np=quarantine").record
    assert record is not None
    # authheaders 0.16 applied sp at the organisational domain itself (NOTES.md)
    assert record.policy_for("example.test", "example.test") is Policy.REJECT
    assert record.policy_for("Example.Test.", "example.test") is Policy.REJECT
    assert record.policy_for("mail.example.test", "example.test") is Policy.NONE
    assert record.policy_for("ghost.example.test", "example.test", exists=False) is Policy.QUARANTINE


def test_np_defaults_to_sp_then_p() -> None:
    with_sp = parse_dmarc("v=DMARC1; p=reject; sp=quarantine").record
    only_p = parse_dmarc("v=DMARC1; p=reject").record
    assert with_sp is not None and only_p is not None
    assert with_sp.effective_nonexistent_policy is Policy.QUARANTINE
    assert only_p.effective_nonexistent_policy is Policy.REJECT
