"""`mecsa mailmode`: the SMTP receiver, the probe sender, the trap zone records and the report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mecsa.cli.common import (
    ca_bundle_file,
    ca_file_option,
    domain_argument,
    flag,
    html_option,
    input_file,
    json_option,
    make_client,
    output_file,
    repeatable,
    resolver_option,
    run,
    smtp_timeout_option,
    timeout_option,
    usage_error,
)

if TYPE_CHECKING:
    from mecsa.mailmode.receiver import ReceiverSettings
    from mecsa.observe.dmarc import DiscoveryMethod

DEFAULT_STORE = "mailmode.sqlite3"
store_option = click.option(
    "--store",
    default=DEFAULT_STORE,
    help="SQLite file, or a directory to hold mailmode.sqlite3 (default: ./mailmode.sqlite3).",
)
DEFAULT_SELECTOR = "mecsa"
dkim_key_option = click.option(
    "--dkim-key",
    default=None,
    help="PEM private key (RSA or Ed25519) that signs as the test domain: the probe, the auto-reply.",
)
dkim_selector_option = click.option(
    "--dkim-selector",
    default=DEFAULT_SELECTOR,
    help="The selector of --dkim-key (its record: mailmode zone).",
)


def _signer(domain: str, key: str | None, selector: str) -> Any:
    """The test domain's DKIM signer from --dkim-key, or None; a bad key is a usage error."""
    if key is None:
        return None
    from mecsa.mailmode.signing import DkimSigner, SignerError

    input_file("--dkim-key", key)
    try:
        return DkimSigner.from_file(domain, selector, key)
    except SignerError as exc:
        usage_error(f"--dkim-key {exc}")


@click.group("mailmode", no_args_is_help=True)
def mailmode_group() -> None:
    """Mail mode: grade a provider from the mail it receives and sends (MECSA's loop)."""


def parse_listen(text: str, default_port: int = 25) -> tuple[str, int]:
    """`ADDR`, `ADDR:PORT`, `[IPv6]:PORT` or `:PORT` (all addresses)."""
    import ipaddress

    host, port = text.strip(), default_port
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            usage_error(f"--listen {text!r}: missing ']'")
        host, rest = host[1:end], host[end + 1 :]
        if rest:
            port = _port(text, rest.removeprefix(":"))
    elif host.count(":") == 1:
        host, port_text = host.split(":")
        port = _port(text, port_text)
    if host:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            usage_error(f"--listen {text!r}: not an IP address")
    return host or "0.0.0.0", port


def _port(spec: str, text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) < 65536:
        usage_error(f"--listen {spec!r}: bad port")
    return int(text)


@mailmode_group.command("serve")
@click.option("--domain", required=True, help="The test domain D: mail for <token>@D is accepted.")
@click.option("--listen", required=True, help="ADDR[:PORT] to listen on (default port 25).")
@click.option("--tls-cert", default=None, help="PEM certificate chain for STARTTLS.")
@click.option("--tls-key", default=None, help="PEM private key for STARTTLS.")
@store_option
@resolver_option
@timeout_option
@click.option(
    "--max-size",
    type=click.IntRange(min=1024),
    default=10 * 1024 * 1024,
    help="Largest message accepted, in octets.",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=256,
    help="Simultaneous connections; more get 421.",
)
@flag(
    "--assess/--no-assess", "assess_sender", default=True, help="Assess each sender's domain in domain mode."
)
@repeatable(
    "--report-address", help="Accept mail to this address (any domain) as DMARC/TLS-RPT reports; repeatable."
)
@click.option(
    "--reports-store",
    default=None,
    help="The store --report-address mail goes to (as mecsa reports --store).",
)
@click.option(
    "--dmarc-discovery",
    default="treewalk",
    help="DMARC discovery: treewalk (RFC 9989, default) or psl (RFC 7489).",
)
@dkim_key_option
@dkim_selector_option
@flag(
    "--autoreply/--no-autoreply",
    default=True,
    help="Answer the first message of a new token with where to read the report (needs --dkim-key).",
)
@click.option("--report-url", default=None, help="The report's web address in the auto-reply, with {token}.")
@ca_file_option
def serve_command(
    domain: str,
    listen: str,
    tls_cert: str | None,
    tls_key: str | None,
    store: str,
    resolver: list[str] | None,
    timeout: float,
    max_size: int,
    max_connections: int,
    assess_sender: bool,
    report_address: list[str] | None,
    reports_store: str | None,
    dmarc_discovery: str,
    dkim_key: str | None,
    dkim_selector: str,
    autoreply: bool,
    report_url: str | None,
    ca_file: str | None,
) -> None:
    """Run the SMTP receiver for test domain D until interrupted; each message is analysed and stored.

    With --dkim-key, the first message under a new token gets a DKIM-signed auto-reply (RFC 3834:
    never to <>, daemons or automatic mail; one per sender per hour) with the report's link
    (--report-url) or the command that prints it.
    """
    from mecsa.mailmode.autoreply import AutoReplySettings
    from mecsa.mailmode.receiver import ReceiverSettings
    from mecsa.observe import AssessOptions

    test_domain = domain_argument(domain)
    host, port = parse_listen(listen)
    if (tls_cert is None) != (tls_key is None):
        usage_error("--tls-cert and --tls-key go together")
    input_file("--tls-cert", tls_cert)
    input_file("--tls-key", tls_key)
    if report_url is not None and "{token}" not in report_url:
        usage_error(f"--report-url {report_url!r} must contain {{token}}")
    input_file("--ca-file", ca_file)
    signer = _signer(test_domain, dkim_key, dkim_selector)
    auto = AutoReplySettings(signer, report_url) if signer is not None and autoreply else None
    addresses = frozenset(a.strip().lower() for a in report_address or [])
    for address in addresses:
        if "@" not in address:
            usage_error(f"--report-address {address!r} is not an address")
        domain_argument(address.rpartition("@")[2])
    settings = ReceiverSettings(
        test_domain,
        host,
        port,
        max_size=max_size,
        max_connections=max_connections,
        assess_sender=assess_sender,
        report_addresses=addresses,
        dmarc_discovery=_discovery(dmarc_discovery),
        autoreply=auto,
        assess_options=AssessOptions(ca_file=ca_file),
    )
    client = make_client(resolver, timeout)
    try:
        run(_serve(settings, store, client, tls_cert, tls_key, addresses, reports_store))
    except KeyboardInterrupt:
        click.echo("stopped", err=True)


async def _serve(
    settings: ReceiverSettings,
    store_spec: str,
    client: Any,
    cert: str | None,
    key: str | None,
    report_addresses: frozenset[str] = frozenset(),
    reports_spec: str | None = None,
) -> None:
    import asyncio

    from mecsa.mailmode.receiver import Receiver, server_tls_context
    from mecsa.mailmode.store import MailStore

    tls = server_tls_context(cert, key) if cert and key else None
    store = await MailStore.open(store_spec)
    handler = None
    reports = None
    if report_addresses:
        from mecsa.reports.receive import report_handler
        from mecsa.reports.storage import ReportStore

        reports = ReportStore.open(reports_spec)
        handler = report_handler(reports)
    receiver = await Receiver(settings, store, client, tls, handler).start()
    click.echo(
        f"mecsa mailmode: receiving for {settings.domain} on {settings.host}:{receiver.port} "
        f"(STARTTLS {'on' if tls else 'off'}), store {store.path}",
        err=True,
    )
    try:
        await asyncio.Event().wait()
    finally:
        await receiver.stop()
        await store.close()
        if reports is not None:
            reports.close()


@mailmode_group.command("probe")
@click.argument("address", help="The user's address: the probe mail goes to its MX.")
@click.option(
    "--from",
    "from_address",
    required=True,
    help="The receiver's test address (<token>@D, or any address @D for a new token).",
)
@resolver_option
@timeout_option
@ca_file_option
@smtp_timeout_option
@click.option("--smtp-port", type=click.IntRange(min=1), default=25, help="SMTP port of the MX hosts.")
@store_option
@json_option
@dkim_key_option
@dkim_selector_option
def probe_command(
    address: str,
    from_address: str,
    resolver: list[str] | None,
    timeout: float,
    ca_file: str | None,
    smtp_timeout: float,
    smtp_port: int,
    store: str,
    json_output: bool,
    dkim_key: str | None,
    dkim_selector: str,
) -> None:
    """Send the probe mail to ADDRESS's MX, record its inbound side, and store it under the token.

    Sign it with --dkim-key and send it from an address in the test domain's SPF (mailmode zone
    --probe-ipv4), so that receivers enforcing DMARC (p=reject) accept it.
    """
    import json

    from mecsa.mailmode.addresses import is_token, new_token
    from mecsa.mailmode.probe import run_probe

    local, at, domain = from_address.strip().rpartition("@")
    if not at:
        usage_error(f"--from {from_address!r} is not an address")
    test_domain = domain_argument(domain)
    token = local.lower() if is_token(local.lower()) else new_token()
    if "@" not in address:
        usage_error(f"{address!r} is not an address")
    domain_argument(address.rpartition("@")[2])
    ca_bundle_file("--ca-file", ca_file)
    signer = _signer(test_domain, dkim_key, dkim_selector)
    client = make_client(resolver, timeout)

    async def go() -> dict[str, Any]:
        from mecsa.mailmode.store import MailStore

        result = await run_probe(
            address.strip(),
            test_domain,
            token,
            client,
            port=smtp_port,
            smtp_timeout=smtp_timeout,
            ca_file=ca_file,
            signer=signer,
        )
        data = result.to_json()
        opened = await MailStore.open(store)
        try:
            await opened.add(token, "probe", data)
        finally:
            await opened.close()
        return data

    data = run(go())
    if json_output:
        click.echo(json.dumps(data))
        return
    from mecsa.report.untrusted import escape_lines

    lines = [f"token {token}: probe to {address} {'delivered' if data['delivered'] else 'NOT delivered'}"]
    if data["mx_error"]:
        lines.append(f"  MX: {data['mx_error']}")
    for a in data["attempts"]:
        tls = (a["session"].get("tls") or {}).get("version") or "no TLS"
        lines.append(f"  {a['host']} [{a['session']['address']}]: {tls}, DANE {a['dane']['status']}")
        if a.get("delivery") and not a["delivery"]["accepted"]:
            lines.append(f"    {a['delivery']['explanation']}")
    lines.append(f"ask the user to reply to all; then: mecsa mailmode report {token}")
    click.echo(escape_lines(lines))  # MX names, DNS errors and SMTP replies came from the network


@mailmode_group.command("report")
@click.argument("token", help="The report token.")
@store_option
@json_option
@html_option
@click.option(
    "--window",
    type=click.FloatRange(min=0),
    default=30.0,
    help="Minutes a trap must stay empty to conclude 'enforces'.",
)
def report_command(token: str, store: str, json_output: bool, html: Path | None, window: float) -> None:
    """Print the report of TOKEN (text, or --json); --html FILE also writes an HTML page."""
    import datetime as dt
    import json

    from mecsa.mailmode.report import load_report, render_html, render_text
    from mecsa.mailmode.store import MailStore, store_path

    output_file("--html", html)
    if not store_path(store).is_file():
        usage_error(f"--store {store}: no mail-mode store there")

    async def go() -> dict[str, Any] | None:
        opened = await MailStore.open(store)
        try:
            return await load_report(opened, token.lower(), window=dt.timedelta(minutes=window))
        finally:
            await opened.close()

    report = run(go())
    if report is None:
        usage_error(f"no report with token {token!r} in {store}")
    if html is not None:
        html.write_text(render_html(report), encoding="utf-8")
    click.echo(json.dumps(report, sort_keys=True) if json_output else render_text(report), nl=not json_output)


@mailmode_group.command("zone")
@click.option("--domain", required=True, help="The test domain D.")
@click.option("--cert", required=True, help="The receiver's PEM certificate (for the TLSA records).")
@repeatable("--ipv4", help="The receiver's IPv4 address; repeatable.")
@repeatable("--ipv6", help="The receiver's IPv6 address; repeatable.")
@repeatable("--trap-ipv4", help="The trap hosts' IPv4 (default: the receiver's).")
@repeatable("--probe-ipv4", help="Where the probe leaves from, if not the receiver (SPF); repeatable.")
@dkim_key_option
@dkim_selector_option
@json_option
def zone_command(
    domain: str,
    cert: str,
    ipv4: list[str] | None,
    ipv6: list[str] | None,
    trap_ipv4: list[str] | None,
    probe_ipv4: list[str] | None,
    dkim_key: str | None,
    dkim_selector: str,
    json_output: bool,
) -> None:
    """Print the zone records of test domain D: the receiver, its DANE trap and its MTA-STS trap.

    SPF lists the receiver's and --probe-ipv4 addresses, DMARC is p=reject, and with --dkim-key the
    key record that signs the probe and the auto-reply is printed too: the probe passes DMARC.
    """
    import json

    from cryptography import x509

    from mecsa.mailmode.enforcement import ReceiverZone, receiver_zone_records

    test_domain = domain_argument(domain)
    input_file("--cert", cert)
    if not ipv4 and not ipv6:
        usage_error("give the receiver's address with --ipv4 and/or --ipv6")
    try:
        certificate = x509.load_pem_x509_certificate(Path(cert).read_bytes())
    except ValueError as exc:
        usage_error(f"--cert {cert}: not a PEM certificate: {exc}")
    zone = ReceiverZone(
        test_domain,
        tuple(ipv4 or ()),
        tuple(ipv6 or ()),
        tuple(trap_ipv4) if trap_ipv4 else None,
        probe_ipv4=tuple(probe_ipv4 or ()),
    )
    signer = _signer(test_domain, dkim_key, dkim_selector)
    dkim = (signer.selector, signer.public_key()) if signer is not None else None
    records = receiver_zone_records(zone, certificate, dkim)
    if json_output:
        data = {
            "records": [r.to_json() for r in records.records],
            "sts_trap_policy": {"url": records.sts_trap.url, "text": records.sts_trap.policy},
        }
        click.echo(json.dumps(data))
    else:
        click.echo(records.zone_text(), nl=False)


def _discovery(text: str) -> DiscoveryMethod:
    from mecsa.observe.dmarc import DiscoveryMethod

    try:
        return DiscoveryMethod(text)
    except ValueError:
        usage_error(f"--dmarc-discovery must be treewalk or psl, not {text!r}")
