"""/reports and /api/v1/reports: the ingested reports in the web service, escaped, with the cheap join.

Reports are generated and ingested through the real intake into the service's store; the reverse
names and the SPF come from a loopback zone server; the TLS join reads a real stored assessment.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest

from mecsa.dns.zoneserver import ThreadedZoneServer, ZoneData
from mecsa.reports.intake import Intake
from mecsa.reports.storage import ReportStore
from mecsa.store import Store
from mecsa.store.api_tokens import create_token
from tests.unit.reports.samples import Aggregate, Row, aggregate_xml, json_bytes, tls_report
from tests.unit.web.service import ORIGIN, assess_now, client_for, closed_port, settings_for, zone_text

DOMAIN = f"good.{ORIGIN}"
SPOOFER, LISTED, ALIGNED = "203.0.113.9", "127.0.0.1", "192.0.2.1"
EVIL_ORG = "<script>document.title='org'</script> Receiver"
EVIL_PTR = "<script>document.title='ptr'</script>.evil.test"
REVERSE = "113.0.203.in-addr.arpa."


@pytest.fixture(scope="module")
def zones() -> Iterator[ThreadedZoneServer]:
    texts = {
        ORIGIN + ".": zone_text(),
        REVERSE: f"$TTL 300\n@ SOA ns.{ORIGIN}. h.{ORIGIN}. 1 300 300 300 300\n@ NS ns.{ORIGIN}.\n"
        f"9 PTR {EVIL_PTR}.\n",
    }
    with ThreadedZoneServer(ZoneData.from_texts(texts, secure=[ORIGIN + "."])) as server:
        yield server


def failing(ip: str, count: int) -> Row:
    return Row(source_ip=ip, count=count, dkim="fail", spf="fail", header_from=DOMAIN)


def ingest(store: Store) -> None:
    now = int(time.time())
    intake = Intake(ReportStore(store.engine))
    rows = (failing(SPOOFER, 40), failing(LISTED, 3), Row(source_ip=ALIGNED, count=90, header_from=DOMAIN))
    report = Aggregate(org=EVIL_ORG, domain=DOMAIN, begin=now - 2 * 86400, end=now - 86400, rows=rows)
    assert intake.report_bytes("a.xml", aggregate_xml(report))[0].status.value == "stored"
    day = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).strftime("%Y-%m-%d")
    tls = tls_report(
        "t-1",
        EVIL_ORG,
        domain=DOMAIN,
        start=f"{day}T00:00:00Z",
        end=f"{day}T23:59:59Z",
        success=90,
        failures=(("starttls-not-supported", f"mx.{DOMAIN}", 10),),
    )
    assert intake.report_bytes("t.json", json_bytes(tls))[0].status.value == "stored"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_reports_page_groups_sources_draws_charts_and_escapes_report_text(
    zones: ThreadedZoneServer, sqlite_store: Store
) -> None:
    token = create_token(sqlite_store, "ops")
    ingest(sqlite_store)
    with client_for(sqlite_store, settings_for(zones)) as client:
        page = client.get("/reports", headers=bearer(token), params={"domain": DOMAIN})
        assert page.status_code == 200
        text = page.text
        # hostile organisation and reverse names are text, never markup
        assert "<script>document.title" not in text
        assert "&lt;script&gt;document.title=&#39;org&#39;&lt;/script&gt; Receiver" in text
        assert "&lt;script&gt;document.title=&#39;ptr&#39;&lt;/script&gt;.evil.test" in text
        # the three groups, each with its source
        unknown = text.split("Sources: unknown senders (likely spoofing)")[1].split("</table>")[0]
        known = text.split("Sources: failing but known")[1].split("</table>")[0]
        aligned = text.split("Sources: aligned and passing")[1].split("</table>")[0]
        assert SPOOFER in unknown and LISTED in known and ALIGNED in aligned
        assert text.count("<svg") == 2 and "<rect" in text  # DMARC and TLS charts, inline SVG
        assert "starttls-not-supported" in text and "Failure types" in text
        # the join: SPF asked now for the failing sources; TLS needs a stored assessment first
        assert "unknown sender, nothing aligned (likely spoofing)" in text
        assert f"no stored assessment of {DOMAIN}: test it to re-check" in text
        # the page's own style sheet and the sections' carry this response's nonce, nothing inline
        assert 'style="' not in text
        assert text.count("<style nonce=") == 2

        assess_now(client, DOMAIN)
        again = client.get("/reports", headers=bearer(token), params={"domain": DOMAIN}).text
        assert "as of the assessment of" in again
        assert f"no stored assessment of {DOMAIN}" not in again

        everything = client.get("/reports", headers=bearer(token))
        assert everything.status_code == 200 and f'<option value="{DOMAIN}"' in everything.text
        assert client.get("/reports", headers=bearer(token), params={"days": 0}).status_code == 422
        assert client.get("/reports", headers=bearer(token), params={"domain": "-bad-"}).status_code == 400


def test_the_reports_api_answers_the_document_of_reports_show_json(
    zones: ThreadedZoneServer, sqlite_store: Store
) -> None:
    token = create_token(sqlite_store, "ops")
    ingest(sqlite_store)
    with client_for(sqlite_store, settings_for(zones)) as client:
        assert client.get("/api/v1/reports").status_code == 401
        answer = client.get("/api/v1/reports", headers=bearer(token), params={"domain": DOMAIN, "days": 7})
    assert answer.status_code == 200
    data: dict[str, Any] = answer.json()
    assert data["domain"] == DOMAIN
    [dmarc] = data["dmarc"]
    assert (dmarc["messages"], dmarc["passed"]) == (133, 90)
    [spoof] = dmarc["groups"]["unknown"]
    assert (spoof["ip"], spoof["reverse_name"], spoof["orgs"]) == (SPOOFER, EVIL_PTR, [EVIL_ORG])
    assert [s["ip"] for s in dmarc["groups"]["failing_known"]] == [LISTED]
    [tls] = data["tls"]
    assert (tls["successful"], tls["failed"]) == (90, 10)
    assert {(j["kind"], j["status"]) for j in data["join"]} >= {
        ("tls", "not_probed"),
        ("dmarc", "not_probed"),
    }


def test_when_dns_does_not_answer_failing_sources_are_undetermined_never_unknown(
    zones: ThreadedZoneServer, sqlite_store: Store
) -> None:
    token = create_token(sqlite_store, "ops")
    ingest(sqlite_store)
    silent = settings_for(zones, resolvers=(f"127.0.0.1:{closed_port()}",), dns_timeout=0.2)
    with client_for(sqlite_store, silent) as client:
        page = client.get("/reports", headers=bearer(token), params={"domain": DOMAIN})
    assert page.status_code == 200
    assert "Sources: unknown senders" not in page.text and "Sources: failing but known" not in page.text
    undetermined = page.text.split("Sources: failing, SPF could not be checked")[1].split("</table>")[0]
    assert SPOOFER in undetermined and LISTED in undetermined
