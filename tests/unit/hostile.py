"""Hostile text as a server could send it, and the check that none of it reaches the output raw."""

from __future__ import annotations

import unicodedata

# Clear screen, a window title (OSC 0), an OSC 8 hyperlink, an 8-bit CSI, DEL, a right-to-left
# override, an isolate pair, a zero-width space and a line separator.
HOSTILE = (
    "\x1b[2J\x1b]0;pwned\x07\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\"
    "\x9b31m\x7f\u202eevil\u2066x\u2069\u200b\u2028end"
)
# What each raw piece must turn into: the reader still sees that it was there.
ESCAPED = (
    "\\x1b[2J",
    "\\x1b]0;pwned\\x07",
    "\\x9b31m",
    "\\x7f",
    "\\u202eevil",
    "\\u2066x\\u2069",
    "\\u2028end",
)

_RAW = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def zone_text_string(text: str) -> str:
    """`text` as one quoted zone-file character-string: every octet outside printable ASCII as \\DDD."""
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        out.append(char if 0x20 < byte < 0x7F and char not in '"\\;()' else f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def raw_controls(output: str, *, allow: str = "\n") -> list[str]:
    """The control, format and separator characters in `output` (newlines allowed by default)."""
    return [f"U+{ord(c):04X}" for c in output if c not in allow and unicodedata.category(c) in _RAW]


def assert_escaped(output: str, *, allow: str = "\n") -> None:
    """No raw control character got through, and the hostile text is shown escaped."""
    assert raw_controls(output, allow=allow) == []
    assert any(piece in output for piece in ESCAPED), output
