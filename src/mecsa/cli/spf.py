"""`mecsa spf check` (check_host() for one sender) and `mecsa spf audit` (the worst-case tree)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from mecsa.cli.common import (
    domain_argument,
    json_option,
    make_client,
    resolver_option,
    run,
    timeout_option,
    usage_error,
)
from mecsa.report.untrusted import escape_lines

if TYPE_CHECKING:
    from mecsa.spf.audit import AuditNode, SpfAudit
    from mecsa.spf.evaluator import SpfOutcome


@click.group("spf", no_args_is_help=True)
def spf_group() -> None:
    """SPF (RFC 7208): evaluate a sender, or audit a domain's record tree."""


@spf_group.command("check")
@click.option("--ip", required=True, help="The sending client's IP address.")
@click.option("--sender", required=True, help="MAIL FROM address; empty to check the HELO.")
@click.option("--helo", default="", help="The HELO/EHLO name.")
@resolver_option
@json_option
@timeout_option
def check_command(
    ip: str, sender: str, helo: str, resolver: list[str] | None, json_output: bool, timeout: float
) -> None:
    """Run check_host() for a message from IP with MAIL FROM SENDER; print the result and lookups used."""
    import ipaddress

    from mecsa.dns.resolver import Resolver
    from mecsa.spf.evaluator import check_sender

    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        usage_error(f"--ip {ip!r} is not an IP address")
    mail_from = _sender(sender, helo)
    client = make_client(resolver, timeout)
    helo_name = _identity_domain("--helo", helo.strip()) if helo.strip() else ""
    outcome = run(check_sender(address, mail_from, helo_name, resolver=Resolver(client)))
    if json_output:
        import json

        click.echo(json.dumps(outcome.to_json()))
    else:
        click.echo(_check_text(outcome))


def _sender(sender: str, helo: str) -> str:
    """The MAIL FROM, its domain in A-labels where it is a domain; empty needs a HELO name.

    A name check_host() must answer for (an empty label, a label over 63 octets, a domain literal:
    RFC 7208 §4.3 gives `none`) passes through unchanged, so the evaluator gives that result.
    """
    text = sender.strip().removeprefix("<").removesuffix(">")
    if not text:
        if not helo.strip():
            usage_error("an empty --sender checks the HELO identity: give --helo NAME")
        return ""
    local, at, domain = text.rpartition("@")
    if not at:
        return f"postmaster@{_identity_domain('--sender', text)}"
    return f"{local}@{_identity_domain('--sender', domain)}"


def _identity_domain(option: str, text: str) -> str:
    """A-labels for a domain; other envelope text as it came, unless it cannot be in an SMTP envelope."""
    from mecsa.domain import DomainError, normalise_domain

    try:
        return normalise_domain(text)
    except DomainError as exc:
        # Spaces and control characters never reach check_host() from an SMTP session: a typing error.
        if not text.isascii() or not text.isprintable() or any(c.isspace() for c in text):
            usage_error(str(exc))
        return text.strip().lower()


def _check_text(outcome: SpfOutcome) -> str:
    lines = [f"result: {outcome.result.value}", f"reason: {outcome.reason}"]
    if outcome.explanation is not None:
        lines.append(f"explanation: {outcome.explanation}")
    lines.append(f"lookups: {outcome.lookups} of 10 (void lookups: {outcome.void_lookups} of 2)")
    return escape_lines(lines)


@spf_group.command("audit")
@click.argument("domain", help="The domain whose SPF record tree to audit.")
@resolver_option
@json_option
@timeout_option
def audit_command(domain: str, resolver: list[str] | None, json_output: bool, timeout: float) -> None:
    """Walk the include/redirect tree and count the lookups a sender matching nothing costs."""
    from mecsa.dns.resolver import Resolver
    from mecsa.spf.audit import audit_spf

    name = domain_argument(domain)
    client = make_client(resolver, timeout)
    audit = run(audit_spf(Resolver(client), name))
    if json_output:
        import json

        click.echo(json.dumps(audit.to_json()))
    else:
        click.echo(_audit_text(audit))


def _audit_text(audit: SpfAudit) -> str:
    lines = _tree_lines(audit.root, 0)
    lines.append("")
    lines.append(
        f"worst case (a sender matching nothing): {audit.lookups} of 10 lookups; void lookups "
        f"{audit.root.total_void4} (IPv4 senders) / {audit.root.total_void6} (IPv6 senders) of 2"
    )
    policy = audit.policy
    applies = f"{policy.qualifier}all" if policy.qualifier else policy.status.replace("_", " ")
    why = f": {policy.detail}" if policy.status in ("invalid", "lookup_failed") and policy.detail else ""
    lines.append(f"policy that applies: {applies} (via {' → '.join(policy.chain)}){why}")
    if audit.issues:
        lines.append("issues:")
        for issue in audit.issues:
            lines.append(f"  [{issue.severity.value}] {issue.message}")
            if len(issue.chain) > 1:
                lines.append(f"      path: {issue.path}")
    else:
        lines.append("issues: none")
    # Records, domains and reasons came from DNS: each line escaped (mecsa.report.untrusted).
    return escape_lines(lines)


def _tree_lines(node: AuditNode, depth: int) -> list[str]:
    indent = "  " * depth
    head = f"{indent}{node.via + ' → ' if node.via else ''}{node.domain}"
    cost = f"[{node.lookups} own, {node.total_lookups} total lookups]"
    body = node.record if node.record else f"({node.status}: {node.detail})"
    lines = [f"{head} {cost}", f"{indent}  {body}"]
    for child in node.children:
        lines.extend(_tree_lines(child, depth + 1))
    return lines
