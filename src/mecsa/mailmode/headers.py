"""Authentication-Results (RFC 8601) and Received (RFC 5321 §4.4) fields, read for information only.

Nothing here is trusted or judged: these fields are written by whoever handled the message and
can be forged. They are parsed leniently, so that a report can show what others said.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

_RECEIVED_CLAUSE = re.compile(r"\b(from|by|via|with|id|for)\s+(\S+)", re.IGNORECASE)
_IP_LITERAL = re.compile(r"\[(?:IPv6:)?([0-9A-Fa-f:.]+)\]")
_METHOD = re.compile(r"([A-Za-z0-9_.-]+)(?:/[0-9]+)?\s*=\s*([A-Za-z0-9_-]+)")
_PROPERTY = re.compile(r"([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)?)\s*=\s*(\"[^\"]*\"|\S+)")


def _strip_comments(text: str) -> str:
    """Remove RFC 5322 comments (nested parentheses), keeping quoted strings intact."""
    out: list[str] = []
    depth, quoted, escaped = 0, False, False
    for char in text:
        if escaped:
            escaped = False
            if depth == 0:
                out.append(char)
            continue
        if char == "\\":
            escaped = True
            if depth == 0:
                out.append(char)
        elif char == '"' and depth == 0:
            quoted = not quoted
            out.append(char)
        elif char == "(" and not quoted:
            depth += 1
        elif char == ")" and not quoted and depth:
            depth -= 1
        elif depth == 0:
            out.append(char)
    return "".join(out)


def _split_semicolons(text: str) -> Iterator[str]:
    part: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == ";" and not quoted:
            yield "".join(part).strip()
            part = []
        else:
            part.append(char)
    yield "".join(part).strip()


@dataclass(frozen=True, slots=True)
class AuthResult:
    """One `method=result` of an Authentication-Results field, with its properties."""

    method: str
    result: str
    properties: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "result": self.result, "properties": dict(self.properties)}


@dataclass(frozen=True, slots=True)
class AuthenticationResults:
    """One Authentication-Results field: who wrote it and what it claims."""

    authserv_id: str
    results: tuple[AuthResult, ...]
    raw: str

    def to_json(self) -> dict[str, Any]:
        return {
            "authserv_id": self.authserv_id,
            "results": [r.to_json() for r in self.results],
            "raw": self.raw,
        }


def parse_authentication_results(value: str) -> AuthenticationResults:
    """Parse one field value leniently; unparsable parts are skipped, the raw text is kept."""
    unfolded = " ".join(value.split())
    parts = list(_split_semicolons(_strip_comments(unfolded)))
    authserv = parts[0].split()[0] if parts and parts[0].split() else ""
    results: list[AuthResult] = []
    for part in parts[1:]:
        match = _METHOD.match(part)
        if match is None:
            continue
        props = {
            k.lower(): v.strip('"')
            for k, v in _PROPERTY.findall(part[match.end() :])
            if k.lower() != match.group(1).lower()
        }
        results.append(AuthResult(match.group(1).lower(), match.group(2).lower(), props))
    return AuthenticationResults(authserv, tuple(results), unfolded)


@dataclass(frozen=True, slots=True)
class ReceivedHop:
    """One Received field: the clauses it names, the first address literal, and the date."""

    clauses: dict[str, str]
    ip: str | None
    date: str | None
    raw: str

    def to_json(self) -> dict[str, Any]:
        return {"clauses": dict(self.clauses), "ip": self.ip, "date": self.date, "raw": self.raw}


def parse_received(value: str) -> ReceivedHop:
    """Parse one Received field value; the clause names are lower-cased, the first of each kept."""
    unfolded = " ".join(value.split())
    body, _, date = unfolded.rpartition(";")
    if not body:
        body, date = unfolded, ""
    ip = _IP_LITERAL.search(body)
    clauses: dict[str, str] = {}
    for name, text in _RECEIVED_CLAUSE.findall(_strip_comments(body)):
        clauses.setdefault(name.lower(), text.strip("<>"))
    return ReceivedHop(clauses, ip.group(1) if ip else None, date.strip() or None, unfolded)


def read_headers(message: Message) -> tuple[tuple[AuthenticationResults, ...], tuple[ReceivedHop, ...]]:
    """All Authentication-Results fields and the Received chain (topmost, i.e. newest, first)."""
    auth = tuple(
        parse_authentication_results(str(v)) for v in message.get_all("Authentication-Results") or []
    )
    hops = tuple(parse_received(str(v)) for v in message.get_all("Received") or [])
    return auth, hops
