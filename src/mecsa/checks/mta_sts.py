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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from mecsa.checks.base import CheckSpec
from mecsa.dns.answer import DnsAnswer, Rcode
from mecsa.model import (
    CheckResult,
    Finding,
    FindingKind,
    JsonValue,
    ProtocolVerdict,
    Status,
    VerdictStatus,
    verdict_from_findings,
)
from mecsa.observe import Context
from mecsa.observe.mta_sts import txt_name, txt_then_policy
from mecsa.observe.mx import MxObservation, observe_mx
from mecsa.probes.https import FailureKind, HttpsObservation
from mecsa.records.mta_sts import StsMode, StsPolicy, looks_like_sts_record, parse_policy, parse_sts_record

PROTOCOL = "mta-sts"

# --- the findings this check declares (id, status, protocol, meaning, remedy) ---

NO_MAIL = FindingKind(
    "mta_sts.no_mail",
    Status.NOT_APPLICABLE,
    PROTOCOL,
    "the domain accepts no mail (null MX or no such domain): MTA-STS does not apply",
)
LOOKUP_FAILED = FindingKind(
    "mta_sts.lookup_failed",
    Status.ERROR,
    PROTOCOL,
    "the _mta-sts TXT lookup failed: the tool could not find out",
)
MISSING = FindingKind(
    "mta_sts.missing", Status.FAIL, PROTOCOL, "no v=STSv1 record at _mta-sts", "mta_sts.publish_record"
)
MULTIPLE = FindingKind(
    "mta_sts.multiple",
    Status.FAIL,
    PROTOCOL,
    "more than one v=STSv1 record: senders ignore them all",
    "mta_sts.publish_record",
)
BAD_ID = FindingKind(
    "mta_sts.bad_id",
    Status.FAIL,
    PROTOCOL,
    "the MTA-STS record has no valid id= (1-32 letters and digits)",
    "mta_sts.publish_record",
)
RECORD_SYNTAX = FindingKind(
    "mta_sts.record_syntax",
    Status.FAIL,
    PROTOCOL,
    "the MTA-STS record does not follow the RFC 8461 §3.1 grammar",
    "mta_sts.publish_record",
)
RECORD = FindingKind("mta_sts.record", Status.INFO, PROTOCOL, "the MTA-STS record and its id")
FETCH_ERROR = FindingKind(
    "mta_sts.fetch_error",
    Status.ERROR,
    PROTOCOL,
    "the policy fetch timed out, found no route or got a 5xx: could not find out",
)
FETCH_FAILED = FindingKind(
    "mta_sts.fetch_failed",
    Status.FAIL,
    PROTOCOL,
    "the policy host refused the connection, answered non-200 or spoke no HTTP",
    "mta_sts.serve_policy",
)
POLICY_HOST_MISSING = FindingKind(
    "mta_sts.policy_host_missing",
    Status.FAIL,
    PROTOCOL,
    "mta-sts.<domain> has no address",
    "mta_sts.serve_policy",
)
CERTIFICATE = FindingKind(
    "mta_sts.certificate",
    Status.FAIL,
    PROTOCOL,
    "the policy host's certificate does not verify for mta-sts.<domain>",
    "mta_sts.fix_certificate",
)
TLS_FAILED = FindingKind(
    "mta_sts.tls_failed",
    Status.FAIL,
    PROTOCOL,
    "the TLS handshake with the policy host failed",
    "mta_sts.fix_certificate",
)
POLICY_TOO_LARGE = FindingKind(
    "mta_sts.policy_too_large", Status.FAIL, PROTOCOL, "the policy file exceeds 64 KiB", "mta_sts.fix_policy"
)
REDIRECT = FindingKind(
    "mta_sts.redirect",
    Status.FAIL,
    PROTOCOL,
    "the policy URL answers with a redirect, which senders must not follow",
    "mta_sts.serve_policy",
)
CONTENT_TYPE = FindingKind(
    "mta_sts.content_type",
    Status.FAIL,
    PROTOCOL,
    "the policy is not served as text/plain",
    "mta_sts.serve_policy",
)
POLICY_SYNTAX = FindingKind(
    "mta_sts.policy_syntax",
    Status.FAIL,
    PROTOCOL,
    "the policy file does not parse strictly",
    "mta_sts.fix_policy",
)
POLICY_NOTES = FindingKind(
    "mta_sts.policy_notes",
    Status.WARN,
    PROTOCOL,
    "the policy file parses but deviates from the grammar (blank lines)",
    "mta_sts.fix_policy",
)
POLICY = FindingKind("mta_sts.policy", Status.INFO, PROTOCOL, "the policy's mode, mx patterns and max_age")
MODE_TESTING = FindingKind(
    "mta_sts.mode_testing",
    Status.FAIL,
    PROTOCOL,
    "the policy is in testing mode (our profile requires enforce)",
    "mta_sts.enforce",
)
MODE_NONE = FindingKind(
    "mta_sts.mode_none",
    Status.FAIL,
    PROTOCOL,
    "the policy is in mode none (our profile requires enforce)",
    "mta_sts.enforce",
)
MAX_AGE_SHORT = FindingKind(
    "mta_sts.max_age_short", Status.WARN, PROTOCOL, "max_age under one day", "mta_sts.max_age"
)
MX_UNKNOWN = FindingKind(
    "mta_sts.mx_unknown", Status.ERROR, PROTOCOL, "the MX lookup failed, so coverage is unknown"
)
MX_NOT_COVERED = FindingKind(
    "mta_sts.mx_not_covered",
    Status.FAIL,
    PROTOCOL,
    "an MX host matches no mx: pattern",
    "mta_sts.add_mx_pattern",
)
ENFORCED = FindingKind(
    "mta_sts.enforced", Status.PASS, PROTOCOL, "a valid enforce-mode policy covers every MX host"
)

# A definite fetch failure's finding, by what went wrong.
FETCH_FAILURE_KINDS: dict[FailureKind, FindingKind] = {
    FailureKind.NO_ADDRESS: POLICY_HOST_MISSING,
    FailureKind.CERTIFICATE: CERTIFICATE,
    FailureKind.TLS: TLS_FAILED,
    FailureKind.TOO_LARGE: POLICY_TOO_LARGE,
}

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
    (txt, fetched), mx = await asyncio.gather(txt_then_policy(ctx), observe_mx(ctx))
    return MtaStsObservation(ctx.domain, txt_name(ctx.domain), txt, mx, fetched)


def evaluate(obs: MtaStsObservation) -> CheckResult:
    """Judge the observation; pure."""
    if obs.mx.null_mx or (not obs.mx.mx.failed and obs.mx.mx.rcode is Rcode.NXDOMAIN):
        why = "publishes a null MX" if obs.mx.null_mx else "does not exist"
        finding = NO_MAIL(f"{obs.domain} {why}")
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
        add(ENFORCED(f"MTA-STS policy in enforce mode covers all {len(coverage)} MX host(s)"))
    verdict = verdict_from_findings(PROTOCOL, findings)
    covered_share = (
        sum(1 for c in coverage if c.covered) / len(coverage) if policy is not None and coverage else None
    )
    facts = MtaStsVerdictFacts(
        policy.mode.value if policy is not None else None,
        mecsa_st_pass,
        txt_id,
        _policy_hash(obs.fetch),
        coverage,
        covered_share,
    )
    # Under our rule an MX host passes only when covered by an enforce-mode policy.
    share = covered_share if policy is None or policy.mode is StsMode.ENFORCE else 0.0
    verdict = replace(verdict, details=facts.to_json(), facts=facts, share=share)
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
        add(LOOKUP_FAILED(f"could not look up the MTA-STS record: {obs.txt.describe_failure()}"))
        return None, None
    candidates = tuple(t for t in obs.txt.texts() if looks_like_sts_record(t))
    if not candidates:
        message = f"no MTA-STS record (v=STSv1) at {obs.txt_name}"
        add(MISSING(message))
        return None, False
    if len(candidates) > 1:
        message = (
            f"{len(candidates)} MTA-STS records at {obs.txt_name}: senders ignore them all (RFC 8461 §3.1)"
        )
        add(MULTIPLE(message, candidates))
        return None, False
    record = parse_sts_record(candidates[0])
    if record.id is None or not record.valid:
        kind = BAD_ID if record.id is None else RECORD_SYNTAX
        message = f"the MTA-STS record is invalid: {record.errors[0]}"
        add(kind(message, (record.text, *record.errors)))
        return record.id, False
    add(RECORD(f"MTA-STS record with id={record.id}", (record.text,)))
    return record.id, True


def _judge_fetch(fetched: HttpsObservation, add: _Add) -> tuple[StsPolicy | None, bool | None]:
    """The fetch's findings; returns the policy and whether it is usable (None: unknown)."""
    failure = fetched.failure
    evidence = (fetched.url, *(f.describe() for f in fetched.attempts))
    if failure is not None:
        evidence = (*evidence, failure.describe())
        if not failure.kind.definite:
            message = f"could not fetch {fetched.url}: {failure.describe()}"
            add(FETCH_ERROR(message, evidence))
            return None, None
        kind = FETCH_FAILURE_KINDS.get(failure.kind, FETCH_FAILED)
        message = f"could not get a policy from {fetched.url}: {failure.describe()}"
        add(kind(message, evidence))
        return None, False
    status = fetched.status or 0
    if 300 <= status < 400:
        location = fetched.header("location") or "(no Location)"
        message = (
            f"{fetched.url} answers with a redirect ({status}); senders must not follow it (RFC 8461 §3.3)"
        )
        add(REDIRECT(message, (*evidence, location)))
        return None, False
    if status >= 500:
        message = f"{fetched.url} answered HTTP {status}: the server could not serve the policy now"
        add(FETCH_ERROR(message, evidence))
        return None, None
    if status != 200:
        message = f"{fetched.url} answered HTTP {status}, not 200 (RFC 8461 §3.3)"
        add(FETCH_FAILED(message, evidence))
        return None, False
    usable = True
    if fetched.media_type != "text/plain":
        message = (
            f"the policy is served as {fetched.header('content-type')!r}, not text/plain (RFC 8461 §3.3)"
        )
        add(CONTENT_TYPE(message, evidence))
        usable = False
    text = fetched.text
    if text is None:
        message = "the policy file is not UTF-8 text"
        add(POLICY_SYNTAX(message, evidence))
        return None, False
    parsed = parse_policy(text)
    if parsed.policy is None:
        message = f"the policy file is invalid: {parsed.errors[0]}"
        add(POLICY_SYNTAX(message, parsed.errors))
        return None, False
    if parsed.notes:
        message = "the policy file deviates from the RFC 8461 §3.2 grammar"
        add(POLICY_NOTES(message, parsed.notes))
    return parsed.policy, usable


def _judge_policy(policy: StsPolicy, add: _Add) -> None:
    lines = (
        f"mode: {policy.mode.value}",
        *(f"mx: {p.text}" for p in policy.mx),
        f"max_age: {policy.max_age}",
    )
    add(POLICY(f"MTA-STS policy in mode {policy.mode.value}", lines))
    if policy.mode is StsMode.TESTING:
        message = "the policy is in testing mode: senders report failures but still deliver without TLS"
        add(MODE_TESTING(message))
    elif policy.mode is StsMode.NONE:
        message = (
            "the policy is in mode none: no active policy (RFC 8461 §5), senders apply no MTA-STS checks"
        )
        add(MODE_NONE(message))
    if policy.max_age < SHORT_MAX_AGE_S:
        message = f"max_age {policy.max_age} s is under a day; RFC 8461 §3.2 expects weeks or more"
        add(MAX_AGE_SHORT(message))


@dataclass(frozen=True, slots=True)
class MxCoverage:
    """Whether the policy's mx patterns cover one MX host (None: the policy is unknown)."""

    host: str
    covered: bool | None
    pattern: str | None

    def to_json(self) -> dict[str, JsonValue]:
        return {"host": self.host, "covered": self.covered, "pattern": self.pattern}

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> MxCoverage:
        covered, pattern = data["covered"], data["pattern"]
        return cls(str(data["host"]), None if covered is None else bool(covered), _text(pattern))


@dataclass(frozen=True, slots=True)
class MtaStsVerdictFacts:
    """The verdict's facts: the mode, mecsa-st's view, the id/policy pair and the per-MX coverage."""

    mode: str | None
    mecsa_st_pass: bool | None
    txt_id: str | None
    policy_sha256: str | None
    coverage: tuple[MxCoverage, ...]
    mecsa_st_share: float | None

    def covering(self, host: str) -> MxCoverage | None:
        return next((c for c in self.coverage if c.host == host), None)

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "mode": self.mode,
            "mecsa_st_pass": self.mecsa_st_pass,
            "txt_id": self.txt_id,
            "policy_sha256": self.policy_sha256,
            "mx": [c.to_json() for c in self.coverage],
            "mecsa_st_share": self.mecsa_st_share,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> MtaStsVerdictFacts:
        passed, share = data["mecsa_st_pass"], data["mecsa_st_share"]
        return cls(
            _text(data["mode"]),
            None if passed is None else bool(passed),
            _text(data["txt_id"]),
            _text(data["policy_sha256"]),
            tuple(MxCoverage.from_json(c) for c in data["mx"]),
            None if share is None else float(share),
        )


def _text(value: JsonValue) -> str | None:
    return None if value is None else str(value)


def _judge_coverage(
    mx: MxObservation, policy: StsPolicy | None, add: _Add
) -> tuple[tuple[MxCoverage, ...], bool | None]:
    """Per-MX coverage by the policy's patterns; None when the MX set or the policy is unknown."""
    if mx.mx.failed:
        message = f"could not look up the MX records to match them: {mx.mx.describe_failure()}"
        add(MX_UNKNOWN(message))
        return (), None
    if policy is None:
        return tuple(MxCoverage(h.name, None, None) for h in mx.hosts), None
    coverage: list[MxCoverage] = []
    for host in mx.hosts:
        pattern = policy.covering(host.name)
        coverage.append(MxCoverage(host.name, pattern is not None, pattern.text if pattern else None))
        if pattern is None:
            add(
                MX_NOT_COVERED(
                    f"MX host {host.name} matches no mx: pattern of the policy: {_uncovered_effect(policy)}",
                    tuple(f"mx: {p.text}" for p in policy.mx),
                    host.name,
                )
            )
    return tuple(coverage), all(c.covered for c in coverage)


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
    verdict_facts={PROTOCOL: MtaStsVerdictFacts},
    findings=(
        NO_MAIL,
        LOOKUP_FAILED,
        MISSING,
        MULTIPLE,
        BAD_ID,
        RECORD_SYNTAX,
        RECORD,
        FETCH_ERROR,
        FETCH_FAILED,
        POLICY_HOST_MISSING,
        CERTIFICATE,
        TLS_FAILED,
        POLICY_TOO_LARGE,
        REDIRECT,
        CONTENT_TYPE,
        POLICY_SYNTAX,
        POLICY_NOTES,
        POLICY,
        MODE_TESTING,
        MODE_NONE,
        MAX_AGE_SHORT,
        MX_UNKNOWN,
        MX_NOT_COVERED,
        ENFORCED,
    ),
)
