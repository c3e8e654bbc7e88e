"""Report alerts in a monitor pass: stored DMARC and TLS reports raise alerts through the notifiers.

Real store (SQLite and PostgreSQL), real reports ingested through the intake, a real zone server
for the SPF questions, the loopback SMTP sink and webhook receiver. The assessment is a stored
document handed in (the lab test runs real ones).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mecsa.dns.zoneserver import Fault
from mecsa.monitor.run import PassResult, reports_check, run_pass
from mecsa.monitor.state import alerts
from mecsa.monitor.watchlist import WatchList, WatchListError, parse_watchlist
from mecsa.reports.intake import Intake
from mecsa.reports.storage import ReportStore
from mecsa.store import Store, open_store
from tests.conftest import ServeZones
from tests.monitor_sinks import Sinks
from tests.unit.mailmode.signing import HEAD
from tests.unit.monitor import documents as docs
from tests.unit.reports.samples import Aggregate, Row, aggregate_xml, json_bytes, tls_report
from tests.unit.store.conftest import postgres, store_url  # noqa: F401 (fixtures)

T0 = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
DAY = 86400
SPOOFER, OWN, LISTED = "203.0.113.9", "192.0.2.30", "192.0.2.20"
ZONES = {
    "top.test.": HEAD + '@ IN TXT "v=spf1 ip4:192.0.2.20 -all"\n',
    "odd.test.": HEAD,
    "9.113.0.203.in-addr.arpa.": HEAD + "@ IN PTR spoof.<script>x</script>.example.\n",
}


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:  # noqa: F811 (the imported fixture)
    with open_store(store_url) as opened:
        yield opened


@pytest.fixture
def sinks(tmp_path: Path) -> Iterator[Sinks]:
    with Sinks(tmp_path) as running:
        yield running


def watchlist(sinks: Sinks, *domains: str, **top: Any) -> WatchList:
    return parse_watchlist(
        {
            "interval": "1h",
            "notify": ["hook"],
            "reports": True,
            "tls_failure_threshold": 0.05,
            "reports_window": "3d",
            **top,
            "domain": [{"name": d} for d in domains or ("top.test",)],
            "notifier": {"hook": {"type": "webhook", "url": f"http://127.0.0.1:{sinks.webhook_port}/m"}},
        }
    )


def failing(ip: str, count: int = 1) -> Row:
    return Row(source_ip=ip, count=count, dkim="fail", spf="fail", header_from="top.test")


def ingest_dmarc(
    store: Store, report_id: str, rows: tuple[Row, ...], domain: str = "top.test", org: str = "Receiver Inc."
) -> None:
    end = int(T0.timestamp()) - DAY
    report = Aggregate(org=org, report_id=report_id, domain=domain, begin=end - DAY + 1, end=end, rows=rows)
    Intake(ReportStore(store.engine)).report_bytes(f"{report_id}.xml", aggregate_xml(report))


def ingest_tls(
    store: Store,
    report_id: str,
    success: int,
    failures: tuple[tuple[str, str, int], ...],
    org: str = "Sender Org",
) -> None:
    day = (T0 - dt.timedelta(days=1)).strftime("%Y-%m-%d")
    report = tls_report(
        report_id,
        org,
        domain="top.test",
        start=f"{day}T00:00:00Z",
        end=f"{day}T23:59:59Z",
        success=success,
        failures=failures,
    )
    Intake(ReportStore(store.engine)).report_bytes(f"{report_id}.json", json_bytes(report))


class Top:
    async def __call__(self, domain: str) -> dict[str, Any]:
        doc = docs.top()
        doc["domain"] = domain
        return doc


async def one_pass(w: WatchList, store: Store, client: Any, now: dt.datetime) -> PassResult:
    return await run_pass(
        w, store, assess=Top(), now=now, force=True, report_check=reports_check(w, store, client)
    )


def changes(post: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(a["change"], a["key"]): a for a in json.loads(post["body"])["alerts"]}


async def test_an_unknown_source_and_a_tls_failure_rate_are_told_once_then_resolved(
    store: Store, sinks: Sinks, serve_zones: ServeZones
) -> None:
    client = await serve_zones(ZONES)
    ingest_dmarc(
        store, "d1", (failing(SPOOFER, 40), failing(LISTED, 2), Row(source_ip="192.0.2.1", count=90))
    )
    ingest_tls(store, "t1", 90, (("certificate-host-mismatch", docs.HOST, 10),))
    w = watchlist(sinks)

    first = await one_pass(w, store, client, T0)
    assert first.exit_code == 1 and first.sent == {"hook": 1}
    [post] = sinks.posts()
    told = changes(post)
    assert set(told) == {
        ("new", f"report_unknown_source {SPOOFER}"),
        ("new", "report_tls_failure_rate top.test"),
    }
    spoof = told["new", f"report_unknown_source {SPOOFER}"]
    assert "40 message(s) as top.test that failed DMARC" in spoof["message"]
    assert "spoof.<script>x</script>.example" in spoof["message"]  # the reverse name, as data
    assert spoof["fixes"][0]["snippets"][0]["text"] == (
        f'top.test. 3600 IN TXT "v=spf1 ip4:{LISTED} ip4:{SPOOFER} -all"'
    )
    tls = told["new", "report_tls_failure_rate top.test"]
    assert tls["message"].startswith("10 of 100 TLS sessions towards top.test failed (10.0%")
    # the new assessment's x509 passes on the reported MX: the join's answer
    assert f"certificate-host-mismatch (sts) on {docs.HOST}: fixed since the report" in tls["message"]
    assert tls["evidence"] == [
        "TLS failure rate above 5.0%",
        f"certificate-host-mismatch (sts) on {docs.HOST}",
    ]

    # more reports of the same problems: the counts grow, nothing is resent
    ingest_dmarc(store, "d2", (failing(SPOOFER, 7),), org="Other Receiver")
    ingest_tls(store, "t2", 10, (("certificate-host-mismatch", docs.HOST, 5),), org="Other Sender")
    second = await one_pass(w, store, client, T0 + dt.timedelta(hours=1))
    assert second.exit_code == 1 and second.sent == {} and len(sinks.posts()) == 1
    [open_spoof] = [a for a in alerts(store, "top.test", "open") if a.alert.rule == "report_unknown_source"]
    assert "47 message(s)" in open_spoof.alert.message  # the row follows the newest counts

    # the reports age out of the window: both alerts are resolved, once
    third = await one_pass(w, store, client, T0 + dt.timedelta(days=4))
    assert third.exit_code == 0 and third.sent == {"hook": 1}
    assert set(changes(sinks.posts()[1])) == {
        ("resolved", f"report_unknown_source {SPOOFER}"),
        ("resolved", "report_tls_failure_rate top.test"),
    }
    fourth = await one_pass(w, store, client, T0 + dt.timedelta(days=4, hours=1))
    assert fourth.sent == {} and len(sinks.posts()) == 2


async def test_a_source_the_domain_authorises_in_spf_later_is_resolved(
    store: Store, sinks: Sinks, serve_zones: ServeZones
) -> None:
    before = await serve_zones(ZONES)
    ingest_dmarc(store, "d1", (failing(OWN, 5),))
    w = watchlist(sinks)
    await one_pass(w, store, before, T0)
    assert set(changes(sinks.posts()[0])) == {("new", f"report_unknown_source {OWN}")}
    fixed = dict(ZONES)
    fixed["top.test."] = HEAD + f'@ IN TXT "v=spf1 ip4:{LISTED} ip4:{OWN} -all"\n'
    after = await serve_zones(fixed)
    await one_pass(w, store, after, T0 + dt.timedelta(hours=1))
    assert set(changes(sinks.posts()[1])) == {("resolved", f"report_unknown_source {OWN}")}


async def test_an_spf_that_cannot_be_evaluated_neither_raises_nor_resolves(
    store: Store, sinks: Sinks, serve_zones: ServeZones
) -> None:
    working = await serve_zones(ZONES)
    ingest_dmarc(store, "d1", (failing(SPOOFER, 3),))
    w = watchlist(sinks)
    await one_pass(w, store, working, T0)
    assert len(sinks.posts()) == 1
    broken = await serve_zones(ZONES, faults={"top.test/TXT": Fault.SERVFAIL})
    kept = await one_pass(w, store, broken, T0 + dt.timedelta(hours=1))
    assert kept.sent == {} and len(sinks.posts()) == 1  # no "resolved" on a SERVFAIL
    assert [a.alert.key for a in alerts(store, "top.test", "open")] == [f"report_unknown_source {SPOOFER}"]
    # a domain whose SPF never answered raises nothing on a guess
    ingest_dmarc(store, "o1", (failing(SPOOFER, 3),), domain="odd.test")
    odd = watchlist(sinks, "odd.test")
    none = await run_pass(
        odd,
        store,
        assess=Top(),
        now=T0,
        force=True,
        report_check=reports_check(
            odd, store, await serve_zones(ZONES, faults={"odd.test/TXT": Fault.SERVFAIL})
        ),
    )
    assert alerts(store, "odd.test") == [] and none.sent == {}


async def test_report_alerts_are_off_unless_the_watch_list_asks(
    store: Store, sinks: Sinks, serve_zones: ServeZones
) -> None:
    client = await serve_zones(ZONES)
    ingest_dmarc(store, "d1", (failing(SPOOFER, 40),))
    ingest_tls(store, "t1", 1, (("starttls-not-supported", docs.HOST, 9),))
    for w in (
        watchlist(sinks, reports=False),
        parse_watchlist(
            {**_plain(sinks), "domain": [{"name": "top.test", "reports": False}], "reports": True}
        ),
    ):
        result = await run_pass(w, store, assess=Top(), now=T0, force=True)
        assert result.exit_code == 0 and result.sent == {}
    assert alerts(store, "top.test") == [] and sinks.posts() == []
    # below the threshold: no TLS alert
    ingest_tls(store, "t2", 10_000, (), org="Big Sender")
    w = watchlist(sinks, tls_failure_threshold=0.01)
    await one_pass(w, store, client, T0)
    assert {a.alert.rule for a in alerts(store, "top.test")} == {"report_unknown_source"}


def _plain(sinks: Sinks) -> dict[str, Any]:
    return {"notifier": {"hook": {"type": "webhook", "url": f"http://127.0.0.1:{sinks.webhook_port}/m"}}}


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("reports", "yes", "reports must be true or false"),
        ("tls_failure_threshold", 5, "tls_failure_threshold must be a share from 0 to 1"),
        ("tls_failure_threshold", True, "tls_failure_threshold must be a share"),
        ("reports_window", "10s", "reports_window: at least 60 seconds"),
    ],
)
def test_bad_report_settings_are_refused_with_a_one_line_reason(key: str, value: Any, message: str) -> None:
    with pytest.raises(WatchListError, match=message):
        parse_watchlist({"domain": [{"name": "top.test"}], key: value})


def test_report_settings_are_read_with_their_defaults() -> None:
    plain = parse_watchlist({"domain": [{"name": "a.test"}]})
    assert (plain.reports.enabled, plain.domains[0].reports) == (False, False)
    on = parse_watchlist(
        {
            "reports": True,
            "reports_window": "2d",
            "domain": [{"name": "a.test"}, {"name": "b.test", "reports": False}],
        }
    )
    assert on.reports.window_s == 2 * DAY and on.reports.tls_failure_threshold == 0.05
    assert [d.reports for d in on.domains] == [True, False]
