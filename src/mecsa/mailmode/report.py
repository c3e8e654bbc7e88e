"""One mail-mode report per token, assembled from the store's entries, and its renderers.

The report covers both directions: the inbound side from the probe (what the user's MX offered),
the outbound side from the messages the user's provider delivered (STARTTLS, SPF, DKIM, DMARC,
scored like a domain), the DANE and MTA-STS enforcement verdicts, and the sender domain's
domain-mode assessment.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from typing import Any

from mecsa.mailmode.addresses import AddressKind
from mecsa.mailmode.connections import CONNECTIONS_TOKEN, ConnectionAttempt
from mecsa.mailmode.enforcement import DEFAULT_WINDOW, Trap, arrivals_from_deliveries, judge
from mecsa.mailmode.grade import facts_from_report, provider_grade
from mecsa.mailmode.store import MailStore, StoredEntry
from mecsa.report.untrusted import escape_lines, html_value
from mecsa.scoring import AREA_TITLES

REPORT_VERSION = 1
_GRADED_KINDS = frozenset({AddressKind.CONTROL.value, AddressKind.FIXED.value})


def build_report(
    token: str,
    entries: Sequence[StoredEntry],
    now: dt.datetime,
    window: dt.timedelta = DEFAULT_WINDOW,
    connections: Sequence[ConnectionAttempt] = (),
) -> dict[str, Any]:
    """The report of `token` as JSON-able data (pure: `now` decides the enforcement windows).

    `connections`: the receiver's connection log (the DANE trap's positive evidence).
    """
    deliveries = [e for e in entries if e.kind == "delivery"]
    analyses = {e.data["delivery"]: e.data for e in entries if e.kind == "analysis"}
    messages = []
    for d in deliveries:
        analysed = analyses.get(d.id, {})
        messages.append(
            {
                "id": d.id,
                "stored_at": d.created_at.isoformat(),
                **d.data,
                "analysis": analysed.get("analysis"),
                "outbound": analysed.get("outbound"),
            }
        )
    graded = [
        m
        for m in messages
        if m["outbound"] and any(r["kind"] in _GRADED_KINDS for r in m.get("recipients", []))
    ]
    arrivals = arrivals_from_deliveries(d.data for d in deliveries)
    enforcement = [judge(trap, arrivals, now, window, connections).to_json() for trap in Trap]
    last = {
        kind: next((e.data for e in reversed(entries) if e.kind == kind), None)
        for kind in ("probe", "assessment")
    }
    provider = _provider(last["probe"], last["assessment"], graded, enforcement)
    return {
        "report_version": REPORT_VERSION,
        "token": token,
        "generated_at": now.isoformat(),
        "window_minutes": int(window.total_seconds() // 60),
        "inbound": last["probe"],
        "outbound": graded[0]["outbound"] if graded else None,
        "enforcement": enforcement,
        "messages": messages,
        "sender_assessment": last["assessment"],
        "errors": [e.data for e in entries if e.kind == "error"],
        "autoreply": [e.data for e in entries if e.kind == "autoreply"],
        "provider": provider,
    }


def _provider(
    probe: dict[str, Any] | None,
    assessment: dict[str, Any] | None,
    graded: Sequence[dict[str, Any]],
    enforcement: Sequence[dict[str, Any]],
) -> dict[str, Any] | None:
    """The provider grade, once there is a domain to grade (from the probe or a message)."""
    domain = (assessment or {}).get("domain")
    if domain is None and probe:
        domain = str(probe["recipient"]).rpartition("@")[2].lower()
    if domain is None and graded:
        domain = graded[0]["outbound"]["domain"]
    if not domain:
        return None
    analyses = [(m["id"], m["analysis"]) for m in graded if m.get("analysis")]
    facts = facts_from_report(domain, (assessment or {}).get("assessment"), analyses, enforcement)
    grade = provider_grade(facts)
    grade["assessed"] = assessment is not None
    if assessment is None:
        grade["note"] = f"{domain} has not been assessed in domain mode yet: the inbound side is empty"
    return grade


async def load_report(
    store: MailStore, token: str, *, now: dt.datetime | None = None, window: dt.timedelta = DEFAULT_WINDOW
) -> dict[str, Any] | None:
    """The report of `token`, or None when the store knows nothing of it."""
    entries = await store.entries(token)
    if not entries:
        return None
    log = await connection_log(store, entries[0].created_at - window)
    return build_report(token, entries, now or dt.datetime.now(dt.UTC), window, log)


async def connection_log(store: MailStore, since: dt.datetime) -> list[ConnectionAttempt]:
    """The receiver's connections since `since`: only those can be evidence for a token whose
    first entry is younger (the judge also looks back at most one window)."""
    return [ConnectionAttempt.from_json(e.data) for e in await store.entries(CONNECTIONS_TOKEN, since=since)]


def render_text(report: dict[str, Any]) -> str:
    """A plain-text summary for the terminal."""
    lines = [f"MECSA mail-mode report {report['token']} ({report['generated_at']})", ""]
    provider = report.get("provider")
    if provider:
        lines.append(f"Provider grade for {provider['domain']} ({provider['messages']} message(s) from it):")
        for name, grade in provider["profiles"].items():
            levels = ", ".join(f"{AREA_TITLES[k]} {v}/10" for k, v in grade["levels"].items())
            lines.append(f"  {name:9} {levels}")
            lines.extend(f"            pending: {p}" for p in grade["pending"])
        lines.append("  which evidence counted (mecsa | mecsa-st):")
        mecsa, st = provider["profiles"]["mecsa"]["protocols"], provider["profiles"]["mecsa-st"]["protocols"]
        for protocol, g in mecsa.items():
            marks = f"{'yes' if g['counted'] else 'no ':3} | {'yes' if st[protocol]['counted'] else 'no ':3}"
            lines.append(f"    {protocol:12} {marks}  [{g['evidence']}] {g['why']}")
        if provider.get("note"):
            lines.append(f"  note: {provider['note']}")
        lines.append("")
    inbound = report.get("inbound")
    lines.append("Inbound (the probe mail to your provider):")
    if not inbound:
        lines.append("  no probe recorded for this token")
    else:
        lines.append(
            f"  to {inbound['recipient']}: {'delivered' if inbound['delivered'] else 'NOT delivered'}"
        )
        if inbound.get("mx_error"):
            lines.append(f"  MX: {inbound['mx_error']}")
        for a in inbound.get("attempts", []):
            s = a["session"]
            tls = s.get("tls") or {}
            lines.append(
                f"  {a['host']} [{s['address']}]: "
                f"STARTTLS {'offered' if s['starttls_offered'] else 'not offered'}, "
                f"TLS {tls.get('version') or '-'} {tls.get('cipher') or ''}".rstrip()
            )
            pkix = a.get("pkix")
            if pkix:
                lines.append(
                    f"    certificate: {'valid' if pkix['valid'] else 'NOT valid'} ({pkix['reason']})"
                )
            lines.append(f"    DANE: {a['dane']['status']} ({a['dane']['reason']})")
            if a.get("delivery"):
                d = a["delivery"]
                said = d.get("explanation") or f"{d['code']} {d['reply']}"
                lines.append(f"    delivery: {said}")
    lines += ["", "Outbound (mail your provider delivered here):"]
    outbound = report.get("outbound")
    if not outbound:
        lines.append("  no analysed message yet")
    else:
        for protocol, verdict in outbound["verdicts"].items():
            lines.append(f"  {protocol:9} {verdict['status']:6} {verdict['reason']}")
    lines += ["", "Enforcement (when your provider sends):"]
    for e in report["enforcement"]:
        lines.append(f"  {e['trap']:8} {e['label']}: {e['reason']}")
        lines.extend(f"           {x}" for x in e["evidence"])
        if e.get("elapsed_minutes") is not None:
            lines.append(
                f"           {e['elapsed_minutes']} of {e['window_minutes']} min of the window passed"
            )
        if e.get("pending"):
            lines.append(f"           pending: {e['pending']}")
    lines += ["", f"Messages: {len(report['messages'])}"]
    for m in report["messages"]:
        c = m["connection"]
        kinds = ",".join(sorted({r["kind"] for r in m.get("recipients", [])}))
        tls = (c.get("tls") or {}).get("version") or "no TLS"
        lines.append(f"  #{m['id']} {c['received_at']} from {c['helo']} [{c['peer_ip']}] {tls} -> {kinds}")
    assessment = report.get("sender_assessment")
    if assessment:
        data = assessment["assessment"]
        levels = ", ".join(f"{k} {v}/10" for k, v in data.get("scores", {}).items())
        lines += ["", f"Domain {assessment['domain']} in domain mode ({data.get('profile')}): {levels}"]
        for protocol, verdict in data.get("protocols", {}).items():
            lines.append(f"  {protocol:12} {verdict['status']:6} {verdict['reason']}")
        for fix in assessment.get("fixes", []):
            lines.append(f"  fix: {fix['title']}")
    for a in report.get("autoreply", []):
        lines.append(
            f"auto-reply to {a.get('recipient') or '<>'}: "
            f"{'sent' if a.get('sent') else 'not sent'} ({a.get('decision')})"
        )
    for err in report.get("errors", []):
        lines.append(f"error: {err.get('stage')}: {err.get('error')}")
    # Every value came from a stranger's mail: each line escaped (mecsa.report.untrusted).
    return escape_lines(lines) + "\n"


def html_view(report: dict[str, Any]) -> dict[str, Any]:
    """What the HTML page shows, computed here so that the template only formats (pure)."""
    from mecsa.report.view import AreaView
    from mecsa.scoring import AREAS, load_profile, stars

    provider = report.get("provider") or {}
    profiles = []
    for name, grade in (provider.get("profiles") or {}).items():
        profile = load_profile(name)
        areas = [
            AreaView(
                a, AREA_TITLES[a], grade["levels"][a], stars(grade["levels"][a]), profile.areas[a].protocols
            )
            for a in AREAS
        ]
        profiles.append({"name": name, "areas": areas, "pending": grade["pending"]})
    evidence = []
    graded = provider.get("profiles") or {}
    for protocol, g in (graded.get("mecsa") or {}).get("protocols", {}).items():
        cells = [graded[p]["protocols"][protocol] for p in graded]
        evidence.append({"protocol": protocol, "evidence": g["evidence"], "cells": cells})
    outbound = []
    for m in report["messages"]:
        analysis = m.get("analysis")
        if not analysis or not any(r["kind"] in _GRADED_KINDS for r in m.get("recipients", [])):
            continue
        c = analysis["connection"]
        tls = c.get("tls") or {}
        spf = analysis["spf"]["mailfrom"]
        outbound.append(
            {
                "id": m["id"],
                "peer": f"{c['helo']} [{c['peer_ip']}]",
                "received_at": c["received_at"],
                "tls": f"{tls['version']} {tls['cipher']}" if tls else "none (clear text)",
                "spf": f"{spf['result']} ({spf['domain']})",
                "dkim": [f"d={s['d']} s={s['s']}: {s['result']}" for s in analysis["dkim"]],
                "dmarc": f"{analysis['dmarc']['result']} ({analysis['dmarc'].get('from_domain')})",
            }
        )
    protocols = (report.get("sender_assessment") or {}).get("assessment", {}).get("protocols", {})
    from mecsa.mailmode.grade import hosts_from_assessment

    notes = [provider["note"]] if provider.get("note") else []
    return {
        "domain": provider.get("domain"),
        "messages": provider.get("messages", 0),
        "profiles": profiles,
        "evidence": evidence,
        "inbound_hosts": hosts_from_assessment(protocols),
        "outbound": outbound,
        "fixes": (report.get("sender_assessment") or {}).get("fixes", []),
        "notes": notes,
    }


def render_html(report: dict[str, Any]) -> str:
    """The report as one self-contained page, the same one the web service serves.

    Autoescaped: every value came from a stranger's mail. The CSS is the domain report's own.
    """
    import re
    from importlib import resources

    domain_page = resources.files("mecsa.report").joinpath("templates/report.html.j2").read_text("utf-8")
    found = re.search(r"<style>(.*?)</style>", domain_page, re.S)
    page: str = (
        _environment()
        .get_template("report.html.j2")
        .render(r=report, v=html_view(report), css=found.group(1) if found else "", mark=_mark)
    )
    return page


def render_html_body(report: dict[str, Any]) -> str:
    """The page's sections only (no <html>, no style), for a site that wraps them in its layout:
    the web service's page (`mecsa.web.mailmode_pages`). Escaped like the page."""
    page: str = (
        _environment().get_template("report_body.html.j2").render(r=report, v=html_view(report), mark=_mark)
    )
    return page


def extra_css() -> str:
    """The style rules the report adds to the domain report's (for a site that has those)."""
    from importlib import resources

    return resources.files("mecsa.mailmode").joinpath("templates/report_extra.css.j2").read_text("utf-8")


@functools.cache
def _environment() -> Any:
    from importlib import resources

    import jinja2

    here = resources.files("mecsa.mailmode").joinpath("templates")
    # finalize: control and bidi characters made visible before HTML escaping (mecsa.report.untrusted)
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(here)),
        autoescape=True,
        undefined=jinja2.ChainableUndefined,
        finalize=html_value,
    )


def _mark(value: bool | None) -> str:
    return "✓" if value else "–" if value is None else "✗"
