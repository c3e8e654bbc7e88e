"""The one escaping function for text that came from the network (DNS, SMTP, certificates, mail).

Such text must never drive the terminal or reorder what a reader sees. Escaped, as Python writes
them (`\\x1b`, `\\x9b`, `\\u202e`), so that the reader sees that they were there:

- C0 controls (U+0000-U+001F, among them ESC, which starts CSI `ESC [` and OSC `ESC ]` sequences:
  clear screen, window titles, OSC 8 hyperlinks), DEL (U+007F) and C1 controls (U+0080-U+009F,
  among them the 8-bit CSI U+009B and OSC U+009D): Unicode category Cc;
- format characters, among them the bidi embeddings and overrides U+202A-U+202E, the isolates
  U+2066-U+2069, the marks U+200E, U+200F and U+061C, zero-width characters and the BOM:
  category Cf;
- the line and paragraph separators U+2028, U+2029 (categories Zl, Zp), and lone surrogates (Cs),
  which a terminal cannot even be sent.

Every terminal renderer applies it to each line it prints, and the HTML reports to every value
they insert (after HTML escaping, which handles markup).
"""

from __future__ import annotations

import re
import unicodedata

_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _escaped(char: str) -> str:
    # As Python's repr writes it: \n, \t, \x1b, \x9b, \u202e, \U000e0001.
    return repr(char)[1:-1]


def escape_untrusted(text: str, *, keep: str = "") -> str:
    """`text` with every control, format and separator character escaped; `keep` lists exceptions.

    `keep="\\n"` keeps the newlines of a multi-line value where the output format makes them
    harmless (an HTML `<pre>`); a terminal line passes nothing, so a newline cannot forge a line.
    """
    if text.isascii() and text.isprintable():
        return text  # the common case, fast: printable ASCII needs nothing
    return "".join(
        _escaped(c) if c not in keep and unicodedata.category(c) in _ESCAPED_CATEGORIES else c for c in text
    )


def html_value(value: object) -> object:
    """jinja2's `finalize` for the HTML reports: each inserted string escaped here, before HTML escaping.

    Autoescape handles markup; a U+202E in a DNS record would still reorder what the reader sees,
    and an ESC would reach a terminal that shows the file. Line ends (CR, LF) and tabs stay: in the
    reports' <pre> blocks they are layout. Markup (the reports' own constants) passes unchanged.
    """
    import markupsafe

    if isinstance(value, str) and not isinstance(value, markupsafe.Markup):
        return escape_untrusted(value, keep="\n\r\t")
    return value


def json_text(document: str) -> str:
    """JSON text (from `json.dumps(..., ensure_ascii=False)`) with those characters as \\u escapes.

    json.dumps escapes only U+0000-U+001F; DEL, the C1 controls (8-bit CSI) and bidi characters
    would reach the terminal raw. Outside strings JSON text is ASCII, so every such character is
    inside a string, where `\\uXXXX` (a surrogate pair above U+FFFF) means the same character:
    the parsed document is unchanged.
    """
    if document.isascii() and "\x7f" not in document:
        return document  # DEL is ASCII but a control: json.dumps leaves it raw
    # Only DEL and non-ASCII characters can need it (json.dumps escaped the C0 controls inside
    # strings; the others are indentation): look at those alone, not at every character of a
    # 100 kB document (~8 ms of a cold `mecsa assess --json`, issue 20).
    return _BEYOND_ASCII.sub(_json_escape, document)


# The complement of U+0000-U+007E is U+007F-U+10FFFF; written as a range up to U+10FFFF the class
# took 5 ms to compile (sre builds a table for the whole range), as a negated class 0.1 ms.
_BEYOND_ASCII = re.compile("[^\x00-\x7e]")


def _json_escape(match: re.Match[str]) -> str:
    c = match.group()
    if unicodedata.category(c) not in _ESCAPED_CATEGORIES:
        return c
    if ord(c) > 0xFFFF:
        high, low = divmod(ord(c) - 0x10000, 0x400)
        return f"\\u{0xD800 + high:04x}\\u{0xDC00 + low:04x}"
    return f"\\u{ord(c):04x}"


def escape_lines(lines: list[str] | tuple[str, ...]) -> str:
    """Lines for a terminal, each escaped on its own (an embedded newline cannot start a line)."""
    return "\n".join(escape_untrusted(line) for line in lines)
