"""`mecsa starttls HOST[:PORT]`: probe one SMTP server (every address) and print what it showed.

Runs the same probes and evaluators as `mecsa assess` (starttls with the TLS sweep, x509, dane),
for one host treated as the only MX host.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from mecsa.cli.common import (
    ca_bundle_file,
    ca_file_option,
    dnssec_mode_option,
    json_option,
    make_client,
    resolver_option,
    revocation_option,
    run,
    smtp_timeout_option,
    timeout_option,
    tls_versions_option,
    trust_anchor_option,
    usage_error,
)
from mecsa.report.untrusted import json_text

if TYPE_CHECKING:
    from mecsa.checks.dane import AddressDane
    from mecsa.checks.starttls import AddressTls
    from mecsa.checks.x509 import AddressCertificate
    from mecsa.dns.resolver import DnsClient
    from mecsa.model import CheckResult, FactsT
    from mecsa.observe import AssessOptions


@click.command("starttls")
@click.argument("target", help="HOST, HOST:PORT, IP, or [IPv6]:PORT (default port 25).")
@resolver_option
@ca_file_option
@json_option
@tls_versions_option
@smtp_timeout_option
@timeout_option
@dnssec_mode_option
@trust_anchor_option
@revocation_option
def starttls_command(
    target: str,
    resolver: list[str] | None,
    ca_file: str | None,
    json_output: bool,
    tls_versions: bool,
    smtp_timeout: float,
    timeout: float,
    dnssec_mode: str,
    trust_anchor: str | None,
    revocation: bool,
) -> None:
    """Probe one SMTP server: banner, EHLO, STARTTLS, TLS versions, certificate and DANE."""
    from mecsa.observe import AssessOptions

    host, port = split_target(target)
    ca_bundle_file("--ca-file", ca_file)
    options = AssessOptions(
        ca_file=ca_file,
        smtp_timeout=smtp_timeout,
        tls_versions=tls_versions,
        smtp_port=port,
        revocation=revocation,
    )
    client = make_client(resolver, timeout, dnssec_mode, trust_anchor)
    results = run(probe_server(host, client, options))
    if json_output:
        import json

        click.echo(json_text(json.dumps(results_to_json(host, port, results), indent=2, ensure_ascii=False)))
    else:
        click.echo(render_results(host, port, results))


def split_target(text: str) -> tuple[str, int]:
    """`HOST`, `HOST:PORT`, `IPv4[:PORT]`, `IPv6` or `[IPv6]:PORT` -> (host in A-labels or IP, port)."""
    import ipaddress

    from mecsa.domain import DomainError, normalise_domain

    spec, port_text = text.strip(), ""
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif spec.count(":") == 1:
        host, port_text = spec.split(":")
    else:
        host = spec
    if port_text and not (port_text.isdigit() and 0 < int(port_text) < 65536):
        usage_error(f"bad port in {text!r}")
    port = int(port_text) if port_text else 25
    try:
        return ipaddress.ip_address(host).compressed, port
    except ValueError:
        pass
    try:
        return normalise_domain(host), port
    except DomainError as exc:
        usage_error(str(exc))


async def probe_server(host: str, client: DnsClient, options: AssessOptions) -> tuple[CheckResult, ...]:
    """Run starttls, x509 and (for a host name) dane against `host` as the only MX host."""
    import asyncio
    import ipaddress

    import dns.rdata

    from mecsa.checks import dane, starttls, x509
    from mecsa.dns.answer import DnsAnswer, Rcode
    from mecsa.dns.resolver import Resolver
    from mecsa.observe import Context
    from mecsa.observe.mx import MxHost, MxObservation

    ctx = Context(host, Resolver(client), options)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is None:
        a, aaaa = await asyncio.gather(ctx.resolver.resolve(host, "A"), ctx.resolver.resolve(host, "AAAA"))
    else:
        rdtype = "A" if ip.version == 4 else "AAAA"
        given = DnsAnswer(host, rdtype, Rcode.NOERROR, (dns.rdata.from_text("IN", rdtype, host),))
        empty = DnsAnswer(host, "AAAA" if rdtype == "A" else "A", Rcode.NOERROR)
        a, aaaa = (given, empty) if rdtype == "A" else (empty, given)
    # A synthetic MX set: the one host, so that the per-MX evaluators apply unchanged.
    mx = MxObservation(host, DnsAnswer(host, "MX", Rcode.NOERROR), (MxHost(host, 0, a, aaaa),), implicit=True)
    checks: list[Any] = [
        (starttls.observe(ctx, mx), starttls.evaluate),
        (x509.observe(ctx, mx), x509.evaluate),
    ]
    if ip is None:  # TLSA records hang off a host name
        checks.append((dane.observe(ctx, mx), dane.evaluate))
    observations = await asyncio.gather(*(observe for observe, _ in checks))
    return tuple(evaluate(obs) for (_, evaluate), obs in zip(checks, observations, strict=True))


def results_to_json(host: str, port: int, results: tuple[CheckResult, ...]) -> dict[str, Any]:
    return {
        "host": host,
        "port": port,
        "protocols": {v.protocol: v.to_json() for r in results for v in r.verdicts},
        "findings": [f.to_json() for r in results for f in r.findings],
        "checks": {r.check: dict(r.details) for r in results},
    }


def render_results(host: str, port: int, results: tuple[CheckResult, ...]) -> str:
    """Plain text: per address, what the server said and showed; then the findings and verdicts."""
    from mecsa.checks.dane import DaneFacts
    from mecsa.checks.starttls import StarttlsFacts
    from mecsa.checks.x509 import X509Facts
    from mecsa.report.text import clean

    lines = [f"{host} port {port}"]
    tls = _facts(results, StarttlsFacts)
    x509 = _facts(results, X509Facts)
    dane = _facts(results, DaneFacts)
    certs = {a.address: a for h in (x509.hosts if x509 else ()) for a in h.addresses}
    tlsa = {a.address: a for h in (dane.hosts if dane else ()) for a in h.addresses}
    for h in tls.hosts if tls else ():
        if not h.addresses:
            lines.append("  no address found")
        for address in h.addresses:
            lines += _address_lines(address, certs.get(address.address), tlsa.get(address.address))
    lines.append("findings:")
    lines += [f"  [{f.status.value}] {f.message}" for r in results for f in r.findings]
    lines.append("verdicts:")
    lines += [f"  {v.protocol}: {v.status.value}: {v.reason}" for r in results for v in r.verdicts]
    # Banners, EHLO lines, certificate names and messages quoting them come from the server:
    # control and bidi characters are shown escaped, never sent to the terminal.
    return "\n".join(clean(line) for line in lines)


def _facts(results: tuple[CheckResult, ...], kind: type[FactsT]) -> FactsT | None:
    return next((r.facts for r in results if isinstance(r.facts, kind)), None)


def _address_lines(
    address: AddressTls, cert: AddressCertificate | None, dane: AddressDane | None
) -> list[str]:
    smtp = address.session
    out = [f"  {address.address}: starttls {address.outcome.value}"]
    if smtp.banner:
        out.append(f"    banner: {smtp.banner.code} {' / '.join(smtp.banner.lines)}")
    if smtp.extensions:
        out.append(f"    EHLO: {', '.join(smtp.extensions)}")
    if smtp.failed_stage:
        out.append(f"    stopped at {smtp.failed_stage.value}: {smtp.reason}")
    if smtp.tls:
        t = smtp.tls
        out.append(f"    TLS: {t.version} {t.cipher} ({len(t.chain)} certificate(s) presented)")
    if smtp.extensions_tls:
        out.append(f"    EHLO after TLS: {', '.join(smtp.extensions_tls)}")
    sweep = address.sweep
    if sweep:
        out.append("    versions: " + ", ".join(f"{t.label} {t.outcome.value}" for t in sweep.versions))
        out.append(
            "    weak suites: " + ", ".join(f"{t.label} {t.outcome.value}" for t in sweep.weak_ciphers)
        )
    presented = cert.presented if cert else None
    if presented:
        leaf = presented.certificate
        out.append(f"    certificate: {leaf.subject} issued by {leaf.issuer}")
        out.append(
            f"      names: {', '.join(leaf.dns_names)}; expires "
            f"{leaf.not_after.isoformat()} ({presented.days_left} days); key {leaf.key_type} {leaf.key_bits}"
        )
    if dane is not None:
        out.append(f"    DANE: {dane.label}")
        out += [f"      {r.record}: {r.note}" for r in dane.records]
    return out
