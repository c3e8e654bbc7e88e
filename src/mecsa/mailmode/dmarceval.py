"""DMARC for one received message: policy discovery, identifier alignment, disposition.

RFC 9989 by default, RFC 7489 on request (`DiscoveryMethod.PSL`, as profile mecsa-st assumes).
Written here on top of `mecsa.observe.dmarc` and the project's record parser: authheaders 0.16
gave wrong verdicts (NOTES.md). The rules implemented:

- the RFC5322.From domain must be exactly one address's domain (RFC 9989 §5.3.1, RFC 7489
  §6.6.1), else permerror;
- discovery is `mecsa.observe.dmarc`: the DNS tree walk (RFC 9989 §4.10.1) or the From
  domain's `_dmarc` then the PSL organisational domain's (RFC 7489 §6.6.3); a failed lookup
  that leaves the policy open is a temperror, never "no policy";
- SPF aligns when SPF passed for the MAIL FROM domain (or HELO, for a null sender) and that
  domain aligns with From under `aspf`; DKIM aligns when a passing signature's d= aligns under
  `adkim`. Strict: equal names. Relaxed: the same organisational domain, found by a tree walk
  from each name (RFC 9989 §4.10.2) or by the PSL (RFC 7489 §3.2); an organisational domain that
  could not be found out makes that identifier's alignment unknown;
- DMARC passes when either aligns; when neither does and an alignable check had a temporary
  error (or an unknown alignment), the result is temperror, since it might have passed;
- `p` applies to the domain the record was published for; `sp` to existing subdomains of the
  organisational or public suffix domain whose record applies, and `np` to subdomains that do
  not exist (no A, AAAA or MX: NXDOMAIN or NODATA; RFC 9989 §3.2.13 and §4.10.1);
- RFC 9989: `t=y` asks receivers to apply the next weaker policy (§4.7); `pct` is ignored.
  RFC 7489: `pct` below 100 applies the policy to that share of failing mail and the next weaker
  policy to the rest (§6.6.4); both are reported, never sampled at random.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses
from enum import StrEnum
from typing import Any

from mecsa.dns.resolver import Resolver
from mecsa.mailmode.dkimverify import DkimResult, DkimSignatureResult
from mecsa.observe.dmarc import Discovery, DiscoveryMethod
from mecsa.observe.dmarc import discover as discover_policy
from mecsa.observe.dmarc import organisational_domain as find_organisational_domain
from mecsa.orgdomain import NotADomainError, normalise
from mecsa.records.dmarc import Alignment, DmarcRecord, Policy, Rules, weaker
from mecsa.spf.evaluator import SpfResult


class DmarcResult(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NONE = "none"  # no usable DMARC record: no policy applies
    TEMPERROR = "temperror"
    PERMERROR = "permerror"  # the From domain cannot be determined


@dataclass(frozen=True, slots=True)
class FromDomain:
    """The RFC5322.From domain, or why there is not exactly one."""

    domain: str | None
    addresses: tuple[str, ...]
    problem: str | None = None


def from_domain(message: Message) -> FromDomain:
    """The single From address's domain (RFC 7489 §6.6.1), normalised."""
    fields = message.get_all("From") or []
    pairs = getaddresses([str(f) for f in fields])
    addresses = tuple(addr for _, addr in pairs if addr)
    if len(fields) != 1:
        return FromDomain(None, addresses, f"{len(fields)} From header fields; DMARC needs exactly one")
    if len(addresses) != 1:
        return FromDomain(None, addresses, f"the From field holds {len(addresses)} addresses, not one")
    try:
        return FromDomain(normalise(addresses[0].rpartition("@")[2]), addresses)
    except NotADomainError as exc:
        return FromDomain(None, addresses, f"the From address has no usable domain: {exc}")


@dataclass(frozen=True, slots=True)
class DmarcEvaluation:
    """DMARC for one message: the result, the alignment evidence and the disposition."""

    result: DmarcResult
    reason: str
    from_domain: str | None
    org_domain: str | None = None
    record_domain: str | None = None
    record: str | None = None
    spf_domain: str | None = None
    spf_result: str | None = None
    spf_aligned: bool = False
    dkim_aligned_domains: tuple[str, ...] = ()
    adkim: str | None = None
    aspf: str | None = None
    policy: Policy | None = None
    policy_tag: str | None = None
    pct: int = 100
    domain_exists: bool | None = None
    method: DiscoveryMethod = DiscoveryMethod.TREEWALK
    names_asked: tuple[str, ...] = ()
    testing: bool = False

    @property
    def disposition(self) -> str:
        """What the policy asks for this message: none on pass, else the policy (see `t`, `pct`)."""
        if self.result is not DmarcResult.FAIL or self.policy is None:
            return "none"
        if self.method.rules is Rules.RFC9989:
            # RFC 9989 §4.7: t=y asks for one level below the policy; pct no longer exists
            if self.testing and self.policy is not Policy.NONE:
                return f"{weaker(self.policy).value} (t=y: testing {self.policy.value})"
            return self.policy.value
        if self.pct >= 100:
            return self.policy.value
        return f"{self.policy.value} for {self.pct}% of such mail, {weaker(self.policy).value} for the rest"

    def to_json(self) -> dict[str, Any]:
        return {
            "result": self.result.value,
            "reason": self.reason,
            "from_domain": self.from_domain,
            "org_domain": self.org_domain,
            "record_domain": self.record_domain,
            "record": self.record,
            "spf": {"domain": self.spf_domain, "result": self.spf_result, "aligned": self.spf_aligned},
            "dkim_aligned_domains": list(self.dkim_aligned_domains),
            "adkim": self.adkim,
            "aspf": self.aspf,
            "policy": self.policy.value if self.policy else None,
            "policy_tag": self.policy_tag,
            "pct": self.pct,
            "domain_exists": self.domain_exists,
            "disposition": self.disposition,
            "discovery_method": self.method.value,
            "names_asked": list(self.names_asked),
            "testing": self.testing,
        }


async def discover(
    resolver: Resolver, domain: str, method: DiscoveryMethod = DiscoveryMethod.TREEWALK
) -> Discovery:
    """The DMARC policy for `domain` by `method` (the tree walk by default).

    Only discovery: the external report-destination lookups of domain mode are not needed here.
    """
    return await discover_policy(resolver, domain, method)


async def domain_exists(resolver: Resolver, domain: str) -> bool | None:
    """RFC 9989 §3.2.13: False when A, AAAA and MX all give NXDOMAIN or NODATA; None when unknown."""
    answers = await asyncio.gather(*(resolver.resolve(domain, t) for t in ("A", "AAAA", "MX")))
    if any(a.records for a in answers):
        return True
    if any(a.failed for a in answers):
        return None
    return False


async def alignment_domains(
    resolver: Resolver, discovery: Discovery, names: Sequence[str | None]
) -> dict[str, str | None]:
    """The organisational domain of the From domain and of each authenticated identifier, by the
    discovery's method (RFC 9989 §4.10.2: one tree walk per name); None where unknown."""
    orgs: dict[str, str | None] = {discovery.domain: discovery.organisational_domain}
    wanted = sorted({_bare(n) for n in names if n} - set(orgs))
    found = await asyncio.gather(*(find_organisational_domain(resolver, n, discovery.method) for n in wanted))
    orgs.update(zip(wanted, found, strict=True))
    return orgs


def _bare(name: str) -> str:
    return name.lower().removesuffix(".")


class _Aligner:
    """Identifier alignment (RFC 9989 §4.4 and §4.10.2): True, False, or None when unknown."""

    def __init__(self, author: str, orgs: Mapping[str, str | None]) -> None:
        self.author, self.orgs = author, orgs

    def __call__(self, name: str | None, strict: bool) -> bool | None:
        if not name:
            return False
        try:
            other = normalise(name)
        except NotADomainError:
            return False
        if other == self.author:
            return True
        if strict:
            return False
        mine, theirs = self.orgs.get(self.author), self.orgs.get(other)
        if mine is None or theirs is None:
            return None
        return mine == theirs


def evaluate_dmarc(
    sender: FromDomain,
    discovery: Discovery | None,
    *,
    spf_domain: str | None,
    spf_result: SpfResult | None,
    dkim: Sequence[DkimSignatureResult],
    exists: bool | None = True,
    orgs: Mapping[str, str | None] | None = None,
) -> DmarcEvaluation:
    """Judge DMARC from the discovered policy and the SPF and DKIM results (pure).

    `orgs` maps names to organisational domains (`alignment_domains`); without it the PSL
    answers for `psl` discovery, and the walk's own answer for the From domain.
    """
    domain = sender.domain
    if domain is None or discovery is None:
        return DmarcEvaluation(DmarcResult.PERMERROR, sender.problem or "no From domain", None)
    method = discovery.method
    asked = discovery.names
    org = discovery.organisational_domain
    if discovery.policy_unknown:
        failed = discovery.failure
        assert failed is not None
        why = f"could not look up the DMARC policy: {failed.answer.describe_failure()}"
        return DmarcEvaluation(DmarcResult.TEMPERROR, why, domain, org, method=method, names_asked=asked)
    found = discovery.policy_lookup
    record = discovery.policy_record
    aligned = _Aligner(domain, orgs if orgs is not None else _default_orgs(discovery, spf_domain, dkim))
    strict_spf = record is not None and record.aspf is Alignment.STRICT
    strict_dkim = record is not None and record.adkim is Alignment.STRICT
    spf_alignment = aligned(spf_domain, strict_spf) if spf_result is SpfResult.PASS else False
    dkim_alignment = {
        s.domain: aligned(s.domain, strict_dkim) for s in dkim if s.result is DkimResult.PASS and s.domain
    }
    dkim_aligned = tuple(d for d, ok in dkim_alignment.items() if ok)
    base: dict[str, Any] = {
        "from_domain": domain,
        "org_domain": org,
        "record_domain": found.domain if record and found else None,
        "record": found.records[0] if record and found else None,
        "spf_domain": spf_domain,
        "spf_result": spf_result.value if spf_result else None,
        "spf_aligned": spf_alignment is True,
        "dkim_aligned_domains": dkim_aligned,
        "method": method,
        "names_asked": asked,
    }
    if record is None or found is None:
        why = f"no usable DMARC record at {' and '.join(asked)}: no policy applies"
        return DmarcEvaluation(DmarcResult.NONE, why, **base)
    record_domain = found.domain
    tag = "p" if domain == record_domain else ("sp" if exists is not False else "np")
    policy = record.policy_for(domain, record_domain, exists=exists is not False)
    base.update(
        adkim=record.adkim.value,
        aspf=record.aspf.value,
        policy=policy,
        policy_tag=tag,
        pct=record.pct,
        domain_exists=exists,
        testing=record.testing,
    )
    if spf_alignment is True or dkim_aligned:
        parts = (["SPF (" + str(spf_domain) + ")"] if spf_alignment is True else []) + [
            f"DKIM d={d}" for d in dkim_aligned
        ]
        return DmarcEvaluation(DmarcResult.PASS, "aligned pass: " + ", ".join(parts), **base)
    unknown = spf_alignment is None or None in dkim_alignment.values()
    temp = (spf_result is SpfResult.TEMPERROR and aligned(spf_domain, strict_spf) is not False) or any(
        s.result is DkimResult.TEMPERROR and aligned(s.domain, strict_dkim) is not False for s in dkim
    )
    if temp or unknown:
        why = (
            "no aligned pass, and an aligned check had a temporary error: it might have passed"
            if temp
            else "no aligned pass, and the organisational domain of a passing identifier could not "
            "be found out: it might have aligned"
        )
        return DmarcEvaluation(DmarcResult.TEMPERROR, why, **base)
    return DmarcEvaluation(
        DmarcResult.FAIL, _fail_reason(spf_domain, spf_result, dkim, domain, record), **base
    )


def _default_orgs(
    discovery: Discovery, spf_domain: str | None, dkim: Sequence[DkimSignatureResult]
) -> dict[str, str | None]:
    """Without walks for the identifiers: the PSL for `psl` discovery; only the From domain's
    own organisational domain for the walk (other names then stay unknown)."""
    if discovery.method is not DiscoveryMethod.PSL:
        return {discovery.domain: discovery.organisational_domain}
    from mecsa.orgdomain import organisational_domain

    names = {discovery.domain, *(n for n in (spf_domain, *(s.domain for s in dkim)) if n)}
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[normalise(name)] = organisational_domain(name)
        except NotADomainError:
            continue
    return out


def _fail_reason(
    spf_domain: str | None,
    spf_result: SpfResult | None,
    dkim: Sequence[DkimSignatureResult],
    domain: str,
    record: DmarcRecord,
) -> str:
    mode = {Alignment.STRICT: "strict", Alignment.RELAXED: "relaxed"}
    spf = f"SPF {spf_result.value if spf_result else 'not checked'} for {spf_domain or '(none)'}"
    if spf_result is SpfResult.PASS:
        spf += f", not aligned ({mode[record.aspf]}) with {domain}"
    passing = [s.domain for s in dkim if s.result is DkimResult.PASS and s.domain]
    if passing:
        dk = f"DKIM passes only for {', '.join(passing)}, not aligned ({mode[record.adkim]}) with {domain}"
    else:
        dk = "no passing DKIM signature"
    return f"neither identifier aligns: {spf}; {dk}"
