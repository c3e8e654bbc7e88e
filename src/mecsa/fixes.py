"""The exact fix for every failing finding: DNS records in zone-file syntax, or server settings.

A finding names its fix by a remediation key (`Finding.remediation`, e.g. `dmarc.policy_reject`).
`fixes_for(assessment)` turns the failing findings of an assessment into `Fix` objects filled in
with the domain's own names (domain, MX hosts, records found). DNS record text comes from the
hardening generator (`mecsa.harden.records`), so `mecsa harden records` and the fixes print the
same lines. Keys are matched with `-` and `_` treated alike (`tls-rpt.publish` = `tls_rpt.publish`).
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from mecsa.model import Assessment, Finding, Status
from mecsa.observe.mx import MxFacts

if TYPE_CHECKING:
    from mecsa.harden.records import DnsRecord
    from mecsa.harden.settings import HardenSettings

DEFAULT_RUA_LOCAL = "dmarc_reports"  # the alias `mecsa harden` creates
_FIXABLE = (Status.FAIL, Status.WARN)


@dataclass(frozen=True, slots=True)
class Snippet:
    """One thing to paste: `where` it goes (a zone, a file) and the exact `text`."""

    where: str
    text: str


@dataclass(frozen=True, slots=True)
class Fix:
    """The remedy for one remediation key (and, for per-host fixes, one subject)."""

    key: str
    title: str
    snippets: tuple[Snippet, ...]
    findings: tuple[str, ...] = ()
    subject: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "key": self.key,
            "title": self.title,
            "subject": self.subject,
            "findings": list(self.findings),
            "snippets": [{"where": s.where, "text": s.text} for s in self.snippets],
        }


@dataclass(frozen=True, slots=True)
class FixContext:
    """What a fix builder may use: the domain, its MX hosts, the finding and its siblings."""

    domain: str
    mx_hosts: tuple[str, ...]
    finding: Finding
    protocol_findings: tuple[Finding, ...] = ()
    today: dt.date | None = None
    mx_addresses: tuple[str, ...] = ()

    @property
    def mx_or_default(self) -> tuple[str, ...]:
        return self.mx_hosts or (f"mail.{self.domain}",)

    def hosts(self) -> tuple[str, ...]:
        """The MX host the finding is about, or every MX host.

        A per-MX finding's subject is the host name; a per-address one's is "HOST ADDRESS".
        """
        host = (self.finding.subject or "").partition(" ")[0]
        if host and host in self.mx_hosts:
            return (host,)
        return self.mx_or_default

    def found(self, prefix: str) -> str | None:
        """The first record text in the evidence (this finding's first) that starts with `prefix`."""
        for f in (self.finding, *self.protocol_findings):
            for item in f.evidence:
                if item.strip().strip('"').lower().startswith(prefix.lower()):
                    return item.strip().strip('"')
        return None


FixResult = tuple[str, tuple[Snippet, ...]]  # (title, snippets)
FixBuilder = Callable[[FixContext], FixResult]


def _zone(ctx: FixContext, records: Iterable[DnsRecord]) -> Snippet:
    lines = [r.zone_line() for r in records]
    return Snippet(f"DNS zone {ctx.domain}.", "\n".join(lines))


def _tags(record: str | None) -> dict[str, str]:
    """The tags of a found DMARC or DKIM record, by lower-cased name (the first of duplicates).

    The project's one tag-list splitter (`mecsa.records.taglist`) reads them, as the checks do.
    """
    from mecsa.records.taglist import split_tags

    tags, _ = split_tags(record or "", fold_case=True)
    out: dict[str, str] = {}
    for tag in tags:
        out.setdefault(tag.name.lower(), tag.value)
    return out


def _rua(ctx: FixContext) -> str:
    found = _tags(ctx.found("v=DMARC1")).get("rua")
    first = found.split(",")[0].strip() if found else ""
    return first or f"{DEFAULT_RUA_LOCAL}@{ctx.domain}"


# --- builders, one per remediation key -------------------------------------------------------


def _mx_publish(ctx: FixContext) -> FixResult:
    from mecsa.harden.records import address_records, mx_record

    if ctx.finding.subject and ctx.finding.id == "mx.host_no_address":
        host = ctx.finding.subject
        records = address_records(host, ("<IPv4 of the server>",), ("<IPv6 of the server>",))
        return f"Give the MX host {host} its addresses", (_zone(ctx, records),)
    if ctx.finding.id == "mx.target_cname" and ctx.finding.evidence:
        canonical = ctx.finding.evidence[-1].rstrip(".")
        return "Point the MX at the canonical host name", (_zone(ctx, [mx_record(ctx.domain, canonical)]),)
    hosts = ctx.mx_or_default
    mx = [mx_record(ctx.domain, h, 10 * (i + 1)) for i, h in enumerate(hosts)]
    return "Publish MX records", (_zone(ctx, mx),)


def _spf_publish(ctx: FixContext) -> FixResult:
    from mecsa.harden.records import spf_record

    return "Publish an SPF record (only the MX hosts send)", (_zone(ctx, [spf_record(ctx.domain)]),)


def _dmarc_record(ctx: FixContext, title: str, policy: str | None = None) -> FixResult:
    from mecsa.harden.records import dmarc_record, dmarc_report_authorization

    rua = _rua(ctx)
    found_policy = _tags(ctx.found("v=DMARC1")).get("p", "").lower()
    chosen = policy or (found_policy if found_policy in ("reject", "quarantine") else "reject")
    records = [dmarc_record(ctx.domain, rua, chosen)]
    authorization = dmarc_report_authorization(ctx.domain, rua)
    if authorization is not None:
        records.append(authorization)
    return title, (_zone(ctx, records),)


def _dmarc_publish(ctx: FixContext) -> FixResult:
    return _dmarc_record(ctx, "Publish a DMARC record with p=reject and aggregate reports")


def _dmarc_policy_reject(ctx: FixContext) -> FixResult:
    return _dmarc_record(ctx, "Enforce DMARC: p=reject", "reject")


def _dmarc_add_rua(ctx: FixContext) -> FixResult:
    return _dmarc_record(ctx, "Ask for DMARC aggregate reports (rua=)")


def _selector(ctx: FixContext) -> str:
    subject = ctx.finding.subject or ""
    if "._domainkey." in subject:
        return subject.split("._domainkey.")[0]
    return _new_selector(ctx)


def _new_selector(ctx: FixContext) -> str:
    from mecsa.harden.settings import default_selector

    return default_selector(ctx.today)


def _settings(ctx: FixContext, host: str, selector: str | None = None) -> HardenSettings:
    """Hardening settings for the assessed names, so the fix text comes from the same generators.

    The certificate paths are the conventional ones; the user adapts them to where theirs live.
    """
    from mecsa.harden.settings import HardenSettings

    rua = f"{DEFAULT_RUA_LOCAL}@{ctx.domain}"
    return HardenSettings(
        domain=ctx.domain,
        mx_host=host,
        cert=Path(f"/etc/ssl/certs/{host}.pem"),
        key=Path(f"/etc/ssl/private/{host}.key"),
        postmaster="root",
        selector=selector or _new_selector(ctx),
        dmarc_rua=rua,
        tls_rpt_rua=rua,
    )


def _main_cf(settings: HardenSettings, prefixes: tuple[str, ...]) -> str:
    from mecsa.harden.layout import Layout
    from mecsa.harden.postfix import main_cf_settings

    wanted = main_cf_settings(settings, Layout(), {})
    return "\n".join(f"{k} = {v}" for k, v in wanted.items() if k.startswith(prefixes))


def _dkim_publish(ctx: FixContext, selector: str | None = None, title: str = "") -> FixResult:
    from mecsa.harden.layout import OPENDKIM_MILTER, Layout
    from mecsa.harden.opendkim import key_table, opendkim_conf, signing_table

    selector = selector or _selector(ctx)
    settings = _settings(ctx, ctx.mx_or_default[0], selector)
    layout = Layout()
    key = layout.dkim_key(ctx.domain, selector)
    steps = Snippet(
        "shell, on the mail server",
        # no `-h rsa-sha256`: it writes h=rsa-sha256 into the record, which verifiers reject
        f"mkdir -p {key.parent}\n"
        f"opendkim-genkey -b 2048 -d {ctx.domain} -s {selector} -D {key.parent}\n"
        f"chown -R opendkim:opendkim {key.parent} && chmod 0600 {key}\n"
        f"cat {key.parent}/{selector}.txt   # publish this TXT at {selector}._domainkey.{ctx.domain}.",
    )
    return title or f"Sign with DKIM (selector {selector}) and publish the key", (
        steps,
        Snippet(str(layout.opendkim_dir / "opendkim.conf"), opendkim_conf(settings, layout).rstrip("\n")),
        Snippet(str(layout.opendkim_dir / "KeyTable"), key_table(settings, layout).rstrip("\n")),
        Snippet(str(layout.opendkim_dir / "SigningTable"), signing_table(settings).rstrip("\n")),
        Snippet(
            "/etc/postfix/main.cf (add to any milters already listed, DKIM before DMARC)",
            f"smtpd_milters = {OPENDKIM_MILTER}\nnon_smtpd_milters = {OPENDKIM_MILTER}",
        ),
    )


def _dkim_rewrite(ctx: FixContext, title: str) -> FixResult:
    """The found key record rebuilt by the generator: same key, no h=, no t=y, s=email ok."""
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    from mecsa.harden.records import dkim_txt

    selector = _selector(ctx)
    tags = _tags(ctx.found("v=DKIM1") or ctx.found("k=") or ctx.found("p="))
    try:
        key = load_der_public_key(base64.b64decode("".join(tags.get("p", "").split()), validate=True))
        record = dkim_txt(selector, ctx.domain, key)
    except (ValueError, TypeError):
        # the key itself cannot be read (or is not RSA/Ed25519): only a new key helps
        return _dkim_publish(ctx, _new_selector(ctx), f"{title}: the key cannot be read, publish a new one")
    return title, (_zone(ctx, [record]),)


def _dkim_fix_h_tag(ctx: FixContext) -> FixResult:
    return _dkim_rewrite(ctx, "Remove the h= tag from the DKIM key record")


def _dkim_fix_record(ctx: FixContext) -> FixResult:
    return _dkim_rewrite(ctx, "Publish exactly one valid DKIM key record for the selector")


def _dkim_leave_testing(ctx: FixContext) -> FixResult:
    return _dkim_rewrite(ctx, "Leave DKIM testing mode (drop t=y)")


def _dkim_rotate_key(ctx: FixContext) -> FixResult:
    title, snippets = _dkim_publish(ctx, _new_selector(ctx))
    old = ctx.finding.subject or "the old selector"
    keep = Snippet("then", f"; keep {old} published for a week after the switch, then remove it")
    return f"Rotate to a new 2048-bit DKIM key: {title}", (*snippets, keep)


def _dkim_give_selector(ctx: FixContext) -> FixResult:
    return "Name the DKIM selector (the s= tag of a DKIM-Signature header you send)", (
        Snippet("shell", f"mecsa assess {ctx.domain} --dkim-selector <selector>"),
    )


def _dmarc_authorise_external(ctx: FixContext) -> FixResult:
    from mecsa.harden.records import dmarc_report_authorization

    texts = (ctx.finding.message, *ctx.finding.evidence)
    addresses = dict.fromkeys(m for t in texts for m in re.findall(r"mailto:[^\s,;!]+", t))
    records = [r for a in addresses if (r := dmarc_report_authorization(ctx.domain, a)) is not None]
    if not records:
        return _dmarc_record(ctx, "Send DMARC reports to an address inside the domain")
    return "Let the report domain accept the DMARC reports (RFC 7489 §7.1)", (
        Snippet("DNS zone of the report domain", "\n".join(r.zone_line() for r in records)),
    )


def _spf_from_found(ctx: FixContext, title: str, drop: Callable[[str], bool]) -> FixResult:
    from mecsa.harden.records import spf_record

    found = ctx.found("v=spf1")
    terms = found.split()[1:] if found else []
    kept = [t for t in terms if not drop(t.lower().lstrip("+-~?"))]
    return title, (_zone(ctx, [spf_record(ctx.domain, kept or ["mx"])]),)


def _spf_end_with_all(ctx: FixContext) -> FixResult:
    # keep the authorised senders; any `all` or `redirect=` gives way to the final -all
    return _spf_from_found(
        ctx, "End the SPF record with -all", lambda t: t == "all" or t.startswith("redirect=")
    )


def _spf_remove_ptr(ctx: FixContext) -> FixResult:
    return _spf_from_found(
        ctx, "Drop ptr from SPF (RFC 7208 §5.5)", lambda t: t == "all" or t == "ptr" or t.startswith("ptr:")
    )


def _spf_single_record(ctx: FixContext) -> FixResult:
    return _spf_from_found(ctx, "Publish exactly one SPF record (delete the others)", lambda t: t == "all")


def _spf_rewrite(ctx: FixContext) -> FixResult:
    from mecsa.harden.records import spf_record

    title = "Replace the SPF record (add ip4:/ip6:/include: terms for any other sender you use)"
    return title, (_zone(ctx, [spf_record(ctx.domain)]),)


def _spf_flatten(ctx: FixContext) -> FixResult:
    from mecsa.harden.records import spf_record

    found = ctx.found("v=spf1")
    terms = found.split()[1:] if found else ["mx"]
    if not ctx.mx_addresses or not any(t.lower() in ("mx", "+mx") for t in terms):
        return _spf_rewrite(ctx)
    # `mx` costs one lookup plus one per MX host; the addresses themselves cost none
    addresses = [f"ip6:{a}" if ":" in a else f"ip4:{a}" for a in ctx.mx_addresses]
    kept: list[str] = []
    for term in terms:
        if term.lower() in ("mx", "+mx"):
            kept.extend(addresses)
        elif term.lstrip("+-~?").lower() != "all":
            kept.append(term)
    title = "Cut SPF lookups: list the MX addresses instead of mx (update it when they change)"
    return title, (_zone(ctx, [spf_record(ctx.domain, kept)]),)


def _mta_sts(title: str) -> FixBuilder:
    def build(ctx: FixContext) -> FixResult:
        _, snippets = _mta_sts_publish(ctx)
        return title, snippets

    return build


def _mta_sts_fix_certificate(ctx: FixContext) -> FixResult:
    host = f"mta-sts.{ctx.domain}"
    return f"Serve the MTA-STS policy over HTTPS with a valid certificate for {host}", (
        Snippet(
            "shell, on the web server for the policy (any public CA; certbot shown)",
            f"certbot certonly -d {host}",
        ),
    )


def _dane_rollover(ctx: FixContext) -> FixResult:
    host = ctx.hosts()[0]
    return "Pre-publish a TLSA record for the next TLS key, beside the current one", (
        Snippet(
            "shell, on the mail server",
            f"mecsa harden tlsa-next --config mecsa.toml   # writes the next key for {host}, prints its TLSA",
        ),
    )


def _tls_versions(ctx: FixContext) -> FixResult:
    settings = _settings(ctx, ctx.hosts()[0])
    text = _main_cf(settings, ("smtpd_tls_protocols", "smtpd_tls_mandatory_protocols"))
    return "Accept only TLS 1.2 and 1.3", (Snippet("/etc/postfix/main.cf", text),)


def _tls_ciphers(ctx: FixContext) -> FixResult:
    settings = _settings(ctx, ctx.hosts()[0])
    text = _main_cf(settings, ("smtpd_tls_exclude_ciphers",))
    title = "Refuse weak ciphers (NULL, EXPORT, RC4, 3DES, anonymous)"
    return title, (Snippet("/etc/postfix/main.cf", text),)


def _tls_rpt_publish(ctx: FixContext) -> FixResult:
    from mecsa.harden.records import tls_rpt_record

    record = tls_rpt_record(ctx.domain, f"{DEFAULT_RUA_LOCAL}@{ctx.domain}")
    return "Publish a TLS-RPT record", (_zone(ctx, [record]),)


def _mta_sts_publish(ctx: FixContext) -> FixResult:
    from mecsa.harden.records import mta_sts_records

    sts = mta_sts_records(ctx.domain, ctx.mx_or_default)
    return "Publish an MTA-STS policy in enforce mode", (
        _zone(ctx, [sts.txt]),
        Snippet(f"the file served at {sts.url} (Content-Type: text/plain, CRLF line ends)", sts.policy),
    )


def _dane_publish_tlsa(ctx: FixContext) -> FixResult:
    hosts = ctx.hosts()
    # the certificate is on the server, not in the assessment: the command computes the 3 1 1 data
    commands = "\n".join(
        f"printf '_25._tcp.{h}. 3600 IN TLSA 3 1 1 %s\\n' \"$(openssl x509 -in /etc/ssl/certs/{h}.pem"
        " -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1)\""
        for h in hosts
    )
    return "Publish TLSA 3 1 1 records for the MX certificates (in a DNSSEC-signed zone)", (
        Snippet("shell, on the mail server: prints the zone lines to publish", commands),
        Snippet("or, with the hardening settings", "mecsa harden records --config mecsa.toml"),
    )


def _dnssec_sign_zone(ctx: FixContext) -> FixResult:
    from mecsa.harden.records import ds_note

    return f"Sign the zone {ctx.domain}. with DNSSEC", (
        Snippet(f"DNS zone {ctx.domain}.", ds_note(ctx.domain)),
    )


def _dnssec_fix_signatures(ctx: FixContext) -> FixResult:
    from mecsa.harden.records import ds_note

    return "Repair the DNSSEC chain: re-sign the zone; the DS at the parent must match its key", (
        Snippet(f"DNS zone {ctx.domain}.", ds_note(ctx.domain)),
        Snippet("shell: check", f"delv {ctx.domain}. SOA   # must say: fully validated"),
    )


def _starttls_enable(ctx: FixContext) -> FixResult:
    hosts = ctx.hosts()
    text = _main_cf(_settings(ctx, hosts[0]), ("smtpd_tls_",))
    return f"Offer STARTTLS with TLS 1.2+ on {', '.join(hosts)}", (Snippet("/etc/postfix/main.cf", text),)


def _x509_replace(ctx: FixContext) -> FixResult:
    hosts = ctx.hosts()
    host = hosts[0]
    live = f"/etc/letsencrypt/live/{host}"
    settings = replace(
        _settings(ctx, host), cert=Path(f"{live}/fullchain.pem"), key=Path(f"{live}/privkey.pem")
    )
    chain = _main_cf(settings, ("smtpd_tls_chain_files",))
    return f"Serve a valid certificate for {', '.join(hosts)}", (
        Snippet(
            "shell, on the mail server (any public CA; certbot shown)",
            "certbot certonly --standalone " + " ".join(f"-d {h}" for h in hosts),
        ),
        Snippet("/etc/postfix/main.cf", chain),
    )


FIXES: Mapping[str, FixBuilder] = {
    "mx.publish": _mx_publish,
    "spf.publish": _spf_publish,
    "spf.end_with_all": _spf_end_with_all,
    "spf.single_record": _spf_single_record,
    "spf.remove_ptr": _spf_remove_ptr,
    "spf.fix_syntax": _spf_rewrite,
    "spf.fix_include": _spf_rewrite,
    "spf.reduce_lookups": _spf_flatten,
    "spf.reduce_void_lookups": _spf_rewrite,
    "spf.shorten": _spf_flatten,
    "dkim.publish": _dkim_publish,
    "dkim.fix_h_tag": _dkim_fix_h_tag,
    "dkim.fix_record": _dkim_fix_record,
    "dkim.leave_testing": _dkim_leave_testing,
    "dkim.rotate_key": _dkim_rotate_key,
    "dkim.give_selector": _dkim_give_selector,
    "dmarc.publish": _dmarc_publish,
    "dmarc.policy_reject": _dmarc_policy_reject,
    "dmarc.add_rua": _dmarc_add_rua,
    "dmarc.fix_record": lambda ctx: _dmarc_record(ctx, "Publish a valid DMARC record"),
    "dmarc.one_record": lambda ctx: _dmarc_record(
        ctx, "Publish exactly one DMARC record (delete the others)"
    ),
    "dmarc.pct_full": lambda ctx: _dmarc_record(ctx, "Apply the DMARC policy to all mail (drop pct=)"),
    "dmarc.authorise_external": _dmarc_authorise_external,
    "tls_rpt.publish": _tls_rpt_publish,
    "mta_sts.publish_record": _mta_sts_publish,
    "mta_sts.serve_policy": _mta_sts("Serve the MTA-STS policy file (and announce it)"),
    "mta_sts.fix_policy": _mta_sts("Replace the MTA-STS policy with a valid one (and change its id)"),
    "mta_sts.enforce": _mta_sts("Switch MTA-STS to mode enforce (and change its id)"),
    "mta_sts.max_age": _mta_sts("Raise the MTA-STS max_age to a week (and change its id)"),
    "mta_sts.add_mx_pattern": _mta_sts("List every MX host in the MTA-STS policy (and change its id)"),
    "mta_sts.fix_certificate": _mta_sts_fix_certificate,
    "dane.publish": _dane_publish_tlsa,
    "dane.rollover": _dane_rollover,
    "dnssec.sign_zone": _dnssec_sign_zone,
    "dnssec.fix_signatures": _dnssec_fix_signatures,
    "starttls.enable": _starttls_enable,
    "tls.versions": _tls_versions,
    "tls.ciphers": _tls_ciphers,
    "x509.replace": _x509_replace,
}


def canonical_key(key: str) -> str:
    """`tls-rpt.publish` and `tls_rpt.publish` name the same fix."""
    return key.replace("-", "_").lower()


def has_fix(key: str, builders: Mapping[str, FixBuilder] = FIXES) -> bool:
    """True when `key` has a builder (among the shared ones, unless `builders` is given)."""
    return canonical_key(key) in {canonical_key(k) for k in builders}


def fix_for(key: str, ctx: FixContext, builders: Mapping[str, FixBuilder] = FIXES) -> Fix | None:
    """The fix for one remediation key in one context; None when the key is unknown."""
    builder = {canonical_key(k): b for k, b in builders.items()}.get(canonical_key(key))
    if builder is None:
        return None
    title, snippets = builder(ctx)
    return Fix(key, title, snippets, (ctx.finding.id,), ctx.finding.subject)


def mx_hosts(assessment: Assessment) -> tuple[str, ...]:
    """The MX host names the mx check found, in preference order."""
    mx = assessment.facts(MxFacts)
    return tuple(h.name for h in mx.hosts) if mx else ()


def mx_addresses(assessment: Assessment) -> tuple[str, ...]:
    """The addresses of every MX host, in MX order, without repeats."""
    mx = assessment.facts(MxFacts)
    return mx.addresses if mx else ()


def fixes_for(
    assessment: Assessment, today: dt.date | None = None, builders: Mapping[str, FixBuilder] = FIXES
) -> tuple[Fix, ...]:
    """One fix per distinct remedy for the failing (fail/warn) findings, in finding order.

    Findings that share a remedy (same key, same text) are merged into one fix listing them all.
    `builders` are the shared fix builders plus those the registered checks bring
    (`mecsa.checks.registry.remedies()`).
    """
    hosts, addresses = mx_hosts(assessment), mx_addresses(assessment)
    all_findings = assessment.findings
    merged: dict[FixResult, Fix] = {}
    for finding in all_findings:
        if finding.remediation is None or finding.status not in _FIXABLE:
            continue
        siblings = tuple(f for f in all_findings if f.protocol == finding.protocol and f is not finding)
        ctx = FixContext(assessment.domain, hosts, finding, siblings, today, addresses)
        fix = fix_for(finding.remediation, ctx, builders)
        if fix is None:
            continue
        slot = (canonical_key(fix.key), fix.snippets)
        if slot in merged:
            old = merged[slot]
            ids = old.findings if finding.id in old.findings else (*old.findings, finding.id)
            merged[slot] = Fix(old.key, old.title, old.snippets, ids, old.subject)
        else:
            merged[slot] = fix
    return tuple(merged.values())
