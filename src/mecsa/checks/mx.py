"""MX: which hosts receive the domain's mail, and at which addresses.

Covers null MX (RFC 7505), implicit MX (RFC 5321 §5.1: no MX but an address record), and MX
targets that are CNAMEs (followed, and flagged: RFC 2181 §10.3). The observation feeds the
transport checks through `mecsa.observe.mx.observe_mx`, which runs once per assessment.
"""

from __future__ import annotations

from collections.abc import Callable

from mecsa.checks.base import CheckSpec
from mecsa.dns.answer import Rcode
from mecsa.model import CheckResult, Finding, FindingKind, Status

# MxFacts lives beside the observation it wraps, so that mecsa.fixes (below the checks) can read it.
from mecsa.observe.mx import MxFacts as MxFacts
from mecsa.observe.mx import MxObservation, observe_mx

PROTOCOL = "mx"

# --- the findings this check declares (id, status, protocol, meaning, remedy) ---

LOOKUP_FAILED = FindingKind(
    "mx.lookup_failed",
    Status.ERROR,
    PROTOCOL,
    "the MX (or implicit-MX address) lookup failed: the tool could not find out",
)
DOMAIN_MISSING = FindingKind(
    "mx.domain_missing", Status.FAIL, PROTOCOL, "the domain does not exist", "mx.publish"
)
NULL = FindingKind("mx.null", Status.INFO, PROTOCOL, "null MX: the domain accepts no mail")
NULL_MIXED = FindingKind(
    "mx.null_mixed", Status.FAIL, PROTOCOL, "a null MX stands beside other MX records", "mx.publish"
)
IMPLICIT = FindingKind(
    "mx.implicit", Status.WARN, PROTOCOL, "no MX; mail goes to the domain's own A/AAAA", "mx.publish"
)
MISSING = FindingKind("mx.missing", Status.FAIL, PROTOCOL, "neither MX nor address records", "mx.publish")
PRESENT = FindingKind("mx.present", Status.PASS, PROTOCOL, "the MX hosts")
TARGET_CNAME = FindingKind("mx.target_cname", Status.WARN, PROTOCOL, "an MX target is an alias", "mx.publish")
HOST_LOOKUP_FAILED = FindingKind(
    "mx.host_lookup_failed", Status.ERROR, PROTOCOL, "an MX host's address lookup failed"
)
HOST_NO_ADDRESS = FindingKind(
    "mx.host_no_address", Status.FAIL, PROTOCOL, "an MX host has no address", "mx.publish"
)


def evaluate(obs: MxObservation) -> CheckResult:
    findings: list[Finding] = []
    add = findings.append
    if obs.mx.failed:
        add(LOOKUP_FAILED(f"could not look up the MX records: {obs.mx.describe_failure()}"))
    elif obs.mx.rcode is Rcode.NXDOMAIN:
        add(DOMAIN_MISSING(f"{obs.domain} does not exist (NXDOMAIN)"))
    elif obs.null_mx:
        evidence = tuple(rd.to_text() for rd in obs.mx.records)
        add(NULL(f"{obs.domain} publishes a null MX: it accepts no mail (RFC 7505)", evidence))
    else:
        if obs.null_mixed:
            evidence = tuple(sorted(rd.to_text() for rd in obs.mx.records))
            why = "a null MX must be the only MX record (RFC 7505 §3); senders use the other MX hosts"
            add(NULL_MIXED(why, evidence))
        _evaluate_hosts(obs, add)
    return CheckResult.of("mx", tuple(findings), (), MxFacts(obs))


def _evaluate_hosts(obs: MxObservation, add: Callable[[Finding], None]) -> None:
    if obs.implicit:
        host = obs.hosts[0]
        if host.addresses:
            add(
                IMPLICIT(
                    f"no MX record: mail goes to {obs.domain}'s own address (implicit MX, RFC 5321 §5.1)",
                    host.addresses,
                )
            )
        elif host.lookup_failed:
            add(
                LOOKUP_FAILED(
                    "no MX record, and the address lookup for the implicit MX failed: "
                    + "; ".join(a.describe_failure() for a in (host.a, host.aaaa) if a.failed)
                )
            )
        else:
            add(MISSING(f"{obs.domain} has neither MX nor address records: it cannot receive mail"))
        return
    add(PRESENT(f"{len(obs.hosts)} MX host(s)", tuple(f"{h.preference} {h.name}" for h in obs.hosts)))
    for host in obs.hosts:
        if host.cname_chain:
            add(
                TARGET_CNAME(
                    f"MX target {host.name} is an alias (CNAME to {host.cname_chain[-1]}); "
                    "RFC 2181 §10.3 requires the canonical name",
                    host.cname_chain,
                    host.name,
                )
            )
        if host.addresses:
            if host.lookup_failed:
                add(
                    HOST_LOOKUP_FAILED(
                        f"some address lookups for {host.name} failed",
                        tuple(a.describe_failure() for a in (host.a, host.aaaa) if a.failed),
                        host.name,
                    )
                )
        elif host.lookup_failed:
            add(
                HOST_LOOKUP_FAILED(
                    f"could not look up the addresses of {host.name}",
                    tuple(a.describe_failure() for a in (host.a, host.aaaa) if a.failed),
                    host.name,
                )
            )
        else:
            add(HOST_NO_ADDRESS(f"MX host {host.name} has no A or AAAA record", subject=host.name))


CHECK = CheckSpec(
    name="mx",
    summary="MX records, null and implicit MX, and the addresses of every MX host",
    protocols=(),
    observe=observe_mx,
    evaluate=evaluate,
    facts=MxFacts,
    findings=(
        LOOKUP_FAILED,
        DOMAIN_MISSING,
        NULL,
        NULL_MIXED,
        IMPLICIT,
        MISSING,
        PRESENT,
        TARGET_CNAME,
        HOST_LOOKUP_FAILED,
        HOST_NO_ADDRESS,
    ),
)
