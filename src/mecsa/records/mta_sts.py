"""MTA-STS (RFC 8461): the `_mta-sts` TXT record, the policy file, and MX pattern matching.

The TXT record (RFC 8461 §3.1):

    sts-text-record = sts-version 1*(sts-sep sts-field) [sts-sep]
    sts-version     = %s"v=STSv1"
    sts-sep         = *WSP ";" *WSP
    sts-field       = sts-id / sts-extension
    sts-id          = %s"id=" 1*32(ALPHA / DIGIT)
    sts-extension   = sts-ext-name "=" sts-ext-value
    sts-ext-name    = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
    sts-ext-value   = 1*(%x21-3A / %x3C / %x3E-7E)

The policy file (RFC 8461 §3.2): `key: value` lines ended by LF or CRLF; `version: STSv1`,
`mode: enforce|testing|none` and `max_age:` (1-10 digits, at most 31557600) once each; `mx:` one
or more times (`["*."] Domain`); names and values are case-sensitive; unknown keys are ignored.

Stricter than a sender on purpose: a duplicated `version`, `mode` or `max_age` is an error here,
although RFC 8461 §3.2 lets senders honour the first and ignore the rest, because an ambiguous
policy is a defect its owner should fix. A blank line is only a note: the grammar has no room
for one, yet no sender is known to reject it.

Written by hand: no maintained Python library parses MTA-STS strictly. Parsers never raise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

TXT_VERSION = "v=STSv1"
POLICY_VERSION = "STSv1"
MAX_AGE_LIMIT = 31_557_600
_WSP = " \t"
_ID = re.compile(r"[A-Za-z0-9]{1,32}")
_EXT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}")
_TXT_EXT_VALUE = re.compile(r"[\x21-\x3a\x3c\x3e-\x7e]+")
# sts-policy-ext-value: VCHAR or non-ASCII, with inner white space allowed.
_POLICY_EXT_VALUE = re.compile(r"[^\x00-\x20\x7f](?:[^\x00-\x08\x0a-\x1f\x7f]*[^\x00-\x20\x7f])?")
# RFC 5321 Domain: sub-domain *("." sub-domain); sub-domain = Let-dig [Ldh-str].
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?")
_MAX_AGE = re.compile(r"[0-9]{1,10}")


# ---------------------------------------------------------------------------------------------
# The _mta-sts TXT record


@dataclass(frozen=True, slots=True)
class StsRecord:
    """A parsed `_mta-sts` TXT record; usable only when `valid` (no errors, one id)."""

    text: str
    id: str | None
    extensions: tuple[tuple[str, str], ...]
    errors: tuple[str, ...]

    @property
    def valid(self) -> bool:
        return not self.errors and self.id is not None


def looks_like_sts_record(text: str) -> bool:
    """True for TXT text that claims to be an MTA-STS record.

    RFC 8461 §3.1 has senders discard records not starting with `v=STSv1;`; a record that is
    exactly `v=STSv1` (no fields) or has white space before the `;` is kept here so that it is
    reported as broken rather than silently ignored.
    """
    if not text.startswith(TXT_VERSION):
        return False
    rest = text[len(TXT_VERSION) :]
    return not rest or rest[0] in ";" + _WSP


def parse_sts_record(text: str) -> StsRecord:
    """Parse one `_mta-sts` TXT record (its strings already joined)."""
    errors: list[str] = []
    ident: str | None = None
    extensions: list[tuple[str, str]] = []
    saw_id = False
    fields = [f.strip(_WSP) for f in text.split(";")]
    if not text.startswith(TXT_VERSION) or fields[0] != TXT_VERSION:
        errors.append(f"the record must start with {TXT_VERSION!r} (case-sensitive, no leading space)")
    body = fields[1:]
    if body and body[-1] == "":
        body = body[:-1]  # the optional trailing ";"
    if not body:
        errors.append("the record has no fields after the version: id= is required")
    for field in body:
        if not field:
            errors.append("empty field (stray ';')")
            continue
        name, eq, value = field.partition("=")
        if not eq:
            errors.append(f"field {field!r} is not name=value")
        elif name == "id":
            if saw_id:
                errors.append("more than one id= field")
            elif not _ID.fullmatch(value):
                errors.append(f"bad id {value!r}: 1 to 32 letters and digits (RFC 8461 §3.1)")
            else:
                ident = value
            saw_id = True
        elif name.lower() == "id":
            errors.append(f"field {name!r}: field names are case-sensitive, write 'id'")
        elif name == "v":
            errors.append("the version field v= appears more than once")
        elif not _EXT_NAME.fullmatch(name):
            errors.append(f"bad field name {name!r}")
        elif not _TXT_EXT_VALUE.fullmatch(value):
            errors.append(f"bad value for field {name!r}: {value!r}")
        else:
            extensions.append((name, value))
    if not saw_id:
        errors.append("no id= field (required, RFC 8461 §3.1)")
    return StsRecord(text, ident, tuple(extensions), tuple(errors))


# ---------------------------------------------------------------------------------------------
# The policy file


class StsMode(StrEnum):
    ENFORCE = "enforce"
    TESTING = "testing"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class MxPattern:
    """One `mx:` value: a host name, or `*.` plus a domain meaning exactly one more label."""

    text: str

    @property
    def wildcard(self) -> bool:
        return self.text.startswith("*.")

    def matches(self, host: str) -> bool:
        """RFC 8461 §4.1: case-insensitive; `*.example.com` covers `mx.example.com` only,
        not `example.com` nor `a.mx.example.com`. A trailing dot on the host is ignored."""
        name = host.lower().rstrip(".")
        pattern = self.text.lower()
        if not self.wildcard:
            return name == pattern
        first, dot, parent = name.partition(".")
        return bool(first) and bool(dot) and parent == pattern[2:]


@dataclass(frozen=True, slots=True)
class StsPolicy:
    """A policy that parsed without errors."""

    version: str
    mode: StsMode
    mx: tuple[MxPattern, ...]
    max_age: int
    extensions: tuple[tuple[str, str], ...] = ()

    def covering(self, host: str) -> MxPattern | None:
        """The first pattern that covers `host`, or None."""
        return next((p for p in self.mx if p.matches(host)), None)


@dataclass(frozen=True, slots=True)
class PolicyParse:
    """The outcome of parsing a policy file: `policy` is set only when there are no `errors`."""

    policy: StsPolicy | None
    errors: tuple[str, ...]
    notes: tuple[str, ...] = ()
    line_endings: str = "LF"


def parse_policy(text: str) -> PolicyParse:
    """Parse a policy file's text strictly (see the module docstring for what strict means)."""
    errors: list[str] = []
    notes: list[str] = []
    endings = _line_endings(text, errors)
    seen: dict[str, list[str]] = {}
    extensions: list[tuple[str, str]] = []
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the optional final line ending
    for number, line in enumerate(lines, 1):
        if line.strip(_WSP) == "":
            notes.append(f"line {number}: blank line (not allowed by the RFC 8461 §3.2 grammar)")
            continue
        key, colon, rest = line.partition(":")
        value = rest.strip(_WSP)
        if not colon:
            errors.append(f"line {number}: {line!r} is not 'key: value'")
        elif not _EXT_NAME.fullmatch(key):
            errors.append(f"line {number}: bad key {key!r} (no spaces before ':')")
        elif key in ("version", "mode", "max_age", "mx"):
            seen.setdefault(key, []).append(value)
        elif not _POLICY_EXT_VALUE.fullmatch(value):
            errors.append(f"line {number}: bad value for {key!r}: {value!r}")
        else:
            extensions.append((key, value))  # unknown keys are ignored (RFC 8461 §3.2)
    for key in ("version", "mode", "max_age"):
        if len(seen.get(key, [])) > 1:
            errors.append(f"{key!r} appears {len(seen[key])} times: it must appear once")
    version = _one(seen, "version", errors)
    if version is not None and version != POLICY_VERSION:
        errors.append(f"version must be {POLICY_VERSION!r}, not {version!r}")
    mode = _mode(_one(seen, "mode", errors), errors)
    max_age = _max_age(_one(seen, "max_age", errors), errors)
    patterns = tuple(MxPattern(p) for p in seen.get("mx", []))
    for pattern in patterns:
        problem = pattern_problem(pattern.text)
        if problem:
            errors.append(problem)
    if not patterns and mode is not StsMode.NONE:
        errors.append("no mx: line: at least one is required unless the mode is none")
    if errors or mode is None or max_age is None or version is None:
        return PolicyParse(None, tuple(errors), tuple(notes), endings)
    policy = StsPolicy(version, mode, patterns, max_age, tuple(extensions))
    return PolicyParse(policy, (), tuple(notes), endings)


def pattern_problem(text: str) -> str | None:
    """Why `text` is not a valid `mx:` value (`["*."] Domain`), or None when it is."""
    domain = text[2:] if text.startswith("*.") else text
    if not domain:
        return f"mx {text!r}: empty name"
    if "*" in domain:
        return f"mx {text!r}: a wildcard may only be a whole left-most label '*.' (RFC 8461 §4.1)"
    if len(domain) > 253:
        return f"mx {text!r}: name longer than 253 characters"
    if not all(_LABEL.fullmatch(label) for label in domain.split(".")):
        return f"mx {text!r}: not a valid host name (letters, digits and inner hyphens, no final dot)"
    return None


def _line_endings(text: str, errors: list[str]) -> str:
    crlf = text.count("\r\n")
    lf = text.count("\n") - crlf
    if text.count("\r") != crlf:
        errors.append("a bare CR: lines must end with LF or CRLF")
    if crlf and lf:
        return "mixed"
    return "CRLF" if crlf else "LF"


def _one(seen: dict[str, list[str]], key: str, errors: list[str]) -> str | None:
    values = seen.get(key)
    if not values:
        errors.append(f"no {key!r} line (required)")
        return None
    return values[0] if len(values) == 1 else None


def _mode(value: str | None, errors: list[str]) -> StsMode | None:
    if value is None:
        return None
    try:
        return StsMode(value)
    except ValueError:
        errors.append(f"mode must be enforce, testing or none (lower case), not {value!r}")
        return None


def _max_age(value: str | None, errors: list[str]) -> int | None:
    if value is None:
        return None
    if not _MAX_AGE.fullmatch(value):
        errors.append(f"max_age must be 1 to 10 digits of seconds, not {value!r}")
        return None
    if int(value) > MAX_AGE_LIMIT:
        errors.append(f"max_age {value} exceeds the maximum of {MAX_AGE_LIMIT} s (RFC 8461 §3.2)")
        return None
    return int(value)
