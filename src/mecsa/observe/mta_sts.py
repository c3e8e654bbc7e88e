"""The MTA-STS policy fetch of the assessed domain (RFC 8461 §3.3), made once per assessment."""

from __future__ import annotations

import httpx

from mecsa.observe.context import Context
from mecsa.probes.clients import shared_client
from mecsa.probes.https import WELL_KNOWN_PATH, HttpsObservation, fetch, make_client


async def https_client(ctx: Context) -> httpx.AsyncClient:
    """The process's httpx client for this trust store, on this event loop (`probes.clients`)."""
    ca_file = ctx.options.ca_file
    return shared_client(("mta-sts", ca_file), lambda: make_client(ca_file))


async def fetch_policy(ctx: Context) -> HttpsObservation:
    """Fetch `https://mta-sts.<domain>/.well-known/mta-sts.txt` for the assessed domain."""
    client = await https_client(ctx)
    host = f"mta-sts.{ctx.domain}"
    return await ctx.shared(
        "mta-sts-policy", lambda: fetch(ctx.resolver, client, host, ctx.options.https_port, WELL_KNOWN_PATH)
    )
