"""Monitor events: a new unknown sending source, a TLS failure rate above the threshold."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from sqlalchemy import update

from mecsa.dns.zoneserver import Fault
from mecsa.reports.events import EventKind, report_events
from mecsa.reports.intake import Intake
from mecsa.reports.storage import ReportStore
from mecsa.store.reports import dmarc_reports
from tests.conftest import ServeZones
from tests.unit.mailmode.signing import HEAD
from tests.unit.reports.samples import Aggregate, Row, aggregate_xml, json_bytes, tls_report

ZONES = {"example.test.": HEAD + '@ IN TXT "v=spf1 ip4:192.0.2.20 -all"\n', "odd.test.": HEAD}


def failing(ip: str, count: int = 1) -> Row:
    return Row(source_ip=ip, count=count, dkim="fail", spf="fail")


def _age(store: ReportStore, report_id: str, seconds: int) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            update(dmarc_reports)
            .where(dmarc_reports.c.report_id == report_id)
            .values(ingested_ts=int(time.time()) - seconds)
        )


async def test_new_unknown_source_and_tls_rate(tmp_path: Path, serve_zones: ServeZones) -> None:
    client = await serve_zones(ZONES, faults={"odd.test/TXT": Fault.SERVFAIL})
    store = ReportStore.open(tmp_path / "e.sqlite3")
    try:
        intake = Intake(store)
        old = Aggregate(report_id="old", rows=(failing("203.0.113.1"),))
        intake.report_bytes("old.xml", aggregate_xml(old))
        _age(store, "old", 86400)
        new_rows = (
            failing("203.0.113.1"),  # seen before: no event
            failing("203.0.113.2", 9),  # new, not in SPF
            failing("192.0.2.20"),  # new, but in SPF: known
        )
        intake.report_bytes("new.xml", aggregate_xml(Aggregate(report_id="new", begin=5, rows=new_rows)))
        odd = Aggregate(report_id="odd", domain="odd.test", rows=(failing("198.51.100.1"),))
        intake.report_bytes("odd.xml", aggregate_xml(odd))  # SPF SERVFAIL: no alert on a guess
        intake.report_bytes(
            "t.json", json_bytes(tls_report(success=90, failures=(("tlsa-invalid", "mx", 10),)))
        )
        intake.report_bytes(
            "u.json",
            json_bytes(
                tls_report("u", domain="fine.test", success=999, failures=(("tlsa-invalid", "mx", 1),))
            ),
        )
        since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        events = await report_events(store, client, since, tls_threshold=0.05)
    finally:
        store.close()
    unknown = [(e.domain, e.subject, e.value) for e in events if e.kind is EventKind.NEW_UNKNOWN_SOURCE]
    assert unknown == [("example.test", "203.0.113.2", 9.0)]
    rates = [(e.domain, e.value) for e in events if e.kind is EventKind.TLS_FAILURE_RATE]
    assert rates == [("example.test", 0.1)]
