"""Options and helpers shared by sub-commands."""

from __future__ import annotations

from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

if TYPE_CHECKING:
    from mecsa.dns.resolver import DnsClient

T = TypeVar("T")

RESOLVER_HELP = (
    "Resolver to ask, IP[:PORT] or [IPv6]:PORT; repeatable. Default: the system's (/etc/resolv.conf)."
)

# Options several commands share, declared once so that names, help and limits agree.
ResolverOption = Annotated[list[str] | None, typer.Option("--resolver", help=RESOLVER_HELP)]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object and nothing else.")]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", help="Seconds to wait for each DNS reply.", min=0.1)
]
CaFileOption = Annotated[
    str | None,
    typer.Option("--ca-file", help="PEM trust anchors for MX certificates (default: the system CAs)."),
]
SmtpTimeoutOption = Annotated[
    float,
    typer.Option("--smtp-timeout", help="Base SMTP timeout S: connect/command/TLS S, banner 2S.", min=0.1),
]
TlsVersionsOption = Annotated[
    bool, typer.Option("--tls-versions/--no-tls-versions", help="Sweep TLS versions and weak ciphers.")
]
RevocationOption = Annotated[
    bool,
    typer.Option("--revocation/--no-revocation", help="Ask the certificates' OCSP responders and CRLs."),
]
HtmlOption = Annotated[
    Path | None, typer.Option("--html", help="Also write a self-contained HTML report to FILE.")
]


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


def input_file(option: str, path: str | None) -> str | None:
    """`path` when it names a readable file, else a usage error (checked before any work starts)."""
    if path is not None:
        import os

        if not Path(path).is_file() or not os.access(path, os.R_OK):
            usage_error(f"{option} {path}: no readable file there")
    return path


def output_file(option: str, path: Path | None) -> Path | None:
    """`path` when a file can be written there, else a usage error (checked before any work starts)."""
    if path is not None and (path.is_dir() or not path.parent.is_dir()):
        usage_error(f"{option} {path}: not a file in an existing directory")
    return path
