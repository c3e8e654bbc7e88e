"""A pure parser for SPF records (RFC 7208 §4.5, §4.6.1, §5, §6, §7.1 ABNF): text in, typed tree out.

Hand-written because no maintained library exposes a typed SPF tree with error positions
(pyspf parses and evaluates in one step and stops at the first match). Every syntax rule
here cites the ABNF it enforces; a record with any syntax error anywhere is rejected as a
whole, because RFC 7208 §4.6 requires the permerror even when an earlier term would match.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace
from enum import StrEnum

VERSION = "v=spf1"
# Mechanisms that make a DNS query and so count against the limit of 10 (RFC 7208 §4.6.4).
LOOKUP_MECHANISMS = frozenset({"include", "a", "mx", "ptr", "exists"})
MECHANISM_NAMES = ("all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists")
MACRO_LETTERS = frozenset("slodiphv")
EXPLANATION_ONLY_LETTERS = frozenset("crt")
DELIMITERS = frozenset(".-+,/_=")

_MODIFIER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9\-_.]*")
_MECHANISM = re.compile(r"(all|include|a|mx|ptr|ip4|ip6|exists)(?=$|[:/])", re.IGNORECASE)
_TOPLABEL = re.compile(r"(?:[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*|[A-Za-z0-9]+-[A-Za-z0-9-]*[A-Za-z0-9])")
_DOMAIN_END = re.compile(r"\.(" + _TOPLABEL.pattern + r")\.?$")
_QNUM = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9][0-9]|[0-9])"
_IP4_NETWORK = re.compile(rf"{_QNUM}(?:\.{_QNUM}){{3}}")
_CIDR_NUMBER = re.compile(r"0|[1-9][0-9]*")
_DUAL_CIDR = re.compile(r"(?P<domain>.*?)(?:/(?P<v4>[0-9]+))?(?://(?P<v6>[0-9]+))?")


class SpfSyntaxError(ValueError):
    """A record (or macro string) that does not follow the ABNF; `position` is a 0-based offset."""

    def __init__(self, message: str, position: int, term: str | None = None) -> None:
        where = f" at position {position}" + (f" (term {term!r})" if term else "")
        super().__init__(message + where)
        self.reason = message
        self.position = position
        self.term = term


class Qualifier(StrEnum):
    """A directive's qualifier and the result it gives on a match (RFC 7208 §4.6.2)."""

    PASS = "+"
    FAIL = "-"
    SOFTFAIL = "~"
    NEUTRAL = "?"

    @property
    def result_name(self) -> str:
        return {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}[self.value]


@dataclass(frozen=True, slots=True)
class MacroLiteral:
    """Literal text, including the escapes %% (→ "%"), %_ (→ " ") and %- (→ "%20")."""

    text: str
    escape: bool = False


@dataclass(frozen=True, slots=True)
class MacroExpand:
    """`%{letter digits r delimiters}` (RFC 7208 §7.1). An upper-case letter means URL-escape the value."""

    letter: str
    url_escape: bool
    digits: int | None
    reverse: bool
    delimiters: str


MacroPart = MacroLiteral | MacroExpand


@dataclass(frozen=True, slots=True)
class MacroString:
    """A parsed macro-string: literal and macro parts in order, and the source text."""

    parts: tuple[MacroPart, ...]
    text: str

    @property
    def letters(self) -> frozenset[str]:
        """The macro letters used (lower case): whether expansion needs the sender, IP or a PTR."""
        return frozenset(p.letter for p in self.parts if isinstance(p, MacroExpand))


@dataclass(frozen=True, slots=True)
class Mechanism:
    """One directive: qualifier, mechanism kind and its arguments."""

    qualifier: Qualifier
    kind: str
    domain: MacroString | None = None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    cidr4: int = 32
    cidr6: int = 128
    text: str = ""
    position: int = 0

    @property
    def needs_lookup(self) -> bool:
        return self.kind in LOOKUP_MECHANISMS


@dataclass(frozen=True, slots=True)
class Modifier:
    """A `name=value` term. `redirect` and `exp` are known; any other name is tolerated (RFC 7208 §6)."""

    name: str
    value: MacroString
    text: str = ""
    position: int = 0


@dataclass(frozen=True, slots=True)
class SpfRecord:
    """A parsed record: directives in order, the redirect and exp modifiers, and unknown modifiers."""

    text: str
    mechanisms: tuple[Mechanism, ...]
    redirect: Modifier | None = None
    explanation: Modifier | None = None
    unknown_modifiers: tuple[Modifier, ...] = ()

    @property
    def all_mechanism(self) -> Mechanism | None:
        """The first `all`: later terms are never tested, and its presence disables redirect (§5.1)."""
        return next((m for m in self.mechanisms if m.kind == "all"), None)

    @property
    def effective_mechanisms(self) -> tuple[Mechanism, ...]:
        """The mechanisms that can be tested: those up to and including the first `all`."""
        out: list[Mechanism] = []
        for mech in self.mechanisms:
            out.append(mech)
            if mech.kind == "all":
                break
        return tuple(out)

    @property
    def effective_redirect(self) -> Modifier | None:
        """The redirect that applies: none when an `all` mechanism is present (RFC 7208 §5.1)."""
        return None if self.all_mechanism is not None else self.redirect


def is_spf_record(text: str) -> bool:
    """True for a TXT string that is an SPF record: "v=spf1" then a space or the end (§4.5), any case."""
    return text[:6].lower() == VERSION and (len(text) == 6 or text[6] == " ")


def parse_record(text: str) -> SpfRecord:
    """Parse one SPF record; raise `SpfSyntaxError` with the position of the first error."""
    if not is_spf_record(text):
        raise SpfSyntaxError("the record does not start with 'v=spf1'", 0)
    for index, char in enumerate(text):
        if not 0x20 <= ord(char) <= 0x7E:
            # RFC 7208 §3.1 (7-bit ASCII) and §4.6.1 (terms are separated by spaces only).
            raise SpfSyntaxError(f"character {char!r} is not allowed in an SPF record", index)
    mechanisms: list[Mechanism] = []
    modifiers: list[Modifier] = []
    position = len(VERSION)
    for term in text[len(VERSION) :].split(" "):
        if term:
            parsed = _parse_term(term, position)
            if isinstance(parsed, Mechanism):
                mechanisms.append(parsed)
            else:
                modifiers.append(parsed)
        position += len(term) + 1
    redirect = _single(modifiers, "redirect")
    explanation = _single(modifiers, "exp")
    unknown = tuple(m for m in modifiers if m.name not in ("redirect", "exp"))
    return SpfRecord(text, tuple(mechanisms), redirect, explanation, unknown)


def _single(modifiers: list[Modifier], name: str) -> Modifier | None:
    found = [m for m in modifiers if m.name == name]
    if len(found) > 1:
        raise SpfSyntaxError(f"the {name}= modifier appears more than once (RFC 7208 §6)", found[1].position)
    return found[0] if found else None


def _parse_term(term: str, position: int) -> Mechanism | Modifier:
    name = _MODIFIER_NAME.match(term)
    if name and term[name.end() : name.end() + 1] == "=":
        return _parse_modifier(term, name.group().lower(), position)
    qualifier = Qualifier.PASS
    offset = 0
    if term[0] in "+-~?":
        qualifier, offset = Qualifier(term[0]), 1
    match = _MECHANISM.match(term, offset)
    if not match:
        raise SpfSyntaxError("unknown mechanism or malformed modifier", position, term)
    kind = match.group(1).lower()
    rest = term[match.end() :]
    start = position + match.end()
    try:
        return _parse_mechanism(qualifier, kind, rest, term, position, start)
    except SpfSyntaxError as exc:
        if exc.term is None:
            raise SpfSyntaxError(exc.reason, exc.position, term) from None
        raise


def _parse_modifier(term: str, name: str, position: int) -> Modifier:
    value_text = term[len(name) + 1 :]
    value_position = position + len(name) + 1
    try:
        if name in ("redirect", "exp"):
            value = parse_domain_spec(value_text, value_position)
        else:
            value = parse_macro_string(value_text, value_position)
    except SpfSyntaxError as exc:
        raise SpfSyntaxError(exc.reason, exc.position, term) from None
    return Modifier(name, value, term, position)


def _parse_mechanism(
    qualifier: Qualifier, kind: str, rest: str, term: str, position: int, start: int
) -> Mechanism:
    base = Mechanism(qualifier, kind, text=term, position=position)
    if kind == "all":
        if rest:
            raise SpfSyntaxError("'all' takes no argument", start)
        return base
    if kind in ("include", "exists"):
        if not rest.startswith(":"):
            raise SpfSyntaxError(f"'{kind}' needs ':' and a domain", start)
        return replace(base, domain=parse_domain_spec(rest[1:], start + 1))
    if kind == "ptr":
        if not rest:
            return base
        if not rest.startswith(":"):
            raise SpfSyntaxError("'ptr' takes only ':' and a domain, no CIDR length", start)
        return replace(base, domain=parse_domain_spec(rest[1:], start + 1))
    if kind in ("a", "mx"):
        return _parse_a_mx(base, rest, start)
    return _parse_ip(base, rest, start)


def _parse_a_mx(base: Mechanism, rest: str, start: int) -> Mechanism:
    # The ABNF lets '/' appear inside a domain-spec, so the dual-cidr-length is the longest valid tail.
    if rest.startswith(":"):
        match = _DUAL_CIDR.fullmatch(rest, 1)
        assert match is not None  # the pattern matches any string
        domain = parse_domain_spec(match.group("domain"), start + 1)
    else:
        match = _DUAL_CIDR.fullmatch(rest)
        assert match is not None
        if match.group("domain"):
            raise SpfSyntaxError("expected ':' domain or a CIDR length", start)
        domain = None
    cidr_start = start + match.start("v4") if match.group("v4") else start + max(match.start("v6"), 0)
    cidr4 = _cidr(match.group("v4"), 32, cidr_start) if match.group("v4") is not None else 32
    cidr6 = _cidr(match.group("v6"), 128, cidr_start) if match.group("v6") is not None else 128
    return replace(base, domain=domain, cidr4=cidr4, cidr6=cidr6)


def _parse_ip(base: Mechanism, rest: str, start: int) -> Mechanism:
    kind = base.kind
    if not rest.startswith(":"):
        raise SpfSyntaxError(f"'{kind}' needs ':' and a network", start)
    address, slash, length = rest[1:].partition("/")
    limit = 32 if kind == "ip4" else 128
    cidr = _cidr(length, limit, start + 2 + len(address)) if slash else limit
    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    if kind == "ip4":
        if not _IP4_NETWORK.fullmatch(address):
            raise SpfSyntaxError(f"{address!r} is not a dotted-quad IPv4 address", start + 1)
        network = ipaddress.IPv4Network(f"{address}/{cidr}", strict=False)
    else:
        if "%" in address:  # ipaddress would take it as a scope id
            raise SpfSyntaxError(f"{address!r} is not an IPv6 address", start + 1)
        try:
            network = ipaddress.IPv6Network(f"{address}/{cidr}", strict=False)
        except ValueError:
            raise SpfSyntaxError(f"{address!r} is not an IPv6 address", start + 1) from None
    if kind == "ip4":
        return replace(base, network=network, cidr4=cidr)
    return replace(base, network=network, cidr6=cidr)


def _cidr(text: str, limit: int, position: int) -> int:
    if not _CIDR_NUMBER.fullmatch(text) or int(text) > limit:
        raise SpfSyntaxError(f"bad CIDR length {text!r} (0-{limit}, no leading zeros)", position)
    return int(text)


def parse_domain_spec(text: str, position: int = 0) -> MacroString:
    """A domain-spec: a macro-string that ends in a macro or in "." toplabel ["."] (RFC 7208 §7.1)."""
    if not text:
        raise SpfSyntaxError("empty domain", position)
    value = parse_macro_string(text, position)
    last = value.parts[-1]
    if isinstance(last, MacroExpand) or (isinstance(last, MacroLiteral) and last.escape):
        return value
    tail = "".join(p.text for p in value.parts[_last_macro(value) + 1 :] if isinstance(p, MacroLiteral))
    if not _DOMAIN_END.search(tail):
        raise SpfSyntaxError(
            f"{text!r} does not end in a valid top-level label (letters required, no leading '-')",
            position + len(text) - 1,
        )
    return value


def _last_macro(value: MacroString) -> int:
    for index in range(len(value.parts) - 1, -1, -1):
        if isinstance(value.parts[index], MacroExpand):
            return index
    return -1


def parse_macro_string(text: str, position: int = 0, *, explanation: bool = False) -> MacroString:
    """Parse a macro-string, or with `explanation` an explain-string (c, r, t and spaces allowed)."""
    parts: list[MacroPart] = []
    literal: list[str] = []
    letters = MACRO_LETTERS | EXPLANATION_ONLY_LETTERS if explanation else MACRO_LETTERS
    index = 0

    def flush() -> None:
        if literal:
            parts.append(MacroLiteral("".join(literal)))
            literal.clear()

    while index < len(text):
        char = text[index]
        if char != "%":
            if not (0x21 <= ord(char) <= 0x7E or (explanation and char == " ")):
                raise SpfSyntaxError(f"character {char!r} is not allowed here", position + index)
            literal.append(char)
            index += 1
            continue
        follow = text[index + 1 : index + 2]
        if follow in ("%", "_", "-"):
            flush()
            parts.append(MacroLiteral({"%": "%", "_": " ", "-": "%20"}[follow], escape=True))
            index += 2
            continue
        if follow != "{":
            raise SpfSyntaxError("'%' must be followed by '{', '%', '_' or '-'", position + index)
        end = text.find("}", index)
        if end < 0:
            raise SpfSyntaxError("unterminated macro: missing '}'", position + index)
        flush()
        parts.append(_parse_macro(text[index + 2 : end], letters, position + index))
        index = end + 1
    flush()
    return MacroString(tuple(parts), text)


def _parse_macro(body: str, letters: frozenset[str], position: int) -> MacroExpand:
    if not body or body[0].lower() not in letters:
        raise SpfSyntaxError(f"unknown macro letter in %{{{body}}}", position)
    letter = body[0]
    rest = body[1:]
    digits_end = 0
    while digits_end < len(rest) and rest[digits_end].isdigit():
        digits_end += 1
    digits = int(rest[:digits_end]) if digits_end else None
    if digits == 0:
        raise SpfSyntaxError("a macro's digit transformer must not be zero (RFC 7208 §7.3)", position)
    rest = rest[digits_end:]
    reverse = rest[:1].lower() == "r"
    if reverse:
        rest = rest[1:]
    if any(c not in DELIMITERS for c in rest):
        raise SpfSyntaxError(f"bad delimiter in %{{{body}}}", position)
    return MacroExpand(letter.lower(), letter.isupper(), digits, reverse, rest)
