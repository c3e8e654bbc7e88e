"""The provider grade: the inbound side (the address's domain) and the outbound side (the messages
the provider delivered here), combined in MECSA's three areas under both profiles. Pure.

Inputs are typed facts (`InboundHost`, `DomainRecords`, `OutboundMessage`, the trap verdicts);
`facts_from_report` reads them from the stored JSON (the domain assessment, the analyses).

**mecsa-st**: MECSA's combination, as mecsa-st's `commons/scoring.py` `domain_update` computes it
when outbound reports exist (MECSA's web mode), as percentages with MECSA's 80% threshold:

- starttls = (reachable MX hosts with STARTTLS at TLS >= 1.2 + messages delivered over TLS)
  / (reachable MX hosts + messages);
- x509 = the certificate share over the MX hosts with STARTTLS (inbound only);
- dane, mta-sts = shares over the reachable MX hosts (inbound only);
- dkim = the share of messages with a valid DKIM signature (the domain's key record does not count);
- spf = (the share of messages that passed SPF + 100 when the domain's SPF record is supported) / 2;
- spf_policy, dmarc, dmarc_policy, dnssec: from the domain's DNS records;

then the fixed join order and the same table lookup as domain mode (`profiles/mecsa-st.json`).

**mecsa**: the project's monotonic profile, extended to outbound evidence (the rule is in
`scoring/profiles/README.md`): a protocol that both directions can show counts only when both
show it; the DANE trap is the outbound evidence for `dane`. Improving any one piece of evidence
never lowers a level, and 10 still needs every protocol of the area.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mecsa.model import SCORED_PROTOCOLS
from mecsa.scoring import load_profile

MECSA_ST_THRESHOLD = 80.0  # percent, as in mecsa-st's generate_score_string
_MODERN_TLS = ("TLSv1.2", "TLSv1.3")


class Evidence(StrEnum):
    """Which side's evidence a protocol's verdict rests on."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"
    BOTH = "both"


@dataclass(frozen=True, slots=True)
class InboundHost:
    """One reachable MX host of the address's domain, as the domain assessment judged it."""

    name: str
    starttls: bool  # STARTTLS at TLS 1.2 or later
    certificate: bool  # a valid certificate (PKIX, names, dates, not revoked)
    dane: bool
    mta_sts: bool  # covered by an MTA-STS policy (mecsa-st: whatever the mode)


@dataclass(frozen=True, slots=True)
class DomainRecords:
    """The DNS-record protocols of the address's domain, counted by one profile's rule."""

    supported: frozenset[str]  # the domain assessment's counted protocols under that profile


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One analysed message from the provider."""

    id: int
    tls_version: str | None  # None: delivered without STARTTLS
    spf_pass: bool
    dkim_valid: bool  # at least one DKIM signature verified
    dmarc_pass: bool

    @property
    def starttls(self) -> bool:
        return self.tls_version is not None

    @property
    def modern_tls(self) -> bool:
        return self.tls_version in _MODERN_TLS


@dataclass(frozen=True, slots=True)
class ProviderFacts:
    """Everything the provider grade is computed from."""

    domain: str
    hosts: tuple[InboundHost, ...]
    records: Mapping[str, DomainRecords]  # per profile name
    messages: tuple[OutboundMessage, ...]
    dane_trap: str | None = None  # the DANE trap verdict: enforces / does_not_enforce / unknown_yet
    mta_sts_trap: str | None = None


@dataclass(frozen=True, slots=True)
class ProtocolGrade:
    """One protocol under one profile: counted or not, the evidence it rests on, and why."""

    protocol: str
    counted: bool
    evidence: Evidence
    why: str

    def to_json(self) -> dict[str, Any]:
        return {"counted": self.counted, "evidence": self.evidence.value, "why": self.why}


@dataclass(frozen=True, slots=True)
class ProfileGrade:
    profile: str
    levels: dict[str, int]
    supported: frozenset[str]
    protocols: tuple[ProtocolGrade, ...]
    pending: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "levels": self.levels,
            "supported": [p for p in SCORED_PROTOCOLS if p in self.supported],
            "protocols": {g.protocol: g.to_json() for g in self.protocols},
            "pending": list(self.pending),
        }


def _pct(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def mecsa_st_shares(facts: ProviderFacts) -> dict[str, float]:
    """The percentages mecsa-st's `domain_update` computes (web mode: outbound reports given)."""
    hosts, messages = facts.hosts, facts.messages
    records = facts.records["mecsa-st"].supported
    tls_hosts = [h for h in hosts if h.starttls]
    n_out = len(messages)
    spf_out = _pct(sum(m.spf_pass for m in messages), n_out)
    return {
        "starttls": _pct(len(tls_hosts) + sum(m.starttls for m in messages), len(hosts) + n_out),
        "x509": _pct(sum(h.certificate for h in tls_hosts), len(tls_hosts)),
        "dane": _pct(sum(h.dane for h in hosts), len(hosts)),
        "mta-sts": _pct(sum(h.mta_sts for h in hosts), len(hosts)),
        "dkim": _pct(sum(m.dkim_valid for m in messages), n_out),
        "spf": (spf_out + (100.0 if "spf" in records else 0.0)) / 2,
        "dmarc": 100.0 if "dmarc" in records else 0.0,
        "dnssec": 100.0 if "dnssec" in records else 0.0,
    }


_ST_EVIDENCE = {
    "starttls": Evidence.BOTH,
    "x509": Evidence.INBOUND,
    "spf": Evidence.BOTH,
    "spf_policy": Evidence.INBOUND,
    "dkim": Evidence.OUTBOUND,
    "dmarc": Evidence.INBOUND,
    "dmarc_policy": Evidence.INBOUND,
    "dane": Evidence.INBOUND,
    "dnssec": Evidence.INBOUND,
    "mta-sts": Evidence.INBOUND,
}


def mecsa_st_grade(facts: ProviderFacts) -> ProfileGrade:
    """MECSA's provider grade: the shares, the 80% threshold, the parent rules, the table."""
    shares = mecsa_st_shares(facts)
    records = facts.records["mecsa-st"].supported
    counted: set[str] = set()
    grades: list[ProtocolGrade] = []
    for p in SCORED_PROTOCOLS:
        if p == "spf_policy":  # only inside spf's branch, from the record text
            ok = "spf" in counted and "spf_policy" in records
            why = "the SPF record ends in -all or ~all" if ok else "needs spf, and -all or ~all in the record"
        elif p == "dmarc_policy":
            ok = "dmarc" in counted and "dmarc_policy" in records
            why = (
                "p=reject or quarantine with rua/ruf"
                if ok
                else "needs dmarc, p=reject/quarantine and rua/ruf"
            )
        elif p == "x509":
            ok = "starttls" in counted and shares["x509"] >= MECSA_ST_THRESHOLD
            why = f"certificates valid on {shares['x509']:.0f}% of the STARTTLS MX hosts"
        else:
            ok = shares[p] >= MECSA_ST_THRESHOLD
            why = _st_why(p, shares[p], facts)
        if ok:
            counted.add(p)
        grades.append(ProtocolGrade(p, ok, _ST_EVIDENCE[p], why))
    profile = load_profile("mecsa-st")
    levels = profile.levels(counted).as_dict()
    pending = () if facts.messages else ("no message from the provider yet: reply to the probe",)
    return ProfileGrade("mecsa-st", levels, profile.effective(counted), tuple(grades), pending)


def _st_why(protocol: str, share: float, facts: ProviderFacts) -> str:
    n_in, n_out = len(facts.hosts), len(facts.messages)
    if protocol == "starttls":
        return f"{share:.0f}% of {n_in} MX host(s) and {n_out} message(s) used STARTTLS (needs 80%)"
    if protocol == "spf":
        return f"{share:.0f}%: half the SPF record, half the {n_out} message(s) that passed SPF (needs 80%)"
    if protocol == "dkim":
        return f"{share:.0f}% of {n_out} message(s) carried a valid DKIM signature (needs 80%)"
    if protocol in ("dane", "mta-sts"):
        return f"{share:.0f}% of {n_in} reachable MX host(s) (needs 80%)"
    return "from the domain's DNS records" + ("" if share >= MECSA_ST_THRESHOLD else ": not supported")


def mecsa_grade(facts: ProviderFacts) -> ProfileGrade:
    """The project's monotonic profile extended to outbound evidence (see profiles/README.md)."""
    inbound = facts.records["mecsa"].supported
    messages = facts.messages
    pending: list[str] = []
    if not messages:
        pending.append("no message from the provider yet: starttls, spf, dkim and dmarc need one")
    grades: list[ProtocolGrade] = []

    def every(test: str, name: str) -> tuple[bool, str]:
        good = [m for m in messages if getattr(m, test)]
        if not messages:
            return False, f"no message yet to show {name}"
        return len(good) == len(messages), f"{len(good)} of {len(messages)} message(s) {name}"

    outbound_tests = {
        "starttls": every("modern_tls", "delivered over TLS 1.2+"),
        "spf": every("spf_pass", "passed SPF"),
        "dkim": every("dkim_valid", "carried a valid DKIM signature"),
        "dmarc": every("dmarc_pass", "passed DMARC"),
        "dane": _dane_outbound(facts.dane_trap, pending),
    }
    for p in SCORED_PROTOCOLS:
        side_in = p in inbound
        in_text = "inbound: " + ("passes" if side_in else "does not pass") + " in domain mode"
        if p in outbound_tests:
            side_out, out_text = outbound_tests[p]
            grades.append(
                ProtocolGrade(p, side_in and side_out, Evidence.BOTH, f"{in_text}; outbound: {out_text}")
            )
        else:
            grades.append(ProtocolGrade(p, side_in, Evidence.INBOUND, in_text))
    profile = load_profile("mecsa")
    counted = profile.effective(g.protocol for g in grades if g.counted)
    grades = [_prerequisite(g, counted, profile.prerequisites) for g in grades]
    if facts.mta_sts_trap == "does_not_enforce":
        # reported, not scored: see profiles/README.md (MTA-STS enforcement when sending)
        pending_note = "the MTA-STS trap caught the provider's mail: reported, not scored"
        grades = [
            g
            if g.protocol != "mta-sts"
            else ProtocolGrade(g.protocol, g.counted, g.evidence, f"{g.why}; {pending_note}")
            for g in grades
        ]
    return ProfileGrade(
        "mecsa", profile.levels(counted).as_dict(), profile.effective(counted), tuple(grades), tuple(pending)
    )


def _prerequisite(
    grade: ProtocolGrade, effective: frozenset[str], prerequisites: Mapping[str, frozenset[str]]
) -> ProtocolGrade:
    """A protocol whose prerequisite is not counted does not count either (x509 needs starttls)."""
    if not grade.counted or grade.protocol in effective:
        return grade
    needs = ", ".join(sorted(prerequisites.get(grade.protocol, frozenset()) - effective))
    return ProtocolGrade(grade.protocol, False, grade.evidence, f"{grade.why}; not counted without {needs}")


def _dane_outbound(verdict: str | None, pending: list[str]) -> tuple[bool, str]:
    if verdict == "enforces":
        return True, "the provider enforces DANE (it quit at the DANE trap's MX after seeing its certificate)"
    if verdict == "does_not_enforce":
        return False, "the provider does not enforce DANE (it delivered to the DANE trap)"
    pending.append("DANE enforcement not known yet (the DANE trap's window is open, or it was not in Cc)")
    return False, "DANE enforcement not known yet"


def provider_grade(facts: ProviderFacts) -> dict[str, Any]:
    """Both profiles' grades as JSON."""
    return {
        "domain": facts.domain,
        "inbound_hosts": len(facts.hosts),
        "messages": len(facts.messages),
        "mecsa_st_shares": {k: round(v, 2) for k, v in mecsa_st_shares(facts).items()},
        "profiles": {g.profile: g.to_json() for g in (mecsa_grade(facts), mecsa_st_grade(facts))},
    }


# --- from the stored JSON ------------------------------------------------------------------------


def hosts_from_assessment(protocols: Mapping[str, Any]) -> tuple[InboundHost, ...]:
    """The reachable MX hosts from the domain assessment's per-host verdict details."""

    def per_host(protocol: str) -> Mapping[str, str]:
        details = (protocols.get(protocol) or {}).get("details") or {}
        hosts = details.get("hosts")
        return hosts if isinstance(hosts, dict) else {}

    starttls = per_host("starttls")
    reachable = [h for h, status in starttls.items() if status != "error"]
    sts = protocols.get("mta-sts") or {}
    sts_share = (sts.get("details") or {}).get("mecsa_st_share")
    covered = round(float(sts_share) * len(reachable)) if isinstance(sts_share, int | float) else 0
    x509, dane = per_host("x509"), per_host("dane")
    return tuple(
        InboundHost(h, starttls[h] == "pass", x509.get(h) == "pass", dane.get(h) == "pass", i < covered)
        for i, h in enumerate(sorted(reachable))
    )


def records_from_assessment(protocols: Mapping[str, Any]) -> dict[str, DomainRecords]:
    """The domain's counted protocols under each profile, from the assessment's verdict JSON."""
    from mecsa.model import ProtocolVerdict, VerdictStatus
    from mecsa.scoring import profile_names

    verdicts = {
        p: ProtocolVerdict(
            p, VerdictStatus(v["status"]), v.get("reason", ""), v.get("share"), v.get("details") or {}
        )
        for p, v in protocols.items()
    }
    out = {}
    for name in profile_names():
        profile = load_profile(name)
        out[name] = DomainRecords(profile.effective(profile.counted(verdicts)))
    return out


def message_from_outbound(message_id: int, analysis: Mapping[str, Any]) -> OutboundMessage:
    """One message's facts from its stored analysis JSON."""
    tls = analysis["connection"].get("tls") or None
    return OutboundMessage(
        message_id,
        tls["version"] if tls else None,
        analysis["spf"]["mailfrom"]["result"] == "pass",
        any(s["result"] == "pass" for s in analysis["dkim"]),
        analysis["dmarc"]["result"] == "pass",
    )


def facts_from_report(
    domain: str,
    assessment: Mapping[str, Any] | None,
    analyses: Sequence[tuple[int, Mapping[str, Any]]],
    enforcement: Sequence[Mapping[str, Any]],
) -> ProviderFacts:
    """The provider facts from the stored domain assessment, analyses and trap verdicts."""
    protocols = (assessment or {}).get("protocols") or {}
    traps = {e["trap"]: e["verdict"] for e in enforcement}
    return ProviderFacts(
        domain,
        hosts_from_assessment(protocols),
        records_from_assessment(protocols),
        tuple(message_from_outbound(i, a) for i, a in analyses),
        traps.get("dane"),
        traps.get("mta-sts"),
    )
