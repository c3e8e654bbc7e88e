"""`mecsa reports`: ingest DMARC aggregate and TLS reports, show them, and re-check their failures live."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mecsa.cli.common import (
    STORE_HELP,
    ca_file_option,
    domain_argument,
    flag,
    html_option,
    input_file,
    json_option,
    make_client,
    output_file,
    path_type,
    resolver_option,
    run,
    smtp_timeout_option,
    timeout_option,
    usage_error,
)

if TYPE_CHECKING:
    from mecsa.reports.intake import IngestItem

store_option = click.option(
    "--store",
    default=None,
    help=STORE_HELP,
)
_DURATION = re.compile(r"(\d+)\s*([dhm])")


@click.group("reports", no_args_is_help=True)
def reports_group() -> None:
    """DMARC aggregate (RFC 9990) and SMTP TLS (RFC 8460) reports: ingest, show, re-check."""


def parse_since(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """`7d`, `24h`, `30m`, `YYYY-MM-DD` or an ISO date-time (UTC unless it says otherwise)."""
    now = now or dt.datetime.now(dt.UTC)
    match = _DURATION.fullmatch(text.strip().lower())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        unit_name = {"d": "days", "h": "hours", "m": "minutes"}[unit]
        return now - dt.timedelta(**{unit_name: amount})
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        usage_error(f"--since {text!r}: give 7d, 24h, 30m, YYYY-MM-DD or an ISO date-time")
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def _imap_password(password_file: str | None) -> str:
    if password_file is not None:
        input_file("--imap-password-file", password_file)
        return Path(password_file).read_text(encoding="utf-8").rstrip("\r\n")
    password = os.environ.get("MECSA_IMAP_PASSWORD")
    if password is None:
        usage_error("--imap needs a password: set MECSA_IMAP_PASSWORD or give --imap-password-file")
    return password


def _item_line(item: IngestItem) -> str:
    from mecsa.reports.render import safe

    what = f"{item.kind.value} " if item.kind else ""
    who = f" {safe(item.org)} {safe(item.report_id)}" if item.org else ""
    domain = f" for {safe(item.domain)}" if item.domain else ""
    detail = f": {safe(item.error)}" if item.error else (f" ({item.records} rows)" if item.records else "")
    return f"{item.status.value:9} {what}{safe(item.source)}{who}{domain}{detail}"


def _open(store: str | None) -> Any:
    from mecsa.reports.storage import ReportStore
    from mecsa.store import StoreError, StoreUrlError

    try:
        return ReportStore.open(store)
    except (StoreError, StoreUrlError) as exc:
        usage_error(str(exc))


@reports_group.command("ingest")
@click.argument(
    "paths",
    nargs=-1,
    type=path_type(),
    help="Report files (.xml, .xml.gz, .zip, .json, .json.gz), mails, mbox files, Maildirs.",
)
@click.option(
    "--imap", default=None, help="imaps://USER@HOST[:PORT]/MAILBOX (password: MECSA_IMAP_PASSWORD)."
)
@click.option("--imap-password-file", default=None, help="File holding the IMAP password.")
@click.option("--imap-search", default="ALL", help="IMAP search keys, e.g. ALL or UNSEEN.")
@ca_file_option
@store_option
@json_option
def ingest_command(
    paths: tuple[Path, ...],
    imap: str | None,
    imap_password_file: str | None,
    imap_search: str,
    ca_file: str | None,
    store: str | None,
    json_output: bool,
) -> None:
    """Ingest reports into the store: each report is stored, a duplicate, or an error with its reason."""
    import json

    from mecsa.reports.imap import ImapError, fetch_messages, parse_imap_url
    from mecsa.reports.intake import Intake, ItemStatus

    if not paths and imap is None:
        usage_error("give at least one PATH or --imap URL")
    for path in paths or []:
        if not path.exists():
            usage_error(f"{path}: no such file or directory")
    source = None
    password = ""
    if imap is not None:
        try:
            source = parse_imap_url(imap, imap_search.upper())
        except ValueError as exc:
            usage_error(f"--imap: {exc}")
        password = _imap_password(imap_password_file)
    input_file("--ca-file", ca_file)
    opened = _open(store)
    items: list[Any] = []
    try:
        intake = Intake(opened)
        for path in paths or []:
            for item in intake.path(path):
                items.append(item)
                if not json_output:
                    click.echo(_item_line(item))
        if source is not None:
            import ssl

            context = ssl.create_default_context(cafile=ca_file)
            try:
                mails = fetch_messages(source, password, context, max_message=intake.limits.max_message)
                for item in intake.messages(mails):
                    items.append(item)
                    if not json_output:
                        click.echo(_item_line(item))
            except ImapError as exc:
                usage_error(str(exc))
    finally:
        opened.close()
    counts = {s.value: sum(1 for i in items if i.status is s) for s in ItemStatus}
    if json_output:
        click.echo(json.dumps({"items": [i.to_json() for i in items], "counts": counts}, sort_keys=True))
    else:
        click.echo(f"{counts['stored']} stored, {counts['duplicate']} duplicates, {counts['error']} errors")


@reports_group.command("show")
@click.option("--domain", default=None, help="Only this policy domain.")
@click.option("--since", default=None, help="Only reports ending after: 7d, 24h, YYYY-MM-DD, ISO time.")
@store_option
@json_option
@html_option
@flag("--dns/--no-dns", default=True, help="Look up reverse names and the domain's SPF for the groups.")
@flag("--join/--no-join", help="Re-check each failure class live (assess, SPF) and print its fix.")
@resolver_option
@timeout_option
@ca_file_option
@smtp_timeout_option
@click.option("--smtp-port", type=click.IntRange(min=1), default=25, help="SMTP port of the MX hosts.")
def show_command(
    domain: str | None,
    since: str | None,
    store: str | None,
    json_output: bool,
    html: Path | None,
    dns: bool,
    join: bool,
    resolver: list[str] | None,
    timeout: float,
    ca_file: str | None,
    smtp_timeout: float,
    smtp_port: int,
) -> None:
    """Show the stored reports (text, --json, --html FILE); --join re-checks their failures now."""
    from mecsa.observe.context import AssessOptions
    from mecsa.reports.render import render_html, render_json, render_text
    from mecsa.store import resolve_store_url

    window_domain = domain_argument(domain) if domain else None
    window_since = parse_since(since) if since else None
    output_file("--html", html)
    input_file("--ca-file", ca_file)
    try:
        url = resolve_store_url(store)
    except ValueError as exc:
        usage_error(str(exc))
    if url.get_backend_name() == "sqlite" and not Path(str(url.database)).is_file():
        usage_error(f"--store {url.database}: no store there (run mecsa reports ingest first)")
    client = make_client(resolver, timeout) if (dns or join) else None
    options = AssessOptions(ca_file=ca_file, smtp_timeout=smtp_timeout, smtp_port=smtp_port)
    opened = _open(store)
    try:
        view, joined = run(_show(opened, window_domain, window_since, client, dns, join, options))
    finally:
        opened.close()
    if html is not None:
        html.write_text(render_html(view, joined), encoding="utf-8")
    if json_output:
        click.echo(render_json(view, joined))
    else:
        click.echo(render_text(view, joined), nl=False)


async def _show(
    store: Any,
    domain: str | None,
    since: dt.datetime | None,
    client: Any,
    dns: bool,
    join: bool,
    options: Any,
) -> tuple[Any, Any]:
    from mecsa.dns.resolver import Resolver
    from mecsa.reports.join import join as join_reports
    from mecsa.reports.lookups import reverse_names, spf_membership
    from mecsa.reports.views import Window, build_view, dmarc_failing_sources, dmarc_source_ips

    window = Window(domain, since)
    spf: dict[Any, Any] = {}
    reverse: dict[str, str | None] = {}
    if dns and client is not None:
        resolver = Resolver(client)
        spf = await spf_membership(resolver, dmarc_failing_sources(store, window))
        reverse = await reverse_names(resolver, dmarc_source_ips(store, window))
    view = build_view(store, window, spf, reverse)
    joined = await join_reports(store, view, client, options) if join and client is not None else ()
    return view, joined
