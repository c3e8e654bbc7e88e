"""The SPF record parser: RFC 7208 examples parse to the right tree; malformed records say where."""

from __future__ import annotations

import ipaddress

import pytest

from mecsa.spf.parser import (
    MacroExpand,
    MacroLiteral,
    Qualifier,
    SpfSyntaxError,
    is_spf_record,
    parse_macro_string,
    parse_record,
)


def test_rfc_example_with_every_kind_of_term() -> None:
    record = parse_record(
        "v=spf1 +mx a:colo.example.com/28 -a//64 ip4:192.0.2.128/28 ip6:2001:db8::/32 "
        "~include:example.net ?exists:%{ir}.%{l1r+-}._spf.%{d} ptr redirect=example.org "
        "exp=explain._spf.%{d} x-custom=anything -all"
    )
    kinds = [(m.qualifier, m.kind) for m in record.mechanisms]
    assert kinds == [
        (Qualifier.PASS, "mx"),
        (Qualifier.PASS, "a"),
        (Qualifier.FAIL, "a"),
        (Qualifier.PASS, "ip4"),
        (Qualifier.PASS, "ip6"),
        (Qualifier.SOFTFAIL, "include"),
        (Qualifier.NEUTRAL, "exists"),
        (Qualifier.PASS, "ptr"),
        (Qualifier.FAIL, "all"),
    ]
    a_colo, a_v6 = record.mechanisms[1], record.mechanisms[2]
    assert a_colo.domain is not None and a_colo.domain.text == "colo.example.com"
    assert (a_colo.cidr4, a_colo.cidr6) == (28, 128)
    assert (a_v6.domain, a_v6.cidr4, a_v6.cidr6) == (None, 32, 64)
    assert record.mechanisms[3].network == ipaddress.ip_network("192.0.2.128/28")
    assert record.mechanisms[4].network == ipaddress.ip_network("2001:db8::/32")
    exists = record.mechanisms[6].domain
    assert exists is not None
    assert exists.parts[0] == MacroExpand("i", False, None, True, "")
    assert exists.parts[2] == MacroExpand("l", False, 1, True, "+-")
    assert exists.letters == frozenset("ild")
    assert record.redirect is not None and record.redirect.value.text == "example.org"
    assert record.explanation is not None and record.explanation.value.text == "explain._spf.%{d}"
    assert [m.name for m in record.unknown_modifiers] == ["x-custom"]
    # An `all` is present, so redirect= is ignored (RFC 7208 §5.1).
    assert record.effective_redirect is None
    assert record.all_mechanism is record.mechanisms[-1]


def test_terms_after_all_are_never_tested() -> None:
    record = parse_record("v=spf1 ?all a:never.example.com -all")
    assert [m.text for m in record.effective_mechanisms] == ["?all"]


def test_version_and_names_are_case_insensitive_and_spaces_may_repeat() -> None:
    record = parse_record("V=SpF1  MX   Include:example.net  -ALL ")
    assert [m.kind for m in record.mechanisms] == ["mx", "include", "all"]
    assert is_spf_record("v=spf1")
    assert not is_spf_record("v=spf10")
    assert not is_spf_record("v=spf1mx")


@pytest.mark.parametrize(
    ("record", "bad", "offset"),
    [
        ("v=spf1 ip4:192.0.2.300 -all", "192.0.2.300", 0),
        ("v=spf1 a -all moo", "moo", 0),
        ("v=spf1 a/33 -all", "33", 0),
        ("v=spf1 ip4:192.0.2.1/032", "032", 0),
        ("v=spf1 exists:%{x}.example.com", "%{x}", 0),
        ("v=spf1 a:example.com:8080", "example.com:8080", len("example.com:8080") - 1),
        ("v=spf1 a:foo%.example.com", "%.example", 0),
        ("v=spf1 -all.", "-all.", 0),
        ("v=spf1 a\tmx", "\t", 0),
        ("v=spf1 redirect=a.example.com redirect=b.example.com", "redirect=b", 0),
        ("v=spf1 exp= -all", "exp=", len("exp=")),  # where the domain should start
        ("v=spf1 1up=foo", "1up=foo", 0),
        ("v=spf1 include:", "include:", len("include:")),
    ],
)
def test_syntax_errors_are_located(record: str, bad: str, offset: int) -> None:
    with pytest.raises(SpfSyntaxError) as caught:
        parse_record(record)
    assert caught.value.position == record.index(bad) + offset, str(caught.value)


def test_non_ascii_is_rejected_at_its_position() -> None:
    with pytest.raises(SpfSyntaxError) as caught:
        parse_record("v=spf1 a:ex\u00e4mple.com -all")
    assert caught.value.position == 11


@pytest.mark.parametrize(
    "record",
    [
        "v=spf1 a:museum",  # a lone top label
        "v=spf1 a:abc.123",  # an all-numeric top label
        "v=spf1 a:example.-com",
        "v=spf1 ip6::CAFE::BABE",
        "v=spf1 ip6:::1//33",
        "v=spf1 ip4:1.2.3",
        "v=spf1 ptr/24",
        "v=spf1 include:example.com/24",
        "v=spf1 a/24/64",
        "v=spf1 redirect:example.com",
        "v=spf1 foo=%abc",
        "v=spf1 exists:%{d0}.example.com",
    ],
)
def test_malformed_records_are_rejected(record: str) -> None:
    with pytest.raises(SpfSyntaxError):
        parse_record(record)


def test_a_domain_may_hold_colons_and_slashes_before_a_dual_cidr() -> None:
    mech = parse_record("v=spf1 a:foo:bar/baz.example.com/24//64").mechanisms[0]
    assert mech.domain is not None and mech.domain.text == "foo:bar/baz.example.com"
    assert (mech.cidr4, mech.cidr6) == (24, 64)


def test_macro_escapes_and_explanation_letters() -> None:
    value = parse_macro_string("a%%b%_c%-d")
    assert value.parts == (
        MacroLiteral("a"),
        MacroLiteral("%", escape=True),
        MacroLiteral("b"),
        MacroLiteral(" ", escape=True),
        MacroLiteral("c"),
        MacroLiteral("%20", escape=True),
        MacroLiteral("d"),
    )
    with pytest.raises(SpfSyntaxError):
        parse_macro_string("%{c}")  # c, r, t only in explanations
    explain = parse_macro_string("from %{C} at %{t}", explanation=True)
    assert explain.parts[1] == MacroExpand("c", True, None, False, "")
