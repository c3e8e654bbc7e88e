"""The pure parsers: RFC 9990 and RFC 7489 aggregate reports, RFC 8460 TLS reports, and refusals."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest

from mecsa.reports.dmarc_xml import AggregateReader
from mecsa.reports.limits import Limits, ReportError
from mecsa.reports.model import DmarcForm
from mecsa.reports.tlsrpt_json import parse_tlsrpt
from tests.unit.reports.samples import RFC8460_EXAMPLE, Aggregate, Row, aggregate_xml, json_bytes, tls_report


def read_all(data: bytes, limits: Limits | None = None) -> tuple[object, list[object]]:
    reader = AggregateReader(io.BytesIO(data), limits or Limits())
    return reader.header(), list(reader.records())


def test_rfc9990_form_is_recognised_with_its_new_elements() -> None:
    rows = (
        Row(source_ip="192.0.2.10", count=7),
        Row(
            source_ip="2001:db8::0001",
            count=3,
            disposition="reject",
            dkim="fail",
            spf="fail",
            dkim_auth=(("other.test", "s2", "fail"),),
            spf_auth=(("bounce.other.test", "softfail"),),
            reasons=(("local_policy", "ok"),),
        ),
    )
    header, records = read_all(aggregate_xml(Aggregate(rows=rows)))
    assert header.form is DmarcForm.RFC9990  # type: ignore[attr-defined]
    assert header.version == "1.0"  # type: ignore[attr-defined]
    policy = header.policy  # type: ignore[attr-defined]
    assert (policy.domain, policy.p, policy.np, policy.discovery_method, policy.pct) == (
        "example.test",
        "reject",
        "reject",
        "treewalk",
        None,
    )
    meta = header.metadata  # type: ignore[attr-defined]
    assert meta.org_name == "Receiver Inc." and meta.report_id == "r-1" and meta.generator == "mecsa tests"
    assert meta.date_range.begin == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC)
    first, second = records
    assert (first.source_ip, first.count, first.dmarc_pass) == ("192.0.2.10", 7, True)  # type: ignore[attr-defined]
    assert second.source_ip == "2001:db8::1"  # type: ignore[attr-defined]  # normalised
    assert second.dmarc_pass is False  # type: ignore[attr-defined]
    assert second.dkim[0].selector == "s2" and second.spf[0].scope == "mfrom"  # type: ignore[attr-defined]
    assert second.reasons[0].type == "local_policy"  # type: ignore[attr-defined]


def test_rfc7489_form_without_namespace_keeps_pct_and_optional_selector() -> None:
    rows = (Row(dkim_auth=(("example.test", "", "pass"),)),)
    header, records = read_all(aggregate_xml(Aggregate(form="rfc7489", rows=rows)))
    assert header.form is DmarcForm.RFC7489  # type: ignore[attr-defined]
    assert header.policy.pct == 100 and header.policy.np is None  # type: ignore[attr-defined]
    assert records[0].dkim[0].selector is None  # type: ignore[attr-defined]


def test_xml_entity_bomb_is_refused_by_defusedxml() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
        b"<feedback><report_metadata><org_name>&lol3;</org_name></report_metadata></feedback>"
    )
    with pytest.raises(ReportError, match="refused XML"):
        read_all(bomb)


def test_external_entity_is_refused() -> None:
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE f [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<feedback><report_metadata><org_name>&x;</org_name></report_metadata></feedback>"
    )
    with pytest.raises(ReportError, match="refused XML"):
        read_all(xxe)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda x: x.replace(b"<source_ip>192.0.2.10</source_ip>", b"<source_ip>nope</source_ip>"),
            "not an IP",
        ),
        (lambda x: x.replace(b"<count>1</count>", b"<count>-1</count>"), "whole number"),
        (lambda x: x.replace(b"<report_id>r-1</report_id>", b""), "report_id"),
        (lambda x: x.replace(b"</feedback>", b""), "not well-formed"),
        (
            lambda x: x.replace(b"<begin>1700000000</begin>", b"<begin>soon</begin>"),
            "seconds since the epoch",
        ),
        (lambda x: x.replace(b"<dkim>pass</dkim>", b"<dkim>maybe</dkim>"), "pass or fail"),
        (lambda x: x.replace(b"<feedback", b"<other").replace(b"</feedback>", b"</other>"), "root <other>"),
    ],
)
def test_malformed_aggregate_report_gets_a_clear_error(mutate: object, message: str) -> None:
    data = mutate(aggregate_xml(Aggregate(form="rfc7489")))  # type: ignore[operator]
    with pytest.raises(ReportError, match=message):
        read_all(data)


def test_record_limit_is_enforced() -> None:
    report = Aggregate(rows=tuple(Row(count=i + 1) for i in range(5)))
    with pytest.raises(ReportError, match="more than 4 records"):
        read_all(aggregate_xml(report), Limits(max_records=4))


def test_one_record_with_too_many_elements_is_refused() -> None:
    many = "".join("<dkim><domain>x.test</domain><result>pass</result></dkim>" for _ in range(4000))
    data = aggregate_xml(Aggregate()).replace(b"<auth_results>", b"<auth_results>" + many.encode(), 1)
    with pytest.raises(ReportError, match="<record> has more than 10000 elements"):
        read_all(data)


def test_records_before_metadata_are_refused() -> None:
    data = b"<feedback><record><row/></record></feedback>"
    with pytest.raises(ReportError, match="must come before"):
        read_all(data)


def test_rfc8460_example_report() -> None:
    report = parse_tlsrpt(json.dumps(RFC8460_EXAMPLE))
    assert report.organization_name == "Company-X"
    assert report.report_id == "5065427c-23d3-47ca-b6e0-946ea0e8c4be"
    assert report.date_range.end == dt.datetime(2016, 4, 1, 23, 59, 59, tzinfo=dt.UTC)
    (policy,) = report.policies
    assert (policy.policy_type, policy.policy_domain, policy.mx_hosts) == (
        "sts",
        "company-y.example",
        ("*.mail.company-y.example",),
    )
    assert (policy.successful_sessions, policy.failed_sessions) == (5326, 303)
    assert [f.result_type for f in policy.failures] == [
        "certificate-expired",
        "starttls-not-supported",
        "validation-failure",
    ]
    assert [f.failed_session_count for f in policy.failures] == [100, 200, 3]
    assert policy.failures[0].sending_mta_ip == "2001:db8:abcd:12::1"
    assert policy.failures[1].receiving_ip == "203.0.113.56"
    assert policy.failures[2].failure_reason_code == "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED"
    assert policy.policy_strings[1] == "mode: testing"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("report-id"), "report-id"),
        (
            lambda d: d["policies"][0]["summary"].update({"total-successful-session-count": "5"}),
            "non-negative",
        ),
        (lambda d: d["policies"][0]["summary"].update({"total-failure-session-count": True}), "non-negative"),
        (lambda d: d["date-range"].update({"start-datetime": "yesterday"}), "RFC 3339"),
        (lambda d: d["policies"][0]["failure-details"][0].update({"sending-mta-ip": "x"}), "not an IP"),
        (lambda d: d.update({"policies": {}}), "expected an array"),
    ],
)
def test_malformed_tls_report_gets_a_clear_error(change: object, message: str) -> None:
    document = json.loads(json.dumps(RFC8460_EXAMPLE))
    change(document)  # type: ignore[operator]
    with pytest.raises(ReportError, match=message):
        parse_tlsrpt(json.dumps(document))


def test_tls_report_not_json_and_too_deep() -> None:
    with pytest.raises(ReportError, match="not JSON"):
        parse_tlsrpt(b"{nope")
    with pytest.raises(ReportError, match="nested too deeply"):
        parse_tlsrpt(b"[" * 100_000 + b"]" * 100_000)


def test_tls_report_size_limit() -> None:
    data = json_bytes(tls_report())
    with pytest.raises(ReportError, match="more than 100 bytes"):
        parse_tlsrpt(data, Limits(max_json=100))
