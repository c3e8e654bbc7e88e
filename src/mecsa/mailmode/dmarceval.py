"""DMARC (RFC 7489) for one received message: policy discovery, identifier alignment, disposition.

Written here on top of `mecsa.orgdomain` and the project's record parser: authheaders 0.16 gave
wrong verdicts (NOTES.md). The rules implemented:

- the RFC5322.From domain must be exactly one address's domain (§6.6.1), else permerror;
- discovery reuses `mecsa.checks.dmarc.observe` (the From domain's `_dmarc`, then the
  organisational domain's); a failed lookup is a temperror, never "no policy";
- SPF aligns when SPF passed for the MAIL FROM domain (or HELO, for a null sender: §3.1.2) and
  that domain aligns with From under `aspf`; DKIM aligns when a passing signature's d= aligns
  under `adkim` (relaxed: same organisational domain; strict: equal) (§3.1.1);
- DMARC passes when either aligns; when neither does and an alignable check had a temporary
  error, the result is temperror, since it might have passed;
- `p` applies to the domain the record was published for; `sp` only to its subdomains found
  through the organisational-domain fallback, and `np` (RFC 9091) only to such subdomains that
  do not exist (no A, AAAA or MX: NXDOMAIN or NODATA);
- `pct` below 100 applies the policy to that share of failing mail and the next weaker policy to
  the rest (§6.6.4): both are reported, never sampled at random.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses
from enum import StrEnum
from typing import Any

from mecsa.checks.dmarc import DmarcObservation
from mecsa.dns.resolver import Resolver
from mecsa.mailmode.dkimverify import DkimResult, DkimSignatureResult
from mecsa.orgdomain import NotADomainError, aligned, normalise, organisational_domain
from mecsa.records.dmarc import Alignment, DmarcRecord, Policy, parse_dmarc
from mecsa.spf.evaluator import SpfResult

_WEAKER = {Policy.REJECT: Policy.QUARANTINE, Policy.QUARANTINE: Policy.NONE, Policy.NONE: Policy.NONE}


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

    @property
    def disposition(self) -> str:
        """What the policy asks for this message: none on pass, else the policy (see `pct`)."""
        if self.result is not DmarcResult.FAIL or self.policy is None:
            return "none"
        if self.pct >= 100:
            return self.policy.value
        weaker = _WEAKER[self.policy].value
        return f"{self.policy.value} for {self.pct}% of such mail, {weaker} for the rest"

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
        }


async def discover(resolver: Resolver, domain: str) -> DmarcObservation:
    """The DMARC record for `domain`, through the domain check's discovery (with org fallback).

    Only discovery: the external report-destination lookups of domain mode are not needed here.
    """
    from mecsa.checks.dmarc import discover as discover_records

    return DmarcObservation(domain, await discover_records(resolver, domain))


async def domain_exists(resolver: Resolver, domain: str) -> bool | None:
    """RFC 9091 §2.1: False when A, AAAA and MX all give NXDOMAIN or NODATA; None when unknown."""
    answers = await asyncio.gather(*(resolver.resolve(domain, t) for t in ("A", "AAAA", "MX")))
    if any(a.records for a in answers):
        return True
    if any(a.failed for a in answers):
        return None
    return False


def _aligned(a: str | None, b: str, strict: bool) -> bool:
    if not a:
        return False
    try:
        return aligned(a, b, strict=strict)
    except NotADomainError:
        return False


def _record(obs: DmarcObservation) -> tuple[DmarcRecord | None, str | None]:
    found = obs.found
    if len(found.records) != 1:
        return None, None
    return parse_dmarc(found.records[0]).record, found.records[0]


def evaluate_dmarc(
    sender: FromDomain,
    obs: DmarcObservation | None,
    *,
    spf_domain: str | None,
    spf_result: SpfResult | None,
    dkim: Sequence[DkimSignatureResult],
    exists: bool | None = True,
) -> DmarcEvaluation:
    """Judge DMARC from the discovered policy and the SPF and DKIM results (pure)."""
    domain = sender.domain
    if domain is None or obs is None:
        return DmarcEvaluation(DmarcResult.PERMERROR, sender.problem or "no From domain", None)
    org = organisational_domain(domain)
    failed = next((lk for lk in obs.lookups if lk.answer.failed), None)
    if failed is not None:
        why = f"could not look up the DMARC policy: {failed.answer.describe_failure()}"
        return DmarcEvaluation(DmarcResult.TEMPERROR, why, domain, org)
    record, text = _record(obs)
    strict_spf = record is not None and record.aspf is Alignment.STRICT
    strict_dkim = record is not None and record.adkim is Alignment.STRICT
    spf_passed = spf_result is SpfResult.PASS
    spf_aligned = spf_passed and _aligned(spf_domain, domain, strict_spf)
    dkim_aligned = tuple(
        s.domain
        for s in dkim
        if s.result is DkimResult.PASS and s.domain and _aligned(s.domain, domain, strict_dkim)
    )
    base: dict[str, Any] = {
        "from_domain": domain,
        "org_domain": org,
        "record_domain": obs.found.domain if record else None,
        "record": text,
        "spf_domain": spf_domain,
        "spf_result": spf_result.value if spf_result else None,
        "spf_aligned": spf_aligned,
        "dkim_aligned_domains": dkim_aligned,
    }
    if record is None:
        tried = " and ".join(f"_dmarc.{lk.domain}" for lk in obs.lookups)
        why = f"no usable DMARC record at {tried}: no policy applies"
        return DmarcEvaluation(DmarcResult.NONE, why, **base)
    assert text is not None
    record_domain = obs.found.domain
    tag = "p" if domain == record_domain else ("sp" if exists is not False else "np")
    policy = record.policy_for(domain, record_domain, exists=exists is not False)
    base.update(
        adkim=record.adkim.value,
        aspf=record.aspf.value,
        policy=policy,
        policy_tag=tag,
        pct=record.pct,
        domain_exists=exists,
    )
    if spf_aligned or dkim_aligned:
        parts = (["SPF (" + str(spf_domain) + ")"] if spf_aligned else []) + [
            f"DKIM d={d}" for d in dkim_aligned
        ]
        return DmarcEvaluation(DmarcResult.PASS, "aligned pass: " + ", ".join(parts), **base)
    temp = (spf_result is SpfResult.TEMPERROR and _aligned(spf_domain, domain, strict_spf)) or any(
        s.result is DkimResult.TEMPERROR and _aligned(s.domain, domain, strict_dkim) for s in dkim
    )
    if temp:
        why = "no aligned pass, and an aligned check had a temporary error: it might have passed"
        return DmarcEvaluation(DmarcResult.TEMPERROR, why, **base)
    return DmarcEvaluation(
        DmarcResult.FAIL, _fail_reason(spf_domain, spf_result, dkim, domain, record), **base
    )


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
