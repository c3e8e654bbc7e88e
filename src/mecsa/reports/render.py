"""Renderers of a `ReportsView` (and the join): text for a terminal, JSON, self-contained HTML.

Everything in a report came from the network (org names, reverse names, report ids), so text
output passes each value through `safe()`: control characters, ANSI escapes and bidirectional
overrides come out as visible `\\x..` escapes. HTML is autoescaped by Jinja2; the charts are
inline SVG built from numbers only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mecsa.reports.join import JoinItem, JoinStatus
from mecsa.reports.views import DayCount, ReportsView, SourceGroup

GROUP_TITLES = {
    SourceGroup.ALIGNED_PASSING: "aligned and passing",
    SourceGroup.FAILING_KNOWN: "failing but known (in the domain's own SPF)",
    SourceGroup.UNKNOWN: "unknown senders (likely spoofing)",
    SourceGroup.UNDETERMINED: "failing, SPF could not be checked",
}
STATUS_TITLES = {
    JoinStatus.STILL_FAILING: "STILL FAILING",
    JoinStatus.FIXED: "fixed since the report",
    JoinStatus.COULD_NOT_CHECK: "could not check now",
    JoinStatus.NO_LONGER_APPLIES: "no longer applies",
    JoinStatus.NOT_PROBED: "not probed",
}


def safe(value: object) -> str:
    """`value` as text with every non-printable character escaped (terminal-safe)."""
    text = "" if value is None else str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def render_text(view: ReportsView, joined: Sequence[JoinItem] = ()) -> str:
    lines: list[str] = []
    scope = safe(view.window.domain or "all domains")
    since = f" since {view.window.since:%Y-%m-%d %H:%M}" if view.window.since else ""
    lines.append(f"mecsa reports: {scope}{since}")
    if not view.dmarc and not view.tls:
        lines.append("no reports in the store for this window")
    for d in view.dmarc:
        lines.append("")
        lines.append(
            f"DMARC {safe(d.domain)}: {d.reports} reports, {d.messages} messages, "
            f"{d.passed} passed ({_pct(d.passed, d.messages)}), {d.messages - d.passed} failed"
        )
        for org in d.orgs:
            lines.append(
                f"  from {safe(org.org)}: {org.reports} reports, {org.passed} passed, {org.failed} failed"
            )
        for group in SourceGroup:
            sources = d.group(group)
            if not sources:
                continue
            lines.append(f"  {GROUP_TITLES[group]}:")
            for s in sources:
                name = f" ({safe(s.reverse_name)})" if s.reverse_name else ""
                disp = ", ".join(f"{safe(k)} {v}" for k, v in s.dispositions.items())
                aligned = f"DKIM aligned {s.dkim_aligned}, SPF aligned {s.spf_aligned}"
                lines.append(
                    f"    {s.ip}{name}: {s.messages} messages, {s.passed} passed; {aligned}; {disp}; "
                    f"reported by {', '.join(safe(o) for o in s.orgs)}"
                )
                results = "; ".join(f"{safe(k)} ({v})" for k, v in s.auth_results.items())
                lines.append(f"      results: {results}")
        if d.sources_not_listed:
            lines.append(f"  ... and {d.sources_not_listed} smaller sources")
    for t in view.tls:
        total = t.total
        lines.append("")
        lines.append(
            f"TLS-RPT {safe(t.domain)}: {t.reports} reports, {total.successful} successful and "
            f"{total.failed} failed sessions ({_pct(total.failed, total.successful + total.failed)} failed)"
        )
        for c in t.by_org:
            lines.append(f"  from {safe(c.key)}: {c.successful} successful, {c.failed} failed")
        for c in t.by_policy:
            lines.append(f"  policy {safe(c.key)}: {c.successful} successful, {c.failed} failed")
        for f in t.failures:
            target = safe(f.receiving_mx or f.receiving_ip or "-")
            codes = f" [{', '.join(safe(c) for c in f.reason_codes)}]" if f.reason_codes else ""
            lines.append(
                f"  failure {safe(f.result_type)} on {target}: {f.sessions} sessions, "
                f"from {', '.join(safe(o) for o in f.orgs)}{codes}"
            )
    if joined:
        lines.append("")
        lines.append("Live re-check of each failure class:")
        for item in joined:
            lines.append(f"  [{STATUS_TITLES[item.status]}] {safe(item.domain)}: {safe(item.problem)}")
            lines.append(f"      reported: {safe(item.reported)}")
            lines.append(f"      now: {safe(item.now)}")
            for fix in item.fixes:
                lines.append(f"      fix: {safe(fix.title)}")
                for snippet in fix.snippets:
                    lines.append(f"        # {safe(snippet.where)}")
                    lines.extend(f"        {safe(line)}" for line in snippet.text.splitlines())
    return "\n".join(lines) + "\n"


def to_json(view: ReportsView, joined: Sequence[JoinItem] = ()) -> dict[str, Any]:
    data = view.to_json()
    data["join"] = [item.to_json() for item in joined]
    return data


def render_json(view: ReportsView, joined: Sequence[JoinItem] = ()) -> str:
    return json.dumps(to_json(view, joined), sort_keys=True)


# --- HTML -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    bars: tuple[Bar, ...]
    labels: tuple[tuple[float, str], ...]


def day_chart(days: Sequence[DayCount], good: str, bad: str, width: int = 640, height: int = 140) -> Chart:
    """Stacked bars per day: `good` (passed / successful) below, `bad` above."""
    if not days:
        return Chart(width, height, (), ())
    top = max(d.passed + d.failed for d in days) or 1
    slot = width / len(days)
    bars: list[Bar] = []
    labels: list[tuple[float, str]] = []
    plot = height - 20
    for i, d in enumerate(days):
        x = i * slot + slot * 0.1
        w = slot * 0.8
        good_h = plot * d.passed / top
        bad_h = plot * d.failed / top
        day = d.day.isoformat()
        bars.append(Bar(x, plot - good_h, w, good_h, "good", f"{day}: {d.passed} {good}"))
        bars.append(Bar(x, plot - good_h - bad_h, w, bad_h, "bad", f"{day}: {d.failed} {bad}"))
        if len(days) <= 14 or i % max(1, len(days) // 10) == 0:
            labels.append((x + w / 2, day[5:]))
    return Chart(width, height, tuple(bars), tuple(labels))


def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("mecsa.reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def _context(view: ReportsView, joined: Sequence[JoinItem]) -> dict[str, Any]:
    return {
        "view": view,
        "joined": joined,
        "groups": list(SourceGroup),
        "group_titles": GROUP_TITLES,
        "status_titles": STATUS_TITLES,
        "dmarc_charts": {d.domain: day_chart(d.days, "passed", "failed") for d in view.dmarc},
        "tls_charts": {t.domain: day_chart(t.days, "successful", "failed") for t in view.tls},
        "pct": _pct,
    }


def render_html(view: ReportsView, joined: Sequence[JoinItem] = ()) -> str:
    """A self-contained HTML page (`mecsa reports show --html FILE`)."""
    return str(_environment().get_template("reports.html.j2").render(**_context(view, joined)))


def render_sections(view: ReportsView, joined: Sequence[JoinItem] = ()) -> str:
    """The page's sections alone (DMARC, TLS-RPT, the join), autoescaped: for the web service's page,
    which wraps them in its own layout with `section_style()` under its CSP nonce."""
    return str(_environment().get_template("reports_sections.html.j2").render(**_context(view, joined)))


def section_style() -> str:
    """The sections' style sheet (every rule scoped to `.reports`)."""
    return str(_environment().get_template("reports_style.css.j2").render())
