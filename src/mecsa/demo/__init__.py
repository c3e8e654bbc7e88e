"""The pre-lab demo: assess an embedded, well-configured domain served by a loopback DNS server."""

from __future__ import annotations

from mecsa.demo.zone import DEMO_DOMAIN, DKIM_SELECTOR, demo_zones
from mecsa.model import Assessment
from mecsa.observe import AssessOptions

__all__ = ["DEMO_DOMAIN", "assess_demo"]


async def assess_demo(*, dns_timeout: float = 1.0, smtp_timeout: float = 3.0) -> Assessment:
    """Serve the demo zone on 127.0.0.1 (validating, signed), assess it through that server, stop it."""
    from mecsa.assess import assess
    from mecsa.dns.resolver import DnsClient, Nameserver
    from mecsa.dns.zoneserver import ZoneData, ZoneServer

    data = ZoneData.from_texts(demo_zones(), secure=demo_zones().keys(), validating=True)
    server = await ZoneServer(data).start()
    try:
        client = DnsClient([Nameserver(server.host, server.port)], timeout=dns_timeout, attempts=2)
        options = AssessOptions(dkim_selectors=(DKIM_SELECTOR,), smtp_timeout=smtp_timeout)
        return await assess(DEMO_DOMAIN, client, options)
    finally:
        await server.stop()
