"""`mecsa demo`: assess a built-in, well-configured domain served on loopback (until the lab exists)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mecsa.cli.common import JsonOption, output_file, run

if TYPE_CHECKING:
    from mecsa.model import Assessment


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `mecsa` app."""
    app.command("demo")(demo_command)


def demo_command(
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write an HTML report to this file.", dir_okay=False)
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Assess the demo domain mecsa-demo.test, served by an in-process DNS server on 127.0.0.1.

    Its MX hosts are loopback addresses with no SMTP server, so the transport checks report errors.
    """
    from mecsa.demo import DEMO_DOMAIN, assess_demo

    output_file("--html", html)
    result = run(assess_demo())
    if json_output:
        from mecsa.report.json import render_json

        typer.echo(render_json(result))
    else:
        from mecsa.report.text import render_text

        typer.echo(
            f"demo: {DEMO_DOMAIN} served from an embedded zone on 127.0.0.1 (signed, validating); "
            "its MX hosts have no SMTP server, so transport checks cannot pass\n"
        )
        typer.echo(render_text(result))
    if html is not None:
        _write_html(result, html)


def _write_html(result: Assessment, path: Path) -> None:
    from mecsa.report.html import render_html

    path.write_text(render_html(result), encoding="utf-8")
    typer.echo(f"HTML report written to {path}", err=True)
