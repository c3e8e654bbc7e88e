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
DnssecModeOption = Annotated[
    str,
    typer.Option(
        "--dnssec-mode",
        help="Who judges DNSSEC: own (mecsa walks the chain itself), resolver (its AD bit), or both.",
    ),
]
TrustAnchorOption = Annotated[
    str | None,
    typer.Option(
        "--trust-anchor",
        help="File of DS or DNSKEY lines to start the chain from (default: IANA's root KSKs).",
    ),
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


def make_client(
    resolvers: list[str] | None,
    timeout: float,
    dnssec_mode: str = "resolver",
    trust_anchor: str | None = None,
) -> DnsClient:
    from mecsa.dns.resolver import DnsClient, ResolverConfigError, parse_nameserver
    from mecsa.dns.validation.anchors import TrustAnchorError, load_anchor_file
    from mecsa.dns.validation.verdict import DnssecMode

    modes = [m.value for m in DnssecMode]
    if dnssec_mode not in modes:
        usage_error(f"--dnssec-mode {dnssec_mode!r}: choose one of {', '.join(modes)}")
    try:
        anchors = load_anchor_file(trust_anchor) if trust_anchor is not None else None
    except TrustAnchorError as exc:
        usage_error(f"--trust-anchor: {exc}")
    try:
        servers = [parse_nameserver(r) for r in resolvers or []]
        return DnsClient(
            servers or None, timeout=timeout, dnssec_mode=DnssecMode(dnssec_mode), trust_anchors=anchors
        )
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


def ca_bundle_file(option: str, path: str | None) -> str | None:
    """`path` when it is a readable PEM bundle with at least one certificate, else a usage error.

    Checked at start-up with both readers that will use it (OpenSSL for the MTA-STS fetch,
    cryptography for x509): a broken bundle would otherwise surface later as "no MX host could
    be reached" or an SSLError in the middle of the report.
    """
    if input_file(option, path) is None:
        return None
    assert path is not None
    import contextlib
    import ssl
    import warnings

    from cryptography import x509

    why = f"{option} {path}: not a PEM certificate bundle"
    try:
        ssl.create_default_context(cafile=path)
        text = Path(path).read_bytes()
    except (ssl.SSLError, ValueError, OSError):
        usage_error(why)
    # One certificate at a time, as x509 reads it: one odd entry in a system bundle (a negative
    # serial, say) does not make the bundle unusable.
    end = b"-----END CERTIFICATE-----"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for block in text.split(end)[:-1]:
            with contextlib.suppress(ValueError):
                x509.load_pem_x509_certificate(block + end)
                return path
    usage_error(why)
