"""The scan's input, read as a stream: one domain per line, or a CSV file with a `domain` column.

Blank lines and `#` comments (whole lines, or the rest of a line) are skipped. A line that is not a
valid domain becomes a `Target` with its error: it gets an error record and never stops the scan.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from mecsa.domain import DomainError, normalise_domain

DOMAIN_COLUMN = "domain"


@dataclass(frozen=True, slots=True)
class Target:
    """One entry of the list: where it was, what it said, and its A-label form or why there is none."""

    line: int  # 1-based line of the input
    text: str
    domain: str | None
    error: str | None = None

    @property
    def key(self) -> str:
        """The name the scan's records and the store know this entry by."""
        return self.domain if self.domain is not None else self.text


def target(line: int, text: str) -> Target:
    try:
        return Target(line, text, normalise_domain(text))
    except DomainError as exc:
        return Target(line, text, None, str(exc))


def read_targets(lines: Iterable[str]) -> Iterator[Target]:
    """Targets from `lines` (each with or without its newline), lazily: memory does not grow with the list."""
    numbered = enumerate(lines, start=1)
    for number, raw in numbered:
        text = _strip_comment(raw)
        if not text:
            continue
        header = _csv_header(raw)
        if header is not None:
            yield from _csv_targets(header, number, numbered)
        else:
            yield target(number, text)
            yield from _line_targets(numbered)
        return


def _strip_comment(raw: str) -> str:
    return raw.split("#", 1)[0].strip().lstrip("\ufeff")


def _line_targets(numbered: Iterator[tuple[int, str]]) -> Iterator[Target]:
    for number, raw in numbered:
        text = _strip_comment(raw)
        if text:
            yield target(number, text)


def _csv_header(raw: str) -> list[str] | None:
    """The header's column names when the first line is a CSV header naming a `domain` column."""
    fields = [f.strip().lstrip("\ufeff").lower() for f in next(csv.reader([raw]), [])]
    return fields if DOMAIN_COLUMN in fields else None


def _csv_targets(
    header: list[str], header_line: int, numbered: Iterator[tuple[int, str]]
) -> Iterator[Target]:
    column = header.index(DOMAIN_COLUMN)
    # csv.reader pulls lines from the same iterator; its line_num counts the lines it consumed
    # (a quoted field may span lines), so a record starts on the line after the previous one ended.
    rows = csv.reader(raw for _, raw in numbered)
    consumed = 0
    for row in rows:
        line = header_line + consumed + 1
        consumed = rows.line_num
        if not row or all(not f.strip() for f in row) or row[0].lstrip().startswith("#"):
            continue
        if len(row) <= column:
            text = ",".join(row).strip()
            yield Target(line, text, None, f"line {line} has no {DOMAIN_COLUMN!r} column")
            continue
        text = row[column].strip()
        if not text:
            yield Target(
                line, ",".join(row).strip(), None, f"line {line} has an empty {DOMAIN_COLUMN!r} field"
            )
            continue
        yield target(line, text)


def chunked(targets: Iterable[Target], size: int) -> Iterator[list[Target]]:
    """Lists of at most `size` targets, for per-chunk store look-ups (`--resume`)."""
    iterator = iter(targets)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk
