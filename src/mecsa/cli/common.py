"""Options and helpers shared by sub-commands."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer

if TYPE_CHECKING:
    from mecsa.dns.resolver import DnsClient

T = TypeVar("T")

RESOLVER_HELP = (
    "Resolver to ask, IP[:PORT] or [IPv6]:PORT; repeatable. Default: the system's (/etc/resolv.conf)."
)


def usage_error(message: str) -> NoReturn:
    """A one-line error and exit status 2."""
    typer.echo(f"mecsa: error: {message}", err=True)
    raise typer.Exit(2)


def make_client(resolvers: list[str] | None, timeout: float) -> DnsClient:
    from mecsa.dns.resolver import DnsClient, ResolverConfigError, parse_nameserver

    try:
        servers = [parse_nameserver(r) for r in resolvers or []]
        return DnsClient(servers or None, timeout=timeout)
    except ResolverConfigError as exc:
        usage_error(str(exc))


def domain_argument(text: str) -> str:
    from mecsa.domain import DomainError, normalise_domain

    try:
        return normalise_domain(text)
    except DomainError as exc:
        usage_error(str(exc))


def run(coro: Coroutine[Any, Any, T]) -> T:
    import asyncio  # imported here: it costs ~20 ms of start-up that --help does not need

    return asyncio.run(coro)
