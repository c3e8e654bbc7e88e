"""The SMTP sessions of an assessment: one main session per (MX host, address, port), and its TLS sweep.

Shared by the starttls, x509 and dane checks, and across the assessments of a scan (`Context.across`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass

from mecsa.observe.context import Context
from mecsa.observe.mx import MxHost, MxObservation, observe_mx
from mecsa.probes.smtp import SmtpObservation, SmtpTimeouts, TlsSession, probe_smtp
from mecsa.probes.tls import TlsSweep, TlsTrial, early_trials, sweep_tls


@dataclass(frozen=True, slots=True)
class HostSessions:
    """One MX host and the main SMTP session to each of its addresses."""

    host: MxHost
    sessions: tuple[SmtpObservation, ...]


@dataclass(frozen=True, slots=True)
class TransportObservation:
    """The MX set and the main SMTP session to every address of every host."""

    mx: MxObservation
    hosts: tuple[HostSessions, ...]
    port: int


# Early trials started and not yet done: a reference, so that the event loop's weak one is not the last.
_STARTED: set[asyncio.Future[Mapping[str, TlsTrial]]] = set()


def timeouts(ctx: Context) -> SmtpTimeouts:
    return SmtpTimeouts.from_base(ctx.options.smtp_timeout)


async def session(ctx: Context, host: str, address: str) -> SmtpObservation:
    """The main SMTP session to `address` of MX `host`, run once per assessment.

    When the TLS sweep will run, its early trials start beside it, in the address's other slot.
    """
    port = ctx.options.smtp_port
    # What the main session's handshake negotiated, as soon as it is known (before its last EHLO):
    # the early trials choose their next offer from it.
    handshake: asyncio.Future[TlsSession | None] = asyncio.get_running_loop().create_future()

    def negotiated(tls: TlsSession | None) -> None:
        if not handshake.done():
            handshake.set_result(tls)

    main = asyncio.ensure_future(
        ctx.across(
            ("smtp", host, address, str(port)),
            lambda: probe_smtp(
                host, address, port, timeouts=timeouts(ctx), limits=ctx.limits, on_tls=negotiated
            ),
        )
    )
    main.add_done_callback(
        lambda done: negotiated(None if done.cancelled() or done.exception() else done.result().tls)
    )
    if sweep_wanted(ctx):
        # Started after the main session's task, so the main session takes the first slot. The
        # memo (`ctx.across`) shares the trials' task with the sweep, which awaits the same one.
        started = asyncio.ensure_future(_early(ctx, host, address, port, handshake))
        _STARTED.add(started)
        started.add_done_callback(_STARTED.discard)
    return await main


def sweep_wanted(ctx: Context) -> bool:
    """Whether the starttls check will sweep TLS versions in this assessment."""
    opts = ctx.options
    return opts.tls_versions and (not opts.only or "starttls" in opts.only) and "starttls" not in opts.skip


async def _early(
    ctx: Context, host: str, address: str, port: int, main_tls: Awaitable[TlsSession | None] | None = None
) -> Mapping[str, TlsTrial]:
    return await ctx.across(
        ("tls-early", host, address, str(port)),
        lambda: early_trials(
            host, address, port, timeouts=timeouts(ctx), limits=ctx.limits, main_tls=main_tls
        ),
    )


async def tls_sweep(ctx: Context, s: SmtpObservation) -> TlsSweep:
    """The TLS version and weak-suite sweep of one address, after its main session proved TLS."""
    return await ctx.across(
        ("tls-sweep", s.host, s.address, str(s.port)),
        # The main session's negotiated version (and weak suite, if any) is proven: not re-tried.
        lambda: sweep_tls(
            s.host,
            s.address,
            s.port,
            timeouts=timeouts(ctx),
            limits=ctx.limits,
            known=s.tls,
            early=_early(ctx, s.host, s.address, s.port) if sweep_wanted(ctx) else None,
        ),
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
