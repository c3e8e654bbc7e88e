"""What the web service calls: the watch list rows, the alerts, and the scheduler run in its loop."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

from mecsa.certs import Tlsa, cert_json
from mecsa.lab.ca import LabCa
from mecsa.monitor.api import alert_rows, start_monitor, watch_rows
from mecsa.monitor.run import run_pass
from mecsa.monitor.watchlist import parse_watchlist
from mecsa.store import open_store
from tests.unit.monitor import documents as docs


def test_the_certificate_json_carries_its_keys_tlsa_3_1_1_data() -> None:
    issued = LabCa().issue(["mx1.top.test"])
    assert issued.certificate is not None
    spki = cert_json(issued.certificate)["spki_sha256"]
    assert spki == issued.spki_sha256
    assert Tlsa(3, 1, 1, bytes.fromhex(spki)).matches(issued.certificate)


def test_watch_rows_and_alert_rows_show_the_schedule_the_last_pass_and_open_alerts(tmp_path: Path) -> None:
    w = parse_watchlist({"domain": [{"name": "top.test"}, {"name": "never.test"}], "notify": []})

    async def broken(_domain: str) -> dict[str, Any]:
        return docs.with_dmarc_none(docs.top())

    with open_store(tmp_path / "s.sqlite") as store:
        when = dt.datetime(2026, 12, 1, 8, tzinfo=dt.UTC)
        w1 = parse_watchlist({"domain": [{"name": "top.test"}], "notify": []})
        asyncio.run(run_pass(w1, store, assess=broken, now=when))
        rows = {r["domain"]: r for r in watch_rows(w, store)}
        assert rows["top.test"]["last_run_at"] == when.isoformat() and rows["top.test"]["open_alerts"] == 1
        assert rows["never.test"]["last_run_at"] is None and rows["never.test"]["open_alerts"] == 0
        [alert] = alert_rows(store, "top.test", "open")
        assert alert["key"] == "finding dmarc_policy.none" and alert["fixes"]


def test_the_in_process_monitor_runs_a_pass_and_stops_when_told(tmp_path: Path) -> None:
    w = parse_watchlist({"domain": [{"name": "top.test"}], "notify": [], "interval": "1h"})
    asked: list[str] = []

    async def healthy(domain: str) -> dict[str, Any]:
        asked.append(domain)
        return docs.top()

    async def main() -> None:
        with open_store(tmp_path / "s.sqlite") as store:
            task, stop = start_monitor(w, store, assess=healthy)
            for _ in range(200):
                if asked:
                    break
                await asyncio.sleep(0.01)
            stop.set()
            await asyncio.wait_for(task, 5)
            assert [a.domain for a in store.assessments_of_domain("top.test")] == ["top.test"]

    asyncio.run(main())
    assert asked == ["top.test"]  # one pass; the next is an hour away
