"""MTA-STS (RFC 8461): the `_mta-sts` TXT record, the HTTPS policy, and MX coverage.

Two rules are kept, because MECSA and this project disagree on the mode:

- OUR rule, the verdict status of protocol `mta-sts`: one valid `v=STSv1` TXT record, a policy
  fetched per RFC 8461 §3.3 that parses strictly, every MX host covered by an `mx:` pattern,
  AND mode `enforce`. A `testing` or `none` policy protects nothing against an active attacker.
- MECSA's rule (mecsa-st), which ignores the mode: the same minus the mode requirement. It is
  published as `details["mecsa_st_pass"]` on the `mta-sts` verdict: `true`, `false`, or `null`
  when the tool could not find out (a lookup or fetch that failed). Scoring for the `mecsa-st`
  profile reads that key; `details["mode"]` holds the mode (null when no policy was read).

The TXT `id` and the policy: the policy file carries no id (RFC 8461 §3.2); §3.1 asks that the
TXT id change whenever the policy does, so that senders refetch. One assessment cannot see a
change, so the pair `details["txt_id"]` / `details["policy_sha256"]` is reported: a new
policy_sha256 under an unchanged txt_id between two runs means senders keep a stale policy.

"Could not find out" stays apart from "not there": a failed TXT or MX lookup, or an HTTPS fetch
that timed out or could not reach the host, is `error`; a refused connection, a certificate that
does not verify, a redirect, a 4xx, a wrong Content-Type or a malformed policy is `fail`. A 5xx
is `error` (the server says it cannot answer now). Per-MX coverage is in `details["mx"]`, and
`share` is the fraction of MX hosts covered by an enforce-mode policy (0 under testing or none);
`details["mecsa_st_share"]` is the fraction covered whatever the mode (MECSA's view). The check's
own details carry the observations: the TXT records, the parsed policy, and the fetch (address,
status, Content-Type, TLS version, body).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace

from mecsa.checks.base import CheckSpec, Context
from mecsa.checks.mx import MxObservation, observe_mx
from mecsa.dns.answer import DnsAnswer, Rcode
from mecsa.model import (
    CheckResult,
    Finding,
    JsonValue,
    ProtocolVerdict,
    Status,
    VerdictStatus,
    verdict_from_findings,
)
from mecsa.probes.https import FailureKind, HttpsObservation, fetch_policy
from mecsa.records.mtasts import StsMode, StsPolicy, looks_like_sts_record, parse_policy, parse_sts_record

PROTOCOL = "mta-sts"
SHORT_MAX_AGE_S = 86_400
_Add = Callable[[Finding], None]


@dataclass(frozen=True, slots=True)
class MtaStsObservation:
    """The TXT answer, the MX set and the policy fetch (None when no STS record was published)."""

    domain: str
    txt_name: str
    txt: DnsAnswer
    mx: MxObservation
    fetch: HttpsObservation | None


async def observe(ctx: Context) -> MtaStsObservation:
    """Look up the TXT record and the MX set concurrently; fetch the policy unless surely absent."""
    name = f"_mta-sts.{ctx.domain}"

    async def txt_then_policy() -> tuple[DnsAnswer, HttpsObservation | None]:
        txt = await ctx.resolver.resolve(name, "TXT")
        wanted = txt.failed or any(looks_like_sts_record(t) for t in txt.texts())
        return txt, (await fetch_policy(ctx) if wanted else None)

    (txt, fetched), mx = await asyncio.gather(txt_then_policy(), observe_mx(ctx))
    return MtaStsObservation(ctx.domain, name, txt, mx, fetched)


def evaluate(obs: MtaStsObservation) -> CheckResult:
    """Judge the observation; pure."""
    if obs.mx.null_mx or (not obs.mx.mx.failed and obs.mx.mx.rcode is Rcode.NXDOMAIN):
        why = "publishes a null MX" if obs.mx.null_mx else "does not exist"
        finding = Finding("mta_sts.no_mail", Status.NOT_APPLICABLE, PROTOCOL, f"{obs.domain} {why}")
        verdict = ProtocolVerdict(PROTOCOL, VerdictStatus.NOT_APPLICABLE, finding.message)
        return CheckResult("mta-sts", (finding,), (verdict,))
    findings: list[Finding] = []
    add = findings.append
    txt_id, txt_ok = _judge_txt(obs, add)
    policy, policy_ok = _judge_fetch(obs.fetch, add) if obs.fetch is not None else (None, txt_ok)
    coverage, covered_ok = _judge_coverage(obs.mx, policy, add)
    if policy is not None:
        _judge_policy(policy, add)
    parts = (txt_ok, policy_ok, covered_ok)
    mecsa_st_pass = False if False in parts else None if None in parts else True
    if not any(f.status in (Status.FAIL, Status.ERROR) for f in findings):
        add(
            Finding(
                "mta_sts.enforced",
                Status.PASS,
                PROTOCOL,
                f"MTA-STS policy in enforce mode covers all {len(coverage)} MX host(s)",
            )
        )
    verdict = verdict_from_findings(PROTOCOL, findings)
    details: dict[str, JsonValue] = {
        "mode": policy.mode.value if policy is not None else None,
        "mecsa_st_pass": mecsa_st_pass,
        "txt_id": txt_id,
        "policy_sha256": _policy_hash(obs.fetch),
        "mx": coverage,
    }
    covered_share = (
        sum(1 for c in coverage if c["covered"]) / len(coverage) if policy is not None and coverage else None
    )
    details["mecsa_st_share"] = covered_share
    # Under our rule an MX host passes only when covered by an enforce-mode policy.
    share = covered_share if policy is None or policy.mode is StsMode.ENFORCE else 0.0
    verdict = replace(verdict, details=details, share=share)
    observed: dict[str, JsonValue] = {
        "txt_name": obs.txt_name,
        "txt_rcode": obs.txt.rcode.value,
        "txt_records": [t for t in obs.txt.texts() if looks_like_sts_record(t)],
        "policy": _policy_json(policy),
        "fetch": _fetch_json(obs.fetch),
    }
    return CheckResult("mta-sts", tuple(findings), (verdict,), observed)


def _judge_txt(obs: MtaStsObservation, add: _Add) -> tuple[str | None, bool | None]:
    """The TXT record's findings; returns its id and whether it is usable (None: unknown)."""
    if obs.txt.failed:
        add(
            Finding(
                "mta_sts.lookup_failed",
                Status.ERROR,
                PROTOCOL,
                f"could not look up the MTA-STS record: {obs.txt.describe_failure()}",
            )
        )
        return None, None
    candidates = tuple(t for t in obs.txt.texts() if looks_like_sts_record(t))
    if not candidates:
        message = f"no MTA-STS record (v=STSv1) at {obs.txt_name}"
        add(Finding("mta_sts.missing", Status.FAIL, PROTOCOL, message, remediation="mta_sts.publish_record"))
        return None, False
    if len(candidates) > 1:
        message = (
            f"{len(candidates)} MTA-STS records at {obs.txt_name}: senders ignore them all (RFC 8461 §3.1)"
        )
        add(Finding("mta_sts.multiple", Status.FAIL, PROTOCOL, message, candidates, "mta_sts.publish_record"))
        return None, False
    record = parse_sts_record(candidates[0])
    if record.id is None or not record.valid:
        fid = "mta_sts.bad_id" if record.id is None else "mta_sts.record_syntax"
        message = f"the MTA-STS record is invalid: {record.errors[0]}"
        add(
            Finding(
                fid, Status.FAIL, PROTOCOL, message, (record.text, *record.errors), "mta_sts.publish_record"
            )
        )
        return record.id, False
    add(
        Finding(
            "mta_sts.record", Status.INFO, PROTOCOL, f"MTA-STS record with id={record.id}", (record.text,)
        )
    )
    return record.id, True


def _judge_fetch(fetched: HttpsObservation, add: _Add) -> tuple[StsPolicy | None, bool | None]:
    """The fetch's findings; returns the policy and whether it is usable (None: unknown)."""
    failure = fetched.failure
    evidence = (fetched.url, *(f.describe() for f in fetched.attempts))
    if failure is not None:
        evidence = (*evidence, failure.describe())
        if not failure.kind.definite:
            message = f"could not fetch {fetched.url}: {failure.describe()}"
            add(Finding("mta_sts.fetch_error", Status.ERROR, PROTOCOL, message, evidence))
            return None, None
        fid, fix = {
            FailureKind.NO_ADDRESS: ("mta_sts.policy_host_missing", "mta_sts.serve_policy"),
            FailureKind.CERTIFICATE: ("mta_sts.certificate", "mta_sts.fix_certificate"),
            FailureKind.TLS: ("mta_sts.tls_failed", "mta_sts.fix_certificate"),
            FailureKind.TOO_LARGE: ("mta_sts.policy_too_large", "mta_sts.fix_policy"),
        }.get(failure.kind, ("mta_sts.fetch_failed", "mta_sts.serve_policy"))
        message = f"could not get a policy from {fetched.url}: {failure.describe()}"
        add(Finding(fid, Status.FAIL, PROTOCOL, message, evidence, fix))
        return None, False
    status = fetched.status or 0
    if 300 <= status < 400:
        location = fetched.header("location") or "(no Location)"
        message = (
            f"{fetched.url} answers with a redirect ({status}); senders must not follow it (RFC 8461 §3.3)"
        )
        add(
            Finding(
                "mta_sts.redirect",
                Status.FAIL,
                PROTOCOL,
                message,
                (*evidence, location),
                "mta_sts.serve_policy",
            )
        )
        return None, False
    if status >= 500:
        message = f"{fetched.url} answered HTTP {status}: the server could not serve the policy now"
        add(Finding("mta_sts.fetch_error", Status.ERROR, PROTOCOL, message, evidence))
        return None, None
    if status != 200:
        message = f"{fetched.url} answered HTTP {status}, not 200 (RFC 8461 §3.3)"
        add(Finding("mta_sts.fetch_failed", Status.FAIL, PROTOCOL, message, evidence, "mta_sts.serve_policy"))
        return None, False
    usable = True
    if fetched.media_type != "text/plain":
        message = (
            f"the policy is served as {fetched.header('content-type')!r}, not text/plain (RFC 8461 §3.3)"
        )
        add(Finding("mta_sts.content_type", Status.FAIL, PROTOCOL, message, evidence, "mta_sts.serve_policy"))
        usable = False
    text = fetched.text
    if text is None:
        message = "the policy file is not UTF-8 text"
        add(Finding("mta_sts.policy_syntax", Status.FAIL, PROTOCOL, message, evidence, "mta_sts.fix_policy"))
        return None, False
    parsed = parse_policy(text)
    if parsed.policy is None:
        message = f"the policy file is invalid: {parsed.errors[0]}"
        add(
            Finding(
                "mta_sts.policy_syntax", Status.FAIL, PROTOCOL, message, parsed.errors, "mta_sts.fix_policy"
            )
        )
        return None, False
    if parsed.notes:
        message = "the policy file deviates from the RFC 8461 §3.2 grammar"
        add(
            Finding(
                "mta_sts.policy_notes", Status.WARN, PROTOCOL, message, parsed.notes, "mta_sts.fix_policy"
            )
        )
    return parsed.policy, usable


def _judge_policy(policy: StsPolicy, add: _Add) -> None:
    lines = (
        f"mode: {policy.mode.value}",
        *(f"mx: {p.text}" for p in policy.mx),
        f"max_age: {policy.max_age}",
    )
    add(
        Finding("mta_sts.policy", Status.INFO, PROTOCOL, f"MTA-STS policy in mode {policy.mode.value}", lines)
    )
    if policy.mode is StsMode.TESTING:
        message = "the policy is in testing mode: senders report failures but still deliver without TLS"
        add(Finding("mta_sts.mode_testing", Status.FAIL, PROTOCOL, message, remediation="mta_sts.enforce"))
    elif policy.mode is StsMode.NONE:
        message = (
            "the policy is in mode none: no active policy (RFC 8461 §5), senders apply no MTA-STS checks"
        )
        add(Finding("mta_sts.mode_none", Status.FAIL, PROTOCOL, message, remediation="mta_sts.enforce"))
    if policy.max_age < SHORT_MAX_AGE_S:
        message = f"max_age {policy.max_age} s is under a day; RFC 8461 §3.2 expects weeks or more"
        add(Finding("mta_sts.max_age_short", Status.WARN, PROTOCOL, message, remediation="mta_sts.max_age"))


def _judge_coverage(
    mx: MxObservation, policy: StsPolicy | None, add: _Add
) -> tuple[list[dict[str, JsonValue]], bool | None]:
    """Per-MX coverage by the policy's patterns; None when the MX set or the policy is unknown."""
    if mx.mx.failed:
        message = f"could not look up the MX records to match them: {mx.mx.describe_failure()}"
        add(Finding("mta_sts.mx_unknown", Status.ERROR, PROTOCOL, message))
        return [], None
    if policy is None:
        return [{"host": h.name, "covered": None, "pattern": None} for h in mx.hosts], None
    coverage: list[dict[str, JsonValue]] = []
    for host in mx.hosts:
        pattern = policy.covering(host.name)
        coverage.append(
            {"host": host.name, "covered": pattern is not None, "pattern": pattern and pattern.text}
        )
        if pattern is None:
            add(
                Finding(
                    "mta_sts.mx_not_covered",
                    Status.FAIL,
                    PROTOCOL,
                    f"MX host {host.name} matches no mx: pattern of the policy: {_uncovered_effect(policy)}",
                    tuple(f"mx: {p.text}" for p in policy.mx),
                    "mta_sts.add_mx_pattern",
                    host.name,
                )
            )
    return coverage, all(c["covered"] for c in coverage)


def _uncovered_effect(policy: StsPolicy) -> str:
    """What senders do with an MX host the policy does not cover, in this policy's mode (RFC 8461 §5)."""
    if policy.mode is StsMode.ENFORCE:
        return "senders will refuse it"
    if policy.mode is StsMode.TESTING:
        return "in testing mode senders report the failure and still deliver (under enforce they would not)"
    return "mode none is no active policy (RFC 8461 §5): no sender refuses it (under enforce all would)"


def _policy_json(policy: StsPolicy | None) -> dict[str, JsonValue] | None:
    if policy is None:
        return None
    return {
        "version": policy.version,
        "mode": policy.mode.value,
        "mx": [p.text for p in policy.mx],
        "max_age": policy.max_age,
        "extensions": [list(e) for e in policy.extensions],
    }


def _policy_hash(fetched: HttpsObservation | None) -> str | None:
    if fetched is None or fetched.body is None:
        return None
    return hashlib.sha256(fetched.body).hexdigest()


def _fetch_json(fetched: HttpsObservation | None) -> dict[str, JsonValue] | None:
    if fetched is None:
        return None
    failure = fetched.failure
    return {
        "url": fetched.url,
        "addresses": list(fetched.addresses),
        "address": fetched.address,
        "status": fetched.status,
        "content_type": fetched.header("content-type"),
        "tls_version": fetched.tls_version,
        "body": fetched.text,
        "error": None
        if failure is None
        else {
            "stage": failure.stage,
            "kind": failure.kind.value,
            "detail": failure.detail,
            "address": failure.address,
        },
        "attempts": [f.describe() for f in fetched.attempts],
        "elapsed_s": fetched.elapsed_s,
    }


CHECK = CheckSpec(
    name="mta-sts",
    summary="MTA-STS (RFC 8461): the _mta-sts TXT record, the HTTPS policy, MX coverage and mode",
    protocols=(PROTOCOL,),
    observe=observe,
    evaluate=evaluate,
    findings={
        "mta_sts.no_mail": "the domain accepts no mail (null MX or no such domain): MTA-STS does not apply",
        "mta_sts.lookup_failed": "the _mta-sts TXT lookup failed: the tool could not find out",
        "mta_sts.missing": "no v=STSv1 record at _mta-sts",
        "mta_sts.multiple": "more than one v=STSv1 record: senders ignore them all",
        "mta_sts.bad_id": "the MTA-STS record has no valid id= (1-32 letters and digits)",
        "mta_sts.record_syntax": "the MTA-STS record does not follow the RFC 8461 §3.1 grammar",
        "mta_sts.record": "the MTA-STS record and its id",
        "mta_sts.fetch_error": "the policy fetch timed out, found no route or got a 5xx: could not find out",
        "mta_sts.fetch_failed": "the policy host refused the connection, answered non-200 or spoke no HTTP",
        "mta_sts.policy_host_missing": "mta-sts.<domain> has no address",
        "mta_sts.certificate": "the policy host's certificate does not verify for mta-sts.<domain>",
        "mta_sts.tls_failed": "the TLS handshake with the policy host failed",
        "mta_sts.policy_too_large": "the policy file exceeds 64 KiB",
        "mta_sts.redirect": "the policy URL answers with a redirect, which senders must not follow",
        "mta_sts.content_type": "the policy is not served as text/plain",
        "mta_sts.policy_syntax": "the policy file does not parse strictly",
        "mta_sts.policy_notes": "the policy file parses but deviates from the grammar (blank lines)",
        "mta_sts.policy": "the policy's mode, mx patterns and max_age",
        "mta_sts.mode_testing": "the policy is in testing mode (our profile requires enforce)",
        "mta_sts.mode_none": "the policy is in mode none (our profile requires enforce)",
        "mta_sts.max_age_short": "max_age under one day",
        "mta_sts.mx_unknown": "the MX lookup failed, so coverage is unknown",
        "mta_sts.mx_not_covered": "an MX host matches no mx: pattern",
        "mta_sts.enforced": "a valid enforce-mode policy covers every MX host",
    },
)
