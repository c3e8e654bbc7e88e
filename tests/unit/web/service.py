"""Helpers for the web service's tests: a zone of lab-like domains on loopback, and the app over it.

Every address in the zone is on loopback (127.0.0.0/8), so even a guard that failed would send
nothing off this machine; "internal" targets are loopback addresses, which the guard must refuse.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from fastapi.testclient import TestClient

from mecsa.dns.zoneserver import Fault, ThreadedZoneServer, ZoneData
from mecsa.observe import AssessOptions
from mecsa.store import Store
from mecsa.web.app import create_app
from mecsa.web.settings import ServiceSettings

ORIGIN = "web.test"
HOSTILE_SCRIPT = "<script>document.title='pwned'</script>"
HOSTILE_IMG = '"><img src=x onerror="document.title=1">'


def closed_port() -> int:
    """A loopback TCP port nobody listens on: SMTP probes to it are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def zone_text(*, good_dmarc: str = "v=DMARC1; p=reject; rua=mailto:d@good.web.test") -> str:
    lines = [
        "$TTL 300",
        f"@ SOA ns.{ORIGIN}. h.{ORIGIN}. 1 300 300 300 300",
        "@ NS ns",
        "ns A 127.0.0.53",
        # good: a loopback MX (reachable only with --allow-private), SPF and DMARC
        "good MX 10 mx.good",
        "mx.good A 127.0.0.1",
        'good TXT "v=spf1 mx -all"',
        f'_dmarc.good TXT "{good_dmarc}"',
        # nomx: no MX and no address: nothing to connect to, so the guard has nothing to refuse
        'nomx TXT "v=spf1 -all"',
        '_dmarc.nomx TXT "v=DMARC1; p=none"',
        # internal: its MX host is on a loopback address, which the guard must refuse
        "internal MX 10 mx.internal",
        "mx.internal A 127.0.0.2",
        'internal TXT "v=spf1 mx -all"',
        # hostile: DNS text made to break out of HTML
        "hostile MX 10 mx.hostile",
        "mx.hostile A 127.0.0.1",
        f'hostile TXT "v=spf1 {HOSTILE_SCRIPT.replace(chr(34), chr(92) + chr(34))} -all"',
        f'_dmarc.hostile TXT "v=DMARC1; p={HOSTILE_IMG.replace(chr(34), chr(92) + chr(34))}"',
    ]
    return "\n".join(lines) + "\n"


@contextmanager
def zone_server(text: str | None = None) -> Iterator[ThreadedZoneServer]:
    # slow.web.test never answers: an assessment of it runs for seconds (a job in flight)
    faults = {"slow.web.test": Fault.TIMEOUT, "_dmarc.slow.web.test": Fault.TIMEOUT}
    data = ZoneData.from_texts({ORIGIN + ".": text or zone_text()}, secure=[ORIGIN + "."], faults=faults)
    with ThreadedZoneServer(data) as server:
        yield server


def settings_for(server: ThreadedZoneServer, **changes: Any) -> ServiceSettings:
    base = ServiceSettings(
        resolvers=(server.address,),
        dns_timeout=0.5,
        assess_options=AssessOptions(
            smtp_timeout=0.5,
            smtp_port=closed_port(),
            https_port=closed_port(),
            tls_versions=False,
            check_deadline=20.0,
        ),
        allow_private=True,
        assess_workers=1,  # one worker process is enough here, and each costs a start-up
    )
    return replace(base, **changes)


@contextmanager
def client_for(store: Store, settings: ServiceSettings, *, raise_errors: bool = True) -> Iterator[TestClient]:
    with TestClient(create_app(settings, store=store), raise_server_exceptions=raise_errors) as client:
        yield client


def wait_job(client: TestClient, job: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state: dict[str, Any] = client.get(f"/api/v1/jobs/{job}").json()
        if state["state"] != "running":
            return state
        time.sleep(0.05)
    raise AssertionError(f"job {job} still running after {timeout} s")


def assess_now(client: TestClient, domain: str, **body: Any) -> dict[str, Any]:
    """Start an assessment through the API and wait for its end: the final job state."""
    response = client.post("/api/v1/assessments", json={"domain": domain, **body})
    assert response.status_code == 202, response.text
    return wait_job(client, response.json()["job"])
