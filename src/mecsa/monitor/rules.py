"""The alert rules: pure functions from the new assessment and the earlier ones to alerts.

`evaluate(new, earlier, settings)` takes documents (`mecsa assess --json`, as stored), newest
earlier one first. Events compare the new document with the one before it; conditions hold on the
new document (some need the earlier ones: the key DANE last matched, two passes in a row).

"Could not find out" is never a break on its own: an `error` finding, or a port 25 that did not
answer, becomes an alert only when the pass before saw it too (no flapping on one timeout).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from mecsa.monitor import document as d
from mecsa.monitor.alert import Alert, AlertKind, FixText, Severity

DEFAULT_EXPIRY_DAYS = 21  # Let's Encrypt renews 30 days ahead: three weeks left means renewal failed
CRITICAL_EXPIRY_DAYS = 7


@dataclass(frozen=True, slots=True)
class RuleSettings:
    expiry_days: int = DEFAULT_EXPIRY_DAYS
    alert_on_warnings: bool = False  # warn findings (e.g. a weak but working setting) as alerts too


Rule = Callable[[d.Document, Sequence[d.Document], RuleSettings], list[Alert]]


def evaluate(
    new: d.Document, earlier: Sequence[d.Document], settings: RuleSettings = RuleSettings()
) -> list[Alert]:
    """Every alert of the new assessment, in rule order; `earlier` is newest first (may be empty)."""
    out: list[Alert] = []
    for rule in RULES:
        out.extend(rule(new, earlier, settings))
    return out


# --- fixes from the catalogue ---------------------------------------------------------------------


@cache
def _builders() -> Mapping[str, Any]:
    from mecsa.checks.registry import remedies

    return remedies()


def catalogue_fix(
    doc: d.Document, remediation: str, finding: Mapping[str, Any] | None = None, subject: str | None = None
) -> tuple[FixText, ...]:
    """The catalogue's fix for `remediation`, filled in with the domain's names (as `mecsa assess`)."""
    from mecsa.fixes import FixContext, fix_for
    from mecsa.model import Finding, Status

    f = finding or {}
    as_finding = Finding(
        str(f.get("id", remediation)),
        Status(str(f.get("status", "fail"))),
        str(f.get("protocol", "")),
        str(f.get("message", "")),
        tuple(str(e) for e in f.get("evidence") or ()),
        remediation,
        str(f["subject"]) if f.get("subject") else subject,
    )
    siblings = tuple(
        Finding(
            str(s["id"]),
            Status(str(s.get("status", "info"))),
            str(s.get("protocol", "")),
            str(s.get("message", "")),
            tuple(str(e) for e in s.get("evidence") or ()),
        )
        for s in d.findings(doc)
        if s.get("protocol") == as_finding.protocol and s is not finding
    )
    mx = d.mx_addresses(doc)
    addresses = tuple(dict.fromkeys(a for host in mx.values() for a in host))
    ctx = FixContext(str(doc.get("domain", "")), tuple(mx), as_finding, siblings, None, addresses)
    fix = fix_for(remediation, ctx, _builders())
    return () if fix is None else (FixText(fix.title, tuple((s.where, s.text) for s in fix.snippets)),)


def _finding_fixes(doc: d.Document, wanted: Callable[[Mapping[str, Any]], bool]) -> tuple[FixText, ...]:
    out: dict[FixText, None] = {}
    for f in d.findings(doc):
        if f.get("remediation") and f.get("status") in ("fail", "warn") and wanted(f):
            out.update(dict.fromkeys(catalogue_fix(doc, str(f["remediation"]), f)))
    return tuple(out)


def _problem_keys(doc: d.Document) -> set[tuple[str, str]]:
    return {d.finding_key(f) for f in d.findings(doc) if f.get("status") in ("fail", "error")}


# --- events: a change from the previous assessment --------------------------------------------------


def level_dropped(new: d.Document, earlier: Sequence[d.Document], _s: RuleSettings) -> list[Alert]:
    if not earlier:
        return []
    before, after = d.levels(earlier[0]), d.levels(new)
    appeared = _problem_keys(new) - _problem_keys(earlier[0])
    out = []
    for area in d.AREAS:
        old, now = before[area], after[area]
        if old is not None and now is not None and now < old:
            out.append(
                Alert(
                    str(new["domain"]),
                    "level_dropped",
                    f"level_dropped {area}",
                    AlertKind.EVENT,
                    Severity.WARNING,
                    f"{area} level dropped from {old}/10 to {now}/10",
                    (f"{area}: {old} -> {now}",),
                    _finding_fixes(new, lambda f: d.finding_key(f) in appeared),
                )
            )
    return out


def protocol_regressed(new: d.Document, earlier: Sequence[d.Document], _s: RuleSettings) -> list[Alert]:
    if not earlier:
        return []
    before, after = d.protocol_status(earlier[0]), d.protocol_status(new)
    out = []
    for protocol, (status, reason) in after.items():
        old = before.get(protocol)
        if old is None or old[0] != "pass" or status not in ("fail", "error"):
            continue
        out.append(
            Alert(
                str(new["domain"]),
                "protocol_regressed",
                f"protocol_regressed {protocol}",
                AlertKind.EVENT,
                Severity.CRITICAL if status == "fail" else Severity.WARNING,
                f"{protocol} went from pass to {status}: {reason}",
                (f"before: pass ({old[1]})", f"now: {status} ({reason})"),
                _finding_fixes(new, lambda f, p=protocol: f.get("protocol") == p),  # type: ignore[misc]
            )
        )
    return out


def mx_changed(new: d.Document, earlier: Sequence[d.Document], _s: RuleSettings) -> list[Alert]:
    if not earlier:
        return []
    before, after = d.mx_addresses(earlier[0]), d.mx_addresses(new)
    if not before or before == after:  # an earlier document without the mx check says nothing
        return []
    old = {f"{h} {a}" if a else h for h, addrs in before.items() for a in (addrs or ("",))}
    now = {f"{h} {a}" if a else h for h, addrs in after.items() for a in (addrs or ("",))}
    evidence = tuple(f"- {x}" for x in sorted(old - now)) + tuple(f"+ {x}" for x in sorted(now - old))
    hosts_changed = set(before) != set(after)
    what = "MX set" if hosts_changed else "MX addresses"
    return [
        Alert(
            str(new["domain"]),
            "mx_changed",
            "mx_changed",
            AlertKind.EVENT,
            Severity.INFO,
            f"the {what} changed: {', '.join(sorted(after)) or 'no MX host'}",
            evidence,
        )
    ]


def mta_sts_id_unchanged(new: d.Document, earlier: Sequence[d.Document], _s: RuleSettings) -> list[Alert]:
    """RFC 8461 §3.1: senders refetch the policy only when the TXT id changes."""
    now = d.mta_sts(new)
    if now is None:
        return []
    # the condition: this id was announced earlier with another policy text
    stale = next(
        (
            p
            for p in map(d.mta_sts, earlier)
            if p and p.txt_id == now.txt_id and p.policy_sha256 != now.policy_sha256
        ),
        None,
    )
    domain = str(new["domain"])
    out = []
    if stale is not None:
        new_id = now.policy_sha256[:20]
        out.append(
            Alert(
                domain,
                "mta_sts_id",
                "mta_sts_id text_changed",
                AlertKind.CONDITION,
                Severity.WARNING,
                f"the MTA-STS policy text changed but its id ({now.txt_id}) did not:"
                " senders keep the old policy",
                (
                    f"id={now.txt_id}",
                    f"policy sha256 before: {stale.policy_sha256}",
                    f"now: {now.policy_sha256}",
                ),
                (
                    FixText(
                        "Announce the new policy: change the id of the MTA-STS record",
                        ((f"DNS zone {domain}.", f'_mta-sts.{domain}. 3600 IN TXT "v=STSv1; id={new_id}"'),),
                    ),
                ),
            )
        )
    previous = d.mta_sts(earlier[0]) if earlier else None
    if previous and previous.txt_id != now.txt_id and previous.policy_sha256 == now.policy_sha256:
        out.append(
            Alert(
                domain,
                "mta_sts_id",
                "mta_sts_id id_changed",
                AlertKind.EVENT,
                Severity.INFO,
                f"the MTA-STS id changed ({previous.txt_id} -> {now.txt_id}) but the policy text did not",
                (f"id: {previous.txt_id} -> {now.txt_id}", f"policy sha256: {now.policy_sha256}"),
            )
        )
    return out


# --- conditions: what is wrong now ------------------------------------------------------------------


def finding_present(new: d.Document, earlier: Sequence[d.Document], s: RuleSettings) -> list[Alert]:
    """Each failing finding; an `error` one only when the pass before had it too (no flapping)."""
    before_errors = (
        {d.finding_key(f) for f in d.findings(earlier[0]) if f.get("status") == "error"} if earlier else set()
    )
    wanted = {"fail", "error"} | ({"warn"} if s.alert_on_warnings else set())
    out = []
    for f in d.findings(new):
        status = str(f.get("status"))
        fid, subject = d.finding_key(f)
        # port 25 silence has its own rule (smtp_unreachable); other checks' copies of it say the same
        if status not in wanted or fid.endswith(".unreachable"):
            continue
        if status == "error" and (fid, subject) not in before_errors:
            continue
        remediation = f.get("remediation")
        out.append(
            Alert(
                str(new["domain"]),
                "finding",
                f"finding {fid} {subject}".rstrip(),
                AlertKind.CONDITION,
                Severity.CRITICAL if status == "fail" else Severity.WARNING,
                str(f.get("message", fid)),
                (f"{fid}: {status}", *(str(e) for e in f.get("evidence") or ())),
                catalogue_fix(new, str(remediation), f) if remediation else (),
            )
        )
    return out


def certificate_expiring(new: d.Document, _earlier: Sequence[d.Document], s: RuleSettings) -> list[Alert]:
    out = []
    for (host, address), cert in sorted(d.certificates(new).items()):
        days = cert.days_left if cert.days_left is not None else _days_left(cert.not_after, new)
        if days is None or days > s.expiry_days:
            continue
        when = "expired" if days < 0 else f"expires in {days} day(s)"
        out.append(
            Alert(
                str(new["domain"]),
                "certificate_expiring",
                f"certificate_expiring {host} {address}",
                AlertKind.CONDITION,
                Severity.CRITICAL if days <= CRITICAL_EXPIRY_DAYS else Severity.WARNING,
                f"{host} [{address}]: the certificate {when} ({cert.not_after})",
                (cert.subject, f"not_after={cert.not_after}", f"serial={cert.serial}"),
                catalogue_fix(new, "x509.replace", subject=host),
            )
        )
    return out


def _days_left(not_after: str, doc: d.Document) -> int | None:
    try:
        end = dt.datetime.fromisoformat(not_after)
        checked = dt.datetime.fromisoformat(str(d.check(doc, "x509").get("checked_at")))
    except ValueError:
        return None
    return (end - checked).days


def _tlsa_311(host: str, spki_sha256: str) -> str:
    return f"_25._tcp.{host}. 3600 IN TLSA 3 1 1 {spki_sha256}"


def dane_key_changed(new: d.Document, earlier: Sequence[d.Document], _s: RuleSettings) -> list[Alert]:
    """The key changed and no TLSA matches the new one: DANE senders defer (RFC 7672 §2.2)."""
    certs = d.certificates(new)
    out = []
    for host in d.dane_hosts(new):
        if not host.tlsa:
            continue
        for address, outcome in sorted(host.matched.items()):
            cert = certs.get((host.host, address))
            if outcome == "matched" or cert is None or cert.spki_sha256 is None:
                continue
            last_good = _last_matching_key(earlier, host.host, address)
            if last_good is None or last_good == cert.spki_sha256:
                continue
            out.append(
                Alert(
                    str(new["domain"]),
                    "dane_key_changed",
                    f"dane_key_changed {host.host} {address}",
                    AlertKind.CONDITION,
                    Severity.CRITICAL,
                    f"{host.host} [{address}]: the certificate has a new key and no TLSA record matches it:"
                    " DANE senders defer mail",
                    (
                        f"key before: {last_good}",
                        f"key now: {cert.spki_sha256}",
                        *(f"TLSA {r}" for r in host.tlsa),
                    ),
                    (
                        FixText(
                            f"Publish the TLSA record of the new key for {host.host} (keep the old one until"
                            " the next rollover is pre-published)",
                            ((f"DNS zone of {host.host}", _tlsa_311(host.host, cert.spki_sha256)),),
                        ),
                        *catalogue_fix(new, "dane.rollover", subject=host.host),
                    ),
                )
            )
    return out


def _last_matching_key(earlier: Sequence[d.Document], host: str, address: str) -> str | None:
    for doc in earlier:
        matched = {h.host: h.matched for h in d.dane_hosts(doc)}
        cert = d.certificates(doc).get((host, address))
        if matched.get(host, {}).get(address) == "matched" and cert is not None and cert.spki_sha256:
            return cert.spki_sha256
    return None


def dane_no_next_key(new: d.Document, _earlier: Sequence[d.Document], s: RuleSettings) -> list[Alert]:
    """Renewal is near and only the current key's TLSA is published: the renewal will break DANE.

    A DANE-TA (usage 2) record that matches survives a renewal with a new leaf key; a DANE-EE (3)
    record for another key is the pre-published next key. Neither: the break is on a known date.
    """
    certs = d.certificates(new)
    out = []
    for host in d.dane_hosts(new):
        for address, records in sorted(host.records_matched.items()):
            cert = certs.get((host.host, address))
            if cert is None or host.matched.get(address) != "matched":
                continue
            days = cert.days_left if cert.days_left is not None else _days_left(cert.not_after, new)
            if days is None or days > s.expiry_days:
                continue
            survives = any(r.startswith("2 ") and ok for r, ok in records)
            next_key = any(r.startswith("3 ") and not ok for r, ok in records)
            if survives or next_key:
                continue
            out.append(
                Alert(
                    str(new["domain"]),
                    "dane_no_next_key",
                    f"dane_no_next_key {host.host} {address}",
                    AlertKind.CONDITION,
                    Severity.WARNING,
                    f"{host.host} [{address}]: the certificate must be renewed within {days} day(s) and"
                    " no TLSA record for the next key is published: a renewal with a new key will break DANE",
                    (f"not_after={cert.not_after}", *(f"TLSA {r}" for r, _ in records)),
                    catalogue_fix(new, "dane.rollover", subject=host.host),
                )
            )
    return out


def smtp_unreachable(new: d.Document, earlier: Sequence[d.Document], _s: RuleSettings) -> list[Alert]:
    """Port 25 silent on this pass and the one before: one miss is not an alert (no flapping)."""
    if not earlier:
        return []
    both = d.smtp_unreachable(new) & d.smtp_unreachable(earlier[0])
    return [
        Alert(
            str(new["domain"]),
            "smtp_unreachable",
            f"smtp_unreachable {host} {address}",
            AlertKind.CONDITION,
            Severity.CRITICAL,
            f"{host} [{address}] did not answer on port 25 in two passes in a row",
            (f"{host} {address}: no SMTP greeting",),
        )
        for host, address in sorted(both)
    ]


RULES: tuple[Rule, ...] = (
    level_dropped,
    protocol_regressed,
    mx_changed,
    mta_sts_id_unchanged,
    finding_present,
    certificate_expiring,
    dane_key_changed,
    dane_no_next_key,
    smtp_unreachable,
)
