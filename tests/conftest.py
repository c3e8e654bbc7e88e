"""Shared fixtures: an in-process DNS server on loopback, answering from zone text."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import pytest

from mecsa.dns.resolver import DnsClient, Nameserver
from mecsa.dns.zoneserver import Fault, ZoneData, ZoneServer

ServeZones = Callable[..., Awaitable[DnsClient]]


@pytest.fixture
async def serve_zones() -> AsyncIterator[ServeZones]:
    """`client = await serve_zones({origin: text}, secure=[...], faults={...}, validating=True)`.

    Starts a loopback DNS server for the test and returns a `DnsClient` pointed at it, with short
    timeouts so that injected silences cost little.
    """
    servers: list[ZoneServer] = []

    async def start(
        zones: Mapping[str, str],
        *,
        secure: tuple[str, ...] | list[str] = (),
        faults: Mapping[str, Fault] | None = None,
        validating: bool = True,
        dns_timeout: float = 0.3,
        attempts: int = 2,
    ) -> DnsClient:
        data = ZoneData.from_texts(zones, secure=secure, faults=faults, validating=validating)
        server = await ZoneServer(data).start()
        servers.append(server)
        return DnsClient([Nameserver("127.0.0.1", server.port)], timeout=dns_timeout, attempts=attempts)

    yield start
    for server in servers:
        await server.stop()
