"""What goes into the store and what comes out: frozen records, and the rows derived from a document.

The store takes the JSON document that `mecsa assess --json` prints (the project's contract) rather
than the in-memory model, so that every face (scanner, web service, Celery worker, monitor) can
hand it what it already has; the indexed columns are derived from that document here, in one place.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

AREAS: tuple[str, ...] = ("confidentiality", "phishing", "integrity")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite gives back naive datetimes: the store only ever writes UTC, so say so."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class NewResult:
    """One domain's result to store: its JSON record, and the reason when no assessment was made."""

    domain: str
    document: Mapping[str, Any]
    error_reason: str | None = None

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> NewResult:
        """An assessment's document (the `mecsa assess --json` object, possibly with extra keys)."""
        return cls(str(document["domain"]), document)

    @classmethod
    def failed(cls, domain: str, reason: str, document: Mapping[str, Any]) -> NewResult:
        """A record for an input that gave no assessment (not a domain, a crash)."""
        return cls(domain, document, reason)

    @property
    def is_error(self) -> bool:
        return self.error_reason is not None

    def levels(self) -> dict[str, int | None]:
        scores = self.document.get("scores") or {}
        return {area: _int_or_none(scores.get(area)) for area in AREAS}

    def protocol_rows(self) -> list[dict[str, str]]:
        protocols = self.document.get("protocols") or {}
        return [
            {"protocol": str(name), "status": str(verdict.get("status", "error"))}
            for name, verdict in protocols.items()
        ]

    def finding_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "position": position,
                "finding_id": str(f.get("id", "")),
                "protocol": str(f.get("protocol", "")),
                "status": str(f.get("status", "")),
                "subject": f.get("subject"),
            }
            for position, f in enumerate(self.document.get("findings") or ())
        ]

    def mx_rows(self) -> list[dict[str, Any]]:
        hosts = ((self.document.get("checks") or {}).get("mx") or {}).get("hosts") or ()
        rows: dict[str, dict[str, Any]] = {}
        for host in hosts:
            name = str(host.get("name", "")).lower().rstrip(".")
            if name and name not in rows:
                rows[name] = {
                    "host": name,
                    "preference": _int_or_none(host.get("preference")),
                    "provider": mx_provider(name),
                }
        return list(rows.values())


def mx_provider(host: str) -> str:
    """The MX host's suffix that names its provider: its registrable (organisational) domain."""
    from mecsa.orgdomain import NotADomainError, organisational_domain

    try:
        return organisational_domain(host)
    except NotADomainError:
        return host


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True, slots=True)
class ScanRecord:
    """One scan as stored."""

    id: int
    input_name: str | None
    options: Mapping[str, Any]
    profile: str
    mecsa_version: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    state: str
    domains_done: int
    errors: int


@dataclass(frozen=True, slots=True)
class StoredAssessment:
    """One stored result: the indexed columns, and the document parsed on demand."""

    id: int
    scan_id: int | None
    domain: str
    created_at: dt.datetime
    profile: str
    mecsa_version: str
    levels: Mapping[str, int | None]
    error_reason: str | None
    duration_s: float | None
    document_text: str = field(repr=False)

    @property
    def is_error(self) -> bool:
        return self.error_reason is not None

    def document(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.document_text)
        return parsed
