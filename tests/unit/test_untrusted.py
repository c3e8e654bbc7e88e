"""The one escaping function for untrusted text."""

from __future__ import annotations

import json

import pytest

from mecsa.report.untrusted import escape_lines, escape_untrusted, json_text
from tests.unit.hostile import ESCAPED, HOSTILE, raw_controls


def test_every_hostile_piece_is_escaped_and_visible() -> None:
    out = escape_untrusted(HOSTILE)
    assert raw_controls(out, allow="") == []
    for piece in ESCAPED:
        assert piece in out


@pytest.mark.parametrize(
    ("char", "shown"),
    [
        ("\x00", "\\x00"), ("\x1b", "\\x1b"), ("\x7f", "\\x7f"), ("\x85", "\\x85"), ("\x9b", "\\x9b"),
        ("\x9d", "\\x9d"), ("\u061c", "\\u061c"), ("\u200e", "\\u200e"), ("\u200f", "\\u200f"),
        ("\u202a", "\\u202a"), ("\u202b", "\\u202b"), ("\u202c", "\\u202c"), ("\u202d", "\\u202d"),
        ("\u202e", "\\u202e"), ("\u2066", "\\u2066"), ("\u2067", "\\u2067"), ("\u2068", "\\u2068"),
        ("\u2069", "\\u2069"), ("\ufeff", "\\ufeff"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029"),
        ("\ud800", "\\ud800"), ("\U000e0001", "\\U000e0001"), ("\n", "\\n"), ("\t", "\\t"),
    ],
)  # fmt: skip
def test_each_control_format_and_separator_character(char: str, shown: str) -> None:
    assert escape_untrusted(f"a{char}b") == f"a{shown}b"


@pytest.mark.parametrize(
    "text", ["plain ascii", "mx1.example.test → mx2", "bücher.example", "日本語", "a ~ b"]
)
def test_printable_text_is_unchanged(text: str) -> None:
    assert escape_untrusted(text) == text


def test_keep_spares_only_the_named_characters() -> None:
    assert escape_untrusted("a\nb\tc\x1b", keep="\n\t") == "a\nb\tc\\x1b"


def test_escape_lines_never_lets_a_value_start_a_line() -> None:
    assert (
        escape_lines(["result: fail", "reason: x\nresult: pass"]) == "result: fail\nreason: x\\nresult: pass"
    )


def test_json_text_escapes_inside_strings_and_keeps_the_data() -> None:
    data = {"banner": HOSTILE, "idn": "bücher → 日本", "tag": "\U000e0001"}
    text = json_text(json.dumps(data, indent=2, ensure_ascii=False))
    assert raw_controls(text) == []
    assert text.startswith('{\n  "banner": "')
    assert "bücher → 日本" in text and "\\u202e" in text and "\\udb40\\udc01" in text
    assert json.loads(text) == data


def test_json_text_escapes_del_in_an_ascii_document() -> None:
    assert json_text(json.dumps({"a": "x\x7fy"})) == '{"a": "x\\u007fy"}'


def test_json_text_escapes_every_such_character_and_only_those() -> None:
    import json
    import unicodedata

    from mecsa.report.untrusted import json_text

    chars = [chr(c) for c in (*range(0x7F, 0x3000), *range(0xD800, 0xE000, 0x7F), 0xFEFF, 0x1F600, 0xE0001)]
    # "x" between: two lone surrogates side by side would read back as one pair
    document = json.dumps({"v": "x".join(chars), "k": "a\u202eb"}, ensure_ascii=False, indent=2)
    escaped = json_text(document)
    assert json.loads(escaped) == json.loads(document)  # the same document
    harmful = {"Cc", "Cf", "Cs", "Zl", "Zp"}
    assert not [c for c in escaped if ord(c) > 0x7E and unicodedata.category(c) in harmful]
    kept = {c for c in escaped if ord(c) > 0x7E}
    assert kept == {c for c in chars if unicodedata.category(c) not in harmful}  # nothing else touched
    assert "\\u202e" in escaped and "\\udb40\\udc01" in escaped and "\\u007f" in escaped
