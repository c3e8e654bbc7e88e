"""The REST API, in-process through the ASGI test client, against a loopback zone server."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import jsonschema

from mecsa.dns.zoneserver import ThreadedZoneServer
from mecsa.report.json import DEFAULT_PROFILE
from mecsa.store import NewResult, Store
from mecsa.store.api_tokens import create_token, revoke_token
from mecsa.web.settings import ServiceSettings
from tests.unit.web.service import assess_now, client_for, settings_for, wait_job

SCHEMA = json.loads((Path(__file__).parents[3] / "src/mecsa/report/assessment.schema.json").read_text())


def test_health_says_ok_with_the_version(zones: ThreadedZoneServer, sqlite_store: Store) -> None:
    with client_for(sqlite_store, settings_for(zones)) as client:
        response = client.get("/api/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["assessments_running"] == 0
    assert body["version"]


def test_an_assessment_runs_reports_each_check_and_stores_the_assess_json_document(
    zones: ThreadedZoneServer, store: Store
) -> None:
    with client_for(store, settings_for(zones)) as client:
        started = client.post("/api/v1/assessments", json={"domain": "Good.Web.Test."})
        assert started.status_code == 202
        assert started.headers["location"] == f"/api/v1/jobs/{started.json()['job']}"
        assert started.json()["domain"] == "good.web.test"
        final = wait_job(client, started.json()["job"])
        assert final["state"] == "finished"
        assert final["checks_done"] == final["checks_total"] == len(final["checks"]) > 5
        assert {c["check"] for c in final["checks"]} >= {"mx", "spf", "dmarc", "starttls"}
        document = client.get(f"/api/v1/assessments/{final['assessment_id']}")
    assert document.status_code == 200
    assert document.headers["content-type"] == "application/json"
    doc = document.json()
    jsonschema.validate(doc, SCHEMA)
    assert doc["domain"] == "good.web.test" and doc["profile"] == DEFAULT_PROFILE
    assert doc["protocols"]["dmarc_policy"]["status"] == "pass"  # p=reject with rua
    assert doc["protocols"]["starttls"]["status"] == "error"  # the MX port is closed: could not find out
    stored = store.get_assessment(final["assessment_id"])
    assert stored is not None and json.loads(stored.document_text) == doc


def test_a_domain_assessed_recently_gets_the_stored_result_not_a_new_assessment(
    zones: ThreadedZoneServer, sqlite_store: Store
) -> None:
    with client_for(sqlite_store, settings_for(zones)) as client:
        first = assess_now(client, "good.web.test")
        again = client.post("/api/v1/assessments", json={"domain": "good.web.test"})
        forced_without_token = client.post(
            "/api/v1/assessments", json={"domain": "good.web.test", "force": True}
        )
    assert again.status_code == 200
    assert again.json() == {
        "id": first["assessment_id"],
        "domain": "good.web.test",
        "stored": True,
        "url": f"/api/v1/assessments/{first['assessment_id']}",
    }
    # force is for authenticated clients only: without a token it is the stored result again
    assert forced_without_token.status_code == 200
    assert forced_without_token.json()["id"] == first["assessment_id"]
    assert len(sqlite_store.assessments_of_domain("good.web.test")) == 1


def test_an_authenticated_client_can_force_a_fresh_assessment(
    zones: ThreadedZoneServer, sqlite_store: Store
) -> None:
    token = create_token(sqlite_store, "tests")
    with client_for(sqlite_store, settings_for(zones)) as client:
        first = assess_now(client, "good.web.test")
        forced = client.post(
            "/api/v1/assessments",
            json={"domain": "good.web.test", "force": True},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert forced.status_code == 202
        second = wait_job(client, forced.json()["job"])
    assert second["state"] == "finished" and second["assessment_id"] != first["assessment_id"]
    assert len(sqlite_store.assessments_of_domain("good.web.test")) == 2


def test_bad_domains_are_refused_with_a_one_line_reason(
    zones: ThreadedZoneServer, sqlite_store: Store
) -> None:
    with client_for(sqlite_store, settings_for(zones)) as client:
        for bad, reason in (
            ("", "empty"),
            ("192.0.2.1", "IP address"),
            ("a..b", "empty label"),
            ("x" * 400, "too long"),
            ("exa mple.org", "invalid label"),
        ):
            response = client.post("/api/v1/assessments", json={"domain": bad})
            assert response.status_code == 400, bad
            detail = response.json()["detail"]
            assert reason in detail and "\n" not in detail
        address = client.post("/api/v1/assessments", json={"domain": "me@good.web.test"})
        missing = client.post("/api/v1/assessments", json={})
        not_json = client.post(
            "/api/v1/assessments", content=b"{", headers={"content-type": "application/json"}
        )
    assert address.status_code == 400 and "mail mode" in address.json()["detail"]
    assert missing.status_code == 422 and missing.json()["problems"][0]["field"] == "domain"
    assert not_json.status_code == 422
    assert sqlite_store.assessments_of_domain("good.web.test") == []


def test_unknown_ids_are_404(zones: ThreadedZoneServer, sqlite_store: Store) -> None:
    with client_for(sqlite_store, settings_for(zones)) as client:
        assert client.get("/api/v1/assessments/999").status_code == 404
        assert client.get("/api/v1/assessments/abc").status_code == 422
        assert client.get("/api/v1/jobs/nope").status_code == 404
        assert client.get("/api/v1/jobs/nope").json()["detail"].startswith("no job")


def test_the_client_rate_limit_answers_429_with_retry_after(
    zones: ThreadedZoneServer, sqlite_store: Store
) -> None:
    settings = replace(settings_for(zones), client_assessments=2, client_window_s=300.0, fresh_minutes=0)
    with client_for(sqlite_store, settings) as client:
        for _ in range(2):
            assess_now(client, "nomx.web.test")
        limited = client.post("/api/v1/assessments", json={"domain": "nomx.web.test"})
        token = create_token(sqlite_store, "tests")
        with_token = client.post(
            "/api/v1/assessments",
            json={"domain": "nomx.web.test"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert with_token.status_code == 202  # token holders are not limited per address
        wait_job(client, with_token.json()["job"])
    assert limited.status_code == 429
    assert 290 <= int(limited.headers["retry-after"]) <= 301
    assert "too many assessments" in limited.json()["detail"]


def test_beyond_running_and_waiting_capacity_the_service_says_busy(
    zones: ThreadedZoneServer, sqlite_store: Store
) -> None:
    settings = replace(settings_for(zones), max_running=1, max_waiting=0)
    with client_for(sqlite_store, settings) as client:
        first = client.post("/api/v1/assessments", json={"domain": "slow.web.test"})
        second = client.post("/api/v1/assessments", json={"domain": "nomx.web.test"})
        same = client.post("/api/v1/assessments", json={"domain": "slow.web.test"})
        wait_job(client, first.json()["job"])
    assert first.status_code == 202
    assert second.status_code == 503 and "try again" in second.json()["detail"]
    # the running domain's job is shared, not refused
    assert same.status_code == 202 and same.json()["job"] == first.json()["job"]


def test_a_domain_history_lists_every_stored_assessment_newest_first(
    zones: ThreadedZoneServer, store: Store
) -> None:
    token = create_token(store, "tests")
    auth = {"Authorization": f"Bearer {token}"}
    with client_for(store, settings_for(zones)) as client:
        ids = [
            assess_now(client, "good.web.test", force=True)["assessment_id"],
            wait_job(
                client,
                client.post(
                    "/api/v1/assessments", json={"domain": "good.web.test", "force": True}, headers=auth
                ).json()["job"],
            )["assessment_id"],
        ]
        listed = client.get("/api/v1/domains/GOOD.web.test/assessments")
        empty = client.get("/api/v1/domains/nothing.web.test/assessments")
        bad = client.get("/api/v1/domains/a..b/assessments")
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()] == sorted(ids, reverse=True)
    item = listed.json()[0]
    assert item["url"] == f"/api/v1/assessments/{item['id']}" and item["scan_id"] is None
    assert set(item["levels"]) == {"confidentiality", "phishing", "integrity"}
    assert empty.json() == []
    assert bad.status_code == 400


def test_scans_need_a_valid_token_and_report_their_summary(zones: ThreadedZoneServer, store: Store) -> None:
    token = create_token(store, "scanner")
    revoked = create_token(store, "old")
    revoke_token(store, 2)
    body = {"domains": ["good.web.test", "nomx.web.test", "not a domain"], "name": "three"}
    with client_for(store, settings_for(zones)) as client:
        missing = client.post("/api/v1/scans", json=body)
        wrong = client.post("/api/v1/scans", json=body, headers={"Authorization": "Bearer mecsa_wrong"})
        old = client.post("/api/v1/scans", json=body, headers={"Authorization": f"Bearer {revoked}"})
        started = client.post("/api/v1/scans", json=body, headers={"Authorization": f"Bearer {token}"})
        assert started.status_code == 202
        scan_id = started.json()["id"]
        deadline = time.monotonic() + 30
        state = {}
        while time.monotonic() < deadline:
            state = client.get(
                f"/api/v1/scans/{scan_id}", headers={"Authorization": f"Bearer {token}"}
            ).json()
            if state["scan"]["state"] != "running":
                break
            time.sleep(0.1)
        unauthenticated = client.get(f"/api/v1/scans/{scan_id}")
        unknown = client.get("/api/v1/scans/999", headers={"Authorization": f"Bearer {token}"})
    for refused in (missing, wrong, old):
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert state["scan"]["state"] == "finished"
    assert state["total"] == 3 and state["domains"] == 3
    assert state["assessed"] == 2 and state["errors"] == 1
    assert unauthenticated.status_code == 401
    assert unknown.status_code == 404


def test_stats_count_each_domain_once_with_its_newest_assessment(
    zones: ThreadedZoneServer, store: Store
) -> None:
    def document(domain: str, level: int) -> dict[str, object]:
        return {
            "domain": domain,
            "profile": "mecsa",
            "mecsa_version": "0",
            "scores": {"confidentiality": level, "phishing": level, "integrity": level},
        }

    for domain, level in (("a.test", 2), ("a.test", 8), ("b.test", 8), ("c.test", 0)):
        store.add_result(None, NewResult.from_document(document(domain, level)))
    with client_for(store, settings_for(zones)) as client:
        stats = client.get("/api/v1/stats").json()
    assert stats["domains"] == 3
    assert stats["levels"]["phishing"] == {str(k): {0: 1, 8: 2}.get(k, 0) for k in range(11)}


def test_the_openapi_document_names_every_endpoint(zones: ThreadedZoneServer, sqlite_store: Store) -> None:
    with client_for(sqlite_store, settings_for(zones)) as client:
        document = client.get("/api/v1/openapi.json")
        docs_page = client.get("/docs")
    assert document.status_code == 200
    spec = document.json()
    assert spec["openapi"].startswith("3.")
    # the monitor's and the reports' endpoints: tests/unit/web/test_monitor_pages.py checks them
    assert {p for p in spec["paths"] if not p.startswith(("/api/v1/monitor/", "/api/v1/reports"))} == {
        "/api/v1/health",
        "/api/v1/assessments",
        "/api/v1/assessments/{assessment_id}",
        "/api/v1/jobs/{job}",
        "/api/v1/domains/{name}/assessments",
        "/api/v1/scans",
        "/api/v1/scans/{scan_id}",
        "/api/v1/stats",
    }
    assert set(spec["paths"]["/api/v1/assessments"]["post"]["responses"]) >= {
        "200",
        "202",
        "400",
        "429",
        "503",
    }
    assert "AssessmentRequest" in spec["components"]["schemas"]
    # pages are not API: the HTML routes stay out of the document
    assert not any(path.startswith("/report") for path in spec["paths"])
    # no Swagger UI: it would load scripts from a CDN
    assert docs_page.status_code == 404


def test_a_request_body_over_the_limit_is_refused_with_413(
    zones: ThreadedZoneServer, sqlite_store: Store
) -> None:
    settings: ServiceSettings = replace(settings_for(zones), max_body_bytes=1000)
    with client_for(sqlite_store, settings) as client:
        response = client.post("/api/v1/assessments", json={"domain": "a" * 2000})
    assert response.status_code == 413
    assert "larger than 1000 bytes" in response.json()["detail"]


def test_clients_are_told_apart_behind_a_proxy_only_when_told_to(
    zones: ThreadedZoneServer, sqlite_store: Store
) -> None:
    forwarded = {"X-Forwarded-For": "198.51.100.7"}
    for behind_proxy, expected in ((False, 429), (True, 202)):
        settings = replace(
            settings_for(zones), client_assessments=1, fresh_minutes=0, behind_proxy=behind_proxy
        )
        with client_for(sqlite_store, settings) as client:
            assess_now(client, "nomx.web.test")
            second = client.post("/api/v1/assessments", json={"domain": "nomx.web.test"}, headers=forwarded)
            if second.status_code == 202:
                wait_job(client, second.json()["job"])
        assert second.status_code == expected, behind_proxy
