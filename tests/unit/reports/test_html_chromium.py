"""The reports page in headless Chromium: it renders its tables and SVG, hostile text stays text."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mecsa.reports.intake import Intake
from mecsa.reports.render import render_html
from mecsa.reports.storage import ReportStore
from mecsa.reports.views import SpfMembership, Window, build_view
from tests.unit.reports.samples import Aggregate, Row, aggregate_xml, json_bytes, tls_report

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="headless Chromium is not installed")
HOSTILE = "<img src=x onerror=\"document.title='pwned'\">"


def test_reports_page_renders_in_chromium(tmp_path: Path) -> None:
    store = ReportStore.open(tmp_path / "s.sqlite")
    try:
        intake = Intake(store)
        rows = (Row(count=9), Row(source_ip="203.0.113.9", dkim="fail", spf="fail", count=2))
        intake.report_bytes("a.xml", aggregate_xml(Aggregate(org=HOSTILE, rows=rows)))
        intake.report_bytes(
            "b.xml", aggregate_xml(Aggregate(report_id="2", begin=1_700_100_000, end=1_700_186_399))
        )
        intake.report_bytes(
            "t.json", json_bytes(tls_report(failures=(("tlsa-invalid", "mx.example.test", 3),)))
        )
        spf = {("example.test", "203.0.113.9"): SpfMembership.NOT_LISTED}
        page = tmp_path / "reports.html"
        page.write_text(render_html(build_view(store, Window(), spf)), encoding="utf-8")
    finally:
        store.close()
    profile = tmp_path / "profile"
    profile.mkdir()
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ]
    done = subprocess.run(
        [str(CHROMIUM), *flags, "--dump-dom", page.as_uri()], capture_output=True, timeout=90, check=True
    )
    dom = done.stdout.decode()
    assert "<title>mecsa reports: all domains</title>" in dom  # the hostile onerror never ran
    # Two stacked bars (passed, failed) per day: two days of DMARC reports, one day of TLS reports.
    assert dom.count("<rect") == 6 and dom.count("<svg") == 2
    assert "unknown senders (likely spoofing)" in dom and "tlsa-invalid" in dom
    assert "<img" not in dom and "&lt;img src=x" in dom
