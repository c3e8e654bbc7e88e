"""`mecsa serve`: the web service (pages and REST API); `mecsa serve token create|list|revoke`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from mecsa.cli.common import (
    ca_bundle_file,
    ca_file_option,
    flag,
    repeatable,
    resolver_option,
    smtp_timeout_option,
    timeout_option,
    tls_versions_option,
    usage_error,
)

if TYPE_CHECKING:
    from mecsa.store import Store

SERVE_HELP = """Run the web service: the home page, live assessments, reports, domain history, statistics,
scans, and the REST API under /api/v1 (OpenAPI document at /api/v1/openapi.json).

Assessments run in --assess-workers processes. Abuse controls: a domain assessed within
--fresh-minutes gets the stored result; each client address may start --client-assessments new
assessments per --client-window seconds; at most --max-running run at once (and --max-waiting
wait); request bodies are bounded; targets whose hosts resolve to private, loopback or link-local
addresses are refused unless --allow-private (the lab, tests).
API tokens (for scans and forced re-assessments) are made with `mecsa serve token create`.
With --watchlist FILE the service runs the monitor in-process (as `mecsa monitor daemon`); its
watch list and alerts are on /monitor, the ingested reports on /reports (both need a token).
With --mailmode FILE (TOML: the test domain, the mail store, the receiver's address, its keys; see
docs/mailmode.md), the home page also takes an e-mail address and the SMTP receiver runs beside.
Behind a reverse proxy, pass --behind-proxy (see docs/web.md)."""

store_option = click.option(
    "--store",
    default=None,
    help="The store: a SQLite file or postgresql://... URL "
    "(default: $MECSA_STORE, else ~/.local/share/mecsa/store.sqlite).",
)


def parse_listen(text: str) -> tuple[str, int]:
    """ADDR:PORT, [IPv6]:PORT, or :PORT for 127.0.0.1."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        usage_error(f"--listen {text!r}: give ADDR:PORT, e.g. 127.0.0.1:8080")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


@click.group("serve", help=SERVE_HELP, invoke_without_command=True, no_args_is_help=False)
@click.pass_context
@click.option("--listen", default="127.0.0.1:8080", help="ADDR:PORT to listen on.")
@store_option
@resolver_option
@timeout_option
@smtp_timeout_option
@click.option("--profile", default="mecsa", help="Scoring profile: mecsa or mecsa-st.")
@flag("--allow-private", help="Allow targets on private, loopback or link-local addresses.")
@click.option(
    "--fresh-minutes",
    type=click.FloatRange(min=0),
    default=10.0,
    help="Return a stored result younger than this.",
)
@click.option(
    "--client-assessments",
    type=click.IntRange(min=1),
    default=10,
    help="New assessments per client address per window.",
)
@click.option(
    "--client-window", type=click.FloatRange(min=1), default=600.0, help="The rate-limit window in seconds."
)
@click.option("--max-running", type=click.IntRange(min=1), default=4, help="Assessments at once.")
@click.option("--max-waiting", type=click.IntRange(min=0), default=16, help="Assessments waiting.")
@click.option(
    "--assess-workers",
    type=click.IntRange(min=0),
    default=0,
    help="Worker processes for assessments (0: min(4, CPUs)).",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=1000,
    help="Open connections before answering 503.",
)
@flag("--behind-proxy", help="Trust X-Forwarded-For/-Proto from the reverse proxy.")
@click.option("--smtp-port", type=int, default=25, help="SMTP port to probe (tests, lab).")
@tls_versions_option
@ca_file_option
@repeatable("--dkim-selector", help="DKIM selector to look up; repeatable.")
@click.option(
    "--mailmode", default=None, help="Enable mail mode (addresses on the home page): its TOML file."
)
@click.option("--public-url", default=None, help="This service's address, for mail mode's auto-reply link.")
@click.option(
    "--watchlist", default=None, metavar="FILE", help="Run the monitor in-process on this watch list (TOML)."
)
def serve_group(
    ctx: click.Context,
    listen: str,
    store: str | None,
    resolver: list[str] | None,
    timeout: float,
    smtp_timeout: float,
    profile: str,
    allow_private: bool,
    fresh_minutes: float,
    client_assessments: int,
    client_window: float,
    max_running: int,
    max_waiting: int,
    assess_workers: int,
    max_connections: int,
    behind_proxy: bool,
    smtp_port: int,
    tls_versions: bool,
    watchlist: str | None,
    ca_file: str | None,
    dkim_selector: list[str] | None,
    mailmode: str | None,
    public_url: str | None,
) -> None:
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from mecsa.cli.assess import _selector
    from mecsa.dns.resolver import ResolverConfigError, parse_nameserver
    from mecsa.observe import AssessOptions
    from mecsa.scoring import ProfileError, load_profile
    from mecsa.store import StoreError, StoreUrlError
    from mecsa.web.app import create_app
    from mecsa.web.settings import ServiceSettings

    host, port = parse_listen(listen)
    ca_bundle_file("--ca-file", ca_file)
    selectors = tuple(_selector(s) for s in dkim_selector or ())
    try:
        for r in resolver or ():
            parse_nameserver(r)
        load_profile(profile)
    except (ResolverConfigError, ProfileError) as exc:
        usage_error(str(exc))
    if public_url is not None and mailmode is None:
        usage_error("--public-url is for mail mode: give --mailmode FILE too")
    mail_config = None
    if mailmode is not None:
        from mecsa.web.mailmode_config import MailModeConfigError, load_mailmode_config

        try:
            mail_config = load_mailmode_config(mailmode, public_url=public_url)
        except MailModeConfigError as exc:
            usage_error(str(exc))
    settings = ServiceSettings(
        mailmode=mail_config,
        store_url=store,
        resolvers=tuple(resolver or ()),
        dns_timeout=timeout,
        profile=profile,
        assess_options=AssessOptions(
            smtp_timeout=smtp_timeout,
            smtp_port=smtp_port,
            tls_versions=tls_versions,
            ca_file=ca_file,
            dkim_selectors=selectors,
        ),
        allow_private=allow_private,
        fresh_minutes=fresh_minutes,
        client_assessments=client_assessments,
        client_window_s=client_window,
        max_running=max_running,
        max_waiting=max_waiting,
        assess_workers=assess_workers,
        behind_proxy=behind_proxy,
        watchlist=watchlist,
    )
    from mecsa.monitor.watchlist import WatchListError

    try:
        app = create_app(settings)
    except (StoreError, StoreUrlError, WatchListError) as exc:
        usage_error(str(exc))
    click.echo(f"mecsa serve: http://{host}:{port}/ (store {app.state.store_url})", err=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        limit_concurrency=max_connections,
        proxy_headers=False,  # the app reads X-Forwarded-* itself, and only with --behind-proxy
        server_header=False,
        log_level="info",
        access_log=False,
    )


def _open(store_url: str | None) -> Store:
    from mecsa.store import StoreError, StoreUrlError, open_store

    try:
        return open_store(store_url)
    except (StoreError, StoreUrlError) as exc:
        usage_error(str(exc))


@serve_group.group("token", no_args_is_help=True)
def token_group() -> None:
    """API tokens: create (prints it once), list, revoke."""


@token_group.command("create")
@click.option("--name", required=True, help="Who or what the token is for.")
@store_option
def token_create(name: str, store: str | None) -> None:
    """Create an API token and print it (only its hash is stored: it cannot be shown again)."""
    from mecsa.store.api_tokens import create_token

    if not name.strip() or len(name) > 100:
        usage_error("--name must be 1 to 100 characters")
    with _open(store) as opened:
        click.echo(create_token(opened, name.strip()))


@token_group.command("list")
@store_option
def token_list(store: str | None) -> None:
    """List the tokens: id, name, first characters, created, revoked."""
    from mecsa.store.api_tokens import list_tokens

    with _open(store) as opened:
        for t in list_tokens(opened):
            revoked = f"revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "active"
            click.echo(f"{t.id}\t{t.name}\t{t.shown}…\t{t.created_at:%Y-%m-%d %H:%M}\t{revoked}")


@token_group.command("revoke")
@click.argument("token_id", type=int, help="The token's id (see `list`).")
@store_option
def token_revoke(token_id: int, store: str | None) -> None:
    """Revoke a token."""
    from mecsa.store.api_tokens import revoke_token

    with _open(store) as opened:
        if not revoke_token(opened, token_id):
            usage_error(f"no active token {token_id}")
        click.echo(f"token {token_id} revoked")
