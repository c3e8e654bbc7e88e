"""MX: which hosts receive the domain's mail, and at which addresses.

Covers null MX (RFC 7505), implicit MX (RFC 5321 §5.1: no MX but an address record), and MX
targets that are CNAMEs (followed, and flagged: RFC 2181 §10.3). The observation feeds the
transport checks through `observe_mx`, which runs once per assessment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import dns.name

from mecsa.checks.base import CheckSpec, Context
from mecsa.dns.answer import DnsAnswer, Rcode
from mecsa.dns.resolver import Resolver
from mecsa.model import CheckResult, Finding, Status

PROTOCOL = "mx"


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
    domain: str
    mx: DnsAnswer
    hosts: tuple[MxHost, ...]
    null_mx: bool = False
    implicit: bool = False

    @property
    def receives_mail(self) -> bool:
        """False for a null MX or a domain with nowhere to deliver; transport checks then do not apply."""
        return not self.null_mx and any(h.addresses for h in self.hosts)


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
    if any(rd.exchange == dns.name.root for rd in mx.records):  # type: ignore[attr-defined]
        return MxObservation(domain, mx, (), null_mx=True)
    targets = sorted(
        {(rd.preference, rd.exchange.to_text(omit_final_dot=True).lower()) for rd in mx.records}  # type: ignore[attr-defined]
    )
    hosts = await asyncio.gather(*(_host(resolver, name, pref) for pref, name in targets))
    return MxObservation(domain, mx, tuple(hosts))


def evaluate(obs: MxObservation) -> CheckResult:
    findings: list[Finding] = []
    add = findings.append
    if obs.mx.failed:
        add(
            Finding(
                "mx.lookup_failed",
                Status.ERROR,
                PROTOCOL,
                f"could not look up the MX records: {obs.mx.describe_failure()}",
            )
        )
    elif obs.mx.rcode is Rcode.NXDOMAIN:
        add(
            Finding(
                "mx.domain_missing",
                Status.FAIL,
                PROTOCOL,
                f"{obs.domain} does not exist (NXDOMAIN)",
                remediation="mx.publish",
            )
        )
    elif obs.null_mx:
        evidence = tuple(rd.to_text() for rd in obs.mx.records)
        if len(obs.mx.records) > 1:
            add(
                Finding(
                    "mx.null_mixed",
                    Status.FAIL,
                    PROTOCOL,
                    "a null MX must be the only MX record (RFC 7505 §3)",
                    evidence,
                    "mx.publish",
                )
            )
        else:
            add(
                Finding(
                    "mx.null",
                    Status.INFO,
                    PROTOCOL,
                    f"{obs.domain} publishes a null MX: it accepts no mail (RFC 7505)",
                    evidence,
                )
            )
    else:
        _evaluate_hosts(obs, add)
    return CheckResult(
        "mx",
        tuple(findings),
        (),
        {"hosts": [_host_json(h) for h in obs.hosts], "null_mx": obs.null_mx, "implicit": obs.implicit},
    )


def _evaluate_hosts(obs: MxObservation, add: Callable[[Finding], None]) -> None:
    if obs.implicit:
        host = obs.hosts[0]
        if host.addresses:
            add(
                Finding(
                    "mx.implicit",
                    Status.WARN,
                    PROTOCOL,
                    f"no MX record: mail goes to {obs.domain}'s own address (implicit MX, RFC 5321 §5.1)",
                    host.addresses,
                    "mx.publish",
                )
            )
        elif host.lookup_failed:
            add(
                Finding(
                    "mx.lookup_failed",
                    Status.ERROR,
                    PROTOCOL,
                    "no MX record, and the address lookup for the implicit MX failed: "
                    + "; ".join(a.describe_failure() for a in (host.a, host.aaaa) if a.failed),
                )
            )
        else:
            add(
                Finding(
                    "mx.missing",
                    Status.FAIL,
                    PROTOCOL,
                    f"{obs.domain} has neither MX nor address records: it cannot receive mail",
                    remediation="mx.publish",
                )
            )
        return
    add(
        Finding(
            "mx.present",
            Status.PASS,
            PROTOCOL,
            f"{len(obs.hosts)} MX host(s)",
            tuple(f"{h.preference} {h.name}" for h in obs.hosts),
        )
    )
    for host in obs.hosts:
        if host.cname_chain:
            add(
                Finding(
                    "mx.target_cname",
                    Status.WARN,
                    PROTOCOL,
                    f"MX target {host.name} is an alias (CNAME to {host.cname_chain[-1]}); "
                    "RFC 2181 §10.3 requires the canonical name",
                    host.cname_chain,
                    "mx.publish",
                    host.name,
                )
            )
        if host.addresses:
            if host.lookup_failed:
                add(
                    Finding(
                        "mx.host_lookup_failed",
                        Status.ERROR,
                        PROTOCOL,
                        f"some address lookups for {host.name} failed",
                        tuple(a.describe_failure() for a in (host.a, host.aaaa) if a.failed),
                        subject=host.name,
                    )
                )
        elif host.lookup_failed:
            add(
                Finding(
                    "mx.host_lookup_failed",
                    Status.ERROR,
                    PROTOCOL,
                    f"could not look up the addresses of {host.name}",
                    tuple(a.describe_failure() for a in (host.a, host.aaaa) if a.failed),
                    subject=host.name,
                )
            )
        else:
            add(
                Finding(
                    "mx.host_no_address",
                    Status.FAIL,
                    PROTOCOL,
                    f"MX host {host.name} has no A or AAAA record",
                    remediation="mx.publish",
                    subject=host.name,
                )
            )


def _host_json(host: MxHost) -> dict[str, object]:
    return {
        "name": host.name,
        "preference": host.preference,
        "addresses": list(host.addresses),
        "cname_chain": list(host.cname_chain),
        "dnssec": {"A": host.a.dnssec.value, "AAAA": host.aaaa.dnssec.value},
    }


CHECK = CheckSpec(
    name="mx",
    summary="MX records, null and implicit MX, and the addresses of every MX host",
    protocols=(),
    observe=observe_mx,
    evaluate=evaluate,
    findings={
        "mx.lookup_failed": "the MX (or implicit-MX address) lookup failed: the tool could not find out",
        "mx.domain_missing": "the domain does not exist",
        "mx.null": "null MX: the domain accepts no mail",
        "mx.null_mixed": "a null MX stands beside other MX records",
        "mx.implicit": "no MX; mail goes to the domain's own A/AAAA",
        "mx.missing": "neither MX nor address records",
        "mx.present": "the MX hosts",
        "mx.target_cname": "an MX target is an alias",
        "mx.host_lookup_failed": "an MX host's address lookup failed",
        "mx.host_no_address": "an MX host has no address",
    },
)
