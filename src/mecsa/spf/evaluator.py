"""check_host() exactly as RFC 7208 §4-§6 describe it, asking DNS through a small protocol.

Written by hand because pyspf (the one library that passes the RFC 7208 suite) is synchronous,
uses a global resolver and cannot report the lookup counts the audit and CLI need.

DNS outcomes map as §5 says: NXDOMAIN is "no records"; any other failure (SERVFAIL, REFUSED,
timeout) makes the mechanism, and so the whole check, a temperror, except where the RFC says
otherwise (the ptr mechanism and the `p` macro skip failed names; exp= is ignored on error).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol

from mecsa.dns.answer import DnsAnswer, Rcode
from mecsa.spf.macros import IpAddress, MacroContext, expand, expand_domain
from mecsa.spf.parser import (
    MacroString,
    Mechanism,
    SpfRecord,
    SpfSyntaxError,
    is_spf_record,
    parse_macro_string,
    parse_record,
)

LOOKUP_LIMIT = 10
VOID_LOOKUP_LIMIT = 2
MX_PTR_NAME_LIMIT = 10
DEFAULT_DEADLINE_S = 20.0  # RFC 7208 §4.6.4: allow at least 20 seconds, then temperror


class DnsLookup(Protocol):
    """What the evaluator needs from DNS; `mecsa.dns.resolver.Resolver` satisfies it."""

    async def resolve(self, name: str, rdtype: str) -> DnsAnswer: ...


class SpfResult(StrEnum):
    """The results of check_host() (RFC 7208 §2.6)."""

    PASS = "pass"
    FAIL = "fail"
    SOFTFAIL = "softfail"
    NEUTRAL = "neutral"
    NONE = "none"
    PERMERROR = "permerror"
    TEMPERROR = "temperror"


@dataclass(frozen=True, slots=True)
class SpfOutcome:
    """What check_host() concluded, why, and the lookups it spent."""

    result: SpfResult
    reason: str
    explanation: str | None = None
    lookups: int = 0
    void_lookups: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "result": self.result.value,
            "reason": self.reason,
            "explanation": self.explanation,
            "lookups": self.lookups,
            "void_lookups": self.void_lookups,
        }


class _Abort(Exception):
    """Ends the whole evaluation with a permerror or temperror (RFC 7208 §4.6.4, §5)."""

    def __init__(self, result: SpfResult, reason: str) -> None:
        super().__init__(reason)
        self.result = result
        self.reason = reason


def _ip(text: str | IpAddress) -> IpAddress:
    ip = ipaddress.ip_address(text) if isinstance(text, str) else text
    # An IPv4-mapped IPv6 address MUST be treated as IPv4 (RFC 7208 §5).
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def malformed_domain(name: str) -> str | None:
    """Why `name` is not a domain check_host() can look up (RFC 7208 §4.3), or None when it is one.

    §4.3: a malformed name (an empty label, a label over 63 octets, ...), one that is not
    multi-label, or a domain literal makes check_host() return `none` at once, without DNS.
    """
    name = name.removesuffix(".")
    rule = "RFC 7208 §4.3 makes the result none"
    if not name:
        return f"the domain is empty: {rule}"
    if name.startswith("["):
        return f"{name!r} is a domain literal, not a domain name: {rule}"
    if not name.isascii():
        return f"{name!r} is not in A-label (ASCII) form: {rule}"
    if len(name) > 253:
        return f"{name!r} is {len(name)} octets, over 253: {rule}"
    labels = name.split(".")
    if any(not label for label in labels):
        return f"{name!r} has an empty label: {rule}"
    if any(len(label) > 63 for label in labels):
        return f"{name!r} has a label longer than 63 octets: {rule}"
    if len(labels) < 2:
        return f"{name!r} is not a multi-label domain name: {rule}"
    return None


def valid_domain(name: str) -> bool:
    """RFC 7208 §4.3: a multi-label name, labels 1-63 octets, at most 253; no domain literal."""
    return malformed_domain(name) is None


def split_sender(sender: str, helo: str) -> tuple[str, str]:
    """The identity checked: MAIL FROM, or postmaster@HELO when MAIL FROM is empty (RFC 7208 §2.4)."""
    if not sender:
        return f"postmaster@{helo}", helo
    local, at, domain = sender.rpartition("@")
    if not at:
        return f"postmaster@{sender}", sender
    return f"{local or 'postmaster'}@{domain}", domain


async def check_sender(
    ip: str | IpAddress,
    sender: str,
    helo: str = "",
    *,
    resolver: DnsLookup,
    receiver: str = "unknown",
    deadline_s: float = DEFAULT_DEADLINE_S,
) -> SpfOutcome:
    """check_host() for a MAIL FROM (or, when MAIL FROM is empty, the HELO identity)."""
    full_sender, domain = split_sender(sender, helo)
    return await check_host(
        ip, domain, full_sender, helo, resolver=resolver, receiver=receiver, deadline_s=deadline_s
    )


async def check_host(
    ip: str | IpAddress,
    domain: str,
    sender: str,
    helo: str = "",
    *,
    resolver: DnsLookup,
    receiver: str = "unknown",
    deadline_s: float = DEFAULT_DEADLINE_S,
) -> SpfOutcome:
    """Evaluate the SPF record of `domain` for a message from `ip` with MAIL FROM `sender` (RFC 7208 §4)."""
    if "@" not in sender:
        sender = f"postmaster@{sender}"
    run = _Evaluation(resolver, MacroContext(_ip(ip), sender, domain, helo, receiver=receiver))
    try:
        async with asyncio.timeout(deadline_s):
            result, reason, explanation = await run.check(domain, top=True)
    except _Abort as abort:
        result, reason, explanation = abort.result, abort.reason, None
    except TimeoutError:
        result, reason, explanation = SpfResult.TEMPERROR, f"evaluation took over {deadline_s:g} s", None
    return SpfOutcome(result, reason, explanation, run.lookups, run.void_lookups)


class _Evaluation:
    """The state of one check: the lookup counters shared by every include and redirect."""

    def __init__(self, resolver: DnsLookup, ctx: MacroContext) -> None:
        self.resolver = resolver
        self.ctx = ctx
        self.lookups = 0
        self.void_lookups = 0

    async def check(self, domain: str, *, top: bool) -> tuple[SpfResult, str, str | None]:
        """One check_host() call: returns result, reason and (for fail at the top) the explanation."""
        domain = domain.removesuffix(".")
        malformed = malformed_domain(domain)
        if malformed is not None:
            return SpfResult.NONE, malformed, None
        found = await fetch_record(self.resolver, domain)
        if found.result is not None:
            return found.result, found.reason, None
        assert found.record is not None
        ctx = self.ctx.with_domain(domain)
        for mech in found.record.effective_mechanisms:
            if await self._matches(mech, ctx):
                result = SpfResult(mech.qualifier.result_name)
                reason = f"{domain}: matched {mech.text}"
                explanation = None
                if result is SpfResult.FAIL and top and found.record.explanation is not None:
                    explanation = await self._explain(found.record.explanation.value, ctx)
                return result, reason, explanation
        redirect = found.record.effective_redirect
        if redirect is not None:
            self._count_lookup(redirect.text)
            target = expand_domain(redirect.value, await self._with_p(redirect.value, ctx))
            result, reason, explanation = await self.check(target, top=top)
            if result is SpfResult.NONE:
                return SpfResult.PERMERROR, f"{domain}: redirect={target} has no SPF record ({reason})", None
            return result, reason, explanation
        return SpfResult.NEUTRAL, f"{domain}: no mechanism matched", None

    def _count_lookup(self, term: str) -> None:
        self.lookups += 1
        if self.lookups > LOOKUP_LIMIT:
            raise _Abort(SpfResult.PERMERROR, f"more than {LOOKUP_LIMIT} DNS-querying terms (at {term})")

    def _count_void(self, name: str) -> None:
        self.void_lookups += 1
        if self.void_lookups > VOID_LOOKUP_LIMIT:
            raise _Abort(SpfResult.PERMERROR, f"more than {VOID_LOOKUP_LIMIT} void lookups (at {name})")

    async def _ask(self, name: str, rdtype: str, *, void_counts: bool = True) -> DnsAnswer:
        """A lookup for a mechanism: errors abort with temperror, empty answers count as void."""
        if not valid_domain(name):
            # A target that cannot be queried (empty or over-long label) is treated as non-existent.
            answer = DnsAnswer(name, rdtype, Rcode.NXDOMAIN, detail="not a valid domain name")
        else:
            answer = await self.resolver.resolve(name, rdtype)
        if answer.failed:
            raise _Abort(SpfResult.TEMPERROR, f"DNS lookup failed: {answer.describe_failure()}")
        if void_counts and not answer.records:
            self._count_void(name)
        return answer

    async def _target(self, mech: Mechanism, ctx: MacroContext) -> str:
        if mech.domain is None:
            return ctx.domain
        return expand_domain(mech.domain, await self._with_p(mech.domain, ctx))

    async def _with_p(self, macro_string: MacroString, ctx: MacroContext) -> MacroContext:
        if "p" not in macro_string.letters:
            return ctx
        name = await validated_name(self.resolver, ctx.ip, ctx.domain)
        return replace(ctx, validated_name=name or "unknown")

    async def _matches(self, mech: Mechanism, ctx: MacroContext) -> bool:
        ip = ctx.ip
        if mech.kind == "all":
            return True
        if mech.kind in ("ip4", "ip6"):
            assert mech.network is not None
            return ip.version == mech.network.version and ip in mech.network
        self._count_lookup(mech.text)
        target = await self._target(mech, ctx)
        if mech.kind == "include":
            return await self._include(target, ctx.domain, mech.text)
        if mech.kind == "a":
            return _in_any(ip, (await self._ask(target, _address_type(ip))).records, mech)
        if mech.kind == "mx":
            return await self._mx(target, mech)
        if mech.kind == "exists":
            return bool((await self._ask(target, "A")).records)
        return await self._ptr(target)

    async def _include(self, target: str, domain: str, term: str) -> bool:
        result, reason, _ = await self.check(target, top=False)
        if result is SpfResult.PASS:
            return True
        if result in (SpfResult.FAIL, SpfResult.SOFTFAIL, SpfResult.NEUTRAL):
            return False
        if result is SpfResult.NONE:
            raise _Abort(SpfResult.PERMERROR, f"{domain}: {term}: no SPF record at {target} ({reason})")
        raise _Abort(result, reason)

    async def _mx(self, target: str, mech: Mechanism) -> bool:
        mx = await self._ask(target, "MX")
        names = [rd.exchange.to_text(omit_final_dot=True) for rd in mx.records]  # type: ignore[attr-defined]
        if len(names) > MX_PTR_NAME_LIMIT:
            raise _Abort(SpfResult.PERMERROR, f"{target} has {len(names)} MX names, over {MX_PTR_NAME_LIMIT}")
        hosts = [n for n in names if n not in ("", ".")]  # a null MX (RFC 7505) names no host
        rdtype = _address_type(self.ctx.ip)
        answers = await asyncio.gather(*(self._ask(host, rdtype, void_counts=False) for host in hosts))
        return any(_in_any(self.ctx.ip, a.records, mech) for a in answers)

    async def _ptr(self, target: str) -> bool:
        names = await validated_names(self.resolver, self.ctx.ip)
        target = target.lower()
        return any(n == target or n.endswith("." + target) for n in names)

    async def _explain(self, domain_spec: MacroString, ctx: MacroContext) -> str | None:
        """The exp= text (RFC 7208 §6.2); any problem means "no explanation", never an error."""
        name = expand_domain(domain_spec, await self._with_p(domain_spec, ctx))
        if not valid_domain(name):
            return None
        answer = await self.resolver.resolve(name, "TXT")
        texts = answer.texts() if answer.exists else ()
        if len(texts) != 1 or not texts[0].isascii():
            return None
        try:
            explain = parse_macro_string(texts[0], explanation=True)
        except SpfSyntaxError:
            return None
        return expand(explain, await self._with_p(explain, ctx))


def _address_type(ip: IpAddress) -> str:
    return "A" if ip.version == 4 else "AAAA"


def _in_any(ip: IpAddress, records: Sequence[object], mech: Mechanism) -> bool:
    prefix = mech.cidr4 if ip.version == 4 else mech.cidr6
    for rd in records:
        network = ipaddress.ip_network(f"{rd}/{prefix}", strict=False)
        if network.version == ip.version and ip in network:
            return True
    return False


@dataclass(frozen=True, slots=True)
class FetchedRecord:
    """The SPF record of a name, or the result that ends check_host() before evaluation (§4.4-§4.6)."""

    domain: str
    answer: DnsAnswer | None
    spf_texts: tuple[str, ...]
    record: SpfRecord | None = None
    result: SpfResult | None = None
    reason: str = ""
    syntax_error: SpfSyntaxError | None = None


async def fetch_record(resolver: DnsLookup, domain: str) -> FetchedRecord:
    """Look up and select the one SPF record of `domain` and parse it (RFC 7208 §4.4, §4.5)."""
    answer = await resolver.resolve(domain, "TXT")
    if answer.failed:
        return FetchedRecord(
            domain, answer, (), result=SpfResult.TEMPERROR, reason=f"{answer.describe_failure()}"
        )
    texts = tuple(t for t in answer.texts() if is_spf_record(t)) if answer.exists else ()
    if not texts:
        why = "the domain does not exist" if answer.rcode is Rcode.NXDOMAIN else "no SPF record"
        return FetchedRecord(domain, answer, (), result=SpfResult.NONE, reason=f"{domain}: {why}")
    if len(texts) > 1:
        return FetchedRecord(
            domain, answer, texts, result=SpfResult.PERMERROR, reason=f"{domain}: {len(texts)} SPF records"
        )
    try:
        record = parse_record(texts[0])
    except SpfSyntaxError as exc:
        return FetchedRecord(
            domain, answer, texts, result=SpfResult.PERMERROR, reason=f"{domain}: {exc}", syntax_error=exc
        )
    return FetchedRecord(domain, answer, texts, record)


async def validated_names(resolver: DnsLookup, ip: IpAddress) -> tuple[str, ...]:
    """The PTR names of `ip` whose forward lookup includes `ip` (RFC 7208 §5.5): at most 10 are tried.

    A failed PTR lookup gives no names, and a failed forward lookup skips that name: the RFC
    makes both "no match", because the sender does not control a client's reverse DNS.
    """
    answer = await resolver.resolve(ip.reverse_pointer, "PTR")
    if not answer.exists:
        return ()
    names = [rd.target.to_text(omit_final_dot=True).lower() for rd in answer.records][:MX_PTR_NAME_LIMIT]  # type: ignore[attr-defined]
    rdtype = _address_type(ip)
    forward = await asyncio.gather(*(resolver.resolve(n, rdtype) for n in names if valid_domain(n)))
    valid = [n for n in names if valid_domain(n)]
    return tuple(
        name
        for name, addresses in zip(valid, forward, strict=True)
        if addresses.exists and any(_ip(str(rd)) == ip for rd in addresses.records)
    )


async def validated_name(resolver: DnsLookup, ip: IpAddress, domain: str) -> str | None:
    """The `p` macro's name: the domain itself, else a subdomain of it, else any validated name (§7.3)."""
    names = await validated_names(resolver, ip)
    domain = domain.lower()
    for wanted in (lambda n: n == domain, lambda n: n.endswith("." + domain), lambda n: True):
        for name in names:
            if wanted(name):
                return name
    return None
