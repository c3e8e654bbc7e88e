"""Edit Postfix-style files (main.cf, master.cf, aliases) by logical entry, keeping everything else.

These files share one syntax: an entry starts at column 0, a line starting with whitespace
continues it, and `#` lines and blank lines are comments. Postfix offers `postconf -e`, but it
needs the real binary and replaces values wholesale; the merge here must be pure (for `plan` and
tests) and leave comments, order and unmanaged entries byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

_MAIN_CF_ENTRY = re.compile(r"^([A-Za-z0-9_.-]+)\s*=\s*(.*)$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Entry:
    """One logical entry: its key (None for comments and blank lines) and its physical lines."""

    key: str | None
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def joined(self) -> str:
        """The entry's logical text: continuation lines joined with single spaces."""
        return " ".join(line.strip() for line in self.lines if line.strip() and not _is_comment(line))


def _is_comment(line: str) -> bool:
    return not line.strip() or line.lstrip().startswith("#")


def split_entries(text: str, key_of: Callable[[str], str | None]) -> list[Entry]:
    """Split `text` into entries; comment lines between an entry and its continuation stay inside it."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    entries: list[Entry] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if _is_comment(line) or line[0] in " \t":
            # a stray continuation line with nothing to continue is kept as-is, like a comment
            entries.append(Entry(None, (line,)))
            index += 1
            continue
        end = index + 1
        last_real = index
        while end < len(lines) and (lines[end][0] in " \t" or _is_comment(lines[end])):
            if not _is_comment(lines[end]):
                last_real = end
            end += 1
        entries.append(Entry(key_of(line), tuple(lines[index : last_real + 1])))
        entries.extend(Entry(None, (c,)) for c in lines[last_real + 1 : end])
        index = end
    return entries


def main_cf_key(line: str) -> str | None:
    match = _MAIN_CF_ENTRY.match(line.strip())
    return match.group(1) if match else None


def main_cf_values(text: str) -> dict[str, str]:
    """The effective `name -> value` of a main.cf (the last definition wins, as in Postfix)."""
    values: dict[str, str] = {}
    for entry in split_entries(text, main_cf_key):
        if entry.key is not None:
            match = _MAIN_CF_ENTRY.match(entry.joined())
            values[entry.key] = match.group(2).strip() if match else ""
    return values


def _same_value(a: str, b: str) -> bool:
    return a.split() == b.split()


def merge_main_cf(text: str, wanted: Mapping[str, str], header: str, remove: Collection[str] = ()) -> str:
    """Set each `wanted` parameter: replace its last definition in place, or append it (under `header`).

    A definition whose value already matches (whitespace aside) is left untouched, so a second
    run changes nothing; every definition of a `remove` parameter is deleted; other parameters
    are never touched.
    """
    entries = split_entries(text, main_cf_key)
    last: dict[str, int] = {e.key: i for i, e in enumerate(entries) if e.key is not None}
    out = ["" if e.key in remove else e.text for e in entries]
    missing: list[str] = []
    for name, value in wanted.items():
        index = last.get(name)
        if index is None:
            missing.append(f"{name} = {value}\n")
            continue
        match = _MAIN_CF_ENTRY.match(entries[index].joined())
        if match is None or not _same_value(match.group(2), value):
            out[index] = f"{name} = {value}\n"
    result = "".join(out)
    if missing:
        if result and not result.endswith("\n\n"):
            result += "\n"
        if header not in result:
            result += f"{header}\n"
        result += "".join(missing)
    return result


def master_cf_key(line: str) -> str | None:
    """`service/type` of a master.cf entry (a service is identified by both)."""
    fields = line.split()
    return f"{fields[0]}/{fields[1]}" if len(fields) >= 2 else None


def merge_master_cf(text: str, services: Mapping[str, str]) -> str:
    """Replace or append whole services (`service/type` -> entry text), leaving the others as they are."""
    entries = split_entries(text, master_cf_key)
    out = [e.text for e in entries]
    keys = {e.key: i for i, e in enumerate(entries) if e.key is not None}
    appended = ""
    for key, service in services.items():
        index = keys.get(key)
        if index is None:
            appended += service
        elif entries[index].joined().split() != service.split():
            out[index] = service
    result = "".join(out)
    if appended and result and not result.endswith("\n"):
        result += "\n"
    return result + appended


def alias_key(line: str) -> str | None:
    name, colon, _ = line.partition(":")
    return name.strip().lower() if colon else None


def merge_aliases(text: str, aliases: Mapping[str, str]) -> str:
    """Set `name: target` for each alias, replacing its entry or appending it."""
    entries = split_entries(text, alias_key)
    out = [e.text for e in entries]
    keys = {e.key: i for i, e in enumerate(entries) if e.key is not None}
    for name, target in aliases.items():
        line = f"{name}: {target}\n"
        index = keys.get(name)
        if index is None:
            out.append(line)
        elif entries[index].joined().split() != line.split():
            out[index] = line
    return "".join(out)


def merge_shell_assignments(text: str, values: Mapping[str, str]) -> str:
    """Set `NAME=value` lines of an /etc/default file, replacing the active assignment or appending."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    for name, value in values.items():
        wanted = f"{name}={value}\n"
        hits = [i for i, line in enumerate(lines) if re.match(rf"^\s*{re.escape(name)}=", line)]
        if hits:
            if lines[hits[-1]] != wanted:
                lines[hits[-1]] = wanted
        else:
            lines.append(wanted)
    return "".join(lines)
