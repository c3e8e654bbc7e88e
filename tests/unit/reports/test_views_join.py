"""Views (source groups from live SPF), the join (fixes, "fixed since the report") and renderers."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mecsa.dns.resolver import Resolver
from mecsa.dns.zoneserver import Fault
from mecsa.model import Assessment, CheckResult, Finding, ProtocolVerdict, Status
from mecsa.reports.intake import Intake
from mecsa.reports.join import JoinStatus, dmarc_join, judge_tls, spf_with
from mecsa.reports.lookups import reverse_names, spf_membership
from mecsa.reports.render import render_html, render_text, safe
from mecsa.reports.storage import ReportStore
from mecsa.reports.views import (
    SourceGroup,
    SpfMembership,
    TlsFailureClass,
    Window,
    build_view,
    dmarc_failing_sources,
    dmarc_source_ips,
)
from tests.conftest import ServeZones
from tests.unit.mailmode.signing import HEAD
from tests.unit.reports.samples import Aggregate, Row, aggregate_xml, json_bytes, tls_report

SPF = '"v=spf1 ip4:192.0.2.10 ip4:192.0.2.20 -all"'
ZONES = {
    "example.test.": HEAD + f"@ IN TXT {SPF}\n",
    "broken.test.": HEAD + '@ IN TXT "v=spf1 -all"\n',
    "2.0.192.in-addr.arpa.": HEAD + "10 IN PTR mail.example.test.\n",
}
FAULTS = {"broken.test/TXT": Fault.SERVFAIL}

ROWS = (
    Row(source_ip="192.0.2.10", count=50),  # aligned, passing
    Row(source_ip="192.0.2.20", count=4, dkim="fail", spf="fail", dkim_auth=(("esp.test", "s", "pass"),)),
    Row(
        source_ip="203.0.113.9",
        count=3,
        dkim="fail",
        spf="fail",
        dkim_auth=(),
        spf_auth=(("evil.test", "fail"),),
    ),
    Row(source_ip="198.51.100.7", count=6, dkim="pass", spf="fail", spf_auth=(("example.test", "fail"),)),
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ReportStore]:
    opened = ReportStore.open(tmp_path / "r.sqlite3")
    intake = Intake(opened)
    intake.report_bytes("a.xml", aggregate_xml(Aggregate(rows=ROWS)))
    broken = Aggregate(
        report_id="b", domain="broken.test", rows=(Row(source_ip="192.0.2.99", dkim="fail", spf="fail"),)
    )
    intake.report_bytes("b.xml", aggregate_xml(broken))
    intake.report_bytes(
        "t.json",
        json_bytes(tls_report(success=90, failures=(("certificate-expired", "mx.example.test", 10),))),
    )
    yield opened
    opened.close()


async def test_sources_are_grouped_by_the_domains_live_spf(
    store: ReportStore, serve_zones: ServeZones
) -> None:
    client = await serve_zones(ZONES, faults=FAULTS)
    window = Window()
    resolver = Resolver(client)
    spf = await spf_membership(resolver, dmarc_failing_sources(store, window))
    reverse = await reverse_names(resolver, dmarc_source_ips(store, window))
    view = build_view(store, window, spf, reverse)
    broken, example = view.dmarc  # sorted by domain
    groups = {g: [s.ip for s in example.group(g)] for g in SourceGroup}
    assert groups[SourceGroup.ALIGNED_PASSING] == ["192.0.2.10", "198.51.100.7"]
    assert groups[SourceGroup.FAILING_KNOWN] == ["192.0.2.20"]
    assert groups[SourceGroup.UNKNOWN] == ["203.0.113.9"]
    # SERVFAIL on the SPF record: never called "unknown sender" on a guess.
    assert [s.group for s in broken.sources] == [SourceGroup.UNDETERMINED]
    assert example.sources[0].reverse_name == "mail.example.test"
    known = example.group(SourceGroup.FAILING_KNOWN)[0]
    assert known.auth_results == {"dkim d=esp.test pass": 4, "spf example.test pass": 4}
    spoofer = example.group(SourceGroup.UNKNOWN)[0]
    assert spoofer.auth_results == {"spf evil.test fail": 3}
    assert (example.messages, example.passed) == (63, 56)
    (tls,) = view.tls
    assert (tls.total.successful, tls.total.failed) == (90, 10)
    assert tls.failures[0].result_type == "certificate-expired" and tls.failures[0].sessions == 10


async def test_dmarc_join_gives_the_spf_fix_or_fixed_since_the_report(
    store: ReportStore, serve_zones: ServeZones
) -> None:
    client = await serve_zones(ZONES, faults=FAULTS)
    items = {
        i.problem.split(":")[0]: i for i in await dmarc_join(store, Window(domain="example.test"), client)
    }
    outside = items["198.51.100.7"]
    assert outside.status is JoinStatus.STILL_FAILING
    (fix,) = outside.fixes
    assert "ip4:192.0.2.10 ip4:192.0.2.20 ip4:198.51.100.7 -all" in fix.snippets[0].text
    known = items["192.0.2.20"]
    assert known.status is JoinStatus.NOT_PROBED and "d=esp.test" in known.fixes[0].title
    assert "likely spoofing" in items["203.0.113.9"].problem and not items["203.0.113.9"].fixes


async def test_dkim_aligned_source_now_in_spf_is_fixed_since_the_report(
    tmp_path: Path, serve_zones: ServeZones
) -> None:
    client = await serve_zones(ZONES)
    opened = ReportStore.open(tmp_path / "f.sqlite3")
    try:
        row = Row(source_ip="192.0.2.20", count=2, dkim="pass", spf="fail")
        Intake(opened).report_bytes("a.xml", aggregate_xml(Aggregate(rows=(row,))))
        (item,) = await dmarc_join(opened, Window(), client)
    finally:
        opened.close()
    assert item.status is JoinStatus.FIXED and "passes example.test's SPF now" in item.now


def test_spf_with_inserts_before_all_or_redirect() -> None:
    assert spf_with("v=spf1 mx -all", "192.0.2.1") == "v=spf1 mx ip4:192.0.2.1 -all"
    assert (
        spf_with("v=spf1 redirect=_spf.x.test", "2001:db8::1")
        == "v=spf1 ip6:2001:db8::1 redirect=_spf.x.test"
    )
    assert spf_with(None, "192.0.2.1") == "v=spf1 ip4:192.0.2.1 -all"


def _assessment(*findings: Finding, verdicts: tuple[ProtocolVerdict, ...] = ()) -> Assessment:
    return Assessment("example.test", "0", (CheckResult("x509", findings, verdicts),), {}, 0.1)


FAILURE = TlsFailureClass(
    "certificate-expired",
    "sts",
    "mx.example.test",
    None,
    10,
    ("Sender Org",),
    dt.datetime(2026, 11, 30, tzinfo=dt.UTC),
)


def test_tls_failure_still_there_is_reported_with_the_live_finding() -> None:
    expired = Finding(
        "x509.expired", Status.FAIL, "x509", "certificate expired", subject="mx.example.test 192.0.2.1"
    )
    status, now, _ = judge_tls(_assessment(expired), FAILURE)
    assert status is JoinStatus.STILL_FAILING and now == "certificate expired"


def test_tls_failure_gone_is_fixed_since_the_report() -> None:
    good = Finding(
        "x509.valid", Status.PASS, "x509", "valid certificate", subject="mx.example.test 192.0.2.1"
    )
    assert judge_tls(_assessment(good), FAILURE)[0] is JoinStatus.FIXED


def test_tls_recheck_that_times_out_is_never_fixed() -> None:
    error = Finding(
        "starttls.unreachable", Status.ERROR, "x509", "timeout", subject="mx.example.test 192.0.2.1"
    )
    good_elsewhere = Finding("x509.valid", Status.PASS, "x509", "ok", subject="mx2.example.test 192.0.2.2")
    assert judge_tls(_assessment(error, good_elsewhere), FAILURE)[0] is JoinStatus.COULD_NOT_CHECK


def test_tls_failure_on_a_host_that_is_no_longer_an_mx() -> None:
    other = Finding("x509.valid", Status.PASS, "x509", "ok", subject="mx2.example.test 192.0.2.2")
    assert judge_tls(_assessment(other), FAILURE)[0] is JoinStatus.NO_LONGER_APPLIES


def test_network_text_is_escaped_in_text_and_html(tmp_path: Path) -> None:
    opened = ReportStore.open(tmp_path / "e.sqlite3")
    try:
        hostile = "Evil\x9b31m\u202e<script>alert(1)</script>"
        Intake(opened).report_bytes("a.xml", aggregate_xml(Aggregate(org=hostile)))
        view = build_view(opened, Window(), {}, {})
    finally:
        opened.close()
    text = render_text(view)
    assert "\x9b" not in text and "\u202e" not in text and "Evil\\x9b31m\\u202e" in text
    html = render_html(view)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert (
        "<svg" in html and "<rect" in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    )
    assert safe("plain") == "plain"


def test_view_json_has_the_groups_and_counts(store: ReportStore) -> None:
    view = build_view(
        store, Window(domain="example.test"), {("example.test", "192.0.2.20"): SpfMembership.LISTED}
    )
    data = json.loads(json.dumps(view.to_json()))
    (dmarc,) = data["dmarc"]
    assert [s["ip"] for s in dmarc["groups"]["failing_known"]] == ["192.0.2.20"]
    assert [s["ip"] for s in dmarc["groups"]["undetermined"]] == ["203.0.113.9"]  # not asked: not guessed
    assert data["tls"][0]["failed"] == 10


def test_since_filters_by_report_end(store: ReportStore) -> None:
    later = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    view = build_view(store, Window(since=later))
    assert view.dmarc == () and view.tls == ()
