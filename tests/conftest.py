"""Shared fixtures: an in-process DNS server on loopback, answering from zone text."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import pytest

from mecsa.dns.resolver import DnsClient, Nameserver
from mecsa.dns.zoneserver import Fault, ZoneData, ZoneServer

ServeZones = Callable[..., Awaitable[DnsClient]]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Lab tests bring up real servers: they are slow too, so `-m "not slow"` is a quick loop."""
    for item in items:
        if item.get_closest_marker("lab") is not None:
            item.add_marker(pytest.mark.slow)


@pytest.fixture
async def serve_zones() -> AsyncIterator[ServeZones]:
    """`client = await serve_zones({origin: text}, secure=[...], faults={...}, validating=True)`.

    Starts a loopback DNS server for the test and returns a `DnsClient` pointed at it, with short
    timeouts (and one attempt when a name is made silent) so that injected silences cost little.
    """
    servers: list[ZoneServer] = []

    async def start(
        zones: Mapping[str, str],
        *,
        secure: tuple[str, ...] | list[str] = (),
        faults: Mapping[str, Fault] | None = None,
        validating: bool = True,
        dns_timeout: float = 0.3,
        attempts: int | None = None,
    ) -> DnsClient:
        data = ZoneData.from_texts(zones, secure=secure, faults=faults, validating=validating)
        server = await ZoneServer(data).start()
        servers.append(server)
        if attempts is None:
            # An injected silence never ends, so a second attempt only doubles the wait; tests
            # of the retry itself pass `attempts` explicitly.
            attempts = 1 if faults and Fault.TIMEOUT in faults.values() else 2
        return DnsClient([Nameserver("127.0.0.1", server.port)], timeout=dns_timeout, attempts=attempts)

    yield start
    for server in servers:
        await server.stop()
