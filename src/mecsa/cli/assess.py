"""`mecsa assess DOMAIN`: domain mode."""

from __future__ import annotations

from typing import Annotated

import typer

from mecsa.cli.common import RESOLVER_HELP, domain_argument, make_client, run, usage_error


def register(app: typer.Typer) -> None:
    app.command("assess")(assess_command)


def assess_command(
    domain: Annotated[str, typer.Argument(help="The mail domain to assess (IDNs accepted).")],
    resolver: Annotated[list[str] | None, typer.Option("--resolver", help=RESOLVER_HELP)] = None,
    dkim_selector: Annotated[
        list[str] | None, typer.Option("--dkim-selector", help="DKIM selector to look up; repeatable.")
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object and nothing else.")
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for each DNS reply.", min=0.1)
    ] = 2.0,
    only: Annotated[list[str] | None, typer.Option("--only", help="Run only this check; repeatable.")] = None,
    skip: Annotated[list[str] | None, typer.Option("--skip", help="Skip this check; repeatable.")] = None,
) -> None:
    """Assess a domain's receiving side: DNS records, and the transport checks where built."""
    from mecsa.assess import assess
    from mecsa.checks.base import AssessOptions
    from mecsa.checks.registry import check_names

    name = domain_argument(domain)
    known = set(check_names())
    for chosen in (*(only or ()), *(skip or ())):
        if chosen not in known:
            usage_error(f"unknown check {chosen!r}; known: {', '.join(sorted(known))}")
    selectors = tuple(_selector(s) for s in dkim_selector or ())
    options = AssessOptions(dkim_selectors=selectors, only=frozenset(only or ()), skip=frozenset(skip or ()))
    client = make_client(resolver, timeout)
    result = run(assess(name, client, options))
    if json_output:
        from mecsa.report.json import render_json

        typer.echo(render_json(result))
    else:
        from mecsa.report.text import render_text

        typer.echo(render_text(result))


def _selector(text: str) -> str:
    from mecsa.domain import DomainError, normalise_domain

    try:
        # a selector is one or more DNS labels (RFC 6376 §3.1)
        return normalise_domain(text + ".x").removesuffix(".x")
    except DomainError:
        usage_error(f"bad DKIM selector {text!r}")
