"""The per-MX share as MECSA computes it, and the findings every transport check shares.

Not a check: starttls, x509 and dane import it, so that no check imports another. MECSA's rule: a
host passes when all of its reachable addresses pass; the protocol passes when at least 80% of the
reachable MX hosts pass; unreachable hosts are left out, and if none can be reached it is `error`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from mecsa.model import Finding, FindingKind, JsonValue, ProtocolVerdict, Status, VerdictStatus
from mecsa.observe.mx import MxObservation
from mecsa.observe.transport import HostSessions
from mecsa.probes.smtp import Failure, SmtpObservation, Stage

MECSA_PASS_SHARE = 0.8


def host_outcome(outcomes: Iterable[Status], *, complete: bool = True) -> Status:
    """A host passes when every reachable address passes; ERROR means no address could be judged.

    `complete` is False when one of the host's address lookups failed: an address never tried may
    be the broken one, so such a host can fail on proof but never pass (it is ERROR instead).
    """
    judged = [o for o in outcomes if o is not Status.ERROR]
    if not judged:
        return Status.ERROR
    if any(o is not Status.PASS for o in judged):
        return Status.FAIL
    return Status.PASS if complete else Status.ERROR


def share_verdict(
    protocol: str, mx: MxObservation, host_outcomes: Mapping[str, Status], what: str
) -> ProtocolVerdict:
    """The protocol verdict from per-host outcomes: pass when the share of reachable hosts >= 80%."""
    if mx.mx.failed:
        return ProtocolVerdict(protocol, VerdictStatus.ERROR, "could not look up the MX records")
    if not mx.receives_mail:
        return ProtocolVerdict(protocol, VerdictStatus.NOT_APPLICABLE, "the domain has no MX host to test")
    judged = {h: o for h, o in host_outcomes.items() if o is not Status.ERROR}
    per_host = {h: o.value for h, o in host_outcomes.items()}
    if not judged:
        return ProtocolVerdict(
            protocol, VerdictStatus.ERROR, "no MX host could be reached", details={"hosts": per_host}
        )
    passing = sum(o is Status.PASS for o in judged.values())
    share = passing / len(judged)
    status = VerdictStatus.PASS if share >= MECSA_PASS_SHARE else VerdictStatus.FAIL
    reason = f"{passing} of {len(judged)} reachable MX host(s) {what} ({share:.0%}; MECSA needs 80%)"
    unreachable = len(host_outcomes) - len(judged)
    if unreachable:
        reason += f"; {unreachable} host(s) could not be reached and are not counted"
    return ProtocolVerdict(protocol, status, reason, share, {"hosts": per_host})


def tls_denied(s: SmtpObservation) -> bool:
    """True when the session proves there is no TLS: STARTTLS not offered, refused, or a failed handshake.

    False for a session that broke off on the way (a timeout or hang-up at STARTTLS or in the
    handshake): then whether TLS works is unknown, an error, never a fail.
    """
    if s.tls is not None:
        return False
    return (
        not s.starttls_offered
        or (s.failed_stage is Stage.STARTTLS and s.failure is Failure.REJECTED)
        or (s.failed_stage is Stage.TLS and s.failure is Failure.HANDSHAKE)
    )


@dataclass(frozen=True, slots=True)
class TransportKinds:
    """The findings every transport check emits, declared once per check (ids `<prefix>.<name>`)."""

    mx_lookup_failed: FindingKind
    no_mx: FindingKind
    host_unresolved: FindingKind
    host_partly_unresolved: FindingKind
    host_no_address: FindingKind
    unreachable: FindingKind

    @classmethod
    def declare(cls, prefix: str, protocol: str) -> TransportKinds:
        def kind(name: str, status: Status, meaning: str) -> FindingKind:
            return FindingKind(f"{prefix}.{name}", status, protocol, meaning)

        return cls(
            kind("mx_lookup_failed", Status.ERROR, "the MX lookup failed: nothing could be tested"),
            kind("no_mx", Status.NOT_APPLICABLE, f"no MX host: {prefix} does not apply"),
            kind("host_unresolved", Status.ERROR, "an MX host's addresses could not be looked up"),
            kind(
                "host_partly_unresolved",
                Status.ERROR,
                "one of an MX host's address lookups failed: it cannot pass",
            ),
            kind("host_no_address", Status.INFO, "an MX host has no address; not counted"),
            kind(
                "unreachable",
                Status.ERROR,
                "an address could not be reached or did not speak SMTP up to EHLO: could not find out",
            ),
        )

    def all(self) -> tuple[FindingKind, ...]:
        return (
            self.mx_lookup_failed,
            self.no_mx,
            self.host_unresolved,
            self.host_partly_unresolved,
            self.host_no_address,
            self.unreachable,
        )


def unreachable_finding(kinds: TransportKinds, s: SmtpObservation) -> Finding:
    """The error finding for an address whose session could not be judged."""
    stage = s.failed_stage.value if s.failed_stage else "?"
    return kinds.unreachable(
        f"{s.host} [{s.address}]: could not complete SMTP up to EHLO ({stage}: {s.reason})",
        (f"stage={stage}", f"failure={s.failure.value if s.failure else '?'}"),
        f"{s.host} {s.address}",
    )


def host_address_findings(kinds: TransportKinds, hosts: Iterable[HostSessions]) -> list[Finding]:
    """Findings for MX hosts without any address to connect to, or whose address lookups partly failed."""
    out = []
    for h in hosts:
        failures = tuple(a.describe_failure() for a in (h.host.a, h.host.aaaa) if a.failed)
        name = h.host.name
        if h.host.addresses:
            if h.host.lookup_failed:
                why = f"some addresses of {name} could not be looked up: the host cannot pass"
                out.append(kinds.host_partly_unresolved(why, failures, name))
        elif h.host.lookup_failed:
            out.append(kinds.host_unresolved(f"could not look up the addresses of {name}", failures, name))
        else:
            out.append(kinds.host_no_address(f"{name} has no address: not tested, not counted", (), name))
    return out


def preamble_findings(kinds: TransportKinds, mx: MxObservation) -> list[Finding]:
    if mx.mx.failed:
        return [kinds.mx_lookup_failed(f"could not look up the MX records: {mx.mx.describe_failure()}")]
    if not mx.receives_mail:
        return [kinds.no_mx("no MX host to test")]
    return []


# --- the per-host, per-address facts the transport checks share ---------------------------------


class AddressFacts(Protocol):
    @property
    def address(self) -> str: ...

    def to_json(self) -> dict[str, JsonValue]: ...


AddressT = TypeVar("AddressT", bound=AddressFacts)


@dataclass(frozen=True)  # not slots: a slotted generic dataclass breaks zero-argument super()
class HostFacts(Generic[AddressT]):
    """One MX host's outcome under MECSA's rule, and its addresses' facts."""

    name: str
    outcome: Status
    addresses: tuple[AddressT, ...]

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "name": self.name,
            "outcome": self.outcome.value,
            "addresses": [a.to_json() for a in self.addresses],
        }

    @staticmethod
    def from_json(
        data: Mapping[str, JsonValue], address: Callable[[Mapping[str, JsonValue]], AddressT]
    ) -> HostFacts[AddressT]:
        """The host as its check's document keeps it, each address read by that check's `address`."""
        return HostFacts(
            str(data["name"]), Status(data["outcome"]), tuple(address(a) for a in data["addresses"])
        )


class _NamedHost(Protocol[AddressT]):  # type: ignore[misc]
    @property
    def name(self) -> str: ...

    @property
    def addresses(self) -> tuple[AddressT, ...]: ...


def find_address(hosts: Iterable[_NamedHost[AddressT]], host: str, address: str) -> AddressT | None:
    """The facts of `address` of MX host `host`, or None when the check did not judge it."""
    for h in hosts:
        if h.name == host:
            return next((a for a in h.addresses if a.address == address), None)
    return None
