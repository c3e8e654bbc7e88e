"""`mecsa serve`: the web service (pages and REST API); `mecsa serve token create|list|revoke`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from mecsa.cli.common import ResolverOption, SmtpTimeoutOption, TimeoutOption, usage_error

if TYPE_CHECKING:
    from mecsa.store import Store

SERVE_HELP = """Run the web service: the home page, live assessments, reports, domain history, statistics,
scans, and the REST API under /api/v1 (OpenAPI document at /api/v1/openapi.json).

Abuse controls: a domain assessed within --fresh-minutes gets the stored result; each client address
may start --client-assessments new assessments per --client-window seconds; at most --max-running
run at once (and --max-waiting wait); request bodies are bounded; targets whose hosts resolve to
private, loopback or link-local addresses are refused unless --allow-private (the lab, tests).
API tokens (for scans and forced re-assessments) are made with `mecsa serve token create`.
With --watchlist FILE the service runs the monitor in-process (as `mecsa monitor daemon`); its
watch list and alerts are on /monitor, the ingested reports on /reports (both need a token).
Behind a reverse proxy, pass --behind-proxy (see docs/web.md)."""

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="The store: a SQLite file or postgresql://... URL "
        "(default: $MECSA_STORE, else ~/.local/share/mecsa/store.sqlite).",
    ),
]

serve_app = typer.Typer(help=SERVE_HELP, no_args_is_help=False, rich_markup_mode=None)
token_app = typer.Typer(help="API tokens: create (prints it once), list, revoke.", no_args_is_help=True)
serve_app.add_typer(token_app, name="token")


def register(app: typer.Typer) -> None:
    app.add_typer(serve_app, name="serve")


def parse_listen(text: str) -> tuple[str, int]:
    """ADDR:PORT, [IPv6]:PORT, or :PORT for 127.0.0.1."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        usage_error(f"--listen {text!r}: give ADDR:PORT, e.g. 127.0.0.1:8080")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


@serve_app.callback(invoke_without_command=True)
def serve_command(
    ctx: typer.Context,
    listen: Annotated[str, typer.Option("--listen", help="ADDR:PORT to listen on.")] = "127.0.0.1:8080",
    store: StoreOption = None,
    resolver: ResolverOption = None,
    timeout: TimeoutOption = 2.0,
    smtp_timeout: SmtpTimeoutOption = 10.0,
    profile: Annotated[str, typer.Option("--profile", help="Scoring profile: mecsa or mecsa-st.")] = "mecsa",
    allow_private: Annotated[
        bool,
        typer.Option("--allow-private", help="Allow targets on private, loopback or link-local addresses."),
    ] = False,
    fresh_minutes: Annotated[
        float, typer.Option("--fresh-minutes", help="Return a stored result younger than this.", min=0)
    ] = 10.0,
    client_assessments: Annotated[
        int,
        typer.Option("--client-assessments", help="New assessments per client address per window.", min=1),
    ] = 10,
    client_window: Annotated[
        float, typer.Option("--client-window", help="The rate-limit window in seconds.", min=1)
    ] = 600.0,
    max_running: Annotated[int, typer.Option("--max-running", help="Assessments at once.", min=1)] = 4,
    max_waiting: Annotated[int, typer.Option("--max-waiting", help="Assessments waiting.", min=0)] = 16,
    max_connections: Annotated[
        int, typer.Option("--max-connections", help="Open connections before answering 503.", min=1)
    ] = 1000,
    behind_proxy: Annotated[
        bool, typer.Option("--behind-proxy", help="Trust X-Forwarded-For/-Proto from the reverse proxy.")
    ] = False,
    smtp_port: Annotated[int, typer.Option("--smtp-port", help="SMTP port to probe (tests, lab).")] = 25,
    tls_versions: Annotated[
        bool, typer.Option("--tls-versions/--no-tls-versions", help="Sweep TLS versions and weak ciphers.")
    ] = True,
    watchlist: Annotated[
        str | None,
        typer.Option(
            "--watchlist", help="Run the monitor in-process on this watch list (TOML).", metavar="FILE"
        ),
    ] = None,
) -> None:
    """Run the web service."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from mecsa.dns.resolver import ResolverConfigError, parse_nameserver
    from mecsa.observe import AssessOptions
    from mecsa.scoring import ProfileError, load_profile
    from mecsa.store import StoreError, StoreUrlError
    from mecsa.web.app import create_app
    from mecsa.web.settings import ServiceSettings

    host, port = parse_listen(listen)
    try:
        for r in resolver or ():
            parse_nameserver(r)
        load_profile(profile)
    except (ResolverConfigError, ProfileError) as exc:
        usage_error(str(exc))
    settings = ServiceSettings(
        store_url=store,
        resolvers=tuple(resolver or ()),
        dns_timeout=timeout,
        profile=profile,
        assess_options=AssessOptions(
            smtp_timeout=smtp_timeout, smtp_port=smtp_port, tls_versions=tls_versions
        ),
        allow_private=allow_private,
        fresh_minutes=fresh_minutes,
        client_assessments=client_assessments,
        client_window_s=client_window,
        max_running=max_running,
        max_waiting=max_waiting,
        behind_proxy=behind_proxy,
        watchlist=watchlist,
    )
    from mecsa.monitor.watchlist import WatchListError

    try:
        app = create_app(settings)
    except (StoreError, StoreUrlError, WatchListError) as exc:
        usage_error(str(exc))
    import sys

    # Assessments run on a second thread (web/worker.py); a shorter GIL switch interval lets the
    # serving thread take the interpreter back sooner while they compute (measured: bench_web.py).
    sys.setswitchinterval(0.001)
    typer.echo(f"mecsa serve: http://{host}:{port}/ (store {app.state.store_url})", err=True)
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


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option("--name", help="Who or what the token is for.")],
    store: StoreOption = None,
) -> None:
    """Create an API token and print it (only its hash is stored: it cannot be shown again)."""
    from mecsa.store.api_tokens import create_token

    if not name.strip() or len(name) > 100:
        usage_error("--name must be 1 to 100 characters")
    with _open(store) as opened:
        typer.echo(create_token(opened, name.strip()))


@token_app.command("list")
def token_list(store: StoreOption = None) -> None:
    """List the tokens: id, name, first characters, created, revoked."""
    from mecsa.store.api_tokens import list_tokens

    with _open(store) as opened:
        for t in list_tokens(opened):
            revoked = f"revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "active"
            typer.echo(f"{t.id}\t{t.name}\t{t.shown}…\t{t.created_at:%Y-%m-%d %H:%M}\t{revoked}")


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(help="The token's id (see `list`).")], store: StoreOption = None
) -> None:
    """Revoke a token."""
    from mecsa.store.api_tokens import revoke_token

    with _open(store) as opened:
        if not revoke_token(opened, token_id):
            usage_error(f"no active token {token_id}")
        typer.echo(f"token {token_id} revoked")
