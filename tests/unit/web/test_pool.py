"""The service's assessment worker processes: the guard, per-IP politeness and crashes, for real.

Each test starts real worker processes (spawned, as `mecsa serve` does) against a loopback zone
server and a loopback SMTP server that counts its connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from mecsa.observe import AssessOptions
from mecsa.scan.assessor import ScanConfig
from mecsa.web.pool import AssessmentPool, WorkerConfig, WorkerCrashed
from tests.conftest import ServeZones
from tests.unit.scan.scanning import TLD
from tests.unit.scan.test_scan_politeness import CountingSmtp

ORIGIN = "pool.test"
HEAD = f"$TTL 300\n@ SOA ns.{ORIGIN}. h.{ORIGIN}. 1 300 300 300 300\n@ NS ns\nns A 127.0.0.53\n"
ONLY = frozenset({"mx", "starttls"})


def zone(domains: int) -> str:
    """`d{i}`, each with its own MX host name, all on 127.0.0.1: one address, distinct sessions."""
    lines = [HEAD]
    for i in range(domains):
        lines += [f"d{i} MX 10 mx.d{i}", f"mx.d{i} A 127.0.0.1"]
    return "\n".join(lines) + "\n"


async def pool_for(serve_zones: ServeZones, smtp_port: int, workers: int, **changes: Any) -> AssessmentPool:
    client = await serve_zones({**TLD, ORIGIN: zone(8)}, dns_timeout=0.5)
    server = client.nameservers[0]
    scan = ScanConfig(
        options=AssessOptions(
            only=ONLY, smtp_port=smtp_port, smtp_timeout=2.0, tls_versions=False, check_deadline=20.0
        ),
        resolvers=(f"{server.host}:{server.port}",),
        dns_timeout=0.5,
        # pacing fast enough that sessions held 0.15 s overlap: the per-IP limit, not the pace,
        # is what keeps them at two
        per_ip_rate=100.0,
    )
    return AssessmentPool(replace(WorkerConfig(scan), **changes), workers)


@pytest.fixture
async def smtp() -> AsyncIterator[CountingSmtp]:
    counter = CountingSmtp()
    server = await asyncio.start_server(counter.handle, "127.0.0.1", 0)
    counter.port = server.sockets[0].getsockname()[1]
    yield counter
    server.close()
    with contextlib.suppress(Exception):
        await server.wait_closed()


def statuses(made: Any) -> dict[str, str]:
    document = made[0][0]
    return {name: v["status"] for name, v in document["protocols"].items()}


async def test_the_guard_refuses_internal_addresses_inside_the_worker_processes(
    serve_zones: ServeZones, smtp: CountingSmtp
) -> None:
    guarded = await pool_for(serve_zones, smtp.port, 1, allow_private=False)
    events: list[dict[str, Any]] = []
    try:
        refused = await guarded.assess(f"d0.{ORIGIN}", 2, events.append)
    finally:
        await guarded.close()
    assert refused[0] is None
    assert refused[1] is not None and f"mx.d0.{ORIGIN} (127.0.0.1)" in refused[1]
    assert smtp.starts == []  # not one connection to the internal address
    assert {e["check"] for e in events} == {"mx", "starttls"}  # the progress still came back
    # the control: the same assessment with --allow-private does connect
    allowed = await pool_for(serve_zones, smtp.port, 1, allow_private=True)
    try:
        made = await allowed.assess(f"d0.{ORIGIN}", 2, lambda _: None)
    finally:
        await allowed.close()
    assert made[1] is None and len(smtp.starts) >= 1
    assert statuses(made)["starttls"] == "fail"  # the counting server offers no STARTTLS


async def test_two_connections_per_address_hold_across_the_worker_processes(
    serve_zones: ServeZones, smtp: CountingSmtp
) -> None:
    pool = await pool_for(serve_zones, smtp.port, 2, allow_private=True)
    await pool.start()
    try:
        made = await asyncio.gather(*(pool.assess(f"d{i}.{ORIGIN}", 2, lambda _: None) for i in range(8)))
        used = {pid for w in pool._workers if (pid := w.process.pid) is not None}
    finally:
        await pool.close()
    assert all(m[1] is None for m in made)
    assert len(used) == 2 and len(smtp.starts) >= 8  # eight sessions, from two processes
    assert smtp.peak == 2  # eight sessions to one address, never more than two at once


async def test_a_dead_worker_fails_its_assessment_and_is_replaced(
    serve_zones: ServeZones, smtp: CountingSmtp
) -> None:
    pool = await pool_for(serve_zones, smtp.port, 1, allow_private=True)
    await pool.start()
    try:
        first = pool._workers[0].process.pid
        assert first is not None
        running = asyncio.ensure_future(pool.assess(f"d1.{ORIGIN}", 2, lambda _: None))
        for _ in range(1000):  # until the assessment is at its SMTP session
            if smtp.starts:
                break
            await asyncio.sleep(0.01)
        os.kill(first, signal.SIGKILL)
        with pytest.raises(WorkerCrashed, match="died"):
            await running
        for _ in range(300):  # its replacement starts
            if pool.alive == 1:
                break
            await asyncio.sleep(0.05)
        again = await pool.assess(f"d2.{ORIGIN}", 2, lambda _: None)
        second = pool._workers[0].process.pid
    finally:
        await pool.close()
    assert second != first and again[1] is None
