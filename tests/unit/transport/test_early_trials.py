"""The sweep's early trials run beside the main session, in the address's second slot (issue 20)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mecsa.probes.smtp import ConnectionLimits, SmtpTimeouts, probe_smtp
from mecsa.probes.tls import (
    EARLY_LABELS,
    OLD_VERSIONS,
    TrialOutcome,
    early_trials,
    sweep_tls,
)
from tests.unit.transport.pki import Pki
from tests.unit.transport.servers import LoopbackServers, server_context
from tests.unit.transport.test_tls_sweep import offers_here

FAST = SmtpTimeouts.from_base(0.5)
MX = "mx.example.test"
ADDRESS = "127.0.0.2"


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
    # main session + one session per offer but TLSv1.3's, which the main session answered
    assert servers.connections[ADDRESS] - before == 1 + offers_here() - 1


async def test_server_without_starttls_sees_one_early_trial_only(servers: LoopbackServers) -> None:
    await servers.add_smtpd(ADDRESS, None)
    ran = await early_trials(MX, ADDRESS, servers.port, timeouts=FAST, limits=ConnectionLimits())
    # the first offer (TLSv1 and TLSv1.1 in one ClientHello) never got to TLS; the weak one is not sent
    assert list(ran) == list(OLD_VERSIONS)
    assert all(t.outcome is TrialOutcome.ERROR for t in ran.values())
    assert servers.connections[ADDRESS] == 1
