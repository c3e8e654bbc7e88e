"""DNSSEC: are the answers a sender relies on validated? MECSA's `dnssec` passes only if all are secure.

The subjects are the domain's MX RRset, each MX host's A and AAAA, the SPF TXT (the TXT RRset at
the domain), `_dmarc.<domain>` TXT and each MX host's TLSA (the very names the dane check asks:
`_25._tcp`, after secure CNAME expansion). A negative answer counts by its own status: a secure
NXDOMAIN for `_dmarc` is secure. The status comes from our own chain walk (`--dnssec-mode own`),
from the resolver (the AD bit, EDE, the CD retry: `resolver`), or from both, the stricter winning
(`both`, the default). Each subject's details name the link that decided it and the chain of
zones. In `resolver` mode a resolver that does not validate makes the verdict `error`, never
`fail`, because then nothing can be said.
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
    "dnssec.indeterminate", Status.ERROR, PROTOCOL, "no DNSSEC status could be learnt for some answer"
)
RESOLVER_DISAGREES = FindingKind(
    "dnssec.resolver_disagrees",
    Status.WARN,
    PROTOCOL,
    "our chain walk and the resolver's AD bit disagree (--dnssec-mode both); the stricter counts",
)
WEAK_ALGORITHM = FindingKind(
    "dnssec.weak_algorithm",
    Status.WARN,
    PROTOCOL,
    "a zone on the chain uses a deprecated algorithm, a SHA-1 DS or a short RSA key (RFC 8624, RFC 9905)",
    "dnssec.fix_algorithm",
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
    """Who can judge DNSSEC here, and the verdict on each subject (the domain, its MX answer...)."""

    domain: str
    resolver_validates: bool  # the resolver's AD bit on the signed root
    subjects: tuple[DnssecSubject, ...]
    mode: str = "resolver"
    own_validation: bool = False  # mecsa walked the chain itself (--dnssec-mode own or both)

    @property
    def judgeable(self) -> bool:
        """Whether anyone could judge DNSSEC: the resolver, or our own chain walk."""
        return self.resolver_validates or self.own_validation


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
    subjects = tuple(s for group in groups for s in group)
    own = ctx.resolver.validates_itself
    return DnssecObservation(ctx.domain, validates, subjects, ctx.resolver.client.dnssec_mode.value, own)


def evaluate(obs: DnssecObservation) -> CheckResult:
    """Judge the DNSSEC status of every subject; pure."""
    by_state: dict[str, list[DnssecSubject]] = {}
    for subject in obs.subjects:
        by_state.setdefault(subject.state, []).append(subject)
    findings: list[Finding] = []
    if bogus := by_state.get("bogus"):
        findings.append(
            BOGUS(
                "DNSSEC validation fails (bogus) for " + _names(bogus) + _links(bogus),
                tuple(_bogus_evidence(s) for s in bogus),
            )
        )
    if not obs.judgeable:
        findings.append(
            RESOLVER_NOT_VALIDATING(
                "the resolver does not validate DNSSEC (no AD bit on the signed root), so DNSSEC "
                "cannot be judged; use a validating resolver (--resolver)"
            )
        )
    elif insecure := by_state.get("insecure"):
        findings.append(
            INSECURE(
                "not signed (insecure): " + _names(insecure) + _links(insecure),
                tuple(_with_link(s) for s in insecure),
            )
        )
    if failed := by_state.get("error"):
        findings.append(
            LOOKUP_FAILED(
                "could not look up " + _names(failed), tuple(s.answer.describe_failure() for s in failed)
            )
        )
    if obs.judgeable and (unknown := by_state.get("indeterminate")):
        findings.append(
            INDETERMINATE(
                "DNSSEC status unknown for " + _names(unknown), tuple(_with_link(s) for s in unknown)
            )
        )
    findings.extend(_validation_findings(obs.subjects))
    if all(f.status is Status.WARN for f in findings) and obs.subjects:
        findings.append(
            SECURE(
                f"all {len(obs.subjects)} answers are DNSSEC-validated (secure)",
                tuple(s.describe() for s in obs.subjects),
            )
        )
    details = {
        "resolver_validates": obs.resolver_validates,
        "dnssec_mode": obs.mode,
        "own_validation": obs.own_validation,
        "subjects": [_subject_details(s) for s in obs.subjects],
        "chains": _chain_diagrams(obs.subjects),
    }
    return CheckResult("dnssec", tuple(findings), (_verdict(findings),), details)


def _verdict(findings: list[Finding]) -> ProtocolVerdict:
    # A definite failure outranks "could not find out"; a pass needs every subject seen secure.
    for status, verdict in ((Status.FAIL, VerdictStatus.FAIL), (Status.ERROR, VerdictStatus.ERROR)):
        hits = [f for f in findings if f.status is status]
        if hits:
            return ProtocolVerdict(PROTOCOL, verdict, "; ".join(f.message for f in hits))
    passed = [f for f in findings if f.status is Status.PASS]
    if passed:  # warnings (a weak algorithm, a disagreement settled as secure) do not undo a pass
        return ProtocolVerdict(PROTOCOL, VerdictStatus.PASS, passed[0].message)
    return ProtocolVerdict(PROTOCOL, VerdictStatus.ERROR, "nothing was looked up")


def _validation_findings(subjects: tuple[DnssecSubject, ...]) -> list[Finding]:
    """Our own walk's extra word: a disagreement with the resolver, weak algorithms on the chain."""
    out: list[Finding] = []
    if disagree := [s for s in subjects if s.answer.disagreement]:
        out.append(
            RESOLVER_DISAGREES(
                "our DNSSEC validation and the resolver's AD bit disagree for " + _names(disagree),
                tuple(f"{s.describe()}: {s.answer.disagreement}" for s in disagree),
            )
        )
    notes = {n.text: n for s in subjects if s.answer.validation for n in s.answer.validation.notes}
    if notes:
        zones = ", ".join(sorted({n.zone for n in notes.values()}))
        out.append(
            WEAK_ALGORITHM(f"weak DNSSEC algorithm or key on the chain of trust ({zones})", sorted(notes))
        )
    return out


def _subject_details(s: DnssecSubject) -> dict[str, object]:
    out: dict[str, object] = {
        "label": s.label,
        "name": s.answer.qname,
        "type": s.answer.rdtype,
        "rcode": s.answer.rcode.value,
        "dnssec": s.state,
    }
    if s.answer.validation is not None:  # our own walk ran: name the link and the chain
        out["link"] = s.answer.dnssec_link
        out["chain"] = list(s.answer.validation.chain)
    if s.answer.resolver_dnssec is not None:
        out["resolver_dnssec"] = s.answer.resolver_dnssec.value
    return out


def _chain_diagrams(subjects: tuple[DnssecSubject, ...]) -> list[str]:
    """One small diagram per distinct chain, `. → test. → top.test. ✔ (MX, SPF TXT)`, weakest first."""
    marks = {"secure": "✔", "insecure": "○", "bogus": "✘"}
    groups: dict[str, list[str]] = {}
    for s in subjects:
        v = s.answer.validation
        if v is None:
            continue
        head = " → ".join(v.chain) if v.chain else "(no secure chain)"
        tail = "" if s.state == "secure" else f": {s.answer.dnssec_link}"
        groups.setdefault(f"{head} {marks.get(s.state, '?')}{tail}", []).append(s.label)
    ordered = sorted(groups.items(), key=lambda kv: "✔" in kv[0])
    return [f"{key} ({', '.join(labels)})" for key, labels in ordered]


def _links(subjects: list[DnssecSubject]) -> str:
    """The distinct named links of our own walk, for the message: why, not only what."""
    # dnssec_link: our link when our verdict is the one that counts, else the resolver's word.
    links = list(dict.fromkeys(s.answer.dnssec_link for s in subjects if s.answer.validation))
    return f" ({'; '.join(links)})" if links else ""


def _with_link(subject: DnssecSubject) -> str:
    if subject.answer.validation is None:
        return subject.describe()
    return f"{subject.describe()}: {subject.answer.dnssec_link}"


def _names(subjects: list[DnssecSubject]) -> str:
    return ", ".join(s.label for s in subjects)


def _bogus_evidence(subject: DnssecSubject) -> str:
    if subject.answer.validation is not None and subject.answer.validation.status is DnssecStatus.BOGUS:
        return f"{subject.describe()}: {subject.answer.validation.link}"
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
        RESOLVER_DISAGREES,
        WEAK_ALGORITHM,
    ),
)
