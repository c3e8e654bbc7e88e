"""Alerts from the ingested reports (issue 22 joined to issue 21): unknown senders, TLS failures.

Both are conditions over the reports of the window (`mecsa.reports.events.report_conditions`):

- `report_unknown_source`: an IP sent mail as the domain that failed DMARC with nothing aligned,
  and the domain's SPF does not list it now. Either it is the domain's own sender, missing from
  SPF (the fix: the exact SPF record with it), or someone spoofs the domain (the DMARC policy is
  what stops it). It resolves when the reports of the window stop showing it, or when SPF lists it.
- `report_tls_failure_rate`: more than the threshold of the TLS sessions senders reported towards
  the domain failed (RFC 8460 §4.3 result types). The new assessment says whether the matching
  protocol still fails on the reported MX host ("still failing", with its fixes) or not ("fixed
  since the report"), as the join of `mecsa reports show --join` does.

The evidence holds what identifies the problem (the source, the failure types), not counts: the
counts grow with every report, and an alert is told again only when its evidence changes.
Could-not-find-out never resolves an alert: an open alert on a source whose SPF cannot be
evaluated now is kept as it was.
"""

from __future__ import annotations

from collections.abc import Sequence

from mecsa.monitor import document as d
from mecsa.monitor.alert import Alert, AlertKind, FixText, Severity
from mecsa.monitor.rules import _finding_fixes
from mecsa.reports.events import ReportConditions, TlsFailureType, UnknownSource

UNKNOWN_SOURCE = "report_unknown_source"
TLS_FAILURE_RATE = "report_tls_failure_rate"
REPORT_RULES = (UNKNOWN_SOURCE, TLS_FAILURE_RATE)


def report_alerts(
    found: ReportConditions,
    new: d.Document | None,
    spf_record: str | None,
    still_open: Sequence[Alert] = (),
) -> list[Alert]:
    """The report alerts of one domain now; `still_open` are its report alerts open before this pass."""
    out = [unknown_source_alert(found.domain, s, spf_record) for s in found.unknown_sources]
    # an open alert on a source whose SPF could not be evaluated now stays as it was
    undetermined = {f"{UNKNOWN_SOURCE} {ip}" for ip in found.undetermined}
    out += [a for a in still_open if a.key in undetermined]
    if found.tls is not None and found.tls_above_threshold:
        out.append(tls_rate_alert(found, new))
    return out


def unknown_source_alert(domain: str, source: UnknownSource, spf_record: str | None) -> Alert:
    from mecsa.harden.records import DnsRecord
    from mecsa.reports.join import spf_with

    name = f" ({source.reverse_name})" if source.reverse_name else ""
    spf_line = DnsRecord(domain, "TXT", spf_with(spf_record, source.ip)).zone_line()
    return Alert(
        domain,
        UNKNOWN_SOURCE,
        f"{UNKNOWN_SOURCE} {source.ip}",
        AlertKind.CONDITION,
        Severity.WARNING,
        f"{source.ip}{name} sent {source.messages} message(s) as {domain} that failed DMARC "
        f"(reported by {', '.join(source.orgs)}); it is not in {domain}'s SPF",
        (
            f"source {source.ip}: DKIM and SPF not aligned",
            f"the SPF of {domain} does not authorise {source.ip} (checked now)",
        ),
        (
            FixText(
                f"If {source.ip} sends mail for {domain}: authorise it in SPF"
                " (or add its provider's include:)",
                ((f"DNS zone {domain}.", spf_line),),
            ),
            FixText(
                f"If it does not, it spoofs {domain}: keep the DMARC policy at p=reject (or p=quarantine) "
                "so that receivers refuse its mail",
                ((f"DNS zone {domain}.", f'_dmarc.{domain}. 3600 IN TXT "v=DMARC1; p=reject; ..."'),),
            ),
        ),
    )


def tls_rate_alert(found: ReportConditions, new: d.Document | None) -> Alert:
    from mecsa.reports.join import protocols_for

    assert found.tls is not None
    tls, domain = found.tls, found.domain
    total = tls.successful + tls.failed
    now: list[str] = []
    fixes: dict[FixText, None] = {}
    for failure in tls.failures:
        protocols = set(protocols_for(failure.result_type, failure.policy_type))
        state = _live_state(new, failure, protocols) if new is not None else None
        if state is not None:
            now.append(f"{_what(failure)}: {state}")
        if new is not None and state == "still failing":
            fixes.update(
                dict.fromkeys(
                    _finding_fixes(
                        new,
                        lambda f, p=protocols, mx=failure.receiving_mx: (  # type: ignore[misc]
                            f.get("protocol") in p and _concerns(f, mx)
                        ),
                    )
                )
            )
    live = f"; now: {', '.join(now)}" if now else ""
    return Alert(
        domain,
        TLS_FAILURE_RATE,
        f"{TLS_FAILURE_RATE} {domain}",
        AlertKind.CONDITION,
        Severity.CRITICAL if any(s.endswith("still failing") for s in now) else Severity.WARNING,
        f"{tls.failed} of {total} TLS sessions towards {domain} failed ({tls.rate:.1%}, threshold "
        f"{found.tls_threshold:.1%}), reported by {', '.join(tls.orgs)}{live}",
        (
            f"TLS failure rate above {found.tls_threshold:.1%}",
            *sorted({_what(f) for f in tls.failures}),
        ),
        tuple(fixes),
    )


def _what(failure: TlsFailureType) -> str:
    target = failure.receiving_mx or "the policy host"
    return f"{failure.result_type} ({failure.policy_type}) on {target}"


def _host_of(subject: object) -> str | None:
    return str(subject).split()[0].lower().rstrip(".") if subject else None


def _concerns(finding: d.Document, mx: str | None) -> bool:
    host = _host_of(finding.get("subject"))
    return host is None or mx is None or "*" in mx or host == mx.lower().rstrip(".")


def _live_state(new: d.Document, failure: TlsFailureType, protocols: set[str]) -> str | None:
    """What the new assessment says of a reported failure type: the join's answer, from the document."""
    relevant = [
        f for f in d.findings(new) if f.get("protocol") in protocols and _concerns(f, failure.receiving_mx)
    ]
    statuses = {str(f.get("status")) for f in relevant}
    if statuses & {"fail", "warn"}:
        return "still failing"
    if "error" in statuses:
        return "could not check now"
    if "pass" in statuses:
        return "fixed since the report"
    return None
