"""What a monitor can alert on, from the ingested reports.

`report_events` looks at what was ingested since the last look (an event stream):
- `new_unknown_source`: an IP that sent DMARC-failing mail as the domain in reports ingested
  since the last look, that no earlier report showed for the domain, and that the domain's SPF
  does not list now (an SPF that cannot be evaluated raises nothing: no alert on a guess);
- `tls_failure_rate`: the share of failed TLS sessions towards the domain, in reports ingested
  since the last look, above a threshold.

`report_conditions` is what the monitor's alerts hold on (issue 21): the same two questions over
the reports whose date range ends within a window, for one domain, so that an alert stays open
while the reports keep showing the problem and is resolved once they stop (RFC 9990 and RFC 8460
reports cover a day each; a window of several days rides out a receiver that reports late).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, func, select

from mecsa.dns.resolver import DnsClient, Resolver
from mecsa.reports.storage import ReportStore
from mecsa.reports.views import SpfMembership
from mecsa.store.reports import dmarc_records, dmarc_reports, tls_policies, tls_reports

DEFAULT_TLS_THRESHOLD = 0.05


class EventKind(StrEnum):
    NEW_UNKNOWN_SOURCE = "new_unknown_source"
    TLS_FAILURE_RATE = "tls_failure_rate"


@dataclass(frozen=True, slots=True)
class ReportEvent:
    kind: EventKind
    domain: str
    subject: str  # the source IP, or the domain for a rate
    detail: str
    value: float  # messages from the source, or the failure rate

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind.value,
            "domain": self.domain,
            "subject": self.subject,
            "detail": self.detail,
            "value": self.value,
        }


def _new_failing_sources(store: ReportStore, since: dt.datetime) -> list[tuple[str, str, int]]:
    cut = int(since.timestamp())
    joined = dmarc_records.join(dmarc_reports, dmarc_records.c.report == dmarc_reports.c.id)
    recent = (
        select(dmarc_reports.c.domain, dmarc_records.c.source_ip, func.sum(dmarc_records.c.count))
        .select_from(joined)
        .where(
            dmarc_reports.c.ingested_ts >= cut,
            dmarc_records.c.dkim_aligned == "fail",
            dmarc_records.c.spf_aligned == "fail",
        )
        .group_by(dmarc_reports.c.domain, dmarc_records.c.source_ip)
    )
    earlier = {
        (d, ip)
        for d, ip in store.rows(
            select(dmarc_reports.c.domain, dmarc_records.c.source_ip)
            .select_from(joined)
            .where(dmarc_reports.c.ingested_ts < cut)
            .group_by(dmarc_reports.c.domain, dmarc_records.c.source_ip)
        )
    }
    return [(d, ip, int(n)) for d, ip, n in store.rows(recent) if (d, ip) not in earlier]


def tls_rate_events(
    store: ReportStore, since: dt.datetime, threshold: float = DEFAULT_TLS_THRESHOLD
) -> list[ReportEvent]:
    """Domains whose TLS failure share, in reports ingested since `since`, is above `threshold`."""
    joined = tls_policies.join(tls_reports, tls_policies.c.report == tls_reports.c.id)
    statement = (
        select(
            tls_policies.c.policy_domain, func.sum(tls_policies.c.successful), func.sum(tls_policies.c.failed)
        )
        .select_from(joined)
        .where(and_(tls_reports.c.ingested_ts >= int(since.timestamp())))
        .group_by(tls_policies.c.policy_domain)
    )
    events = []
    for domain, ok, bad in store.rows(statement):
        total = int(ok) + int(bad)
        rate = int(bad) / total if total else 0.0
        if rate > threshold:
            detail = f"{int(bad)} of {total} TLS sessions failed ({rate:.1%}, threshold {threshold:.1%})"
            events.append(ReportEvent(EventKind.TLS_FAILURE_RATE, domain, domain, detail, round(rate, 4)))
    return events


async def report_events(
    store: ReportStore,
    client: DnsClient,
    since: dt.datetime,
    tls_threshold: float = DEFAULT_TLS_THRESHOLD,
) -> list[ReportEvent]:
    """Every event in the reports ingested since `since` (the monitor passes its last run)."""
    from mecsa.reports.lookups import spf_membership

    fresh = _new_failing_sources(store, since)
    membership = await spf_membership(Resolver(client), [(d, ip) for d, ip, _ in fresh])
    events = [
        ReportEvent(
            EventKind.NEW_UNKNOWN_SOURCE,
            domain,
            ip,
            f"{ip} sent {count} messages as {domain} that failed DMARC; it is not in {domain}'s SPF",
            float(count),
        )
        for domain, ip, count in fresh
        if membership.get((domain, ip)) is SpfMembership.NOT_LISTED
    ]
    return events + tls_rate_events(store, since, tls_threshold)


# --- conditions over a window (the monitor's alerts) ------------------------------------------------


@dataclass(frozen=True, slots=True)
class UnknownSource:
    """A source IP whose mail as the domain failed DMARC (nothing aligned) and that SPF does not list."""

    ip: str
    messages: int
    orgs: tuple[str, ...]
    dispositions: tuple[str, ...]
    reverse_name: str | None = None


@dataclass(frozen=True, slots=True)
class TlsFailureType:
    result_type: str
    policy_type: str
    receiving_mx: str | None
    sessions: int


@dataclass(frozen=True, slots=True)
class TlsRate:
    successful: int
    failed: int
    orgs: tuple[str, ...]
    failures: tuple[TlsFailureType, ...]

    @property
    def rate(self) -> float:
        total = self.successful + self.failed
        return self.failed / total if total else 0.0


@dataclass(frozen=True, slots=True)
class ReportConditions:
    """What one domain's reports in the window show now.

    `undetermined` lists the failing sources whose SPF membership could not be found out now: the
    monitor keeps an alert it had open on them rather than call them fixed.
    """

    domain: str
    unknown_sources: tuple[UnknownSource, ...]
    undetermined: tuple[str, ...]
    tls: TlsRate | None  # None: no TLS report in the window
    tls_threshold: float

    @property
    def tls_above_threshold(self) -> bool:
        return self.tls is not None and self.tls.rate > self.tls_threshold


def _failing_sources_of(
    store: ReportStore, domain: str, since: dt.datetime
) -> list[tuple[str, int, str, str]]:
    joined = dmarc_records.join(dmarc_reports, dmarc_records.c.report == dmarc_reports.c.id)
    statement = (
        select(
            dmarc_records.c.source_ip,
            dmarc_reports.c.org_name,
            dmarc_records.c.disposition,
            func.sum(dmarc_records.c.count),
        )
        .select_from(joined)
        .where(
            dmarc_reports.c.domain == domain,
            dmarc_reports.c.end_ts >= int(since.timestamp()),
            dmarc_records.c.dkim_aligned == "fail",
            dmarc_records.c.spf_aligned == "fail",
        )
        .group_by(dmarc_records.c.source_ip, dmarc_reports.c.org_name, dmarc_records.c.disposition)
    )
    return [(ip, int(n), org, disposition) for ip, org, disposition, n in store.rows(statement)]


def tls_rate_of(store: ReportStore, domain: str, since: dt.datetime) -> TlsRate | None:
    """The TLS sessions towards `domain` in the reports ending since `since`, with the failure types."""
    from mecsa.store.reports import tls_failures

    cut = int(since.timestamp())
    joined = tls_policies.join(tls_reports, tls_policies.c.report == tls_reports.c.id)
    where = and_(tls_policies.c.policy_domain == domain, tls_reports.c.end_ts >= cut)
    totals = list(
        store.rows(
            select(
                tls_reports.c.org_name, func.sum(tls_policies.c.successful), func.sum(tls_policies.c.failed)
            )
            .select_from(joined)
            .where(where)
            .group_by(tls_reports.c.org_name)
        )
    )
    if not totals:
        return None
    failures = [
        TlsFailureType(str(result_type), str(policy_type), mx, int(sessions))
        for result_type, policy_type, mx, sessions in store.rows(
            select(
                tls_failures.c.result_type,
                tls_policies.c.policy_type,
                tls_failures.c.receiving_mx_hostname,
                func.sum(tls_failures.c.failed_sessions),
            )
            .select_from(tls_failures.join(joined, tls_failures.c.policy == tls_policies.c.id))
            .where(where)
            .group_by(
                tls_failures.c.result_type, tls_policies.c.policy_type, tls_failures.c.receiving_mx_hostname
            )
        )
    ]
    failures.sort(key=lambda f: (-f.sessions, f.result_type, f.receiving_mx or ""))
    return TlsRate(
        sum(int(ok) for _, ok, _ in totals),
        sum(int(bad) for _, _, bad in totals),
        tuple(sorted({str(org) for org, _, _ in totals})),
        tuple(failures),
    )


async def report_conditions(
    store: ReportStore,
    client: DnsClient,
    domain: str,
    since: dt.datetime,
    tls_threshold: float = DEFAULT_TLS_THRESHOLD,
) -> ReportConditions:
    """Unknown senders and the TLS failure rate of `domain`, over the reports ending since `since`.

    SPF membership is asked now (RFC 7208 check_host): a source the domain has since authorised
    is no longer unknown; one whose SPF cannot be evaluated is `undetermined`, never unknown.
    """
    from mecsa.reports.lookups import reverse_names, spf_membership

    slots: dict[str, dict[str, Any]] = {}
    for ip, count, org, disposition in _failing_sources_of(store, domain, since):
        slot = slots.setdefault(ip, {"messages": 0, "orgs": set(), "dispositions": set()})
        slot["messages"] += count
        slot["orgs"].add(org)
        slot["dispositions"].add(disposition)
    resolver = Resolver(client)
    membership = await spf_membership(resolver, [(domain, ip) for ip in slots]) if slots else {}
    unknown_ips = [ip for ip in slots if membership.get((domain, ip)) is SpfMembership.NOT_LISTED]
    names = await reverse_names(resolver, unknown_ips) if unknown_ips else {}
    unknown = tuple(
        UnknownSource(
            ip,
            slots[ip]["messages"],
            tuple(sorted(slots[ip]["orgs"])),
            tuple(sorted(slots[ip]["dispositions"])),
            names.get(ip),
        )
        for ip in sorted(unknown_ips, key=lambda ip: (-slots[ip]["messages"], ip))
    )
    undetermined = tuple(
        sorted(
            ip for ip in slots if membership.get((domain, ip), SpfMembership.UNKNOWN) is SpfMembership.UNKNOWN
        )
    )
    return ReportConditions(domain, unknown, undetermined, tls_rate_of(store, domain, since), tls_threshold)
