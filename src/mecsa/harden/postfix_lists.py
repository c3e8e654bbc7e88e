"""Postfix list values (the milter lists): items, `{ ... }` groups and `$name` references. Pure.

Postfix splits a list on commas and whitespace, except inside `{ ... }`, which groups one item
with its attributes, e.g. `{ inet:127.0.0.1:8891, connect_timeout=5s }` (postconf(5), "Milter
settings"; MILTER_README "Different settings for different Milter applications"). A `$name`,
`${name}` or `$(name)` item stands for the value of another parameter: the guide's
`non_smtpd_milters = $smtpd_milters` lists the same milters again, so duplicates must be judged
on the expanded list, while the value is written back with the reference kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_REFERENCE = re.compile(r"^\$(?:([A-Za-z0-9_]+)|\{([A-Za-z0-9_]+)\}|\(([A-Za-z0-9_]+)\))$")
_SEPARATORS = " \t\r\n,"


class ListSyntaxError(ValueError):
    """An unbalanced `{` or `}` in a list value: Postfix would refuse it too."""


def parse_items(value: str) -> list[str]:
    """The items of a list value; a `{ ... }` group is one item, normalised to `{ a, b }`."""
    items: list[str] = []
    index = 0
    while index < len(value):
        char = value[index]
        if char in _SEPARATORS:
            index += 1
            continue
        if char == "{":
            end = _group_end(value, index)
            items.append(_normalise_group(value[index + 1 : end]))
            index = end + 1
            continue
        if char == "}":
            raise ListSyntaxError(f"unbalanced '}}' in {value!r}")
        end = index
        while end < len(value) and value[end] not in _SEPARATORS and value[end] != "{":
            end += 1
        items.append(value[index:end])
        index = end
    return items


def _group_end(value: str, start: int) -> int:
    depth = 0
    for index in range(start, len(value)):
        if value[index] == "{":
            depth += 1
        elif value[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    raise ListSyntaxError(f"unbalanced '{{' in {value!r}")


def _normalise_group(inner: str) -> str:
    # the attributes stay as written (nested groups included); only the separators are made uniform
    parts = parse_items(inner)
    return "{ " + ", ".join(parts) + " }" if parts else "{ }"


def join_items(items: list[str]) -> str:
    """Items back as a value Postfix reads the same way."""
    return ", ".join(items)


def reference(item: str) -> str | None:
    """The parameter name an item refers to (`$smtpd_milters` -> `smtpd_milters`), or None."""
    match = _REFERENCE.match(item)
    if match is None:
        return None
    return next(group for group in match.groups() if group)


def expand(items: list[str], values: Mapping[str, str], _seen: frozenset[str] = frozenset()) -> list[str]:
    """`items` with every reference replaced by the items of the parameter it names, recursively.

    An unset parameter expands to nothing (the milter lists default to empty); a reference
    loop is cut where it closes.
    """
    out: list[str] = []
    for item in items:
        name = reference(item)
        if name is None:
            out.append(item)
        elif name not in _seen:
            out.extend(expand(parse_items(values.get(name, "")), values, _seen | {name}))
    return out


def milter_socket(item: str) -> str:
    """The socket of a milter item: the item itself, or the first element of its `{ ... }` group."""
    if item.startswith("{"):
        inner = parse_items(item[1:-1])
        return inner[0] if inner else ""
    return item


def extend_milters(existing: str, additions: tuple[str, ...], values: Mapping[str, str]) -> str:
    """`existing` with each addition appended unless its socket is already listed, references expanded.

    `values` are the other parameters' values (as they will be), for resolving references.
    """
    items = parse_items(existing)
    present = {milter_socket(item) for item in expand(items, values)}
    items.extend(a for a in additions if milter_socket(a) not in present)
    return join_items(items)
