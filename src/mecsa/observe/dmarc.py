"""Where a domain's DMARC policy is, and what its organisational domain is, by either rule.

- `treewalk` (RFC 9989 §4.10, the default): ask `_dmarc.<name>` for the domain, then for its
  ancestors up to the TLD. A name with more than eight labels is shortened to seven after the
  first question, so that no walk asks more than eight (`MAX_WALK_QUERIES`). Only a name with
  exactly one `v=DMARC1` record counts; several at one name are all discarded (§4.10 step 2).
  The walk stops at a record with `psd=y` or `psd=n`. The policy record is the domain's own,
  else its organisational domain's, else its public suffix domain's (§4.10.1); the organisational
  domain is chosen from the records found, longest name first (§4.10.2).
- `psl` (RFC 7489 §6.6.3 with §3.2): the domain's record, else the record of the organisational
  domain named by the Public Suffix List. This is what MECSA (profile mecsa-st) does.

The two method names are RFC 9990's values for `discovery_method` in aggregate reports.
A question that fails stops the walk: what lies above it cannot be known, and "could not find
out" is never "absent". The I/O is `walk`/`psl_lookups`; everything else here is pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mecsa.dns.answer import DnsAnswer
from mecsa.dns.resolver import Resolver
from mecsa.orgdomain import NotADomainError
from mecsa.orgdomain import organisational_domain as psl_organisational_domain
from mecsa.records.dmarc import DmarcRecord, Psd, Rules, is_dmarc_record, parse_dmarc

# RFC 9989 §4.10: "Author Domains with more than eight labels do not result in more than eight
# DNS queries"; after the first question the name is cut to seven labels.
MAX_WALK_QUERIES = 8
_SHORTENED_LABELS = MAX_WALK_QUERIES - 1


class DiscoveryMethod(StrEnum):
    TREEWALK = "treewalk"
    PSL = "psl"

    @property
    def rules(self) -> Rules:
        """The record rules that go with the method: RFC 9989 with the walk, RFC 7489 with the PSL."""
        return Rules.RFC9989 if self is DiscoveryMethod.TREEWALK else Rules.RFC7489


@dataclass(frozen=True, slots=True)
class DmarcLookup:
    """One `_dmarc.<domain>` TXT question and the DMARC records among its answers."""

    domain: str
    answer: DnsAnswer

    @property
    def name(self) -> str:
        return f"_dmarc.{self.domain}"

    @property
    def records(self) -> tuple[str, ...]:
        """TXT strings that start with v=DMARC1; other TXT at `_dmarc` is ignored."""
        return tuple(t for t in self.answer.texts() if is_dmarc_record(t))

    @property
    def other_texts(self) -> tuple[str, ...]:
        return tuple(t for t in self.answer.texts() if not is_dmarc_record(t))

    def valid_record(self, rules: Rules = Rules.RFC9989) -> DmarcRecord | None:
        """The record when there is exactly one and receivers would use it; None otherwise."""
        if self.answer.failed or len(self.records) != 1:
            return None
        return parse_dmarc(self.records[0], rules).record


def walk_targets(domain: str) -> tuple[str, ...]:
    """The names a full walk asks, in order (RFC 9989 §4.10 steps 3-7): the domain itself, then
    its ancestors, skipping those with more than seven labels; at most eight names."""
    labels = domain.split(".")
    shorter = range(min(len(labels) - 1, _SHORTENED_LABELS), 0, -1)
    return (domain, *(".".join(labels[-count:]) for count in shorter))


async def walk(resolver: Resolver, domain: str) -> tuple[DmarcLookup, ...]:
    """The RFC 9989 §4.10 DNS tree walk from `domain`: one question per name, in order.

    Sequential on purpose: each answer decides whether the next question is asked at all.
    """
    lookups: list[DmarcLookup] = []
    for name in walk_targets(domain):
        lookup = DmarcLookup(name, await resolver.resolve(f"_dmarc.{name}", "TXT"))
        lookups.append(lookup)
        if lookup.answer.failed or _psd_stop(lookup):
            break
    return tuple(lookups)


async def psl_lookups(resolver: Resolver, domain: str) -> tuple[DmarcLookup, ...]:
    """RFC 7489 §6.6.3: `_dmarc.<domain>`, then the PSL organisational domain's when none is there.

    A failed first lookup stops discovery: falling back then could apply the wrong policy.
    """
    first = DmarcLookup(domain, await resolver.resolve(f"_dmarc.{domain}", "TXT"))
    org = _psl_org(domain)
    if first.answer.failed or first.records or org == domain:
        return (first,)
    return first, DmarcLookup(org, await resolver.resolve(f"_dmarc.{org}", "TXT"))


async def discover(resolver: Resolver, domain: str, method: DiscoveryMethod) -> Discovery:
    """Run discovery for `domain` by `method`."""
    if method is DiscoveryMethod.TREEWALK:
        return Discovery(domain, method, await walk(resolver, domain))
    return Discovery(domain, method, await psl_lookups(resolver, domain))


def _psd_stop(lookup: DmarcLookup) -> bool:
    record = lookup.valid_record()
    return record is not None and record.psd in (Psd.YES, Psd.NO)


def _psl_org(name: str) -> str:
    try:
        return psl_organisational_domain(name)
    except NotADomainError:
        return name


@dataclass(frozen=True, slots=True)
class Discovery:
    """The questions one discovery asked, and what they mean: the policy record and the
    organisational domain (both None when a failed question leaves them unknown)."""

    domain: str
    method: DiscoveryMethod
    lookups: tuple[DmarcLookup, ...]

    @property
    def rules(self) -> Rules:
        return self.method.rules

    @property
    def own(self) -> DmarcLookup:
        """The question for the domain itself (always asked first)."""
        return self.lookups[0]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(lk.name for lk in self.lookups)

    @property
    def failure(self) -> DmarcLookup | None:
        """The failed question, if any (discovery stops there)."""
        return next((lk for lk in self.lookups if lk.answer.failed), None)

    @property
    def policy_unknown(self) -> bool:
        """True when a failed question leaves open which record applies."""
        if self.failure is None:
            return False
        # the domain's own valid record applies whatever lies above (RFC 9989 §4.10.1)
        return self.method is DiscoveryMethod.PSL or self.own.valid_record(self.rules) is None

    @property
    def policy_lookup(self) -> DmarcLookup | None:
        """Where the record that applies was found; None when there is none (or it is unknown).

        Under `psl` this is the last lookup when it holds exactly one v=DMARC1 record, valid or
        not (RFC 7489 §6.6.3 steps 5-6 judge it afterwards, and the check reports why).
        """
        if self.policy_unknown:
            return None
        if self.method is DiscoveryMethod.PSL:
            last = self.lookups[-1]
            return last if len(last.records) == 1 else None
        if self.own.valid_record() is not None:
            return self.own
        org = self.organisational_domain
        by_name = {lk.domain: lk for lk in self.lookups}
        if org is not None and org in by_name and by_name[org].valid_record() is not None:
            return by_name[org]
        return self._psd_lookup()

    @property
    def organisational_domain(self) -> str | None:
        """RFC 9989 §4.10.2 (walk) or RFC 7489 §3.2 (PSL); None when a failed question hides it."""
        if self.method is DiscoveryMethod.PSL:
            return _psl_org(self.domain)
        if self.failure is not None:
            return None
        valid = [(lk, rec) for lk in self.lookups if (rec := lk.valid_record()) is not None]
        for lookup, record in valid:
            if record.psd is Psd.NO:
                return lookup.domain
            if record.psd is Psd.YES and lookup is not self.own:
                return _one_label_below(self.domain, lookup.domain)
        if valid:
            return valid[-1][0].domain
        return self.domain

    def _psd_lookup(self) -> DmarcLookup | None:
        for lookup in self.lookups:
            record = lookup.valid_record()
            if record is not None and record.psd is Psd.YES:
                return lookup
        return None

    @property
    def policy_record(self) -> DmarcRecord | None:
        """The parsed record that applies, under the method's rules; None when none is usable."""
        found = self.policy_lookup
        return None if found is None else found.valid_record(self.rules)


def _one_label_below(domain: str, ancestor: str) -> str:
    """The name one label longer than `ancestor` on the way down to `domain`."""
    labels = domain.split(".")
    return ".".join(labels[-(len(ancestor.split(".")) + 1) :])


async def organisational_domain(resolver: Resolver, name: str, method: DiscoveryMethod) -> str | None:
    """The organisational domain of any name (an SPF or DKIM domain, say) by `method`; None when
    a failed question leaves it unknown (RFC 9989 §4.10.2 walks start at the name itself)."""
    if method is DiscoveryMethod.PSL:
        return _psl_org(name)
    return Discovery(name, method, await walk(resolver, name)).organisational_domain
