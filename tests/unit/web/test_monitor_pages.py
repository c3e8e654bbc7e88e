"""The monitor in the web service: /monitor, /monitor/alerts, /api/v1/monitor/*, and who may see them.

`mecsa serve --watchlist` is exercised as `create_app(ServiceSettings(watchlist=...))`: the monitor
runs real assessments of the test zone's domains on its own loop while the pages answer.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mecsa.dns.zoneserver import ThreadedZoneServer
from mecsa.monitor.alert import Alert, AlertKind, FixText, Severity
from mecsa.monitor.state import record_alerts
from mecsa.monitor.watchlist import WatchListError
from mecsa.store import Store
from mecsa.store.api_tokens import create_token, list_tokens, revoke_token
from mecsa.web.app import create_app
from mecsa.web.session import COOKIE
from tests.unit.web.service import HOSTILE_IMG, HOSTILE_SCRIPT, ORIGIN, client_for, closed_port, settings_for

PRIVATE_PAGES = ("/monitor", "/monitor/alerts", "/reports")
PRIVATE_API = ("/api/v1/monitor/watchlist", "/api/v1/monitor/alerts", "/api/v1/reports")
T0 = dt.datetime(2026, 12, 1, 8, tzinfo=dt.UTC)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def watch_file(tmp_path: Path, server: ThreadedZoneServer, *domains: str) -> Path:
    path = tmp_path / "watch.toml"
    entries = "".join(f'\n[[domain]]\nname = "{d}"\n' for d in domains)
    path.write_text(
        f"""interval = "1h"
notify = []

[assess]
resolvers = ["{server.address}"]
timeout = 0.5
smtp_timeout = 0.5
smtp_port = {closed_port()}
{entries}"""
    )
    return path


def test_the_private_pages_and_endpoints_need_a_token_or_a_signed_in_browser(
    zones: ThreadedZoneServer, sqlite_store: Store
) -> None:
    token = create_token(sqlite_store, "ops")
    with client_for(sqlite_store, settings_for(zones)) as client:
        for path in PRIVATE_PAGES:
            page = client.get(path)
            assert page.status_code == 401 and 'action="/signin"' in page.text, path
            assert f'name="next" value="{path}"' in page.text
        for path in PRIVATE_API:
            for headers in ({}, bearer("mecsa_not-a-token")):
                answer = client.get(path, headers=headers)
                assert answer.status_code == 401, path
                assert answer.headers["www-authenticate"] == "Bearer"
                assert "token" in answer.json()["detail"]
            assert client.get(path, headers=bearer(token)).status_code == 200, path
        # a page answers a bearer token too (scripts), and a browser signs in once
        assert client.get("/monitor", headers=bearer(token)).status_code == 200
        refused = client.post("/signin", data={"token": "wrong", "next": "/monitor"})
        assert refused.status_code == 401 and "not valid" in refused.text
        assert COOKIE not in client.cookies
        signed = client.post("/signin", data={"token": token, "next": "/reports"}, follow_redirects=False)
        assert signed.status_code == 303 and signed.headers["location"] == "/reports"
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=43200" in cookie
        assert "Secure" not in cookie  # plain http here: a Secure cookie would never come back
        for path in PRIVATE_PAGES:
            assert client.get(path).status_code == 200, path
        # the API stays bearer-only: a cookie is not an API credential
        assert client.get("/api/v1/monitor/alerts").status_code == 401
        # revoking the token signs the browser out at once
        [made] = list_tokens(sqlite_store)
        revoke_token(sqlite_store, made.id)
        assert client.get("/monitor").status_code == 401
        out = client.post("/signout", follow_redirects=False)
        assert out.status_code == 303 and f'{COOKIE}=""' in out.headers["set-cookie"]


@pytest.mark.parametrize(
    "target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "monitor"]
)
def test_signing_in_never_redirects_to_another_site(
    zones: ThreadedZoneServer, sqlite_store: Store, target: str
) -> None:
    token = create_token(sqlite_store, "ops")
    with client_for(sqlite_store, settings_for(zones)) as client:
        signed = client.post("/signin", data={"token": token, "next": target}, follow_redirects=False)
    assert signed.status_code == 303 and signed.headers["location"] == "/monitor"


def test_serve_with_a_watchlist_runs_the_monitor_in_process_and_its_pages_show_it(
    zones: ThreadedZoneServer, sqlite_store: Store, tmp_path: Path
) -> None:
    token = create_token(sqlite_store, "ops")
    domains = (f"good.{ORIGIN}", f"hostile.{ORIGIN}")
    settings = settings_for(zones, watchlist=str(watch_file(tmp_path, zones, *domains)))
    with client_for(sqlite_store, settings) as client:
        assert any(t.name == "mecsa-monitor" for t in threading.enumerate())
        state = _wait_for_passes(client, token, len(domains))
        assert state["monitoring"] is True and state["source"].endswith("watch.toml")
        rows = {r["domain"]: r for r in state["domains"]}
        good = rows[f"good.{ORIGIN}"]
        assert good["interval_s"] == 3600 and good["last_error"] is None
        assert good["report"] == f"/report/{good['last_assessment_id']}"
        assert set(good["last_levels"]) == {"confidentiality", "phishing", "integrity"}
        assert dt.datetime.fromisoformat(good["next_pass_at"]) > dt.datetime.fromisoformat(
            good["last_run_at"]
        )
        # while the monitor's loop works, the pages stay on the serving loop and answer
        home = client.get("/")
        assert home.status_code == 200
        page = client.get("/monitor", headers=bearer(token))
        assert page.status_code == 200
        assert f'id="watch-good.{ORIGIN}"' in page.text and good["report"] in page.text
        assert "<td>1h</td>" in page.text and ("★" in page.text or "☆" in page.text)
        assert f'href="/domain/good.{ORIGIN}"' in page.text
        alerts = client.get("/api/v1/monitor/alerts", headers=bearer(token), params={"state": "open"}).json()
        assert alerts and all(a["state"] == "open" for a in alerts)
        assert {a["domain"] for a in alerts} <= set(domains)
        hostile = [a for a in alerts if a["domain"] == f"hostile.{ORIGIN}"]
        assert any(HOSTILE_SCRIPT in " ".join([a["message"], *a["evidence"]]) for a in hostile)
        listed = client.get("/monitor/alerts", headers=bearer(token))
        assert listed.status_code == 200
        # DNS text made to break out of HTML comes out as text
        assert HOSTILE_IMG not in listed.text and HOSTILE_SCRIPT not in listed.text
        assert "v=spf1 &lt;script&gt;document.title=" in listed.text
        assert (
            client.get("/monitor/alerts", params={"state": "nope"}, headers=bearer(token)).status_code == 400
        )
        assert (
            client.get("/api/v1/monitor/alerts", params={"domain": "a..b"}, headers=bearer(token)).status_code
            == 400
        )
    # the service stopped: so did the monitor's thread
    assert not any(t.name == "mecsa-monitor" for t in threading.enumerate())


def _wait_for_passes(client: TestClient, token: str, count: int, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        state: dict[str, Any] = client.get("/api/v1/monitor/watchlist", headers=bearer(token)).json()
        if sum(1 for r in state["domains"] if r["last_run_at"]) == count:
            return state
        assert time.monotonic() < deadline, state
        time.sleep(0.1)


def test_without_a_watchlist_the_alerts_page_shows_the_store_and_marks_resolved_ones(
    zones: ThreadedZoneServer, sqlite_store: Store
) -> None:
    token = create_token(sqlite_store, "ops")
    fix = FixText(
        "Publish the <TLSA> record", (("DNS zone of mx.top.test", "_25._tcp.mx.top.test. TLSA 3 1 1 ab"),)
    )
    broke = Alert(
        "top.test", "dane_key_changed", "dane_key_changed mx", AlertKind.CONDITION, Severity.CRITICAL,
        f"new key {HOSTILE_SCRIPT}", ("key before: aa", "key now: ab"), (fix,),
    )  # fmt: skip
    weak = Alert("top.test", "finding", "finding x", AlertKind.CONDITION, Severity.WARNING, "weak thing")
    record_alerts(sqlite_store, "top.test", [broke, weak], None, T0)
    record_alerts(sqlite_store, "top.test", [broke], None, T0 + dt.timedelta(hours=1))  # weak cleared
    with client_for(sqlite_store, settings_for(zones)) as client:
        monitor = client.get("/monitor", headers=bearer(token))
        assert monitor.status_code == 200 and 'id="not-monitoring"' in monitor.text
        state = client.get("/api/v1/monitor/watchlist", headers=bearer(token)).json()
        assert state == {"monitoring": False, "source": None, "next_pass_at": None, "domains": []}
        page = client.get("/monitor/alerts", headers=bearer(token), params={"domain": "top.test"})
        rows = client.get("/api/v1/monitor/alerts", headers=bearer(token)).json()
    assert page.status_code == 200
    text = page.text
    opened, recent = text.split('id="open-alerts"')[1].split('id="recent-alerts"')
    assert "dane_key_changed mx" in opened and "finding x" not in opened
    assert "finding x" in recent and "resolved 2026-12-01 09:00 UTC" in recent
    assert "_25._tcp.mx.top.test. TLSA 3 1 1 ab" in opened and "Publish the &lt;TLSA&gt; record" in opened
    assert HOSTILE_SCRIPT not in text and "new key &lt;script&gt;" in text
    assert {(r["key"], r["state"]) for r in rows} == {
        ("dane_key_changed mx", "open"),
        ("finding x", "resolved"),
    }
    [dane] = [r for r in rows if r["rule"] == "dane_key_changed"]
    assert dane["fixes"][0]["snippets"][0]["where"] == "DNS zone of mx.top.test"


def test_a_bad_watchlist_stops_the_service_before_it_serves(tmp_path: Path, sqlite_store: Store) -> None:
    bad = tmp_path / "w.toml"
    bad.write_text('[[domain]]\nname = "a.test"\nnotify = ["nobody"]\n')
    from mecsa.web.settings import ServiceSettings

    with pytest.raises(WatchListError, match="unknown notifier 'nobody'"):
        create_app(ServiceSettings(watchlist=str(bad)), store=sqlite_store)


def test_the_openapi_document_names_the_monitor_and_reports_endpoints(
    zones: ThreadedZoneServer, sqlite_store: Store
) -> None:
    with client_for(sqlite_store, settings_for(zones)) as client:
        spec = client.get("/api/v1/openapi.json").json()
    mine = {p for p in spec["paths"] if p.startswith(("/api/v1/monitor/", "/api/v1/reports"))}
    assert mine == set(PRIVATE_API)
    for path in PRIVATE_API:
        assert "401" in spec["paths"][path]["get"]["responses"], path
    assert {"WatchListState", "AlertRow"} <= set(spec["components"]["schemas"])
    # the private pages are not API
    assert not any(p.startswith(("/monitor", "/reports", "/signin")) for p in spec["paths"])


def test_a_watchlist_without_resolvers_assesses_through_the_services(tmp_path: Path) -> None:
    from mecsa.web.monitor_pages import load_watchlist_of
    from mecsa.web.settings import ServiceSettings

    plain = tmp_path / "w.toml"
    plain.write_text('[[domain]]\nname = "a.test"\n')
    own = tmp_path / "own.toml"
    own.write_text('[assess]\nresolvers = ["10.0.0.1"]\n\n[[domain]]\nname = "a.test"\n')
    service = ("127.0.0.1:5353",)
    assert load_watchlist_of(ServiceSettings()) is None
    for path, expected in ((plain, service), (own, ("10.0.0.1",))):
        loaded = load_watchlist_of(ServiceSettings(resolvers=service, watchlist=str(path)))
        assert loaded is not None and loaded.assess.resolvers == expected
