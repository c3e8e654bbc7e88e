"""The worst-case SPF audit: independent of any sending IP, for the `spf` and `spf_policy` protocols.

check_host() stops at the first match, so a record that needs 11 lookups looks fine for an IP that
matches early. A receiver checking a sender that matches nothing (the forger, exactly the case SPF
exists for) evaluates every term before the first `all`, every include in full and the redirect:
that total is what this audit counts, statically, over the whole include/redirect tree.

Lookups that could not be made (SERVFAIL, timeout) leave the counts as lower bounds, so they are
reported as lookup failures (`error`), never as absence; a proven permerror elsewhere still wins.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from mecsa.dns.answer import DnsAnswer
from mecsa.spf.evaluator import (
    LOOKUP_LIMIT,
    MX_PTR_NAME_LIMIT,
    VOID_LOOKUP_LIMIT,
    DnsLookup,
    SpfResult,
    fetch_record,
    valid_domain,
)
from mecsa.spf.macros import MacroContext, expand_domain
from mecsa.spf.parser import MacroString, Mechanism, SpfRecord

RECORD_SIZE_LIMIT = 512  # RFC 7208 §3.4: keep the answer within a 512-octet UDP reply
MAX_RECORDS = 100  # fetching stops here; by then the lookup count is far over the limit anyway
STATIC_LETTERS = frozenset("do")  # letters known without a sender or IP: the domain, the sender's domain


class SpfSeverity(StrEnum):
    PERMERROR = "permerror"  # a receiver gets permerror for some sending IP: a definite failure
    TEMPERROR = "temperror"  # a lookup failed: the audit could not find out
    WARNING = "warning"
    INFO = "info"


class IssueKind(StrEnum):
    MISSING = "missing"
    MULTIPLE = "multiple"
    SYNTAX = "syntax"
    TARGET_MISSING = "target_missing"
    TOO_MANY_LOOKUPS = "too_many_lookups"
    VOID_LOOKUPS = "void_lookups"
    MX_TOO_MANY = "mx_too_many"
    LOOP = "loop"
    LOOKUP_FAILED = "lookup_failed"
    UNVERIFIABLE = "unverifiable"
    PTR = "ptr"
    TOO_LONG = "too_long"


SEVERITY = {
    IssueKind.MISSING: SpfSeverity.PERMERROR,
    IssueKind.MULTIPLE: SpfSeverity.PERMERROR,
    IssueKind.SYNTAX: SpfSeverity.PERMERROR,
    IssueKind.TARGET_MISSING: SpfSeverity.PERMERROR,
    IssueKind.TOO_MANY_LOOKUPS: SpfSeverity.PERMERROR,
    IssueKind.VOID_LOOKUPS: SpfSeverity.PERMERROR,
    IssueKind.MX_TOO_MANY: SpfSeverity.PERMERROR,
    IssueKind.LOOP: SpfSeverity.PERMERROR,
    IssueKind.LOOKUP_FAILED: SpfSeverity.TEMPERROR,
    IssueKind.UNVERIFIABLE: SpfSeverity.TEMPERROR,
    IssueKind.PTR: SpfSeverity.WARNING,
    IssueKind.TOO_LONG: SpfSeverity.WARNING,
}


@dataclass(frozen=True, slots=True)
class AuditIssue:
    """One problem, with the chain of terms from the assessed domain that leads to it."""

    kind: IssueKind
    chain: tuple[str, ...]
    message: str
    evidence: tuple[str, ...] = ()

    @property
    def severity(self) -> SpfSeverity:
        return SEVERITY[self.kind]

    @property
    def path(self) -> str:
        return " → ".join(self.chain)


@dataclass(frozen=True, slots=True)
class AuditNode:
    """One record in the tree. `lookups` counts its own DNS-querying terms; `total_*` include its subtree."""

    domain: str
    via: str
    status: str
    record: str | None = None
    detail: str = ""
    lookups: int = 0
    void4: int = 0
    void6: int = 0
    all_qualifier: str | None = None
    includes: tuple[AuditNode, ...] = ()
    redirect: AuditNode | None = None
    issues: tuple[AuditIssue, ...] = ()

    @property
    def children(self) -> tuple[AuditNode, ...]:
        return (*self.includes, *((self.redirect,) if self.redirect else ()))

    @property
    def total_lookups(self) -> int:
        return self.lookups + sum(c.total_lookups for c in self.children)

    @property
    def total_void4(self) -> int:
        return self.void4 + sum(c.total_void4 for c in self.children)

    @property
    def total_void6(self) -> int:
        return self.void6 + sum(c.total_void6 for c in self.children)

    def walk(self) -> list[AuditNode]:
        return [self, *(n for c in self.children for n in c.walk())]

    def to_json(self) -> dict[str, object]:
        return {
            "domain": self.domain,
            "via": self.via,
            "status": self.status,
            "record": self.record,
            "detail": self.detail,
            "lookups": self.lookups,
            "total_lookups": self.total_lookups,
            "void_lookups": {"ipv4": self.total_void4, "ipv6": self.total_void6},
            "all": self.all_qualifier,
            "includes": [c.to_json() for c in self.includes],
            "redirect": self.redirect.to_json() if self.redirect else None,
        }


@dataclass(frozen=True, slots=True)
class PolicyOutcome:
    """The `all` that applies to a sender matching nothing (following redirect=), or why none does."""

    qualifier: str | None
    chain: tuple[str, ...]
    status: str  # "all", "no_all", "invalid", "lookup_failed"
    detail: str = ""


@dataclass(frozen=True, slots=True)
class SpfAudit:
    """The audit of one domain: the tree, the worst-case counts and every issue."""

    domain: str
    root: AuditNode
    issues: tuple[AuditIssue, ...]
    policy: PolicyOutcome

    @property
    def lookups(self) -> int:
        return self.root.total_lookups

    @property
    def void_lookups(self) -> int:
        return max(self.root.total_void4, self.root.total_void6)

    def to_json(self) -> dict[str, object]:
        return {
            "domain": self.domain,
            "lookups": self.lookups,
            "void_lookups": {"ipv4": self.root.total_void4, "ipv6": self.root.total_void6},
            "policy": {
                "all": self.policy.qualifier,
                "status": self.policy.status,
                "chain": list(self.policy.chain),
            },
            "tree": self.root.to_json(),
            "issues": [
                {
                    "kind": i.kind.value,
                    "severity": i.severity.value,
                    "chain": list(i.chain),
                    "message": i.message,
                }
                for i in self.issues
            ],
        }


@dataclass
class _Budget:
    """SPF records fetched over the whole walk, so that a huge include tree stops at `MAX_RECORDS`."""

    records: int = 0


@dataclass(frozen=True)
class _Walk:
    """Where the walk is: the domains above this record (for loop detection) and the shared budget."""

    ancestors: frozenset[str]
    budget: _Budget = field(default_factory=_Budget)

    def below(self, domain: str) -> _Walk:
        return _Walk(self.ancestors | {domain}, self.budget)


@dataclass
class _TermResult:
    """What one record's terms added: void lookups per family and the issues found."""

    void4: int = 0
    void6: int = 0
    issues: list[AuditIssue] = field(default_factory=list)


async def audit_spf(resolver: DnsLookup, domain: str) -> SpfAudit:
    """Walk the whole include/redirect tree of `domain`'s SPF record and judge the worst case."""
    domain = domain.lower().removesuffix(".")
    root = await _node(resolver, domain, domain, "", (domain,), _Walk(frozenset()))
    issues = [i for node in root.walk() for i in node.issues]
    if root.status == "ok" or root.children:
        issues.extend(_limit_issues(root))
    return SpfAudit(domain, root, tuple(issues), effective_policy(root, issues))


def _limit_issues(root: AuditNode) -> list[AuditIssue]:
    out: list[AuditIssue] = []
    branches = tuple(f"{c.via} costs {c.total_lookups} lookup(s)" for c in root.children)
    if root.total_lookups > LOOKUP_LIMIT:
        out.append(
            AuditIssue(
                IssueKind.TOO_MANY_LOOKUPS,
                (root.domain,),
                f"a sender matching nothing needs {root.total_lookups} DNS-querying terms; "
                f"RFC 7208 §4.6.4 allows {LOOKUP_LIMIT}, so receivers return permerror",
                (f"{root.domain} itself: {root.lookups}", *branches),
            )
        )
    worst_void = max(root.total_void4, root.total_void6)
    if worst_void > VOID_LOOKUP_LIMIT:
        voids = tuple(
            f"{n.domain}: {n.void4} for IPv4 senders, {n.void6} for IPv6 senders"
            for n in root.walk()
            if n.void4 or n.void6
        )
        out.append(
            AuditIssue(
                IssueKind.VOID_LOOKUPS,
                (root.domain,),
                f"up to {worst_void} lookups return no data (IPv4 senders: {root.total_void4}, IPv6: "
                f"{root.total_void6}); RFC 7208 §4.6.4 allows {VOID_LOOKUP_LIMIT}",
                voids,
            )
        )
    return out


def effective_policy(root: AuditNode, issues: Sequence[AuditIssue] = ()) -> PolicyOutcome:
    """The `all` that applies to a sender matching nothing, or why evaluation never reaches one.

    The `all` is the record's first, else the redirect target's (RFC 7208 §5.1, §6.1). But such a
    sender's evaluation runs every term before it, every include in full and the redirect, so any
    permerror found there (the 11th lookup or 3rd void lookup of §4.6.4, a syntax error, an include
    without a record, a loop) ends it before the `all` applies: the policy is then `invalid`. A lookup
    that failed on the way leaves it unknown (`lookup_failed`); a proven permerror outranks that.
    """
    outcome = _applicable_all(root)
    if outcome.status not in ("all", "no_all"):
        return outcome
    stop = next((i for i in issues if i.severity is SpfSeverity.PERMERROR), None)
    if stop is not None:
        return PolicyOutcome(
            None,
            outcome.chain,
            "invalid",
            f"a sender not listed gets permerror before any 'all': {stop.message}",
        )
    failed = next((i for i in issues if i.kind is IssueKind.LOOKUP_FAILED), None)
    if failed is not None:
        return PolicyOutcome(None, outcome.chain, "lookup_failed", failed.message)
    return outcome


def _applicable_all(root: AuditNode) -> PolicyOutcome:
    node: AuditNode | None = root
    chain: list[str] = []
    while node is not None:
        chain.append(node.via or node.domain)
        if node.status == "lookup_failed":
            return PolicyOutcome(None, tuple(chain), "lookup_failed", node.detail)
        if node.status != "ok":
            return PolicyOutcome(None, tuple(chain), "invalid", node.detail)
        if node.all_qualifier is not None:
            return PolicyOutcome(node.all_qualifier, tuple(chain), "all")
        node = node.redirect
        if node is None:
            return PolicyOutcome(
                None, tuple(chain), "no_all", "no 'all' term and no redirect: the result is neutral"
            )
    return PolicyOutcome(None, tuple(chain), "no_all")  # pragma: no cover - the loop always returns


async def _node(
    resolver: DnsLookup, origin: str, domain: str, via: str, chain: tuple[str, ...], walk: _Walk
) -> AuditNode:
    top = not via
    if not valid_domain(domain):
        why = f"{domain!r} is not a valid domain name"
        return AuditNode(
            domain, via, "none", detail=why, issues=(AuditIssue(IssueKind.TARGET_MISSING, chain, why),)
        )
    walk.budget.records += 1
    if walk.budget.records > MAX_RECORDS:
        return AuditNode(domain, via, "not_followed", detail=f"audit stopped after {MAX_RECORDS} records")
    fetched = await fetch_record(resolver, domain)
    if fetched.result is SpfResult.TEMPERROR:
        why = f"the TXT lookup failed: {fetched.reason}"
        return AuditNode(
            domain,
            via,
            "lookup_failed",
            detail=why,
            issues=(AuditIssue(IssueKind.LOOKUP_FAILED, chain, why),),
        )
    if fetched.result is SpfResult.NONE:
        kind = IssueKind.MISSING if top else IssueKind.TARGET_MISSING
        why = fetched.reason if top else f"{via} points at {domain}, which has no SPF record: permerror"
        return AuditNode(domain, via, "none", detail=fetched.reason, issues=(AuditIssue(kind, chain, why),))
    if fetched.record is None:
        if fetched.syntax_error is not None:
            err = fetched.syntax_error
            why = f"syntax error in the record of {domain}: {err}"
            issue = AuditIssue(IssueKind.SYNTAX, chain, why, (fetched.spf_texts[0], " " * err.position + "^"))
            return AuditNode(domain, via, "syntax", fetched.spf_texts[0], str(err), issues=(issue,))
        why = f"{domain} publishes {len(fetched.spf_texts)} SPF records; RFC 7208 §4.5 makes that permerror"
        issue = AuditIssue(IssueKind.MULTIPLE, chain, why, fetched.spf_texts)
        return AuditNode(domain, via, "multiple", detail="\n".join(fetched.spf_texts), issues=(issue,))
    return await _record_node(resolver, origin, domain, via, chain, fetched.record, walk.below(domain))


async def _record_node(
    resolver: DnsLookup,
    origin: str,
    domain: str,
    via: str,
    chain: tuple[str, ...],
    record: SpfRecord,
    walk: _Walk,
) -> AuditNode:
    ctx = MacroContext(ipaddress.IPv4Address("192.0.2.0"), f"postmaster@{origin}", domain)
    issues: list[AuditIssue] = []
    if len(record.text.encode()) > RECORD_SIZE_LIMIT:
        issues.append(
            AuditIssue(
                IssueKind.TOO_LONG,
                chain,
                f"the record of {domain} is {len(record.text.encode())} octets, over {RECORD_SIZE_LIMIT}: "
                "answers may need TCP, which some receivers do not try",
            )
        )
    lookups = 0
    include_tasks = []
    term_tasks = []
    for mech in record.effective_mechanisms:
        if not mech.needs_lookup:
            continue
        lookups += 1
        target = _static_target(mech.domain, ctx)
        if mech.kind == "ptr":
            issues.append(
                AuditIssue(
                    IssueKind.PTR, chain, f"{domain} uses '{mech.text}': RFC 7208 §5.5 says do not use ptr"
                )
            )
        elif target is None:
            issues.extend(_unverifiable(mech, chain, domain))
        elif mech.kind == "include":
            include_tasks.append(_child(resolver, origin, target, mech.text, chain, walk))
        else:
            term_tasks.append(_check_term(resolver, mech, target, (*chain, mech.text)))
    redirect_task = None
    redirect = record.effective_redirect
    if redirect is not None:
        lookups += 1
        target = _static_target(redirect.value, ctx)
        if target is None:
            issues.append(
                AuditIssue(
                    IssueKind.UNVERIFIABLE, chain, f"{redirect.text} depends on the sender: not followed"
                )
            )
        else:
            redirect_task = _child(resolver, origin, target, redirect.text, chain, walk)
    includes, terms, redirected = await asyncio.gather(
        asyncio.gather(*include_tasks), asyncio.gather(*term_tasks), _maybe(redirect_task)
    )
    void4 = sum(t.void4 for t in terms) + sum(1 for m in record.effective_mechanisms if _dynamic_void(m, ctx))
    void6 = sum(t.void6 for t in terms) + sum(1 for m in record.effective_mechanisms if _dynamic_void(m, ctx))
    issues.extend(i for t in terms for i in t.issues)
    all_mech = record.all_mechanism
    return AuditNode(
        domain,
        via,
        "ok",
        record.text,
        lookups=lookups,
        void4=void4,
        void6=void6,
        all_qualifier=all_mech.qualifier.value if all_mech else None,
        includes=tuple(includes),
        redirect=redirected,
        issues=tuple(issues),
    )


async def _maybe(task: Awaitable[AuditNode] | None) -> AuditNode | None:
    return None if task is None else await task


async def _child(
    resolver: DnsLookup, origin: str, target: str, via: str, chain: tuple[str, ...], walk: _Walk
) -> AuditNode:
    path = (*chain, via)
    if target in walk.ancestors:
        why = f"{via} loops back to {target}: receivers run out of lookups (permerror)"
        return AuditNode(target, via, "loop", detail=why, issues=(AuditIssue(IssueKind.LOOP, path, why),))
    return await _node(resolver, origin, target, via, path, walk)


def _static_target(spec: MacroString | None, ctx: MacroContext) -> str | None:
    """The target name when it does not depend on the sender or IP; None when it does."""
    if spec is None:
        return ctx.domain
    if not spec.letters <= STATIC_LETTERS:
        return None
    return expand_domain(spec, ctx).lower()


def _dynamic_void(mech: Mechanism, ctx: MacroContext) -> bool:
    # A sender-dependent a/mx/exists target (exists:%{i}.bl.example, say) has no data for a sender
    # that is not listed: in the worst case it is a void lookup.
    return mech.kind in ("a", "mx", "exists") and _static_target(mech.domain, ctx) is None


def _unverifiable(mech: Mechanism, chain: tuple[str, ...], domain: str) -> list[AuditIssue]:
    if mech.kind == "include":
        return [
            AuditIssue(
                IssueKind.UNVERIFIABLE,
                (*chain, mech.text),
                f"{domain}: '{mech.text}' depends on the sender or IP, so its lookups cannot be counted",
            )
        ]
    return []


async def _check_term(
    resolver: DnsLookup, mech: Mechanism, target: str, chain: tuple[str, ...]
) -> _TermResult:
    """Look up an a/mx/exists target as a receiver would: void per address family, and failures."""
    out = _TermResult()
    if not valid_domain(target):
        out.void4 = out.void6 = 1
        return out
    if mech.kind == "mx":
        mx = await resolver.resolve(target, "MX")
        if _failed(mx, chain, out):
            return out
        names = [rd.exchange.to_text(omit_final_dot=True) for rd in mx.records]  # type: ignore[attr-defined]
        if not names:
            out.void4 = out.void6 = 1
        if len(names) > MX_PTR_NAME_LIMIT:
            out.issues.append(
                AuditIssue(
                    IssueKind.MX_TOO_MANY,
                    chain,
                    f"{target} has {len(names)} MX hosts; RFC 7208 §4.6.4 allows "
                    f"{MX_PTR_NAME_LIMIT}: permerror",
                )
            )
            return out
        hosts = [n for n in names if valid_domain(n)]
        answers = await asyncio.gather(*(resolver.resolve(h, t) for h in hosts for t in ("A", "AAAA")))
        for answer in answers:
            _failed(answer, chain, out)
        return out
    if mech.kind == "exists":
        answer = await resolver.resolve(target, "A")
        if not _failed(answer, chain, out) and not answer.records:
            out.void4 = out.void6 = 1
        return out
    a, aaaa = await asyncio.gather(resolver.resolve(target, "A"), resolver.resolve(target, "AAAA"))
    if not _failed(a, chain, out) and not a.records:
        out.void4 = 1
    if not _failed(aaaa, chain, out) and not aaaa.records:
        out.void6 = 1
    return out


def _failed(answer: DnsAnswer, chain: tuple[str, ...], out: _TermResult) -> bool:
    if not answer.failed:
        return False
    out.issues.append(
        AuditIssue(
            IssueKind.LOOKUP_FAILED,
            chain,
            f"the lookup for {chain[-1]} failed ({answer.describe_failure()}): receivers get temperror",
        )
    )
    return True
