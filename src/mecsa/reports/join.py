"""The join: each failure class in the reports re-probed live with mecsa's own checks, and its fix.

- TLS failures (RFC 8460 §4.3) → assess the policy domain now (MX, STARTTLS, X.509, DANE, DNSSEC,
  MTA-STS) and look at the protocol the result type names, on the reported MX host;
- DMARC failures → check_host() now for the source IP against the domain's SPF:
  - DKIM-aligned source outside SPF → the `ip4:`/`ip6:` to add (or the provider's `include:`);
  - known source (in SPF) whose DKIM is not aligned → the signing domain to fix (d= must be the
    domain, or a subdomain under relaxed alignment, RFC 7489 §3.1.1);
  - unknown source, nothing aligned → likely spoofing: nothing to add, the policy handles it.

Each item says whether the problem is still there, "fixed since the report", or could not be
checked now (a timeout or SERVFAIL is never taken for "fixed").
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select

from mecsa.dns.resolver import DnsClient, Resolver
from mecsa.fixes import Fix, Snippet, fixes_for
from mecsa.model import Assessment, Status, VerdictStatus
from mecsa.observe.context import AssessOptions
from mecsa.reports.storage import ReportStore
from mecsa.reports.views import ReportsView, SpfMembership, TlsFailureClass, Window
from mecsa.spf.evaluator import fetch_record
from mecsa.store.reports import dmarc_records, dmarc_reports

# RFC 8460 §4.3 result type → the mecsa protocols that would show the same fault.
_CERTIFICATE = ("x509", "dane")
RESULT_PROTOCOLS: Mapping[str, tuple[str, ...]] = {
    "starttls-not-supported": ("starttls",),
    "certificate-host-mismatch": _CERTIFICATE,
    "certificate-expired": _CERTIFICATE,
    "certificate-not-trusted": _CERTIFICATE,
    "validation-failure": ("starttls", "x509", "dane"),
    "tlsa-invalid": ("dane",),
    "dane-required": ("dane", "dnssec"),
    "dnssec-invalid": ("dnssec",),
    "sts-policy-fetch-error": ("mta-sts",),
    "sts-policy-invalid": ("mta-sts",),
    "sts-webpki-invalid": ("mta-sts",),
}
TRANSPORT_CHECKS = frozenset({"mx", "starttls", "x509", "dane", "dnssec", "mta-sts"})


class JoinStatus(StrEnum):
    STILL_FAILING = "still_failing"
    FIXED = "fixed_since_report"
    COULD_NOT_CHECK = "could_not_check"
    NO_LONGER_APPLIES = "no_longer_applies"
    NOT_PROBED = "not_probed"  # nothing mecsa can probe decides it (another party's signer)


@dataclass(frozen=True, slots=True)
class JoinItem:
    """One failure class from the reports, and what a live probe says about it now."""

    kind: str  # "tls" or "dmarc"
    domain: str
    problem: str
    reported: str
    status: JoinStatus
    now: str
    fixes: tuple[Fix, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "domain": self.domain,
            "problem": self.problem,
            "reported": self.reported,
            "status": self.status.value,
            "now": self.now,
            "fixes": [f.to_json() for f in self.fixes],
        }


# --- TLS ------------------------------------------------------------------------------------------


def protocols_for(result_type: str, policy_type: str) -> tuple[str, ...]:
    """The protocols whose findings decide a reported result type under a policy type.

    Under an MTA-STS policy the certificate must be PKIX-valid (RFC 8461 §4.2): x509 decides;
    under DANE the TLSA records decide (RFC 7672 §3.1), and a DANE-EE certificate need not be
    PKIX-valid, so x509 does not; without a policy, the certificate still says what it is.
    """
    protocols = RESULT_PROTOCOLS.get(result_type, ("starttls", "x509", "dane", "dnssec", "mta-sts"))
    if policy_type == "sts":
        return tuple(p for p in protocols if p != "dane") or ("mta-sts",)
    if policy_type == "tlsa":
        return tuple(p for p in protocols if p not in ("x509", "mta-sts")) or ("dane",)
    return tuple(p for p in protocols if p != "dane") or protocols


def _host_of(subject: str | None) -> str | None:
    return subject.split()[0].lower().rstrip(".") if subject else None


def judge_tls(assessment: Assessment, failure: TlsFailureClass) -> tuple[JoinStatus, str, tuple[Fix, ...]]:
    """What `assessment` (made now) says about one reported TLS failure class. Pure."""
    protocols = protocols_for(failure.result_type, failure.policy_type)
    mx = failure.receiving_mx
    hosts = {_host_of(f.subject) for f in assessment.findings if f.subject}
    if mx and "*" not in mx and hosts and mx not in hosts:
        return JoinStatus.NO_LONGER_APPLIES, f"{mx} is no longer an MX host of {assessment.domain}", ()

    def concerns(subject: str | None) -> bool:
        host = _host_of(subject)
        return host is None or mx is None or "*" in mx or host == mx

    relevant = [f for f in assessment.findings if f.protocol in protocols and concerns(f.subject)]
    failing = [f for f in relevant if f.status in (Status.FAIL, Status.WARN)]
    if failing:
        ids = {f.id for f in failing}
        fixes = tuple(fix for fix in fixes_for(assessment) if ids & set(fix.findings))
        return JoinStatus.STILL_FAILING, "; ".join(f.message for f in failing[:3]), fixes
    errors = [f for f in relevant if f.status is Status.ERROR]
    if errors:
        return JoinStatus.COULD_NOT_CHECK, "; ".join(f.message for f in errors[:3]), ()
    verdicts = {v.protocol: v for r in assessment.results for v in r.verdicts if v.protocol in protocols}
    if verdicts and all(v.status is VerdictStatus.NOT_APPLICABLE for v in verdicts.values()):
        why = "; ".join(f"{p}: {v.reason}" for p, v in sorted(verdicts.items()))
        return JoinStatus.NO_LONGER_APPLIES, why, ()
    passing = [f for f in relevant if f.status is Status.PASS]
    if not passing:
        return JoinStatus.COULD_NOT_CHECK, "the live checks said nothing about this MX host", ()
    return JoinStatus.FIXED, "; ".join(f.message for f in passing[:2]), ()


async def tls_join(view: ReportsView, client: DnsClient, options: AssessOptions) -> list[JoinItem]:
    """Assess each domain with TLS failures once, now, and judge every failure class against it."""
    from mecsa.assess import assess

    items: list[JoinItem] = []
    for domain_view in view.tls:
        if not domain_view.failures:
            continue
        wanted = AssessOptions(
            dkim_selectors=options.dkim_selectors,
            ca_file=options.ca_file,
            smtp_timeout=options.smtp_timeout,
            tls_versions=False,  # the join asks "does it fail now", not "which versions"
            smtp_port=options.smtp_port,
            https_port=options.https_port,
            only=TRANSPORT_CHECKS,
            check_deadline=options.check_deadline,
        )
        assessment = await assess(domain_view.domain, client, wanted)
        for failure in domain_view.failures:
            status, now, fixes = judge_tls(assessment, failure)
            target = failure.receiving_mx or failure.receiving_ip or "the policy host"
            reported = (
                f"{failure.sessions} failed sessions ({failure.policy_type}) reported by "
                f"{', '.join(failure.orgs)}, last {failure.last_seen:%Y-%m-%d}"
            )
            items.append(
                JoinItem(
                    "tls",
                    domain_view.domain,
                    f"{failure.result_type} on {target}",
                    reported,
                    status,
                    now,
                    fixes,
                )
            )
    return items


# --- DMARC ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FailingSource:
    """The messages of one source IP for one domain that did not pass an aligned check."""

    domain: str
    ip: str
    messages: int
    dkim_aligned: int  # of those messages, how many had an aligned DKIM pass
    spf_aligned: int
    dkim_domains: tuple[str, ...]  # d= domains of the signatures seen, passing or not
    envelope_domains: tuple[str, ...]
    orgs: tuple[str, ...]


def failing_sources(store: ReportStore, window: Window) -> list[FailingSource]:
    """Sources with messages whose SPF or DKIM was not aligned, from the store (grouped in SQL)."""
    joined = dmarc_records.join(dmarc_reports, dmarc_records.c.report == dmarc_reports.c.id)
    statement = (
        select(
            dmarc_reports.c.domain,
            dmarc_records.c.source_ip,
            dmarc_records.c.dkim_aligned,
            dmarc_records.c.spf_aligned,
            dmarc_records.c.dkim,
            dmarc_records.c.envelope_from,
            dmarc_reports.c.org_name,
            func.sum(dmarc_records.c.count),
        )
        .select_from(joined)
        .where(
            window.dmarc_filter(),
            (dmarc_records.c.dkim_aligned == "fail") | (dmarc_records.c.spf_aligned == "fail"),
        )
        .group_by(
            dmarc_reports.c.domain,
            dmarc_records.c.source_ip,
            dmarc_records.c.dkim_aligned,
            dmarc_records.c.spf_aligned,
            dmarc_records.c.dkim,
            dmarc_records.c.envelope_from,
            dmarc_reports.c.org_name,
        )
    )
    slots: dict[tuple[str, str], dict[str, Any]] = {}
    for domain, ip, dkim_aligned, spf_aligned, dkim, envelope, org, count in store.rows(statement):
        slot = slots.setdefault(
            (domain, ip), {"messages": 0, "dkim": 0, "spf": 0, "d": set(), "env": set(), "orgs": set()}
        )
        slot["messages"] += int(count)
        slot["dkim"] += int(count) if dkim_aligned == "pass" else 0
        slot["spf"] += int(count) if spf_aligned == "pass" else 0
        slot["d"].update(str(d.get("domain", "")) for d in json.loads(dkim) if d.get("domain"))
        if envelope:
            slot["env"].add(envelope)
        slot["orgs"].add(org)
    return [
        FailingSource(
            domain,
            ip,
            s["messages"],
            s["dkim"],
            s["spf"],
            tuple(sorted(s["d"])),
            tuple(sorted(s["env"])),
            tuple(sorted(s["orgs"])),
        )
        for (domain, ip), s in sorted(slots.items(), key=lambda kv: (-kv[1]["messages"], kv[0]))
    ]


def spf_with(record: str | None, ip: str) -> str:
    """`record` with `ip4:IP` (or `ip6:`) added before its `all` or `redirect=`; a new record if None."""
    mechanism = ("ip6:" if ":" in ip else "ip4:") + ip
    if not record:
        return f"v=spf1 {mechanism} -all"
    terms = record.split()
    for index, term in enumerate(terms):
        bare = term.lstrip("+-~?").lower()
        if index and (bare == "all" or bare.startswith("redirect=")):
            return " ".join([*terms[:index], mechanism, *terms[index:]])
    return " ".join([*terms, mechanism])


def _aligned(domain: str, signer: str) -> bool:
    # Relaxed alignment (RFC 7489 §3.1.1) approximated by suffix; the exact org-domain test is the
    # DMARC check's job, and the fix text names the signer either way.
    return signer == domain or signer.endswith("." + domain) or domain.endswith("." + signer)


def judge_dmarc(
    source: FailingSource, membership: SpfMembership, spf_record: str | None
) -> tuple[JoinStatus, str, str, tuple[Fix, ...]]:
    """(status, problem, now, fixes) for one failing source, given the live SPF answer. Pure."""
    domain, ip = source.domain, source.ip
    if source.dkim_aligned and source.spf_aligned < source.messages:
        problem = f"{ip}: DKIM-aligned mail that SPF does not authorise"
        if membership is SpfMembership.LISTED:
            return JoinStatus.FIXED, problem, f"{ip} passes {domain}'s SPF now", ()
        if membership is SpfMembership.UNKNOWN:
            return JoinStatus.COULD_NOT_CHECK, problem, f"the SPF of {domain} could not be evaluated now", ()
        from mecsa.harden.records import DnsRecord

        new = DnsRecord(domain, "TXT", spf_with(spf_record, ip)).zone_line()
        fix = Fix(
            "spf.authorise_source",
            f"authorise {ip} in the SPF record (or add the sending provider's include:)",
            (Snippet(f"DNS zone {domain}.", new),),
        )
        return JoinStatus.STILL_FAILING, problem, f"{ip} does not pass {domain}'s SPF now", (fix,)
    if membership is SpfMembership.LISTED:
        signers = [d for d in source.dkim_domains if not _aligned(domain, d)]
        problem = f"{ip}: a source in {domain}'s SPF whose DKIM is not aligned"
        named = ", ".join(f"d={d}" for d in signers) if signers else "no DKIM signature"
        fix = Fix(
            "dkim.align_signer",
            f"make the sender at {ip} sign with d={domain} (it signs with {named})",
            (
                Snippet(
                    f"the DKIM signer of the service sending from {ip}",
                    f"sign with d={domain} and publish its key at <selector>._domainkey.{domain}",
                ),
            ),
        )
        now = (
            f"{ip} is in {domain}'s SPF; DKIM signing is the sender's configuration: the next reports show it"
        )
        return JoinStatus.NOT_PROBED, problem, now, (fix,)
    if membership is SpfMembership.UNKNOWN:
        return (
            JoinStatus.COULD_NOT_CHECK,
            f"{ip}: DMARC failures",
            f"the SPF of {domain} could not be evaluated now",
            (),
        )
    return (
        JoinStatus.NOT_PROBED,
        f"{ip}: unknown sender, nothing aligned (likely spoofing)",
        f"{ip} is not in {domain}'s SPF and signs with no aligned key: nothing to authorise",
        (),
    )


async def dmarc_join(store: ReportStore, window: Window, client: DnsClient) -> list[JoinItem]:
    """Re-check every failing source's SPF now and judge it."""
    from mecsa.reports.lookups import spf_membership

    resolver = Resolver(client)
    sources = failing_sources(store, window)
    membership = await spf_membership(resolver, [(s.domain, s.ip) for s in sources])
    records: dict[str, str | None] = {}
    for domain in sorted({s.domain for s in sources}):
        fetched = await fetch_record(resolver, domain)
        records[domain] = fetched.spf_texts[0] if len(fetched.spf_texts) == 1 else None
    items = []
    for source in sources:
        status, problem, now, fixes = judge_dmarc(
            source, membership.get((source.domain, source.ip), SpfMembership.UNKNOWN), records[source.domain]
        )
        reported = f"{source.messages} messages reported by {', '.join(source.orgs)}"
        items.append(JoinItem("dmarc", source.domain, problem, reported, status, now, fixes))
    return items


async def join(
    store: ReportStore, view: ReportsView, client: DnsClient, options: AssessOptions | None = None
) -> Sequence[JoinItem]:
    """The whole join for one view: TLS failure classes, then DMARC failing sources."""
    tls = await tls_join(view, client, options or AssessOptions())
    dmarc = await dmarc_join(store, view.window, client)
    return (*tls, *dmarc)
