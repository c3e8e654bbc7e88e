"""Organisational domains by the Public Suffix List (RFC 7489 §3.2) and alignment by it (§3.1).

The organisational domain is the public suffix plus one label, found with `publicsuffixlist`
(the full list, ICANN and private sections, as DMARC receivers used it). A name that is itself
a public suffix is its own organisational domain. Unknown TLDs fall under the list's implicit
`*` rule: `test` is a public suffix, so the lab's `mail.example.test` belongs to `example.test`.

This is RFC 7489's rule (profile mecsa-st, `--dmarc-discovery psl`). RFC 9989 replaced it with a
DNS tree walk (§4.10.2), which needs DNS and lives in `mecsa.observe.dmarc`.
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path
from typing import Any

_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")


class NotADomainError(ValueError):
    """The text is not a DNS domain name (an address, an empty label, spaces...)."""


# The list's rules as publicsuffixlist parses them (IDN forms included), one a line. The first
# line holds the SHA-256 of the library's own list file and the most labels a rule has (the
# parser's `_maxlabel`, 1.7 ms to count again). Made by `scripts/compile-psl`.
COMPILED_RULES = Path(__file__).with_name("psl-rules.txt")
_HEADER = "// publicsuffixlist sha256 "
_MAXLABEL = " maxlabel "


@functools.cache
def _compiled() -> tuple[bytes, int] | None:
    """The compiled rules (one a line, each line ended) and their label count; None when they
    cannot be used: missing, or made from a list file other than the installed library's."""
    from publicsuffixlist import PSLFILE

    try:
        header, _, body = COMPILED_RULES.read_bytes().partition(b"\n")
    except OSError:
        return None
    digest, _, maxlabel = header.decode("ascii", "replace").removeprefix(_HEADER).partition(_MAXLABEL)
    if digest != hashlib.sha256(Path(PSLFILE).read_bytes()).hexdigest() or not maxlabel.isdigit():
        return None
    return body, int(maxlabel)


@functools.cache
def _suffix_list() -> Any:
    """publicsuffixlist's object with the whole list, loaded once per process.

    Parsing the library's list costs 60-130 ms of CPU (IDN encoding of every rule): issue 20.
    The compiled rules give the same object in a few ms; when the library's list file is not
    the one they were made from (another version installed), its own list is parsed instead.
    """
    from publicsuffixlist import PublicSuffixList

    compiled = _compiled()
    if compiled is None:
        return PublicSuffixList()
    body, maxlabel = compiled
    return _with_rules(body.decode("utf-8").rstrip("\n").split("\n"), maxlabel)


@functools.cache
def _suffix_list_for(tld: str) -> Any:
    """An object holding only the rules that end in the label `tld`, loaded once per label.

    A lookup of a name consults only rules made of the name's own labels (each, its wildcard and
    its exception), so for the names under `tld` this answers as the whole list does (a test
    compares them): the cold CLI, which asks about one domain, reads the few rules of its TLD
    instead of splitting and hashing all ~11,000 (~3 ms, issue 20).
    """
    compiled = _compiled()
    if compiled is None:
        return _suffix_list()
    body, maxlabel = compiled
    return _with_rules(_rules_ending_in(b"\n" + body, tld.encode("utf-8")), maxlabel)


def _rules_ending_in(lines: bytes, tld: bytes) -> list[str]:
    """The rules of `lines` (each line begun and ended by a newline) whose last label is `tld`."""
    found = []
    for tail in (b"\n" + tld + b"\n", b"." + tld + b"\n"):  # the TLD itself; the rules below it
        at = lines.find(tail)
        while at >= 0:
            start = lines.rfind(b"\n", 0, at + 1) + 1
            found.append(lines[start : at + len(tail) - 1].decode("utf-8"))
            at = lines.find(tail, at + len(tail) - 1)
    return found


def _with_rules(rules: list[str], maxlabel: int) -> Any:
    from publicsuffixlist import PublicSuffixList

    psl = PublicSuffixList("", accept_encoded_idn=False)
    if isinstance(getattr(psl, "_publicsuffix", None), frozenset) and isinstance(
        getattr(psl, "_maxlabel", None), int
    ):
        # The parser's own result, set directly (its internals, checked above; a test compares).
        psl._publicsuffix = frozenset(rules)
        psl._maxlabel = maxlabel
        return psl
    return PublicSuffixList("\n".join(rules), accept_encoded_idn=False)  # the public way


def compiled_rules_text() -> str:
    """The text of `COMPILED_RULES` for the installed publicsuffixlist (see `scripts/compile-psl`)."""
    from publicsuffixlist import PSLFILE, PublicSuffixList

    digest = hashlib.sha256(Path(PSLFILE).read_bytes()).hexdigest()
    parsed = PublicSuffixList()
    rules = sorted(parsed._publicsuffix)
    return _HEADER + digest + _MAXLABEL + str(parsed._maxlabel) + "\n" + "\n".join(rules) + "\n"


def normalise(name: str) -> str:
    """Lower-case A-label form without the trailing dot; raises NotADomainError for non-domains.

    Only domains are taken: `a@example.com` is an address, and its domain must be split off by
    the caller (authheaders 0.16 turned `a@my-domain.example` into `my`: NOTES.md).
    """
    text = name.strip().lower().removesuffix(".")
    if not text.isascii():
        try:
            text = text.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise NotADomainError(f"{name!r} is not a domain name: {exc}") from None
    labels = text.split(".")
    if not text or len(text) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise NotADomainError(f"{name!r} is not a domain name")
    return text


def organisational_domain(name: str) -> str:
    """The organisational domain of `name` (RFC 7489 §3.2), e.g. x.y.example.co.uk -> example.co.uk."""
    domain = normalise(name)
    found: str | None = _suffix_list_for(domain.rpartition(".")[2]).privatesuffix(domain)
    # None: the name is itself a public suffix (or shorter); it is then its own organisational domain.
    return found if found is not None else domain


def aligned(a: str, b: str, *, strict: bool) -> bool:
    """DMARC identifier alignment of two domains (RFC 7489 §3.1): equal in strict mode, the same
    organisational domain in relaxed mode."""
    if strict:
        return normalise(a) == normalise(b)
    return organisational_domain(a) == organisational_domain(b)
