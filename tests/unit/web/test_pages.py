"""The HTML pages and the security rules every response follows (ASGI test client, loopback zone)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from html.parser import HTMLParser
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text

from mecsa.dns.zoneserver import ThreadedZoneServer
from mecsa.store import Store
from mecsa.store.api_tokens import create_token
from mecsa.web.settings import ServiceSettings
from tests.unit.web.service import HOSTILE_IMG, HOSTILE_SCRIPT, assess_now, client_for, settings_for


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text inside <script> elements."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def parse(page: str) -> Elements:
    parser = Elements()
    parser.feed(page)
    return parser


def nonce_of(csp: str) -> str:
    found = re.search(r"script-src 'nonce-([A-Za-z0-9_-]+)'", csp)
    assert found, csp
    return found.group(1)


def test_the_home_page_has_one_field_and_a_strict_policy(
    zones: ThreadedZoneServer, sqlite_store: Store
) -> None:
    with client_for(sqlite_store, settings_for(zones)) as client:
        response = client.get("/")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "strict-transport-security" not in response.headers  # plain HTTP: no HSTS (RFC 6797 §7.2)
    elements = parse(response.text)
    inputs = [a for tag, a in elements.tags if tag == "input" and a.get("type") == "text"]
    assert [i["name"] for i in inputs] == ["target"]
    nonce = nonce_of(csp)
    for tag, attrs in elements.tags:
        if tag in ("script", "style"):
            assert attrs.get("nonce") == nonce
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        assert not any(str(value).startswith(("http:", "https:", "//")) for value in attrs.values())


def test_every_response_gets_a_new_nonce(zones: ThreadedZoneServer, sqlite_store: Store) -> None:
    with client_for(sqlite_store, settings_for(zones)) as client:
        nonces = {nonce_of(client.get("/").headers["content-security-policy"]) for _ in range(5)}
    assert len(nonces) == 5


def test_hsts_only_over_tls_or_from_the_trusted_proxy(zones: ThreadedZoneServer, sqlite_store: Store) -> None:
    proto = {"X-Forwarded-Proto": "https"}
    with client_for(sqlite_store, settings_for(zones)) as client:
        assert "strict-transport-security" in client.get("https://testserver/").headers
        assert "strict-transport-security" not in client.get("/", headers=proto).headers
    with client_for(sqlite_store, replace(settings_for(zones), behind_proxy=True)) as client:
        assert client.get("/", headers=proto).headers["strict-transport-security"] == "max-age=31536000"
        assert "strict-transport-security" not in client.get("/").headers


def test_an_address_without_mail_mode_says_so_and_starts_nothing(
    zones: ThreadedZoneServer, sqlite_store: Store
) -> None:
    with client_for(sqlite_store, settings_for(zones)) as client:
        response = client.post("/assess", data={"target": "me@good.web.test"})
    assert response.status_code == 200
    assert "not enabled on this service" in response.text and 'id="notice"' in response.text
    assert sqlite_store.assessments_of_domain("good.web.test") == []


def test_a_bad_domain_comes_back_to_the_form_with_the_reason(
    zones: ThreadedZoneServer, sqlite_store: Store
) -> None:
    with client_for(sqlite_store, settings_for(zones)) as client:
        response = client.post("/assess", data={"target": "<b>x</b>..org"})
    assert response.status_code == 400
    assert 'id="error"' in response.text
    assert "<b>x</b>" not in response.text and "&lt;b&gt;x&lt;/b&gt;" in response.text


def sse(client: TestClient, url: str) -> tuple[list[str], list[dict[str, Any]]]:
    """Every event of a server-sent events stream until it ends: (kinds, data)."""
    blocks = []
    with client.stream("GET", url) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for block in stream.iter_text():
            blocks.append(block)
    text = "".join(blocks)
    datas = [json.loads(d) for d in re.findall(r"^data: (.*)$", text, re.M)]
    return re.findall(r"^event: (\w+)$", text, re.M), datas


def test_the_permanent_page_shows_the_live_progress_then_the_report(
    zones: ThreadedZoneServer, sqlite_store: Store
) -> None:
    with client_for(sqlite_store, settings_for(zones)) as client:
        # slow.web.test never answers: its assessment runs for seconds
        started = client.post("/assess", data={"target": "slow.web.test"}, follow_redirects=False)
        assert started.status_code == 303
        url = started.headers["location"]
        assert re.fullmatch(r"/report/\d+", url), url
        running = client.get(url)
        api = client.get(url.replace("/report/", "/api/v1/assessments/"))
        old_link = client.get(f"/progress/{api.json()['job']}", follow_redirects=False)
        listed = client.get("/api/v1/domains/slow.web.test/assessments").json()
        history = client.get("/domain/slow.web.test").text
        kinds, datas = sse(client, url + "/events")
        finished = client.get(url)
        ended = sse(client, url + "/events")  # an ended assessment's stream: the final event only
    assert running.status_code == 200 and 'id="check-spf"' in running.text
    assert f'data-events="{url}/events"' in running.text
    assert running.headers["cache-control"] == "no-store"
    assert "area-confidentiality" not in running.text
    assert api.status_code == 202 and api.json()["assessment_id"] == int(url.rsplit("/", 1)[1])
    assert old_link.status_code == 303 and old_link.headers["location"] == url
    assert [(i["id"], i["error"]) for i in listed] == [(api.json()["assessment_id"], "running")]
    assert '<span class="reason">running</span>' in history
    assert kinds[-1] == "done" and kinds.count("check") == datas[-2]["total"] > 5
    assert datas[-1]["report"] == url
    assert finished.status_code == 200 and "area-confidentiality" in finished.text
    assert ended[0] == ["done"] and ended[1][0]["report"] == url


def test_the_form_leads_to_the_report(zones: ThreadedZoneServer, sqlite_store: Store) -> None:
    with client_for(sqlite_store, settings_for(zones)) as client:
        started = client.post("/assess", data={"target": "good.web.test"}, follow_redirects=False)
        assert started.status_code == 303
        report_url = started.headers["location"]
        kinds, _ = sse(client, report_url + "/events")
        assert kinds[-1] == "done"
        report = client.get(report_url)
        json_link = client.get(report_url.replace("/report/", "/api/v1/assessments/"))
        download = client.get(report_url + "/report.html")
    assert report.status_code == 200
    elements = parse(report.text)
    ids = {a.get("id") for _, a in elements.tags}
    # the three areas with stars, the per-MX table, the problems and the fixes with copy buttons
    assert {"area-confidentiality", "area-phishing", "area-integrity", "host-1", "permalink"} <= ids
    assert "★" in report.text or "☆" in report.text
    assert "mx.good.web.test" in report.text and 'class="addresses"' in report.text
    assert "preference 10" in report.text  # the MX check's typed facts, kept with the rendered report
    assert 'class="problems"' in report.text
    assert [a for t, a in elements.tags if t == "button" and "copy" in (a.get("class") or "")]
    nonce = nonce_of(report.headers["content-security-policy"])
    assert all(a.get("nonce") == nonce for t, a in elements.tags if t in ("script", "style"))
    assert json_link.json()["domain"] == "good.web.test"
    assert download.headers["content-disposition"].startswith('attachment; filename="mecsa-good.web.test-')
    assert "sha256-" in download.headers["content-security-policy"]
    assert download.text.startswith("<!DOCTYPE html>")


def test_an_internal_target_is_refused_with_a_clear_message(
    zones: ThreadedZoneServer, sqlite_store: Store
) -> None:
    settings = replace(settings_for(zones), allow_private=False)
    with client_for(sqlite_store, settings) as client:
        state = assess_now(client, "internal.web.test")
        started = client.post("/assess", data={"target": "internal.web.test"}, follow_redirects=False)
        kinds, datas = sse(client, started.headers["location"] + "/events")
        page = client.get(started.headers["location"])
        stats = client.get("/api/v1/stats").json()
    assert state["state"] == "refused"
    assert state["message"].startswith("refused: mx.internal.web.test (127.0.0.2) resolves to a private")
    assert kinds[-1] == "refused" and datas[-1]["message"] == state["message"]
    assert "<h1>Refused</h1>" in page.text and "mx.internal.web.test (127.0.0.2)" in page.text
    # the permanent id keeps the refusal as an error record: no levels, nothing counted
    kept = sqlite_store.assessments_of_domain("internal.web.test")
    assert [(s.id, s.is_error, s.error_reason) for s in kept] == [
        (datas[-1]["assessment_id"], True, state["message"]),
        (state["assessment_id"], True, state["message"]),
    ]
    assert all(s.levels[a] is None for s in kept for a in ("confidentiality", "phishing", "integrity"))
    assert stats["domains"] == 0, stats


def test_hostile_dns_text_is_escaped_on_every_page(zones: ThreadedZoneServer, sqlite_store: Store) -> None:
    with client_for(sqlite_store, settings_for(zones)) as client:
        final = assess_now(client, "hostile.web.test")
        assert final["state"] == "finished"
        pages = {
            "report": client.get(f"/report/{final['assessment_id']}").text,
            "history": client.get("/domain/hostile.web.test").text,
            "download": client.get(f"/report/{final['assessment_id']}/report.html").text,
        }
    document = sqlite_store.get_assessment(final["assessment_id"])
    assert document is not None and HOSTILE_SCRIPT in document.document_text  # the text did arrive
    for name, page in pages.items():
        assert HOSTILE_SCRIPT not in page, name
        assert HOSTILE_IMG not in page, name
        elements = parse(page)
        assert not [a for t, a in elements.tags if t == "img"], name
        assert not any("pwned" in s for s in elements.scripts), name
    assert "&lt;script&gt;document.title=" in pages["report"]


def test_no_stack_trace_reaches_a_page(zones: ThreadedZoneServer, sqlite_store: Store) -> None:
    with client_for(sqlite_store, settings_for(zones), raise_errors=False) as client:
        final = assess_now(client, "nomx.web.test")
        with sqlite_store.engine.begin() as conn:  # break the store under the running service
            conn.execute(text("DROP TABLE assessment_mx"))
            conn.execute(text("ALTER TABLE assessments RENAME TO gone"))
        page = client.get(f"/report/{final['assessment_id']}")
        api = client.get(f"/api/v1/assessments/{final['assessment_id']}")
    assert page.status_code == 500 and api.status_code == 500
    assert "Something went wrong on our side." in page.text
    assert api.json() == {"detail": "internal error"}
    for body in (page.text, api.text):
        for leak in ("Traceback", "sqlalchemy", "sqlite3", "OperationalError", 'File "'):
            assert leak not in body


def test_unknown_pages_are_404_pages(zones: ThreadedZoneServer, sqlite_store: Store) -> None:
    with client_for(sqlite_store, settings_for(zones)) as client:
        for path in ("/report/12345", "/progress/nope", "/scans/77", "/nowhere", "/scans/77/summary"):
            response = client.get(path)
            assert response.status_code == 404, path
            assert response.headers["content-type"].startswith("text/html"), path


def test_the_history_page_charts_the_levels_and_diffs_two_assessments(
    zones: ThreadedZoneServer, sqlite_store: Store
) -> None:
    from tests.unit.web.service import zone_server, zone_text

    token = create_token(sqlite_store, "t")
    with (
        zone_server(zone_text(good_dmarc="v=DMARC1; p=none")) as before,
        client_for(sqlite_store, settings_for(before)) as client,
    ):
        older = assess_now(client, "good.web.test")["assessment_id"]
    with client_for(sqlite_store, settings_for(zones)) as client:
        newer = client.post(
            "/api/v1/assessments",
            json={"domain": "good.web.test", "force": True},
            headers={"Authorization": f"Bearer {token}"},
        )
        from tests.unit.web.service import wait_job

        newer_id = wait_job(client, newer.json()["job"])["assessment_id"]
        page = client.get("/domain/good.web.test")
        chosen = client.get(f"/domain/good.web.test?older={newer_id}&newer={older}")
        same = client.get(f"/domain/good.web.test?older={older}&newer={older}")
        missing = client.get("/domain/good.web.test?older=1&newer=999")
    assert page.status_code == 200
    assert page.text.count('<circle class="dot-phishing"') == 2
    assert 'id="diff"' in page.text
    diff = page.text[page.text.index('id="diff"') :]
    # p=none -> p=reject: dmarc_policy now passes, and the p=none finding is gone
    assert re.search(r"<td>dmarc_policy</td><td>fail</td><td>pass</td>", diff)
    assert "<code>dmarc_policy.none</code>" in diff[diff.index('id="diff-removed"') :]
    assert chosen.text.count("<td>dmarc_policy</td><td>fail</td><td>pass</td>") == 1  # put in time order
    assert 'id="diff-unchanged"' in same.text
    assert missing.status_code == 404


def test_the_stats_page_has_a_chart_per_area(zones: ThreadedZoneServer, sqlite_store: Store) -> None:
    with client_for(sqlite_store, settings_for(zones)) as client:
        assess_now(client, "good.web.test")
        page = client.get("/stats")
    assert page.status_code == 200
    assert "1 domains in the store" in page.text
    for area in ("confidentiality", "phishing", "integrity"):
        assert f'id="stats-{area}"' in page.text
    assert page.text.count("<svg") == 3


def test_a_scan_starts_from_an_uploaded_list_with_a_token(
    zones: ThreadedZoneServer, sqlite_store: Store
) -> None:
    token = create_token(sqlite_store, "t")
    upload = {"domains": ("list.txt", b"good.web.test\nnomx.web.test\n# a comment\n", "text/plain")}
    settings: ServiceSettings = settings_for(zones)
    with client_for(sqlite_store, settings) as client:
        refused = client.post("/scans", data={"token": "mecsa_nope"}, files=upload)
        started = client.post("/scans", data={"token": token}, files=upload, follow_redirects=False)
        assert started.status_code == 303
        scan_url = started.headers["location"]
        import time

        page = client.get(scan_url)
        for _ in range(200):
            page = client.get(scan_url)
            if 'data-state="finished"' in page.text:
                break
            time.sleep(0.05)
        summary = client.get(scan_url + "/summary")
        listing = client.get("/scans")
    assert refused.status_code == 401 and "valid API token" in refused.text
    assert 'data-state="finished"' in page.text and "2 of 2 domains done" in page.text
    assert summary.status_code == 200 and "<h2>Levels per area</h2>" in summary.text
    assert "script-src" not in summary.headers["content-security-policy"]  # the summary has no script
    assert "list.txt" in listing.text


def test_a_cached_report_page_carries_each_response_its_own_nonce(
    zones: ThreadedZoneServer, sqlite_store: Store
) -> None:
    with client_for(sqlite_store, settings_for(zones)) as client:
        report = f"/report/{assess_now(client, 'good.web.test')['assessment_id']}"
        responses = [client.get(report) for _ in range(3)]
    nonces = [nonce_of(r.headers["content-security-policy"]) for r in responses]
    assert len(set(nonces)) == 3
    for response, nonce in zip(responses, nonces, strict=True):
        tags = parse(response.text).tags
        assert [a.get("nonce") for t, a in tags if t in ("script", "style")] == [nonce, nonce]
        assert response.text.count("nonce") == 2  # the two attributes: no placeholder left behind
