"""`mecsa monitor run|daemon|alerts`: re-assess watched domains on a schedule and alert on breaks."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mecsa.cli.common import STORE_HELP, exit_with, flag, path_type, run, usage_error

if TYPE_CHECKING:
    from mecsa.monitor.run import PassResult
    from mecsa.monitor.watchlist import WatchList
    from mecsa.store import Store

MONITOR_HELP = """Re-assess the domains of a watch list (TOML) on their schedule, into the store, and alert.

Alerts come from the difference between a domain's new assessment and its earlier stored ones, and
from what the assessment predicts: a level dropped, a protocol went from pass to fail or error, a
failing finding appeared (or cleared: a "resolved"), a certificate expires within expiry_days
(default 21) on any MX address, the key changed with no TLSA for it, a renewal is near with no TLSA
for the next key, the MTA-STS policy text changed without its id, the MX set or its addresses
changed, an MX address did not answer on port 25 in two passes in a row. Each carries its evidence
and the exact fix. Notifiers: stdout, email (SMTP with STARTTLS), webhook (JSON POST, HMAC-signed);
an alert is not resent until it changes or clears, and each notifier has an hourly limit.
With `reports = true` in the watch list, the DMARC and TLS reports ingested into the store raise
alerts too: an unknown sending source, a TLS failure rate above tls_failure_threshold."""

watch_option = click.option(
    "--watch", type=path_type(), required=True, metavar="FILE", help="The watch list (TOML)."
)
store_option = click.option(
    "--store",
    default=None,
    help=STORE_HELP,
)


@click.group("monitor", help=MONITOR_HELP, no_args_is_help=True)
def monitor_group() -> None:
    pass


def _load(path: Path) -> WatchList:
    from mecsa.monitor.watchlist import WatchListError, load_watchlist

    try:
        return load_watchlist(path)
    except WatchListError as exc:
        usage_error(str(exc))


def _open(store_url: str | None) -> Store:
    from mecsa.store import StoreError, StoreUrlError, open_store

    try:
        return open_store(store_url)
    except (StoreError, StoreUrlError) as exc:
        usage_error(str(exc))


@monitor_group.command(
    "run", help="One pass (for cron or a systemd timer): exit 0 all well, 1 on an alert, 2 on error."
)
@watch_option
@store_option
@flag("--all", "force", help="Assess every domain now, due or not.")
@flag("--quiet", help="No summary line on stderr.")
def run_command(watch: Path, store: str | None, force: bool, quiet: bool) -> None:
    from mecsa.monitor.run import run_pass, summary_lines

    watchlist = _load(watch)
    with _open(store) as opened:
        result = run(run_pass(watchlist, opened, force=force))
    for line in summary_lines(result):
        if not quiet or "error" in line:
            click.echo(line, err=True)
    exit_with(result.exit_code)


@monitor_group.command(
    "daemon", help="Stay up and run the passes as the domains fall due (Ctrl-C or SIGTERM stops)."
)
@watch_option
@store_option
def daemon_command(watch: Path, store: str | None) -> None:
    import asyncio
    import signal

    from mecsa.monitor.run import run_daemon, summary_lines

    watchlist = _load(watch)

    async def main(opened: Store) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

        def report(result: PassResult) -> None:
            for line in summary_lines(result):
                click.echo(line, err=True)

        await run_daemon(watchlist, opened, stop, on_pass=report)

    with _open(store) as opened:
        run(main(opened))


@monitor_group.command("alerts", help="List the stored alerts (newest first).")
@store_option
@click.option("--domain", default=None, help="Only this domain's alerts.")
@click.option("--state", default=None, help="open, resolved or event.")
@flag("--json", "as_json", help="One JSON array.")
def alerts_command(store: str | None, domain: str | None, state: str | None, as_json: bool) -> None:
    from mecsa.monitor.notify import clean
    from mecsa.monitor.state import alerts

    if state not in (None, "open", "resolved", "event"):
        usage_error(f"--state must be open, resolved or event, not {state!r}")
    with _open(store) as opened:
        found = alerts(opened, domain, state)
    if as_json:
        sys.stdout.write(json.dumps([a.to_json() for a in found], ensure_ascii=False, indent=1) + "\n")
        return
    for a in found:
        click.echo(f"{a.first_seen:%Y-%m-%d %H:%M} {a.state:8} {a.alert.domain} {clean(a.alert.message)}")
