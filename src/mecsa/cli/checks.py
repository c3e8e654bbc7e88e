"""`mecsa checks`: the registered checks, their protocols and their findings, from the registry."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from mecsa.cli.common import flag

if TYPE_CHECKING:
    from mecsa.model import FindingKind


@click.command("checks")
@flag("--json", "json_output", help="The catalogue as one JSON object.")
@flag("--markdown", help="The catalogue as Markdown (docs/findings.md).")
@flag("--schema", help="The JSON schema of `assess --json`, its protocol list from the registry.")
def checks_command(json_output: bool, markdown: bool, schema: bool) -> None:
    """List every check, the MECSA protocols it owns and the finding ids it can report."""
    from mecsa.checks.base import declared_kinds
    from mecsa.checks.registry import CHECKS

    if schema:
        click.echo(json.dumps(derived_schema(), indent=2, ensure_ascii=False))
    elif json_output:
        click.echo(json.dumps(catalogue(), indent=2, ensure_ascii=False))
    elif markdown:
        click.echo(catalogue_markdown(), nl=False)
    else:
        for c in CHECKS:
            click.echo(f"{c.name:<9} {', '.join(c.protocols) or 'no scored protocol'}: {c.summary}")
            for kind in declared_kinds(c):
                click.echo(f"    {kind.id:<34} {kind.status.value:<14} {kind.meaning}")


def catalogue() -> dict[str, dict[str, object]]:
    """{check: {"summary", "protocols", "findings": {id: meaning}, "declared": [...]}}, in registry order.

    `findings` is the original id -> meaning map; `declared` adds each declaration's status,
    protocol and remediation key (an id may be declared with two statuses, e.g. `dkim.revoked`).
    """
    from mecsa.checks.base import declared_kinds
    from mecsa.checks.registry import CHECKS

    return {
        c.name: {
            "summary": c.summary,
            "protocols": list(c.protocols),
            "findings": _meanings(declared_kinds(c)),
            "declared": [
                {
                    "id": k.id,
                    "status": k.status.value,
                    "protocol": k.protocol,
                    "meaning": k.meaning,
                    "remediation": k.remedy,
                }
                for k in declared_kinds(c)
            ],
        }
        for c in CHECKS
    }


def _meanings(kinds: tuple[FindingKind, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for kind in kinds:
        out.setdefault(kind.id, kind.meaning)
    return out


def catalogue_markdown() -> str:
    """The finding catalogue as Markdown; docs/findings.md is this text (a test keeps them equal)."""
    from mecsa.checks.base import declared_kinds
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
        lines += ["| id | status | protocol | meaning | fix |", "| --- | --- | --- | --- | --- |"]
        lines += [
            f"| `{k.id}` | {k.status.value} | {k.protocol} | {k.meaning.replace('|', '/')} | "
            f"{f'`{k.remedy}`' if k.remedy else ''} |"
            for k in declared_kinds(c)
        ]
        lines.append("")
    return "\n".join(lines)


def derived_schema() -> dict[str, object]:
    """The committed JSON schema with its protocol list derived from the registry.

    The committed file (src/mecsa/report/assessment.schema.json) must equal this; a test checks it.
    Regenerate with: `mecsa checks --schema > src/mecsa/report/assessment.schema.json`.
    """
    from importlib.resources import files

    from mecsa.checks.registry import schema_lists

    text = files("mecsa.report").joinpath("assessment.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    schema["$defs"]["protocol"]["enum"] = list(schema_lists()["protocols"])
    return schema
