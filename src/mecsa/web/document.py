"""The stored JSON document (the `mecsa assess --json` contract) back into an `Assessment`.

The store keeps the document, not the model; the report view is built from the model. A document
names each verdict's protocol and each check's details, and the registry names which protocols each
check owns and which facts kind reads its details, so the checks' results, typed facts included,
can be rebuilt for every renderer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from mecsa.model import (
    Assessment,
    CheckResult,
    Facts,
    FactsKind,
    Finding,
    ProtocolVerdict,
    Status,
    VerdictStatus,
)

# Findings and verdicts of protocols that no registered check owns (a document from another mecsa).
_OTHER = "other"


def finding_from_json(data: Mapping[str, Any]) -> Finding:
    return Finding(
        id=str(data["id"]),
        status=Status(data["status"]),
        protocol=str(data["protocol"]),
        message=str(data.get("message", "")),
        evidence=tuple(str(e) for e in data.get("evidence") or ()),
        remediation=data.get("remediation"),
        subject=data.get("subject"),
    )


def verdict_from_json(protocol: str, data: Mapping[str, Any]) -> ProtocolVerdict:
    share = data.get("share")
    return ProtocolVerdict(
        protocol=protocol,
        status=VerdictStatus(data["status"]),
        reason=str(data.get("reason", "")),
        share=None if share is None else float(share),
        details=dict(data.get("details") or {}),
    )


def facts_from_json(kind: FactsKind | None, details: Mapping[str, Any]) -> Facts | None:
    """The typed facts of a check's (or verdict's) details; None when it has none or they do not read.

    A document from an older or another mecsa may lack a key or hold another shape: its report then
    shows dashes where it needs the facts, and everything else it holds.
    """
    if kind is None or not details:
        return None
    try:
        return kind.from_json(details)
    except (KeyError, TypeError, ValueError):
        return None


def assessment_from_document(document: Mapping[str, Any]) -> Assessment:
    """The assessment a stored document was made from (the order of checks is the registry's).

    Each check's typed facts are read back from its details by the kinds its `CheckSpec` declares.
    """
    from mecsa.checks.registry import CHECKS

    findings = [finding_from_json(f) for f in document.get("findings") or ()]
    verdicts = {p: verdict_from_json(p, v) for p, v in (document.get("protocols") or {}).items()}
    details: Mapping[str, Any] = document.get("checks") or {}
    specs = {check.name: check for check in CHECKS}
    owner: dict[str, str] = {}
    for check in CHECKS:
        for protocol in check.protocols or (check.name,):
            owner.setdefault(protocol, check.name)
    # Findings keep the document's order (the problems list shows them so): each run of findings of
    # one check becomes one result; that check's verdicts and details join its first result.
    runs: list[tuple[str, list[Finding]]] = []
    for finding in findings:
        name = owner.get(finding.protocol, _OTHER)
        if not runs or runs[-1][0] != name:
            runs.append((name, []))
        runs[-1][1].append(finding)
    seen = {name for name, _ in runs}
    later = [owner.get(p, _OTHER) for p in verdicts] + [str(n) for n in details]
    runs += [(name, []) for name in dict.fromkeys(later) if name not in seen]
    results: list[CheckResult] = []
    placed: set[str] = set()
    for name, mine in runs:
        first = name not in placed
        placed.add(name)
        spec = specs.get(name)
        verdict_kinds = spec.verdict_facts if spec else {}
        theirs = tuple(
            replace(v, facts=facts_from_json(verdict_kinds.get(p), v.details))
            for p, v in verdicts.items()
            if first and owner.get(p, _OTHER) == name
        )
        extra = dict(details.get(name) or {}) if first else {}
        facts = facts_from_json(spec.facts if spec else None, extra)
        results.append(CheckResult(name, tuple(mine), theirs, extra, facts))
    return Assessment(
        domain=str(document["domain"]),
        mecsa_version=str(document.get("mecsa_version", "")),
        results=tuple(results),
        resolver=dict(document.get("resolver") or {}),
        duration_s=float(document.get("duration_s") or 0.0),
    )
