"""A scan's summary as text, JSON, or one self-contained HTML page with inline SVG charts.

Every string that came from the network (finding ids are ours, but MX provider names are not) is
escaped for the terminal or the page.
"""

from __future__ import annotations

import html
import json

from mecsa.store.records import AREAS
from mecsa.store.summary import ScanSummary

AREA_TITLES = {
    "confidentiality": "Confidentiality",
    "phishing": "Phishing & identity theft",
    "integrity": "Integrity",
}
STATUS_ORDER = ("pass", "fail", "error", "not_applicable")


def _plain(text: str) -> str:
    """Text from the network, safe for a terminal: control characters shown as escapes."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:5.1f}%" if whole else "    -"


def render_json(summary: ScanSummary) -> str:
    return json.dumps(summary.to_json(), indent=2, ensure_ascii=False)


def render_text(summary: ScanSummary) -> str:
    s = summary.scan
    lines = [
        f"scan {s.id}  {_plain(s.input_name or '')}  "
        f"({s.state}, profile {s.profile}, mecsa {s.mecsa_version})",
        f"{summary.assessed + summary.errors} domains: {summary.assessed} assessed, {summary.errors} errors",
        "",
        "Levels (domains per level 0-10)",
    ]
    lines.append(f"  {'level':<26} " + " ".join(f"{level:>5}" for level in range(11)))
    for area in AREAS:
        by = summary.levels.get(area, {})
        counts = " ".join(f"{by.get(level, 0):>5}" for level in range(11))
        lines.append(f"  {AREA_TITLES[area]:<26} {counts}")
    lines += ["", "Adoption (share of assessed domains)"]
    lines.append(f"  {'protocol':<14} " + " ".join(f"{st:>14}" for st in STATUS_ORDER))
    for protocol, statuses in summary.adoption.items():
        cells = " ".join(
            f"{statuses.get(st, 0):>6} {_pct(statuses.get(st, 0), summary.assessed)}" for st in STATUS_ORDER
        )
        lines.append(f"  {protocol:<14} {cells}")
    lines += ["", "Most common failing findings"]
    for f in summary.failing_findings:
        lines.append(f"  {f.domains:>6} {_pct(f.domains, summary.assessed)}  {_plain(f.finding_id)}")
    if not summary.failing_findings:
        lines.append("  none")
    lines += ["", "MX providers (registrable domain of the MX hosts)"]
    lines.append(f"  {'provider':<32} {'domains':>7} {'share':>6}  mean levels C / P / I")
    for p in summary.providers:
        means = " / ".join("-" if p.mean_levels[a] is None else f"{p.mean_levels[a]:.1f}" for a in AREAS)
        lines.append(f"  {_plain(p.provider)[:32]:<32} {p.domains:>7} {100 * p.share:5.1f}%  {means}")
    if not summary.providers:
        lines.append("  none")
    return "\n".join(lines)


# --- HTML -----------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:70em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:2em}
table{border-collapse:collapse}td,th{padding:.2em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}
tr:nth-child(even){background:#f4f4f4}.muted{color:#666}svg text{font-size:11px;fill:#222}
"""
_STATUS_COLOURS = {"pass": "#2e7d32", "fail": "#c62828", "error": "#f9a825", "not_applicable": "#9e9e9e"}


def _bar_chart(
    values: list[tuple[str, int]], *, width: int = 440, height: int = 140, colour: str = "#1565c0"
) -> str:
    """A vertical bar chart as inline SVG: one bar per (label, value)."""
    top = max((v for _, v in values), default=0) or 1
    step = width / max(len(values), 1)
    bars = []
    for i, (label, value) in enumerate(values):
        h = (height - 30) * value / top
        x = i * step + 4
        y = height - 18 - h
        centre = x + (step - 8) / 2
        bars.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{step - 8:.1f}" height="{h:.1f}" fill="{colour}">'
            f"<title>{html.escape(label)}: {value}</title></rect>"
            f'<text x="{centre:.1f}" y="{height - 4}" text-anchor="middle">{html.escape(label)}</text>'
            f'<text x="{centre:.1f}" y="{y - 3:.1f}" text-anchor="middle">{value}</text>'
        )
    return _svg(width, height, bars)


def _stacked_bar(by: dict[str, int], whole: int, *, width: int = 300, height: int = 16) -> str:
    """One horizontal bar split by status."""
    x = 0.0
    parts = []
    for status in STATUS_ORDER:
        n = by.get(status, 0)
        if not n or not whole:
            continue
        w = width * n / whole
        parts.append(
            f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="{height}" fill="{_STATUS_COLOURS[status]}">'
            f"<title>{status}: {n}</title></rect>"
        )
        x += w
    return _svg(width, height, parts)


def _svg(width: int, height: int, parts: list[str]) -> str:
    head = f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">'
    return head + "".join(parts) + "</svg>"


def render_html(summary: ScanSummary) -> str:
    s = summary.scan
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>mecsa scan {s.id}</title><style>{_CSS}</style></head><body>",
        f"<h1>mecsa scan {s.id}: {e(s.input_name or '')}</h1>",
        f'<p class="muted">{e(s.state)}, profile {e(s.profile)}, mecsa {e(s.mecsa_version)}, started '
        f"{e(s.started_at.isoformat(timespec='seconds'))}"
        + (f", finished {e(s.finished_at.isoformat(timespec='seconds'))}" if s.finished_at else "")
        + "</p>",
        f"<p>{summary.assessed + summary.errors} domains: {summary.assessed} assessed, "
        f"{summary.errors} errors.</p>",
        "<h2>Levels per area</h2>",
    ]
    for area in AREAS:
        by = summary.levels.get(area, {})
        out.append(f"<h3>{e(AREA_TITLES[area])}</h3>")
        out.append(_bar_chart([(str(level), by.get(level, 0)) for level in range(11)]))
    out.append("<h2>Adoption per protocol</h2><table><tr><th>protocol</th><th></th>")
    out += [f"<th>{st}</th>" for st in STATUS_ORDER]
    out.append("</tr>")
    for protocol, statuses in summary.adoption.items():
        cells = "".join(f"<td>{statuses.get(st, 0)}</td>" for st in STATUS_ORDER)
        chart = _stacked_bar(statuses, summary.assessed)
        out.append(f"<tr><td>{e(protocol)}</td><td>{chart}</td>{cells}</tr>")
    out.append("</table>")
    out.append(
        "<h2>Most common failing findings</h2><table><tr><th>finding</th><th>domains</th><th>share</th></tr>"
    )
    for f in summary.failing_findings:
        share = _pct(f.domains, summary.assessed)
        out.append(f"<tr><td>{e(f.finding_id)}</td><td>{f.domains}</td><td>{share}</td></tr>")
    out.append("</table>")
    out.append("<h2>MX providers</h2><table><tr><th>provider</th><th>domains</th><th>share</th>")
    out += [f"<th>{e(AREA_TITLES[a])} (mean)</th>" for a in AREAS]
    out.append("</tr>")
    for p in summary.providers:
        means = "".join(
            f"<td>{'-' if p.mean_levels[a] is None else f'{p.mean_levels[a]:.1f}'}</td>" for a in AREAS
        )
        out.append(
            f"<tr><td>{e(p.provider)}</td><td>{p.domains}</td><td>{100 * p.share:.1f}%</td>{means}</tr>"
        )
    out.append("</table></body></html>")
    return "\n".join(out)
