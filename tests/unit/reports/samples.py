"""Report builders for the tests: every report here is generated, none is copied from a mailbox.

`RFC8460_EXAMPLE` carries the values of RFC 8460 §4.5's example report (a code component of an
IETF document: Simplified BSD License, see https://trustee.ietf.org/license-info). The example
there breaks one string across two lines for print and names `failure-error-code`; the copy here
is valid JSON and keeps that spelling, which the parser accepts.
"""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RFC9990_NS = "urn:ietf:params:xml:ns:dmarc-2.0"

RFC8460_EXAMPLE: dict[str, Any] = {
    "organization-name": "Company-X",
    "date-range": {"start-datetime": "2016-04-01T00:00:00Z", "end-datetime": "2016-04-01T23:59:59Z"},
    "contact-info": "sts-reporting@company-x.example",
    "report-id": "5065427c-23d3-47ca-b6e0-946ea0e8c4be",
    "policies": [
        {
            "policy": {
                "policy-type": "sts",
                "policy-string": [
                    "version: STSv1",
                    "mode: testing",
                    "mx: *.mail.company-y.example",
                    "max_age: 86400",
                ],
                "policy-domain": "company-y.example",
                "mx-host": "*.mail.company-y.example",
            },
            "summary": {"total-successful-session-count": 5326, "total-failure-session-count": 303},
            "failure-details": [
                {
                    "result-type": "certificate-expired",
                    "sending-mta-ip": "2001:db8:abcd:0012::1",
                    "receiving-mx-hostname": "mx1.mail.company-y.example",
                    "failed-session-count": 100,
                },
                {
                    "result-type": "starttls-not-supported",
                    "sending-mta-ip": "2001:db8:abcd:0013::1",
                    "receiving-mx-hostname": "mx2.mail.company-y.example",
                    "receiving-ip": "203.0.113.56",
                    "failed-session-count": 200,
                    "additional-information": "https://reports.company-x.example/"
                    "report_info?id=5065427c-23d3#StarttlsNotSupported",
                },
                {
                    "result-type": "validation-failure",
                    "sending-mta-ip": "198.51.100.62",
                    "receiving-ip": "203.0.113.58",
                    "receiving-mx-hostname": "mx-backup.mail.company-y.example",
                    "failed-session-count": 3,
                    "failure-error-code": "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED",
                },
            ],
        }
    ],
}


@dataclass(frozen=True)
class Row:
    """One aggregate `record` to generate."""

    source_ip: str = "192.0.2.10"
    count: int = 1
    disposition: str = "none"
    dkim: str = "pass"
    spf: str = "pass"
    header_from: str = "example.test"
    envelope_from: str | None = "example.test"
    dkim_auth: tuple[tuple[str, str, str], ...] = (
        ("example.test", "sel1", "pass"),
    )  # domain, selector, result
    spf_auth: tuple[tuple[str, str], ...] = (("example.test", "pass"),)  # domain, result
    reasons: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Aggregate:
    """One aggregate report to generate, in the RFC 9990 or the RFC 7489 form."""

    form: str = "rfc9990"
    org: str = "Receiver Inc."
    email: str = "noreply-dmarc@receiver.test"
    report_id: str = "r-1"
    domain: str = "example.test"
    begin: int = 1_700_000_000
    end: int = 1_700_086_399
    policy: str = "reject"
    rows: tuple[Row, ...] = field(default_factory=lambda: (Row(),))


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _record(row: Row, rfc9990: bool) -> str:
    reasons = "".join(
        f"<reason><type>{t}</type><comment>{_esc(c)}</comment></reason>" for t, c in row.reasons
    )
    env = f"<envelope_from>{row.envelope_from}</envelope_from>" if row.envelope_from is not None else ""
    dkim = "".join(
        f"<dkim><domain>{d}</domain><selector>{s}</selector><result>{r}</result></dkim>"
        if rfc9990 or s
        else f"<dkim><domain>{d}</domain><result>{r}</result></dkim>"
        for d, s, r in row.dkim_auth
    )
    scope = "<scope>mfrom</scope>" if rfc9990 else ""
    spf = "".join(f"<spf><domain>{d}</domain>{scope}<result>{r}</result></spf>" for d, r in row.spf_auth)
    return (
        "<record><row>"
        f"<source_ip>{row.source_ip}</source_ip><count>{row.count}</count>"
        f"<policy_evaluated><disposition>{row.disposition}</disposition><dkim>{row.dkim}</dkim>"
        f"<spf>{row.spf}</spf>{reasons}</policy_evaluated></row>"
        f"<identifiers>{env}<header_from>{row.header_from}</header_from></identifiers>"
        f"<auth_results>{dkim}{spf}</auth_results></record>\n"
    )


def _head(report: Aggregate) -> str:
    rfc9990 = report.form == "rfc9990"
    root = f'<feedback xmlns="{RFC9990_NS}">' if rfc9990 else "<feedback>"
    version = "<version>1.0</version>" if rfc9990 else ""
    extra = "<discovery_method>treewalk</discovery_method>" if rfc9990 else ""
    tail = "<np>reject</np><testing>n</testing>" if rfc9990 else "<pct>100</pct>"
    generator = "<generator>mecsa tests</generator>" if rfc9990 else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n{root}{version}'
        f"<report_metadata><org_name>{_esc(report.org)}</org_name><email>{report.email}</email>"
        f"<report_id>{_esc(report.report_id)}</report_id>"
        f"<date_range><begin>{report.begin}</begin><end>{report.end}</end></date_range>{generator}"
        "</report_metadata>"
        f"<policy_published><domain>{report.domain}</domain>{extra}<adkim>r</adkim><aspf>r</aspf>"
        f"<p>{report.policy}</p><sp>{report.policy}</sp>{tail}</policy_published>\n"
    )


def aggregate_xml(report: Aggregate) -> bytes:
    """The XML text of `report`."""
    rfc9990 = report.form == "rfc9990"
    body = "".join(_record(r, rfc9990) for r in report.rows)
    return (_head(report) + body + "</feedback>\n").encode()


def aggregate_chunks(report: Aggregate, rows: Iterable[Row]) -> Iterator[bytes]:
    """The XML of `report` with `rows` as its records, in chunks (for reports too big to hold)."""
    rfc9990 = report.form == "rfc9990"
    yield _head(report).encode()
    for row in rows:
        yield _record(row, rfc9990).encode()
    yield b"</feedback>\n"


def tls_report(
    report_id: str = "t-1",
    org: str = "Sender Org",
    domain: str = "example.test",
    *,
    start: str = "2026-11-30T00:00:00Z",
    end: str = "2026-11-30T23:59:59Z",
    success: int = 10,
    failures: tuple[tuple[str, str, int], ...] = (),  # result type, MX host, count
    policy_type: str = "sts",
) -> dict[str, Any]:
    """A TLS report (RFC 8460 §4.4) with one policy."""
    return {
        "organization-name": org,
        "date-range": {"start-datetime": start, "end-datetime": end},
        "contact-info": "tlsrpt@sender.test",
        "report-id": report_id,
        "policies": [
            {
                "policy": {
                    "policy-type": policy_type,
                    "policy-domain": domain,
                    "mx-host": [f"mx.{domain}"],
                    "policy-string": [
                        "version: STSv1",
                        "mode: enforce",
                        f"mx: mx.{domain}",
                        "max_age: 86400",
                    ],
                },
                "summary": {
                    "total-successful-session-count": success,
                    "total-failure-session-count": sum(c for _, _, c in failures),
                },
                "failure-details": [
                    {
                        "result-type": t,
                        "sending-mta-ip": "198.51.100.7",
                        "receiving-mx-hostname": h,
                        "failed-session-count": c,
                    }
                    for t, h, c in failures
                ],
            }
        ],
    }


def json_bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def report_mail(
    attachments: list[tuple[str, str, bytes]],  # filename, content type, data
    *,
    subject: str = "Report Domain: example.test Submitter: receiver.test Report-ID: <r-1>",
    to: str = "dmarc_reports@example.test",
) -> bytes:
    """A report mail (RFC 9990 §"Email", RFC 8460 §5.3) with the given attachments."""
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"] = "noreply@receiver.test"
    message["To"] = to
    message["Subject"] = subject
    message.set_content("This is an aggregate report.")
    for filename, content_type, data in attachments:
        main, _, sub = content_type.partition("/")
        message.add_attachment(data, maintype=main, subtype=sub, filename=filename)
    return message.as_bytes()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
