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
    _forget_loaded_lists()
    loaded = orgdomain._suffix_list()
    assert loaded._publicsuffix == parsed._publicsuffix
    assert loaded._maxlabel == parsed._maxlabel
    shipped = orgdomain.COMPILED_RULES.read_text(encoding="utf-8")
    assert shipped == orgdomain.compiled_rules_text(), "stale: run scripts/compile-psl"


def test_compiled_rules_load_without_parsing_the_list(monkeypatch: pytest.MonkeyPatch) -> None:
    import publicsuffixlist

    def no_full_parse(self: Any, source: Any, *args: Any, **kwargs: Any) -> None:
        assert source is not None and not hasattr(source, "read")  # never the library's own file
        real(self, source, *args, **kwargs)

    real: Any = publicsuffixlist.PublicSuffixList._parse
    monkeypatch.setattr(publicsuffixlist.PublicSuffixList, "_parse", no_full_parse)
    _forget_loaded_lists()
    try:
        assert organisational_domain("a.b.example.co.uk") == "example.co.uk"
    finally:
        _forget_loaded_lists()


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
    _forget_loaded_lists()
    try:
        loaded = orgdomain._suffix_list()
    finally:
        _forget_loaded_lists()
    assert any(hasattr(source, "read") for source in parsed)  # the library's own file
    assert loaded._maxlabel == PublicSuffixList()._maxlabel


def _forget_loaded_lists() -> None:
    from mecsa import orgdomain

    for cached in (orgdomain._compiled, orgdomain._suffix_list, orgdomain._suffix_list_for):
        cached.cache_clear()


def test_one_tlds_rules_answer_for_its_names_as_the_whole_list_does() -> None:
    # Every rule of the list, as a name, with a label above it and two: the exceptions, wildcards
    # and private rules of every TLD, looked up in that TLD's object and in the library's own.
    from publicsuffixlist import PublicSuffixList

    from mecsa import orgdomain

    whole = PublicSuffixList()  # the parse the compiled rules are (test above)
    _forget_loaded_lists()
    names = set()
    for rule in orgdomain._suffix_list()._publicsuffix:
        base = rule.removeprefix("!").removeprefix("*.")
        if base.isascii():  # names reach the lookup normalised to A-labels
            names.update({base, f"x.{base}", f"y.x.{base}"})
    assert len(names) > 20_000
    for name in sorted(names):
        tld = name.rpartition(".")[2]
        assert orgdomain._suffix_list_for(tld).privatesuffix(name) == whole.privatesuffix(name), name
    assert organisational_domain("a.b.example.co.uk") == "example.co.uk"


def test_a_tlds_object_holds_its_rules_only() -> None:
    from mecsa import orgdomain

    _forget_loaded_lists()
    whole = orgdomain._suffix_list()._publicsuffix
    for tld in ("uk", "ck", "jp", "com", "test", "xn--p1ai"):
        subset = orgdomain._suffix_list_for(tld)._publicsuffix
        assert subset == {r for r in whole if r == tld or r.endswith("." + tld)}, tld
    assert orgdomain._suffix_list_for("test")._publicsuffix == frozenset()


def test_rules_are_found_at_the_first_and_last_lines_and_by_whole_labels() -> None:
    from mecsa.orgdomain import _rules_ending_in

    lines = b"\nck\n*.ck\nfoo.xck\n!www.ck\nxck\nco.uk\nck\n"
    assert sorted(_rules_ending_in(lines, b"ck")) == ["!www.ck", "*.ck", "ck", "ck"]
    assert sorted(_rules_ending_in(lines, b"xck")) == ["foo.xck", "xck"]
    assert _rules_ending_in(lines, b"uk") == ["co.uk"]
    assert _rules_ending_in(lines, b"k") == []
