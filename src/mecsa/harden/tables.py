"""Merge into line-based files that other people also write: OpenDKIM's tables and both milters' configs.

One rule for all of them: lines that are not ours stay byte for byte, in place; ours are
updated where they are, or appended. So a server that signs several domains, or has
`LogWhy yes` in opendkim.conf, keeps them when `mecsa harden apply` runs again. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping


def _lines(text: str) -> list[str]:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return lines


def _is_comment(line: str) -> bool:
    return not line.strip() or line.lstrip().startswith("#")


def first_field(line: str) -> str:
    """The first whitespace-separated field of a line, lower-cased ('' for comments and blanks)."""
    return "" if _is_comment(line) else line.split()[0].lower()


def merge_owned_lines(text: str, ours: list[str], is_ours: Callable[[str], bool]) -> str:
    """Put `ours` (whole lines) where the first line `is_ours` accepts stands; keep every other line.

    Other lines we own are dropped (they are replaced by `ours`); with none, `ours` is appended.
    Running it again on its own output changes nothing.
    """
    out: list[str] = []
    placed = False
    for line in _lines(text):
        if _is_comment(line) or not is_ours(line):
            out.append(line)
        elif not placed:
            out.extend(ours)
            placed = True
    if not placed:
        out.extend(ours)
    return "".join(out)


def merge_set(text: str, items: list[str]) -> str:
    """A one-entry-per-line file (TrustedHosts, ignore.hosts): append the items it lacks, keep the rest."""
    lines = _lines(text)
    present = {line.strip().lower() for line in lines if not _is_comment(line)}
    missing = [f"{item}\n" for item in dict.fromkeys(items) if item.lower() not in present]
    return "".join(lines + missing)


KeyValueFormat = Callable[[str, str], str]


def merge_key_values(text: str, wanted: Mapping[str, str], header: str, line_of: KeyValueFormat) -> str:
    """Set `Key value` settings (names compared case-insensitively, as both milters do).

    A setting already at the wanted value (whitespace aside) stays as written; a different value
    is replaced on its first line, keeping that line's spacing, and later duplicates are dropped
    so that no reader can take the old one; missing settings are appended under `header`.
    """
    lines = _lines(text)
    wanted_by_name = {name.lower(): (name, value) for name, value in wanted.items()}
    done: set[str] = set()
    out: list[str] = []
    for line in lines:
        name = first_field(line)
        if name not in wanted_by_name:
            out.append(line)
            continue
        if name in done:
            continue  # a duplicate of a setting we manage
        done.add(name)
        value = wanted_by_name[name][1]
        current = line.strip()[len(name) :]
        if current.split() == value.split():
            out.append(line)
        else:
            stripped = line.rstrip("\n").rstrip()
            key_end = len(stripped) - len(stripped.lstrip()) + len(name)
            rest = stripped[key_end:]
            spacing = rest[: len(rest) - len(rest.lstrip())] or " "
            out.append(f"{stripped[:key_end]}{spacing}{value}\n")
    missing = [line_of(n, v) for key, (n, v) in wanted_by_name.items() if key not in done]
    if missing:
        if out and out[-1].strip():
            out.append("\n")
        if header not in "".join(out):
            out.append(f"{header}\n")
        out.extend(missing)
    return "".join(out)
