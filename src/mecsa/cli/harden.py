"""`mecsa harden`: plan, apply and publish the top-score Postfix setup (see mecsa.harden)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from mecsa.cli.common import usage_error

if TYPE_CHECKING:
    from mecsa.harden.layout import Layout
    from mecsa.harden.settings import HardenSettings

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="TOML settings file (see mecsa/harden/example.toml).")
]
RootOpt = Annotated[Path, typer.Option("--root", help="Directory the system's files live under.")]
DomainOpt = Annotated[str | None, typer.Option("--domain", help="The mail domain.")]
MxOpt = Annotated[str | None, typer.Option("--mx-host", help="The MX host name (myhostname).")]
Ipv4Opt = Annotated[list[str] | None, typer.Option("--ipv4", help="The MX's public IPv4; repeatable.")]
Ipv6Opt = Annotated[list[str] | None, typer.Option("--ipv6", help="The MX's public IPv6; repeatable.")]
CertOpt = Annotated[Path | None, typer.Option("--cert", help="PEM certificate chain, leaf first.")]
KeyOpt = Annotated[Path | None, typer.Option("--key", help="PEM private key of the certificate.")]
NextKeyOpt = Annotated[
    Path | None, typer.Option("--next-key", help="Next TLS key (or cert): pre-publish its TLSA.")
]
SelectorOpt = Annotated[str | None, typer.Option("--selector", help="DKIM selector (default s<YYYYMM>).")]
RuaOpt = Annotated[str | None, typer.Option("--dmarc-rua", help="DMARC aggregate report address.")]
NetsOpt = Annotated[
    list[str] | None, typer.Option("--mynetworks", help="Trusted client network (CIDR); repeatable.")
]
PostmasterOpt = Annotated[
    str | None, typer.Option("--postmaster", help="Target of the postmaster alias: user or address.")
]
Ed25519Opt = Annotated[
    bool | None, typer.Option("--dkim-ed25519/--no-dkim-ed25519", help="Also sign with Ed25519.")
]
ResolverOpt = Annotated[
    str | None, typer.Option("--resolver", help="'unbound' (write a config) or 'existing'.")
]

# The settings flags, by parameter name; every one defaults to None (= take it from --config).
SETTINGS_OPTIONS: dict[str, Any] = {
    "domain": DomainOpt,
    "mx_host": MxOpt,
    "ipv4": Ipv4Opt,
    "ipv6": Ipv6Opt,
    "cert": CertOpt,
    "key": KeyOpt,
    "next_key": NextKeyOpt,
    "selector": SelectorOpt,
    "dmarc_rua": RuaOpt,
    "mynetworks": NetsOpt,
    "postmaster": PostmasterOpt,
    "dkim_ed25519": Ed25519Opt,
    "resolver": ResolverOpt,
}
ALL_SETTINGS = tuple(SETTINGS_OPTIONS)
Command = TypeVar("Command", bound=Callable[..., None])


def settings_options(*names: str) -> Callable[[Command], Command]:
    """Give a command the named settings flags in place of its `**flags`, declared once above.

    typer reads a command's options from its signature, so the signature is rewritten: the
    command itself receives the flags as keyword arguments and passes them on to `_settings`.
    """

    def wrap(command: Command) -> Command:
        signature = inspect.signature(command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
        added = [
            inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=SETTINGS_OPTIONS[n])
            for n in names
        ]
        command.__signature__ = signature.replace(parameters=[*own, *added])  # type: ignore[attr-defined]
        return command

    return wrap


def register(app: typer.Typer) -> None:
    """Add the `harden` command group to the `mecsa` app."""
    group = typer.Typer(
        name="harden",
        help="Generate, apply and publish a hardened Postfix + OpenDKIM + OpenDMARC setup.",
        no_args_is_help=True,
    )
    group.command("plan")(plan_command)
    group.command("apply")(apply_command)
    group.command("records")(records_command)
    group.command("dkim-rotate")(dkim_rotate_command)
    group.command("tlsa-next")(tlsa_next_command)
    group.command("zone")(zone_command)
    app.add_typer(group)


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


@settings_options(*ALL_SETTINGS)
def plan_command(config: ConfigOpt = None, root: RootOpt = Path("/"), **flags: Any) -> None:
    """Show what apply would change (a unified diff) and the DNS records to publish."""
    from mecsa.harden import unbound

    settings = _settings(config, root, **flags)
    plan = _plan(settings, root)
    diff = plan.diff()
    typer.echo(diff if diff else "No file would change: the setup is already in place.")
    _echo_plan_notes(plan)
    if plan.new_selectors:
        typer.echo(f"note: apply generates new DKIM key(s) for {', '.join(sorted(plan.new_selectors))};")
        typer.echo("      the DKIM records below show a sample key: publish the ones apply prints.")
    _echo_records(plan)
    typer.echo("\n" + unbound.instructions(settings), nl=False)


def _echo_plan_notes(plan: Any) -> None:
    """The plan's warnings and notes: the same lines for `plan` and `apply`."""
    for warning in plan.warnings:
        typer.echo(f"warning: {warning}")
    for note in plan.notes:
        typer.echo(f"note: {note}")


def _echo_records(plan: Any) -> None:
    for records in plan.record_sets():
        typer.echo(f"\n; DNS records to publish for {records.domain}")
        typer.echo(records.zone_text(), nl=False)


@settings_options(*ALL_SETTINGS)
def apply_command(
    config: ConfigOpt = None,
    root: RootOpt = Path("/"),
    reload: Annotated[bool, typer.Option("--reload", help="Reload Postfix and restart the milters.")] = False,
    **flags: Any,
) -> None:
    """Write the hardened configuration under --root, check it, and roll back if a check fails."""
    from mecsa.harden import unbound
    from mecsa.harden.apply import ApplyError, apply_plan

    settings = _settings(config, root, **flags)
    plan = _plan(settings, root)
    _echo_plan_notes(plan)
    try:
        result = apply_plan(plan, reload=reload)
    except ApplyError as exc:
        typer.echo(f"mecsa: error: {exc}", err=True)
        raise typer.Exit(1) from None
    if not result.changed:
        typer.echo("Nothing changed: the setup is already in place.")
    for path in result.written:
        backup = result.backups.get(path)
        typer.echo(f"wrote {path}" + (f" (backup: {backup})" if backup else " (new)"))
    for check in result.checks:
        state = "skipped" if check.skipped else ("ok" if check.ok else "FAILED")
        typer.echo(f"check {check.name}: {state}" + (f": {check.output}" if check.output else ""))
    for note in result.notes:
        typer.echo(f"note: {note}")
    if settings.certbot_hook:
        layout = plan.layout
        typer.echo(
            f"Certbot: Postfix serves {layout.tls_deployed(settings.mx_host)}; the deploy hook"
            f" {layout.certbot_hook(settings.mx_host)} installs a renewal only when its key"
            " matches a published TLSA."
        )
    if result.changed and not reload:
        typer.echo(
            "Services were not reloaded: run `postfix reload` and restart opendkim/opendmarc (or --reload)."
        )
    _echo_records(plan)
    typer.echo("\n" + unbound.instructions(settings), nl=False)


@settings_options(*ALL_SETTINGS)
def records_command(
    config: ConfigOpt = None,
    root: RootOpt = Path("/"),
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    **flags: Any,
) -> None:
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
        typer.echo(json.dumps(document, indent=2))
        return
    typer.echo("\n".join(r.zone_text() for r in (primary, *others)).rstrip("\n"))


@settings_options("domain", "mx_host", "ipv4", "ipv6", "cert", "key", "selector", "postmaster")
def dkim_rotate_command(
    new_selector: Annotated[str, typer.Option("--new-selector", help="The selector to switch to.")],
    config: ConfigOpt = None,
    root: RootOpt = Path("/"),
    **flags: Any,
) -> None:
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
    typer.echo(f"{'made' if made.created else 'found'} {made.path}")
    typer.echo(
        f"1. Publish now, beside the current {settings.selector} record:\n{record.zone_line()}\n"
        f"2. Wait until every authoritative server serves it, plus its TTL ({DEFAULT_TTL} s).\n"
        f'3. Switch: set selector = "{chosen}" in the settings, run `mecsa harden apply --reload`.\n'
        f"4. Keep the {settings.selector} record at least 7 days more (mail in transit and re-checks),\n"
        "   then remove it and delete its key."
    )


@settings_options(
    "domain", "mx_host", "ipv4", "ipv6", "cert", "key", "selector", "dmarc_rua", "mynetworks", "postmaster"
)
def tlsa_next_command(
    out: Annotated[Path, typer.Option("--out", help="Where to write the next TLS private key.")],
    config: ConfigOpt = None,
    **flags: Any,
) -> None:
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
    typer.echo(f"{'made' if made.created else 'found'} {made.path} (mode 0600)")
    typer.echo(f"Publish both now (current, then next):\n{now.zone_line()}\n{nxt.zone_line()}")
    typer.echo(
        "At renewal, have the new certificate issued for this key (e.g. certbot --csr, or --reuse-key\n"
        "after installing it), wait at least the TTL after publishing, then set next_key in the settings."
    )


@settings_options(*ALL_SETTINGS)
def zone_command(
    config: ConfigOpt = None,
    root: RootOpt = Path("/"),
    apply: Annotated[
        bool, typer.Option("--apply", help="Write knot.conf and the zone files, check them, make the key.")
    ] = False,
    **flags: Any,
) -> None:
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
        typer.echo(f"mecsa: error: {exc}", err=True)
        raise typer.Exit(1) from None
    ds = result.ds if result is not None else ds_records(zplan)
    if result is not None:
        if not result.written:
            typer.echo("Nothing changed: the zone files are already in place.")
        for path in result.written:
            backup = result.backups.get(path)
            typer.echo(f"wrote {path}" + (f" (backup: {backup})" if backup else " (new)"))
        for check in result.checks:
            state = "skipped" if check.skipped else "ok"
            typer.echo(f"check {check.name}: {state}" + (f": {check.output}" if check.output else ""))
        for domain in result.new_keys:
            typer.echo(f"made the signing key of {domain} (ECDSA P-256, one combined key)")
        typer.echo("Start or reload Knot: knotc reload (or systemctl restart knot).")
    else:
        for change in zplan.files:
            typer.echo(f"# --- {change.path}" + ("" if change.changed else " (unchanged)"))
            typer.echo(change.desired.content.decode(), nl=False)
        typer.echo("Write them, check them and make the signing key with --apply.")
    for domain in settings.domains:
        lines = ds.get(domain, ())
        if lines:
            typer.echo("\n" + zone.registrar_steps(domain, lines), nl=False)
        else:
            typer.echo(f"\n; {domain}: no signing key yet: the DS appears once --apply has made it.")
    if zplan.elsewhere:
        typer.echo("\n; These records belong to zones served elsewhere: publish them there.")
        for record in zplan.elsewhere:
            typer.echo(record.zone_line())
