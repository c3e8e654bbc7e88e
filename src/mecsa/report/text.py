"""Plain terminal report. (The rich report with levels and fixes replaces this in the scoring issue.)"""

from __future__ import annotations

from mecsa.model import PROTOCOLS, Assessment, Status, VerdictStatus

_MARK = {
    VerdictStatus.PASS: "✔",
    VerdictStatus.FAIL: "✘",
    VerdictStatus.ERROR: "?",
    VerdictStatus.NOT_APPLICABLE: "–",
}


def render_text(assessment: Assessment) -> str:
    lines = [f"mecsa {assessment.mecsa_version} — {assessment.domain}", ""]
    if not assessment.resolver.get("validates_dnssec", True):
        lines.append("note: the resolver does not validate DNSSEC; DNSSEC status is indeterminate")
        lines.append("")
    verdicts = assessment.verdicts
    for protocol in PROTOCOLS:
        v = verdicts.get(protocol)
        if v is not None:
            lines.append(f"  {_MARK[v.status]} {protocol:<13} {v.reason}")
    lines.append("")
    for f in assessment.findings:
        if f.status in (Status.FAIL, Status.WARN, Status.ERROR):
            subject = f" [{f.subject}]" if f.subject else ""
            lines.append(f"  {f.status.value:<5} {f.id}{subject}: {f.message}")
    return "\n".join(lines)
