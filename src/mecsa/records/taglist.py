"""The DKIM tag-list syntax (RFC 6376 §3.2), shared by DKIM key records and DMARC records.

    tag-list  =  tag-spec *( ";" tag-spec ) [ ";" ]
    tag-spec  =  [FWS] tag-name [FWS] "=" [FWS] tag-value [FWS]
    tag-name  =  ALPHA *ALNUMPUNC
    tag-value =  [ tval *( 1*(WSP / FWS) tval ) ]   ; tval = 1*(%x21-3A / %x3C-7E)

Written by hand: dkimpy's tag parser raises on the first problem and reports no positions,
while a grader wants every problem with the place it was found. Nothing here judges values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

_TAG_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_FWS = " \t\r\n"
# tval characters: printable ASCII except ";" (and whitespace, which may only separate tvals)
_BAD_VALUE_CHAR = re.compile(r"[^\x21-\x3a\x3c-\x7e \t\r\n]")


class IssueSeverity(StrEnum):
    """ERROR: receivers discard the record (or the tag is unusable); WARNING: worth fixing."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class RecordIssue:
    """One problem in a record, located by 0-based offset in the record text and by tag."""

    severity: IssueSeverity
    code: str
    message: str
    position: int | None = None
    tag: str | None = None

    def __str__(self) -> str:
        where = []
        if self.position is not None:
            where.append(f"offset {self.position}")
        if self.tag is not None:
            where.append(f"tag {self.tag}")
        return f"{self.message} ({', '.join(where)})" if where else self.message


RecordT = TypeVar("RecordT")


@dataclass(frozen=True, slots=True)
class TagListParse(Generic[RecordT]):
    """A parser's outcome: `record` is None when a receiver would discard the text (any ERROR issue)."""

    text: str
    record: RecordT | None
    issues: tuple[RecordIssue, ...]

    @property
    def errors(self) -> tuple[RecordIssue, ...]:
        return tuple(i for i in self.issues if i.severity is IssueSeverity.ERROR)

    @property
    def warnings(self) -> tuple[RecordIssue, ...]:
        return tuple(i for i in self.issues if i.severity is IssueSeverity.WARNING)


@dataclass(frozen=True, slots=True)
class Tag:
    """One tag-spec: its name as written, its value with surrounding whitespace removed."""

    name: str
    value: str
    position: int
    value_position: int


def split_tags(text: str, *, fold_case: bool) -> tuple[tuple[Tag, ...], tuple[RecordIssue, ...]]:
    """Split a tag-list into tags, reporting syntax problems and duplicate names.

    `fold_case` compares names case-insensitively for duplicates (DMARC's ABNF uses quoted,
    hence case-insensitive, strings; DKIM tags are case-sensitive, RFC 6376 §3.2).
    Duplicates are errors: RFC 6376 §3.2 makes the whole tag-list invalid.
    """
    tags: list[Tag] = []
    issues: list[RecordIssue] = []
    seen: dict[str, Tag] = {}
    position = 0
    segments = text.split(";")
    for index, segment in enumerate(segments):
        start = position
        position += len(segment) + 1
        if not segment.strip(_FWS):
            if index != len(segments) - 1:
                issues.append(
                    RecordIssue(IssueSeverity.WARNING, "taglist.empty", "empty tag between semicolons", start)
                )
            continue
        name_part, eq, value_part = segment.partition("=")
        name = name_part.strip(_FWS)
        name_at = start + len(name_part) - len(name_part.lstrip(_FWS))
        if not eq:
            issues.append(
                RecordIssue(
                    IssueSeverity.ERROR, "taglist.no_equals", f"{name!r} has no '=' and value", name_at
                )
            )
            continue
        if not _TAG_NAME.fullmatch(name):
            issues.append(
                RecordIssue(IssueSeverity.ERROR, "taglist.bad_name", f"bad tag name {name!r}", name_at)
            )
            continue
        value = value_part.strip(_FWS)
        value_at = start + len(name_part) + 1 + len(value_part) - len(value_part.lstrip(_FWS))
        bad = _BAD_VALUE_CHAR.search(value)
        if bad:
            issues.append(
                RecordIssue(
                    IssueSeverity.ERROR,
                    "taglist.bad_char",
                    f"character {bad.group()!r} is not allowed in a tag value",
                    value_at + bad.start(),
                    name,
                )
            )
            continue
        key = name.lower() if fold_case else name
        if key in seen:
            issues.append(
                RecordIssue(
                    IssueSeverity.ERROR,
                    "taglist.duplicate",
                    f"tag {name} appears twice (first at offset {seen[key].position}): "
                    "the whole record is invalid (RFC 6376 §3.2)",
                    name_at,
                    name,
                )
            )
            continue
        tag = Tag(name, value, name_at, value_at)
        seen[key] = tag
        tags.append(tag)
    return tuple(tags), tuple(issues)
