"""Names parsed and printed once per process, not once per question (issue 20).

A bulk scan parses the same names and prints the same names over and over: every question's
name goes from text to `dns.name.Name` and back, and every reply repeats its zone's names. dnspython
does each of these in Python, label by label. A `Name` is immutable, so one object can serve every
caller; each cache is keyed by exactly what the result is a function of (the text as given, or the
label octets with their case), never by a `Name`, whose equality ignores case. Each cache is bounded
(cleared when full), so memory stays flat over a long scan.
"""

from __future__ import annotations

import re

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
        # As unpickling builds it: the labels set and validated as Name() validates them, without
        # its per-label conversion and immutability context (the labels are bytes already).
        name = dns.name.Name.__new__(dns.name.Name)
        name.__setstate__({"labels": labels})  # type: ignore[no-untyped-call]
        _remember(_by_labels, labels, name)  # type: ignore[arg-type]
    return name


# Text that dnspython reads octet by octet with no effect but splitting at dots: plain ASCII, no
# escapes, and neither "@" nor "." alone (which it reads specially).
_PLAIN_TEXT = re.compile(r"[\x21-\x2d\x2f-\x5b\x5d-\x7e]+(?:\.[\x21-\x2d\x2f-\x5b\x5d-\x7e]+)*\.?")
# Label octets that dnspython prints as they are (no escape): printable ASCII but '"().;\@$'.
_PLAIN_LABEL = re.compile(rb"[\x21\x23\x25-\x27\x2a-\x2d\x2f-\x3a\x3c-\x3f\x41-\x5b\x5d-\x7e]*")


def name_from_text(text: str) -> dns.name.Name:
    """`dns.name.from_text(text)` (absolute; non-ASCII text by dnspython's IDNA codec); raises as it does."""
    name = _by_text.get(text)
    if name is None:
        if text != "@" and _PLAIN_TEXT.fullmatch(text):
            # What from_text's loop makes of such text: the labels between the dots, and the root
            # label at the end (a final dot, or the origin's). Name() validates the lengths.
            labels = text.encode("ascii").split(b".")
            if labels[-1]:
                labels.append(b"")
            name = dns.name.Name(labels)
        else:
            name = dns.name.from_text(text)
        _remember(_by_text, text, name)  # type: ignore[arg-type]
    return name


def name_text(name: dns.name.Name, omit_final_dot: bool = False) -> str:
    """`name.to_text(omit_final_dot)`."""
    key = (name.labels, omit_final_dot)
    text = _texts.get(key)
    if text is None:
        labels = name.labels
        if omit_final_dot and labels and labels[-1] == b"":
            labels = labels[:-1]
        if labels and name.labels != (b"",) and all(_PLAIN_LABEL.fullmatch(label) for label in labels):
            text = ".".join(label.decode("ascii") for label in labels)  # nothing to escape
        else:
            text = name.to_text(omit_final_dot=omit_final_dot)
        _remember(_texts, key, text)  # type: ignore[arg-type]
    return text


def forget() -> None:
    """Empty the caches (benchmarks/bench_warm.py: an assessment that reuses nothing of the last)."""
    _by_labels.clear()
    _by_text.clear()
    _texts.clear()
