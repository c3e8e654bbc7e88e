"""`mecsa assess DOMAIN`: domain mode."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from mecsa.cli.common import (
    ca_bundle_opens,
    ca_bundle_parses,
    ca_file_option,
    dnssec_mode_option,
    domain_argument,
    html_option,
    json_option,
    load_trust_anchor,
    make_client,
    output_file,
    repeatable,
    resolver_option,
    revocation_option,
    run,
    smtp_timeout_option,
    timeout_option,
    tls_versions_option,
    trust_anchor_option,
    usage_error,
)

if TYPE_CHECKING:
    import asyncio

    from mecsa.observe.dmarc import DiscoveryMethod
    from mecsa.probes.https import Attempt, FetchFailure, HttpsAnswer
    from mecsa.probes.https_helper import HelperProcess

    Outcome = HttpsAnswer | FetchFailure

PROFILE_HELP = "Scoring profile: mecsa (default) or mecsa-st."
DISCOVERY_HELP = (
    "How to find the DMARC policy: treewalk (RFC 9989) or psl (RFC 7489, as MECSA). "
    "Default: the profile's (mecsa: treewalk, mecsa-st: psl)."
)


@click.command("assess")
@click.argument("domain", help="The mail domain to assess (IDNs accepted).")
@resolver_option
@repeatable("--dkim-selector", help="DKIM selector to look up; repeatable.")
@json_option
@timeout_option
@repeatable("--only", help="Run only this check; repeatable.")
@repeatable("--skip", help="Skip this check; repeatable.")
@ca_file_option
@smtp_timeout_option
@tls_versions_option
@click.option("--profile", default="mecsa", help=PROFILE_HELP)
@html_option
@revocation_option
@click.option("--dmarc-discovery", default=None, help=DISCOVERY_HELP)
@dnssec_mode_option
@trust_anchor_option
def assess_command(
    domain: str,
    resolver: list[str] | None,
    dkim_selector: list[str] | None,
    json_output: bool,
    timeout: float,
    only: list[str] | None,
    skip: list[str] | None,
    ca_file: str | None,
    smtp_timeout: float,
    tls_versions: bool,
    profile: str,
    html: Path | None,
    revocation: bool,
    dmarc_discovery: str | None,
    dnssec_mode: str,
    trust_anchor: str | None,
) -> None:
    """Assess a domain's receiving side: DNS records, and the transport checks where built."""
    from mecsa.checks.registry import check_names

    name = domain_argument(domain)
    known = set(check_names())
    for chosen in (*(only or ()), *(skip or ())):
        if chosen not in known:
            usage_error(f"unknown check {chosen!r}; known: {', '.join(sorted(known))}")
    from mecsa.cli.head_start import arguments_pass, head_start, selected
    from mecsa.dns.features import settle as settle_dnspython_features
    from mecsa.probes import https_helper

    checks = selected(known, only or (), skip or ())
    ready = arguments_pass(timeout, dnssec_mode, dmarc_discovery, profile)
    # The MTA-STS policy requests are made by a second process, on another core (their imports
    # and TLS would cost this one ~50 ms). Started first, so that its start-up (~150 ms) is over
    # when they are due; it sends nothing until asked, so a usage error still asks nothing.
    with https_helper.started(ca_file, enabled=ready and "mta-sts" in checks) as helper:
        selectors = tuple(_selector(s) for s in dkim_selector or ())
        ca_bundle_opens("--ca-file", ca_file)  # the cryptography half runs once it is imported
        output_file("--html", html)
        # Before dnspython's first import (the trust anchor's, else the DNS stack's): its feature
        # checks would read two packages' metadata (~10 ms).
        settle_dnspython_features()
        anchors = load_trust_anchor(trust_anchor)
        # Before the DNS stack is imported (~100 ms): the critical path's first two questions, once
        # the arguments checked after that import are known to pass (a usage error asks nothing).
        with head_start(name, resolver, checks, dnssec_mode, enabled=ready):
            from mecsa.observe import AssessOptions

            discovery = _dmarc_discovery(dmarc_discovery, profile)
            options = AssessOptions(
                dkim_selectors=selectors,
                only=frozenset(only or ()),
                skip=frozenset(skip or ()),
                ca_file=ca_file,
                smtp_timeout=smtp_timeout,
                tls_versions=tls_versions,
                revocation=revocation,
                dmarc_discovery=discovery,
            )
            client = make_client(resolver, timeout, dnssec_mode, trust_anchor, anchors=anchors)
            # Only the DNS stack is imported so far: the first questions go out now, and the checks,
            # scoring and the renderers are imported while they are answered (mecsa.cli.early).
            from mecsa.cli.early import assess_early

            renderers: tuple[str, ...] = ("mecsa.report.json",) if json_output else ("mecsa.report.text",)
            renderers += ("mecsa.report.html",) if html is not None else ()
            renderers += ("cryptography.x509",) if ca_file is not None else ()
            import asyncio

            imported = asyncio.Event()  # bound to the loop `run` makes, at its first wait
            result = run(
                assess_early(
                    name,
                    client,
                    options,
                    check_names(),
                    extra_modules=renderers,
                    before_assess=lambda: ca_bundle_parses("--ca-file", ca_file),
                    on_stage=lambda stage: imported.set() if stage == "imported" else None,
                    https_attempt=_remote_attempt(helper, ca_file, imported),
                )
            )
            if html is not None:
                from mecsa.report.html import render_html

                html.write_text(render_html(result, profile), encoding="utf-8")
            if json_output:
                from mecsa.report.json import render_json

                click.echo(render_json(result, profile))
            else:
                from mecsa.report.text import render_text, terminal_settings

                click.echo(render_text(result, profile, **terminal_settings()))


def _remote_attempt(
    helper: HelperProcess | None, ca_file: str | None, imported: asyncio.Event
) -> Attempt | None:
    """The helper's side of the MTA-STS requests (None without a helper: they are made here).

    Once the helper is gone they are made here, but not before `imported` is set: the early
    start asks for the policy while its importer thread runs, and the in-process client imports
    httpx, which this thread must not do meanwhile (mecsa.cli.early: one importing thread).
    """
    if helper is None:
        return None
    from mecsa.probes.https_remote import RemoteAttempt

    def in_process() -> Attempt:  # once the helper is gone: built then, not before
        built: list[Attempt] = []

        async def attempt(host: str, shown_port: str, address: str, port: int, path: str) -> Outcome:
            await imported.wait()
            if not built:
                from mecsa.observe.mta_sts import in_process_attempt

                built.append(in_process_attempt(ca_file))
            return await built[0](host, shown_port, address, port, path)

        return attempt

    return RemoteAttempt(helper, in_process)


def _check_profile(name: str) -> None:
    from mecsa.scoring import ProfileError, load_profile

    try:
        load_profile(name)
    except ProfileError as exc:
        usage_error(str(exc))


def _dmarc_discovery(chosen: str | None, profile: str) -> DiscoveryMethod:
    """`--dmarc-discovery`, else the profile's own method (checks the profile name too)."""
    from mecsa.observe.dmarc import DiscoveryMethod
    from mecsa.scoring import load_profile

    _check_profile(profile)
    text = chosen if chosen is not None else load_profile(profile).dmarc_discovery
    try:
        return DiscoveryMethod(text)
    except ValueError:
        usage_error(f"--dmarc-discovery must be treewalk or psl, not {text!r}")


def _selector(text: str) -> str:
    from mecsa.domain import DomainError, normalise_domain

    try:
        # a selector is one or more DNS labels (RFC 6376 §3.1)
        return normalise_domain(text + ".x").removesuffix(".x")
    except DomainError:
        usage_error(f"bad DKIM selector {text!r}")
