"""`mecsa demo`: the README's first command.

As root with the lab's servers installed, it brings the lab up with the top-score scenario, assesses
its model domain inside the lab, writes the HTML report, sends a mail from the DANE sender to the MX
and shows how it was delivered, then brings the lab down (unless --keep). Elsewhere, or with
--embedded, it assesses a built-in domain served by an in-process DNS server on loopback.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mecsa.cli.common import exit_with, flag, json_option, output_file, path_type, run

if TYPE_CHECKING:
    from mecsa.lab.state import LabState
    from mecsa.model import Assessment

DEFAULT_HTML = Path("mecsa-demo-report.html")


@click.command("demo")
@click.option(
    "--html", type=path_type(dir_okay=False), default=DEFAULT_HTML, help="Where to write the HTML report."
)
@json_option
@flag("--keep", help="Leave the lab running afterwards.")
@flag("--embedded", help="Use the embedded loopback zone even where the lab can run.")
def demo_command(html: Path, json_output: bool, keep: bool, embedded: bool) -> None:
    """Assess the lab's top-score domain with real servers (root), or the embedded demo zone."""
    output_file("--html", html)
    missing = lab_unavailable()
    if embedded or missing:
        if not embedded and not json_output:
            click.echo(f"demo: the lab cannot run here ({missing}); using the embedded demo zone\n")
        _embedded_demo(html, json_output)
    else:
        _lab_demo(html.resolve(), json_output, keep)


def lab_unavailable() -> str | None:
    """Why the lab cannot run on this machine, or None when it can."""
    if os.geteuid() != 0:
        return "not root"
    from mecsa.lab.programs import missing_programs

    absent = missing_programs()
    return f"missing {', '.join(absent)}: run scripts/bootstrap" if absent else None


def _lab_demo(html: Path, json_output: bool, keep: bool) -> None:
    from mecsa.cli.lab import assess_argv
    from mecsa.lab.plan import CLIENT_NODE
    from mecsa.lab.runner import default_scenarios, down, load_state, run_in, up
    from mecsa.lab.state import LabError

    directory = Path(os.environ.get("MECSA_LAB_DIR", "/run/mecsa-lab"))
    try:
        started = up(default_scenarios(), directory)
    except LabError as exc:
        click.echo(f"mecsa: error: {exc}", err=True)
        exit_with(1)
    try:
        domain = started.domains[0]
        say: Callable[[str], None] = (lambda text: click.echo(text, err=True)) if json_output else click.echo
        say(f"demo: lab up in {started.seconds:.2f} s ({started.daemons} daemons); assessing {domain}\n")
        state = load_state(directory)
        extra = ["--html", str(html), *(["--json"] if json_output else [])]
        assessed = run_in(state, CLIENT_NODE, assess_argv(state.data, domain, extra))
        if assessed.returncode != 0:
            exit_with(assessed.returncode)
        say(f"\nHTML report written to {html}\n")
        _show_mail_flow(state, f"postmaster@{domain}", say)
    finally:
        if keep:
            click.echo(f"demo: the lab keeps running in {directory}; `mecsa lab down` stops it", err=True)
        else:
            down(directory)


def _show_mail_flow(state: LabState, recipient: str, say: Callable[[str], None]) -> None:
    from mecsa.lab.mailflow import send

    delivery = send(state, recipient)[recipient]
    results = delivery.results()
    say(f"mail from the DANE sender to {recipient}: {delivery.status} ({delivery.detail})")
    say(f"  DANE-verified TLS: {'yes' if delivery.verified_tls else 'no'}")
    for method in ("spf", "dkim", "dmarc"):
        say(f"  {method}: {results.get(method, 'not found in Authentication-Results')}")
    passed = delivery.verified_tls and all(results.get(m) == "pass" for m in ("spf", "dkim", "dmarc"))
    if delivery.status != "sent" or not passed:
        click.echo("mecsa: error: the lab's mail flow did not pass", err=True)
        exit_with(1)


def _embedded_demo(html: Path, json_output: bool) -> None:
    from mecsa.demo import DEMO_DOMAIN, assess_demo

    result = run(assess_demo())
    if json_output:
        from mecsa.report.json import render_json

        click.echo(render_json(result))
    else:
        from mecsa.report.text import render_text, terminal_settings

        click.echo(
            f"demo: {DEMO_DOMAIN} served from an embedded zone on 127.0.0.1 (signed, validating); "
            "its MX hosts have no SMTP server, so transport checks cannot pass\n"
        )
        click.echo(render_text(result, **terminal_settings()))
    _write_html(result, html)


def _write_html(result: Assessment, path: Path) -> None:
    from mecsa.report.html import render_html

    path.write_text(render_html(result), encoding="utf-8")
    click.echo(f"HTML report written to {path}", err=True)
