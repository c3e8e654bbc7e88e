"""Ingestion, de-duplication and the views' SQL on both back ends (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

from mecsa.reports.intake import Intake
from mecsa.reports.storage import ReportStore
from mecsa.reports.views import Window, build_view
from tests.unit.reports.samples import Aggregate, Row, aggregate_xml, json_bytes, tls_report

DAY = 1_764_460_800  # 2025-11-30T00:00:00Z


def test_ingest_duplicates_and_views(any_store_url: str) -> None:
    store = ReportStore.open(any_store_url)
    try:
        intake = Intake(store)
        first = Aggregate(report_id="a", begin=DAY + 3600, end=DAY + 7200, rows=(Row(count=2), Row(count=3)))
        # Same day, another organisation: one day in the chart, two organisations.
        second = Aggregate(
            org="Other", report_id="a", begin=DAY + 9000, end=DAY + 9999, rows=(Row(dkim="fail", spf="fail"),)
        )
        statuses = [
            intake.report_bytes("1.xml", aggregate_xml(first))[0].status.value,
            intake.report_bytes("2.xml", aggregate_xml(second))[0].status.value,
            intake.report_bytes("3.xml", aggregate_xml(first))[0].status.value,
            intake.report_bytes(
                "t.json", json_bytes(tls_report(failures=(("starttls-not-supported", "mx.example.test", 4),)))
            )[0].status.value,
        ]
        assert statuses == ["stored", "stored", "duplicate", "stored"]
        view = build_view(store, Window(domain="example.test"))
    finally:
        store.close()
    (dmarc,) = view.dmarc
    assert (dmarc.reports, dmarc.messages, dmarc.passed) == (2, 6, 5)
    assert [(d.day, d.passed, d.failed) for d in dmarc.days] == [(dt.date(2025, 11, 30), 5, 1)]
    assert sorted(o.org for o in dmarc.orgs) == ["Other", "Receiver Inc."]
    (tls,) = view.tls
    assert (tls.total.successful, tls.total.failed) == (10, 4)
    assert tls.failures[0].sessions == 4
