"""STARTTLS (MECSA `starttls`) and TLS grading, on every address of every MX host.

MECSA's rule: STARTTLS counts for a host when the handshake succeeds with TLS 1.2 or 1.3. The
protocol passes when at least 80% of the reachable MX hosts pass (a host passes when all of its
reachable addresses do); unreachable hosts are left out of the share, and if no host can be
reached the verdict is `error`, never `fail`.

This module also owns the SMTP sessions that the x509 and dane checks judge (`observe_transport`):
one session per address per assessment, shared through `ctx.shared`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mecsa.checks.base import CheckSpec, Context
from mecsa.checks.mx import MxHost, MxObservation, observe_mx
from mecsa.model import CheckResult, Finding, ProtocolVerdict, Status, VerdictStatus
from mecsa.probes.smtp import ConnectionLimits, Failure, SmtpObservation, SmtpTimeouts, Stage, probe_smtp
from mecsa.probes.tls import Outcome, TlsSweep, key_exchange, sweep_tls

PROTOCOL = "starttls"
MECSA_PASS_SHARE = 0.8
GOOD_VERSIONS = frozenset({"TLSv1.2", "TLSv1.3"})


# --- the shared transport observation ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HostSessions:
    """One MX host and the main SMTP session to each of its addresses."""

    host: MxHost
    sessions: tuple[SmtpObservation, ...]


@dataclass(frozen=True, slots=True)
class TransportObservation:
    mx: MxObservation
    hosts: tuple[HostSessions, ...]
    port: int


async def connection_limits(ctx: Context) -> ConnectionLimits:
    """The per-address connection limit of this assessment (one registry per assessment)."""

    async def make() -> ConnectionLimits:
        return ConnectionLimits()

    return await ctx.shared("smtp-limits", make)


def timeouts(ctx: Context) -> SmtpTimeouts:
    return SmtpTimeouts.from_base(ctx.options.smtp_timeout)


async def session(ctx: Context, host: str, address: str) -> SmtpObservation:
    """The main SMTP session to `address` of MX `host`, run once per assessment."""
    limits = await connection_limits(ctx)
    port = ctx.options.smtp_port
    return await ctx.shared(
        f"smtp:{host}:{address}",
        lambda: probe_smtp(host, address, port, timeouts=timeouts(ctx), limits=limits),
    )


def transport_hosts(mx: MxObservation) -> tuple[MxHost, ...]:
    """The MX hosts whose addresses get a session, in the order `observe_transport` keeps."""
    return mx.hosts if mx.receives_mail else ()


async def observe_transport(ctx: Context, mx: MxObservation | None = None) -> TransportObservation:
    """The MX set (looked up unless given) and one session per address, all concurrently."""
    mx = mx or await observe_mx(ctx)
    hosts = transport_hosts(mx)

    async def for_host(host: MxHost) -> HostSessions:
        found = await asyncio.gather(*(session(ctx, host.name, a) for a in host.addresses))
        return HostSessions(host, tuple(found))

    return TransportObservation(mx, tuple(await asyncio.gather(*map(for_host, hosts))), ctx.options.smtp_port)


# --- the per-MX share, as MECSA computes it ---------------------------------------------------


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


def unreachable_finding(protocol: str, prefix: str, s: SmtpObservation) -> Finding:
    """The error finding for an address whose session could not be judged."""
    stage = s.failed_stage.value if s.failed_stage else "?"
    return Finding(
        f"{prefix}.unreachable",
        Status.ERROR,
        protocol,
        f"{s.host} [{s.address}]: could not complete SMTP up to EHLO ({stage}: {s.reason})",
        (f"stage={stage}", f"failure={s.failure.value if s.failure else '?'}"),
        subject=f"{s.host} {s.address}",
    )


def host_address_findings(protocol: str, prefix: str, hosts: Iterable[HostSessions]) -> list[Finding]:
    """Findings for MX hosts without any address to connect to."""
    out = []
    for h in hosts:
        if h.host.addresses:
            if h.host.lookup_failed:
                out.append(
                    Finding(
                        f"{prefix}.host_partly_unresolved",
                        Status.ERROR,
                        protocol,
                        f"some addresses of {h.host.name} could not be looked up: the host cannot pass",
                        tuple(a.describe_failure() for a in (h.host.a, h.host.aaaa) if a.failed),
                        subject=h.host.name,
                    )
                )
            continue
        if h.host.lookup_failed:
            out.append(
                Finding(
                    f"{prefix}.host_unresolved",
                    Status.ERROR,
                    protocol,
                    f"could not look up the addresses of {h.host.name}",
                    tuple(a.describe_failure() for a in (h.host.a, h.host.aaaa) if a.failed),
                    subject=h.host.name,
                )
            )
        else:
            out.append(
                Finding(
                    f"{prefix}.host_no_address",
                    Status.INFO,
                    protocol,
                    f"{h.host.name} has no address: not tested, not counted",
                    subject=h.host.name,
                )
            )
    return out


def shared_catalogue(prefix: str) -> dict[str, str]:
    """The catalogue entries of the findings the helpers above emit, for a check whose ids start `prefix`."""
    return {
        f"{prefix}.mx_lookup_failed": "the MX lookup failed: nothing could be tested",
        f"{prefix}.no_mx": f"no MX host: {prefix} does not apply",
        f"{prefix}.host_unresolved": "an MX host's addresses could not be looked up",
        f"{prefix}.host_partly_unresolved": "one of an MX host's address lookups failed: it cannot pass",
        f"{prefix}.host_no_address": "an MX host has no address; not counted",
        f"{prefix}.unreachable": "an address could not be reached or did not speak SMTP up to EHLO: "
        "could not find out",
    }


def preamble_findings(protocol: str, prefix: str, mx: MxObservation) -> list[Finding]:
    if mx.mx.failed:
        return [
            Finding(
                f"{prefix}.mx_lookup_failed",
                Status.ERROR,
                protocol,
                f"could not look up the MX records: {mx.mx.describe_failure()}",
            )
        ]
    if not mx.receives_mail:
        return [Finding(f"{prefix}.no_mx", Status.NOT_APPLICABLE, protocol, "no MX host to test")]
    return []


# --- the starttls check -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StarttlsObservation:
    transport: TransportObservation
    sweeps: tuple[tuple[str, str, TlsSweep], ...]  # (host, address, sweep)
    swept: bool  # False when the sweep was switched off (--no-tls-versions)


async def observe(ctx: Context, mx: MxObservation | None = None) -> StarttlsObservation:
    transport = await observe_transport(ctx, mx)
    if not ctx.options.tls_versions:
        return StarttlsObservation(transport, (), False)
    limits = await connection_limits(ctx)
    targets = [s for h in transport.hosts for s in h.sessions if s.tls is not None]

    async def one(s: SmtpObservation) -> tuple[str, str, TlsSweep]:
        sweep = await ctx.shared(
            f"tls-sweep:{s.host}:{s.address}",
            # The main session's negotiated version (and weak suite, if any) is proven: not re-tried.
            lambda: sweep_tls(s.host, s.address, s.port, timeouts=timeouts(ctx), limits=limits, known=s.tls),
        )
        return s.host, s.address, sweep

    return StarttlsObservation(transport, tuple(await asyncio.gather(*map(one, targets))), True)


def _address(s: SmtpObservation, add: Callable[[Finding], None]) -> Status:
    subject = f"{s.host} {s.address}"
    where = f"{s.host} [{s.address}]"
    if not s.reachable:
        add(unreachable_finding(PROTOCOL, "starttls", s))
        return Status.ERROR
    ext = s.extensions
    if not s.starttls_offered:
        add(
            Finding(
                "starttls.not_offered",
                Status.FAIL,
                PROTOCOL,
                f"{where} does not offer STARTTLS",
                ext,
                "starttls.enable",
                subject,
            )
        )
        return Status.FAIL
    if s.failed_stage is Stage.STARTTLS and s.failure is Failure.REJECTED and s.starttls is not None:
        add(
            Finding(
                "starttls.refused",
                Status.FAIL,
                PROTOCOL,
                f"{where} offers STARTTLS but answered {s.starttls.code} to it",
                (s.starttls.text,),
                "starttls.enable",
                subject,
            )
        )
        return Status.FAIL
    if s.tls is None:
        if s.failed_stage is Stage.TLS and s.failure is Failure.HANDSHAKE:
            add(
                Finding(
                    "starttls.handshake_failed",
                    Status.FAIL,
                    PROTOCOL,
                    f"{where} offers STARTTLS but the TLS handshake failed: {s.reason}",
                    ext,
                    "starttls.enable",
                    subject,
                )
            )
            return Status.FAIL
        stage = s.failed_stage.value if s.failed_stage else "?"
        add(
            Finding(
                "starttls.handshake_error",
                Status.ERROR,
                PROTOCOL,
                f"{where} offers STARTTLS but the session broke off ({stage}: {s.reason})",
                ext,
                subject=subject,
            )
        )
        return Status.ERROR
    negotiated = (f"version={s.tls.version}", f"cipher={s.tls.cipher}")
    if "REQUIRETLS" in {e.split()[0].upper() for e in s.extensions_tls if e}:
        add(
            Finding(
                "starttls.requiretls",
                Status.INFO,
                PROTOCOL,
                f"{where} offers REQUIRETLS (RFC 8689)",
                subject=subject,
            )
        )
    if s.tls.version not in GOOD_VERSIONS:
        add(
            Finding(
                "starttls.old_version",
                Status.FAIL,
                PROTOCOL,
                f"{where} negotiated {s.tls.version}: MECSA counts only TLS 1.2 and 1.3",
                negotiated,
                "tls.versions",
                subject,
            )
        )
        return Status.FAIL
    add(
        Finding(
            "starttls.ok",
            Status.PASS,
            PROTOCOL,
            f"{where}: STARTTLS with {s.tls.version}",
            negotiated,
            subject=subject,
        )
    )
    kex = key_exchange(s.tls.version, s.tls.cipher)
    if not kex.forward_secret:
        add(
            Finding(
                "tls.no_forward_secrecy",
                Status.WARN,
                PROTOCOL,
                f"{where} negotiated {kex.kind}: no forward secrecy",
                negotiated,
                "tls.ciphers",
                subject,
            )
        )
    return Status.PASS


def _sweep(host: str, address: str, sweep: TlsSweep, add: Callable[[Finding], None]) -> None:
    subject, where = f"{host} {address}", f"{host} [{address}]"
    accepted = sweep.accepted(sweep.versions)
    add(
        Finding(
            "tls.versions",
            Status.INFO,
            PROTOCOL,
            f"{where} accepts {', '.join(accepted) or 'no version we tried'}",
            tuple(f"{t.label}: {t.outcome.value}" for t in sweep.versions),
            subject=subject,
        )
    )
    legacy = [v for v in accepted if v in ("TLSv1", "TLSv1.1")]
    if legacy:
        add(
            Finding(
                "tls.legacy_versions",
                Status.WARN,
                PROTOCOL,
                f"{where} still accepts {', '.join(legacy)} (deprecated by RFC 8996)",
                tuple(legacy),
                "tls.versions",
                subject,
            )
        )
    weak = [t for t in sweep.weak_ciphers if t.outcome is Outcome.ACCEPTED]
    if weak:
        add(
            Finding(
                "tls.weak_ciphers",
                Status.WARN,
                PROTOCOL,
                f"{where} accepts weak suites: {', '.join(t.label for t in weak)}",
                tuple(f"{t.label}: {t.version} {t.cipher}" for t in weak),
                "tls.ciphers",
                subject,
            )
        )
    untested = [t.label for t in sweep.weak_ciphers if t.outcome is Outcome.NOT_TESTED]
    if untested:
        add(
            Finding(
                "tls.ciphers_not_tested",
                Status.INFO,
                PROTOCOL,
                f"not tested on {where}: {', '.join(untested)} (the local OpenSSL cannot offer them)",
                tuple(untested),
                subject=subject,
            )
        )
    broken = [t for t in (*sweep.versions, *sweep.weak_ciphers) if t.outcome is Outcome.ERROR]
    if broken:
        add(
            Finding(
                "tls.sweep_incomplete",
                Status.INFO,
                PROTOCOL,
                f"some TLS trials on {where} could not conclude",
                tuple(f"{t.label}: {t.reason}" for t in broken),
                subject=subject,
            )
        )


def evaluate(obs: StarttlsObservation) -> CheckResult:
    transport = obs.transport
    findings = preamble_findings(PROTOCOL, "starttls", transport.mx)
    findings += host_address_findings(PROTOCOL, "starttls", transport.hosts)
    sweeps = {(h, a): s for h, a, s in obs.sweeps}
    outcomes: dict[str, Status] = {}
    hosts_json = []
    for h in transport.hosts:
        addresses = []
        per_address = []
        for s in h.sessions:
            status = _address(s, findings.append)
            per_address.append(status)
            sweep = sweeps.get((s.host, s.address))
            if sweep is not None:
                _sweep(s.host, s.address, sweep, findings.append)
            addresses.append(_address_json(s, status, sweep))
        outcomes[h.host.name] = host_outcome(per_address, complete=not h.host.lookup_failed)
        hosts_json.append(
            {"name": h.host.name, "outcome": outcomes[h.host.name].value, "addresses": addresses}
        )
    verdict = share_verdict(PROTOCOL, transport.mx, outcomes, "offer STARTTLS with TLS 1.2+")
    details: dict[str, Any] = {"port": transport.port, "tls_versions_swept": obs.swept, "hosts": hosts_json}
    return CheckResult("starttls", tuple(findings), (verdict,), details)


def _address_json(s: SmtpObservation, status: Status, sweep: TlsSweep | None) -> dict[str, Any]:
    out = {"address": s.address, "outcome": status.value, "smtp": s.to_json()}
    if s.tls is not None:
        kex = key_exchange(s.tls.version, s.tls.cipher)
        out["key_exchange"] = {"kind": kex.kind, "forward_secret": kex.forward_secret}
    if sweep is not None:
        out["tls_sweep"] = sweep.to_json()
    return out


CHECK = CheckSpec(
    name="starttls",
    summary="STARTTLS and TLS versions/ciphers on every MX address (MECSA: TLS 1.2+ on 80% of hosts)",
    protocols=(PROTOCOL,),
    observe=observe,
    evaluate=evaluate,
    findings={
        **shared_catalogue("starttls"),
        "starttls.not_offered": "EHLO does not list STARTTLS",
        "starttls.refused": "STARTTLS is listed but the command is refused",
        "starttls.handshake_failed": "STARTTLS is listed but the TLS handshake fails",
        "starttls.handshake_error": "the session broke off during TLS (timeout, hang-up): could not find out",
        "starttls.old_version": "the handshake negotiated TLS 1.0/1.1: MECSA does not count it",
        "starttls.ok": "STARTTLS with TLS 1.2 or 1.3",
        "starttls.requiretls": "REQUIRETLS is offered after STARTTLS",
        "tls.no_forward_secrecy": "the negotiated key exchange is not forward secret",
        "tls.versions": "the TLS versions the address accepts",
        "tls.legacy_versions": "TLS 1.0 or 1.1 still accepted",
        "tls.weak_ciphers": "NULL, EXPORT, RC4, 3DES or anonymous suites accepted",
        "tls.ciphers_not_tested": "weak classes the local OpenSSL cannot offer, so not tested",
        "tls.sweep_incomplete": "some version/cipher trials could not conclude",
    },
)
