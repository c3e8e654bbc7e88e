"""`mecsa checks`: the registered checks, their protocols and their findings, from the registry."""

from __future__ import annotations

import json
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `mecsa` app."""
    app.command("checks")(checks_command)


def checks_command(
    json_output: Annotated[bool, typer.Option("--json", help="The catalogue as one JSON object.")] = False,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="The catalogue as Markdown (docs/findings.md).")
    ] = False,
) -> None:
    """List every check, the MECSA protocols it owns and the finding ids it can report."""
    from mecsa.checks.registry import CHECKS

    if json_output:
        typer.echo(json.dumps(catalogue(), indent=2, ensure_ascii=False))
    elif markdown:
        typer.echo(catalogue_markdown(), nl=False)
    else:
        for c in CHECKS:
            typer.echo(f"{c.name:<9} {', '.join(c.protocols) or 'no scored protocol'}: {c.summary}")
            for fid, meaning in c.findings.items():
                typer.echo(f"    {fid:<34} {meaning}")


def catalogue() -> dict[str, dict[str, object]]:
    """{check: {"summary", "protocols", "findings": {id: meaning}}}, in registry order."""
    from mecsa.checks.registry import CHECKS

    return {
        c.name: {"summary": c.summary, "protocols": list(c.protocols), "findings": dict(c.findings)}
        for c in CHECKS
    }


def catalogue_markdown() -> str:
    """The finding catalogue as Markdown; docs/findings.md is this text (a test keeps them equal)."""
    from mecsa.checks.registry import CHECKS

    lines = [
        "# Finding catalogue",
        "",
        "Generated from the check registry by `mecsa checks --markdown`; do not edit by hand.",
        "",
    ]
    for c in CHECKS:
        owns = ", ".join(f"`{p}`" for p in c.protocols) or "no scored protocol"
        lines += [f"## {c.name}", "", f"{c.summary}. Protocols: {owns}.", ""]
        lines += ["| id | meaning |", "| --- | --- |"]
        lines += [f"| `{fid}` | {meaning.replace('|', '/')} |" for fid, meaning in c.findings.items()]
        lines.append("")
    return "\n".join(lines)
