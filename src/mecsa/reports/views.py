"""Typed summaries of the store for people: DMARC sources and TLS sessions per domain.

Queries aggregate in SQL (GROUP BY), so a view costs memory per *distinct* source, never per
record. DNS facts a view shows (reverse names, whether a source IP is in the domain's own SPF)
are looked up by the caller (`lookups`) and handed in, so building the view stays pure.

Source groups (issue 22):
- `aligned_passing`: every message from the source passed DMARC;
- `failing_known`: some failed, and the IP is listed in the domain's own SPF (check_host = pass);
- `unknown`: some failed, and the IP is not in the domain's SPF: likely spoofing;
- `undetermined`: some failed, and the SPF question could not be answered (never guessed).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, case, func, select

from mecsa.reports.storage import ReportStore
from mecsa.store.reports import dmarc_records, dmarc_reports, tls_failures, tls_policies, tls_reports

MAX_SOURCES = 200  # per domain in a view; the rest is counted, not listed


class SourceGroup(StrEnum):
    ALIGNED_PASSING = "aligned_passing"
    FAILING_KNOWN = "failing_known"
    UNKNOWN = "unknown"
    UNDETERMINED = "undetermined"


class SpfMembership(StrEnum):
    """Whether an IP is in a domain's SPF, asked live (RFC 7208 check_host)."""

    LISTED = "listed"
    NOT_LISTED = "not_listed"
    UNKNOWN = "unknown"  # temperror, timeout: could not find out


@dataclass(frozen=True, slots=True)
class Window:
    domain: str | None = None
    since: dt.datetime | None = None

    def dmarc_filter(self) -> Any:
        clauses = []
        if self.domain:
            clauses.append(dmarc_reports.c.domain == self.domain)
        if self.since:
            clauses.append(dmarc_reports.c.end_ts >= int(self.since.timestamp()))
        return and_(True, *clauses)

    def tls_filter(self) -> Any:
        clauses = []
        if self.domain:
            clauses.append(tls_policies.c.policy_domain == self.domain)
        if self.since:
            clauses.append(tls_reports.c.end_ts >= int(self.since.timestamp()))
        return and_(True, *clauses)


@dataclass(frozen=True, slots=True)
class DmarcSource:
    """One sending IP for one domain, over the window."""

    ip: str
    messages: int
    passed: int
    dkim_aligned: int
    spf_aligned: int
    orgs: tuple[str, ...]
    dispositions: Mapping[str, int]
    group: SourceGroup
    reverse_name: str | None = None
    # The raw results, uninterpreted for DMARC ("dkim d=esp.test pass", "spf example.test fail"),
    # with the messages that carried each.
    auth_results: Mapping[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return self.messages - self.passed

    def to_json(self) -> dict[str, Any]:
        return {
            "ip": self.ip,
            "reverse_name": self.reverse_name,
            "messages": self.messages,
            "passed": self.passed,
            "failed": self.failed,
            "dkim_aligned": self.dkim_aligned,
            "spf_aligned": self.spf_aligned,
            "orgs": list(self.orgs),
            "dispositions": dict(self.dispositions),
            "auth_results": dict(self.auth_results),
            "group": self.group.value,
        }


@dataclass(frozen=True, slots=True)
class DayCount:
    day: dt.date
    passed: int
    failed: int


@dataclass(frozen=True, slots=True)
class OrgCount:
    org: str
    reports: int
    passed: int
    failed: int


@dataclass(frozen=True, slots=True)
class DmarcDomainView:
    domain: str
    reports: int
    messages: int
    passed: int
    orgs: tuple[OrgCount, ...]
    sources: tuple[DmarcSource, ...]
    days: tuple[DayCount, ...]
    sources_not_listed: int = 0

    def group(self, group: SourceGroup) -> tuple[DmarcSource, ...]:
        return tuple(s for s in self.sources if s.group is group)

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "reports": self.reports,
            "messages": self.messages,
            "passed": self.passed,
            "failed": self.messages - self.passed,
            "orgs": [
                {"org": o.org, "reports": o.reports, "passed": o.passed, "failed": o.failed}
                for o in self.orgs
            ],
            "groups": {g.value: [s.to_json() for s in self.group(g)] for g in SourceGroup},
            "sources_not_listed": self.sources_not_listed,
            "days": [{"day": d.day.isoformat(), "passed": d.passed, "failed": d.failed} for d in self.days],
        }


@dataclass(frozen=True, slots=True)
class TlsCount:
    """Sessions under one key (a sending organisation, or a policy)."""

    key: str
    successful: int
    failed: int

    @property
    def failure_rate(self) -> float:
        total = self.successful + self.failed
        return self.failed / total if total else 0.0


@dataclass(frozen=True, slots=True)
class TlsFailureClass:
    """Failed sessions of one result type towards one MX (or policy host)."""

    result_type: str
    policy_type: str
    receiving_mx: str | None
    receiving_ip: str | None
    sessions: int
    orgs: tuple[str, ...]
    last_seen: dt.datetime
    reason_codes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "result_type": self.result_type,
            "policy_type": self.policy_type,
            "receiving_mx": self.receiving_mx,
            "receiving_ip": self.receiving_ip,
            "sessions": self.sessions,
            "orgs": list(self.orgs),
            "last_seen": self.last_seen.isoformat(),
            "reason_codes": list(self.reason_codes),
        }


@dataclass(frozen=True, slots=True)
class TlsDomainView:
    domain: str
    reports: int
    by_org: tuple[TlsCount, ...]
    by_policy: tuple[TlsCount, ...]
    failures: tuple[TlsFailureClass, ...]
    days: tuple[DayCount, ...]

    @property
    def total(self) -> TlsCount:
        return TlsCount(
            self.domain, sum(c.successful for c in self.by_org), sum(c.failed for c in self.by_org)
        )

    def to_json(self) -> dict[str, Any]:
        total = self.total
        return {
            "domain": self.domain,
            "reports": self.reports,
            "successful": total.successful,
            "failed": total.failed,
            "by_org": [{"org": c.key, "successful": c.successful, "failed": c.failed} for c in self.by_org],
            "by_policy": [
                {"policy": c.key, "successful": c.successful, "failed": c.failed} for c in self.by_policy
            ],
            "failures": [f.to_json() for f in self.failures],
            "days": [
                {"day": d.day.isoformat(), "successful": d.passed, "failed": d.failed} for d in self.days
            ],
        }


@dataclass(frozen=True, slots=True)
class ReportsView:
    window: Window
    dmarc: tuple[DmarcDomainView, ...]
    tls: tuple[TlsDomainView, ...]
    generated_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.window.domain,
            "since": self.window.since.isoformat() if self.window.since else None,
            "generated_at": self.generated_at.isoformat(),
            "dmarc": [d.to_json() for d in self.dmarc],
            "tls": [t.to_json() for t in self.tls],
        }


# --- queries --------------------------------------------------------------------------------------

_PASSED = case(
    (
        (dmarc_records.c.dkim_aligned == "pass") | (dmarc_records.c.spf_aligned == "pass"),
        dmarc_records.c.count,
    ),
    else_=0,
)


def dmarc_failing_sources(store: ReportStore, window: Window) -> list[tuple[str, str]]:
    """(domain, ip) of every source with at least one DMARC failure in the window."""
    statement = (
        select(dmarc_reports.c.domain, dmarc_records.c.source_ip)
        .join(dmarc_reports, dmarc_records.c.report == dmarc_reports.c.id)
        .where(
            window.dmarc_filter(),
            dmarc_records.c.dkim_aligned == "fail",
            dmarc_records.c.spf_aligned == "fail",
        )
        .group_by(dmarc_reports.c.domain, dmarc_records.c.source_ip)
    )
    return [(r[0], r[1]) for r in store.rows(statement)]


def dmarc_source_ips(store: ReportStore, window: Window) -> list[str]:
    statement = (
        select(dmarc_records.c.source_ip)
        .join(dmarc_reports, dmarc_records.c.report == dmarc_reports.c.id)
        .where(window.dmarc_filter())
        .group_by(dmarc_records.c.source_ip)
        .order_by(func.sum(dmarc_records.c.count).desc())
        .limit(MAX_SOURCES)
    )
    return [r[0] for r in store.rows(statement)]


def _auth_results(dkim_json: str, spf_json: str) -> list[str]:
    dkim = [f"dkim d={d.get('domain')} {d.get('result')}" for d in json.loads(dkim_json)]
    spf = [f"spf {s.get('domain')} {s.get('result')}" for s in json.loads(spf_json)]
    return dkim + spf or ["no DKIM or SPF result"]


def _dmarc_domain_views(
    store: ReportStore,
    window: Window,
    spf: Mapping[tuple[str, str], SpfMembership],
    reverse: Mapping[str, str | None],
) -> tuple[DmarcDomainView, ...]:
    where = window.dmarc_filter()
    joined = dmarc_records.join(dmarc_reports, dmarc_records.c.report == dmarc_reports.c.id)
    per_source: dict[tuple[str, str], dict[str, Any]] = {}
    statement = (
        select(
            dmarc_reports.c.domain,
            dmarc_records.c.source_ip,
            dmarc_reports.c.org_name,
            dmarc_records.c.disposition,
            dmarc_records.c.dkim,
            dmarc_records.c.spf,
            func.sum(dmarc_records.c.count),
            func.sum(_PASSED),
            func.sum(case((dmarc_records.c.dkim_aligned == "pass", dmarc_records.c.count), else_=0)),
            func.sum(case((dmarc_records.c.spf_aligned == "pass", dmarc_records.c.count), else_=0)),
        )
        .select_from(joined)
        .where(where)
        .group_by(
            dmarc_reports.c.domain,
            dmarc_records.c.source_ip,
            dmarc_reports.c.org_name,
            dmarc_records.c.disposition,
            dmarc_records.c.dkim,
            dmarc_records.c.spf,
        )
    )
    for domain, ip, org, disposition, dkim_json, spf_json, messages, passed, dkim, spf_pass in store.rows(
        statement
    ):
        slot = per_source.setdefault(
            (domain, ip),
            {"messages": 0, "passed": 0, "dkim": 0, "spf": 0, "orgs": set(), "dispositions": {}, "auth": {}},
        )
        slot["messages"] += int(messages)
        slot["passed"] += int(passed)
        slot["dkim"] += int(dkim)
        slot["spf"] += int(spf_pass)
        slot["orgs"].add(org)
        slot["dispositions"][disposition] = slot["dispositions"].get(disposition, 0) + int(messages)
        for result in _auth_results(dkim_json, spf_json):
            slot["auth"][result] = slot["auth"].get(result, 0) + int(messages)
    reports: dict[str, int] = {}
    for domain, count in store.rows(
        select(dmarc_reports.c.domain, func.count()).where(where).group_by(dmarc_reports.c.domain)
    ):
        reports[domain] = int(count)
    orgs: dict[str, list[OrgCount]] = defaultdict(list)
    org_statement = (
        select(
            dmarc_reports.c.domain,
            dmarc_reports.c.org_name,
            func.count(func.distinct(dmarc_reports.c.id)),
            func.sum(dmarc_records.c.count),
            func.sum(_PASSED),
        )
        .select_from(joined)
        .where(where)
        .group_by(dmarc_reports.c.domain, dmarc_reports.c.org_name)
        .order_by(func.sum(dmarc_records.c.count).desc())
    )
    for domain, org, n, messages, passed in store.rows(org_statement):
        orgs[domain].append(OrgCount(org, int(n), int(passed), int(messages) - int(passed)))
    days: dict[str, list[DayCount]] = defaultdict(list)
    day = (dmarc_reports.c.begin_ts // 86400).label("day")
    day_statement = (
        select(dmarc_reports.c.domain, day, func.sum(dmarc_records.c.count), func.sum(_PASSED))
        .select_from(joined)
        .where(where)
        .group_by(dmarc_reports.c.domain, day)
        .order_by(day)
    )
    for domain, number, messages, passed in store.rows(day_statement):
        date = dt.datetime.fromtimestamp(int(number) * 86400, dt.UTC).date()
        days[domain].append(DayCount(date, int(passed), int(messages) - int(passed)))
    views = []
    for domain in sorted(reports):
        sources = []
        for (d, ip), slot in per_source.items():
            if d != domain:
                continue
            if slot["passed"] == slot["messages"]:
                group = SourceGroup.ALIGNED_PASSING
            else:
                membership = spf.get((domain, ip), SpfMembership.UNKNOWN)
                group = {
                    SpfMembership.LISTED: SourceGroup.FAILING_KNOWN,
                    SpfMembership.NOT_LISTED: SourceGroup.UNKNOWN,
                    SpfMembership.UNKNOWN: SourceGroup.UNDETERMINED,
                }[membership]
            sources.append(
                DmarcSource(
                    ip,
                    slot["messages"],
                    slot["passed"],
                    slot["dkim"],
                    slot["spf"],
                    tuple(sorted(slot["orgs"])),
                    dict(sorted(slot["dispositions"].items())),
                    group,
                    reverse.get(ip),
                    dict(sorted(slot["auth"].items())),
                )
            )
        sources.sort(key=lambda s: (-s.messages, s.ip))
        messages = sum(s.messages for s in sources)
        passed = sum(s.passed for s in sources)
        views.append(
            DmarcDomainView(
                domain,
                reports[domain],
                messages,
                passed,
                tuple(orgs[domain]),
                tuple(sources[:MAX_SOURCES]),
                tuple(days[domain]),
                max(0, len(sources) - MAX_SOURCES),
            )
        )
    return tuple(views)


def _tls_domain_views(store: ReportStore, window: Window) -> tuple[TlsDomainView, ...]:
    where = window.tls_filter()
    joined = tls_policies.join(tls_reports, tls_policies.c.report == tls_reports.c.id)
    by_org: dict[str, list[TlsCount]] = defaultdict(list)
    reports: dict[str, int] = {}
    for domain, org, n, ok, bad in store.rows(
        select(
            tls_policies.c.policy_domain,
            tls_reports.c.org_name,
            func.count(func.distinct(tls_reports.c.id)),
            func.sum(tls_policies.c.successful),
            func.sum(tls_policies.c.failed),
        )
        .select_from(joined)
        .where(where)
        .group_by(tls_policies.c.policy_domain, tls_reports.c.org_name)
        .order_by(tls_reports.c.org_name)
    ):
        by_org[domain].append(TlsCount(org, int(ok), int(bad)))
        reports[domain] = reports.get(domain, 0) + int(n)
    by_policy: dict[str, list[TlsCount]] = defaultdict(list)
    for domain, policy_type, ok, bad in store.rows(
        select(
            tls_policies.c.policy_domain,
            tls_policies.c.policy_type,
            func.sum(tls_policies.c.successful),
            func.sum(tls_policies.c.failed),
        )
        .select_from(joined)
        .where(where)
        .group_by(tls_policies.c.policy_domain, tls_policies.c.policy_type)
        .order_by(tls_policies.c.policy_type)
    ):
        by_policy[domain].append(TlsCount(policy_type, int(ok), int(bad)))
    failures: dict[tuple[str, str, str, str | None, str | None], dict[str, Any]] = {}
    for domain, policy_type, result_type, mx, ip, org, code, sessions, last in store.rows(
        select(
            tls_policies.c.policy_domain,
            tls_policies.c.policy_type,
            tls_failures.c.result_type,
            tls_failures.c.receiving_mx_hostname,
            tls_failures.c.receiving_ip,
            tls_reports.c.org_name,
            tls_failures.c.failure_reason_code,
            func.sum(tls_failures.c.failed_sessions),
            func.max(tls_reports.c.end_ts),
        )
        .select_from(tls_failures.join(joined, tls_failures.c.policy == tls_policies.c.id))
        .where(where)
        .group_by(
            tls_policies.c.policy_domain,
            tls_policies.c.policy_type,
            tls_failures.c.result_type,
            tls_failures.c.receiving_mx_hostname,
            tls_failures.c.receiving_ip,
            tls_reports.c.org_name,
            tls_failures.c.failure_reason_code,
        )
    ):
        slot = failures.setdefault(
            (domain, policy_type, result_type, mx, ip),
            {"sessions": 0, "orgs": set(), "codes": set(), "last": 0},
        )
        slot["sessions"] += int(sessions)
        slot["orgs"].add(org)
        if code:
            slot["codes"].add(code)
        slot["last"] = max(slot["last"], int(last))
    days: dict[str, list[DayCount]] = defaultdict(list)
    day = (tls_reports.c.begin_ts // 86400).label("day")
    for domain, number, ok, bad in store.rows(
        select(
            tls_policies.c.policy_domain,
            day,
            func.sum(tls_policies.c.successful),
            func.sum(tls_policies.c.failed),
        )
        .select_from(joined)
        .where(where)
        .group_by(tls_policies.c.policy_domain, day)
        .order_by(day)
    ):
        date = dt.datetime.fromtimestamp(int(number) * 86400, dt.UTC).date()
        days[domain].append(DayCount(date, int(ok), int(bad)))
    views = []
    for domain in sorted(reports):
        classes = [
            TlsFailureClass(
                result_type,
                policy_type,
                mx,
                ip,
                slot["sessions"],
                tuple(sorted(slot["orgs"])),
                dt.datetime.fromtimestamp(slot["last"], dt.UTC),
                tuple(sorted(slot["codes"])),
            )
            for (d, policy_type, result_type, mx, ip), slot in failures.items()
            if d == domain
        ]
        classes.sort(key=lambda c: (-c.sessions, c.result_type, c.receiving_mx or ""))
        views.append(
            TlsDomainView(
                domain,
                reports[domain],
                tuple(by_org[domain]),
                tuple(by_policy[domain]),
                tuple(classes),
                tuple(days[domain]),
            )
        )
    return tuple(views)


def build_view(
    store: ReportStore,
    window: Window,
    spf: Mapping[tuple[str, str], SpfMembership] | None = None,
    reverse: Mapping[str, str | None] | None = None,
) -> ReportsView:
    """The view of the window: DMARC per domain and source, TLS per domain, organisation and policy."""
    return ReportsView(
        window, _dmarc_domain_views(store, window, spf or {}, reverse or {}), _tls_domain_views(store, window)
    )
