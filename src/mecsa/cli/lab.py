"""`mecsa lab`: real DNS and mail servers in network namespaces (root only).

The lab directory defaults to /run/mecsa-lab (or $MECSA_LAB_DIR); `--dir` picks another, so
that several labs can run side by side.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

import click

from mecsa.cli.common import exit_with, flag, path_type

DIR_HELP = "Lab directory (state, configurations, logs). Default: $MECSA_LAB_DIR or /run/mecsa-lab."
dir_option = click.option("--dir", "directory", type=path_type(), default=None, help=DIR_HELP)
PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


@click.group("lab", no_args_is_help=True)
def lab_group() -> None:
    """Real DNS (Knot, Unbound) and mail servers (Postfix + milters) in network namespaces. Needs root."""


def _dir(directory: Path | None) -> Path:
    if directory is not None:
        return directory
    return Path(os.environ.get("MECSA_LAB_DIR", "/run/mecsa-lab"))


def _need_root() -> None:
    if os.geteuid() != 0:
        click.echo(
            "mecsa: error: the lab needs root (it creates network namespaces and runs mail servers)", err=True
        )
        exit_with(2)


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"mecsa: error: {message}", err=True)
    exit_with(code)


@lab_group.command("up")
@click.option(
    "--scenario",
    type=path_type(),
    multiple=True,
    help="Scenario file (TOML); repeatable. Default: top-score.",
)
@flag("--all", "all_shipped", help="Every scenario shipped with mecsa.")
@flag(
    "--mailmode",
    help="Also run `mecsa mailmode serve` for mailmode.test (DANE and MTA-STS traps) and two more "
    "senders: may.test (TLS level may) and nospf.test (not in its SPF).",
)
@dir_option
def up_command(scenario: tuple[Path, ...], all_shipped: bool, mailmode: bool, directory: Path | None) -> None:
    """Bring the lab up: namespaces, Knot, Unbound, MTA-STS server, one Postfix per MX, the DANE sender."""
    _need_root()
    from mecsa.lab.plan import PlanError
    from mecsa.lab.runner import up
    from mecsa.lab.scenario import ScenarioError, shipped_scenarios
    from mecsa.lab.state import LabError

    files = list(scenario or []) + (shipped_scenarios() if all_shipped else [])
    try:
        result = up(files, _dir(directory), mailmode=mailmode)
    except (ScenarioError, PlanError) as exc:
        _fail(str(exc), 2)
    except LabError as exc:
        _fail(str(exc))
    click.echo(f"lab up in {result.seconds:.2f} s: {result.daemons} daemons in {result.directory}")
    for domain in result.domains:
        click.echo(f"  {domain}")
    if mailmode:
        from mecsa.lab.plan import RECEIVER_DOMAIN, RECEIVER_IP, store_file

        click.echo(
            f"mail mode: receiver for {RECEIVER_DOMAIN} on {RECEIVER_IP}:25, "
            f"store {store_file(result.directory)}"
        )
    click.echo("next: mecsa lab assess DOMAIN | mecsa lab send postmaster@DOMAIN | mecsa lab down")


@lab_group.command("down")
@dir_option
@flag("--keep-files", help="Keep the lab directory (logs).")
def down_command(directory: Path | None, keep_files: bool) -> None:
    """Stop every lab process, delete the namespaces and (unless --keep-files) the lab directory."""
    _need_root()
    from mecsa.lab.runner import down

    result = down(_dir(directory), keep_files=keep_files)
    click.echo(
        f"lab down in {result.seconds:.2f} s: {len(result.namespaces)} namespaces, "
        f"{result.killed} processes stopped"
    )
    if result.leftovers:
        _fail("could not remove: " + "; ".join(result.leftovers))


@lab_group.command("status")
@dir_option
def status_command(directory: Path | None) -> None:
    """Show the lab's namespaces, daemons and domains."""
    _need_root()
    from mecsa.lab.runner import status

    click.echo("\n".join(status(_dir(directory))))


@lab_group.command("scenarios")
def scenarios_command() -> None:
    """List the scenarios shipped with mecsa."""
    from mecsa.lab.scenario import load_scenario, shipped_scenarios

    for path in shipped_scenarios():
        sc = load_scenario(path)
        click.echo(f"{sc.name:<24} {sc.domain:<24} {path}")


@lab_group.command("exec", context_settings=PASS_THROUGH)
@click.pass_context
@dir_option
@click.option("--node", default="cli", help="Namespace node: cli, snd, dns, res, web, mxN.")
def exec_command(ctx: click.Context, directory: Path | None, node: str) -> None:
    """Run a command inside the lab (default: the client namespace): mecsa lab exec -- dig top.test MX."""
    _need_root()
    from mecsa.lab.runner import load_state, run_in
    from mecsa.lab.state import LabError

    if not ctx.args:
        _fail("give a command after --, e.g. mecsa lab exec -- dig top.test MX", 2)
    try:
        state = load_state(_dir(directory))
    except LabError as exc:
        _fail(str(exc))
    exit_with(run_in(state, node, ctx.args).returncode)


@lab_group.command("assess", context_settings=PASS_THROUGH)
@click.pass_context
@click.argument("domain", help="A domain of the lab's scenarios.")
@dir_option
def assess_command(ctx: click.Context, domain: str, directory: Path | None) -> None:
    """Run `mecsa assess DOMAIN` inside the lab, with its resolver and CA; other options pass through."""
    _need_root()
    from mecsa.lab.plan import CLIENT_NODE
    from mecsa.lab.runner import load_state, run_in
    from mecsa.lab.state import LabError

    try:
        state = load_state(_dir(directory))
    except LabError as exc:
        _fail(str(exc))
    exit_with(run_in(state, CLIENT_NODE, assess_argv(state.data, domain, ctx.args)).returncode)


def assess_argv(state: dict[str, object], domain: str, extra: list[str]) -> list[str]:
    """`python -m mecsa assess` with the lab's resolver, CA, trust anchor and DKIM selector.

    Each is left out when `extra` gives it.
    """
    from mecsa.cli.assess import assess_command as plain_assess

    accepted = {p.name for p in plain_assess.params}
    argv = [sys.executable, "-m", "mecsa", "assess", domain]
    if not any(a.startswith("--resolver") for a in extra):
        argv += ["--resolver", str(state.get("resolver", "10.53.0.3"))]
    if "ca_file" in accepted and not any(a.startswith("--ca-file") for a in extra):
        argv += ["--ca-file", str(state["ca_file"])]
    anchor = state.get("trust_anchor")
    if anchor and "trust_anchor" in accepted and not any(a.startswith("--trust-anchor") for a in extra):
        argv += ["--trust-anchor", str(anchor)]
    domains = state.get("domains", {})
    info = domains.get(domain.lower().rstrip(".")) if isinstance(domains, dict) else None
    if info and "dkim_selector" in accepted and not any(a.startswith("--dkim-selector") for a in extra):
        argv += ["--dkim-selector", str(info["selector"])]
    return argv + extra


@lab_group.command("send")
@click.argument("recipient", help="Recipient at one of the lab's domains, e.g. bob@top.test.")
@dir_option
@click.option("--timeout", type=float, default=20.0, help="Seconds to wait for delivery.")
@click.option(
    "--sender",
    default="hardened",
    help="hardened (sender.test, DANE), may (may.test) or outsider (nospf.test, not in its SPF).",
)
@flag("--cc-traps", help="Cc the DANE and MTA-STS traps of the recipient's token (mail mode).")
def send_command(recipient: str, directory: Path | None, timeout: float, sender: str, cc_traps: bool) -> None:
    """Send a DKIM-signed message from one of the lab's senders and show how it was delivered.

    For the mail-mode receiver (mailmode.test) the outcome is the sender's log line: there is no
    local mailbox to wait for.
    """
    from mecsa.lab.mailflow import send
    from mecsa.lab.plan import RECEIVER_DOMAIN, SENDERS
    from mecsa.lab.runner import load_state
    from mecsa.lab.state import LabError

    roles = {"hardened": "hardened", "may": "may", "outsider": "not-in-spf", "not-in-spf": "not-in-spf"}
    if sender not in roles:
        _fail(f"--sender must be hardened, may or outsider, not {sender!r}", code=2)
    local, _, domain = recipient.rpartition("@")
    cc: list[str] = []
    if cc_traps:
        if domain.lower() != RECEIVER_DOMAIN:
            _fail(f"--cc-traps needs a mail-mode address <token>@{RECEIVER_DOMAIN}", code=2)
        cc = [f"{local}@dane-trap.{RECEIVER_DOMAIN}", f"{local}@sts-trap.{RECEIVER_DOMAIN}"]
    _need_root()
    try:
        state = load_state(_dir(directory))
        deliveries = send(state, recipient, cc, sender=SENDERS[roles[sender]], timeout=timeout)
    except LabError as exc:
        _fail(str(exc))
    delivery = deliveries[recipient]
    # the first lines keep their shape (scripts read them); Cc'd traps follow, one line each
    click.echo(f"message {delivery.message_id} to {recipient}: {delivery.status} ({delivery.detail})")
    click.echo(f"  DANE-verified TLS: {'yes' if delivery.verified_tls else 'no'}")
    if delivery.maildir_file is not None:
        click.echo(f"  delivered to {delivery.maildir_file}")
        for method, result in sorted(delivery.results().items()):
            click.echo(f"  {method}: {result}")
    for rcpt in cc:
        d = deliveries[rcpt]
        verified = "yes" if d.verified_tls else "no"
        click.echo(f"  cc {rcpt}: {d.status} ({d.detail}); DANE-verified TLS: {verified}")
    if delivery.status != "sent":
        exit_with(1)
