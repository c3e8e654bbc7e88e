"""DANE for SMTP (MECSA `dane`): TLSA records at `_25._tcp.<mx>`, matched per RFC 7672.

- The TLSA base domain is the MX host name, or its CNAME expansion when that is secure; the
  expanded name is tried first and the original name second (RFC 7671 §7, RFC 7672 §2.2.3).
- TLSA records count only when their RRset is DNSSEC-secure, and only when the MX host's address
  records are secure too (RFC 7672 §2.2.2).
- Usable records: DANE-TA(2) and DANE-EE(3); PKIX-TA(0)/PKIX-EE(1) are unusable for SMTP (RFC 7672
  §3.1.3); selectors 0 (full certificate) and 1 (SubjectPublicKeyInfo); matching types 0 (the full
  data, compared byte for byte), 1 (SHA-256) and 2 (SHA-512).
- DANE-EE(3) is matched against the leaf with no name and no date checks (RFC 7672 §3.1.1).
- DANE-TA(2) is matched against a certificate the server presented above the leaf; the leaf must
  then chain to it by RFC 5280 §6.1 path validation with it as trust anchor (RFC 6698 §2.1.1, the
  way OpenSSL does it: see `mecsa.pkix`) and name the MX host or its expansion (§3.1.2, §3.2.2).
  A web-PKI profile deviation of that chain is a warning (`dane.webpki_deviation`), not a no-match.

Per address: matched / no match / unusable / not secure. The protocol passes on MECSA's 80% share.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from mecsa.certs import (
    DaneApplicability,
    DaneProblem,
    Tlsa,
    TlsaMatch,
    dane_applicability,
    match_record,
    parse_chain,
)
from mecsa.checks.base import CheckSpec
from mecsa.checks.permx import (
    TransportKinds,
    find_address,
    host_address_findings,
    host_outcome,
    preamble_findings,
    share_verdict,
    tls_denied,
    unreachable_finding,
)
from mecsa.dns.answer import DnsAnswer, DnssecStatus
from mecsa.model import CheckResult, Finding, FindingKind, JsonValue, Status
from mecsa.observe import Context
from mecsa.observe.mx import MxObservation, observe_mx
from mecsa.observe.tlsa import lookup_tlsa
from mecsa.observe.transport import HostSessions, TransportObservation, observe_transport, transport_hosts
from mecsa.probes.smtp import SmtpObservation

PROTOCOL = "dane"

# --- the findings this check declares (id, status, protocol, meaning, remedy) ---

TRANSPORT = TransportKinds.declare("dane", PROTOCOL)


def _kind(name: str, status: Status, meaning: str, remedy: str | None = None) -> FindingKind:
    return FindingKind(f"dane.{name}", status, PROTOCOL, meaning, remedy)


TLSA_LOOKUP_FAILED = _kind("tlsa_lookup_failed", Status.ERROR, "the TLSA lookup failed: could not find out")
TLSA_BOGUS = _kind("tlsa_bogus", Status.FAIL, "the TLSA answer is DNSSEC-bogus", "dane.publish")
NO_TLSA = _kind("no_tlsa", Status.FAIL, "no TLSA records", "dane.publish")
DNSSEC_UNKNOWN = _kind(
    "dnssec_unknown", Status.ERROR, "the resolver does not validate, so DANE usability is unknown"
)
NOT_SECURE = _kind("not_secure", Status.FAIL, "TLSA records exist but are not DNSSEC-secure", "dane.publish")
ADDRESS_NOT_SECURE = _kind(
    "address_not_secure", Status.FAIL, "the MX host's address records are not DNSSEC-secure", "dane.publish"
)
UNUSABLE = _kind(
    "unusable",
    Status.FAIL,
    "no TLSA record is usable for SMTP (usages 0/1, unknown parameters)",
    "dane.publish",
)
RECORD_UNUSABLE = _kind("record_unusable", Status.WARN, "one TLSA record is ignored", "dane.publish")
SINGLE_RECORD = _kind(
    "single_record", Status.WARN, "only one usable TLSA record: no rollover key", "dane.rollover"
)
TLS_ERROR = _kind("tls_error", Status.ERROR, "the TLS session broke off (timeout): could not find out")
NO_TLS = _kind("no_tls", Status.FAIL, "TLSA published but no TLS session", "starttls.enable")
MATCH = _kind("match", Status.PASS, "the presented chain matches a usable TLSA record")
NO_MATCH = _kind("no_match", Status.FAIL, "no usable TLSA record matches", "dane.publish")
TA_PINNED = _kind("ta_pinned", Status.INFO, "a 2 1 x record pins this issuer", "dane.rollover")
WEBPKI_DEVIATION = _kind(
    "webpki_deviation",
    Status.WARN,
    "a DANE-TA match whose chain breaks the web-PKI profile (not a failure)",
    "x509.replace",
)

# The finding for each reason DANE cannot apply to a host (`mecsa.certs.dane_applicability`).
PROBLEM_KINDS: dict[DaneProblem, FindingKind] = {
    DaneProblem.TLSA_LOOKUP_FAILED: TLSA_LOOKUP_FAILED,
    DaneProblem.TLSA_BOGUS: TLSA_BOGUS,
    DaneProblem.NO_TLSA: NO_TLSA,
    DaneProblem.DNSSEC_UNKNOWN: DNSSEC_UNKNOWN,
    DaneProblem.NOT_SECURE: NOT_SECURE,
    DaneProblem.ADDRESS_NOT_SECURE: ADDRESS_NOT_SECURE,
    DaneProblem.UNUSABLE: UNUSABLE,
}


@dataclass(frozen=True, slots=True)
class DaneHost:
    """One MX host's TLSA lookup: the answer used, at which base domain, and the reference names."""

    sessions: HostSessions
    tlsa: DnsAnswer | None
    base_domain: str
    reference_names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DaneObservation:
    """The SMTP sessions and each MX host's TLSA answer, for the DANE judgement (RFC 7672)."""

    transport: TransportObservation
    hosts: tuple[DaneHost, ...]
    port: int
    checked_at: dt.datetime


async def observe(ctx: Context, mx: MxObservation | None = None) -> DaneObservation:
    mx = mx or await observe_mx(ctx)
    # TLSA owner names use the port the sessions are made to (25 unless told otherwise).
    port = ctx.options.smtp_port
    # A TLSA lookup needs only the MX host and its address answers, not the session: both run at
    # once, so DANE costs no round trip after the sessions.
    transport, found = await asyncio.gather(
        observe_transport(ctx, mx),
        asyncio.gather(*(lookup_tlsa(ctx.resolver, host, port) for host in transport_hosts(mx))),
    )
    hosts = tuple(DaneHost(h, f.answer, f.base, f.names) for h, f in zip(transport.hosts, found, strict=True))
    return DaneObservation(transport, hosts, transport.port, dt.datetime.now(dt.UTC))


# --- evaluation ----------------------------------------------------------------------------------


def _session_problem(s: SmtpObservation, add: Callable[[Finding], None]) -> Status | None:
    where, subject = f"{s.host} [{s.address}]", f"{s.host} {s.address}"
    if s.tls is None:
        if not tls_denied(s):
            add(TLS_ERROR(f"{where}: the TLS session broke off ({s.reason})", subject=subject))
            return Status.ERROR
        add(
            NO_TLS(
                f"{where}: TLSA records are published but no TLS session was possible: DANE senders defer",
                subject=subject,
            )
        )
        return Status.FAIL
    return None


def _address(
    d: DaneHost,
    state: DaneApplicability,
    s: SmtpObservation,
    now: dt.datetime,
    add: Callable[[Finding], None],
) -> tuple[Status, str, list[TlsaMatch]]:
    where, subject = f"{s.host} [{s.address}]", f"{s.host} {s.address}"
    if not s.reachable:  # an address we could not talk to is never judged, whatever DNS says
        add(unreachable_finding(TRANSPORT, s))
        return Status.ERROR, "error", []
    if state.problem is not None:
        status = Status.FAIL if state.problem.definite else Status.ERROR
        label = "not_secure" if state.problem is DaneProblem.ADDRESS_NOT_SECURE else state.problem.value
        return status, label, []
    problem = _session_problem(s, add)
    if problem is not None:
        return problem, "error" if problem is Status.ERROR else "no_tls", []
    assert s.tls is not None
    chain = parse_chain(s.tls.chain) if s.tls.chain else "no certificate presented"
    if isinstance(chain, str):
        add(NO_MATCH(f"{where}: {chain}", subject=subject))
        return Status.FAIL, "no_match", []
    results = [match_record(r, chain, d.reference_names, now) for r in state.usable]
    evidence = tuple(f"{r.record}: {r.note}" for r in results)
    if any(r.matched for r in results):
        add(MATCH(f"{where}: the certificate matches a TLSA record", evidence, subject))
        _webpki_deviation(where, subject, results, add)
        return Status.PASS, "matched", results
    add(
        NO_MATCH(
            f"{where}: no usable TLSA record matches the presented certificate: DANE senders defer",
            evidence,
            subject,
        )
    )
    return Status.FAIL, "no_match", results


def _webpki_deviation(
    where: str, subject: str, results: list[TlsaMatch], add: Callable[[Finding], None]
) -> None:
    """A warning when every match rests on a chain that breaks the web-PKI profile (never a no-match)."""
    matched = [r for r in results if r.matched]
    if not matched or any(r.webpki_deviation is None for r in matched):
        return
    add(
        WEBPKI_DEVIATION(
            f"{where}: the DANE-TA match holds (RFC 5280 path validation, as OpenSSL-based MTAs judge it) "
            "but the chain breaks the CA/Browser Forum web-PKI profile",
            tuple(f"{r.record}: {r.webpki_deviation}" for r in matched),
            subject,
        )
    )


def _host_findings(d: DaneHost, state: DaneApplicability, add: Callable[[Finding], None]) -> None:
    name = d.sessions.host.name
    records = tuple(str(r) for r in state.records)
    if state.problem is not None:
        if state.problem is not DaneProblem.NOT_LOOKED_UP:
            add(PROBLEM_KINDS[state.problem](f"{name}: {state.why}", records, name))
        return
    for r in state.records:
        unusable = r.unusable_because
        if unusable:
            add(RECORD_UNUSABLE(f"{name}: TLSA {r} ignored: {unusable}", (str(r),), name))
    if len(state.usable) == 1:
        add(
            SINGLE_RECORD(
                f"{name}: only one usable TLSA record: no next key is published for a rollover", records, name
            )
        )


def _rollover_advice(name: str, results: list[TlsaMatch], add: Callable[[Finding], None]) -> None:
    for r in results:
        if r.matched and r.record.usage == 2 and r.record.selector == 1:
            add(
                TA_PINNED(
                    f"{name}: {r.record.usage} 1 {r.record.mtype} pins the issuer key: {r.note}; "
                    "it must cover every issuing intermediate the CA may switch to",
                    (str(r.record),),
                    name,
                )
            )


@dataclass(frozen=True, slots=True)
class AddressDane:
    """One address: its outcome, a short label (matched, no_match, not_secure...) and each record match."""

    address: str
    outcome: Status
    label: str
    records: tuple[TlsaMatch, ...]

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "address": self.address,
            "outcome": self.outcome.value,
            "dane": self.label,
            "records": [r.to_json() for r in self.records],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> AddressDane:
        return cls(
            str(data["address"]),
            Status(data["outcome"]),
            str(data["dane"]),
            tuple(TlsaMatch.from_json(r) for r in data["records"]),
        )


@dataclass(frozen=True, slots=True)
class HostDane:
    """One MX host: its TLSA lookup (base domain, owner, DNSSEC status, records), and its addresses.

    It holds the values the document keeps, not the lookup's answer, so that `from_json` gives it back.
    """

    name: str
    outcome: Status
    base_domain: str
    tlsa_owner: str | None  # None when the host was not looked up
    tlsa_dnssec: DnssecStatus | None
    records: tuple[Tlsa, ...]
    usable: int  # how many of `records` apply (RFC 7672 §2.2)
    addresses: tuple[AddressDane, ...]

    @classmethod
    def of(
        cls, d: DaneHost, outcome: Status, state: DaneApplicability, addresses: tuple[AddressDane, ...]
    ) -> HostDane:
        tlsa = d.tlsa
        owner, dnssec = (tlsa.qname, tlsa.dnssec) if tlsa else (None, None)
        name = d.sessions.host.name
        return cls(name, outcome, d.base_domain, owner, dnssec, state.records, len(state.usable), addresses)

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "name": self.name,
            "outcome": self.outcome.value,
            "tlsa_base_domain": self.base_domain,
            "tlsa_owner": self.tlsa_owner,
            "tlsa_dnssec": self.tlsa_dnssec.value if self.tlsa_dnssec else None,
            "tlsa": [str(r) for r in self.records],
            "usable": self.usable,
            "addresses": [a.to_json() for a in self.addresses],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> HostDane:
        owner, dnssec = data["tlsa_owner"], data["tlsa_dnssec"]
        return cls(
            str(data["name"]),
            Status(data["outcome"]),
            str(data["tlsa_base_domain"]),
            None if owner is None else str(owner),
            None if dnssec is None else DnssecStatus(dnssec),
            tuple(Tlsa.from_text(str(r)) for r in data["tlsa"]),
            int(data["usable"]),
            tuple(AddressDane.from_json(a) for a in data["addresses"]),
        )


@dataclass(frozen=True, slots=True)
class DaneFacts:
    """What the dane check found per MX host (those with an address) and address."""

    port: int
    hosts: tuple[HostDane, ...]

    def address(self, host: str, address: str) -> AddressDane | None:
        return find_address(self.hosts, host, address)

    def to_json(self) -> dict[str, JsonValue]:
        return {"port": self.port, "hosts": [h.to_json() for h in self.hosts]}

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> DaneFacts:
        return cls(int(data["port"]), tuple(HostDane.from_json(h) for h in data["hosts"]))


def evaluate(obs: DaneObservation) -> CheckResult:
    transport = obs.transport
    findings = preamble_findings(TRANSPORT, transport.mx)
    findings += host_address_findings(TRANSPORT, transport.hosts)
    add = findings.append
    outcomes: dict[str, Status] = {}
    hosts: list[HostDane] = []
    for d in obs.hosts:
        host = d.sessions.host
        if not host.addresses:
            outcomes[host.name] = Status.ERROR
            continue
        state = dane_applicability(d.tlsa, host.name, (host.a, host.aaaa))
        _host_findings(d, state, add)
        addresses, advised = [], False
        for s in d.sessions.sessions:
            status, label, results = _address(d, state, s, obs.checked_at, add)
            if not advised and results:
                _rollover_advice(host.name, results, add)
                advised = any(r.matched for r in results)
            addresses.append(AddressDane(s.address, status, label, tuple(results)))
        outcomes[host.name] = host_outcome((a.outcome for a in addresses), complete=not host.lookup_failed)
        hosts.append(HostDane.of(d, outcomes[host.name], state, tuple(addresses)))
    verdict = share_verdict(PROTOCOL, transport.mx, outcomes, "match their DNSSEC-secure TLSA records")
    return CheckResult.of("dane", tuple(findings), (verdict,), DaneFacts(obs.port, tuple(hosts)))


CHECK = CheckSpec(
    name="dane",
    summary="DANE TLSA at _25._tcp.<mx>: DNSSEC-secure, usable, and matching the presented chain (RFC 7672)",
    protocols=(PROTOCOL,),
    observe=observe,
    evaluate=evaluate,
    facts=DaneFacts,
    findings=(
        *TRANSPORT.all(),
        *PROBLEM_KINDS.values(),
        RECORD_UNUSABLE,
        SINGLE_RECORD,
        TLS_ERROR,
        NO_TLS,
        MATCH,
        NO_MATCH,
        TA_PINNED,
        WEBPKI_DEVIATION,
    ),
)
