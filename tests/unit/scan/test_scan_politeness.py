"""Politeness of a whole scan against a real (loopback) SMTP server that counts its connections."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from mecsa.store import open_store
from tests.conftest import ServeZones
from tests.unit.scan.scanning import ORIGIN, TLD, config, run, write_list, zone


@dataclass
class CountingSmtp:
    """Greets slowly, speaks just enough SMTP (no STARTTLS), and records concurrency and start times."""

    port: int = 0
    active: int = 0
    peak: int = 0
    starts: list[float] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.active += 1
        self.peak = max(self.peak, self.active)
        self.starts.append(asyncio.get_running_loop().time())
        try:
            await asyncio.sleep(0.15)
            writer.write(b"220 mx.provider.scan.test ESMTP\r\n")
            while line := await reader.readline():
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    writer.write(b"250-mx.provider.scan.test\r\n250 PIPELINING\r\n")
                elif verb == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    await writer.drain()
                    break
                else:
                    writer.write(b"502 no\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.active -= 1
            writer.close()


@pytest.fixture
async def smtp() -> AsyncIterator[CountingSmtp]:
    counter = CountingSmtp()
    server = await asyncio.start_server(counter.handle, "127.0.0.1", 0)
    counter.port = server.sockets[0].getsockname()[1]
    yield counter
    server.close()
    with contextlib.suppress(Exception):
        await server.wait_closed()


@pytest.mark.parametrize("workers", [1, 2])
async def test_one_session_per_mx_and_at_most_two_paced_connections_per_address(
    serve_zones: ServeZones, tmp_path: Path, smtp: CountingSmtp, workers: int
) -> None:
    shared = [f"s{i}" for i in range(12)]  # twelve domains with one MX host name
    own = [f"o{i}" for i in range(10)]  # ten domains, each with its own MX name, at the same address
    lines = [zone(shared).rstrip("\n")]
    for n in own:
        lines += [f"{n} MX 10 mx.{n}", f"mx.{n} A 127.0.0.1"]
    client = await serve_zones({**TLD, ORIGIN: "\n".join(lines) + "\n"})
    rate = 8.0
    base = config(client, concurrency=22, per_ip_rate=rate)
    scan_config = replace(
        base,
        options=replace(
            base.options, only=frozenset({"mx", "starttls"}), smtp_port=smtp.port, tls_versions=False
        ),
    )
    listing = write_list(tmp_path, [f"{n}.{ORIGIN}" for n in (*shared, *own)])
    with open_store(tmp_path / "s.sqlite") as store:
        result, records = await run(store, listing, scan_config, workers=workers)
    assert len(records) == len(shared) + len(own)
    assert {r["protocols"]["starttls"]["status"] for r in records} == {"fail"}  # no STARTTLS offered
    # one session per (MX name, address, port) for the whole scan, whatever the workers
    assert len(smtp.starts) == 1 + len(own)
    assert result.outcome.counters.observations == {"asks": len(shared) + len(own), "probes": 1 + len(own)}
    assert smtp.peak == 2  # the limit is reached (the server greets slowly) and never passed
    # New connections to one address are paced scan-wide. Unpaced, they would come in pairs, 2 per
    # 0.15 s greeting (span about 0.9 s); the server's accept times jitter with the machine's load.
    gaps = sorted(b - a for a, b in zip(smtp.starts, smtp.starts[1:], strict=False))
    assert smtp.starts[-1] - smtp.starts[0] >= 0.9 * (len(smtp.starts) - 1) / rate
    assert gaps[len(gaps) // 2] >= 0.8 / rate
