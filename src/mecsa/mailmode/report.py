"""One mail-mode report per token, assembled from the store's entries, and its renderers.

The report covers both directions: the inbound side from the probe (what the user's MX offered),
the outbound side from the messages the user's provider delivered (STARTTLS, SPF, DKIM, DMARC,
scored like a domain), the DANE and MTA-STS enforcement verdicts, and the sender domain's
domain-mode assessment.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from mecsa.mailmode.addresses import AddressKind
from mecsa.mailmode.enforcement import DEFAULT_WINDOW, Trap, arrivals_from_deliveries, judge
from mecsa.mailmode.store import MailStore, StoredEntry
from mecsa.report.untrusted import escape_lines, html_value

REPORT_VERSION = 1
_GRADED_KINDS = frozenset({AddressKind.CONTROL.value, AddressKind.FIXED.value})


def build_report(
    token: str, entries: Sequence[StoredEntry], now: dt.datetime, window: dt.timedelta = DEFAULT_WINDOW
) -> dict[str, Any]:
    """The report of `token` as JSON-able data (pure: `now` decides the enforcement windows)."""
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
    enforcement = [judge(trap, arrivals, now, window).to_json() for trap in Trap]
    last = {
        kind: next((e.data for e in reversed(entries) if e.kind == kind), None)
        for kind in ("probe", "assessment")
    }
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
    }


async def load_report(
    store: MailStore, token: str, *, now: dt.datetime | None = None, window: dt.timedelta = DEFAULT_WINDOW
) -> dict[str, Any] | None:
    """The report of `token`, or None when the store knows nothing of it."""
    entries = await store.entries(token)
    if not entries:
        return None
    return build_report(token, entries, now or dt.datetime.now(dt.UTC), window)


def render_text(report: dict[str, Any]) -> str:
    """A plain-text summary for the terminal."""
    lines = [f"MECSA mail-mode report {report['token']} ({report['generated_at']})", ""]
    inbound = report.get("inbound")
    lines.append("Inbound (the probe mail to your provider):")
    if not inbound:
        lines.append("  no probe recorded for this token")
    else:
        lines.append(f"  to {inbound['recipient']}: delivered={inbound['delivered']}")
        if inbound.get("mx_error"):
            lines.append(f"  MX: {inbound['mx_error']}")
        for a in inbound.get("attempts", []):
            s = a["session"]
            tls = s.get("tls") or {}
            lines.append(
                f"  {a['host']} [{s['address']}]: STARTTLS offered={s['starttls_offered']} "
                f"TLS={tls.get('version') or '-'} {tls.get('cipher') or ''}".rstrip()
            )
            lines.append(f"    DANE: {a['dane']['status']} ({a['dane']['reason']})")
            if a.get("delivery"):
                lines.append(f"    delivery: {a['delivery']['code']} {a['delivery']['reply']}")
    lines += ["", "Outbound (mail your provider delivered here):"]
    outbound = report.get("outbound")
    if not outbound:
        lines.append("  no analysed message yet")
    else:
        for protocol, verdict in outbound["verdicts"].items():
            lines.append(f"  {protocol:9} {verdict['status']:6} {verdict['reason']}")
        for profile, score in outbound.get("scores", {}).items():
            levels = ", ".join(f"{k} {v}/10" for k, v in score["levels"].items())
            lines.append(f"  score ({profile}): {levels}")
    lines += ["", "Enforcement:"]
    for e in report["enforcement"]:
        lines.append(f"  {e['trap']:8} {e['label']}: {e['reason']}")
        lines.extend(f"           {x}" for x in e["evidence"])
    lines += ["", f"Messages: {len(report['messages'])}"]
    for m in report["messages"]:
        c = m["connection"]
        kinds = ",".join(sorted({r["kind"] for r in m.get("recipients", [])}))
        tls = (c.get("tls") or {}).get("version") or "no TLS"
        lines.append(f"  #{m['id']} {c['received_at']} from {c['helo']} [{c['peer_ip']}] {tls} -> {kinds}")
    assessment = report.get("sender_assessment")
    if assessment:
        lines += ["", f"Sender domain {assessment['domain']}: assessed in domain mode (see --json)"]
    for err in report.get("errors", []):
        lines.append(f"error: {err.get('stage')}: {err.get('error')}")
    # Every value came from a stranger's mail: each line escaped (mecsa.report.untrusted).
    return escape_lines(lines) + "\n"


def render_html(report: dict[str, Any]) -> str:
    """A self-contained HTML page (autoescaped: every value came from a stranger's mail)."""
    from importlib import resources

    import jinja2

    template = resources.files("mecsa.mailmode").joinpath("templates/report.html.j2").read_text("utf-8")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.ChainableUndefined, finalize=html_value)
    return env.from_string(template).render(r=report)
