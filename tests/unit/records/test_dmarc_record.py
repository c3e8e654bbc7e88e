"""The DMARC record parser: RFC 7489 examples, defaults, and malformed records with their places."""

from __future__ import annotations

import pytest

from mecsa.records.dmarc import Alignment, Policy, Psd, ReportUri, Rules, is_dmarc_record, parse_dmarc
from mecsa.records.taglist import IssueSeverity

# The RFC 7489 rule set (profile mecsa-st); parse_dmarc's default is RFC 9989
OLD = Rules.RFC7489


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
        "mailto:tld-test@thirdparty.example.net!10m; pct=25",
        rules=OLD,
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
    parsed = parse_dmarc("v=DMARC1; rua=mailto:d@example.com", rules=OLD)
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
    parsed = parse_dmarc("v=DMARC1; p=reject; np=block", rules=OLD)
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
    parsed = parse_dmarc(f"v=DMARC1; p=reject; pct={pct}", rules=OLD)
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
    parsed = parse_dmarc("v=DMARC1; p=reject;; adkim=x; fo=2; rf=iodef; ri=soon; foo=bar;", rules=OLD)
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


# RFC 9989 (the default rule set)


def test_rfc9989_parses_psd_and_t() -> None:
    parsed = parse_dmarc("v=DMARC1; p=reject; psd=n; t=y; rua=mailto:d@example.com")
    assert parsed.issues == () and parsed.record is not None
    assert parsed.record.psd is Psd.NO and parsed.record.testing is True
    assert parsed.record.rules is Rules.RFC9989


def test_rfc9989_bad_psd_and_t_fall_back_to_defaults_with_warnings() -> None:
    parsed = parse_dmarc("v=DMARC1; p=reject; psd=maybe; t=yes")
    assert parsed.record is not None
    assert parsed.record.psd is Psd.UNSAID and parsed.record.testing is False
    assert [i.code for i in parsed.warnings] == ["psd.bad", "t.bad"]


def test_rfc7489_sees_psd_and_t_as_tags_it_ignores() -> None:
    parsed = parse_dmarc("v=DMARC1; p=reject; psd=y; t=y", rules=OLD)
    assert parsed.record is not None and parsed.record.testing is False
    assert parsed.record.psd is Psd.UNSAID
    assert [i.code for i in parsed.warnings] == ["tag.unknown", "tag.unknown"]
    assert "RFC 9989 tag" in parsed.warnings[0].message


@pytest.mark.parametrize("tag", ["pct=50", "rf=afrf", "ri=3600", "pct=nonsense"])
def test_rfc9989_removed_tags_warn_and_are_not_judged(tag: str) -> None:
    name = tag.split("=")[0]
    parsed = parse_dmarc(f"v=DMARC1; p=reject; {tag}")
    assert parsed.record is not None
    assert [i.code for i in parsed.issues] == [f"{name}.removed"]
    assert "removed in RFC 9989; receivers ignore it" in parsed.issues[0].message


def test_rfc9989_unknown_tag_is_a_warning_not_an_invalid_record() -> None:
    parsed = parse_dmarc("v=DMARC1; p=reject; foo=bar; rua=mailto:d@example.com")
    assert parsed.record is not None and parsed.errors == ()
    assert [i.code for i in parsed.warnings] == ["tag.unknown"]


def test_rfc9989_missing_p_with_usable_rua_means_p_none() -> None:
    parsed = parse_dmarc("v=DMARC1; rua=mailto:d@example.com")
    assert parsed.record is not None and parsed.record.policy is Policy.NONE
    assert [(i.severity, i.code) for i in parsed.issues] == [(IssueSeverity.WARNING, "p.missing")]


@pytest.mark.parametrize("bad", ["p=rejected", "p=reject; sp=block", "p=reject; np=block"])
def test_rfc9989_bad_policy_tag_with_usable_rua_means_p_none_everywhere(bad: str) -> None:
    parsed = parse_dmarc(f"v=DMARC1; {bad}; rua=mailto:d@example.com")
    assert parsed.record is not None
    record = parsed.record
    assert (record.policy, record.effective_subdomain_policy, record.effective_nonexistent_policy) == (
        Policy.NONE,
        Policy.NONE,
        Policy.NONE,
    )
    assert parsed.errors == () and "act as if p=none" in parsed.warnings[0].message


@pytest.mark.parametrize("bad", ["", "p=rejected", "p=reject; sp=block", "p=reject; np=block"])
def test_rfc9989_bad_policy_without_usable_rua_discards_the_record(bad: str) -> None:
    parsed = parse_dmarc(f"v=DMARC1; {bad}; rua=not-a-uri".replace("; ;", ";"))
    assert parsed.record is None and parsed.errors


@pytest.mark.parametrize("policy", ["reject", "quarantine", "none"])
@pytest.mark.parametrize("rules", [Rules.RFC9989, Rules.RFC7489])
def test_the_hardening_record_is_clean_under_both_rule_sets(policy: str, rules: Rules) -> None:
    from mecsa.harden.records import dmarc_record

    text = dmarc_record("example.test", "dmarc_reports@example.test", policy).value
    assert "pct=" not in text and text.startswith(f"v=DMARC1; p={policy}; sp={policy}; ")
    parsed = parse_dmarc(text, rules)
    record = parsed.record
    # np is RFC 9091's experimental tag under RFC 7489 rules: known here, ignored by plain 7489 receivers
    assert parsed.issues == () and record is not None
    assert record.policy is record.effective_subdomain_policy is Policy(policy)
    assert record.effective_nonexistent_policy is (Policy.NONE if policy == "none" else Policy.REJECT)


def test_rfc9989_size_suffix_is_obsolete_but_the_uri_is_kept() -> None:
    parsed = parse_dmarc("v=DMARC1; p=reject; rua=mailto:a@example.com!10m")
    assert parsed.record is not None and [u.uri for u in parsed.record.rua] == ["mailto:a@example.com"]
    assert [i.code for i in parsed.warnings] == ["rua.size_obsolete"]
    assert parse_dmarc("v=DMARC1; p=reject; rua=mailto:a@example.com!10m", rules=OLD).issues == ()


def test_a_record_is_parsed_once_however_often_it_is_read() -> None:
    text = "v=DMARC1; p=reject; rua=mailto:once@example.test"
    first = parse_dmarc(text)
    assert parse_dmarc(text) is first
    assert parse_dmarc(text, Rules.RFC7489) is not first  # the rule set is part of the parse
