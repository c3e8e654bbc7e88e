"""The records a scan writes, one per input entry: the `mecsa assess --json` document plus the scan id,
or an error record when no assessment could be made.

An error record: `{"domain": TEXT, "scan_id": N, "line": L, "status": "error", "reason": WHY}`;
TEXT is the entry as the list gave it. Both kinds go to the output and to the store alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mecsa.model import PROTOCOLS, Assessment
from mecsa.scan.inputs import Target
from mecsa.store.records import NewResult


def assessment_record(assessment: Assessment, profile: str, scan_id: int) -> dict[str, Any]:
    from mecsa.report.json import assessment_to_json

    return {**assessment_to_json(assessment, profile), "scan_id": scan_id}


def error_record(entry: Target, reason: str, scan_id: int) -> dict[str, Any]:
    return {"domain": entry.key, "scan_id": scan_id, "line": entry.line, "status": "error", "reason": reason}


def is_error_record(record: Mapping[str, Any]) -> bool:
    return record.get("status") == "error" and "scores" not in record


def to_new_result(record: Mapping[str, Any]) -> NewResult:
    if is_error_record(record):
        return NewResult.failed(str(record["domain"]), str(record.get("reason", "")), record)
    return NewResult.from_document(record)


CSV_COLUMNS: tuple[str, ...] = (
    "domain",
    "status",
    "confidentiality",
    "phishing",
    "integrity",
    *PROTOCOLS,
    "reason",
)


def csv_row(record: Mapping[str, Any]) -> list[str]:
    """domain, ok|error, the three levels, one status per protocol, and the error's reason."""
    if is_error_record(record):
        return [str(record["domain"]), "error", "", "", "", *("" for _ in PROTOCOLS), str(record["reason"])]
    scores = record.get("scores") or {}
    protocols = record.get("protocols") or {}
    return [
        str(record["domain"]),
        "ok",
        *(str(scores.get(area, "")) for area in ("confidentiality", "phishing", "integrity")),
        *(str((protocols.get(p) or {}).get("status", "")) for p in PROTOCOLS),
        "",
    ]
