"""The DNS facts a view shows, asked live: reverse names, and whether an IP is in a domain's SPF."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import TypeVar

import dns.reversename

from mecsa.dns.resolver import Resolver
from mecsa.reports.views import SpfMembership
from mecsa.spf.evaluator import SpfResult, check_host

T = TypeVar("T")
CONCURRENCY = 32


async def _bounded(limit: asyncio.Semaphore, work: Awaitable[T]) -> T:
    async with limit:
        return await work


async def spf_membership(
    resolver: Resolver, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], SpfMembership]:
    """For each (domain, ip): is `ip` authorised by `domain`'s SPF record now (check_host = pass)?

    A temperror or permerror is `unknown`: a source is never called "unknown sender" on a guess.
    """
    todo = sorted(set(pairs))
    limit = asyncio.Semaphore(CONCURRENCY)
    outcomes = await asyncio.gather(
        *(
            _bounded(limit, check_host(ip, domain, f"postmaster@{domain}", resolver=resolver))
            for domain, ip in todo
        )
    )
    result: dict[tuple[str, str], SpfMembership] = {}
    for pair, outcome in zip(todo, outcomes, strict=True):
        if outcome.result is SpfResult.PASS:
            result[pair] = SpfMembership.LISTED
        elif outcome.result in (SpfResult.TEMPERROR, SpfResult.PERMERROR):
            result[pair] = SpfMembership.UNKNOWN
        else:
            result[pair] = SpfMembership.NOT_LISTED
    return result


async def reverse_names(resolver: Resolver, ips: Iterable[str]) -> dict[str, str | None]:
    """The PTR name of each IP (None when there is none or the lookup failed)."""
    todo = sorted(set(ips))
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(ip: str) -> str | None:
        answer = await resolver.resolve(dns.reversename.from_address(ip), "PTR")
        if not answer.records:
            return None
        return str(answer.records[0].to_text()).rstrip(".").lower() or None

    names = await asyncio.gather(*(_bounded(limit, one(ip)) for ip in todo))
    return dict(zip(todo, names, strict=True))
