"""`mecsa scan [FILE|-]`: bulk assessment into the store; `mecsa scan report SCAN_ID`: its summary."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mecsa.cli.assess import DISCOVERY_HELP, PROFILE_HELP
from mecsa.cli.common import (
    STORE_HELP,
    ca_file_option,
    exit_with,
    flag,
    input_file,
    make_client,
    output_file,
    path_type,
    repeatable,
    resolver_option,
    revocation_option,
    run,
    smtp_timeout_option,
    timeout_option,
    tls_versions_option,
    usage_error,
)

if TYPE_CHECKING:
    from mecsa.scan.run import ScanRequest
    from mecsa.store import Store

SCAN_HELP = """Assess every domain of a list (FILE, or - for stdin) and keep the results in the store.

FILE has one domain per line (# comments and blank lines are skipped) or is a CSV file whose header
names a `domain` column. A line that is not a domain gives a record with status `error`; it never
stops the scan. Records are written as domains finish: JSONL (the `mecsa assess --json` document
plus `scan_id`) or CSV (domain, the three levels, one status column per protocol).

Politeness, across the whole scan: at most 2 simultaneous SMTP connections per MX address
(--per-ip-connections lowers it), new connections to one address at most --per-ip-rate a second
(default 5), each (MX host, address, port) probed once and its observation shared by every domain
that uses it, MTA-STS policies and DNS answers shared within their TTL.

Ctrl-C stores what is done and exits 130; --resume continues. `mecsa scan report SCAN_ID` prints a
scan's summary (--format text|json|html)."""


@click.command("scan", help=SCAN_HELP, no_args_is_help=False)
@click.argument(
    "source", default="-", metavar="FILE|-", help="The list: a file, or - for stdin; or `report`."
)
@click.argument(
    "scan_id", required=False, default=None, metavar="SCAN_ID", help="With `report`: the scan's id."
)
@click.option(
    "--out", type=path_type(), default=None, help="Write records (or the report) to FILE; default stdout."
)
@click.option(
    "--format",
    "output_format",
    default=None,
    help="jsonl (default) or csv; for `report`: text (default), json or html.",
)
@click.option(
    "--concurrency", type=click.IntRange(min=1, max=10000), default=100, help="Domains assessed at once."
)
@click.option(
    "--workers",
    type=click.IntRange(min=1, max=64),
    default=None,
    help="Worker processes (default: the number of cores).",
)
@click.option(
    "--store",
    default=None,
    help=STORE_HELP,
)
@flag("--resume", help="Continue the newest scan of this list (or --scan ID): skip what it holds.")
@click.option(
    "--scan",
    "resume_id",
    type=click.IntRange(min=1),
    default=None,
    help="With --resume: the scan to continue.",
)
@flag("--summary", help="Print the scan's summary at the end (stderr when records go to stdout).")
@flag("--quiet", "-q", help="No progress display.")
@click.option(
    "--progress-every",
    type=click.FloatRange(min=0.1),
    default=10.0,
    help="Seconds between plain progress lines (stderr not a terminal).",
)
@click.option(
    "--per-ip-connections",
    type=click.IntRange(min=1, max=2),
    default=2,
    help="Simultaneous SMTP connections per MX address (1 or 2).",
)
@click.option(
    "--per-ip-rate",
    type=click.FloatRange(min=0.01, max=100),
    default=5.0,
    help="New SMTP connections per second per MX address.",
)
@resolver_option
@repeatable("--dkim-selector", help="DKIM selector to look up; repeatable.")
@timeout_option
@repeatable("--only", help="Run only this check; repeatable.")
@repeatable("--skip", help="Skip this check; repeatable.")
@ca_file_option
@smtp_timeout_option
@tls_versions_option
@click.option("--profile", default="mecsa", help=PROFILE_HELP)
@revocation_option
@click.option("--dmarc-discovery", default=None, help=DISCOVERY_HELP)
def scan_command(
    source: str,
    scan_id: str | None,
    out: Path | None,
    output_format: str | None,
    concurrency: int,
    workers: int | None,
    store: str | None,
    resume: bool,
    resume_id: int | None,
    summary: bool,
    quiet: bool,
    progress_every: float,
    per_ip_connections: int,
    per_ip_rate: float,
    resolver: list[str] | None,
    dkim_selector: list[str] | None,
    timeout: float,
    only: list[str] | None,
    skip: list[str] | None,
    ca_file: str | None,
    smtp_timeout: float,
    tls_versions: bool,
    profile: str,
    revocation: bool,
    dmarc_discovery: str | None,
) -> None:
    if source == "report":
        _report(scan_id, store, out, output_format or "text")
        return
    if scan_id is not None:
        usage_error(f"unexpected argument {scan_id!r}: give one list (FILE or -)")
    from mecsa.checks.registry import check_names
    from mecsa.cli.assess import _check_profile, _dmarc_discovery, _selector
    from mecsa.observe import AssessOptions
    from mecsa.scan.assessor import ScanConfig
    from mecsa.scan.progress import ProgressDisplay
    from mecsa.scan.run import ScanRequest

    fmt = output_format or "jsonl"
    if fmt not in ("jsonl", "csv"):
        usage_error(f"--format {fmt!r}: a scan writes jsonl or csv")
    if source != "-":
        input_file("FILE", source)
    output_file("--out", out)
    known = set(check_names())
    for chosen in (*(only or ()), *(skip or ())):
        if chosen not in known:
            usage_error(f"unknown check {chosen!r}; known: {', '.join(sorted(known))}")
    _check_profile(profile)
    discovery = _dmarc_discovery(dmarc_discovery, profile)
    input_file("--ca-file", ca_file)
    make_client(resolver, timeout)  # the resolver specs are checked here, before any work
    if resume_id is not None and not resume:
        usage_error("--scan needs --resume")
    options = AssessOptions(
        dkim_selectors=tuple(_selector(s) for s in dkim_selector or ()),
        only=frozenset(only or ()),
        skip=frozenset(skip or ()),
        ca_file=ca_file,
        smtp_timeout=smtp_timeout,
        tls_versions=tls_versions,
        revocation=revocation,
        dmarc_discovery=discovery,
    )
    config = ScanConfig(
        options=options,
        profile=profile,
        resolvers=tuple(resolver or ()),
        dns_timeout=timeout,
        concurrency=concurrency,
        per_ip_connections=per_ip_connections,
        per_ip_rate=per_ip_rate,
    )
    request = ScanRequest(
        source=source,
        config=config,
        output=out,
        output_format=fmt,
        workers=workers or os.cpu_count() or 1,
        resume=resume,
        resume_scan_id=resume_id,
        progress=ProgressDisplay.choose(quiet),
        progress_every=progress_every,
    )
    _scan(request, store, summary)


def _open(store_url: str | None) -> Store:
    from mecsa.store import StoreError, StoreUrlError, open_store

    try:
        return open_store(store_url)
    except (StoreError, StoreUrlError) as exc:
        usage_error(str(exc))


def _scan(request: ScanRequest, store_url: str | None, summary: bool) -> None:
    import sys

    from mecsa.scan.run import scan

    with _open(store_url) as store:
        try:
            result = run(scan(request, store, sys.stdout, sys.stdin))
        except LookupError as exc:
            usage_error(str(exc))
        if summary:
            from mecsa.scan.report import render_text
            from mecsa.store.summary import scan_summary

            found = scan_summary(store, result.scan_id)
            assert found is not None
            text = render_text(found)
            if request.output is None:
                click.echo(text, err=True)
            else:
                click.echo(text)
    counters = result.outcome.counters
    if request.progress != "off":
        from mecsa.scan.progress import describe_end

        state = "interrupted" if result.outcome.interrupted else "finished"
        click.echo(describe_end(result.scan_id, state, counters), err=True)
    if result.outcome.interrupted:
        click.echo(
            f"mecsa: scan {result.scan_id} interrupted after {counters.done} domains; "
            f"continue with --resume --scan {result.scan_id}",
            err=True,
        )
        exit_with(130)


def _report(scan_id: str | None, store_url: str | None, out: Path | None, fmt: str) -> None:
    from mecsa.scan.report import render_html, render_json, render_text
    from mecsa.store.summary import scan_summary

    if scan_id is None or not scan_id.isdigit():
        usage_error("usage: mecsa scan report SCAN_ID [--format text|json|html] [--out FILE]")
    renderers = {"text": render_text, "json": render_json, "html": render_html}
    if fmt not in renderers:
        usage_error(f"--format {fmt!r}: a report is text, json or html")
    output_file("--out", out)
    with _open(store_url) as store:
        found = scan_summary(store, int(scan_id))
    if found is None:
        usage_error(f"the store has no scan {scan_id}")
    text = renderers[fmt](found)
    if out is None:
        click.echo(text)
    else:
        out.write_text(text + ("" if text.endswith("\n") else "\n"), encoding="utf-8")
