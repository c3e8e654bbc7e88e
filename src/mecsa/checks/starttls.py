"""STARTTLS (MECSA `starttls`) and TLS grading, on every address of every MX host.

MECSA's rule: STARTTLS counts for a host when the handshake succeeds with TLS 1.2 or 1.3. The
protocol passes when at least 80% of the reachable MX hosts pass (a host passes when all of its
reachable addresses do); unreachable hosts are left out of the share, and if no host can be
reached the verdict is `error`, never `fail`.

The SMTP sessions are the observation layer's (`mecsa.observe.transport`), shared with x509 and dane.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from mecsa.checks.base import CheckSpec
from mecsa.checks.permx import (
    HostFacts,
    TransportKinds,
    find_address,
    host_address_findings,
    host_outcome,
    preamble_findings,
    share_verdict,
    unreachable_finding,
)
from mecsa.model import CheckResult, Finding, FindingKind, JsonValue, Status
from mecsa.observe import Context
from mecsa.observe.mx import MxObservation
from mecsa.observe.transport import TransportObservation, observe_transport, tls_sweep
from mecsa.probes.smtp import Failure, SmtpObservation, Stage
from mecsa.probes.tls import TlsSweep, TrialOutcome, key_exchange

PROTOCOL = "starttls"

# --- the findings this check declares (id, status, protocol, meaning, remedy) ---

TRANSPORT = TransportKinds.declare("starttls", PROTOCOL)

NOT_OFFERED = FindingKind(
    "starttls.not_offered", Status.FAIL, PROTOCOL, "EHLO does not list STARTTLS", "starttls.enable"
)
REFUSED = FindingKind(
    "starttls.refused",
    Status.FAIL,
    PROTOCOL,
    "STARTTLS is listed but the command is refused",
    "starttls.enable",
)
HANDSHAKE_FAILED = FindingKind(
    "starttls.handshake_failed",
    Status.FAIL,
    PROTOCOL,
    "STARTTLS is listed but the TLS handshake fails",
    "starttls.enable",
)
HANDSHAKE_ERROR = FindingKind(
    "starttls.handshake_error",
    Status.ERROR,
    PROTOCOL,
    "the session broke off during TLS (timeout, hang-up): could not find out",
)
OLD_VERSION = FindingKind(
    "starttls.old_version",
    Status.FAIL,
    PROTOCOL,
    "the handshake negotiated TLS 1.0/1.1: MECSA does not count it",
    "tls.versions",
)
OK = FindingKind("starttls.ok", Status.PASS, PROTOCOL, "STARTTLS with TLS 1.2 or 1.3")
REQUIRETLS = FindingKind("starttls.requiretls", Status.INFO, PROTOCOL, "REQUIRETLS is offered after STARTTLS")
NO_FORWARD_SECRECY = FindingKind(
    "tls.no_forward_secrecy",
    Status.WARN,
    PROTOCOL,
    "the negotiated key exchange is not forward secret",
    "tls.ciphers",
)
VERSIONS = FindingKind("tls.versions", Status.INFO, PROTOCOL, "the TLS versions the address accepts")
LEGACY_VERSIONS = FindingKind(
    "tls.legacy_versions", Status.WARN, PROTOCOL, "TLS 1.0 or 1.1 still accepted", "tls.versions"
)
WEAK_CIPHERS = FindingKind(
    "tls.weak_ciphers",
    Status.WARN,
    PROTOCOL,
    "NULL, EXPORT, RC4, 3DES or anonymous suites accepted",
    "tls.ciphers",
)
CIPHERS_NOT_TESTED = FindingKind(
    "tls.ciphers_not_tested",
    Status.INFO,
    PROTOCOL,
    "weak classes the local OpenSSL cannot offer, so not tested",
)
SWEEP_INCOMPLETE = FindingKind(
    "tls.sweep_incomplete", Status.INFO, PROTOCOL, "some version/cipher trials could not conclude"
)

GOOD_VERSIONS = frozenset({"TLSv1.2", "TLSv1.3"})


# --- the starttls check -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StarttlsObservation:
    """The SMTP sessions and, per address, the TLS version and cipher sweep."""

    transport: TransportObservation
    sweeps: tuple[tuple[str, str, TlsSweep], ...]  # (host, address, sweep)
    swept: bool  # False when the sweep was switched off (--no-tls-versions)


async def observe(ctx: Context, mx: MxObservation | None = None) -> StarttlsObservation:
    transport = await observe_transport(ctx, mx)
    if not ctx.options.tls_versions:
        return StarttlsObservation(transport, (), False)
    targets = [s for h in transport.hosts for s in h.sessions if s.tls is not None]

    async def one(s: SmtpObservation) -> tuple[str, str, TlsSweep]:
        return s.host, s.address, await tls_sweep(ctx, s)

    return StarttlsObservation(transport, tuple(await asyncio.gather(*map(one, targets))), True)


def _address(s: SmtpObservation, add: Callable[[Finding], None]) -> Status:
    subject = f"{s.host} {s.address}"
    where = f"{s.host} [{s.address}]"
    if not s.reachable:
        add(unreachable_finding(TRANSPORT, s))
        return Status.ERROR
    ext = s.extensions
    if not s.starttls_offered:
        add(NOT_OFFERED(f"{where} does not offer STARTTLS", ext, subject))
        return Status.FAIL
    if s.failed_stage is Stage.STARTTLS and s.failure is Failure.REJECTED and s.starttls is not None:
        add(
            REFUSED(
                f"{where} offers STARTTLS but answered {s.starttls.code} to it", (s.starttls.text,), subject
            )
        )
        return Status.FAIL
    if s.tls is None:
        if s.failed_stage is Stage.TLS and s.failure is Failure.HANDSHAKE:
            add(
                HANDSHAKE_FAILED(
                    f"{where} offers STARTTLS but the TLS handshake failed: {s.reason}", ext, subject
                )
            )
            return Status.FAIL
        stage = s.failed_stage.value if s.failed_stage else "?"
        add(
            HANDSHAKE_ERROR(
                f"{where} offers STARTTLS but the session broke off ({stage}: {s.reason})", ext, subject
            )
        )
        return Status.ERROR
    negotiated = (f"version={s.tls.version}", f"cipher={s.tls.cipher}")
    if "REQUIRETLS" in {e.split()[0].upper() for e in s.extensions_tls if e}:
        add(REQUIRETLS(f"{where} offers REQUIRETLS (RFC 8689)", subject=subject))
    if s.tls.version not in GOOD_VERSIONS:
        add(
            OLD_VERSION(
                f"{where} negotiated {s.tls.version}: MECSA counts only TLS 1.2 and 1.3", negotiated, subject
            )
        )
        return Status.FAIL
    add(OK(f"{where}: STARTTLS with {s.tls.version}", negotiated, subject))
    kex = key_exchange(s.tls.version, s.tls.cipher)
    if not kex.forward_secret:
        add(NO_FORWARD_SECRECY(f"{where} negotiated {kex.kind}: no forward secrecy", negotiated, subject))
    return Status.PASS


def _sweep(host: str, address: str, sweep: TlsSweep, add: Callable[[Finding], None]) -> None:
    subject, where = f"{host} {address}", f"{host} [{address}]"
    accepted = sweep.accepted(sweep.versions)
    add(
        VERSIONS(
            f"{where} accepts {', '.join(accepted) or 'no version we tried'}",
            tuple(f"{t.label}: {t.outcome.value}" for t in sweep.versions),
            subject,
        )
    )
    legacy = [v for v in accepted if v in ("TLSv1", "TLSv1.1")]
    if legacy:
        add(
            LEGACY_VERSIONS(
                f"{where} still accepts {', '.join(legacy)} (deprecated by RFC 8996)", tuple(legacy), subject
            )
        )
    weak = [t for t in sweep.weak_ciphers if t.outcome is TrialOutcome.ACCEPTED]
    if weak:
        add(
            WEAK_CIPHERS(
                f"{where} accepts weak suites: {', '.join(t.label for t in weak)}",
                tuple(f"{t.label}: {t.version} {t.cipher}" for t in weak),
                subject,
            )
        )
    untested = [t.label for t in sweep.weak_ciphers if t.outcome is TrialOutcome.NOT_TESTED]
    if untested:
        add(
            CIPHERS_NOT_TESTED(
                f"not tested on {where}: {', '.join(untested)} (the local OpenSSL cannot offer them)",
                tuple(untested),
                subject,
            )
        )
    broken = [t for t in (*sweep.versions, *sweep.weak_ciphers) if t.outcome is TrialOutcome.ERROR]
    if broken:
        add(
            SWEEP_INCOMPLETE(
                f"some TLS trials on {where} could not conclude",
                tuple(f"{t.label}: {t.reason}" for t in broken),
                subject,
            )
        )


@dataclass(frozen=True, slots=True)
class AddressTls:
    """One address: its main session, its outcome under MECSA's rule, and its TLS sweep (if run)."""

    session: SmtpObservation
    outcome: Status
    sweep: TlsSweep | None

    @property
    def address(self) -> str:
        return self.session.address

    def to_json(self) -> dict[str, JsonValue]:
        s = self.session
        out: dict[str, JsonValue] = {"address": s.address, "outcome": self.outcome.value, "smtp": s.to_json()}
        if s.tls is not None:
            kex = key_exchange(s.tls.version, s.tls.cipher)
            out["key_exchange"] = {"kind": kex.kind, "forward_secret": kex.forward_secret}
        if self.sweep is not None:
            out["tls_sweep"] = self.sweep.to_json()
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> AddressTls:
        """The address as the document keeps it (`key_exchange` is derived; see SmtpObservation.from_json)."""
        # only when the sweep ran; not .get: details of another shape must raise TypeError
        sweep = data["tls_sweep"] if "tls_sweep" in data else None  # noqa: SIM401
        return cls(
            SmtpObservation.from_json(data["smtp"]),
            Status(data["outcome"]),
            None if sweep is None else TlsSweep.from_json(sweep),
        )


@dataclass(frozen=True, slots=True)
class StarttlsFacts:
    """What the starttls check found per MX host and address."""

    port: int
    swept: bool
    hosts: tuple[HostFacts[AddressTls], ...]

    def address(self, host: str, address: str) -> AddressTls | None:
        return find_address(self.hosts, host, address)

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "port": self.port,
            "tls_versions_swept": self.swept,
            "hosts": [h.to_json() for h in self.hosts],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> StarttlsFacts:
        return cls(
            int(data["port"]),
            bool(data["tls_versions_swept"]),
            tuple(HostFacts.from_json(h, AddressTls.from_json) for h in data["hosts"]),
        )


def evaluate(obs: StarttlsObservation) -> CheckResult:
    transport = obs.transport
    findings = preamble_findings(TRANSPORT, transport.mx)
    findings += host_address_findings(TRANSPORT, transport.hosts)
    sweeps = {(h, a): s for h, a, s in obs.sweeps}
    outcomes: dict[str, Status] = {}
    hosts: list[HostFacts[AddressTls]] = []
    for h in transport.hosts:
        addresses = []
        for s in h.sessions:
            status = _address(s, findings.append)
            sweep = sweeps.get((s.host, s.address))
            if sweep is not None:
                _sweep(s.host, s.address, sweep, findings.append)
            addresses.append(AddressTls(s, status, sweep))
        outcomes[h.host.name] = host_outcome(
            (a.outcome for a in addresses), complete=not h.host.lookup_failed
        )
        hosts.append(HostFacts(h.host.name, outcomes[h.host.name], tuple(addresses)))
    verdict = share_verdict(PROTOCOL, transport.mx, outcomes, "offer STARTTLS with TLS 1.2+")
    facts = StarttlsFacts(transport.port, obs.swept, tuple(hosts))
    return CheckResult.of("starttls", tuple(findings), (verdict,), facts)


CHECK = CheckSpec(
    name="starttls",
    summary="STARTTLS and TLS versions/ciphers on every MX address (MECSA: TLS 1.2+ on 80% of hosts)",
    protocols=(PROTOCOL,),
    observe=observe,
    evaluate=evaluate,
    facts=StarttlsFacts,
    findings=(
        *TRANSPORT.all(),
        NOT_OFFERED,
        REFUSED,
        HANDSHAKE_FAILED,
        HANDSHAKE_ERROR,
        OLD_VERSION,
        OK,
        REQUIRETLS,
        NO_FORWARD_SECRECY,
        VERSIONS,
        LEGACY_VERSIONS,
        WEAK_CIPHERS,
        CIPHERS_NOT_TESTED,
        SWEEP_INCOMPLETE,
    ),
)
