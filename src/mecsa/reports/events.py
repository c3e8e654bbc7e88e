"""What a monitor can alert on (issue 21 will deliver them through its notifiers).

- `new_unknown_source`: an IP that sent DMARC-failing mail as the domain in reports ingested
  since the last look, that no earlier report showed for the domain, and that the domain's SPF
  does not list now (an SPF that cannot be evaluated raises nothing: no alert on a guess);
- `tls_failure_rate`: the share of failed TLS sessions towards the domain, in reports ingested
  since the last look, above a threshold.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

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
