"""The MX set of the assessed domain and the addresses of each MX host, looked up once per assessment.

Null MX (RFC 7505) and implicit MX (RFC 5321 §5.1: no MX but an address record) are recorded here,
and judged by the mx check.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, replace

import dns.name
import dns.rdata
import dns.rdataclass

from mecsa.dns.answer import DnsAnswer, DnssecStatus, Rcode
from mecsa.dns.resolver import Resolver
from mecsa.model import JsonValue
from mecsa.observe.context import Context


@dataclass(frozen=True, slots=True)
class MxHost:
    """One MX target with its address answers."""

    name: str
    preference: int
    a: DnsAnswer
    aaaa: DnsAnswer

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(rd.to_text() for rd in (*self.a.records, *self.aaaa.records))

    @property
    def cname_chain(self) -> tuple[str, ...]:
        return self.a.cname_chain or self.aaaa.cname_chain

    @property
    def lookup_failed(self) -> bool:
        """True when an address lookup failed, so the address list may be incomplete."""
        return self.a.failed or self.aaaa.failed


@dataclass(frozen=True, slots=True)
class MxObservation:
    """The MX answer and the hosts it names, with their addresses (RFC 5321 §5.1, RFC 7505)."""

    domain: str
    mx: DnsAnswer
    hosts: tuple[MxHost, ...]
    null_mx: bool = False
    implicit: bool = False
    null_mixed: bool = False  # a null MX beside real ones (RFC 7505 §3): `hosts` holds the real ones

    @property
    def receives_mail(self) -> bool:
        """False for a null MX or a domain with nowhere to deliver; transport checks then do not apply."""
        return not self.null_mx and any(h.addresses for h in self.hosts)


@dataclass(frozen=True, slots=True)
class MxFacts:
    """The MX set as the reports and fixes read it: the hosts in preference order, with addresses."""

    observation: MxObservation

    @property
    def hosts(self) -> tuple[MxHost, ...]:
        return self.observation.hosts

    def host(self, name: str) -> MxHost | None:
        return next((h for h in self.observation.hosts if h.name == name), None)

    @property
    def addresses(self) -> tuple[str, ...]:
        """Every MX host's addresses, in MX order, without repeats."""
        return tuple(dict.fromkeys(a for h in self.observation.hosts for a in h.addresses))

    def to_json(self) -> dict[str, JsonValue]:
        obs = self.observation
        return {
            "hosts": [_host_json(h) for h in obs.hosts],
            "null_mx": obs.null_mx,
            "implicit": obs.implicit,
            "null_mixed": obs.null_mixed,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue], domain: str = "") -> MxFacts:
        """The MX set as the document keeps it (`to_json(from_json(d)) == d`).

        Kept: each host's name, preference, addresses, CNAME chain and the DNSSEC status of its A and
        AAAA answers. Not kept: the MX answer itself and each answer's rcode, TTL and server; an
        answer without records is rebuilt as "could not find out" (`Rcode.OTHER`), never as NODATA.
        """
        hosts = tuple(_host_from_json(h) for h in data["hosts"])
        return cls(
            MxObservation(
                domain,
                _not_kept(domain, "MX"),
                hosts,
                null_mx=bool(data["null_mx"]),
                implicit=bool(data["implicit"]),
                null_mixed=bool(data["null_mixed"]),
            )
        )


NOT_KEPT = "not kept in the stored document"


def _not_kept(qname: str, rdtype: str) -> DnsAnswer:
    return DnsAnswer(qname, rdtype, Rcode.OTHER, detail=NOT_KEPT)


def _answer_from_json(
    name: str, rdtype: str, addresses: list[str], cname_chain: tuple[str, ...], dnssec: str
) -> DnsAnswer:
    status = DnssecStatus(dnssec)
    if not addresses:
        return replace(_not_kept(name, rdtype), cname_chain=cname_chain, dnssec=status)
    records = tuple(dns.rdata.from_text(dns.rdataclass.IN, rdtype, a) for a in addresses)  # checked IPs
    return DnsAnswer(name, rdtype, Rcode.NOERROR, records, cname_chain=cname_chain, dnssec=status)


def _host_from_json(data: Mapping[str, JsonValue]) -> MxHost:
    name, chain, dnssec = str(data["name"]), tuple(str(c) for c in data["cname_chain"]), data["dnssec"]
    # ip_address raises ValueError on a value that is not an address, which dnspython would not
    addresses = [(a, ipaddress.ip_address(a).version) for a in (str(a) for a in data["addresses"])]
    v4 = [a for a, version in addresses if version == 4]
    v6 = [a for a, version in addresses if version == 6]
    return MxHost(
        name,
        int(data["preference"]),
        _answer_from_json(name, "A", v4, chain, dnssec["A"]),
        _answer_from_json(name, "AAAA", v6, chain, dnssec["AAAA"]),
    )


def _host_json(host: MxHost) -> dict[str, JsonValue]:
    return {
        "name": host.name,
        "preference": host.preference,
        "addresses": list(host.addresses),
        "cname_chain": list(host.cname_chain),
        "dnssec": {"A": host.a.dnssec.value, "AAAA": host.aaaa.dnssec.value},
    }


async def _host(resolver: Resolver, name: str, preference: int) -> MxHost:
    a, aaaa = await asyncio.gather(resolver.resolve(name, "A"), resolver.resolve(name, "AAAA"))
    return MxHost(name, preference, a, aaaa)


async def observe_mx(ctx: Context) -> MxObservation:
    """The MX set of the assessed domain, looked up once per assessment."""
    return await ctx.shared("mx", lambda: _observe(ctx.resolver, ctx.domain))


async def _observe(resolver: Resolver, domain: str) -> MxObservation:
    mx = await resolver.resolve(domain, "MX")
    if mx.failed or mx.rcode is Rcode.NXDOMAIN:
        return MxObservation(domain, mx, ())
    if not mx.records:
        return MxObservation(domain, mx, (await _host(resolver, domain, 0),), implicit=True)
    real = [rd for rd in mx.records if rd.exchange != dns.name.root]  # type: ignore[attr-defined]
    if not real:
        return MxObservation(domain, mx, (), null_mx=True)
    # A null MX must stand alone (RFC 7505 §3). Beside real MX records senders still deliver to
    # those, so they are the hosts to test; the mx check flags the mix.
    targets = sorted({(rd.preference, rd.exchange.to_text(omit_final_dot=True).lower()) for rd in real})  # type: ignore[attr-defined]
    hosts = await asyncio.gather(*(_host(resolver, name, pref) for pref, name in targets))
    return MxObservation(domain, mx, tuple(hosts), null_mixed=len(real) < len(mx.records))
