"""Macro expansion: the RFC 7208 §7.4 examples, URL escaping and domain truncation."""

from __future__ import annotations

import ipaddress

import pytest

from mecsa.spf.macros import MacroContext, expand, expand_domain
from mecsa.spf.parser import parse_macro_string

V4 = MacroContext(ipaddress.ip_address("192.0.2.3"), "strong-bad@email.example.com", "email.example.com")
V6 = MacroContext(ipaddress.ip_address("2001:db8::cb01"), "strong-bad@email.example.com", "email.example.com")


@pytest.mark.parametrize(
    ("macro", "expected"),
    [
        ("%{s}", "strong-bad@email.example.com"),
        ("%{o}", "email.example.com"),
        ("%{d}", "email.example.com"),
        ("%{d4}", "email.example.com"),
        ("%{d3}", "email.example.com"),
        ("%{d2}", "example.com"),
        ("%{d1}", "com"),
        ("%{dr}", "com.example.email"),
        ("%{d2r}", "example.email"),
        ("%{l}", "strong-bad"),
        ("%{l-}", "strong.bad"),
        ("%{lr}", "strong-bad"),
        ("%{lr-}", "bad.strong"),
        ("%{l1r-}", "strong"),
        ("%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"),
        ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
        ("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"),
        ("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"),
        ("%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"),
    ],
)
def test_rfc7208_section_7_4_ipv4_examples(macro: str, expected: str) -> None:
    assert expand(parse_macro_string(macro), V4) == expected


def test_rfc7208_section_7_4_ipv6_example() -> None:
    assert (
        expand(parse_macro_string("%{ir}.%{v}._spf.%{d2}"), V6)
        == "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"
    )


def test_upper_case_macros_are_url_escaped() -> None:
    ctx = MacroContext(ipaddress.ip_address("192.0.2.3"), "~jack&jill=up-a_b3.c@example.com", "example.com")
    assert expand(parse_macro_string("%{L}/%{l}"), ctx) == "~jack%26jill%3Dup-a_b3.c/~jack&jill=up-a_b3.c"


def test_explanation_letters_c_and_ipv6_text() -> None:
    explain = parse_macro_string("%{c} via %{r} is %{v}", explanation=True)
    ctx = MacroContext(ipaddress.ip_address("2001:DB8::CB01"), "a@b.example", "b.example", receiver="mx.test")
    assert expand(explain, ctx) == "2001:db8::cb01 via mx.test is ip6"


def test_expanded_domains_lose_left_labels_to_fit_253_octets_and_the_trailing_dot() -> None:
    ctx = MacroContext(ipaddress.ip_address("192.0.2.3"), "x@" + "a" * 60 + ".example.com", "example.com")
    name = expand_domain(parse_macro_string("lead.%{o}.%{o}.%{o}.%{o}.example.net."), ctx)
    assert len(name) <= 253
    assert name.endswith(".example.com.example.net")
    assert not name.startswith("lead.")


def test_empty_local_part_becomes_postmaster() -> None:
    ctx = MacroContext(ipaddress.ip_address("192.0.2.3"), "@example.com", "example.com")
    assert expand(parse_macro_string("%{l}@%{o}"), ctx) == "postmaster@example.com"
