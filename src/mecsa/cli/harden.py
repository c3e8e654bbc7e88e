"""`mecsa harden`: plan, apply and publish the top-score Postfix setup (see mecsa.harden)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mecsa.cli.common import Decorator, exit_with, flag, path_type, repeatable, usage_error
from mecsa.report.untrusted import escape_untrusted

if TYPE_CHECKING:
    from mecsa.harden.layout import Layout
    from mecsa.harden.settings import HardenSettings

config_option = click.option(
    "--config", type=path_type(), default=None, help="TOML settings file (see mecsa/harden/example.toml)."
)
root_option = click.option(
    "--root", type=path_type(), default=Path("/"), help="Directory the system's files live under."
)

# The settings flags, by parameter name; every one defaults to None (= take it from --config).
SETTINGS_OPTIONS: dict[str, Decorator[Any]] = {
    "domain": click.option("--domain", default=None, help="The mail domain."),
    "mx_host": click.option("--mx-host", default=None, help="The MX host name (myhostname)."),
    "ipv4": repeatable("--ipv4", help="The MX's public IPv4; repeatable."),
    "ipv6": repeatable("--ipv6", help="The MX's public IPv6; repeatable."),
    "cert": click.option("--cert", type=path_type(), default=None, help="PEM certificate chain, leaf first."),
    "key": click.option("--key", type=path_type(), default=None, help="PEM private key of the certificate."),
    "next_key": click.option(
        "--next-key", type=path_type(), default=None, help="Next TLS key (or cert): pre-publish its TLSA."
    ),
    "selector": click.option("--selector", default=None, help="DKIM selector (default s<YYYYMM>)."),
    "dmarc_rua": click.option("--dmarc-rua", default=None, help="DMARC aggregate report address."),
    "mynetworks": repeatable("--mynetworks", help="Trusted client network (CIDR); repeatable."),
    "postmaster": click.option(
        "--postmaster", default=None, help="Target of the postmaster alias: user or address."
    ),
    "dkim_ed25519": click.option(
        "--dkim-ed25519/--no-dkim-ed25519", default=None, help="Also sign with Ed25519."
    ),
    "resolver": click.option("--resolver", default=None, help="'unbound' (write a config) or 'existing'."),
}
ALL_SETTINGS = tuple(SETTINGS_OPTIONS)


def settings_options(*names: str) -> Decorator[Any]:
    """Give a command the named settings flags, declared once above, after its own options.

    The command receives them as keyword arguments (its `**flags`) and passes them on to `_settings`.
    """

    def wrap(command: Any) -> Any:
        for name in reversed(names):  # click lists the last-applied decorator first
            command = SETTINGS_OPTIONS[name](command)
        return command

    return wrap


@click.group("harden", no_args_is_help=True)
def harden_group() -> None:
    """Generate, apply and publish a hardened Postfix + OpenDKIM + OpenDMARC setup."""


def _settings(config: Path | None, root: Path | None = None, **flags: Any) -> HardenSettings:
    from mecsa.harden.settings import SettingsError, load_settings

    overrides = {name: (str(v) if isinstance(v, Path) else v) for name, v in flags.items()}
    try:
        return load_settings(config, overrides, root=root)
    except SettingsError as exc:
        usage_error(str(exc))


def _layout(root: Path) -> Layout:
    from mecsa.harden.layout import Layout

    if not root.is_dir():
        usage_error(f"--root {root} is not a directory")
    return Layout.under(root)


def _plan(settings: HardenSettings, root: Path) -> Any:
    from mecsa.harden.apply import ApplyError, make_plan

    try:
        return make_plan(settings, _layout(root))
    except ApplyError as exc:
        usage_error(str(exc))


@harden_group.command("plan")
@config_option
@root_option
@settings_options(*ALL_SETTINGS)
def plan_command(config: Path | None, root: Path, **flags: Any) -> None:
    """Show what apply would change (a unified diff) and the DNS records to publish."""
    from mecsa.harden import unbound

    settings = _settings(config, root, **flags)
    plan = _plan(settings, root)
    diff = plan.diff()
    # The diff shows files someone else wrote: each line escaped, tabs kept (config files use them).
    shown = "\n".join(escape_untrusted(line, keep="\t") for line in diff.split("\n"))
    click.echo(shown if diff else "No file would change: the setup is already in place.")
    _echo_plan_notes(plan)
    if plan.new_selectors:
        click.echo(f"note: apply generates new DKIM key(s) for {', '.join(sorted(plan.new_selectors))};")
        click.echo("      the DKIM records below show a sample key: publish the ones apply prints.")
    _echo_records(plan)
    click.echo("\n" + unbound.instructions(settings), nl=False)


def _echo_plan_notes(plan: Any) -> None:
    """The plan's warnings and notes: the same lines for `plan` and `apply`."""
    for warning in plan.warnings:
        click.echo(escape_untrusted(f"warning: {warning}"))
    for note in plan.notes:
        click.echo(escape_untrusted(f"note: {note}"))


def _echo_records(plan: Any) -> None:
    for records in plan.record_sets():
        click.echo(f"\n; DNS records to publish for {records.domain}")
        click.echo(records.zone_text(), nl=False)


@harden_group.command("apply")
@config_option
@root_option
@flag("--reload", help="Reload Postfix and restart the milters.")
@settings_options(*ALL_SETTINGS)
def apply_command(config: Path | None, root: Path, reload: bool, **flags: Any) -> None:
    """Write the hardened configuration under --root, check it, and roll back if a check fails."""
    from mecsa.harden import unbound
    from mecsa.harden.apply import ApplyError, apply_plan

    settings = _settings(config, root, **flags)
    plan = _plan(settings, root)
    _echo_plan_notes(plan)
    try:
        result = apply_plan(plan, reload=reload)
    except ApplyError as exc:
        click.echo(f"mecsa: error: {exc}", err=True)
        exit_with(1)
    if not result.changed:
        click.echo("Nothing changed: the setup is already in place.")
    for path in result.written:
        backup = result.backups.get(path)
        click.echo(f"wrote {path}" + (f" (backup: {backup})" if backup else " (new)"))
    for check in result.checks:
        state = "skipped" if check.skipped else ("ok" if check.ok else "FAILED")
        click.echo(
            escape_untrusted(
                f"check {check.name}: {state}" + (f": {check.output}" if check.output else ""), keep="\n\t"
            )
        )
    for note in result.notes:
        click.echo(f"note: {note}")
    if settings.certbot_hook:
        layout = plan.layout
        click.echo(
            f"Certbot: Postfix serves {layout.tls_deployed(settings.mx_host)}; the deploy hook"
            f" {layout.certbot_hook(settings.mx_host)} installs a renewal only when its key"
            " matches a published TLSA."
        )
    if result.changed and not reload:
        click.echo(
            "Services were not reloaded: run `postfix reload` and restart opendkim/opendmarc (or --reload)."
        )
    _echo_records(plan)
    click.echo("\n" + unbound.instructions(settings), nl=False)


@harden_group.command("records")
@config_option
@root_option
@flag("--json", "json_output", help="Print one JSON object.")
@settings_options(*ALL_SETTINGS)
def records_command(config: Path | None, root: Path, json_output: bool, **flags: Any) -> None:
    """Print the DNS records alone: zone-file lines, or JSON with --json."""
    import json

    settings = _settings(config, root, **flags)
    plan = _plan(settings, root)
    if plan.new_selectors:
        missing = ", ".join(sorted(plan.new_selectors))
        usage_error(f"no DKIM key yet for {missing} under {root}: run `mecsa harden apply` first")
    primary, *others = plan.record_sets()
    if json_output:
        document = primary.to_json()
        if others:
            document["other_domains"] = [r.to_json() for r in others]
        click.echo(json.dumps(document, indent=2))
        return
    click.echo("\n".join(r.zone_text() for r in (primary, *others)).rstrip("\n"))


@harden_group.command("dkim-rotate")
@click.option("--new-selector", required=True, help="The selector to switch to.")
@config_option
@root_option
@settings_options("domain", "mx_host", "ipv4", "ipv6", "cert", "key", "selector", "postmaster")
def dkim_rotate_command(new_selector: str, config: Path | None, root: Path, **flags: Any) -> None:
    """Make the next DKIM key now; print how to publish both, then switch."""
    from mecsa.harden.apply import ApplyError, rotate_dkim
    from mecsa.harden.records import DEFAULT_TTL, dkim_txt
    from mecsa.harden.settings import SettingsError, parse_selector

    settings = _settings(config, root, **flags)
    try:
        chosen = parse_selector(new_selector)
        made = rotate_dkim(settings, _layout(root), chosen)
    except (SettingsError, ApplyError) as exc:
        usage_error(str(exc))
    record = dkim_txt(chosen, settings.domain, made.public_key)
    click.echo(f"{'made' if made.created else 'found'} {made.path}")
    click.echo(
        f"1. Publish now, beside the current {settings.selector} record:\n{record.zone_line()}\n"
        f"2. Wait until every authoritative server serves it, plus its TTL ({DEFAULT_TTL} s).\n"
        f'3. Switch: set selector = "{chosen}" in the settings, run `mecsa harden apply --reload`.\n'
        f"4. Keep the {settings.selector} record at least 7 days more (mail in transit and re-checks),\n"
        "   then remove it and delete its key."
    )


@harden_group.command("tlsa-next")
@click.option("--out", type=path_type(), required=True, help="Where to write the next TLS private key.")
@config_option
@settings_options(
    "domain", "mx_host", "ipv4", "ipv6", "cert", "key", "selector", "dmarc_rua", "mynetworks", "postmaster"
)
def tlsa_next_command(out: Path, config: Path | None, **flags: Any) -> None:
    """Make the next TLS key now and print its TLSA 3 1 1 to publish beside the current one."""
    from mecsa.harden.apply import next_tls_key
    from mecsa.harden.records import tlsa_311
    from mecsa.harden.settings import SettingsError, load_tls

    settings = _settings(config, None, **flags)
    try:
        made = next_tls_key(settings, out)
        current = load_tls(settings).leaf
    except SettingsError as exc:
        usage_error(str(exc))
    now, nxt = tlsa_311(settings.mx_host, current), tlsa_311(settings.mx_host, made.public_key)
    click.echo(f"{'made' if made.created else 'found'} {made.path} (mode 0600)")
    click.echo(f"Publish both now (current, then next):\n{now.zone_line()}\n{nxt.zone_line()}")
    click.echo(
        "At renewal, have the new certificate issued for this key (e.g. certbot --csr, or --reuse-key\n"
        "after installing it), wait at least the TTL after publishing, then set next_key in the settings."
    )


@harden_group.command("zone")
@config_option
@root_option
@flag("--apply", help="Write knot.conf and the zone files, check them, make the key.")
@settings_options(*ALL_SETTINGS)
def zone_command(config: Path | None, root: Path, apply: bool, **flags: Any) -> None:
    """Host the domain's own zone in Knot DNS, signed automatically; print the DS for the registrar."""
    from mecsa.harden import zone
    from mecsa.harden.apply import ApplyError
    from mecsa.harden.zone_apply import apply_zone, ds_records, make_zone_plan

    settings = _settings(config, root, **flags)
    plan = _plan(settings, root)
    if plan.new_selectors:
        missing = ", ".join(sorted(plan.new_selectors))
        usage_error(f"no DKIM key yet for {missing} under {root}: run `mecsa harden apply` first")
    try:
        zplan = make_zone_plan(settings, plan.layout, plan.record_sets())
    except ApplyError as exc:
        usage_error(str(exc))  # a file that is not ours to write: the user must decide
    try:
        result = apply_zone(zplan) if apply else None
    except ApplyError as exc:
        click.echo(f"mecsa: error: {exc}", err=True)
        exit_with(1)
    ds = result.ds if result is not None else ds_records(zplan)
    if result is not None:
        if not result.written:
            click.echo("Nothing changed: the zone files are already in place.")
        for path in result.written:
            backup = result.backups.get(path)
            click.echo(f"wrote {path}" + (f" (backup: {backup})" if backup else " (new)"))
        for check in result.checks:
            state = "skipped" if check.skipped else "ok"
            click.echo(f"check {check.name}: {state}" + (f": {check.output}" if check.output else ""))
        for domain in result.new_keys:
            click.echo(f"made the signing key of {domain} (ECDSA P-256, one combined key)")
        click.echo("Start or reload Knot: knotc reload (or systemctl restart knot).")
    else:
        for change in zplan.files:
            click.echo(f"# --- {change.path}" + ("" if change.changed else " (unchanged)"))
            click.echo(change.desired.content.decode(), nl=False)
        click.echo("Write them, check them and make the signing key with --apply.")
    for domain in settings.domains:
        lines = ds.get(domain, ())
        if lines:
            click.echo("\n" + zone.registrar_steps(domain, lines), nl=False)
        else:
            click.echo(f"\n; {domain}: no signing key yet: the DS appears once --apply has made it.")
    if zplan.elsewhere:
        click.echo("\n; These records belong to zones served elsewhere: publish them there.")
        for record in zplan.elsewhere:
            click.echo(record.zone_line())
