"""Names parsed and printed once per process, not once per question (issue 20).

A bulk scan parses the same names and prints the same names over and over: every question's
name goes from text to `dns.name.Name` and back, and every reply repeats its zone's names. dnspython
does each of these in Python, label by label. A `Name` is immutable, so one object can serve every
caller; each cache is keyed by exactly what the result is a function of (the text as given, or the
label octets with their case), never by a `Name`, whose equality ignores case. Each cache is bounded
(cleared when full), so memory stays flat over a long scan.
"""

from __future__ import annotations

import dns.name

MAX_CACHED = 4096
_by_labels: dict[tuple[bytes, ...], dns.name.Name] = {}
_by_text: dict[str, dns.name.Name] = {}
_texts: dict[tuple[tuple[bytes, ...], bool], str] = {}


def _remember(cache: dict[object, object], key: object, value: object) -> None:
    if len(cache) >= MAX_CACHED:
        cache.clear()
    cache[key] = value


def name_of_labels(labels: tuple[bytes, ...]) -> dns.name.Name:
    """`dns.name.Name(labels)`: built, and so validated, the first time."""
    name = _by_labels.get(labels)
    if name is None:
        name = dns.name.Name(labels)
        _remember(_by_labels, labels, name)  # type: ignore[arg-type]
    return name


def name_from_text(text: str) -> dns.name.Name:
    """`dns.name.from_text(text)` (absolute, IDNA 2003 as dnspython's default); raises as it does."""
    name = _by_text.get(text)
    if name is None:
        name = dns.name.from_text(text)
        _remember(_by_text, text, name)  # type: ignore[arg-type]
    return name


def name_text(name: dns.name.Name, omit_final_dot: bool = False) -> str:
    """`name.to_text(omit_final_dot)`."""
    key = (name.labels, omit_final_dot)
    text = _texts.get(key)
    if text is None:
        text = name.to_text(omit_final_dot=omit_final_dot)
        _remember(_texts, key, text)  # type: ignore[arg-type]
    return text


def forget() -> None:
    """Empty the caches (benchmarks/bench_warm.py: an assessment that reuses nothing of the last)."""
    _by_labels.clear()
    _by_text.clear()
    _texts.clear()
