"""`mecsa assess DOMAIN`: domain mode."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from mecsa.cli.common import (
    CaFileOption,
    HtmlOption,
    JsonOption,
    ResolverOption,
    RevocationOption,
    SmtpTimeoutOption,
    TimeoutOption,
    TlsVersionsOption,
    domain_argument,
    input_file,
    make_client,
    output_file,
    run,
    usage_error,
)

if TYPE_CHECKING:
    from mecsa.observe.dmarc import DiscoveryMethod


def register(app: typer.Typer) -> None:
    app.command("assess")(assess_command)


def assess_command(
    domain: Annotated[str, typer.Argument(help="The mail domain to assess (IDNs accepted).")],
    resolver: ResolverOption = None,
    dkim_selector: Annotated[
        list[str] | None, typer.Option("--dkim-selector", help="DKIM selector to look up; repeatable.")
    ] = None,
    json_output: JsonOption = False,
    timeout: TimeoutOption = 2.0,
    only: Annotated[list[str] | None, typer.Option("--only", help="Run only this check; repeatable.")] = None,
    skip: Annotated[list[str] | None, typer.Option("--skip", help="Skip this check; repeatable.")] = None,
    ca_file: CaFileOption = None,
    smtp_timeout: SmtpTimeoutOption = 10.0,
    tls_versions: TlsVersionsOption = True,
    profile: Annotated[
        str, typer.Option("--profile", help="Scoring profile: mecsa (default) or mecsa-st.")
    ] = "mecsa",
    html: HtmlOption = None,
    revocation: RevocationOption = True,
    dmarc_discovery: Annotated[
        str | None,
        typer.Option(
            "--dmarc-discovery",
            help="How to find the DMARC policy: treewalk (RFC 9989) or psl (RFC 7489, as MECSA). "
            "Default: the profile's (mecsa: treewalk, mecsa-st: psl).",
        ),
    ] = None,
) -> None:
    """Assess a domain's receiving side: DNS records, and the transport checks where built."""
    from mecsa.assess import assess
    from mecsa.checks.registry import check_names
    from mecsa.observe import AssessOptions

    name = domain_argument(domain)
    known = set(check_names())
    for chosen in (*(only or ()), *(skip or ())):
        if chosen not in known:
            usage_error(f"unknown check {chosen!r}; known: {', '.join(sorted(known))}")
    discovery = _dmarc_discovery(dmarc_discovery, profile)
    selectors = tuple(_selector(s) for s in dkim_selector or ())
    input_file("--ca-file", ca_file)
    output_file("--html", html)
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
    client = make_client(resolver, timeout)
    result = run(assess(name, client, options))
    if html is not None:
        from mecsa.report.html import render_html

        html.write_text(render_html(result, profile), encoding="utf-8")
    if json_output:
        from mecsa.report.json import render_json

        typer.echo(render_json(result, profile))
    else:
        from mecsa.report.text import render_text, terminal_settings

        typer.echo(render_text(result, profile, **terminal_settings()))


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
