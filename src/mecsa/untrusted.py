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


def escape_lines(lines: list[str] | tuple[str, ...]) -> str:
    """Lines for a terminal, each escaped on its own (an embedded newline cannot start a line)."""
    return "\n".join(escape_untrusted(line) for line in lines)
