"""Organisational domains (RFC 7489 §3.2) and alignment, including the authheaders 0.16 mistakes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mecsa.orgdomain import NotADomainError, aligned, normalise, organisational_domain


@pytest.mark.parametrize(
    ("name", "org"),
    [
        ("mail.example.test", "example.test"),  # authheaders 0.16 said "test"
        ("example.test", "example.test"),
        ("my-domain.example", "my-domain.example"),
        ("a.b.my-domain.example", "my-domain.example"),
        ("example.co.uk", "example.co.uk"),
        ("x.y.example.co.uk", "example.co.uk"),
        ("MAIL.Example.COM.", "example.com"),
        ("co.uk", "co.uk"),  # a public suffix is its own organisational domain
        ("bücher.example.de", "example.de"),
    ],
)
def test_organisational_domain(name: str, org: str) -> None:
    assert organisational_domain(name) == org


@pytest.mark.parametrize("text", ["a@my-domain.example", "", ".", "a..example", "x y.example", "-a.example"])
def test_only_domains_are_taken(text: str) -> None:
    # authheaders 0.16 turned a@my-domain.example into "my"
    with pytest.raises(NotADomainError):
        organisational_domain(text)


def test_normalise_lowers_and_drops_the_root_dot() -> None:
    assert normalise("Example.TEST.") == "example.test"


def test_relaxed_alignment_is_same_organisational_domain() -> None:
    assert aligned("mail.example.co.uk", "example.co.uk", strict=False)
    assert aligned("a.example.test", "b.example.test", strict=False)
    assert not aligned("example.co.uk", "other.co.uk", strict=False)


def test_strict_alignment_needs_equal_names() -> None:
    assert aligned("Example.test.", "example.test", strict=True)
    assert not aligned("mail.example.test", "example.test", strict=True)


def test_the_lab_tld_test_is_a_public_suffix_by_the_implicit_rule() -> None:
    # the PSL does not list `test`; its `*` default rule makes it a suffix (RFC 7489 receivers agree)
    assert organisational_domain("mail.example.test") == "example.test"
    assert organisational_domain("test") == "test"
    assert organisational_domain("walkonly.psdwalk") == "walkonly.psdwalk"


def test_compiled_rules_give_the_parsed_list() -> None:
    # The shipped compiled form (issue 20) must be exactly what publicsuffixlist parses itself.
    from publicsuffixlist import PublicSuffixList

    from mecsa import orgdomain

    parsed = PublicSuffixList()
    orgdomain._suffix_list.cache_clear()
    loaded = orgdomain._suffix_list()
    assert loaded._publicsuffix == parsed._publicsuffix
    assert loaded._maxlabel == parsed._maxlabel
    shipped = orgdomain.COMPILED_RULES.read_text(encoding="utf-8")
    assert shipped == orgdomain.compiled_rules_text(), "stale: run scripts/compile-psl"


def test_compiled_rules_load_without_parsing_the_list(monkeypatch: pytest.MonkeyPatch) -> None:
    import publicsuffixlist

    from mecsa import orgdomain

    def no_full_parse(self: Any, source: Any, *args: Any, **kwargs: Any) -> None:
        assert source is not None and not hasattr(source, "read")  # never the library's own file
        real(self, source, *args, **kwargs)

    real: Any = publicsuffixlist.PublicSuffixList._parse
    monkeypatch.setattr(publicsuffixlist.PublicSuffixList, "_parse", no_full_parse)
    orgdomain._suffix_list.cache_clear()
    try:
        assert organisational_domain("a.b.example.co.uk") == "example.co.uk"
    finally:
        orgdomain._suffix_list.cache_clear()


def test_compiled_rules_without_their_label_count_are_not_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A first line without `maxlabel` (the older format, or a damaged file) means the library's
    # own list is parsed: a wrong label count would make deep rules silently never match.
    from publicsuffixlist import PublicSuffixList

    from mecsa import orgdomain

    header, _, body = orgdomain.COMPILED_RULES.read_text(encoding="utf-8").partition("\n")
    stale = tmp_path / "psl-rules.txt"
    stale.write_text(header.partition(" maxlabel ")[0] + "\n" + body, encoding="utf-8")
    monkeypatch.setattr(orgdomain, "COMPILED_RULES", stale)
    parsed: list[Any] = []
    real: Any = PublicSuffixList._parse

    def noted(self: Any, source: Any, *args: Any, **kwargs: Any) -> None:
        parsed.append(source)
        real(self, source, *args, **kwargs)

    monkeypatch.setattr(PublicSuffixList, "_parse", noted)
    orgdomain._suffix_list.cache_clear()
    try:
        loaded = orgdomain._suffix_list()
    finally:
        orgdomain._suffix_list.cache_clear()
    assert any(hasattr(source, "read") for source in parsed)  # the library's own file
    assert loaded._maxlabel == PublicSuffixList()._maxlabel
