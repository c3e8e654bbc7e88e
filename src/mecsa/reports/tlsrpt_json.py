"""The parser of SMTP TLS reports (RFC 8460 §4.4): JSON text in, a `TlsReport` out.

Accepted beyond the letter of §4.4, because real reporters send it:
- `mx-host` as a list of strings as well as one string (what most reporters send);
- `failure-error-code`, the spelling of §4.5's example, for `failure-reason-code`.
Unknown `result-type`s are kept as sent: the IANA registry can grow (RFC 8460 §6.4).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from typing import Any

from mecsa.reports.limits import DEFAULT_LIMITS, ByteStream, LimitedReader, Limits, ReportError, clip
from mecsa.reports.model import DateRange, TlsFailureDetail, TlsPolicyResult, TlsReport


def read_tlsrpt(stream: ByteStream, limits: Limits = DEFAULT_LIMITS) -> TlsReport:
    """Parse one TLS report from `stream` (read whole, at most `limits.max_json` bytes)."""
    data = LimitedReader(stream, limits.max_json, "TLS report").read()
    return parse_tlsrpt(data, limits)


def parse_tlsrpt(data: bytes | str, limits: Limits = DEFAULT_LIMITS) -> TlsReport:
    """Parse one TLS report from its JSON text."""
    if isinstance(data, bytes):
        if len(data) > limits.max_json:
            raise ReportError(f"TLS report: more than {limits.max_json} bytes")
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ReportError(f"TLS report: not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    try:
        document = json.loads(data)
    except json.JSONDecodeError as exc:
        raise ReportError(
            f"TLS report: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from exc
    except RecursionError as exc:
        raise ReportError("TLS report: JSON nested too deeply") from exc
    return _report(document, limits)


class _Object:
    """Typed access to one JSON object, with errors that name the path."""

    def __init__(self, value: Any, where: str, limits: Limits) -> None:
        if not isinstance(value, dict):
            raise ReportError(f"{where}: expected an object")
        self.value = value
        self.where = where
        self.limits = limits

    def text(self, key: str) -> str | None:
        value = self.value.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise ReportError(f"{self.where}.{key}: expected a string")
        return clip(value, self.limits.max_text) or None

    def need(self, key: str) -> str:
        value = self.text(key)
        if value is None:
            raise ReportError(f"{self.where}: {key!r} is missing or empty")
        return value

    def count(self, key: str, *, required: bool = True) -> int:
        value = self.value.get(key)
        if value is None and not required:
            return 0
        # bool is an int in Python, never a count in JSON
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ReportError(f"{self.where}.{key}: expected a non-negative integer")
        return value

    def obj(self, key: str) -> _Object:
        if key not in self.value:
            raise ReportError(f"{self.where}: {key!r} is missing")
        return _Object(self.value[key], f"{self.where}.{key}", self.limits)

    def array(self, key: str, limit: int, *, required: bool = True) -> list[Any]:
        value = self.value.get(key)
        if value is None and not required:
            return []
        if not isinstance(value, list):
            raise ReportError(f"{self.where}.{key}: expected an array")
        if len(value) > limit:
            raise ReportError(f"{self.where}.{key}: more than {limit} entries")
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.value.get(key)
        if value is None:
            return ()
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
            raise ReportError(f"{self.where}.{key}: expected a string or an array of strings")
        return tuple(clip(v, self.limits.max_text) for v in items[: self.limits.max_policies])


def _datetime(text: str, where: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ReportError(f"{where}: {text!r} is not an RFC 3339 date-time") from exc
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _ip(text: str | None, where: str) -> str | None:
    if text is None:
        return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError as exc:
        raise ReportError(f"{where}: {text!r} is not an IP address") from exc


def _failure(node: _Object) -> TlsFailureDetail:
    return TlsFailureDetail(
        result_type=node.need("result-type").lower(),
        failed_session_count=node.count("failed-session-count"),
        sending_mta_ip=_ip(node.text("sending-mta-ip"), f"{node.where}.sending-mta-ip"),
        receiving_mx_hostname=_host(node.text("receiving-mx-hostname")),
        receiving_mx_helo=node.text("receiving-mx-helo"),
        receiving_ip=_ip(node.text("receiving-ip"), f"{node.where}.receiving-ip"),
        additional_information=node.text("additional-information"),
        failure_reason_code=node.text("failure-reason-code") or node.text("failure-error-code"),
    )


def _host(text: str | None) -> str | None:
    return text.lower().rstrip(".") if text else None


def _policy(node: _Object, limits: Limits) -> TlsPolicyResult:
    policy = node.obj("policy")
    summary = node.obj("summary")
    details = node.array("failure-details", limits.max_failure_details, required=False)
    failures = tuple(
        _failure(_Object(d, f"{node.where}.failure-details[{i}]", limits)) for i, d in enumerate(details)
    )
    return TlsPolicyResult(
        policy_type=policy.need("policy-type").lower(),
        policy_domain=policy.need("policy-domain").lower().rstrip("."),
        successful_sessions=summary.count("total-successful-session-count"),
        failed_sessions=summary.count("total-failure-session-count"),
        policy_strings=policy.strings("policy-string"),
        mx_hosts=tuple(h.lower().rstrip(".") for h in policy.strings("mx-host")),
        failures=failures,
    )


def _report(document: Any, limits: Limits) -> TlsReport:
    root = _Object(document, "report", limits)
    dates = root.obj("date-range")
    begin = _datetime(dates.need("start-datetime"), "date-range.start-datetime")
    end = _datetime(dates.need("end-datetime"), "date-range.end-datetime")
    if end < begin:
        raise ReportError("date-range: end-datetime is before start-datetime")
    policies = root.array("policies", limits.max_policies)
    return TlsReport(
        organization_name=root.need("organization-name"),
        report_id=root.need("report-id"),
        date_range=DateRange(begin, end),
        contact_info=root.text("contact-info"),
        policies=tuple(_policy(_Object(p, f"policies[{i}]", limits), limits) for i, p in enumerate(policies)),
    )
