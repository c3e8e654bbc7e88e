"""What every human-facing report shows, computed once from an `Assessment`: the renderers only format.

Per-host sections are built generically: any `details["hosts"]` or `details["mx"]` list of
objects, in a check's details or a verdict's details, becomes rows of the section of the host it
names, so that checks that add per-MX data appear without changes here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mecsa.fixes import Fix, fixes_for
from mecsa.model import (
    PROTOCOLS,
    SCORED_PROTOCOLS,
    Assessment,
    Finding,
    ProtocolVerdict,
    Status,
    VerdictStatus,
)
from mecsa.scoring import AREA_TITLES, AREAS, Profile, Score, load_profile, score_assessment, stars

HOST_LIST_KEYS = ("hosts", "mx")
HOST_NAME_KEYS = ("name", "host", "mx", "hostname")
PROBLEM_STATUSES = (Status.FAIL, Status.WARN, Status.ERROR)

MARKS: Mapping[str, str] = {
    VerdictStatus.PASS.value: "✔",
    VerdictStatus.FAIL.value: "✘",
    VerdictStatus.ERROR.value: "?",
    VerdictStatus.NOT_APPLICABLE.value: "–",
    "not_assessed": "–",
}


@dataclass(frozen=True, slots=True)
class AreaView:
    """One MECSA area's grade."""

    name: str
    title: str
    level: int
    stars: float
    protocols: tuple[str, ...]

    @property
    def star_text(self) -> str:
        """Five stars with halves, e.g. `★★★½☆`."""
        full, half = divmod(self.level, 2)
        return "★" * full + "½" * half + "☆" * (5 - full - half)

    @property
    def grade(self) -> str:
        """A coarse band for colours: good (>= 8), fair (>= 5), poor."""
        return "good" if self.level >= 8 else "fair" if self.level >= 5 else "poor"


@dataclass(frozen=True, slots=True)
class ProtocolView:
    """One protocol's line: status, mark, reason, whether the profile counted it, and its evidence."""

    protocol: str
    status: str
    reason: str
    share: float | None
    counted: bool
    count_note: str
    findings: tuple[Finding, ...]
    details: tuple[tuple[str, str], ...]

    @property
    def mark(self) -> str:
        return MARKS[self.status]


@dataclass(frozen=True, slots=True)
class HostView:
    """Everything the checks reported about one MX host, as key/value rows."""

    name: str
    rows: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ReportView:
    """The whole human report."""

    domain: str
    mecsa_version: str
    duration_s: float
    profile: str
    profile_description: str
    areas: tuple[AreaView, ...]
    protocols: tuple[ProtocolView, ...]
    hosts: tuple[HostView, ...]
    problems: tuple[Finding, ...]
    fixes: tuple[Fix, ...]
    notes: tuple[str, ...]


def build_view(assessment: Assessment, profile: str = "mecsa", today: dt.date | None = None) -> ReportView:
    """Compute the report contents (levels, protocol lines, host sections, fixes, notes)."""
    chosen = load_profile(profile)
    score = score_assessment(assessment, chosen)
    levels = score.levels.as_dict()
    areas = tuple(
        AreaView(a, AREA_TITLES[a], levels[a], stars(levels[a]), chosen.areas[a].protocols) for a in AREAS
    )
    verdicts = assessment.verdicts
    owner_details = {v.protocol: r.details for r in assessment.results for v in r.verdicts}
    protocols = tuple(
        _protocol_view(p, verdicts.get(p), score, chosen, assessment, owner_details.get(p, {}))
        for p in (*PROTOCOLS, *(p for p in verdicts if p not in PROTOCOLS))
    )
    notes: list[str] = []
    if assessment.resolver.get("validates_dnssec") is False:
        notes.append(
            "the resolver does not validate DNSSEC: DNSSEC results are indeterminate "
            "(use --resolver with a validating resolver)"
        )
    return ReportView(
        domain=assessment.domain,
        mecsa_version=assessment.mecsa_version,
        duration_s=assessment.duration_s,
        profile=chosen.name,
        profile_description=chosen.description,
        areas=areas,
        protocols=protocols,
        hosts=host_views(assessment),
        problems=tuple(f for f in assessment.findings if f.status in PROBLEM_STATUSES),
        fixes=fixes_for(assessment, today),
        notes=tuple(notes),
    )


def _protocol_view(
    protocol: str,
    verdict: ProtocolVerdict | None,
    score: Score,
    profile: Profile,
    assessment: Assessment,
    check_details: Mapping[str, Any],
) -> ProtocolView:
    findings = tuple(f for f in assessment.findings if f.protocol == protocol)
    if verdict is None:
        return ProtocolView(protocol, "not_assessed", "not assessed", None, False, "", findings, ())
    counted = protocol in score.supported
    rows = [*flatten(dict(verdict.details)), *flatten(_without_hosts(check_details))]
    return ProtocolView(
        protocol,
        verdict.status.value,
        verdict.reason,
        verdict.share,
        counted,
        _count_note(verdict, counted, score, profile),
        findings,
        tuple(rows),
    )


def _count_note(verdict: ProtocolVerdict, counted: bool, score: Score, profile: Profile) -> str:
    """Why the profile's view of a protocol differs from its verdict, when it does."""
    passed = verdict.status is VerdictStatus.PASS
    if verdict.protocol not in SCORED_PROTOCOLS or counted == passed:
        return ""
    rule = profile.counting
    if counted:
        if verdict.protocol == "mta-sts" and rule.mta_sts_detail:
            return f"counted by {profile.name}, which ignores the MTA-STS mode"
        return (
            f"counted by {profile.name}: at least {rule.share_threshold:.0%} of the reachable MX hosts pass"
        )
    missing = sorted(profile.prerequisites.get(verdict.protocol, frozenset()) - score.supported)
    if missing:
        return f"not counted by {profile.name}: needs {', '.join(missing)}"
    return (
        f"not counted by {profile.name}: under {rule.share_threshold or 0:.0%} of the reachable MX hosts pass"
    )


def _without_hosts(details: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in details.items() if k not in HOST_LIST_KEYS}


def host_views(assessment: Assessment) -> tuple[HostView, ...]:
    """One section per host named in any `hosts`/`mx` list of any check's or verdict's details."""
    rows: dict[str, list[tuple[str, str]]] = {}
    sources: list[tuple[str, Mapping[str, Any]]] = []
    for result in assessment.results:
        sources.append((result.check, result.details))
        sources.extend((v.protocol, v.details) for v in result.verdicts)
    for source, details in sources:
        for key in HOST_LIST_KEYS:
            items = details.get(key)
            if not isinstance(items, list):
                continue
            for item in items:
                name = _host_name(item)
                if name is None:
                    continue
                body = {k: v for k, v in item.items() if k not in HOST_NAME_KEYS or item.get(k) != name}
                prefix = "" if source == "mx" else f"{source}."
                rows.setdefault(name, []).extend((prefix + k, v) for k, v in flatten(body))
    return tuple(HostView(name, tuple(r)) for name, r in rows.items())


def _host_name(item: object) -> str | None:
    if not isinstance(item, Mapping):
        return None
    for key in HOST_NAME_KEYS:
        value = item.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def flatten(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Nested JSON-able details as (dotted key, text) rows; lists of objects keyed by their name."""
    out: list[tuple[str, str]] = []
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.extend(flatten(value, f"{path}."))
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            for index, item in enumerate(value):
                key_name = next((k for k in ("address", "name", "host", "label") if k in item), None)
                label = str(item[key_name]) if key_name else str(index)
                rest = {k: v for k, v in item.items() if k != key_name}  # the label says it already
                out.extend(flatten(rest, f"{path}[{label}]."))
        else:
            out.append((path, scalar_text(value)))
    return out


def scalar_text(value: Any) -> str:
    """A detail value as text: lists joined, booleans as yes/no, None as a dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(scalar_text(v) for v in value) if value else "—"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
