"""DNSSEC: are the answers a sender relies on validated? MECSA's `dnssec` passes only if all are secure.

The subjects are the domain's MX RRset, each MX host's A and AAAA, the SPF TXT (the TXT RRset at
the domain), `_dmarc.<domain>` TXT and each MX host's TLSA (the very names the dane check asks:
`_25._tcp`, after secure CNAME expansion). A negative answer counts by its own status: a secure
NXDOMAIN for `_dmarc` is secure. The status comes from the resolver (the AD bit, EDE, the CD
retry); a resolver that does not validate makes the verdict `error`, never `fail`, because then
nothing can be said.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mecsa.checks.base import CheckSpec
from mecsa.dns.answer import DnsAnswer, DnssecStatus
from mecsa.model import CheckResult, Finding, FindingKind, ProtocolVerdict, Status, VerdictStatus
from mecsa.observe import Context
from mecsa.observe.mx import observe_mx
from mecsa.observe.tlsa import lookup_tlsa

PROTOCOL = "dnssec"

# --- the findings this check declares (id, status, protocol, meaning, remedy) ---

SECURE = FindingKind("dnssec.secure", Status.PASS, PROTOCOL, "every answer that counts is DNSSEC-validated")
BOGUS = FindingKind(
    "dnssec.bogus", Status.FAIL, PROTOCOL, "DNSSEC validation fails for some answer", "dnssec.fix_signatures"
)
INSECURE = FindingKind(
    "dnssec.insecure", Status.FAIL, PROTOCOL, "some answer is not signed", "dnssec.sign_zone"
)
RESOLVER_NOT_VALIDATING = FindingKind(
    "dnssec.resolver_not_validating",
    Status.ERROR,
    PROTOCOL,
    "the resolver does not validate: DNSSEC cannot be judged",
)
LOOKUP_FAILED = FindingKind(
    "dnssec.lookup_failed", Status.ERROR, PROTOCOL, "a lookup failed: the tool could not find out"
)
INDETERMINATE = FindingKind(
    "dnssec.indeterminate", Status.ERROR, PROTOCOL, "the resolver gave no DNSSEC status for some answer"
)


@dataclass(frozen=True, slots=True)
class DnssecSubject:
    """One answer whose DNSSEC status counts, with a label saying why it counts."""

    label: str
    answer: DnsAnswer

    @property
    def state(self) -> str:
        """`secure`, `insecure`, `bogus`, `indeterminate`, or `error` for a lookup that failed."""
        if self.answer.dnssec is DnssecStatus.BOGUS:
            return "bogus"
        if self.answer.failed:
            return "error"
        return self.answer.dnssec.value

    def describe(self) -> str:
        return f"{self.label}: {self.answer.qname} {self.answer.rdtype}"


@dataclass(frozen=True, slots=True)
class DnssecObservation:
    domain: str
    resolver_validates: bool
    subjects: tuple[DnssecSubject, ...]


SubjectSource = Callable[[Context], Awaitable[tuple[DnssecSubject, ...]]]


async def _mx_subjects(ctx: Context) -> tuple[DnssecSubject, ...]:
    # The MX answer counts even when negative: it is what sends mail to the implicit MX.
    mx = await observe_mx(ctx)
    out = [DnssecSubject("MX", mx.mx)]
    for host in mx.hosts:
        out.append(DnssecSubject(f"MX host {host.name} A", host.a))
        out.append(DnssecSubject(f"MX host {host.name} AAAA", host.aaaa))
    return tuple(out)


async def _spf_subjects(ctx: Context) -> tuple[DnssecSubject, ...]:
    return (DnssecSubject("SPF TXT", await ctx.resolver.resolve(ctx.domain, "TXT")),)


async def _dmarc_subjects(ctx: Context) -> tuple[DnssecSubject, ...]:
    return (DnssecSubject("DMARC TXT", await ctx.resolver.resolve(f"_dmarc.{ctx.domain}", "TXT")),)


async def _tlsa_subjects(ctx: Context) -> tuple[DnssecSubject, ...]:
    # The same lookups as the dane check (port, CNAME expansion): the cache makes them one query each.
    mx = await observe_mx(ctx)
    hosts = [h for h in mx.hosts if h.addresses]
    found = await asyncio.gather(*(lookup_tlsa(ctx.resolver, h, ctx.options.smtp_port) for h in hosts))
    return tuple(
        DnssecSubject(f"MX host {h.name} TLSA", f.answer)
        for h, f in zip(hosts, found, strict=True)
        if f.answer is not None
    )


# The hook for more subjects: one async function from the context to its subjects, one entry here.
SUBJECT_SOURCES: tuple[SubjectSource, ...] = (_mx_subjects, _spf_subjects, _dmarc_subjects, _tlsa_subjects)


async def observe(ctx: Context) -> DnssecObservation:
    groups = await asyncio.gather(*(source(ctx) for source in SUBJECT_SOURCES))
    validates = await ctx.resolver.client.validates()  # learnt once per client, usually already
    return DnssecObservation(ctx.domain, validates, tuple(s for group in groups for s in group))


def evaluate(obs: DnssecObservation) -> CheckResult:
    """Judge the DNSSEC status of every subject; pure."""
    by_state: dict[str, list[DnssecSubject]] = {}
    for subject in obs.subjects:
        by_state.setdefault(subject.state, []).append(subject)
    findings: list[Finding] = []
    if bogus := by_state.get("bogus"):
        findings.append(
            BOGUS(
                "DNSSEC validation fails (bogus) for " + _names(bogus),
                tuple(_bogus_evidence(s) for s in bogus),
            )
        )
    if not obs.resolver_validates:
        findings.append(
            RESOLVER_NOT_VALIDATING(
                "the resolver does not validate DNSSEC (no AD bit on the signed root), so DNSSEC "
                "cannot be judged; use a validating resolver (--resolver)"
            )
        )
    elif insecure := by_state.get("insecure"):
        findings.append(
            INSECURE("not signed (insecure): " + _names(insecure), tuple(s.describe() for s in insecure))
        )
    if failed := by_state.get("error"):
        findings.append(
            LOOKUP_FAILED(
                "could not look up " + _names(failed), tuple(s.answer.describe_failure() for s in failed)
            )
        )
    if obs.resolver_validates and (unknown := by_state.get("indeterminate")):
        findings.append(
            INDETERMINATE(
                "DNSSEC status unknown for " + _names(unknown), tuple(s.describe() for s in unknown)
            )
        )
    if not findings and obs.subjects:
        findings.append(
            SECURE(
                f"all {len(obs.subjects)} answers are DNSSEC-validated (secure)",
                tuple(s.describe() for s in obs.subjects),
            )
        )
    details = {
        "resolver_validates": obs.resolver_validates,
        "subjects": [
            {
                "label": s.label,
                "name": s.answer.qname,
                "type": s.answer.rdtype,
                "rcode": s.answer.rcode.value,
                "dnssec": s.state,
            }
            for s in obs.subjects
        ],
    }
    return CheckResult("dnssec", tuple(findings), (_verdict(findings),), details)


def _verdict(findings: list[Finding]) -> ProtocolVerdict:
    # A definite failure outranks "could not find out"; a pass needs every subject seen secure.
    for status, verdict in ((Status.FAIL, VerdictStatus.FAIL), (Status.ERROR, VerdictStatus.ERROR)):
        hits = [f for f in findings if f.status is status]
        if hits:
            return ProtocolVerdict(PROTOCOL, verdict, "; ".join(f.message for f in hits))
    if findings and findings[0].status is Status.PASS:
        return ProtocolVerdict(PROTOCOL, VerdictStatus.PASS, findings[0].message)
    return ProtocolVerdict(PROTOCOL, VerdictStatus.ERROR, "nothing was looked up")


def _names(subjects: list[DnssecSubject]) -> str:
    return ", ".join(s.label for s in subjects)


def _bogus_evidence(subject: DnssecSubject) -> str:
    ede = "; ".join(f"EDE {code}: {text}" if text else f"EDE {code}" for code, text in subject.answer.ede)
    return subject.describe() + (f" ({ede})" if ede else " (data returned only with checking disabled)")


CHECK = CheckSpec(
    name="dnssec",
    summary="DNSSEC status of the MX, MX-host addresses, SPF, DMARC and TLSA answers (all must be secure)",
    protocols=(PROTOCOL,),
    observe=observe,
    evaluate=evaluate,
    findings=(
        SECURE,
        BOGUS,
        INSECURE,
        RESOLVER_NOT_VALIDATING,
        LOOKUP_FAILED,
        INDETERMINATE,
    ),
)
