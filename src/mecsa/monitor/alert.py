"""An alert: what the monitor tells people, with its evidence and its exact fix."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class AlertKind(StrEnum):
    """A *condition* holds until it clears (then a "resolved" is sent); an *event* is a change, told once."""

    CONDITION = "condition"
    EVENT = "event"


class Severity(StrEnum):
    CRITICAL = "critical"  # mail is breaking, or will at a known date
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class FixText:
    """One fix from the catalogue: its title and what to paste where."""

    title: str
    snippets: tuple[tuple[str, str], ...]  # (where, text)

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "snippets": [{"where": w, "text": t} for w, t in self.snippets]}


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert on one domain.

    `key` names the alert within its domain (rule and subject) and stays the same from pass to pass
    while the same thing is wrong; `fingerprint` changes when the evidence changes, which is when a
    condition is told again. The message may change without a resend (days left, say).
    """

    domain: str
    rule: str
    key: str
    kind: AlertKind
    severity: Severity
    message: str
    evidence: tuple[str, ...] = ()
    fixes: tuple[FixText, ...] = field(default=())

    @property
    def fingerprint(self) -> str:
        data = json.dumps([self.key, list(self.evidence)], ensure_ascii=False)
        return hashlib.sha256(data.encode()).hexdigest()[:32]

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "rule": self.rule,
            "key": self.key,
            "kind": self.kind.value,
            "severity": self.severity.value,
            "message": self.message,
            "evidence": list(self.evidence),
            "fixes": [f.to_json() for f in self.fixes],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Alert:
        return cls(
            str(data["domain"]),
            str(data["rule"]),
            str(data["key"]),
            AlertKind(data["kind"]),
            Severity(data["severity"]),
            str(data["message"]),
            tuple(str(e) for e in data.get("evidence") or ()),
            tuple(
                FixText(str(f["title"]), tuple((str(s["where"]), str(s["text"])) for s in f["snippets"]))
                for f in data.get("fixes") or ()
            ),
        )
