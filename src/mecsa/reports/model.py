"""Typed, frozen records of ingested reports: what the reporter said, nothing judged yet."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum


class ReportKind(StrEnum):
    DMARC = "dmarc"
    TLSRPT = "tlsrpt"


class DmarcForm(StrEnum):
    """Which schema an aggregate report follows."""

    RFC9990 = "rfc9990"  # namespace urn:ietf:params:xml:ns:dmarc-2.0
    RFC7489 = "rfc7489"  # appendix C: no namespace, or dmarc.org's 0.1 schema


@dataclass(frozen=True, slots=True)
class DateRange:
    """A reporting period in UTC."""

    begin: dt.datetime
    end: dt.datetime


# --- DMARC aggregate reports (RFC 9990 §2.1; RFC 7489 appendix C) --------------------------------


@dataclass(frozen=True, slots=True)
class DmarcMetadata:
    """`report_metadata`: who reports, which report, which period."""

    org_name: str
    email: str
    report_id: str
    date_range: DateRange
    extra_contact_info: str | None = None
    errors: tuple[str, ...] = ()
    generator: str | None = None


@dataclass(frozen=True, slots=True)
class PolicyPublished:
    """`policy_published`: the DMARC policy the receiver found (defaults where a tag was absent)."""

    domain: str
    p: str
    sp: str | None = None
    np: str | None = None
    adkim: str | None = None
    aspf: str | None = None
    pct: int | None = None  # RFC 7489 only; RFC 9990 dropped pct
    fo: str | None = None
    testing: str | None = None  # RFC 9990 "t" tag
    discovery_method: str | None = None  # RFC 9990: "psl" or "treewalk"


@dataclass(frozen=True, slots=True)
class PolicyOverride:
    """One `reason` of `policy_evaluated` (local_policy, mailing_list, forwarded, ...)."""

    type: str
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class DkimAuth:
    """One DKIM signature's result, uninterpreted with respect to DMARC."""

    domain: str
    result: str
    selector: str | None = None  # REQUIRED in RFC 9990, optional in RFC 7489
    human_result: str | None = None


@dataclass(frozen=True, slots=True)
class SpfAuth:
    """The SPF result, uninterpreted with respect to DMARC."""

    domain: str
    result: str
    scope: str | None = None
    human_result: str | None = None


@dataclass(frozen=True, slots=True)
class DmarcRecord:
    """One `record`: `count` messages from `source_ip` with one combination of results."""

    source_ip: str
    count: int
    disposition: str
    dkim_aligned: str  # policy_evaluated/dkim: "pass" or "fail"
    spf_aligned: str  # policy_evaluated/spf: "pass" or "fail"
    header_from: str
    envelope_from: str | None = None
    envelope_to: str | None = None
    reasons: tuple[PolicyOverride, ...] = ()
    dkim: tuple[DkimAuth, ...] = ()
    spf: tuple[SpfAuth, ...] = ()

    @property
    def dmarc_pass(self) -> bool:
        """DMARC passes when either identifier passed *and* aligned (RFC 7489 §4.2)."""
        return self.dkim_aligned == "pass" or self.spf_aligned == "pass"


@dataclass(frozen=True, slots=True)
class DmarcHeader:
    """Everything of an aggregate report before its records: the records stream after it."""

    form: DmarcForm
    metadata: DmarcMetadata
    policy: PolicyPublished
    version: str | None = None


# --- SMTP TLS reports (RFC 8460 §4) -------------------------------------------------------------

# RFC 8460 §4.3 result types (IANA "STARTTLS Validation Result Types").
NEGOTIATION_FAILURES = frozenset(
    {
        "starttls-not-supported",
        "certificate-host-mismatch",
        "certificate-not-trusted",
        "certificate-expired",
        "validation-failure",
    }
)
DANE_FAILURES = frozenset({"tlsa-invalid", "dnssec-invalid", "dane-required"})
STS_FAILURES = frozenset({"sts-policy-fetch-error", "sts-policy-invalid", "sts-webpki-invalid"})
RESULT_TYPES = NEGOTIATION_FAILURES | DANE_FAILURES | STS_FAILURES
POLICY_TYPES = frozenset({"tlsa", "sts", "no-policy-found"})


@dataclass(frozen=True, slots=True)
class TlsFailureDetail:
    """One `failure-details` entry (RFC 8460 §4.4)."""

    result_type: str
    failed_session_count: int
    sending_mta_ip: str | None = None
    receiving_mx_hostname: str | None = None
    receiving_mx_helo: str | None = None
    receiving_ip: str | None = None
    additional_information: str | None = None
    failure_reason_code: str | None = None


@dataclass(frozen=True, slots=True)
class TlsPolicyResult:
    """One `policies` entry: the policy applied, the session counts, the failures."""

    policy_type: str
    policy_domain: str
    successful_sessions: int
    failed_sessions: int
    policy_strings: tuple[str, ...] = ()
    mx_hosts: tuple[str, ...] = ()
    failures: tuple[TlsFailureDetail, ...] = ()


@dataclass(frozen=True, slots=True)
class TlsReport:
    """One SMTP TLS report."""

    organization_name: str
    report_id: str
    date_range: DateRange
    contact_info: str | None
    policies: tuple[TlsPolicyResult, ...]

    @property
    def policy_domains(self) -> tuple[str, ...]:
        return tuple(sorted({p.policy_domain for p in self.policies}))
