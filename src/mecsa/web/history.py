"""A domain's history: what changed between two stored assessments (pure, from their documents)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mecsa.store.records import AREAS


@dataclass(frozen=True, slots=True)
class ProtocolChange:
    protocol: str
    before: str  # a status, or "absent" when the older assessment did not judge the protocol
    after: str


@dataclass(frozen=True, slots=True)
class FindingEntry:
    id: str
    status: str
    subject: str | None
    message: str


@dataclass(frozen=True, slots=True)
class LevelChange:
    area: str
    before: int | None
    after: int | None


@dataclass(frozen=True, slots=True)
class AssessmentDiff:
    levels: tuple[LevelChange, ...]  # every area, changed or not
    protocols: tuple[ProtocolChange, ...]  # only the protocols whose status changed
    added: tuple[FindingEntry, ...]  # findings of the newer assessment not in the older
    removed: tuple[FindingEntry, ...]  # findings of the older assessment gone from the newer

    @property
    def unchanged(self) -> bool:
        return not (self.protocols or self.added or self.removed) and all(
            c.before == c.after for c in self.levels
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "levels": {c.area: {"before": c.before, "after": c.after} for c in self.levels},
            "protocols": [
                {"protocol": c.protocol, "before": c.before, "after": c.after} for c in self.protocols
            ],
            "added": [_entry_json(f) for f in self.added],
            "removed": [_entry_json(f) for f in self.removed],
        }


def _entry_json(f: FindingEntry) -> dict[str, Any]:
    return {"id": f.id, "status": f.status, "subject": f.subject, "message": f.message}


def _findings(document: Mapping[str, Any]) -> dict[tuple[str, str, str | None], FindingEntry]:
    # A finding is the same one when its id, status and subject agree; messages carry counts and
    # times that change on every run, so they are shown but not compared.
    out: dict[tuple[str, str, str | None], FindingEntry] = {}
    for f in document.get("findings") or ():
        entry = FindingEntry(
            str(f.get("id")), str(f.get("status")), f.get("subject"), str(f.get("message", ""))
        )
        out.setdefault((entry.id, entry.status, entry.subject), entry)
    return out


def diff_documents(older: Mapping[str, Any], newer: Mapping[str, Any]) -> AssessmentDiff:
    before_scores = older.get("scores") or {}
    after_scores = newer.get("scores") or {}
    levels = tuple(LevelChange(a, before_scores.get(a), after_scores.get(a)) for a in AREAS)
    old_protocols = older.get("protocols") or {}
    new_protocols = newer.get("protocols") or {}
    protocols = []
    for name in dict.fromkeys([*old_protocols, *new_protocols]):
        before = str((old_protocols.get(name) or {}).get("status", "absent"))
        after = str((new_protocols.get(name) or {}).get("status", "absent"))
        if before != after:
            protocols.append(ProtocolChange(name, before, after))
    old_findings, new_findings = _findings(older), _findings(newer)
    return AssessmentDiff(
        levels=levels,
        protocols=tuple(protocols),
        added=tuple(f for k, f in new_findings.items() if k not in old_findings),
        removed=tuple(f for k, f in old_findings.items() if k not in new_findings),
    )
