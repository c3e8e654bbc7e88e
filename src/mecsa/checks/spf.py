"""SPF: the `spf` and `spf_policy` protocols, judged on the worst-case audit (mecsa.spf.audit).

`spf` passes when there is exactly one valid record and a sender matching nothing gets neither
permerror nor temperror anywhere in the include/redirect tree. `spf_policy` passes when the `all`
term that actually applies (following redirect=) is `-all` or `~all`; mecsa-st only looks for
"-all" or "~all" anywhere in the text, which passes records whose real policy is something else.
"""

from __future__ import annotations

from mecsa.checks.base import CheckSpec
from mecsa.model import CheckResult, Finding, FindingKind, Status, verdict_from_findings
from mecsa.observe import Context
from mecsa.spf.audit import AuditIssue, IssueKind, SpfAudit, audit_spf

SPF = "spf"
POLICY = "spf_policy"

# --- the findings this check declares (id, status, protocol, meaning, remedy) ---

VALID = FindingKind(
    "spf.valid",
    Status.PASS,
    SPF,
    "exactly one valid SPF record that evaluates without error in the worst case",
)

# One finding per audit issue kind.
ISSUE_KINDS: dict[IssueKind, FindingKind] = {
    IssueKind.MISSING: FindingKind("spf.missing", Status.FAIL, SPF, "no SPF record", "spf.publish"),
    IssueKind.MULTIPLE: FindingKind(
        "spf.multiple", Status.FAIL, SPF, "more than one SPF record (permerror)", "spf.single_record"
    ),
    IssueKind.SYNTAX: FindingKind(
        "spf.syntax",
        Status.FAIL,
        SPF,
        "a record in the tree has a syntax error (permerror)",
        "spf.fix_syntax",
    ),
    IssueKind.TARGET_MISSING: FindingKind(
        "spf.include_missing",
        Status.FAIL,
        SPF,
        "an include or redirect target has no SPF record (permerror)",
        "spf.fix_include",
    ),
    IssueKind.TOO_MANY_LOOKUPS: FindingKind(
        "spf.too_many_lookups",
        Status.FAIL,
        SPF,
        "a sender matching nothing needs more than 10 DNS-querying terms (permerror)",
        "spf.reduce_lookups",
    ),
    IssueKind.VOID_LOOKUPS: FindingKind(
        "spf.void_lookups",
        Status.FAIL,
        SPF,
        "more than 2 lookups return no data for a sender matching nothing (permerror)",
        "spf.reduce_void_lookups",
    ),
    IssueKind.MX_TOO_MANY: FindingKind(
        "spf.mx_too_many",
        Status.FAIL,
        SPF,
        "an mx mechanism names more than 10 MX hosts (permerror)",
        "spf.reduce_lookups",
    ),
    IssueKind.LOOP: FindingKind(
        "spf.loop", Status.FAIL, SPF, "includes or redirects loop (permerror)", "spf.fix_include"
    ),
    IssueKind.LOOKUP_FAILED: FindingKind(
        "spf.lookup_failed",
        Status.ERROR,
        SPF,
        "a lookup in the tree failed (temperror): the tool could not find out",
    ),
    IssueKind.UNVERIFIABLE: FindingKind(
        "spf.unverifiable",
        Status.ERROR,
        SPF,
        "an include or redirect depends on the sender, so its cost cannot be counted",
    ),
    IssueKind.PTR: FindingKind(
        "spf.ptr", Status.WARN, SPF, "the deprecated ptr mechanism is used", "spf.remove_ptr"
    ),
    IssueKind.TOO_LONG: FindingKind(
        "spf.too_long", Status.WARN, SPF, "a record is over 512 octets", "spf.shorten"
    ),
}

# The applicable `all` term's qualifier -> its finding, with the message it gives.
ALL_KINDS: dict[str | None, tuple[FindingKind, str]] = {
    "-": (
        FindingKind("spf_policy.fail_all", Status.PASS, POLICY, "the applicable all term is -all"),
        "ends in -all: senders not listed fail",
    ),
    "~": (
        FindingKind("spf_policy.softfail_all", Status.PASS, POLICY, "the applicable all term is ~all"),
        "ends in ~all: senders not listed soft-fail",
    ),
    "+": (
        FindingKind(
            "spf_policy.pass_all", Status.FAIL, POLICY, "the applicable all term is +all", "spf.end_with_all"
        ),
        "+all authorises every sender on the Internet",
    ),
    "?": (
        FindingKind(
            "spf_policy.neutral_all",
            Status.FAIL,
            POLICY,
            "the applicable all term is ?all",
            "spf.end_with_all",
        ),
        "?all says nothing about senders not listed",
    ),
    None: (
        FindingKind(
            "spf_policy.no_all",
            Status.FAIL,
            POLICY,
            "no all term applies (neutral by default)",
            "spf.end_with_all",
        ),
        "no applicable 'all' term: senders not listed get neutral",
    ),
}
POLICY_MISSING = FindingKind(
    "spf_policy.missing", Status.FAIL, POLICY, "no SPF record, so no policy", "spf.publish"
)
POLICY_INVALID = FindingKind(
    "spf_policy.invalid", Status.FAIL, POLICY, "the record carrying the policy is invalid", "spf.fix_syntax"
)
POLICY_LOOKUP_FAILED = FindingKind(
    "spf_policy.lookup_failed", Status.ERROR, POLICY, "a lookup on the way to the applicable all term failed"
)


async def observe_spf(ctx: Context) -> SpfAudit:
    """The SPF audit of the assessed domain, run once per assessment (DMARC may want it too)."""
    return await ctx.shared("spf_audit", lambda: audit_spf(ctx.resolver, ctx.domain))


def evaluate(audit: SpfAudit) -> CheckResult:
    """Findings and verdicts for `spf` and `spf_policy` from the audit."""
    findings = [_issue_finding(i) for i in audit.issues]
    if not any(f.status in (Status.FAIL, Status.ERROR) for f in findings):
        findings.insert(
            0,
            VALID(
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
    evidence = (f"path: {issue.path}", *issue.evidence) if len(issue.chain) > 1 else issue.evidence
    return ISSUE_KINDS[issue.kind](issue.message, evidence)


def _policy_finding(audit: SpfAudit) -> Finding:
    policy = audit.policy
    evidence = (f"path: {' → '.join(policy.chain)}", *_record_evidence(audit))
    if policy.status == "lookup_failed":
        return POLICY_LOOKUP_FAILED(f"could not find the applicable 'all' term: {policy.detail}", evidence)
    if policy.status == "invalid":
        if audit.root.status == "none":
            return POLICY_MISSING("no SPF record, so no SPF policy")
        return POLICY_INVALID(
            f"the record that would carry the policy is not usable: {policy.detail}", evidence
        )
    kind, message = ALL_KINDS[policy.qualifier]
    return kind(message, evidence)


CHECK = CheckSpec(
    name="spf",
    summary="SPF record: syntax, worst-case lookups over the include/redirect tree, and the applicable 'all'",
    protocols=(SPF, POLICY),
    observe=observe_spf,
    evaluate=evaluate,
    findings=(
        VALID,
        *ISSUE_KINDS.values(),
        *(kind for kind, _ in ALL_KINDS.values()),
        POLICY_MISSING,
        POLICY_INVALID,
        POLICY_LOOKUP_FAILED,
    ),
)
