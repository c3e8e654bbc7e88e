"""TLS-RPT: the `_smtp._tls.<domain>` TXT record (RFC 8460 §3). Reported, not scored by MECSA.

The record passes when exactly one TXT record there claims to be TLS-RPT and it parses with at
least one mailto: or https: destination. A lookup that fails is an error, never "no record".
"""

from __future__ import annotations

from dataclasses import dataclass

from mecsa.checks.base import CheckSpec
from mecsa.dns.answer import DnsAnswer
from mecsa.model import CheckResult, Finding, FindingKind, ProtocolVerdict, Status, VerdictStatus
from mecsa.observe import Context
from mecsa.records.tls_rpt import looks_like_tls_rpt, parse_tls_rpt

PROTOCOL = "tls-rpt"

# --- the findings this check declares (id, status, protocol, meaning, remedy) ---

LOOKUP_FAILED = FindingKind(
    "tls-rpt.lookup_failed",
    Status.ERROR,
    PROTOCOL,
    "the _smtp._tls TXT lookup failed: the tool could not find out",
)
MISSING = FindingKind("tls-rpt.missing", Status.FAIL, PROTOCOL, "no TLS-RPT record", "tls-rpt.publish")
MULTIPLE = FindingKind(
    "tls-rpt.multiple", Status.FAIL, PROTOCOL, "more than one TLS-RPT record", "tls-rpt.publish"
)
INVALID = FindingKind(
    "tls-rpt.invalid",
    Status.FAIL,
    PROTOCOL,
    "the TLS-RPT record does not parse or names no valid destination",
    "tls-rpt.publish",
)
VALID = FindingKind("tls-rpt.valid", Status.PASS, PROTOCOL, "a valid TLS-RPT record")


@dataclass(frozen=True, slots=True)
class TlsRptObservation:
    """The TXT answer at `_smtp._tls.<domain>`."""

    domain: str
    name: str
    txt: DnsAnswer


async def observe(ctx: Context) -> TlsRptObservation:
    name = f"_smtp._tls.{ctx.domain}"
    return TlsRptObservation(ctx.domain, name, await ctx.resolver.resolve(name, "TXT"))


def evaluate(obs: TlsRptObservation) -> CheckResult:
    """Judge the TLS-RPT record; pure."""
    candidates = tuple(t for t in obs.txt.texts() if looks_like_tls_rpt(t))
    finding = _judge(obs, candidates)
    status = {
        Status.PASS: VerdictStatus.PASS,
        Status.FAIL: VerdictStatus.FAIL,
        Status.ERROR: VerdictStatus.ERROR,
    }[finding.status]
    rua = [u.uri for u in parse_tls_rpt(candidates[0]).rua] if len(candidates) == 1 else []
    details = {"name": obs.name, "rcode": obs.txt.rcode.value, "records": list(candidates), "rua": rua}
    return CheckResult("tls-rpt", (finding,), (ProtocolVerdict(PROTOCOL, status, finding.message),), details)


def _judge(obs: TlsRptObservation, candidates: tuple[str, ...]) -> Finding:
    if obs.txt.failed:
        return LOOKUP_FAILED(f"could not look up the TLS-RPT record: {obs.txt.describe_failure()}")
    if not candidates:
        return MISSING(f"no TLS-RPT record at {obs.name}")
    if len(candidates) > 1:
        return MULTIPLE(
            f"{len(candidates)} TLS-RPT records at {obs.name}: senders ignore them all (RFC 8460 §3)",
            candidates,
        )
    record = parse_tls_rpt(candidates[0])
    if not record.valid:
        return INVALID(
            f"the TLS-RPT record is invalid: {record.errors[0]}",
            (record.text, *(str(e) for e in record.errors)),
        )
    return VALID("TLS-RPT reports go to " + ", ".join(u.uri for u in record.rua), (record.text,))


CHECK = CheckSpec(
    name="tls-rpt",
    summary="the TLS-RPT record at _smtp._tls (RFC 8460): one v=TLSRPTv1 record with mailto/https rua",
    protocols=(PROTOCOL,),
    observe=observe,
    evaluate=evaluate,
    findings=(
        LOOKUP_FAILED,
        MISSING,
        MULTIPLE,
        INVALID,
        VALID,
    ),
)
