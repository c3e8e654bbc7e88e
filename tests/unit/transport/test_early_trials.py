"""The sweep's early trials run beside the main session, in the address's second slot (issue 20)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mecsa.probes.smtp import ConnectionLimits, SmtpTimeouts, probe_smtp
from mecsa.probes.tls import (
    EARLY_LABELS,
    TLS_VERSIONS,
    WEAK_CLASSES,
    TrialOutcome,
    early_trials,
    sweep_tls,
    trial_context,
)
from tests.unit.transport.pki import Pki
from tests.unit.transport.servers import LoopbackServers, server_context

FAST = SmtpTimeouts.from_base(0.5)
MX = "mx.example.test"
ADDRESS = "127.0.0.2"


def _runnable() -> int:
    contexts = (
        *(trial_context(v, "ALL") for v in TLS_VERSIONS),
        *(trial_context(None, spec) for _, spec in WEAK_CLASSES),
    )
    return sum(ctx is not None for ctx in contexts)


async def test_early_trial_connects_while_the_main_session_runs(
    servers: LoopbackServers, pki: Pki, tmp_path: Path
) -> None:
    await servers.add_smtpd(ADDRESS, server_context(pki.leaf(MX), b"", tmp_path))
    limits = ConnectionLimits()
    main = asyncio.ensure_future(probe_smtp(MX, ADDRESS, servers.port, timeouts=FAST, limits=limits))
    early = asyncio.ensure_future(early_trials(MX, ADDRESS, servers.port, timeouts=FAST, limits=limits))
    session = await main
    assert session.tls is not None
    assert servers.connections[ADDRESS] >= 2  # the first early trial was in before the main one ended
    ran = await early
    assert set(ran) <= EARLY_LABELS and ran["TLSv1"].outcome is TrialOutcome.REFUSED


async def test_sweep_with_early_trials_runs_each_trial_once_and_agrees(
    servers: LoopbackServers, pki: Pki, tmp_path: Path
) -> None:
    await servers.add_smtpd(ADDRESS, server_context(pki.leaf(MX), b"", tmp_path))
    limits = ConnectionLimits()
    plain = await sweep_tls(MX, ADDRESS, servers.port, timeouts=FAST, limits=limits)
    before = servers.connections[ADDRESS]
    main = asyncio.ensure_future(probe_smtp(MX, ADDRESS, servers.port, timeouts=FAST, limits=limits))
    early = asyncio.ensure_future(early_trials(MX, ADDRESS, servers.port, timeouts=FAST, limits=limits))
    session = await main
    sweep = await sweep_tls(
        MX, ADDRESS, servers.port, timeouts=FAST, limits=limits, known=session.tls, early=early
    )
    assert [(t.label, t.outcome) for t in (*sweep.versions, *sweep.weak_ciphers)] == [
        (t.label, t.outcome) for t in (*plain.versions, *plain.weak_ciphers)
    ]
    # main session + every runnable trial but TLSv1.3, which the main session answered
    assert servers.connections[ADDRESS] - before == 1 + _runnable() - 1


async def test_server_without_starttls_sees_one_early_trial_only(servers: LoopbackServers) -> None:
    await servers.add_smtpd(ADDRESS, None)
    ran = await early_trials(MX, ADDRESS, servers.port, timeouts=FAST, limits=ConnectionLimits())
    assert list(ran) == ["TLSv1"] and ran["TLSv1"].outcome is TrialOutcome.ERROR
    assert servers.connections[ADDRESS] == 1
