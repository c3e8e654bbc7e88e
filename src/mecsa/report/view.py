"""What every human-facing report shows, computed once from an `Assessment`: the renderers only format.

Per-host sections have two layers. The compact one (`HostView.facts` and `HostView.addresses`)
picks the few values a mail administrator reads, from the typed facts of the mx, starttls, x509,
dane and mta-sts checks (see `address_rows`); a missing value is a dash. The full one
(`HostView.rows`) is built generically: any `details["hosts"]` or `details["mx"]` list of objects,
in a check's details or a verdict's details, becomes rows of the section of the host it names, so
that checks that add per-MX data appear there without changes here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mecsa.checks.dane import AddressDane, DaneFacts
from mecsa.checks.mta_sts import MtaStsVerdictFacts
from mecsa.checks.registry import remedies
from mecsa.checks.starttls import AddressTls, StarttlsFacts
from mecsa.checks.x509 import AddressCertificate, X509Facts
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
from mecsa.observe.mx import MxFacts
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

    @property
    def share_note(self) -> str:
        """` (50% of MX hosts)`, unless the reason states the share already (then it would say it twice)."""
        if self.share is None or f"{self.share:.0%}" in self.reason:
            return ""
        return f" ({self.share:.0%} of MX hosts)"


@dataclass(frozen=True, slots=True)
class AddressRow:
    """What a mail administrator reads about one address of an MX host, one short text per column.

    Parts of a cell are separated by "; ", which the terminal renderer puts on lines of their own.
    """

    address: str
    starttls: str
    tls_versions: str
    certificate: str
    dane: str
    mta_sts: str


ADDRESS_COLUMNS = ("Address", "STARTTLS", "TLS versions", "Certificate", "DANE", "MTA-STS")


@dataclass(frozen=True, slots=True)
class HostView:
    """One MX host: its facts and one compact row per address, plus every detail as key/value rows."""

    name: str
    facts: tuple[tuple[str, str], ...]
    addresses: tuple[AddressRow, ...]
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
    # A check's own details (the record it read, its lookups) are shown once, under its first
    # protocol: dmarc_policy and spf_policy judge the same record as dmarc and spf.
    owner_details = {r.verdicts[0].protocol: r.details for r in assessment.results if r.verdicts}
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
        fixes=fixes_for(assessment, today, remedies()),
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
    return tuple(
        HostView(name, host_facts(assessment, name), address_rows(assessment, name), tuple(r))
        for name, r in rows.items()
    )


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


# --- the compact per-address table, read from the typed facts of the mx, starttls, x509, dane and
# mta-sts checks (a check that did not run leaves dashes) ---

DASH = "—"
DANE_LABELS: Mapping[str, str] = {
    "matched": "matched",
    "no_match": "no match",
    "not_secure": "not secure",
    "no_tlsa": "no TLSA",
    "no_tls": "no TLS",
    "error": "could not check",
}


def host_facts(assessment: Assessment, name: str) -> tuple[tuple[str, str], ...]:
    """The MX-level facts: preference and the DNSSEC status of its A/AAAA answers."""
    mx = assessment.facts(MxFacts)
    host = mx.host(name) if mx else None
    if host is None:
        return (("preference", DASH), ("DNSSEC A", DASH), ("DNSSEC AAAA", DASH))
    return (
        ("preference", str(host.preference)),
        ("DNSSEC A", host.a.dnssec.value),
        ("DNSSEC AAAA", host.aaaa.dnssec.value),
    )


def address_rows(assessment: Assessment, name: str) -> tuple[AddressRow, ...]:
    """One row per address of MX host `name`: the addresses the MX check found, then any a check added."""
    mx = assessment.facts(MxFacts)
    starttls, x509_facts, dane = (
        assessment.facts(StarttlsFacts),
        assessment.facts(X509Facts),
        assessment.facts(DaneFacts),
    )
    host = mx.host(name) if mx else None
    addresses = list(host.addresses if host else ())
    for facts in (starttls, x509_facts, dane):
        for h in facts.hosts if facts else ():
            if h.name == name:
                addresses += [a.address for a in h.addresses if a.address not in addresses]
    mta_sts = _mta_sts_cell(assessment, name)
    return tuple(
        AddressRow(
            address,
            _starttls_cell(starttls.address(name, address) if starttls else None),
            _versions_cell(starttls.address(name, address) if starttls else None),
            _certificate_cell(
                assessment, name, address, x509_facts.address(name, address) if x509_facts else None
            ),
            _dane_cell(dane.address(name, address) if dane else None),
            mta_sts,
        )
        for address in addresses
    )


def _starttls_cell(item: AddressTls | None) -> str:
    if item is None:
        return DASH
    smtp = item.session
    if not smtp.connected:
        stage = smtp.failed_stage.value if smtp.failed_stage else None
        return f"unreachable ({stage})" if stage else "unreachable"
    if smtp.starttls_offered is False:
        return "not offered"
    if smtp.starttls_offered is None:
        return f"failed at {smtp.failed_stage.value}" if smtp.failed_stage else DASH
    if smtp.tls is None:  # offered, but the handshake did not complete
        stage = smtp.failed_stage.value if smtp.failed_stage else "handshake"
        return f"offered; TLS failed ({stage})"
    version, cipher = smtp.tls.version, smtp.tls.cipher
    return f"offered; {version}; {cipher}" if cipher else f"offered; {version}"


def _versions_cell(item: AddressTls | None) -> str:
    if item is None or item.sweep is None:
        return DASH
    accepted = [label.removeprefix("TLSv") for label in item.sweep.accepted(item.sweep.versions)]
    # the sweep labels TLS 1.0 "TLSv1"; spell it as people say it
    return ", ".join("1.0" if a == "1" else a for a in accepted) if accepted else "none"


def _certificate_cell(
    assessment: Assessment, host: str, address: str, item: AddressCertificate | None
) -> str:
    if item is None:
        return DASH
    # why it failed is in the findings (x509.expired, x509.name_mismatch...), not in the facts
    problems = [
        f.id.removeprefix("x509.")
        for f in assessment.findings
        if f.protocol == "x509" and f.subject == f"{host} {address}" and f.status in PROBLEM_STATUSES
    ]
    state = "valid" if item.outcome is Status.PASS else ", ".join(problems) or item.outcome.value
    presented = item.presented
    if presented is None:
        return state
    return f"{state}; {presented.name or DASH}; {presented.days_left} days left"


def _dane_cell(item: AddressDane | None) -> str:
    if item is None:
        return DASH
    return DANE_LABELS.get(item.label, item.label.replace("_", " "))


def _mta_sts_cell(assessment: Assessment, host: str) -> str:
    facts = assessment.facts(MtaStsVerdictFacts)
    coverage = facts.covering(host) if facts else None
    if coverage is None or coverage.covered is None:
        return DASH
    return f"covered; by {coverage.pattern}" if coverage.covered else "not covered"
