"""DMARC: record discovery, the record's validity (`dmarc`) and MECSA's policy rule (`dmarc_policy`).

Discovery (RFC 7489 §6.6.3): the TXT at `_dmarc.<domain>`; only strings starting with
`v=DMARC1` count; when there is none, the TXT at `_dmarc.<organisational domain>`. More than
one record means no DMARC applies. A lookup that fails stops discovery with an error: whether a
record exists there is unknown, so neither "missing" nor the fallback would be honest.

`dmarc_policy` (MECSA): the policy that applies to the domain is quarantine or reject, and
aggregate (rua) or failure (ruf) reports are requested. External report destinations must
authorise the domain (RFC 7489 §7.1); their lookups are judged item by item.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from mecsa.checks.base import CheckSpec
from mecsa.dns.answer import DnsAnswer
from mecsa.dns.resolver import Resolver
from mecsa.model import CheckResult, Finding, FindingKind, ProtocolVerdict, Status, VerdictStatus
from mecsa.observe import Context
from mecsa.orgdomain import NotADomainError, organisational_domain
from mecsa.records.dmarc import DmarcParse, DmarcRecord, Policy, ReportUri, is_dmarc_record, parse_dmarc

DMARC = "dmarc"
POLICY = "dmarc_policy"

# --- the findings this check declares (id, status, protocol, meaning, remedy) ---

LOOKUP_FAILED = FindingKind(
    "dmarc.lookup_failed", Status.ERROR, DMARC, "the _dmarc TXT lookup failed: the tool could not find out"
)
MISSING = FindingKind(
    "dmarc.missing",
    Status.FAIL,
    DMARC,
    "no DMARC record at the domain or its organisational domain",
    "dmarc.publish",
)
MULTIPLE = FindingKind(
    "dmarc.multiple",
    Status.FAIL,
    DMARC,
    "more than one DMARC record: receivers apply no DMARC",
    "dmarc.one_record",
)
SYNTAX = FindingKind(
    "dmarc.syntax",
    Status.FAIL,
    DMARC,
    "the DMARC record is invalid and receivers discard it",
    "dmarc.fix_record",
)
SYNTAX_WARNING = FindingKind(
    "dmarc.syntax_warning",
    Status.WARN,
    DMARC,
    "a DMARC tag is wrong or doubtful; receivers ignore it or use its default",
    "dmarc.fix_record",
)
ORG_FALLBACK = FindingKind(
    "dmarc.org_fallback", Status.INFO, DMARC, "the record was found at the organisational domain"
)
PRESENT = FindingKind("dmarc.present", Status.PASS, DMARC, "one valid DMARC record")
POLICY_LOOKUP_FAILED = FindingKind(
    "dmarc_policy.lookup_failed",
    Status.ERROR,
    POLICY,
    "the policy is unknown because the DMARC lookup failed",
)
NO_RECORD = FindingKind(
    "dmarc_policy.no_record", Status.FAIL, POLICY, "no usable DMARC record, so no policy", "dmarc.publish"
)
NONE = FindingKind(
    "dmarc_policy.none",
    Status.FAIL,
    POLICY,
    "the applicable policy is none (monitoring only)",
    "dmarc.policy_reject",
)
NO_REPORTING = FindingKind(
    "dmarc_policy.no_reporting", Status.FAIL, POLICY, "no rua or ruf report destination", "dmarc.add_rua"
)
PCT_PARTIAL = FindingKind(
    "dmarc_policy.pct_partial",
    Status.WARN,
    POLICY,
    "pct below 100: the policy covers only part of failing mail",
    "dmarc.pct_full",
)
SP_WEAKER = FindingKind(
    "dmarc_policy.sp_weaker",
    Status.WARN,
    POLICY,
    "the subdomain policy is weaker than p",
    "dmarc.policy_reject",
)
NP_WEAKER = FindingKind(
    "dmarc_policy.np_weaker",
    Status.WARN,
    POLICY,
    "the non-existent-subdomain policy (RFC 9091) is weaker",
    "dmarc.policy_reject",
)
EXTERNAL_AUTHORISED = FindingKind(
    "dmarc_policy.external_authorised",
    Status.INFO,
    POLICY,
    "an external report destination authorises the domain",
)
EXTERNAL_UNAUTHORISED = FindingKind(
    "dmarc_policy.external_unauthorised",
    Status.WARN,
    POLICY,
    "an external report destination does not authorise the domain",
    "dmarc.authorise_external",
)
EXTERNAL_LOOKUP_FAILED = FindingKind(
    "dmarc_policy.external_lookup_failed",
    Status.ERROR,
    POLICY,
    "an external destination's authorisation lookup failed",
)
ENFORCED = FindingKind("dmarc_policy.enforced", Status.PASS, POLICY, "quarantine or reject, with reporting")


@dataclass(frozen=True, slots=True)
class DmarcLookup:
    """One `_dmarc.<domain>` TXT question and the DMARC records among its answers."""

    domain: str
    answer: DnsAnswer

    @property
    def records(self) -> tuple[str, ...]:
        return tuple(t for t in self.answer.texts() if is_dmarc_record(t))

    @property
    def other_texts(self) -> tuple[str, ...]:
        return tuple(t for t in self.answer.texts() if not is_dmarc_record(t))


@dataclass(frozen=True, slots=True)
class ExternalAuthorisation:
    """The `<policy domain>._report._dmarc.<destination>` TXT for one external report URI."""

    uri: ReportUri
    answer: DnsAnswer

    @property
    def authorised(self) -> bool:
        return any(is_dmarc_record(t) for t in self.answer.texts())


@dataclass(frozen=True, slots=True)
class DmarcObservation:
    domain: str
    lookups: tuple[DmarcLookup, ...]
    external: tuple[ExternalAuthorisation, ...] = ()

    @property
    def found(self) -> DmarcLookup:
        """The lookup discovery stopped at: the last one made."""
        return self.lookups[-1]


def _org(name: str) -> str:
    try:
        return organisational_domain(name)
    except NotADomainError:
        return name


async def discover(resolver: Resolver, domain: str) -> tuple[DmarcLookup, ...]:
    """RFC 7489 §6.6.3 discovery: `_dmarc.<domain>`, then the organisational domain's when none is there.

    A failed first lookup stops discovery: falling back then could apply the wrong policy.
    Mail mode's DMARC evaluation uses this too.
    """
    first = DmarcLookup(domain, await resolver.resolve(f"_dmarc.{domain}", "TXT"))
    org = _org(domain)
    if first.answer.failed or first.records or org == domain:
        return (first,)
    return first, DmarcLookup(org, await resolver.resolve(f"_dmarc.{org}", "TXT"))


async def observe(ctx: Context) -> DmarcObservation:
    """Look up the DMARC record (with the org-domain fallback) and external report authorisations."""
    resolver = ctx.resolver
    lookups = await discover(resolver, ctx.domain)
    found = lookups[-1]
    external: tuple[ExternalAuthorisation, ...] = ()
    if len(found.records) == 1:
        record = parse_dmarc(found.records[0]).record
        if record is not None:
            uris = _external_uris(record, found.domain)
            answers = await asyncio.gather(
                *(resolver.resolve(f"{found.domain}._report._dmarc.{u.domain}", "TXT") for u in uris)
            )
            external = tuple(ExternalAuthorisation(u, a) for u, a in zip(uris, answers, strict=True))
    return DmarcObservation(ctx.domain, lookups, external)


def _external_uris(record: DmarcRecord, policy_domain: str) -> tuple[ReportUri, ...]:
    """mailto destinations outside the policy domain's organisational domain, one per domain."""
    org = _org(policy_domain)
    seen: dict[str, ReportUri] = {}
    for uri in (*record.rua, *record.ruf):
        if uri.domain is not None and _org(uri.domain) != org:
            seen.setdefault(uri.domain, uri)
    return tuple(seen.values())


def evaluate(obs: DmarcObservation) -> CheckResult:
    """Judge the observation: the `dmarc` and `dmarc_policy` verdicts with their findings."""
    findings: list[Finding] = []
    add = findings.append
    found = obs.found
    details: dict[str, object] = {
        "lookups": [
            {"name": f"_dmarc.{lk.domain}", "rcode": lk.answer.rcode.value, "records": list(lk.records)}
            for lk in obs.lookups
        ],
    }
    failed = next((lk for lk in obs.lookups if lk.answer.failed), None)
    if failed is not None:
        why = f"could not look up the DMARC record: {failed.answer.describe_failure()}"
        add(LOOKUP_FAILED(why))
        add(POLICY_LOOKUP_FAILED(why))
        return _result(findings, VerdictStatus.ERROR, why, VerdictStatus.ERROR, why, details)

    if not found.records:
        tried = " and ".join(f"_dmarc.{lk.domain}" for lk in obs.lookups)
        why = f"no DMARC record (no TXT starting with v=DMARC1) at {tried}"
        ignored = tuple(t for lk in obs.lookups for t in lk.other_texts)
        add(MISSING(why, ignored))
        return _no_policy(findings, why, details)
    evidence = found.records
    if len(found.records) > 1:
        why = (
            f"{len(found.records)} DMARC records at _dmarc.{found.domain}: receivers then apply "
            "no DMARC at all (RFC 7489 §6.6.3)"
        )
        add(MULTIPLE(why, evidence))
        return _no_policy(findings, why, details)

    parsed = parse_dmarc(found.records[0])
    details["record"] = found.records[0]
    details["record_domain"] = found.domain
    if found.domain != obs.domain:
        add(
            ORG_FALLBACK(
                f"no record at _dmarc.{obs.domain}; the organisational domain's record at "
                f"_dmarc.{found.domain} applies (RFC 7489 §6.6.3)",
                evidence,
            )
        )
    for issue in parsed.warnings:
        add(SYNTAX_WARNING(str(issue), evidence))
    if parsed.record is None:
        why = "the DMARC record is invalid, so receivers discard it: " + "; ".join(map(str, parsed.errors))
        add(SYNTAX(why, evidence))
        return _no_policy(findings, why, details)

    why = f"one valid DMARC record at _dmarc.{found.domain}"
    add(PRESENT(why, evidence))
    policy_status, policy_why = _evaluate_policy(obs, parsed, found.domain, add)
    details.update(_record_json(parsed.record, obs, found.domain))
    return _result(findings, VerdictStatus.PASS, why, policy_status, policy_why, details)


def _no_policy(findings: list[Finding], why: str, details: dict[str, object]) -> CheckResult:
    reason = f"no usable DMARC record, so no policy: {why}"
    findings.append(NO_RECORD(reason, ()))
    return _result(findings, VerdictStatus.FAIL, why, VerdictStatus.FAIL, reason, details)


def _evaluate_policy(
    obs: DmarcObservation, parsed: DmarcParse, record_domain: str, add: Callable[[Finding], None]
) -> tuple[VerdictStatus, str]:
    record = parsed.record
    assert record is not None
    evidence = (parsed.text,)
    applied = record.policy_for(obs.domain, record_domain)
    if obs.domain == record_domain:
        label = f"p={applied.value}"
    elif record.subdomain_policy is not None:
        label = f"sp={applied.value} of {record_domain}"
    else:
        label = f"p={applied.value} of {record_domain} (it has no sp)"
    reporting = bool(record.rua or record.ruf)
    problems: list[str] = []
    if applied is Policy.NONE:
        text = f"{label} applies to {obs.domain}: DMARC only monitors, receivers act on nothing"
        problems.append(text)
        add(NONE(text, evidence))
    if not reporting:
        text = "neither rua= nor ruf= (with a usable URI): nobody receives DMARC reports"
        problems.append(text)
        add(NO_REPORTING(text, evidence))
    if record.pct < 100 and applied is not Policy.NONE:
        add(
            PCT_PARTIAL(
                f"pct={record.pct}: {applied.value} applies to only {record.pct}% of failing mail; "
                "the rest gets the next weaker policy (RFC 7489 §6.6.4)",
                evidence,
            )
        )
    if obs.domain == record_domain:
        _weaker_subpolicies(record, add, evidence)
    for ext in obs.external:
        add(_external_finding(ext, record_domain))
    if problems:
        return VerdictStatus.FAIL, "; ".join(problems)
    text = f"{label} with reports to " + ", ".join(u.uri for u in (*record.rua, *record.ruf))
    add(ENFORCED(text, evidence))
    return VerdictStatus.PASS, text


def _weaker_subpolicies(
    record: DmarcRecord, add: Callable[[Finding], None], evidence: tuple[str, ...]
) -> None:
    sp, np = record.effective_subdomain_policy, record.effective_nonexistent_policy
    if sp.strength < record.policy.strength:
        add(
            SP_WEAKER(
                f"sp={sp.value} is weaker than p={record.policy.value}: subdomains are less protected",
                evidence,
            )
        )
    # np absent falls back to sp (RFC 9091 §4.1), so only an explicit np can be weaker
    if record.nonexistent_policy is not None and np.strength < sp.strength:
        add(
            NP_WEAKER(
                f"np={np.value} is weaker than sp/p={sp.value}: "
                "spoofing non-existent subdomains is less hindered (RFC 9091)",
                evidence,
            )
        )


def _external_finding(ext: ExternalAuthorisation, record_domain: str) -> Finding:
    name = ext.answer.qname
    if ext.answer.failed:
        return EXTERNAL_LOOKUP_FAILED(
            f"could not check whether {ext.uri.domain} accepts reports for {record_domain}: "
            f"{ext.answer.describe_failure()}",
            (ext.uri.uri,),
            ext.uri.uri,
        )
    if ext.authorised:
        return EXTERNAL_AUTHORISED(
            f"{ext.uri.domain} accepts DMARC reports for {record_domain} ({name})",
            (ext.uri.uri, *ext.answer.texts()),
            ext.uri.uri,
        )
    return EXTERNAL_UNAUTHORISED(
        f"{ext.uri.uri} is outside {record_domain} and {name} has no v=DMARC1 record: "
        "receivers drop these reports (RFC 7489 §7.1)",
        (ext.uri.uri,),
        ext.uri.uri,
    )


def _record_json(record: DmarcRecord, obs: DmarcObservation, record_domain: str) -> dict[str, object]:
    return {
        "policy": record.policy.value,
        "subdomain_policy": record.subdomain_policy.value if record.subdomain_policy else None,
        "nonexistent_policy": record.nonexistent_policy.value if record.nonexistent_policy else None,
        "applied_policy": record.policy_for(obs.domain, record_domain).value,
        "pct": record.pct,
        "adkim": record.adkim.value,
        "aspf": record.aspf.value,
        "rua": [u.uri for u in record.rua],
        "ruf": [u.uri for u in record.ruf],
        "external_destinations": [
            {
                "uri": e.uri.uri,
                "query": e.answer.qname,
                "authorised": None if e.answer.failed else e.authorised,
            }
            for e in obs.external
        ],
    }


def _result(
    findings: list[Finding],
    dmarc: VerdictStatus,
    dmarc_why: str,
    policy: VerdictStatus,
    policy_why: str,
    details: dict[str, object],
) -> CheckResult:
    return CheckResult(
        "dmarc",
        tuple(findings),
        (ProtocolVerdict(DMARC, dmarc, dmarc_why), ProtocolVerdict(POLICY, policy, policy_why)),
        details,
    )


CHECK = CheckSpec(
    name="dmarc",
    summary="DMARC record discovery, syntax and policy (p/sp/np, reporting, external report authorisation)",
    protocols=(DMARC, POLICY),
    observe=observe,
    evaluate=evaluate,
    findings=(
        LOOKUP_FAILED,
        MISSING,
        MULTIPLE,
        SYNTAX,
        SYNTAX_WARNING,
        ORG_FALLBACK,
        PRESENT,
        POLICY_LOOKUP_FAILED,
        NO_RECORD,
        NONE,
        NO_REPORTING,
        PCT_PARTIAL,
        SP_WEAKER,
        NP_WEAKER,
        EXTERNAL_AUTHORISED,
        EXTERNAL_UNAUTHORISED,
        EXTERNAL_LOOKUP_FAILED,
        ENFORCED,
    ),
)
