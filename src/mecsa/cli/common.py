"""Options and helpers shared by sub-commands."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

if TYPE_CHECKING:
    from mecsa.dns.resolver import DnsClient
    from mecsa.dns.validation.anchors import TrustAnchors

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
Decorator = Callable[[F], F]

STORE_HELP = (
    "A SQLite file or a postgresql:// URL (default: $MECSA_STORE, else ~/.local/share/mecsa/store.sqlite)."
)
RESOLVER_HELP = (
    "Resolver to ask, IP[:PORT] or [IPv6]:PORT; repeatable. Default: the system's (/etc/resolv.conf)."
)


def list_or_none(ctx: click.Context, param: click.Parameter, value: tuple[Any, ...]) -> list[Any] | None:
    """A repeatable option's values as a list, or None when it was not given (as typer gave them).

    Commands tell "not given" (None: take it from elsewhere, e.g. harden's --config) from a value.
    """
    return list(value) or None


def repeatable(*decls: str, help: str, type: Any = None, **attrs: Any) -> Decorator[Any]:
    """A repeatable option whose value is a list of what was given, or None."""
    return click.option(*decls, multiple=True, type=type, callback=list_or_none, help=help, **attrs)


def flag(*decls: str, help: str, default: bool = False) -> Decorator[Any]:
    """An on/off option: `--name` alone, or `--name/--no-name` (with its default)."""
    return click.option(*decls, is_flag=True, default=default, help=help)


def path_type(**attrs: Any) -> click.Path:
    """A path option's type: a pathlib.Path (existence is checked by the commands, with a clear line)."""
    return click.Path(path_type=Path, **attrs)


# Options several commands share, declared once so that names, help and limits agree.
resolver_option = repeatable("--resolver", help=RESOLVER_HELP)
json_option = flag("--json", "json_output", help="Print one JSON object and nothing else.")
timeout_option = click.option(
    "--timeout", type=click.FloatRange(min=0.1), default=2.0, help="Seconds to wait for each DNS reply."
)
ca_file_option = click.option(
    "--ca-file", default=None, help="PEM trust anchors for MX certificates (default: the system CAs)."
)
smtp_timeout_option = click.option(
    "--smtp-timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    help="Base SMTP timeout S: connect/command/TLS S, banner 2S.",
)
tls_versions_option = flag(
    "--tls-versions/--no-tls-versions", default=True, help="Sweep TLS versions and weak ciphers."
)
dnssec_mode_option = click.option(
    "--dnssec-mode",
    default="both",
    help="Who judges DNSSEC: own (mecsa walks the chain itself), resolver (its AD bit), or both.",
)
trust_anchor_option = click.option(
    "--trust-anchor",
    default=None,
    help="File of DS or DNSKEY lines to start the chain from (default: IANA's root KSKs).",
)
revocation_option = flag(
    "--revocation/--no-revocation", default=True, help="Ask the certificates' OCSP responders and CRLs."
)
html_option = click.option(
    "--html", type=path_type(), default=None, help="Also write a self-contained HTML report to FILE."
)


def exit_with(code: int) -> NoReturn:
    """Leave the command with exit status `code` (the output so far is kept)."""
    raise click.exceptions.Exit(code)


def usage_error(message: str) -> NoReturn:
    """A one-line error and exit status 2."""
    click.echo(f"mecsa: error: {message}", err=True)
    exit_with(2)


def make_client(
    resolvers: list[str] | None,
    timeout: float,
    dnssec_mode: str = "resolver",
    trust_anchor: str | None = None,
    *,
    anchors: TrustAnchors | None = None,
) -> DnsClient:
    """The DNS client of a command's options (a usage error for bad ones); `anchors`, when given,
    are `trust_anchor` already loaded (`load_trust_anchor`)."""
    from mecsa.dns.resolver import DnsClient, ResolverConfigError, parse_nameserver
    from mecsa.dns.validation.verdict import DnssecMode

    modes = [m.value for m in DnssecMode]
    if dnssec_mode not in modes:
        usage_error(f"--dnssec-mode {dnssec_mode!r}: choose one of {', '.join(modes)}")
    if anchors is None:
        anchors = load_trust_anchor(trust_anchor)
    try:
        servers = [parse_nameserver(r) for r in resolvers or []]
        return DnsClient(
            servers or None, timeout=timeout, dnssec_mode=DnssecMode(dnssec_mode), trust_anchors=anchors
        )
    except ResolverConfigError as exc:
        usage_error(str(exc))


def load_trust_anchor(trust_anchor: str | None) -> TrustAnchors | None:
    """`--trust-anchor`'s file, loaded (a usage error when it cannot be); None without one."""
    if trust_anchor is None:
        return None
    from mecsa.dns.validation.anchors import TrustAnchorError, load_anchor_file

    try:
        return load_anchor_file(trust_anchor)
    except TrustAnchorError as exc:
        usage_error(f"--trust-anchor: {exc}")


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
    if ca_bundle_opens(option, path) is not None:
        ca_bundle_parses(option, path)
    return path


def ca_bundle_opens(option: str, path: str | None) -> str | None:
    """`ca_bundle_file`'s first half: a readable file that OpenSSL loads as CA certificates."""
    if input_file(option, path) is None:
        return None
    assert path is not None
    import ssl

    try:
        ssl.create_default_context(cafile=path)
    except (ssl.SSLError, ValueError, OSError):
        usage_error(f"{option} {path}: not a PEM certificate bundle")
    return path


def ca_bundle_parses(option: str, path: str | None) -> str | None:
    """`ca_bundle_file`'s second half: cryptography reads at least one certificate of the bundle.

    Apart so that the cold `assess` can run it once cryptography is imported, in the background,
    instead of importing it (~25 ms) before its first DNS question (mecsa.cli.early).
    """
    if path is None:
        return None
    import contextlib
    import warnings

    from cryptography import x509

    why = f"{option} {path}: not a PEM certificate bundle"
    try:
        text = Path(path).read_bytes()
    except OSError:
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
