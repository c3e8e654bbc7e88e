"""DMARC: record discovery, the record's validity (`dmarc`) and MECSA's policy rule (`dmarc_policy`).

Discovery (`mecsa.observe.dmarc`) follows `AssessOptions.dmarc_discovery`:
- `treewalk` (default, RFC 9989 §4.10): the domain's `_dmarc`, then its ancestors up to the TLD
  (at most eight questions), stopping at `psd=y`/`psd=n`; a name with several `v=DMARC1`
  records has them all discarded. The record is judged by RFC 9989's rules.
- `psl` (RFC 7489 §6.6.3, what MECSA and profile mecsa-st do): `_dmarc.<domain>`, then the
  Public Suffix List's organisational domain's; several records mean no DMARC applies.
Both are always run (they share most questions); when they disagree on the organisational
domain or on the record that applies, `dmarc.discovery_differs` says so. A lookup that fails
and leaves the policy open stops with an error: neither "missing" nor a fallback would be honest.

`dmarc_policy` (MECSA): the policy that applies to the domain is quarantine or reject, and
aggregate (rua) or failure (ruf) reports are requested. Under RFC 9989 `t=y` (testing) asks
receivers for the next weaker policy, so it does not count as enforcing; `pct` is gone (a
warning). Under RFC 7489 `pct` below 100 is a warning and `t` is an unknown tag. External report
destinations must authorise the domain (RFC 9990 §4; RFC 7489 §7.1); judged item by item.

Each verdict carries `details.rfc7489_pass` and `details.rfc9989_pass`: the verdict by each rule
set, whichever is primary, so that a profile can count the rules it stands for (mecsa-st counts
RFC 7489's, as MECSA does).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from mecsa.checks.base import CheckSpec
from mecsa.dns.answer import DnsAnswer
from mecsa.model import CheckResult, Finding, FindingKind, ProtocolVerdict, Status, VerdictStatus
from mecsa.observe import Context
from mecsa.observe.dmarc import Discovery, DiscoveryMethod, DmarcLookup, discover
from mecsa.orgdomain import NotADomainError, organisational_domain
from mecsa.records.dmarc import (
    DmarcParse,
    DmarcRecord,
    Policy,
    Psd,
    ReportUri,
    Rules,
    is_dmarc_record,
    parse_dmarc,
    weaker,
)

DMARC = "dmarc"
POLICY = "dmarc_policy"

# --- the findings this check declares (id, status, protocol, meaning, remedy) ---

LOOKUP_FAILED = FindingKind(
    "dmarc.lookup_failed",
    Status.ERROR,
    DMARC,
    "the _dmarc TXT lookup failed: the tool could not find out",
)
MISSING = FindingKind(
    "dmarc.missing",
    Status.FAIL,
    DMARC,
    "no DMARC record at the domain or at the names discovery asked",
    "dmarc.publish",
)
MULTIPLE = FindingKind(
    "dmarc.multiple",
    Status.FAIL,
    DMARC,
    "more than one DMARC record at one name: receivers discard them",
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
    "a DMARC tag is wrong, unknown or doubtful: ignored or defaulted",
    "dmarc.fix_record",
)
REMOVED_TAG = FindingKind(
    "dmarc.removed_tag",
    Status.WARN,
    DMARC,
    "pct, rf or ri: removed in RFC 9989, receivers ignore it",
    "dmarc.fix_record",
)
ORG_FALLBACK = FindingKind(
    "dmarc.org_fallback",
    Status.INFO,
    DMARC,
    "the record was found at the organisational (or public suffix) domain",
)
WALK_INCOMPLETE = FindingKind(
    "dmarc.walk_incomplete",
    Status.INFO,
    DMARC,
    "a failed lookup above the own record hid the organisational domain",
)
DISCOVERY_DIFFERS = FindingKind(
    "dmarc.discovery_differs",
    Status.WARN,
    DMARC,
    "the RFC 9989 tree walk and the RFC 7489 PSL give different answers",
)
DISCOVERY = FindingKind(
    "dmarc.discovery",
    Status.INFO,
    DMARC,
    "how the policy was looked for: the method, the names asked, the organisational domain",
)
PRESENT = FindingKind("dmarc.present", Status.PASS, DMARC, "one valid DMARC record")
POLICY_LOOKUP_FAILED = FindingKind(
    "dmarc_policy.lookup_failed",
    Status.ERROR,
    POLICY,
    "the policy is unknown because the DMARC lookup failed",
)
NO_RECORD = FindingKind(
    "dmarc_policy.no_record",
    Status.FAIL,
    POLICY,
    "no usable DMARC record, so no policy",
    "dmarc.publish",
)
NONE = FindingKind(
    "dmarc_policy.none",
    Status.FAIL,
    POLICY,
    "the applicable policy is none (monitoring only)",
    "dmarc.policy_reject",
)
TESTING = FindingKind(
    "dmarc_policy.testing",
    Status.FAIL,
    POLICY,
    "t=y: the policy is being tested, receivers apply a weaker one (RFC 9989)",
    "dmarc.policy_reject",
)
NO_REPORTING = FindingKind(
    "dmarc_policy.no_reporting",
    Status.FAIL,
    POLICY,
    "no rua or ruf report destination",
    "dmarc.add_rua",
)
PCT_PARTIAL = FindingKind(
    "dmarc_policy.pct_partial",
    Status.WARN,
    POLICY,
    "pct below 100 (RFC 7489): the policy covers part of failing mail",
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
    "the non-existent-subdomain policy is weaker",
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


__all__ = ["CHECK", "DmarcLookup", "DmarcObservation", "ExternalAuthorisation", "evaluate", "observe"]


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
    """The primary discovery (by the assessment's method), the other method's, and the external
    report authorisations of the record that applies."""

    domain: str
    discovery: Discovery
    other: Discovery | None = None
    external: tuple[ExternalAuthorisation, ...] = ()

    @property
    def lookups(self) -> tuple[DmarcLookup, ...]:
        return self.discovery.lookups

    @property
    def method(self) -> DiscoveryMethod:
        return self.discovery.method


def _org(name: str) -> str:
    try:
        return organisational_domain(name)
    except NotADomainError:
        return name


async def observe(ctx: Context) -> DmarcObservation:
    """Discover the record by both methods, then look up external report authorisations."""
    resolver = ctx.resolver
    method = DiscoveryMethod(ctx.options.dmarc_discovery)
    other_method = DiscoveryMethod.PSL if method is DiscoveryMethod.TREEWALK else DiscoveryMethod.TREEWALK
    primary, other = await asyncio.gather(
        discover(resolver, ctx.domain, method), discover(resolver, ctx.domain, other_method)
    )
    external: tuple[ExternalAuthorisation, ...] = ()
    found = primary.policy_lookup
    if found is not None:
        record = parse_dmarc(found.records[0], primary.rules).record
        if record is not None:
            uris = _external_uris(record, found.domain, primary)
            answers = await asyncio.gather(
                *(resolver.resolve(f"{found.domain}._report._dmarc.{u.domain}", "TXT") for u in uris)
            )
            external = tuple(ExternalAuthorisation(u, a) for u, a in zip(uris, answers, strict=True))
    return DmarcObservation(ctx.domain, primary, other, external)


def _external_uris(record: DmarcRecord, policy_domain: str, discovery: Discovery) -> tuple[ReportUri, ...]:
    """mailto destinations outside the policy's organisational domain, one per domain (RFC 9990 §4).

    Walk: a destination at or under the organisational domain is the same organisation (short of
    a `psd=n` island below it, which would take a walk per destination); any other is external,
    exactly. PSL: the two organisational domains are compared.
    """
    seen: dict[str, ReportUri] = {}
    if discovery.method is DiscoveryMethod.TREEWALK:
        org = discovery.organisational_domain or policy_domain
        for uri in (*record.rua, *record.ruf):
            if uri.domain is not None and uri.domain != org and not uri.domain.endswith("." + org):
                seen.setdefault(uri.domain, uri)
        return tuple(seen.values())
    psl_org = _org(policy_domain)
    for uri in (*record.rua, *record.ruf):
        if uri.domain is not None and _org(uri.domain) != psl_org:
            seen.setdefault(uri.domain, uri)
    return tuple(seen.values())


@dataclass(frozen=True, slots=True)
class _Judgement:
    """The DMARC and DMARC-policy verdicts, their reasons, findings and the document's details."""

    findings: tuple[Finding, ...]
    dmarc: VerdictStatus
    dmarc_why: str
    policy: VerdictStatus
    policy_why: str
    details: dict[str, object]


def evaluate(obs: DmarcObservation) -> CheckResult:
    """Judge the observation: the `dmarc` and `dmarc_policy` verdicts with their findings."""
    primary = _judge(obs.domain, obs.discovery, obs.external)
    by_rules = {obs.discovery.rules: primary}
    if obs.other is not None:
        by_rules[obs.other.rules] = _judge(obs.domain, obs.other, ())
    findings = [_discovery_finding(obs.discovery), *primary.findings]
    if obs.other is not None:
        findings.extend(_differences(obs.discovery, obs.other))
    details = primary.details

    def flags(pick: Callable[[_Judgement], VerdictStatus]) -> dict[str, object]:
        return {f"{rules.value}_pass": pick(j) is VerdictStatus.PASS for rules, j in by_rules.items()}

    return CheckResult(
        "dmarc",
        tuple(findings),
        (
            ProtocolVerdict(DMARC, primary.dmarc, primary.dmarc_why, details=flags(lambda j: j.dmarc)),
            ProtocolVerdict(POLICY, primary.policy, primary.policy_why, details=flags(lambda j: j.policy)),
        ),
        details,
    )


_METHOD_NAMES = {
    DiscoveryMethod.TREEWALK: "RFC 9989 DNS tree walk",
    DiscoveryMethod.PSL: "RFC 7489 public suffix list",
}


def _discovery_finding(discovery: Discovery) -> Finding:
    org = discovery.organisational_domain
    text = (
        f"{_METHOD_NAMES[discovery.method]}: asked {', '.join(discovery.names)}; organisational domain "
        + (org if org is not None else "unknown")
    )
    return DISCOVERY(text, discovery.names)


def _discovery_json(discovery: Discovery) -> dict[str, object]:
    return {
        "method": discovery.method.value,
        "rules": discovery.rules.value,
        "names": list(discovery.names),
        "organisational_domain": discovery.organisational_domain,
        "policy_domain": found.domain if (found := discovery.policy_lookup) else None,
    }


def _judge(domain: str, discovery: Discovery, external: tuple[ExternalAuthorisation, ...]) -> _Judgement:
    findings: list[Finding] = []
    add = findings.append
    rules = discovery.rules
    details: dict[str, object] = {
        "lookups": [
            {"name": lk.name, "rcode": lk.answer.rcode.value, "records": list(lk.records)}
            for lk in discovery.lookups
        ],
        "discovery": _discovery_json(discovery),
    }

    def result(dmarc: VerdictStatus, why: str, policy: VerdictStatus, policy_why: str) -> _Judgement:
        return _Judgement(tuple(findings), dmarc, why, policy, policy_why, details)

    def no_policy(why: str) -> _Judgement:
        reason = f"no usable DMARC record, so no policy: {why}"
        add(NO_RECORD(reason, ()))
        return result(VerdictStatus.FAIL, why, VerdictStatus.FAIL, reason)

    failed = discovery.failure
    if discovery.policy_unknown:
        assert failed is not None
        why = f"could not look up the DMARC record: {failed.answer.describe_failure()}"
        add(LOOKUP_FAILED(why, ()))
        add(POLICY_LOOKUP_FAILED(why, ()))
        return result(VerdictStatus.ERROR, why, VerdictStatus.ERROR, why)
    if failed is not None:
        add(
            WALK_INCOMPLETE(
                f"the tree walk stopped at {failed.name} ({failed.answer.describe_failure()}): the "
                f"domain's own record applies, but its organisational domain is unknown (RFC 9989 §4.10.2)",
                (),
            )
        )

    own = discovery.own
    found = discovery.policy_lookup
    if rules is Rules.RFC9989 and own.records and own.valid_record() is None:
        # RFC 9989 §4.10: receivers discard the domain's records and walk on; the owner must fix them
        fallback = "; nothing else applies"
        if found is not None:
            fallback = f"; receivers use _dmarc.{found.domain} instead"
        if len(own.records) > 1:
            why = (
                f"{len(own.records)} DMARC records at {own.name}: receivers discard them all "
                f"(RFC 9989 §4.10){fallback}"
            )
            add(MULTIPLE(why, own.records))
            return no_policy(why)
        parsed = parse_dmarc(own.records[0], rules)
        _syntax_warnings(parsed, add)
        why = "the DMARC record is invalid, so receivers discard it: " + "; ".join(map(str, parsed.errors))
        add(SYNTAX(why + fallback, own.records))
        return no_policy(why)

    if found is None:
        last = discovery.lookups[-1]
        if rules is Rules.RFC7489 and len(last.records) > 1:
            why = (
                f"{len(last.records)} DMARC records at {last.name}: receivers then apply "
                "no DMARC at all (RFC 7489 §6.6.3)"
            )
            add(MULTIPLE(why, last.records))
            return no_policy(why)
        tried = " and ".join(discovery.names)
        why = f"no DMARC record (no TXT starting with v=DMARC1) at {tried}"
        ignored = tuple(t for lk in discovery.lookups for t in (*lk.other_texts, *_discarded(lk, own)))
        add(MISSING(why, ignored))
        return no_policy(why)

    evidence = found.records
    parsed = parse_dmarc(found.records[0], rules)
    details["record"] = found.records[0]
    details["record_domain"] = found.domain
    if found.domain != domain:
        psd = parsed.record is not None and parsed.record.psd is Psd.YES
        whose = "public suffix domain" if psd else "organisational domain"
        cite = "RFC 9989 §4.10.1" if rules is Rules.RFC9989 else "RFC 7489 §6.6.3"
        add(
            ORG_FALLBACK(
                f"no record at _dmarc.{domain}; the {whose}'s record at _dmarc.{found.domain} "
                f"applies ({cite})",
                evidence,
            )
        )
    _syntax_warnings(parsed, add)
    if parsed.record is None:
        why = "the DMARC record is invalid, so receivers discard it: " + "; ".join(map(str, parsed.errors))
        add(SYNTAX(why, evidence))
        return no_policy(why)

    why = f"one valid DMARC record at _dmarc.{found.domain}"
    add(PRESENT(why, evidence))
    policy_status, policy_why = _evaluate_policy(domain, parsed, found.domain, external, add)
    details.update(_record_json(parsed.record, domain, found.domain, external))
    return result(VerdictStatus.PASS, why, policy_status, policy_why)


def _discarded(lookup: DmarcLookup, own: DmarcLookup) -> tuple[str, ...]:
    """Records a walk discarded above the domain (several at one name), shown as evidence."""
    return lookup.records if lookup is not own and len(lookup.records) > 1 else ()


def _syntax_warnings(parsed: DmarcParse, add: Callable[[Finding], None]) -> None:
    evidence = (parsed.text,)
    for issue in parsed.warnings:
        if issue.code.endswith(".removed"):
            add(REMOVED_TAG(str(issue), evidence))
        else:
            add(SYNTAX_WARNING(str(issue), evidence))


def _evaluate_policy(
    domain: str,
    parsed: DmarcParse,
    record_domain: str,
    external: tuple[ExternalAuthorisation, ...],
    add: Callable[[Finding], None],
) -> tuple[VerdictStatus, str]:
    record = parsed.record
    assert record is not None
    evidence = (parsed.text,)
    applied = record.policy_for(domain, record_domain)
    if domain == record_domain:
        label = f"p={applied.value}"
    elif record.subdomain_policy is not None:
        label = f"sp={applied.value} of {record_domain}"
    else:
        label = f"p={applied.value} of {record_domain} (it has no sp)"
    problems: list[str] = []
    if applied is Policy.NONE:
        text = f"{label} applies to {domain}: DMARC only monitors, receivers act on nothing"
        problems.append(text)
        add(NONE(text, evidence))
    elif record.testing:
        text = (
            f"t=y: the owner is testing {label}; receivers apply {weaker(applied).value} instead "
            "(RFC 9989 §4.7), so the policy is not enforced"
        )
        problems.append(text)
        add(TESTING(text, evidence))
    if not record.reporting:
        text = "neither rua= nor ruf= (with a usable URI): nobody receives DMARC reports"
        problems.append(text)
        add(NO_REPORTING(text, evidence))
    if record.rules is Rules.RFC7489 and record.pct < 100 and applied is not Policy.NONE:
        add(
            PCT_PARTIAL(
                f"pct={record.pct}: {applied.value} applies to only {record.pct}% of failing mail; "
                "the rest gets the next weaker policy (RFC 7489 §6.6.4)",
                evidence,
            )
        )
    if domain == record_domain:
        _weaker_subpolicies(record, add, evidence)
    for ext in external:
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
    # np absent falls back to sp (RFC 9989 §4.7; RFC 9091 §4.1), so only an explicit np can be weaker
    if record.nonexistent_policy is not None and np.strength < sp.strength:
        add(
            NP_WEAKER(
                f"np={np.value} is weaker than sp/p={sp.value}: "
                "spoofing non-existent subdomains is less hindered (RFC 9989 §4.7)",
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
        "receivers drop these reports (RFC 9990 §4)",
        (ext.uri.uri,),
        ext.uri.uri,
    )


def _differences(primary: Discovery, other: Discovery) -> tuple[Finding, ...]:
    """`dmarc.discovery_differs` when the walk and the PSL disagree on the organisational domain
    or on the record that applies (unknown answers are not compared)."""
    if primary.policy_unknown or other.policy_unknown:
        return ()
    walk, psl = (primary, other) if primary.method is DiscoveryMethod.TREEWALK else (other, primary)
    parts: list[str] = []
    walk_org, psl_org = walk.organisational_domain, psl.organisational_domain
    if walk_org is not None and walk_org != psl_org:
        parts.append(f"organisational domain {walk_org} by the RFC 9989 tree walk, {psl_org} by the PSL")
    walk_found, psl_found = walk.policy_lookup, psl.policy_lookup
    if _where(walk_found) != _where(psl_found):
        parts.append(
            f"the record that applies is {_where(walk_found)} by the walk, {_where(psl_found)} by the PSL"
        )
    if not parts:
        return ()
    evidence = tuple(dict.fromkeys(r for lk in (walk_found, psl_found) if lk for r in lk.records))
    return (DISCOVERY_DIFFERS("RFC 9989 and RFC 7489 receivers disagree: " + "; ".join(parts), evidence),)


def _where(lookup: DmarcLookup | None) -> str:
    return lookup.name if lookup is not None else "none"


def _record_json(
    record: DmarcRecord, domain: str, record_domain: str, external: tuple[ExternalAuthorisation, ...]
) -> dict[str, object]:
    return {
        "policy": record.policy.value,
        "subdomain_policy": record.subdomain_policy.value if record.subdomain_policy else None,
        "nonexistent_policy": record.nonexistent_policy.value if record.nonexistent_policy else None,
        "applied_policy": record.policy_for(domain, record_domain).value,
        "pct": record.pct,
        "testing": record.testing,
        "psd": record.psd.value,
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
            for e in external
        ],
    }


CHECK = CheckSpec(
    name="dmarc",
    summary="DMARC record discovery (RFC 9989 tree walk or RFC 7489 PSL), syntax and policy "
    "(p/sp/np/t, reporting, external report authorisation)",
    protocols=(DMARC, POLICY),
    observe=observe,
    evaluate=evaluate,
    findings=(
        LOOKUP_FAILED,
        MISSING,
        MULTIPLE,
        SYNTAX,
        SYNTAX_WARNING,
        REMOVED_TAG,
        ORG_FALLBACK,
        WALK_INCOMPLETE,
        DISCOVERY_DIFFERS,
        DISCOVERY,
        PRESENT,
        POLICY_LOOKUP_FAILED,
        NO_RECORD,
        NONE,
        TESTING,
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
