"""The MTA-STS policy fetch of the assessed domain (RFC 8461 §3.3), made once per assessment."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mecsa.observe.context import Context
from mecsa.probes.https import WELL_KNOWN_PATH, Attempt, HttpsObservation, fetch
from mecsa.records.mta_sts import looks_like_sts_record

if TYPE_CHECKING:
    from mecsa.dns.answer import DnsAnswer


def in_process_attempt(ca_file: str | None) -> Attempt:
    """Requests made here, with the process's httpx client for this trust store on this loop."""
    from mecsa.probes import https_client
    from mecsa.probes.clients import shared_client

    client = shared_client(("mta-sts", ca_file), lambda: https_client.make_client(ca_file))
    return https_client.client_attempt(client)


async def fetch_policy(ctx: Context) -> HttpsObservation:
    """Fetch `https://mta-sts.<domain>/.well-known/mta-sts.txt` for the assessed domain.

    The requests go to `ctx.https_attempt` when the caller gave one (the cold CLI's helper
    process), else they are made in this process.
    """
    attempt = ctx.https_attempt or in_process_attempt(ctx.options.ca_file)
    host = f"mta-sts.{ctx.domain}"
    return await ctx.shared(
        "mta-sts-policy", lambda: fetch(ctx.resolver, attempt, host, ctx.options.https_port, WELL_KNOWN_PATH)
    )


def txt_name(domain: str) -> str:
    """The name of the domain's MTA-STS TXT record (RFC 8461 §3.1)."""
    return f"_mta-sts.{domain}"


async def txt_then_policy(ctx: Context) -> tuple[DnsAnswer, HttpsObservation | None]:
    """The TXT answer, and the policy fetch unless that answer surely has no STS record.

    A lookup that failed could not tell, so the policy is fetched then too: its host may still
    answer, and a policy found with no record is reported as such. The cold CLI starts this as
    soon as its first questions are out (mecsa.cli.early); the check then reads the same memo.
    """
    txt = await ctx.resolver.resolve(txt_name(ctx.domain), "TXT")
    wanted = txt.failed or any(looks_like_sts_record(t) for t in txt.texts())
    return txt, (await fetch_policy(ctx) if wanted else None)
