"""SPF: the `spf` and `spf_policy` protocols, judged on the worst-case audit (mecsa.spf.audit).

`spf` passes when there is exactly one valid record and a sender matching nothing gets neither
permerror nor temperror anywhere in the include/redirect tree. `spf_policy` passes when the `all`
term that actually applies (following redirect=) is `-all` or `~all`; mecsa-st only looks for
"-all" or "~all" anywhere in the text, which passes records whose real policy is something else.
"""

from __future__ import annotations

from mecsa.checks.base import CheckSpec, Context
from mecsa.model import CheckResult, Finding, Status, verdict_from_findings
from mecsa.spf.audit import AuditIssue, IssueKind, Severity, SpfAudit, audit_spf

SPF = "spf"
POLICY = "spf_policy"

# Issue kind -> (finding id, status, remediation key).
_ISSUE_FINDINGS: dict[IssueKind, tuple[str, Status, str | None]] = {
    IssueKind.MISSING: ("spf.missing", Status.FAIL, "spf.publish"),
    IssueKind.MULTIPLE: ("spf.multiple", Status.FAIL, "spf.single_record"),
    IssueKind.SYNTAX: ("spf.syntax", Status.FAIL, "spf.fix_syntax"),
    IssueKind.TARGET_MISSING: ("spf.include_missing", Status.FAIL, "spf.fix_include"),
    IssueKind.TOO_MANY_LOOKUPS: ("spf.too_many_lookups", Status.FAIL, "spf.reduce_lookups"),
    IssueKind.VOID_LOOKUPS: ("spf.void_lookups", Status.FAIL, "spf.reduce_void_lookups"),
    IssueKind.MX_TOO_MANY: ("spf.mx_too_many", Status.FAIL, "spf.reduce_lookups"),
    IssueKind.LOOP: ("spf.loop", Status.FAIL, "spf.fix_include"),
    IssueKind.LOOKUP_FAILED: ("spf.lookup_failed", Status.ERROR, None),
    IssueKind.UNVERIFIABLE: ("spf.unverifiable", Status.ERROR, None),
    IssueKind.PTR: ("spf.ptr", Status.WARN, "spf.remove_ptr"),
    IssueKind.TOO_LONG: ("spf.too_long", Status.WARN, "spf.shorten"),
}


async def observe_spf(ctx: Context) -> SpfAudit:
    """The SPF audit of the assessed domain, run once per assessment (DMARC may want it too)."""
    return await ctx.shared("spf_audit", lambda: audit_spf(ctx.resolver, ctx.domain))


def evaluate(audit: SpfAudit) -> CheckResult:
    """Findings and verdicts for `spf` and `spf_policy` from the audit."""
    findings = [_issue_finding(i) for i in audit.issues]
    if not any(f.status in (Status.FAIL, Status.ERROR) for f in findings):
        findings.insert(
            0,
            Finding(
                "spf.valid",
                Status.PASS,
                SPF,
                f"one valid SPF record; a sender matching nothing costs {audit.lookups} of "
                f"10 lookups and {audit.void_lookups} of 2 void lookups",
                _record_evidence(audit),
            ),
        )
    findings.append(_policy_finding(audit))
    return CheckResult(
        "spf",
        tuple(findings),
        (verdict_from_findings(SPF, findings), verdict_from_findings(POLICY, findings)),
        audit.to_json(),
    )


def _record_evidence(audit: SpfAudit) -> tuple[str, ...]:
    return (audit.root.record,) if audit.root.record else ()


def _issue_finding(issue: AuditIssue) -> Finding:
    finding_id, status, remediation = _ISSUE_FINDINGS[issue.kind]
    evidence = (f"path: {issue.path}", *issue.evidence) if len(issue.chain) > 1 else issue.evidence
    return Finding(finding_id, status, SPF, issue.message, evidence, remediation)


def _policy_finding(audit: SpfAudit) -> Finding:
    policy = audit.policy
    evidence = (f"path: {' → '.join(policy.chain)}", *_record_evidence(audit))
    if policy.status == "lookup_failed":
        return Finding(
            "spf_policy.lookup_failed",
            Status.ERROR,
            POLICY,
            f"could not find the applicable 'all' term: {policy.detail}",
            evidence,
        )
    if policy.status == "invalid":
        if audit.root.status == "none":
            return Finding(
                "spf_policy.missing",
                Status.FAIL,
                POLICY,
                "no SPF record, so no SPF policy",
                (),
                "spf.publish",
            )
        stop = next((i for i in audit.issues if i.severity is Severity.PERMERROR), None)
        if audit.root.status == "ok" and stop is not None:
            # The record is fine, but evaluation for an unlisted sender ends in permerror before its 'all'.
            return Finding(
                "spf_policy.invalid",
                Status.FAIL,
                POLICY,
                "senders not listed never reach the 'all' term (their evaluation ends in permerror): "
                + stop.message,
                evidence,
                _ISSUE_FINDINGS[stop.kind][2],
            )
        return Finding(
            "spf_policy.invalid",
            Status.FAIL,
            POLICY,
            f"the record that would carry the policy is not usable: {policy.detail}",
            evidence,
            "spf.fix_syntax",
        )
    table = {
        "-": ("spf_policy.fail_all", Status.PASS, "ends in -all: senders not listed fail", None),
        "~": ("spf_policy.softfail_all", Status.PASS, "ends in ~all: senders not listed soft-fail", None),
        "+": (
            "spf_policy.pass_all",
            Status.FAIL,
            "+all authorises every sender on the Internet",
            "spf.end_with_all",
        ),
        "?": (
            "spf_policy.neutral_all",
            Status.FAIL,
            "?all says nothing about senders not listed",
            "spf.end_with_all",
        ),
        None: (
            "spf_policy.no_all",
            Status.FAIL,
            "no applicable 'all' term: senders not listed get neutral",
            "spf.end_with_all",
        ),
    }
    finding_id, status, message, remediation = table[policy.qualifier]
    return Finding(finding_id, status, POLICY, message, evidence, remediation)


CHECK = CheckSpec(
    name="spf",
    summary="SPF record: syntax, worst-case lookups over the include/redirect tree, and the applicable 'all'",
    protocols=(SPF, POLICY),
    observe=observe_spf,
    evaluate=evaluate,
    findings={
        "spf.valid": "exactly one valid SPF record that evaluates without error in the worst case",
        "spf.missing": "no SPF record",
        "spf.multiple": "more than one SPF record (permerror)",
        "spf.syntax": "a record in the tree has a syntax error (permerror)",
        "spf.include_missing": "an include or redirect target has no SPF record (permerror)",
        "spf.too_many_lookups": "a sender matching nothing needs more than 10 DNS-querying terms (permerror)",
        "spf.void_lookups": "more than 2 lookups return no data for a sender matching nothing (permerror)",
        "spf.mx_too_many": "an mx mechanism names more than 10 MX hosts (permerror)",
        "spf.loop": "includes or redirects loop (permerror)",
        "spf.lookup_failed": "a lookup in the tree failed (temperror): the tool could not find out",
        "spf.unverifiable": "an include or redirect depends on the sender, so its cost cannot be counted",
        "spf.ptr": "the deprecated ptr mechanism is used",
        "spf.too_long": "a record is over 512 octets",
        "spf_policy.fail_all": "the applicable all term is -all",
        "spf_policy.softfail_all": "the applicable all term is ~all",
        "spf_policy.pass_all": "the applicable all term is +all",
        "spf_policy.neutral_all": "the applicable all term is ?all",
        "spf_policy.no_all": "no all term applies (neutral by default)",
        "spf_policy.missing": "no SPF record, so no policy",
        "spf_policy.invalid": "the record carrying the policy is invalid, or a non-listed sender's "
        "evaluation ends in permerror before the 'all' term",
        "spf_policy.lookup_failed": "a lookup on the way to the applicable all term failed",
    },
)
