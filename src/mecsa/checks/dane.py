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
  then chain to it (signatures and dates) and name the MX host or its expansion (§3.1.2, §3.2.2).

Per address: matched / no match / unusable / not secure. The protocol passes on MECSA's 80% share.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mecsa.checks.base import CheckSpec, Context
from mecsa.checks.mx import MxHost, MxObservation, observe_mx
from mecsa.checks.starttls import (
    HostSessions,
    TransportObservation,
    host_address_findings,
    host_outcome,
    observe_transport,
    preamble_findings,
    share_verdict,
    shared_catalogue,
    tls_denied,
    transport_hosts,
    unreachable_finding,
)
from mecsa.checks.x509 import certificate_names, name_matches, parse_chain, verify_chain
from mecsa.dns.answer import DnsAnswer, DnssecStatus
from mecsa.dns.resolver import Resolver
from mecsa.model import CheckResult, Finding, Status
from mecsa.probes.smtp import SmtpObservation

PROTOCOL = "dane"
USABLE_USAGES = {2: "DANE-TA", 3: "DANE-EE"}
USAGE_NAMES = {0: "PKIX-TA", 1: "PKIX-EE", **USABLE_USAGES}


@dataclass(frozen=True, slots=True)
class Tlsa:
    """One TLSA record, typed."""

    usage: int
    selector: int
    mtype: int
    data: bytes

    def __str__(self) -> str:
        return f"{self.usage} {self.selector} {self.mtype} {self.data.hex()}"

    @property
    def unusable_because(self) -> str | None:
        """Why this record cannot be used for SMTP, or None when it can."""
        if self.usage not in USABLE_USAGES:
            name = USAGE_NAMES.get(self.usage, str(self.usage))
            return f"usage {name} is unusable for SMTP (RFC 7672 §3.1.3)"
        if self.selector not in (0, 1):
            return f"unknown selector {self.selector}"
        if self.mtype not in (0, 1, 2):
            return f"unknown matching type {self.mtype}"
        return None

    def matches(self, cert: x509.Certificate) -> bool:
        """Whether this record's data matches `cert` under its selector and matching type."""
        if self.selector == 0:
            data = cert.public_bytes(serialization.Encoding.DER)
        else:
            data = cert.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        if self.mtype == 1:
            data = hashlib.sha256(data).digest()
        elif self.mtype == 2:
            data = hashlib.sha512(data).digest()
        return data == self.data


def tlsa_records(answer: DnsAnswer) -> tuple[Tlsa, ...]:
    return tuple(
        Tlsa(int(rd.usage), int(rd.selector), int(rd.mtype), bytes(rd.cert))  # type: ignore[attr-defined]
        for rd in answer.records
    )


@dataclass(frozen=True, slots=True)
class DaneHost:
    """One MX host's TLSA lookup: the answer used, at which base domain, and the reference names."""

    sessions: HostSessions
    tlsa: DnsAnswer | None
    base_domain: str
    reference_names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DaneObservation:
    transport: TransportObservation
    hosts: tuple[DaneHost, ...]
    port: int
    checked_at: dt.datetime


def _secure_expansion(host: MxHost) -> str | None:
    chain = host.cname_chain
    answers = [a for a in (host.a, host.aaaa) if a.records]
    if chain and answers and all(a.dnssec is DnssecStatus.SECURE for a in answers):
        return chain[-1].rstrip(".").lower()
    return None


@dataclass(frozen=True, slots=True)
class TlsaLookup:
    """The TLSA answer of one MX host (None when it has no address), its base domain and reference names."""

    answer: DnsAnswer | None
    base: str
    names: tuple[str, ...]


async def lookup_tlsa(resolver: Resolver, host: MxHost, port: int) -> TlsaLookup:
    """TLSA at `_<port>._tcp.<host>`, after secure CNAME expansion (RFC 7671 §7, RFC 7672 §2.2.2).

    The dnssec check judges these same answers, so both ask the same questions.
    """
    name = host.name
    expanded = _secure_expansion(host)
    if not host.addresses:
        return TlsaLookup(None, name, (name,))
    if expanded:
        answer = await resolver.resolve(f"_{port}._tcp.{expanded}", "TLSA")
        if answer.failed or answer.records:
            return TlsaLookup(answer, expanded, (expanded, name))
    answer = await resolver.resolve(f"_{port}._tcp.{name}", "TLSA")
    return TlsaLookup(answer, name, (expanded, name) if expanded else (name,))


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


@dataclass(frozen=True, slots=True)
class _HostState:
    """Why DANE cannot apply to a host at all (status, finding id, message), or the usable records."""

    blocked: tuple[Status, str, str] | None
    usable: tuple[Tlsa, ...]
    records: tuple[Tlsa, ...]


def _host_state(d: DaneHost) -> _HostState:
    answer = d.tlsa
    if answer is None:
        return _HostState((Status.ERROR, "dane.not_looked_up", "no address, no TLSA lookup"), (), ())
    owner = answer.qname
    if answer.failed:
        if answer.dnssec is DnssecStatus.BOGUS:
            why = f"{owner} TLSA is DNSSEC-bogus: DANE senders will defer mail ({answer.describe_failure()})"
            return _HostState((Status.FAIL, "dane.tlsa_bogus", why), (), ())
        return _HostState((Status.ERROR, "dane.tlsa_lookup_failed", answer.describe_failure()), (), ())
    records = tlsa_records(answer)
    if not records:
        return _HostState((Status.FAIL, "dane.no_tlsa", f"no TLSA records at {owner}"), (), ())
    if answer.dnssec is DnssecStatus.INDETERMINATE:
        why = f"{owner} TLSA: DNSSEC status unknown ({answer.dnssec_link}), so usability is unknown"
        return _HostState((Status.ERROR, "dane.dnssec_unknown", why), (), records)
    if answer.dnssec is not DnssecStatus.SECURE:
        why = f"TLSA records at {owner} are not DNSSEC-secure ({answer.dnssec.value}): DANE does not apply"
        return _HostState((Status.FAIL, "dane.not_secure", why), (), records)
    host = d.sessions.host
    addresses = [a for a in (host.a, host.aaaa) if a.records]
    if any(a.dnssec is DnssecStatus.INDETERMINATE for a in addresses):
        why = f"the DNSSEC status of {host.name}'s addresses is unknown"
        return _HostState((Status.ERROR, "dane.dnssec_unknown", why), (), records)
    if any(a.dnssec is not DnssecStatus.SECURE for a in addresses):
        why = f"{host.name}'s address records are not DNSSEC-secure, so its TLSA records do not apply"
        return _HostState((Status.FAIL, "dane.address_not_secure", why), (), records)
    usable = tuple(r for r in records if r.unusable_because is None)
    if not usable:
        why = f"none of the TLSA records at {owner} is usable for SMTP"
        return _HostState((Status.FAIL, "dane.unusable", why), (), records)
    return _HostState(None, usable, records)


@dataclass(frozen=True, slots=True)
class _RecordResult:
    record: Tlsa
    matched: bool
    note: str

    def to_json(self) -> dict[str, Any]:
        return {"record": str(self.record), "matched": self.matched, "note": self.note}


def match_record(
    record: Tlsa, chain: list[x509.Certificate], names: tuple[str, ...], now: dt.datetime
) -> _RecordResult:
    """Match one usable record against a presented chain (leaf first), per RFC 7672 §3.1."""
    leaf = chain[0]
    if record.usage == 3:
        hit = record.matches(leaf)
        return _RecordResult(record, hit, "the leaf matches" if hit else "the leaf does not match")
    for ta in chain[1:]:
        if not record.matches(ta):
            continue
        ok, reason, _ = verify_chain(leaf, chain[1:], (ta,), now)
        issuer = ta.subject.rfc4514_string()
        if not ok:
            return _RecordResult(
                record, False, f"matches {issuer}, but the leaf does not chain to it: {reason}"
            )
        dns_names, _ = certificate_names(leaf)
        if not any(name_matches(n, ref) for n in dns_names for ref in names):
            return _RecordResult(
                record, False, f"matches {issuer}, but the leaf names none of {', '.join(names)}"
            )
        return _RecordResult(record, True, f"matches trust anchor {issuer}")
    return _RecordResult(record, False, "no certificate above the leaf matches")


def _session_problem(s: SmtpObservation, add: Callable[[Finding], None]) -> Status | None:
    where, subject = f"{s.host} [{s.address}]", f"{s.host} {s.address}"
    if s.tls is None:
        if not tls_denied(s):
            add(
                Finding(
                    "dane.tls_error",
                    Status.ERROR,
                    PROTOCOL,
                    f"{where}: the TLS session broke off ({s.reason})",
                    subject=subject,
                )
            )
            return Status.ERROR
        add(
            Finding(
                "dane.no_tls",
                Status.FAIL,
                PROTOCOL,
                f"{where}: TLSA records are published but no TLS session was possible: DANE senders defer",
                remediation="starttls.enable",
                subject=subject,
            )
        )
        return Status.FAIL
    return None


def _address(
    d: DaneHost, state: _HostState, s: SmtpObservation, now: dt.datetime, add: Callable[[Finding], None]
) -> tuple[Status, str, list[_RecordResult]]:
    where, subject = f"{s.host} [{s.address}]", f"{s.host} {s.address}"
    if not s.reachable:  # an address we could not talk to is never judged, whatever DNS says
        add(unreachable_finding(PROTOCOL, "dane", s))
        return Status.ERROR, "error", []
    if state.blocked is not None:
        status, fid, _ = state.blocked
        label = {"dane.not_secure": "not_secure", "dane.address_not_secure": "not_secure"}.get(fid, fid[5:])
        return status, label, []
    problem = _session_problem(s, add)
    if problem is not None:
        return problem, "error" if problem is Status.ERROR else "no_tls", []
    assert s.tls is not None
    chain = parse_chain(s.tls.chain) if s.tls.chain else "no certificate presented"
    if isinstance(chain, str):
        add(Finding("dane.no_match", Status.FAIL, PROTOCOL, f"{where}: {chain}", subject=subject))
        return Status.FAIL, "no_match", []
    results = [match_record(r, chain, d.reference_names, now) for r in state.usable]
    evidence = tuple(f"{r.record}: {r.note}" for r in results)
    if any(r.matched for r in results):
        add(
            Finding(
                "dane.match",
                Status.PASS,
                PROTOCOL,
                f"{where}: the certificate matches a TLSA record",
                evidence,
                subject=subject,
            )
        )
        return Status.PASS, "matched", results
    add(
        Finding(
            "dane.no_match",
            Status.FAIL,
            PROTOCOL,
            f"{where}: no usable TLSA record matches the presented certificate: DANE senders defer",
            evidence,
            "dane.publish",
            subject,
        )
    )
    return Status.FAIL, "no_match", results


def _host_findings(d: DaneHost, state: _HostState, add: Callable[[Finding], None]) -> None:
    name = d.sessions.host.name
    records = tuple(str(r) for r in state.records)
    if state.blocked is not None:
        status, fid, why = state.blocked
        if fid != "dane.not_looked_up":
            remediation = None if status is Status.ERROR else "dane.publish"
            add(Finding(fid, status, PROTOCOL, f"{name}: {why}", records, remediation, name))
        return
    for r in state.records:
        unusable = r.unusable_because
        if unusable:
            add(
                Finding(
                    "dane.record_unusable",
                    Status.WARN,
                    PROTOCOL,
                    f"{name}: TLSA {r} ignored: {unusable}",
                    (str(r),),
                    "dane.publish",
                    name,
                )
            )
    if len(state.usable) == 1:
        add(
            Finding(
                "dane.single_record",
                Status.WARN,
                PROTOCOL,
                f"{name}: only one usable TLSA record: no next key is published for a rollover",
                records,
                "dane.rollover",
                name,
            )
        )


def _rollover_advice(name: str, results: list[_RecordResult], add: Callable[[Finding], None]) -> None:
    for r in results:
        if r.matched and r.record.usage == 2 and r.record.selector == 1:
            add(
                Finding(
                    "dane.ta_pinned",
                    Status.INFO,
                    PROTOCOL,
                    f"{name}: {r.record.usage} 1 {r.record.mtype} pins the issuer key: {r.note}; "
                    "it must cover every issuing intermediate the CA may switch to",
                    (str(r.record),),
                    "dane.rollover",
                    name,
                )
            )


def evaluate(obs: DaneObservation) -> CheckResult:
    transport = obs.transport
    findings = preamble_findings(PROTOCOL, "dane", transport.mx)
    findings += host_address_findings(PROTOCOL, "dane", transport.hosts)
    add = findings.append
    outcomes: dict[str, Status] = {}
    hosts_json = []
    for d in obs.hosts:
        if not d.sessions.host.addresses:
            outcomes[d.sessions.host.name] = Status.ERROR
            continue
        state = _host_state(d)
        _host_findings(d, state, add)
        addresses, statuses, advised = [], [], False
        for s in d.sessions.sessions:
            status, label, results = _address(d, state, s, obs.checked_at, add)
            statuses.append(status)
            if not advised and results:
                _rollover_advice(d.sessions.host.name, results, add)
                advised = any(r.matched for r in results)
            addresses.append(
                {
                    "address": s.address,
                    "outcome": status.value,
                    "dane": label,
                    "records": [r.to_json() for r in results],
                }
            )
        name = d.sessions.host.name
        outcomes[name] = host_outcome(statuses, complete=not d.sessions.host.lookup_failed)
        hosts_json.append(
            {
                "name": name,
                "outcome": outcomes[name].value,
                "tlsa_base_domain": d.base_domain,
                "tlsa_owner": d.tlsa.qname if d.tlsa else None,
                "tlsa_dnssec": d.tlsa.dnssec.value if d.tlsa else None,
                "tlsa": [str(r) for r in state.records],
                "usable": len(state.usable),
                "addresses": addresses,
            }
        )
    verdict = share_verdict(PROTOCOL, transport.mx, outcomes, "match their DNSSEC-secure TLSA records")
    return CheckResult("dane", tuple(findings), (verdict,), {"port": obs.port, "hosts": hosts_json})


CHECK = CheckSpec(
    name="dane",
    summary="DANE TLSA at _25._tcp.<mx>: DNSSEC-secure, usable, and matching the presented chain (RFC 7672)",
    protocols=(PROTOCOL,),
    observe=observe,
    evaluate=evaluate,
    findings={
        **shared_catalogue("dane"),
        "dane.tlsa_lookup_failed": "the TLSA lookup failed: could not find out",
        "dane.tlsa_bogus": "the TLSA answer is DNSSEC-bogus",
        "dane.no_tlsa": "no TLSA records",
        "dane.dnssec_unknown": "the resolver does not validate, so DANE usability is unknown",
        "dane.not_secure": "TLSA records exist but are not DNSSEC-secure",
        "dane.address_not_secure": "the MX host's address records are not DNSSEC-secure",
        "dane.unusable": "no TLSA record is usable for SMTP (usages 0/1, unknown parameters)",
        "dane.record_unusable": "one TLSA record is ignored",
        "dane.single_record": "only one usable TLSA record: no rollover key",
        "dane.tls_error": "the TLS session broke off (timeout): could not find out",
        "dane.no_tls": "TLSA published but no TLS session",
        "dane.match": "the presented chain matches a usable TLSA record",
        "dane.no_match": "no usable TLSA record matches",
        "dane.ta_pinned": "a 2 1 x record pins this issuer",
    },
)
