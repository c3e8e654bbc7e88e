"""The result model shared by every layer: findings, protocol verdicts and the assessment.

Everything here is frozen. Observations (what the wire said) live next to the probe or check
that makes them; this module holds only what evaluators produce and renderers consume.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, TypeVar

# JSON-able values: the details that checks attach for reports and the JSON output.
JsonValue = Any


class Status(StrEnum):
    """The status of one finding."""

    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    INFO = "info"
    ERROR = "error"
    NOT_APPLICABLE = "not_applicable"


class VerdictStatus(StrEnum):
    """The status of one MECSA protocol.

    `error` means the tool could not find out (timeout, SERVFAIL, REFUSED, a crash);
    it is never used for "the record is not there", which is `fail`.
    """

    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    NOT_APPLICABLE = "not_applicable"


# MECSA's protocol names, in mecsa-st's fixed join order, plus tls-rpt (reported, not scored).
SCORED_PROTOCOLS: tuple[str, ...] = (
    "starttls",
    "x509",
    "spf",
    "spf_policy",
    "dkim",
    "dmarc",
    "dmarc_policy",
    "dane",
    "dnssec",
    "mta-sts",
)
PROTOCOLS: tuple[str, ...] = (*SCORED_PROTOCOLS, "tls-rpt")


@dataclass(frozen=True, slots=True)
class Finding:
    """One judged fact.

    `id` is stable (e.g. `dmarc.policy_none`) so that tools can key on it; `remediation`
    names the fix (see `mecsa.fixes`) and `subject` the MX host or address it concerns.
    """

    id: str
    status: Status
    protocol: str
    message: str
    evidence: tuple[str, ...] = ()
    remediation: str | None = None
    subject: str | None = None

    def to_json(self) -> dict[str, JsonValue]:
        out: dict[str, JsonValue] = {
            "id": self.id,
            "status": self.status.value,
            "protocol": self.protocol,
            "message": self.message,
            "evidence": list(self.evidence),
        }
        if self.remediation is not None:
            out["remediation"] = self.remediation
        if self.subject is not None:
            out["subject"] = self.subject
        return out


@dataclass(frozen=True, slots=True)
class FindingKind:
    """The one declaration of a finding, made in its check's module: id, status, protocol, meaning, fix.

    `remedy` is the remediation key of its fix (see `mecsa.fixes`). Calling a kind makes a finding of
    it, so a check cannot emit an id, status or remedy that it has not declared. The catalogue, the
    docs and the JSON schema's lists are derived from these declarations (`checks/registry.py`).
    """

    id: str
    status: Status
    protocol: str
    meaning: str
    remedy: str | None = None

    def __call__(self, message: str, evidence: Iterable[str] = (), subject: str | None = None) -> Finding:
        return Finding(self.id, self.status, self.protocol, message, tuple(evidence), self.remedy, subject)


@dataclass(frozen=True, slots=True)
class ProtocolVerdict:
    """The verdict on one MECSA protocol.

    `share` is, for per-MX protocols, the fraction (0..1) of reachable MX hosts that pass,
    as MECSA computes it; `details` carries JSON-able extra data for reports.
    """

    protocol: str
    status: VerdictStatus
    reason: str
    share: float | None = None
    details: Mapping[str, JsonValue] = field(default_factory=dict)
    facts: Facts | None = None

    def to_json(self) -> dict[str, JsonValue]:
        out: dict[str, JsonValue] = {"status": self.status.value, "reason": self.reason}
        if self.share is not None:
            out["share"] = round(self.share, 4)
        if self.details:
            out["details"] = dict(self.details)
        return out


class Facts(Protocol):
    """A check's typed facts: frozen data the view, scoring and fixes read by attribute.

    `to_json` is the JSON form (the `details` of the assessment document), built from the same
    values, so the two cannot disagree.
    """

    def to_json(self) -> dict[str, JsonValue]: ...


FactsT = TypeVar("FactsT", bound=Facts)


class FactsKind(Protocol):
    """A facts class as a reader of its JSON form: `Kind.from_json(facts.to_json())` gives the facts back.

    The store keeps the document, not the model, so a report rebuilt from a stored document gets its
    typed facts from here (`mecsa.web.document`). What the JSON form does not keep (DER bytes, a DNS
    answer's rcode) the rebuilt facts say they do not know; each `from_json` names what it cannot
    recover. It raises KeyError, TypeError or ValueError on details it cannot read.
    """

    def from_json(self, data: Mapping[str, JsonValue], /) -> Facts: ...


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What one check's evaluator returns: its findings, its protocols' verdicts, and details.

    `facts`, when the check has typed facts, is where `details` comes from (`CheckResult.of`).
    """

    check: str
    findings: tuple[Finding, ...]
    verdicts: tuple[ProtocolVerdict, ...]
    details: Mapping[str, JsonValue] = field(default_factory=dict)
    facts: Facts | None = None

    @classmethod
    def of(
        cls, check: str, findings: tuple[Finding, ...], verdicts: tuple[ProtocolVerdict, ...], facts: Facts
    ) -> CheckResult:
        """A result whose details are its typed facts' JSON form."""
        return cls(check, findings, verdicts, facts.to_json(), facts)


@dataclass(frozen=True, slots=True)
class Assessment:
    """One domain's assessment: the input to scoring and to every renderer."""

    domain: str
    mecsa_version: str
    results: tuple[CheckResult, ...]
    resolver: Mapping[str, JsonValue] = field(default_factory=dict)
    duration_s: float = 0.0

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(f for r in self.results for f in r.findings)

    @property
    def verdicts(self) -> dict[str, ProtocolVerdict]:
        return {v.protocol: v for r in self.results for v in r.verdicts}

    def facts(self, kind: type[FactsT]) -> FactsT | None:
        """The typed facts of that kind, from the check or verdict that made them (None if it did not run)."""
        for result in self.results:
            for found in (result.facts, *(v.facts for v in result.verdicts)):
                if isinstance(found, kind):
                    return found
        return None

    def supported(self) -> frozenset[str]:
        """The scored protocols that pass: the input of the scoring engine."""
        return frozenset(p for p, v in self.verdicts.items() if v.status is VerdictStatus.PASS)


def verdict_from_findings(protocol: str, findings: tuple[Finding, ...] | list[Finding]) -> ProtocolVerdict:
    """Derive a protocol's verdict from its findings, for checks whose rule is "any failure fails".

    A definite failure outranks an error; an error outranks a pass, since a pass needs every
    part to have been seen; no relevant finding at all is not_applicable, never pass.
    """
    mine = [f for f in findings if f.protocol == protocol]
    for status, verdict in (
        (Status.FAIL, VerdictStatus.FAIL),
        (Status.ERROR, VerdictStatus.ERROR),
        (Status.PASS, VerdictStatus.PASS),
    ):
        hits = [f for f in mine if f.status is status]
        if hits:
            return ProtocolVerdict(protocol, verdict, hits[0].message)
    return ProtocolVerdict(protocol, VerdictStatus.NOT_APPLICABLE, "nothing to assess")
