"""The outbound DANE and MTA-STS enforcement tests: the trap zone and the verdict logic.

The idea (see `mecsa.mailmode.addresses` for the addresses): the probe mail's Reply-To names
three addresses of one token, the control `<token>@D` and two traps. The user's reply makes their
provider deliver to all three:

- `<token>@dane-trap.D`: its MX host is DNSSEC-signed and publishes a TLSA record that never
  matches (the SHA-256 of the real key with every bit inverted). A sender that enforces DANE
  (Postfix `smtp_tls_security_level = dane`) cannot authenticate the server and defers; one that
  does not (`may`) delivers.
- `<token>@sts-trap.D`: the domain publishes an MTA-STS policy in mode enforce whose `mx:` list
  does not include its MX host. A sender that enforces MTA-STS refuses to deliver; one that does
  not delivers. The trap publishes no TLSA, since DANE would take precedence (RFC 8461 §2).

Verdicts, per trap, with their evidence:

- mail for the trap arrived (at any time) -> "does not enforce";
- DANE: the control arrived, the reply named the trap, and the receiver's connection log shows
  the sender at the trap's MX starting TLS and quitting without MAIL -> "enforces" (positive
  evidence: it saw the certificate and refused it), at once, without waiting for the window;
- MTA-STS: the trap stayed empty for the whole window after the control's arrival, and the
  sender never connected to the trap's MX -> "enforces" (an enforcing sender never connects);
- otherwise -> "unknown yet" (no control yet, the window is still open, the reply did not name
  the trap, or the trap stayed empty without the evidence above), with what is still pending.

The lab provides the real servers; this module provides the zone records and the judgement.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from mecsa.harden.records import (
    DnsRecord,
    MtaSts,
    address_records,
    dkim_txt,
    dmarc_record,
    mta_sts_records,
    mx_record,
    spf_record,
    spki_sha256,
    tlsa_311,
)
from mecsa.mailmode.addresses import DANE_TRAP_LABEL, STS_TRAP_LABEL, AddressKind
from mecsa.mailmode.connections import ConnectionAttempt, aimed_at

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

DEFAULT_WINDOW = dt.timedelta(minutes=30)
STS_TRAP_MAX_AGE = 86400


class Trap(StrEnum):
    DANE = "dane"
    MTA_STS = "mta-sts"

    @property
    def kind(self) -> AddressKind:
        return AddressKind.DANE_TRAP if self is Trap.DANE else AddressKind.STS_TRAP

    @property
    def label(self) -> str:
        return DANE_TRAP_LABEL if self is Trap.DANE else STS_TRAP_LABEL

    @property
    def protocol_name(self) -> str:
        return "DANE" if self is Trap.DANE else "MTA-STS"


class Enforcement(StrEnum):
    ENFORCES = "enforces"
    DOES_NOT_ENFORCE = "does_not_enforce"
    UNKNOWN_YET = "unknown_yet"


@dataclass(frozen=True, slots=True)
class Arrival:
    """One recipient of one delivered message, as the receiver recorded it."""

    recipient: str
    kind: AddressKind
    received_at: dt.datetime
    peer_ip: str
    helo: str
    tls_version: str | None
    header_recipients: tuple[str, ...] = ()

    def describe(self) -> str:
        tls = f"over {self.tls_version}" if self.tls_version else "without TLS"
        when = f"{self.received_at:%Y-%m-%d %H:%M:%S}Z"
        return f"{self.recipient} at {when} from {self.helo} [{self.peer_ip}] {tls}"


@dataclass(frozen=True, slots=True)
class EnforcementResult:
    """The verdict on one trap, its human label, the evidence behind it, and the window's state:
    how long it has been open and what is still pending."""

    trap: Trap
    verdict: Enforcement
    reason: str
    evidence: tuple[str, ...] = ()
    elapsed: dt.timedelta | None = None  # since the control arrived
    window: dt.timedelta | None = None
    pending: str | None = None

    @property
    def label(self) -> str:
        name = self.trap.protocol_name
        return {
            Enforcement.ENFORCES: f"enforces {name}",
            Enforcement.DOES_NOT_ENFORCE: f"does not enforce {name}",
            Enforcement.UNKNOWN_YET: "unknown yet",
        }[self.verdict]

    def to_json(self) -> dict[str, Any]:
        return {
            "trap": self.trap.value,
            "verdict": self.verdict.value,
            "label": self.label,
            "reason": self.reason,
            "evidence": list(self.evidence),
            "elapsed_minutes": round(self.elapsed.total_seconds() / 60, 2) if self.elapsed else None,
            "window_minutes": round(self.window.total_seconds() / 60, 2) if self.window else None,
            "pending": self.pending,
        }


def trap_host(trap: Trap, domain: str) -> str:
    """The trap's MX host name under test domain `domain`."""
    return f"mx.{trap.label}.{domain}"


def judge(
    trap: Trap,
    arrivals: Sequence[Arrival],
    now: dt.datetime,
    window: dt.timedelta,
    connections: Sequence[ConnectionAttempt] = (),
    trap_addresses: frozenset[str] = frozenset(),
) -> EnforcementResult:
    """The verdict on one trap from every arrival of one token and the receiver's connection log (pure).

    DANE: "enforces" needs positive evidence, a connection from the sender to the trap's MX that
    started TLS (so the sender saw the trap's certificate) and ended without a MAIL command (RFC
    7672 §2.2: an unauthenticated server gets no mail). Absence alone could be any failure.
    MTA-STS: an enforcing sender never connects to an MX its policy excludes (RFC 8461 §4.1), so
    absence over the window, with no connection to the trap's MX, is the evidence.
    """
    caught = [a for a in arrivals if a.kind is trap.kind]
    if caught:
        evidence = tuple(a.describe() for a in caught)
        why = (
            f"the sender delivered to the {trap.protocol_name} trap, whose "
            + ("TLSA record never matches" if trap is Trap.DANE else "MTA-STS policy excludes its MX host")
            + f": it does not enforce {trap.protocol_name}"
        )
        return EnforcementResult(trap, Enforcement.DOES_NOT_ENFORCE, why, evidence)
    controls = sorted((a for a in arrivals if a.kind is AddressKind.CONTROL), key=lambda a: a.received_at)
    if not controls:
        why = "no mail from the sender has reached the control address yet"
        return EnforcementResult(
            trap, Enforcement.UNKNOWN_YET, why, pending="the reply to the control address"
        )
    asked = [c for c in controls if any(_is_trap_address(r, trap) for r in c.header_recipients)]
    if not asked:
        why = f"the mail that arrived did not name the {trap.protocol_name} trap: the sender was never asked"
        return EnforcementResult(trap, Enforcement.UNKNOWN_YET, why, tuple(c.describe() for c in controls))
    first = asked[0]
    ends = first.received_at + window
    elapsed = max(now - first.received_at, dt.timedelta(0))
    host = trap_host(trap, first.recipient.rpartition("@")[2].lower())
    peers = {c.peer_ip for c in controls}
    tried = [
        c
        for c in connections
        if c.peer_ip in peers
        and aimed_at(c, host, trap_addresses)
        and c.started_at >= first.received_at - window
    ]
    control = f"control: {first.describe()}"
    attempts = tuple(c.describe() for c in tried)
    aborted = [c for c in tried if c.aborted_after_tls]
    if trap is Trap.DANE and aborted:
        why = (
            f"the sender connected to the DANE trap's MX {host}, started TLS, saw a certificate that "
            "matches none of its TLSA records, and quit without sending: it enforces DANE"
        )
        return EnforcementResult(trap, Enforcement.ENFORCES, why, (control, *attempts), elapsed, window)
    base = (control, *attempts, f"trap addressed in To/Cc; nothing arrived by {now:%H:%M:%S}Z")
    if now < ends:
        why = f"waiting: the control arrived; the trap stays open until {ends:%Y-%m-%d %H:%M:%S}Z"
        pending = (
            f"{trap.protocol_name} trap: {int((ends - now).total_seconds() // 60)} min of the window left"
        )
        return EnforcementResult(trap, Enforcement.UNKNOWN_YET, why, base, elapsed, window, pending)
    minutes = int(window.total_seconds() // 60)
    if trap is Trap.DANE:
        why = (
            f"no mail in {minutes} min, but no connection that aborted after TLS either: the sender may "
            "enforce DANE or may have failed for another reason (it was not seen at the trap's MX)"
        )
        return EnforcementResult(trap, Enforcement.UNKNOWN_YET, why, base, elapsed, window)
    if tried:
        why = (
            f"the sender connected to the MTA-STS trap's MX {host} although its policy excludes it, "
            "and delivered nothing: a failure for another reason, not MTA-STS enforcement"
        )
        return EnforcementResult(trap, Enforcement.UNKNOWN_YET, why, base, elapsed, window)
    why = (
        f"the control arrived and the MTA-STS trap received nothing in {minutes} min, and the sender "
        f"never connected to its MX {host}: it refuses an MX that the policy does not list"
    )
    return EnforcementResult(trap, Enforcement.ENFORCES, why, base, elapsed, window)


def _is_trap_address(address: str, trap: Trap) -> bool:
    return address.lower().rpartition("@")[2].startswith(f"{trap.label}.")


def arrivals_from_deliveries(deliveries: Iterable[dict[str, Any]]) -> list[Arrival]:
    """Arrivals from stored delivery entries (`connection`, `recipients`, `header_recipients`)."""
    out: list[Arrival] = []
    for data in deliveries:
        conn = data["connection"]
        tls = conn.get("tls") or {}
        for r in data.get("recipients", []):
            out.append(
                Arrival(
                    r["address"],
                    AddressKind(r["kind"]),
                    dt.datetime.fromisoformat(conn["received_at"]),
                    conn["peer_ip"],
                    conn["helo"],
                    tls.get("version"),
                    tuple(data.get("header_recipients", ())),
                )
            )
    return out


# --- the receiver's zone -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReceiverZone:
    """Where the receiver and its traps live. Trap hosts may share the receiver's addresses."""

    domain: str
    ipv4: tuple[str, ...] = ()
    ipv6: tuple[str, ...] = ()
    trap_ipv4: tuple[str, ...] | None = None
    trap_ipv6: tuple[str, ...] | None = None
    policy_ipv4: tuple[str, ...] | None = None  # the HTTPS host serving the MTA-STS trap policy
    # where the probe and the auto-replies leave from, when not the receiver's own addresses
    probe_ipv4: tuple[str, ...] = ()
    probe_ipv6: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReceiverRecords:
    records: tuple[DnsRecord, ...]
    sts_trap: MtaSts

    def zone_text(self) -> str:
        policy = "\n".join(f";   {line}" for line in self.sts_trap.policy.splitlines())
        lines = [r.zone_line() for r in self.records]
        lines.append(f"; MTA-STS trap policy to serve at {self.sts_trap.url}:\n{policy}")
        lines.append("; Sign the zone (DNSSEC): TLSA records count only when secure (RFC 7672 §2.2).")
        return "\n".join(lines) + "\n"


def mismatching_tlsa(mx_host: str, certificate: x509.Certificate, port: int = 25) -> DnsRecord:
    """TLSA 3 1 1 whose data is the real key's SHA-256 with every bit inverted: it can never match."""
    real = bytes.fromhex(spki_sha256(certificate))
    wrong = bytes(b ^ 0xFF for b in real).hex()
    return DnsRecord(
        f"_{port}._tcp.{mx_host}", "TLSA", f"3 1 1 {wrong}", comment="deliberately wrong: the DANE trap"
    )


def receiver_zone_records(
    zone: ReceiverZone, certificate: x509.Certificate, dkim: tuple[str, PublicKeyTypes] | None = None
) -> ReceiverRecords:
    """Every record of the receiver's test domain: the control MX (with a matching TLSA), SPF and
    DMARC for the probe's From domain, the DKIM key that signs the probe and the auto-replies
    (`dkim`: selector and public key), the DANE trap and the MTA-STS trap.

    The probe is accepted anywhere when it passes DMARC: SPF lists every address it leaves from
    (the receiver's and `probe_ipv4`/`probe_ipv6`), and its DKIM signature has d= the test domain.
    """
    d = zone.domain
    trap4 = zone.trap_ipv4 if zone.trap_ipv4 is not None else zone.ipv4
    trap6 = zone.trap_ipv6 if zone.trap_ipv6 is not None else zone.ipv6
    mx, dane_mx = f"mx.{d}", f"mx.{DANE_TRAP_LABEL}.{d}"
    sts_domain = f"{STS_TRAP_LABEL}.{d}"
    sts_mx = f"mx.{sts_domain}"
    sts = mta_sts_records(sts_domain, (f"not-the-mx.{sts_domain}",), "enforce", STS_TRAP_MAX_AGE)
    senders4 = tuple(dict.fromkeys((*zone.ipv4, *zone.probe_ipv4)))
    senders6 = tuple(dict.fromkeys((*zone.ipv6, *zone.probe_ipv6)))
    spf_terms = [f"ip4:{a}" for a in senders4] + [f"ip6:{a}" for a in senders6]
    records = [
        mx_record(d, mx),
        *address_records(mx, zone.ipv4, zone.ipv6),
        tlsa_311(mx, certificate),
        spf_record(d, spf_terms),
        dmarc_record(d, f"postmaster@{d}", "reject"),
        *((dkim_txt(dkim[0], d, dkim[1]),) if dkim else ()),
        mx_record(f"{DANE_TRAP_LABEL}.{d}", dane_mx),
        *address_records(dane_mx, trap4, trap6),
        mismatching_tlsa(dane_mx, certificate),
        mx_record(sts_domain, sts_mx),
        *address_records(sts_mx, trap4, trap6),
        sts.txt,
        *address_records(f"mta-sts.{sts_domain}", zone.policy_ipv4 or zone.ipv4),
    ]
    return ReceiverRecords(tuple(records), sts)
